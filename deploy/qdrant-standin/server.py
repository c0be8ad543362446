#!/usr/bin/env python3
"""A tiny in-memory stand-in for the Qdrant v1.19 REST API (collections only).

Implements exactly:
  GET    /collections                          list
  PUT    /collections/{collection_name}        create
  GET    /collections/{collection_name}        info
  DELETE /collections/{collection_name}        delete
  GET    /collections/{collection_name}/exists exists

Every request is validated (path, query, JSON body) against Qdrant's OpenAPI
document with openapi-core; on top of that the collection-name rules that
Qdrant enforces in code (not expressible in the spec) are applied.

Status codes follow Qdrant (actix-web-validator + serde):
  200  success, envelope {"result": ..., "status": "ok", "time": <float>}
  404  GET info of a missing collection ("Not found: Collection `x` doesn't exist!")
  409  PUT of an existing collection ("Wrong input: Collection `x` already exists!")
  422  a *validation* error: bad collection name (length 1..255 chars; on create
       also none of < > : " / \\ | ? * NUL 0x1F), a query or body value out of
       its range/length bounds (e.g. timeout=0, hnsw_config.ef_construct=1)
  400  a *deserialization* error: malformed JSON, missing/wrong content type,
       wrong JSON types, unknown enum values, missing required fields
       (e.g. timeout=abc, "distance": "Foo", "size": "x")
Errors use Qdrant's envelope {"status": {"error": "..."}, "time": <float>}.
Setting QDRANT_STANDIN_BODY_ERRORS=422 makes every body/query mismatch a 422.

Usage: server.py [--host 127.0.0.1] [--port 16333] [--spec PATH]
"""

import argparse
import copy
import json
import os
import re
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from openapi_core.validation.request.exceptions import (
    InvalidRequestBody,
    MissingRequestBodyError,
    ParameterValidationError,
)
from openapi_core.validation.schemas.exceptions import InvalidSchemaValue
from werkzeug.datastructures import Headers, ImmutableMultiDict

HERE = os.path.dirname(os.path.abspath(__file__))
SPEC_NAME = "qdrant-openapi-v1.19.json"

# jsonschema keywords whose failure Qdrant reports as a `validator` error
# (422); everything else (type, enum, required, anyOf, ...) fails in serde
# before validation and is a 400.
RANGE_KEYWORDS = {
    "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
    "minLength", "maxLength", "minItems", "maxItems",
    "minProperties", "maxProperties", "pattern", "multipleOf", "uniqueItems",
}
INVALID_NAME_CHARS = ['<', '>', ':', '"', '/', '\\', '|', '?', '*', '\0', '\x1f']
MAX_NAME_CHARS = 255

DEFAULT_HNSW = {"m": 16, "ef_construct": 100, "full_scan_threshold": 10000,
                "max_indexing_threads": 0, "on_disk": False}
DEFAULT_OPTIMIZER = {"deleted_threshold": 0.2, "vacuum_min_vector_number": 1000,
                     "default_segment_number": 0, "max_segment_size": None,
                     "memmap_threshold": None, "indexing_threshold": 10000,
                     "flush_interval_sec": 5, "max_optimization_threads": None}
DEFAULT_WAL = {"wal_capacity_mb": 32, "wal_segments_ahead": 0, "wal_retain_closed": 1}


def find_spec(explicit=None):
    """The spec: --spec / QDRANT_OPENAPI_SPEC, else the copy beside this file,
    else <repo>/../shared/specs/ (where CI puts shared/)."""
    candidates = [explicit, os.environ.get("QDRANT_OPENAPI_SPEC"),
                  os.path.join(HERE, SPEC_NAME),
                  os.path.join(HERE, "..", "..", "..", "shared", "specs", SPEC_NAME)]
    for c in candidates:
        if c and os.path.isfile(c):
            return os.path.abspath(c)
    sys.exit("qdrant stand-in: OpenAPI spec not found (tried %s)" % [c for c in candidates if c])


class ApiError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


