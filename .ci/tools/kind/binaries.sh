#!/usr/bin/env bash
# Builds, from Go modules only, every binary the kind tier's images carry, and caches
# each under ~/.cache/lab/kind/bin/<component>-<version>/ (a directory is complete once
# its .done file exists). Re-running rebuilds only what is missing.
#
# Usage: .ci/tools/kind/binaries.sh [COMPONENT...]     (default: all, in build order)
# Versions come from .ci/tools/kind/versions.sh (and, through it, lab/config.py).
#
# Cold cost on 2 cores: about 60-80 min in all (Kubernetes ~20 min, Argo CD ~9 min,
# Trivy ~8 min, the rest a few minutes each) and ~6 GB of Go module and build caches.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.sh
source "$here/versions.sh"

bin_root=$KIND_CACHE/bin
mkdir -p "$bin_root"
log() { echo "kind-binaries: $*" >&2; }

# field NAME: a string field of `go mod download -json`'s object.
field() { sed -n "s/^[[:space:]]*\"$1\": \"\(.*\)\",\{0,1\}\$/\1/p"; }

# module_copy MODULE@VERSION DEST: a writable copy of a module's source.
module_copy() {
  local dir
  dir=$( (cd /tmp && GOFLAGS=-mod=mod go mod download -json "$1") | field Dir)
  [[ -n "$dir" && -d "$dir" ]] || { log "go mod download $1 gave no source directory"; return 1; }
  cp -R "$dir/." "$2"
  chmod -R u+w "$2"
}

# cached NAME VERSION: true when that build is complete.
cached() { [[ -f "$bin_root/$1-$2/.done" ]]; }

# timed NAME VERSION FUNCTION: run FUNCTION OUT_DIR WORK_DIR unless cached; time it.
timed() {
  local name=$1 version=$2 fn=$3 out work started
  out=$bin_root/$name-$version
  if cached "$name" "$version"; then log "$name $version: cached"; return 0; fi
  started=$SECONDS
  log "$name $version: building (cold)"
  rm -rf "$out"; mkdir -p "$out"
  work=$(mktemp -d "${TMPDIR:-/tmp}/kind-$name.XXXXXX")
  if ! "$fn" "$out" "$work"; then
    chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"
    log "$name $version: FAILED after $((SECONDS - started))s"
    return 1
  fi
  chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"
  echo "$((SECONDS - started))" >"$out/.done"
  log "$name $version: built in $((SECONDS - started))s ($(du -sh "$out" | cut -f1))"
}

export CGO_ENABLED=0 GOTOOLCHAIN=${GOTOOLCHAIN:-local}

