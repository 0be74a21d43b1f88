#!/usr/bin/env bash
# Install the docker buildx CLI plugin (BuildKit builds) when the docker CLI lacks it.
#
# Docker Desktop and docker-ce ship buildx; Debian 12's docker.io does not. This builds
# the pinned release from its Go module (cold: about 6 minutes on 2 cores; cached in
# ~/.cache/lab/buildx-<version>/, keyed by version) and links it into
# ~/.docker/cli-plugins/, where the docker CLI looks for plugins.
#
# Usage: bash scripts/buildx.sh    (`make buildx`; does nothing when `docker buildx` works)
set -euo pipefail

BUILDX_VERSION="v0.38.2"               # lab/config.py buildx_version

# lab needs 0.13 or newer (--progress=rawjson); an unstamped build says v0.0.0.
if found=$(docker buildx version 2>/dev/null) \
  && [[ "$found" =~ v?([0-9]+)\.([0-9]+) ]] \
  && (( BASH_REMATCH[1] > 0 || BASH_REMATCH[2] >= 13 )); then
  echo "buildx.sh: $found"
  exit 0
fi

cache="$HOME/.cache/lab/buildx-$BUILDX_VERSION"
binary="$cache/docker-buildx"
if [[ ! -x "$binary" ]]; then
  command -v go >/dev/null || {
    echo "buildx.sh: docker buildx is missing and Go is not installed to build it;" \
      "install your distribution's docker-buildx package instead" >&2
    exit 1
  }
  echo "buildx.sh: building github.com/docker/buildx@$BUILDX_VERSION (once, about 6 min on 2 cores)" >&2
  mkdir -p "$cache"
  started=$SECONDS
  (cd /tmp && CGO_ENABLED=0 GOBIN="$cache" go install -trimpath \
    -ldflags "-s -w -X github.com/docker/buildx/version.Version=$BUILDX_VERSION" \
    "github.com/docker/buildx/cmd/buildx@$BUILDX_VERSION")
  mv "$cache/buildx" "$binary"
  echo "buildx.sh: built in $((SECONDS - started))s" >&2
fi
plugins="${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins"
mkdir -p "$plugins"
ln -sf "$binary" "$plugins/docker-buildx"
echo "buildx.sh: $(docker buildx version)"
