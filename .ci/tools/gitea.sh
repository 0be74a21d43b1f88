#!/usr/bin/env bash
# Build the Gitea binary the integration tests run, once, and print its path.
#
# Gitea's go.mod has `replace` directives, so `go install code.gitea.io/gitea@v...` is
# refused; we download the module source through the Go module proxy and build it in a
# scratch copy. No frontend assets are built (the tests use the API only); the source's
# options/, templates/ and public/ are kept next to the binary for STATIC_ROOT_PATH.
#
# Usage: .ci/tools/gitea.sh [VERSION]   (default: gitea_version from lab/config.py)
# Cache: ${LAB_CACHE_DIR:-~/.cache/lab}/gitea-<version>/gitea  (reused when present)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
version="${1:-}"
if [[ -z "$version" ]]; then
  version="$(sed -n 's/^ *gitea_version: str = "\(.*\)"$/\1/p' "$here/lab/config.py")"
fi
version="${version#v}"
if [[ -z "$version" ]]; then
  echo "gitea.sh: cannot read gitea_version from $here/lab/config.py; pass a version" >&2
  exit 2
fi

cache="${LAB_CACHE_DIR:-$HOME/.cache/lab}/gitea-$version"
binary="$cache/gitea"
if [[ -x "$binary" && -d "$cache/options" ]]; then
  echo "$binary"
  exit 0
fi

command -v go >/dev/null || { echo "gitea.sh: go is not installed" >&2; exit 2; }
command -v gcc >/dev/null || { echo "gitea.sh: gcc is needed (sqlite is cgo)" >&2; exit 2; }

started=$(date +%s)
echo "gitea.sh: building Gitea v$version (first time only; several minutes)" >&2
dir="$(go mod download -json "code.gitea.io/gitea@v$version" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')"
if [[ -z "$dir" || ! -f "$dir/go.mod" ]]; then
  echo "gitea.sh: go mod download code.gitea.io/gitea@v$version gave no source dir" >&2
  exit 1
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/gitea-build.XXXXXX")"
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
cp -R "$dir/." "$work/src"
chmod -R u+w "$work/src"

mkdir -p "$cache"
(
  cd "$work/src"
  CGO_ENABLED=1 GOTOOLCHAIN="${GOTOOLCHAIN:-local}" \
    CGO_CFLAGS="$(go env CGO_CFLAGS) -DSQLITE_MAX_VARIABLE_NUMBER=32766" \
    go build -trimpath -tags 'sqlite sqlite_unlock_notify' \
      -ldflags "-s -w -X main.Version=$version -X 'main.Tags=sqlite sqlite_unlock_notify'" \
      -o "$work/gitea" .
)
for asset in options templates public; do
  rm -rf "${cache:?}/$asset"
  cp -R "$work/src/$asset" "$cache/$asset"
done
mv "$work/gitea" "$binary"   # last, so a half-finished build is never taken as done

echo "gitea.sh: built $binary ($(du -h "$binary" | cut -f1)) in $(( $(date +%s) - started ))s" >&2
echo "$binary"
