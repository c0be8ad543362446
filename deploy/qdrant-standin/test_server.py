"""Checks the running Qdrant stand-in (QDRANT_URL, default http://127.0.0.1:16333):
status codes, Qdrant's envelope, and that every answer matches the OpenAPI spec.

    deploy/stack.sh start qdrant
    ~/.cache/landlord/venv/bin/python -m pytest -q deploy/qdrant-standin/test_server.py
"""

import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
import uuid

import pytest
from openapi_core.testing import MockRequest, MockResponse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import server  # noqa: E402  (the stand-in itself: same spec loading)

BASE = os.environ.get("QDRANT_URL", "http://127.0.0.1:16333").rstrip("/")
OPENAPI = server.load_openapi(server.find_spec())
RUN = uuid.uuid4().hex[:8]


def call(method, path, body=None, raw=None, content_type="application/json", validate=True):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(BASE + path, data=data, method=method)
    if data is not None and content_type:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            status, payload = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, payload = e.code, e.read()
    doc = json.loads(payload) if payload else None
    assert doc is not None, "%s %s: empty body (status %s)" % (method, path, status)
    assert isinstance(doc["time"], float)
    if validate:
        check_against_spec(method, path, data, status, payload)
    return status, doc


def check_against_spec(method, path, data, status, payload):
    """The answer must match the spec's response schema for that operation
    (the 200 schema, or ErrorResponse for 4XX)."""
    parsed = urllib.parse.urlsplit(path)
    req = MockRequest("http://127.0.0.1:16333", method, parsed.path,
                      args=dict(urllib.parse.parse_qsl(parsed.query)), data=data)
    resp = MockResponse(payload, status_code=status, content_type="application/json")
    OPENAPI.validate_response(req, resp)


def name(suffix):
    return "t%s_%s" % (RUN, suffix)


def q(n):
    return urllib.parse.quote(n, safe="")


VEC = {"vectors": {"size": 4, "distance": "Dot"}}


def test_create_info_list_exists_delete():
    c = name("basic")
    st, doc = call("PUT", "/collections/" + c, VEC)
    assert (st, doc["result"], doc["status"]) == (200, True, "ok")

    st, doc = call("GET", "/collections/" + c)
    assert st == 200 and doc["status"] == "ok"
    info = doc["result"]
    assert info["config"]["params"]["vectors"] == {"size": 4, "distance": "Dot"}
    assert info["status"] == "green"
    assert info["points_count"] == 0
    assert info["optimizer_status"] == "ok"
    for key in ("segments_count", "payload_schema"):
        assert key in info

    st, doc = call("GET", "/collections")
    assert st == 200 and {"name": c} in doc["result"]["collections"]

    st, doc = call("GET", "/collections/%s/exists" % c)
    assert (st, doc["result"]) == (200, {"exists": True})

    st, doc = call("DELETE", "/collections/" + c)
    assert (st, doc["result"]) == (200, True)

    st, doc = call("GET", "/collections/%s/exists" % c)
    assert (st, doc["result"]) == (200, {"exists": False})


def test_create_existing_is_409():
    c = name("dup")
    assert call("PUT", "/collections/" + c, VEC)[0] == 200
    st, doc = call("PUT", "/collections/" + c, VEC)
    assert st == 409
    assert doc["status"] == {"error": "Wrong input: Collection `%s` already exists!" % c}
    call("DELETE", "/collections/" + c)


def test_get_missing_is_404():
    c = name("missing")
    st, doc = call("GET", "/collections/" + c)
    assert st == 404
    assert doc["status"] == {"error": "Not found: Collection `%s` doesn't exist!" % c}


def test_delete_missing_is_200_false():
    st, doc = call("DELETE", "/collections/" + name("never"))
    assert (st, doc["result"], doc["status"]) == (200, False, "ok")


@pytest.mark.parametrize("bad", ["a/b", "a\\b", "a\0b", "a:b", "a*b", "x" * 256])
def test_invalid_name_on_create_is_422(bad):
    st, doc = call("PUT", "/collections/" + q(bad), VEC)
    assert st == 422, doc
    assert doc["status"]["error"].startswith("Validation error in path parameters")


def test_name_of_255_chars_is_fine_and_256_is_422_everywhere():
    ok = ("n%s" % RUN) + "x" * (255 - 1 - len(RUN))
    assert len(ok) == 255
    assert call("PUT", "/collections/" + ok, VEC)[0] == 200
    assert call("DELETE", "/collections/" + ok)[1]["result"] is True
    for method, path in (("GET", "/collections/%s"), ("DELETE", "/collections/%s"),
                         ("GET", "/collections/%s/exists")):
        assert call(method, path % ("y" * 256))[0] == 422


