#!/usr/bin/env bash
# Cargo tools CI's gates use, built from crates.io once and cached.
#
#   deploy/cargo-tools.sh install     build what is missing
#   deploy/cargo-tools.sh machete     cargo machete (unused dependencies)
#   deploy/cargo-tools.sh deny        cargo deny check licenses bans sources
#
# LANDLORD_CACHE (default ~/.cache/landlord): tools live in
#   $LANDLORD_CACHE/cargo-tools/bin.
#
# cargo deny checks no advisories here: its advisory database is a GitHub
# repository, and these machines reach no GitHub (deny.toml says more).
set -euo pipefail
cd "$(dirname "$0")/.."
MACHETE_VERSION=0.9.2
DENY_VERSION=0.20.2
root=${LANDLORD_CACHE:-$HOME/.cache/landlord}/cargo-tools

install() {
  if ! "$root/bin/cargo-machete" --version 2>/dev/null | grep -qx "$MACHETE_VERSION"; then
    echo "building cargo-machete $MACHETE_VERSION (once)" >&2
    cargo install cargo-machete --version "$MACHETE_VERSION" --locked --root "$root" >&2
  fi
  if ! "$root/bin/cargo-deny" --version 2>/dev/null | grep -qx "cargo-deny $DENY_VERSION"; then
    echo "building cargo-deny $DENY_VERSION (once, a few minutes)" >&2
    cargo install cargo-deny --version "$DENY_VERSION" --locked --root "$root" >&2
  fi
}

case "${1:-}" in
  install) install ;;
  machete) install; exec "$root/bin/cargo-machete" ;;
  deny) install; exec "$root/bin/cargo-deny" check licenses bans sources ;;
  *) echo "usage: $0 install | machete | deny" >&2; exit 2 ;;
esac
