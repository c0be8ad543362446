#!/usr/bin/env bash
# Tools for the console's end-to-end test and the API fuzz run: Debian's
# `chromium` and a Python venv with Playwright (driving that chromium; no
# browser download) and schemathesis.
#
#   deploy/browser.sh install   install what is missing (cached, idempotent)
#   deploy/browser.sh env       print the exports the tests read
#
# LANDLORD_CACHE (default ~/.cache/landlord): the venv lives in
#   $LANDLORD_CACHE/browser-venv, apart from deploy/stack.sh's venv so the two
#   pin sets never fight.
set -euo pipefail

# --- pinned versions (PyPI) ---------------------------------------------------
PLAYWRIGHT_VERSION=1.65.2
SCHEMATHESIS_VERSION=4.32.5
PY_CONSTRAINTS='
anyio==4.16.0
certifi==2026.10.19.post1
charset-normalizer==3.5.3
click==8.5.1
graphql-core==3.3.2
greenlet==3.5.6
harfile==0.6.0
hypothesis==6.170.17
hypothesis-graphql==0.13.5
idna==3.20
iniconfig==2.3.1
jsonschema_rs==0.60.3
markdown-it-py==4.3.0
MarkupSafe==3.0.4
mdurl==0.1.2
packaging==26.4
pluggy==1.7.0
Pygments==2.21.0
pyrate-limiter==4.5.1
pytest==9.2.0
PyYAML==6.0.4
requests==2.34.2
rich==15.0.0
sortedcontainers==2.4.0
typing_extensions==4.16.0
urllib3==2.8.0
Werkzeug==3.1.9
'

cache=${LANDLORD_CACHE:-$HOME/.cache/landlord}
venv=$cache/browser-venv
py=$venv/bin/python

log() { echo "browser: $*" >&2; }

apt_install() {
  local sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  log "installing $* from the distro's packages ..."
  $sudo apt-get update -qq
  # Recommends would pull in printing and desktop services a headless
  # browser never uses.
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

chromium_bin() { command -v chromium || command -v chromium-browser || true; }

ensure_chromium() {
  [ -n "$(chromium_bin)" ] && return
  apt_install chromium
  [ -n "$(chromium_bin)" ] || { log "error: chromium is not on PATH after installing"; exit 1; }
}

ensure_venv() {
  local want="playwright==$PLAYWRIGHT_VERSION schemathesis==$SCHEMATHESIS_VERSION"
  local stamp=$venv/.landlord-requirements
  local sum; sum=$(printf '%s' "$want$PY_CONSTRAINTS" | sha256sum | cut -c1-64)
  if [ -x "$py" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$sum" ]; then return; fi
  log "installing the Python venv into $venv ..."
  mkdir -p "$cache"
  if [ ! -x "$py" ]; then
    if ! python3 -m venv "$venv" >/dev/null 2>&1; then
      # Debian's python3 ships venv support separately.
      rm -rf "$venv"
      apt_install python3-venv
      python3 -m venv "$venv"
    fi
  fi
  printf '%s\n' "$PY_CONSTRAINTS" > "$cache/browser-constraints.txt"
  # shellcheck disable=SC2086
  "$py" -m pip install -q --disable-pip-version-check \
    -c "$cache/browser-constraints.txt" $want
  echo "$sum" > "$stamp"
}

case "${1:-}" in
  install)
    ensure_chromium
    ensure_venv
    ;;
  env)
    echo "export LANDLORD_CHROMIUM=$(chromium_bin)"
    echo "export LANDLORD_BROWSER_PYTHON=$py"
    echo "export LANDLORD_SCHEMATHESIS=$venv/bin/schemathesis"
    ;;
  *)
    echo "usage: $0 install|env" >&2
    exit 2
    ;;
esac
