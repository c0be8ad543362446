#!/usr/bin/env bash
# Checks of the deployment files with the tools these machines can install:
# Helm (built from the Go module proxy, cached) for the chart, Debian's
# docker-compose for the compose file. Nothing here reaches a cluster or a
# container registry.
#
#   deploy/charts.sh install    helm and docker-compose, if missing
#   deploy/charts.sh helm ARGS  run the cached helm
#   deploy/charts.sh compose-config   docker-compose config of deploy/compose
#
# LANDLORD_CACHE (default ~/.cache/landlord): helm lives in
#   $LANDLORD_CACHE/helm/$HELM_VERSION/helm.
set -euo pipefail
cd "$(dirname "$0")/.."
HELM_VERSION=v3.21.4
cache=${LANDLORD_CACHE:-$HOME/.cache/landlord}
helm_bin=$cache/helm/$HELM_VERSION/helm

install() {
  if [ ! -x "$helm_bin" ]; then
    echo "building helm $HELM_VERSION from the Go module proxy (a few minutes, once)" >&2
    GOBIN=$(dirname "$helm_bin") go install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >&2
  fi
  if ! command -v docker-compose >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends docker-compose >&2 \
      || { apt-get update >&2 && apt-get install -y --no-install-recommends docker-compose >&2; }
  fi
}

case "${1:-}" in
  install) install ;;
  helm) shift; exec "$helm_bin" "$@" ;;
  compose-config)
    cd deploy/compose
    KEYCLOAK_ADMIN_PASSWORD=${KEYCLOAK_ADMIN_PASSWORD:-check} exec docker-compose -f compose.yaml config ;;
  *) echo "usage: $0 install | helm ARGS | compose-config" >&2; exit 2 ;;
esac
