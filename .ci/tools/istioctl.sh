#!/usr/bin/env bash
# Build the pinned istioctl into ~/.cache/lab/ unless it is already there, cache the CRD
# schemas the GitOps tests validate against, and print istioctl's path (last line).
#
# istioctl: Istio tags its releases without the "v" Go wants (1.30.0), so the Go module
# proxy serves its commits only as pseudo-versions and `go install ...@1.30.0` fails. We
# download the module source of a commit on the release-1.30 branch and build istioctl
# from a writable copy of it. That commit requires pre-release pseudo-versions of
# istio.io/api, istio.io/client-go and envoy's go-control-plane that the proxy does not
# serve, so we pin the nearest served versions of the same release lines first.
# Cold: ~15-25 min on 2 busy cores (~700 packages); warm: instant.
#
# CRD schemas (into ~/.cache/lab/crds/, read by tests/support/manifest_checks.py):
#   Istio:   crd-all.gen.yaml from the same Istio module;
#   Argo CD: manifests/crds/ from github.com/argoproj/argo-cd/v3. Argo CD v3.6 declares
#            `go 1.27`, which a Go 1.26 toolchain refuses to extract; the checksum-verified
#            zip is downloaded all the same, so we read the two CRDs straight from it.
# They live here rather than in a script of their own because .ci/run exports one
# LAB_<SCRIPT> variable per script, and lab's config refuses unknown LAB_ variables.
#
# Usage: bash .ci/tools/istioctl.sh     (prints the binary's path on stdout, logs on stderr)
set -euo pipefail

# The Istio module commit, its version label and dependency pins are shared with the
# kind tier's istiod build: one definition, in kind/versions.sh. (The module version is
# also ISTIO_MODULE_VERSION in tests/support/manifest_checks.py; keep them in step.)
# shellcheck source=kind/versions.sh
source "$(dirname "${BASH_SOURCE[0]}")/kind/versions.sh"

cache="$HOME/.cache/lab"
dest="$cache/istioctl-$ISTIO_MODULE_VERSION"
binary="$dest/istioctl"
crds="$cache/crds"

command -v go >/dev/null || { echo "istioctl.sh: go is not installed (need Go >= 1.25)" >&2; exit 1; }

# `go mod download -json` prints one JSON object; take a string field from it.
field() { sed -n "s/^[[:space:]]*\"$1\": \"\(.*\)\",\{0,1\}\$/\1/p"; }

istio_module_dir() {
  (cd /tmp && go mod download -json "istio.io/istio@$ISTIO_MODULE_VERSION") | field Dir
}

# --- CRD schemas -------------------------------------------------------------------
istio_crds="$crds/istio-$ISTIO_MODULE_VERSION/crd-all.gen.yaml"
if [[ ! -s "$istio_crds" ]]; then
  echo "istioctl.sh: caching Istio's CRDs from istio.io/istio@$ISTIO_MODULE_VERSION" >&2
  module_dir="$(istio_module_dir)"
  mkdir -p "$(dirname "$istio_crds")"
  cp "$module_dir/manifests/charts/base/files/crd-all.gen.yaml" "$istio_crds.tmp"
  chmod u+w "$istio_crds.tmp"
  mv "$istio_crds.tmp" "$istio_crds"
fi

argocd_crds="$crds/argocd-$ARGOCD_VERSION"
if [[ ! -s "$argocd_crds/application-crd.yaml" || ! -s "$argocd_crds/appproject-crd.yaml" ]]; then
  echo "istioctl.sh: caching Argo CD's CRDs from github.com/argoproj/argo-cd/v3@$ARGOCD_VERSION" >&2
  # Exits non-zero on the `go` directive (see above) but still reports the verified zip.
  zip="$( (cd /tmp && go mod download -json "github.com/argoproj/argo-cd/v3@$ARGOCD_VERSION" || true) | field Zip)"
  [[ -s "$zip" ]] || { echo "istioctl.sh: no module zip for argo-cd $ARGOCD_VERSION" >&2; exit 1; }
  mkdir -p "$argocd_crds"
  python3 - "$zip" "$argocd_crds" "github.com/argoproj/argo-cd/v3@$ARGOCD_VERSION/manifests/crds/" <<'PY'
import pathlib, sys, zipfile
archive, dest, prefix = sys.argv[1], pathlib.Path(sys.argv[2]), sys.argv[3]
with zipfile.ZipFile(archive) as zf:
    for name in ("application-crd.yaml", "appproject-crd.yaml"):
        (dest / (name + ".tmp")).write_bytes(zf.read(prefix + name))
        (dest / (name + ".tmp")).rename(dest / name)
PY
fi

# --- istioctl ----------------------------------------------------------------------
if [[ ! -x "$binary" || "$(cat "$dest/.label" 2>/dev/null)" != "$ISTIO_VERSION_LABEL" ]]; then
  echo "istioctl.sh: building istioctl from istio.io/istio@$ISTIO_MODULE_VERSION (slow when cold)" >&2
  module_dir="$(istio_module_dir)"
  [[ -d "$module_dir" ]] || { echo "istioctl.sh: module download gave no directory" >&2; exit 1; }
  work="$(mktemp -d)"
  trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
  cp -R "$module_dir/." "$work/"
  chmod -R u+w "$work"
  for pin in "${ISTIO_DEP_PINS[@]}"; do
    (cd "$work" && go mod edit -require="$pin")
  done
  mkdir -p "$dest"
  pkg=istio.io/istio/pkg/version
  (
    cd "$work"
    CGO_ENABLED=0 GOFLAGS="${GOFLAGS:-} -mod=mod" go build -trimpath -o "$binary.tmp" \
      -ldflags "-s -w -X $pkg.buildVersion=$ISTIO_VERSION_LABEL -X $pkg.buildGitRevision=${ISTIO_MODULE_VERSION##*-} -X $pkg.buildStatus=Clean -X $pkg.buildTag=$ISTIO_VERSION_LABEL" \
      ./istioctl/cmd/istioctl
  )
  mv "$binary.tmp" "$binary"
  echo "$ISTIO_VERSION_LABEL" >"$dest/.label"
fi

echo "$binary"