class _Request:
    """The openapi_core Request protocol over a parsed HTTP request."""

    def __init__(self, host_url, method, path, query, headers, body, content_type, path_params):
        self.host_url = host_url
        self.method = method.lower()
        self.path = path
        self.body = body
        self.content_type = content_type
        self.parameters = RequestParameters(
            path=path_params,
            query=ImmutableMultiDict(query),
            header=Headers(list(headers.items())),
            cookie=ImmutableMultiDict(),
        )


def _leaf(err):
    """The most specific jsonschema error of a failed anyOf/oneOf: the branch
    that failed with the fewest errors (it matched best), its deepest error."""
    while err.context:
        branches = {}
        for e in err.context:
            branches.setdefault(e.relative_schema_path[0], []).append(e)
        best = min(branches.values(), key=lambda es: (len(es), -max(len(e.absolute_path) for e in es)))
        err = max(best, key=lambda e: len(e.absolute_path))
    return err


def _normalize_nullable(node):
    """schemars writes `Option<T>` as `anyOf: [T, {"nullable": true}]`. In OAS
    3.0 a bare `{"nullable": true}` has no type, so it accepts ANY value and
    would switch off validation of every optional field (e.g. hnsw_config).
    Read it as intended, "T or null": the bare branch becomes `enum: [null]`."""
    if isinstance(node, dict):
        for key in ("anyOf", "oneOf"):
            if isinstance(node.get(key), list):
                node[key] = [
                    {"enum": [None]}
                    if isinstance(b, dict) and b.get("nullable") is True
                    and set(b) <= {"nullable", "description", "default"} else b
                    for b in node[key]
                ]
        for v in node.values():
            _normalize_nullable(v)
    elif isinstance(node, list):
        for v in node:
            _normalize_nullable(v)
    return node


def load_openapi(spec_path):
    with open(spec_path, encoding="utf-8") as f:
        spec = _normalize_nullable(json.load(f))
    # The document is Qdrant's own: skip re-validating 500 kB of spec at start.
    return OpenAPI.from_dict(spec, config=Config(spec_validator_cls=None))


def _describe(err):
    where = ".".join(str(p) for p in err.absolute_path) or "body"
    return "%s: %s" % (where, err.message)


class Store:
    def __init__(self):
        self.lock = threading.Lock()
        self.collections = {}  # name -> CollectionInfo dict
        self.points = {}  # name -> {point id: {"id", "vector", "payload"}}


def _merge(defaults, diff):
    out = dict(defaults)
    for k, v in (diff or {}).items():
        if v is not None:
            out[k] = v
    return out


def _strip_nulls(d):
    if isinstance(d, dict):
        return {k: _strip_nulls(v) for k, v in d.items() if v is not None}
    return d


def collection_info(body):
    vectors = body.get("vectors")
    if vectors is None:
        vectors = {}
    params = {
        "vectors": _strip_nulls(copy.deepcopy(vectors)),
        "shard_number": body.get("shard_number") or 1,
        "replication_factor": body.get("replication_factor") or 1,
        "write_consistency_factor": body.get("write_consistency_factor") or 1,
        "on_disk_payload": True if body.get("on_disk_payload") is None else body["on_disk_payload"],
    }
    if body.get("sharding_method") is not None:
        params["sharding_method"] = body["sharding_method"]
    if body.get("sparse_vectors") is not None:
        params["sparse_vectors"] = copy.deepcopy(body["sparse_vectors"])
    if body.get("payload") is not None:
        params["payload"] = copy.deepcopy(body["payload"])
    config = {
        "params": params,
        "hnsw_config": _merge(DEFAULT_HNSW, body.get("hnsw_config")),
        "optimizer_config": _merge(DEFAULT_OPTIMIZER, body.get("optimizers_config")),
        "wal_config": _merge(DEFAULT_WAL, body.get("wal_config")),
        "quantization_config": copy.deepcopy(body.get("quantization_config")),
        "strict_mode_config": _merge({"enabled": False}, body.get("strict_mode_config")),
    }
    if body.get("metadata") is not None:
        config["metadata"] = copy.deepcopy(body["metadata"])
    return {
        "status": "green",
        "optimizer_status": "ok",
        "indexed_vectors_count": 0,
        "points_count": 0,
        "segments_count": 0,
        "config": config,
        "payload_schema": {},
    }


