#!/usr/bin/env bash
# Cargo tools CI's gates use, built from crates.io once and cached.
#
#   deploy/cargo-tools.sh install     build what is missing
#   deploy/cargo-tools.sh machete     cargo machete (unused dependencies)
#
# LANDLORD_CACHE (default ~/.cache/landlord): tools live in
#   $LANDLORD_CACHE/cargo-tools/bin.
#
# cargo-deny is not among them yet: its advisory database is a GitHub
# repository, and these machines reach no GitHub.
set -euo pipefail
cd "$(dirname "$0")/.."
MACHETE_VERSION=0.9.2
root=${LANDLORD_CACHE:-$HOME/.cache/landlord}/cargo-tools

install() {
  if ! "$root/bin/cargo-machete" --version 2>/dev/null | grep -qx "$MACHETE_VERSION"; then
    echo "building cargo-machete $MACHETE_VERSION (once)" >&2
    cargo install cargo-machete --version "$MACHETE_VERSION" --locked --root "$root" >&2
  fi
}

case "${1:-}" in
  install) install ;;
  machete) install; exec "$root/bin/cargo-machete" ;;
  *) echo "usage: $0 install | machete" >&2; exit 2 ;;
esac
