#!/usr/bin/env bash
# Vulnerability audit of the backend module with govulncheck.
#
# Exit codes (docs/CONTRACTS.md):
#   0  OK: the database was consulted and no called vulnerability was found
#   1  FAIL: govulncheck reports vulnerabilities that the code calls
#   3  UNVERIFIED: the vulnerability database could not be reached
#   2  ERROR: anything else (govulncheck could not be installed, the code
#      does not load); never reported as clean
#
# Environment:
#   GOVULNCHECK_VERSION  version to install (default below)
#   GOVULNCHECK          path of a govulncheck binary to use instead
#   GOVULNDB             vulnerability database URL (govulncheck -db)
#   LAB_CACHE_DIR        where the tool is installed (default ~/.cache/lab)
set -uo pipefail

version="${GOVULNCHECK_VERSION:-v1.9.0}"
cd "$(dirname "$0")/.." || exit 2

bin="${GOVULNCHECK:-}"
if [[ -n "$bin" && ! -x "$bin" ]]; then
    echo "ERROR: GOVULNCHECK=$bin is not an executable file: unset it, or point it at govulncheck"
    exit 2
fi
if [[ -z "$bin" ]] && ! command -v go >/dev/null 2>&1; then
    echo "ERROR: go is not installed, so govulncheck cannot be: install Go 1.26 (see apps/backend/README.md), or set GOVULNCHECK to a govulncheck binary"
    exit 2
fi
if [[ -z "$bin" ]]; then
    gobin="${LAB_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/lab}/govulncheck/$version"
    bin="$gobin/govulncheck"
    if [[ ! -x "$bin" ]]; then
        if ! GOBIN="$gobin" go install "golang.org/x/vuln/cmd/govulncheck@$version"; then
            echo "ERROR: could not install govulncheck $version (go install failed, see above)"
            exit 2
        fi
    fi
fi

args=()
[[ -n "${GOVULNDB:-}" ]] && args+=(-db "$GOVULNDB")

out="$(mktemp)"
trap 'rm -f "$out"' EXIT
"$bin" "${args[@]}" ./... >"$out" 2>&1
rc=$?
cat "$out"

case "$rc" in
0)
    echo "OK: govulncheck $version found no called vulnerabilities"
    exit 0
    ;;
3)
    echo "FAIL: govulncheck $version found vulnerabilities that the code calls (see above)"
    exit 1
    ;;
esac

# govulncheck exits 1 for every other error; tell an unreachable database
# (its message starts "govulncheck: fetching vulnerabilities:") from the rest.
if reason="$(grep -m1 -E 'fetching vulnerabilities|vuln\.go\.dev' "$out")"; then
    echo "UNVERIFIED: vulnerability database unreachable (${reason})"
    exit 3
fi
echo "ERROR: govulncheck $version failed with exit code $rc (see above)"
exit 2
