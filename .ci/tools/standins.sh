#!/usr/bin/env bash
# Builds local stand-ins for the Debian-based upstream images that the apps' Dockerfiles
# name, on machines that cannot pull from a container registry (our CI). Each stand-in
# is built only when no image of that name exists, under the same name and OS family:
# a debootstrap'd Debian rootfs (made once, cached as a tarball under
# ~/.cache/lab/standins/, keyed by suite) plus the host's Go or Node toolchain or
# Debian's packages. Every stand-in carries the label dev.lab.standin=true.
#
# The apps' bases are on Debian trixie (docs/base-images.md says why and how they are
# refreshed); bookworm stays for the kind tier's own images and the container tier's
# redis, which lab does not build or scan.
#
# Idempotent. Prints a summary line, then (last) the cache directory, because .ci/run
# puts the directory of each tool script's last output line on PATH.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
cache=${LAB_STANDINS_CACHE:-$HOME/.cache/lab/standins}
export DOCKER_BUILDKIT=0  # plain `docker build`s of our own bases: the classic builder will do

"$here/dockerd.sh" >&2
mkdir -p "$cache"

log() { echo "standins: $*" >&2; }
absent() { ! docker image inspect "$1" >/dev/null 2>&1; }
built=() kept=()

# ensure_base SUITE: the debootstrap'd rootfs of SUITE, imported as the parent of the
# stand-ins on that suite (lab-standin/debian:SUITE).
ensure_base() {
  local suite=$1
  local rootfs_tar=$cache/debian-$suite.tar base=lab-standin/debian:$suite
  local rootfs_image=lab-standin/debian-rootfs:$suite
  if ! absent "$base"; then return; fi
  if [[ ! -s "$rootfs_tar" ]]; then
    command -v debootstrap >/dev/null || { log "debootstrap missing: apt-get install debootstrap"; exit 1; }
    local work
    work=$(mktemp -d "$cache/rootfs.XXXXXX")
    log "debootstrap $suite (once, about 2 min; cached in $rootfs_tar)"
    debootstrap --variant=minbase --include=ca-certificates "$suite" "$work/rootfs" "$mirror" >"$cache/debootstrap-$suite.log" 2>&1 \
      || { tail -n 20 "$cache/debootstrap-$suite.log" >&2; rm -rf "$work"; exit 1; }
    # Like Debian's own container image: the three suites, no caches, no docs.
    rm -f "$work/rootfs/etc/apt/sources.list"
    cat >"$work/rootfs/etc/apt/sources.list.d/debian.sources" <<SOURCES
Types: deb
URIs: $mirror
Suites: $suite $suite-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${mirror%/debian}/debian-security
Suites: $suite-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
    # Like the official images: apt keeps no caches, and (as in the -slim variants) dpkg
    # installs no documentation, man pages or translations.
    cat >"$work/rootfs/etc/apt/apt.conf.d/docker-clean" <<'APT'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
APT
    echo 'Acquire::Languages "none";' >"$work/rootfs/etc/apt/apt.conf.d/docker-no-languages"
    cat >"$work/rootfs/etc/dpkg/dpkg.cfg.d/docker" <<'DPKG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
DPKG
    find "$work/rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
    rm -rf "$work"/rootfs/usr/share/{man,groff,info,lintian,linda,locale}/* \
      "$work"/rootfs/var/cache/apt/archives/*.deb "$work"/rootfs/var/cache/apt/*.bin \
      "$work"/rootfs/var/lib/apt/lists/* "$work"/rootfs/var/log/* "$work"/rootfs/tmp/* \
      "$work"/rootfs/dev/*
    tar --numeric-owner -C "$work/rootfs" -cf "$rootfs_tar.tmp" .
    mv "$rootfs_tar.tmp" "$rootfs_tar"
    rm -rf "$work"
  fi
  log "importing $rootfs_tar as $rootfs_image"
  docker import --change 'CMD ["bash"]' --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    "$rootfs_tar" "$rootfs_image" >/dev/null
  build "$base" debian "$suite" extra_cas
}

# The certificates in the host's CA bundle that Debian's bundle lacks.
extra_cas() {
  local rootfs=lab-standin/debian-rootfs:$2 host_bundle=${LAB_HOST_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt} count
  mkdir -p "$1/cas"
  [[ -f "$host_bundle" ]] || return 0
  docker run --rm "$rootfs" cat /etc/ssl/certs/ca-certificates.crt >"$1/debian-bundle.crt"
  count=$(awk -v known="$1/debian-bundle.crt" -v out="$1/cas/lab-host" '
    function scan(line) {
      if (line ~ /-----BEGIN CERTIFICATE-----/) { inside = 1; block = "" }
      if (inside) block = block line "\n"
      if (inside && line ~ /-----END CERTIFICATE-----/) { inside = 0; return 1 }
      return 0
    }
    BEGIN { while ((getline line < known) > 0) if (scan(line)) seen[block] = 1; inside = 0 }
    { if (scan($0) && !(block in seen)) { n++; file = out "-" n ".crt"; printf "%s", block > file; close(file) } }
    END { print n + 0 }' "$host_bundle")
  rm -f "$1/debian-bundle.crt"
  log "trusting $count extra CA certificate(s) from $host_bundle"
}

# build IMAGE DIR SUITE [EXTRA-CONTEXT-SETUP]: docker build of .ci/tools/standins/DIR,
# on Debian SUITE, as IMAGE.
build() {
  local image=$1 dir=$2 suite=$3 prepare=${4:-}
  local base=lab-standin/debian:$suite
  if ! absent "$image"; then kept+=("$image"); return; fi
  [[ "$image" == "$base" ]] || ensure_base "$suite"
  local context
  context=$(mktemp -d)
  cp -a "$here/standins/$dir/." "$context/"
  if [[ -n "$prepare" ]]; then "$prepare" "$context" "$suite"; fi
  log "building stand-in $image"
  if ! docker build --quiet --build-arg "BASE=$base" --build-arg "ROOTFS=lab-standin/debian-rootfs:$suite" \
      --label dev.lab.standin=true \
      -t "$image" "$context" >"$cache/build-$dir-$suite.log" 2>&1; then
    tail -n 30 "$cache/build-$dir-$suite.log" >&2
    rm -rf "$context"
    log "building $image failed (full log: $cache/build-$dir-$suite.log)"
    exit 1
  fi
  rm -rf "$context"
  built+=("$image")
}

# The host's Go toolchain, laid out like the official image (GOROOT /usr/local/go).
go_context() {
  command -v go >/dev/null || { log "go missing: the golang stand-in copies the host's Go"; exit 1; }
  local goroot version
  goroot=$(go env GOROOT)
  version=$(go env GOVERSION)
  [[ $version == go1.26* ]] || { log "host Go is $version; golang:1.26-trixie needs go1.26.x"; exit 1; }
  tar -C "$goroot" --exclude=./pkg/obj --exclude=./.git -cf "$1/go.tar" .
  echo "${version#go}" >"$1/GOLANG_VERSION"
}

# The host's Node.js and npm, laid out like the official image (/usr/local).
node_context() {
  command -v node >/dev/null || { log "node missing: the node stand-in copies the host's Node.js"; exit 1; }
  local node modules version
  node=$(readlink -f "$(command -v node)")
  version=$(node --version)
  [[ $version == v20.* ]] || { log "host Node.js is $version; node:20-trixie-slim needs v20.x"; exit 1; }
  modules=$(cd "$(dirname "$(readlink -f "$(command -v npm)")")/../.." && pwd)  # .../lib/node_modules
  mkdir -p "$1/node/bin" "$1/node/lib/node_modules"
  cp "$node" "$1/node/bin/node"
  for package in npm corepack; do
    if [[ -d "$modules/$package" ]]; then cp -a "$modules/$package" "$1/node/lib/node_modules/"; fi
  done
  echo "${version#v}" >"$1/NODE_VERSION"
}

ensure_base bookworm   # the kind tier's images build on it
build golang:1.26-trixie golang trixie go_context
build node:20-trixie-slim node trixie node_context
build python:3.13-slim-trixie python trixie
build nginx:1.30-trixie nginx trixie
build redis:7-bookworm redis bookworm
build registry:3 registry bookworm

log "built ${#built[@]} (${built[*]:-none}), kept ${#kept[@]} (${kept[*]:-none})"
echo "standins: ${#built[@]} built, ${#kept[@]} already present"
echo "$cache"