# Kubernetes: k8s.io/kubernetes replaces its staging modules with ./staging/..., which
# the module zip lacks. A wrapper module requires it and points each staging module at
# its published v0.<minor>.<patch> instead.
build_kubernetes() {
  local out=$1 work=$2 kv=${K8S_VERSION#v} staging version
  local mod="$GOMODCACHE_DIR/cache/download/k8s.io/kubernetes/@v/$K8S_VERSION.mod"
  (cd /tmp && go mod download "k8s.io/kubernetes@$K8S_VERSION")
  mkdir -p "$work/w"
  cd "$work/w"
  go mod init lab.local/kubernetes-build >/dev/null 2>&1
  go mod edit -go=1.26.0 -require="k8s.io/kubernetes@$K8S_VERSION"
  for staging in $(awk '$2 == "v0.0.0" && $1 ~ /^k8s.io\// {print $1}' "$mod"); do
    version=v0.${kv#1.}
    # A few staging modules are not published at every patch: take the nearest served one.
    if ! (cd /tmp && go list -m "$staging@$version" >/dev/null 2>&1); then
      version=$(cd /tmp && go list -m -versions "$staging" | tr ' ' '\n' | grep "^v0.${kv#1.}" | grep -v -- - | head -n 1 || true)
      [[ -n "$version" ]] || version=$(cd /tmp && go list -m -versions "$staging" | tr ' ' '\n' | grep "^v0\.${kv:2:2}\." | head -n 1)
      log "  $staging: v0.${kv#1.} is not served, using $version"
    fi
    go mod edit -replace="$staging=$staging@$version"
  done
  cat >tools.go <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubeadm"
	_ "k8s.io/kubernetes/cmd/kubelet"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
  GOFLAGS=-mod=mod go mod tidy -e >/dev/null 2>&1 || true
  local major=${kv%%.*} minor=${kv#*.}
  minor=${minor%%.*}
  local pkg=k8s.io/component-base/version
  local ldflags="-s -w -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z -X $pkg.gitCommit=0000000000000000000000000000000000000000"
  ldflags+=" -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION -X k8s.io/client-go/pkg/version.gitMajor=$major -X k8s.io/client-go/pkg/version.gitMinor=$minor"
  local cmd
  for cmd in kubeadm kubelet kubectl kube-proxy kube-scheduler kube-controller-manager kube-apiserver; do
    log "  go build k8s.io/kubernetes/cmd/$cmd"
    GOFLAGS=-mod=mod go build -trimpath -ldflags "$ldflags" -o "$out/$cmd" "k8s.io/kubernetes/cmd/$cmd"
  done
}

# kind itself: `go install` works (its go.mod has no replace directives).
build_kind() {
  local out=$1
  GOBIN=$out GOFLAGS=-mod=mod go install "sigs.k8s.io/kind@$KIND_VERSION"
}

build_containerd() {
  local out=$1 work=$2
  module_copy "github.com/containerd/containerd/v2@$CONTAINERD_VERSION" "$work/src"
  cd "$work/src"
  local pkg=github.com/containerd/containerd/v2/version
  local ldflags="-s -w -X $pkg.Version=$CONTAINERD_VERSION -X $pkg.Revision=module -X $pkg.Package=github.com/containerd/containerd/v2"
  for cmd in containerd ctr containerd-shim-runc-v2; do
    GOFLAGS=-mod=mod go build -trimpath -tags 'no_btrfs' -ldflags "$ldflags" -o "$out/$cmd" "./cmd/$cmd"
  done
}

build_crictl() {
  local out=$1 work=$2
  module_copy "sigs.k8s.io/cri-tools@$CRICTL_VERSION" "$work/src"
  cd "$work/src"
  GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=$CRICTL_VERSION" -o "$out/crictl" ./cmd/crictl
}

build_cni() {
  local out=$1 work=$2 plugin
  module_copy "github.com/containernetworking/plugins@$CNI_VERSION" "$work/src"
  cd "$work/src"
  for plugin in main/ptp main/bridge ipam/host-local main/loopback meta/portmap; do
    GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w" -o "$out/$(basename "$plugin")" "./plugins/$plugin"
  done
}

build_etcd() {
  local out=$1 work=$2
  mkdir -p "$work/w" && cd "$work/w"
  go mod init lab.local/etcd-build >/dev/null 2>&1
  cat >tools.go <<'GO'
//go:build tools

package tools

import _ "go.etcd.io/etcd/server/v3"
GO
  go mod edit -require="go.etcd.io/etcd/server/v3@$ETCD_VERSION"
  GOFLAGS=-mod=mod go mod tidy -e >/dev/null 2>&1 || true
  GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w" -o "$out/etcd" go.etcd.io/etcd/server/v3
}

build_coredns() {
  local out=$1 work=$2
  module_copy "github.com/coredns/coredns@$COREDNS_VERSION" "$work/src"
  cd "$work/src"
  GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w" -o "$out/coredns" .
}

build_local_path() {
  local out=$1 work=$2
  module_copy "github.com/rancher/local-path-provisioner@$LOCAL_PATH_VERSION" "$work/src"
  cd "$work/src"
  GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w -X main.VERSION=$LOCAL_PATH_VERSION" -o "$out/local-path-provisioner" .
}

# Argo CD: one multicall binary. Its go.mod replaces gitops-engine with ./gitops-engine,
# which the module zip lacks, and it needs a newer Go than the machine's (the go command
# fetches that toolchain from the module proxy).
build_argocd() {
  local out=$1 work=$2
  local zip
  zip=$( (cd /tmp && GOTOOLCHAIN=$ARGOCD_GO go mod download -json "github.com/argoproj/argo-cd/v3@$ARGOCD_VERSION") | field Zip)
  mkdir -p "$work/src"
  (cd "$work" && python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$zip" "$work/x")
  cp -R "$work/x/github.com/argoproj/argo-cd/v3@$ARGOCD_VERSION/." "$work/src"
  chmod -R u+w "$work/src"
  cd "$work/src"
  export GOTOOLCHAIN=$ARGOCD_GO
  go mod edit -dropreplace=github.com/argoproj/argo-cd/gitops-engine/v3 2>/dev/null || true
  GOFLAGS=-mod=mod go get "github.com/argoproj/argo-cd/gitops-engine/v3@$ARGOCD_VERSION"
  local pkg=github.com/argoproj/argo-cd/v3/common
  GOFLAGS=-mod=mod go build -trimpath \
    -ldflags "-s -w -X $pkg.version=${ARGOCD_VERSION#v} -X $pkg.buildDate=1970-01-01T00:00:00Z -X $pkg.gitCommit=module -X $pkg.gitTreeState=clean -X $pkg.gitTag=$ARGOCD_VERSION" \
    -o "$out/argocd" ./cmd
  # The install's images run /usr/local/bin/argocd-* names and `argocd` itself.
  cp "$work/src/hack/gpg-wrapper.sh" "$out/" 2>/dev/null || true
  cp "$work/src/hack/git-verify-wrapper.sh" "$out/" 2>/dev/null || true
  cp "$work/src/manifests/install.yaml" "$out/install.yaml"
}

build_helm() {
  local out=$1 work=$2
  module_copy "helm.sh/helm/v4@$HELM_VERSION" "$work/src"
  cd "$work/src"
  GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=$HELM_VERSION" -o "$out/helm" ./cmd/helm
}

# istiod's discovery server, from the same Istio module and pins as the tier's istioctl.
build_pilot() {
  local out=$1 work=$2 pin
  module_copy "istio.io/istio@$ISTIO_MODULE_VERSION" "$work/src"
  cd "$work/src"
  for pin in "${ISTIO_DEP_PINS[@]}"; do go mod edit -require="$pin"; done
  # The experimental agentgateway controller needs a module the proxy does not serve:
  # a stand-in package with the same API (agentgateway-stub.go says why).
  rm -f pilot/pkg/config/kube/agentgateway/*.go
  cp "$here/agentgateway-stub.go" pilot/pkg/config/kube/agentgateway/controller.go
  local pkg=istio.io/istio/pkg/version
  GOFLAGS=-mod=mod go build -trimpath \
    -ldflags "-s -w -X $pkg.buildVersion=$ISTIO_VERSION_LABEL -X $pkg.buildGitRevision=${ISTIO_MODULE_VERSION##*-} -X $pkg.buildStatus=Clean -X $pkg.buildTag=$ISTIO_VERSION_LABEL" \
    -o "$out/pilot-discovery" ./pilot/cmd/pilot-discovery
}

build_trivy() {
  local out=$1 work=$2
  module_copy "github.com/aquasecurity/trivy@$TRIVY_VERSION" "$work/src"
  cd "$work/src"
  # Trivy builds with Go 1.25's encoding/json/v2 experiment, whose API moved in 1.26:
  # the go command fetches that toolchain from the module proxy.
  GOTOOLCHAIN=$TRIVY_GO GOEXPERIMENT=jsonv2 GOFLAGS=-mod=mod go build -trimpath \
    -ldflags "-s -w -X github.com/aquasecurity/trivy/pkg/version/app.ver=${TRIVY_VERSION#v}" \
    -o "$out/trivy" ./cmd/trivy
}

all=(kind kubernetes containerd crictl cni etcd coredns local_path pilot argocd helm trivy)
wanted=("$@")
((${#wanted[@]})) || wanted=("${all[@]}")
GOMODCACHE_DIR=$(go env GOMODCACHE)
failed=0
for component in "${wanted[@]}"; do
  case $component in
    kind) timed kind "$KIND_VERSION" build_kind || failed=1 ;;
    kubernetes) timed kubernetes "$K8S_VERSION" build_kubernetes || failed=1 ;;
    containerd) timed containerd "$CONTAINERD_VERSION" build_containerd || failed=1 ;;
    crictl) timed crictl "$CRICTL_VERSION" build_crictl || failed=1 ;;
    cni) timed cni "$CNI_VERSION" build_cni || failed=1 ;;
    etcd) timed etcd "$ETCD_VERSION" build_etcd || failed=1 ;;
    coredns) timed coredns "$COREDNS_VERSION" build_coredns || failed=1 ;;
    local_path) timed local-path "$LOCAL_PATH_VERSION" build_local_path || failed=1 ;;
    pilot) timed pilot "$ISTIO_MODULE_VERSION" build_pilot || failed=1 ;;
    argocd) timed argocd "$ARGOCD_VERSION" build_argocd || failed=1 ;;
    helm) timed helm "$HELM_VERSION" build_helm || failed=1 ;;
    trivy) timed trivy "$TRIVY_VERSION" build_trivy || failed=1 ;;
    *) log "unknown component $component (known: ${all[*]})"; exit 2 ;;
  esac
done
exit $failed
