#!/usr/bin/env bash
# Cargo tools CI's gates use, built from crates.io once and cached.
#
#   deploy/cargo-tools.sh install     build what is missing
#   deploy/cargo-tools.sh machete     cargo machete (unused dependencies)
#   deploy/cargo-tools.sh deny        cargo deny check (advisories, licenses, bans, sources)
#
# LANDLORD_CACHE (default ~/.cache/landlord): tools live in
#   $LANDLORD_CACHE/cargo-tools/bin.
#
# Advisories: the RustSec database is a GitHub repository and these
# machines reach no GitHub, so cargo deny runs --offline against a snapshot
# kept in deploy/advisory-db/ (its date in SNAPSHOT). It is put where cargo
# deny looks (~/.cargo/advisory-dbs) unless a database fetched for real is
# already there, which is then used as it is.
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

# cargo deny names a database's directory after a hash of its URL (the
# default URL, https://github.com/rustsec/advisory-db).
ADVISORY_DB=${CARGO_HOME:-$HOME/.cargo}/advisory-dbs/advisory-db-3157b0e258782691

advisory_db() {
  local snapshot commit date
  snapshot=deploy/advisory-db
  commit=$(awk '$1 == "commit" {print $2}' "$snapshot/SNAPSHOT")
  date=$(awk '$1 == "date" {print $2}' "$snapshot/SNAPSHOT")
  if [ -d "$ADVISORY_DB/.git" ] && [ ! -f "$ADVISORY_DB/.landlord-snapshot" ]; then
    echo "advisories: the database fetched at $ADVISORY_DB" >&2
    return
  fi
  if [ "$(cat "$ADVISORY_DB/.landlord-snapshot" 2>/dev/null)" != "$commit" ]; then
    rm -rf "$ADVISORY_DB"
    mkdir -p "$ADVISORY_DB"
    tar -xzf "$snapshot/crates.tar.gz" -C "$ADVISORY_DB"
    # cargo deny reads the database's age from git.
    git -C "$ADVISORY_DB" init -q
    git -C "$ADVISORY_DB" add crates
    GIT_AUTHOR_DATE=$date GIT_COMMITTER_DATE=$date git -C "$ADVISORY_DB" \
      -c user.name=landlord -c user.email=landlord@localhost \
      commit -q -m "rustsec/advisory-db $commit"
    echo "$commit" > "$ADVISORY_DB/.landlord-snapshot"
  fi
  echo "advisories: rustsec/advisory-db snapshot $commit of $date" >&2
}

case "${1:-}" in
  install) install ;;
  machete) install; exec "$root/bin/cargo-machete" ;;
  deny) install; advisory_db; exec "$root/bin/cargo-deny" --offline check ;;
  *) echo "usage: $0 install | machete | deny" >&2; exit 2 ;;
esac