@pytest.mark.parametrize("body,status", [
    ({"vectors": {"size": 4, "distance": "Dot"}, "hnsw_config": {"ef_construct": 1}}, 422),
    ({"vectors": {"size": 0, "distance": "Dot"}}, 422),
    ({"vectors": {"size": 4, "distance": "Dot"}, "shard_number": 0}, 422),
    ({"vectors": {"size": 4}}, 400),                     # missing required field
    ({"vectors": {"size": 4, "distance": "Foo"}}, 400),  # unknown enum value
    ({"vectors": {"size": "four", "distance": "Dot"}}, 400),  # wrong type
    ([], 400),
])
def test_body_not_matching_spec_is_refused(body, status):
    st, doc = call("PUT", "/collections/" + name("body"), body)
    assert st == status, doc
    assert "error" in doc["status"]
    assert call("GET", "/collections/%s/exists" % name("body"))[1]["result"] == {"exists": False}


def test_malformed_json_and_content_type_are_400():
    assert call("PUT", "/collections/" + name("m"), raw=b"{bad")[0] == 400
    assert call("PUT", "/collections/" + name("m"), raw=b"")[0] == 400
    assert call("PUT", "/collections/" + name("m"), raw=b"{}", content_type="text/plain")[0] == 400


def test_query_validation():
    assert call("PUT", "/collections/%s?timeout=0" % name("q"), VEC)[0] == 422
    assert call("PUT", "/collections/%s?timeout=abc" % name("q"), VEC)[0] == 400
    st, doc = call("PUT", "/collections/%s?timeout=5" % name("q"), VEC)
    assert (st, doc["result"]) == (200, True)
    assert call("DELETE", "/collections/%s?timeout=5" % name("q"))[1]["result"] is True


def test_named_vectors_and_config_echo():
    c = name("named")
    body = {"vectors": {"text": {"size": 8, "distance": "Cosine"}, "image": {"size": 3, "distance": "Euclid"}},
            "hnsw_config": {"m": 32}, "optimizers_config": {"indexing_threshold": 0}}
    assert call("PUT", "/collections/" + c, body)[0] == 200
    info = call("GET", "/collections/" + c)[1]["result"]
    assert info["config"]["params"]["vectors"] == body["vectors"]
    assert info["config"]["hnsw_config"]["m"] == 32
    assert info["config"]["optimizer_config"]["indexing_threshold"] == 0
    call("DELETE", "/collections/" + c)


def test_metadata_is_stored_and_returned():
    # v1.19: CreateCollection.metadata comes back as CollectionConfig.metadata;
    # Landlord marks its collections with it.
    c = name("meta")
    body = dict(VEC, metadata={"landlord_tenant": "0190c0de-0000-7000-8000-000000000001"})
    assert call("PUT", "/collections/" + c, body)[0] == 200
    info = call("GET", "/collections/" + c)[1]["result"]
    assert info["config"]["metadata"] == body["metadata"]
    call("DELETE", "/collections/" + c)
    plain = name("nometa")
    assert call("PUT", "/collections/" + plain, VEC)[0] == 200
    info = call("GET", "/collections/" + plain)[1]["result"]
    assert not info["config"].get("metadata")
    call("DELETE", "/collections/" + plain)


def test_tenant_index_points_and_delete_by_filter():
    # Qdrant's multitenancy: one collection, a keyword payload index marked
    # is_tenant, each tenant's points found and deleted by a filter on it.
    c = name("shared")
    assert call("PUT", "/collections/" + c, VEC)[0] == 200
    st, doc = call("PUT", "/collections/%s/index?wait=true" % c,
                   {"field_name": "tenant_id", "field_schema": {"type": "keyword", "is_tenant": True}})
    assert (st, doc["result"]["status"]) == (200, "completed")
    info = call("GET", "/collections/" + c)[1]["result"]
    assert info["payload_schema"]["tenant_id"]["params"] == {"type": "keyword", "is_tenant": True}
    vec = [0.1] * VEC["vectors"]["size"]
    points = [{"id": i, "vector": vec, "payload": {"tenant_id": t}}
              for i, t in [(1, "a"), (2, "a"), (3, "b")]]
    assert call("PUT", "/collections/%s/points?wait=true" % c, {"points": points})[0] == 200

    def count(tenant):
        flt = {"must": [{"key": "tenant_id", "match": {"value": tenant}}]}
        return call("POST", "/collections/%s/points/count" % c, {"filter": flt, "exact": True})[1]["result"]["count"]

    assert (count("a"), count("b"), count("c")) == (2, 1, 0)
    assert call("POST", "/collections/%s/points/count" % c, {})[1]["result"]["count"] == 3
    scrolled = call("POST", "/collections/%s/points/scroll" % c,
                    {"filter": {"must": [{"key": "tenant_id", "match": {"value": "b"}}]}, "limit": 10})
    assert [p["id"] for p in scrolled[1]["result"]["points"]] == [3]
    st, _ = call("POST", "/collections/%s/points/delete?wait=true" % c,
                 {"filter": {"must": [{"key": "tenant_id", "match": {"value": "a"}}]}})
    assert st == 200
    assert (count("a"), count("b")) == (0, 1)
    assert call("POST", "/collections/%s/points/delete" % c, {"points": [3]})[0] == 200
    assert count("b") == 0
    assert call("POST", "/collections/%s/points/count" % name("absent"), {})[0] == 404
    assert call("PUT", "/collections/%s/index" % c, {"field_schema": "keyword"})[0] == 400
    call("DELETE", "/collections/" + c)
