#!/usr/bin/env bash
# Build the pinned istioctl into ~/.cache/lab/ unless it is already there; print its path.
#
# Istio tags its releases without a leading "v" (1.30.0), so the Go module proxy only
# serves its commits as pseudo-versions, and `go install istio.io/istio/...@1.30.0` fails.
# We download the module source of a commit on the release-1.30 branch and build istioctl
# from a writable copy of it. Cold: ~10-20 min on 2 cores (hundreds of dependencies);
# warm: instant.
#
# That commit requires pre-release pseudo-versions of istio.io/api, istio.io/client-go and
# envoy's go-control-plane that the module proxy does not serve, so we pin the nearest
# served versions of the same release lines (ISTIO_DEP_PINS) before building.
#
# Usage: bash .ci/tools/istioctl.sh     (prints the binary's path on stdout, logs on stderr)
set -euo pipefail

# A commit on Istio's release-1.30 branch (Makefile.core.mk: BASE_VERSION 1.30-2026-08-26).
ISTIO_MODULE_VERSION="${ISTIO_MODULE_VERSION:-v0.0.0-20260826214018-9739e10eb9d7}"
ISTIO_VERSION_LABEL="${ISTIO_VERSION_LABEL:-1.30-dev+9739e10eb9d7}"
ISTIO_DEP_PINS=(
  istio.io/api@v1.30.8
  istio.io/client-go@v1.30.8
  github.com/envoyproxy/go-control-plane/envoy@v1.37.1-0.20260713214202-ca8ce173c36f
  github.com/envoyproxy/go-control-plane/contrib@v1.36.1-0.20260713214202-ca8ce173c36f
)

cache="${LAB_CACHE_DIR:-$HOME/.cache/lab}"
dest="$cache/istioctl-$ISTIO_MODULE_VERSION"
binary="$dest/istioctl"

if [[ -x "$binary" ]]; then
  echo "$binary"
  exit 0
fi

command -v go >/dev/null || { echo "istioctl.sh: go is not installed (need Go >= 1.25)" >&2; exit 1; }

echo "istioctl.sh: downloading istio.io/istio@$ISTIO_MODULE_VERSION" >&2
module_dir="$(cd /tmp && go mod download -json "istio.io/istio@$ISTIO_MODULE_VERSION" \
  | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
[[ -d "$module_dir" ]] || { echo "istioctl.sh: module download gave no directory" >&2; exit 1; }

work="$(mktemp -d)"
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
cp -R "$module_dir/." "$work/"
chmod -R u+w "$work"
for pin in "${ISTIO_DEP_PINS[@]}"; do
  (cd "$work" && go mod edit -require="$pin")
done

echo "istioctl.sh: building istioctl (slow when cold)" >&2
mkdir -p "$dest"
pkg=istio.io/istio/pkg/version
(
  cd "$work"
  CGO_ENABLED=0 GOFLAGS="${GOFLAGS:-} -mod=mod" go build -trimpath -o "$binary.tmp" \
    -ldflags "-s -w -X $pkg.buildVersion=$ISTIO_VERSION_LABEL -X $pkg.buildGitRevision=${ISTIO_MODULE_VERSION##*-} -X $pkg.buildStatus=Clean -X $pkg.buildTag=$ISTIO_VERSION_LABEL" \
    ./istioctl/cmd/istioctl
)
mv "$binary.tmp" "$binary"
echo "$binary"
