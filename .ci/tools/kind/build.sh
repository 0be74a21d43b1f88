#!/usr/bin/env bash
# Builds (or reuses) everything the kind tier runs: the binaries from Go modules
# (binaries.sh, ~/.cache/lab/kind/bin/), then the images (images.sh, in Docker). Warm,
# it does nothing in a few seconds; cold, it says what it builds and what it cost.
#
# Usage: .ci/tools/kind/build.sh     (prints the node image reference, last line)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.sh
source "$here/versions.sh"
started=$SECONDS
"$here/../dockerd.sh" >&2
"$here/../kustomize.sh" >/dev/null
"$here/../gitea.sh" >/dev/null
"$here/binaries.sh"
ref=$("$here/images.sh" | tail -n 1)
"$here/prune.sh" >&2 || true
echo "kind tier: artifacts ready in $((SECONDS - started))s; cache $(du -sh "$KIND_CACHE" | cut -f1) at $KIND_CACHE" >&2
echo "$ref"
