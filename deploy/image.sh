#!/usr/bin/env bash
# The container image: the landlord binary, the few libraries it links
# (glibc, libm, libgcc_s and the loader, from this machine's Debian), a
# non-root user and nothing else; built with buildah from scratch, so it
# needs no registry.
#
#   deploy/image.sh install          podman, buildah and runc from Debian's packages
#   deploy/image.sh build [BINARY]   build localhost/landlord:<version> (and :latest)
#                                    from BINARY (default: a release build)
#   deploy/image.sh run-flags        the podman run flags these machines need
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGE=${LANDLORD_IMAGE:-localhost/landlord}

install() {
  local missing=()
  for tool in podman buildah runc; do
    command -v "$tool" >/dev/null || missing+=("$tool")
  done
  [ ${#missing[@]} -eq 0 ] && return
  echo "installing ${missing[*]} (Debian packages)" >&2
  local pkgs=(podman buildah runc uidmap fuse-overlayfs slirp4netns)
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends "${pkgs[@]}" >&2 \
    || { apt-get update >&2 && apt-get install -y --no-install-recommends "${pkgs[@]}" >&2; }
}

# runc: crun refuses this kernel's hybrid cgroup layout. Limits at or under
# the hard ones here: podman's defaults ask for more and are refused.
run_flags() {
  echo "--runtime runc --cgroup-manager=cgroupfs --network host" \
       "--ulimit nofile=$(ulimit -Hn):$(ulimit -Hn) --ulimit nproc=4096:4096"
}

build() {
  local bin=${1:-}
  if [ -z "$bin" ]; then
    cargo build --release --locked -p landlord >&2
    bin=target/release/landlord
  fi
  local version; version=$("$bin" --version | awk '{print $2}')
  local root; root=$(mktemp -d)
  trap 'rm -rf "$root"' RETURN
  mkdir -p "$root/usr/local/bin" "$root/etc" "$root/tmp" "$root/home/landlord"
  chmod 1777 "$root/tmp"
  cp "$bin" "$root/usr/local/bin/landlord"
  strip "$root/usr/local/bin/landlord" 2>/dev/null || true
  # The loader and every library the binary links, where it looks for them.
  for lib in $(ldd "$bin" | grep -o '/[^ ]*'); do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
  # The system's CA roots: reqwest's rustls verifier reads them (no roots
  # are compiled in), for https Keycloak, JWKS, S3, executors, webhooks.
  mkdir -p "$root/etc/ssl/certs"
  cp -L /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
  echo "landlord:x:10001:10001:landlord:/home/landlord:/nonexistent" > "$root/etc/passwd"
  echo "landlord:x:10001:" > "$root/etc/group"
  chown 10001:10001 "$root/home/landlord"
  local c; c=$(buildah from scratch)
  buildah copy "$c" "$root" / >/dev/null
  buildah config --user 10001:10001 --workingdir /home/landlord \
    --env LANDLORD_HOME=/home/landlord --entrypoint '["/usr/local/bin/landlord"]' \
    --cmd '["--help"]' \
    --label "org.opencontainers.image.title=landlord" \
    --label "org.opencontainers.image.version=$version" \
    --label "org.opencontainers.image.licenses=Apache-2.0" "$c"
  buildah commit --quiet "$c" "$IMAGE:$version" >/dev/null
  buildah rm "$c" >/dev/null
  buildah tag "$IMAGE:$version" "$IMAGE:latest"
  echo "$IMAGE:$version"
}

case "${1:-}" in
  install) install ;;
  build) shift; install; build "${1:-}" ;;
  run-flags) run_flags ;;
  *) echo "usage: $0 install | build [BINARY] | run-flags" >&2; exit 2 ;;
esac