class App:
    ROUTES = [
        (re.compile(r"^/collections$"), {"GET": "list"}),
        (re.compile(r"^/collections/([^/]+)$"), {"GET": "info", "PUT": "create", "DELETE": "delete"}),
        (re.compile(r"^/collections/([^/]+)/exists$"), {"GET": "exists"}),
        (re.compile(r"^/collections/([^/]+)/index$"), {"PUT": "create_index"}),
        (re.compile(r"^/collections/([^/]+)/points$"), {"PUT": "upsert"}),
        (re.compile(r"^/collections/([^/]+)/points/delete$"), {"POST": "delete_points"}),
        (re.compile(r"^/collections/([^/]+)/points/count$"), {"POST": "count"}),
        (re.compile(r"^/collections/([^/]+)/points/scroll$"), {"POST": "scroll"}),
    ]
    # Operations whose request has a JSON body (the others have none).
    BODY_OPS = {"create", "create_index", "upsert", "delete_points", "count", "scroll"}

    def __init__(self, spec_path, host_url, body_error_status=None):
        self.spec_path = spec_path
        self.openapi = load_openapi(spec_path)
        self.host_url = host_url
        self.store = Store()
        self.body_error_status = body_error_status

    # -- dispatch -------------------------------------------------------
    def handle(self, method, raw_path, headers, body):
        """Returns (status, payload or None)."""
        start = time.perf_counter()
        try:
            status, result = self._dispatch(method, raw_path, headers, body)
            return status, {"result": result, "status": "ok", "time": time.perf_counter() - start}
        except ApiError as e:
            if e.status in (404, 405) and e.message is None:
                return e.status, None
            return e.status, {"status": {"error": e.message}, "time": time.perf_counter() - start}
        except Exception as e:  # a bug in the stand-in: say so, keep serving
            import traceback
            traceback.print_exc()
            return 500, {"status": {"error": "Service internal error: %r" % e}, "time": time.perf_counter() - start}

    def _dispatch(self, method, raw_path, headers, body):
        parsed = urllib.parse.urlsplit(raw_path)
        path = parsed.path
        for rx, methods in self.ROUTES:
            m = rx.match(path)
            if not m:
                continue
            op = methods.get(method)
            if op is None:
                raise ApiError(405, None)
            name = None
            if m.groups():
                try:
                    name = urllib.parse.unquote(m.group(1), errors="strict")
                except UnicodeDecodeError as e:
                    raise ApiError(400, "Deserialize error in path parameters: %s" % e)
                self._validate_name(name, strict=(op == "create"))
            query = urllib.parse.parse_qsl(parsed.query, keep_blank_values=True)
            data = self._validate(method, path, query, headers, body, name, op)
            return getattr(self, "op_" + op)(name, data, dict(query))
        raise ApiError(404, None)

    # -- validation -----------------------------------------------------
    def _validate_name(self, name, strict):
        n = len(name)
        if n < 1 or n > MAX_NAME_CHARS:
            raise ApiError(422, "Validation error in path parameters: [name: value %s invalid, "
                                "length must be between 1 and %d]" % (json.dumps(name)[:80], MAX_NAME_CHARS))
        if strict:
            for c in INVALID_NAME_CHARS:
                if c in name:
                    raise ApiError(422, "Validation error in path parameters: [name: collection name "
                                        "cannot contain %s char]" % json.dumps(c))

    def _validate(self, method, path, query, headers, body, name, op):
        ctype = (headers.get("Content-Type") or "").lower()
        data = None
        if op in self.BODY_OPS:
            # actix Json<T>: content type first, then JSON syntax
            mime = ctype.split(";")[0].strip()
            if not (mime == "application/json" or mime.endswith("+json")):
                raise ApiError(400, "Content type error")
            try:
                data = json.loads(body.decode("utf-8") if body else "")
            except (ValueError, UnicodeDecodeError) as e:
                raise ApiError(400, "Format error in JSON body: %s" % e)
            body_for_spec = json.dumps(data).encode()
            ctype_for_spec = "application/json"
        else:
            body_for_spec, ctype_for_spec = None, ""
        req = _Request(self.host_url, method, path, query, headers, body_for_spec,
                       ctype_for_spec, {"collection_name": name} if name is not None else {})
        result = self.openapi.unmarshal_request(req)
        if not result.errors:
            return data
        # Path first, then body, then query (the order of the actix extractors).
        errs = sorted(result.errors, key=lambda e: 0 if isinstance(e, (InvalidRequestBody, MissingRequestBodyError)) else 1)
        raise self._map_error(errs[0])

    def _status(self, natural):
        return self.body_error_status or natural

    def _map_error(self, err):
        if isinstance(err, MissingRequestBodyError):
            return ApiError(self._status(400), "Format error in JSON body: EOF while parsing a value")
        if isinstance(err, InvalidRequestBody):
            cause = err.__cause__
            if isinstance(cause, InvalidSchemaValue) and cause.schema_errors:
                leaves = [_leaf(e) for e in cause.schema_errors]
                rng = [e for e in leaves if e.validator in RANGE_KEYWORDS]
                if rng and len(rng) == len(leaves):
                    return ApiError(self._status(422), "Validation error in JSON body: [%s]"
                                    % ", ".join(_describe(e) for e in rng))
                return ApiError(self._status(400), "Format error in JSON body: %s"
                                % "; ".join(_describe(e) for e in leaves))
            return ApiError(self._status(400), "Format error in JSON body: %s" % (cause or err))
        if isinstance(err, ParameterValidationError):
            cause = err.__cause__
            if isinstance(cause, InvalidSchemaValue):
                leaves = [_leaf(e) for e in cause.schema_errors]
                if leaves and all(e.validator in RANGE_KEYWORDS for e in leaves):
                    return ApiError(self._status(422), "Validation error in %s: [%s: %s]"
                                    % (err.location, err.name, "; ".join(e.message for e in leaves)))
                detail = "; ".join(e.message for e in leaves)
            else:
                detail = str(cause) if cause is not None else str(err)
            return ApiError(self._status(400), "Deserialize error in %s: %s: %s"
                            % (err.location, err.name, detail))
        return ApiError(self._status(400), str(err))

    # -- operations -----------------------------------------------------
    def op_list(self, _name, _data, _query):
        with self.store.lock:
            names = list(self.store.collections)
        return 200, {"collections": [{"name": n} for n in names]}

    def op_create(self, name, data, _query):
        with self.store.lock:
            if name in self.store.collections:
                raise ApiError(409, "Wrong input: Collection `%s` already exists!" % name)
            self.store.collections[name] = collection_info(data)
        return 200, True

    def op_info(self, name, _data, _query):
        with self.store.lock:
            info = self.store.collections.get(name)
            info = copy.deepcopy(info)
        if info is None:
            raise ApiError(404, "Not found: Collection `%s` doesn't exist!" % name)
        return 200, info

    def op_delete(self, name, _data, _query):
        with self.store.lock:
            existed = self.store.collections.pop(name, None) is not None
        return 200, existed

    def op_exists(self, name, _data, _query):
        with self.store.lock:
            exists = name in self.store.collections
        return 200, {"exists": exists}

    # -- payload indexes and points (the subset Landlord's shared mode and
    # its tests use: keyword indexes, upsert of a points list, delete by ids
    # or filter, count and scroll with a filter of match conditions) --------
    def _collection(self, name):
        info = self.store.collections.get(name)
        if info is None:
            raise ApiError(404, "Not found: Collection `%s` doesn't exist!" % name)
        return info

    def _updated(self):
        self.store.operation_id = getattr(self.store, "operation_id", 0) + 1
        return 200, {"operation_id": self.store.operation_id, "status": "completed"}

    def op_create_index(self, name, data, _query):
        schema = data.get("field_schema")
        if schema is None:
            raise ApiError(400, "Bad request: field_schema is required by this stand-in")
        params = schema if isinstance(schema, dict) else {"type": schema}
        with self.store.lock:
            info = self._collection(name)
            indexed = sum(1 for p in self.store.points.get(name, {}).values()
                          if data["field_name"] in (p.get("payload") or {}))
            info["payload_schema"][data["field_name"]] = {
                "data_type": params["type"],
                "params": _strip_nulls(copy.deepcopy(params)) if isinstance(schema, dict) else None,
                "points": indexed,
            }
            if not isinstance(schema, dict):
                del info["payload_schema"][data["field_name"]]["params"]
            return self._updated()

    def op_upsert(self, name, data, _query):
        if "points" not in data:
            raise ApiError(400, "Bad request: this stand-in takes a points list, not a batch")
        with self.store.lock:
            self._collection(name)
            points = self.store.points.setdefault(name, {})
            for p in data["points"]:
                points[json.dumps(p["id"])] = {
                    "id": p["id"], "vector": p["vector"], "payload": p.get("payload") or {}}
            self.store.collections[name]["points_count"] = len(points)
            return self._updated()

    def op_delete_points(self, name, data, _query):
        with self.store.lock:
            self._collection(name)
            points = self.store.points.setdefault(name, {})
            if "filter" in data:
                doomed = [k for k, p in points.items() if matches(data["filter"], p)]
            else:
                doomed = [json.dumps(i) for i in data["points"]]
            for k in doomed:
                points.pop(k, None)
            self.store.collections[name]["points_count"] = len(points)
            return self._updated()

    def _selected(self, name, data):
        flt = (data or {}).get("filter")
        with self.store.lock:
            self._collection(name)
            points = list(self.store.points.get(name, {}).values())
        return [p for p in points if flt is None or matches(flt, p)]

    def op_count(self, name, data, _query):
        return 200, {"count": len(self._selected(name, data))}

    def op_scroll(self, name, data, _query):
        limit = (data or {}).get("limit") or 10
        found = self._selected(name, data)[:limit]
        with_payload = (data or {}).get("with_payload", True)
        out = [{"id": p["id"], "payload": p["payload"] if with_payload else None} for p in found]
        return 200, {"points": out, "next_page_offset": None}


