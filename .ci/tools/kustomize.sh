#!/usr/bin/env bash
# Build the pinned kustomize into ~/.cache/lab/ unless it is already there; print its path.
#
# The version matches lab/config.py (kustomize_version). Cold: ~2-4 min on 2 cores;
# warm: instant.
#
# Usage: bash .ci/tools/kustomize.sh    (prints the binary's path on stdout, logs on stderr)
set -euo pipefail

KUSTOMIZE_VERSION="v5.8.1"            # lab/config.py kustomize_version

cache="$HOME/.cache/lab"
dest="$cache/kustomize-$KUSTOMIZE_VERSION"
binary="$dest/kustomize"

if [[ -x "$binary" ]]; then
  echo "$binary"
  exit 0
fi

command -v go >/dev/null || { echo "kustomize.sh: go is not installed" >&2; exit 1; }

echo "kustomize.sh: building sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION" >&2
mkdir -p "$dest"
(cd /tmp && CGO_ENABLED=0 GOBIN="$dest" go install -trimpath -ldflags "-s -w" \
  "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION")
echo "$binary"