def matches(flt, point):
    """Qdrant's Filter for `match: {value}` conditions on top-level payload
    keys and `has_id`; anything else is refused rather than guessed."""
    def cond(c):
        if "has_id" in c:
            return point["id"] in c["has_id"]
        if "must" in c or "should" in c or "must_not" in c:
            return matches(c, point)
        if "key" in c and isinstance(c.get("match"), dict) and "value" in c["match"]:
            return (point.get("payload") or {}).get(c["key"]) == c["match"]["value"]
        raise ApiError(400, "Bad request: this stand-in supports match-value and has_id conditions only")
    def listed(v):
        return [] if v is None else (v if isinstance(v, list) else [v])
    must, should, must_not = (listed(flt.get(k)) for k in ("must", "should", "must_not"))
    return (all(cond(c) for c in must)
            and (not should or any(cond(c) for c in should))
            and not any(cond(c) for c in must_not))


def make_handler(app):
    class Handler(BaseHTTPRequestHandler):
        server_version = "qdrant-standin"
        protocol_version = "HTTP/1.1"

        def _serve(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length > 0 else b""
            status, payload = app.handle(self.command, self.path, self.headers, body)
            out = b"" if payload is None else json.dumps(payload).encode()
            self.send_response(status)
            if payload is not None:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(out)

        do_GET = do_PUT = do_DELETE = do_POST = do_PATCH = do_HEAD = _serve

        def log_message(self, fmt, *args):
            sys.stderr.write("%s %s\n" % (self.log_date_time_string(), fmt % args))

    return Handler


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=16333)
    ap.add_argument("--spec", default=None)
    args = ap.parse_args()
    spec = find_spec(args.spec)
    forced = os.environ.get("QDRANT_STANDIN_BODY_ERRORS")
    app = App(spec, "http://%s:%d" % (args.host, args.port), int(forced) if forced else None)
    httpd = ThreadingHTTPServer((args.host, args.port), make_handler(app))
    httpd.daemon_threads = True
    sys.stderr.write("qdrant stand-in listening on %s:%d (spec %s)\n" % (args.host, args.port, spec))
    sys.stderr.flush()
    httpd.serve_forever()


if __name__ == "__main__":
    main()
