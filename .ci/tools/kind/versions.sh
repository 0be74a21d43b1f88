#!/usr/bin/env bash
# Every version the kind tier builds, in one place; sourced by the kind tier's scripts.
# Those that lab pins are read from lab/config.py, so the tier and the lab agree.
_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
_pin() { sed -n "s/^ *$1: str = \"\(.*\)\"$/\1/p" "$_root/lab/config.py" | head -n 1; }

KIND_VERSION=$(_pin kind_version)                       # v0.32.0
# The node image's Kubernetes version: the tag of lab's pinned kindest/node image.
K8S_VERSION=$(sed -n 's/^ *"kindest\/node:\(v[0-9.]*\)"$/\1/p; s/^ *kind_node_image: str = "kindest\/node:\(v[0-9.]*\)@.*/\1/p' "$_root/lab/config.py" | head -n 1)
ARGOCD_VERSION=$(_pin argocd_version)                   # v3.6.1
TRIVY_VERSION=v$(_pin trivy_image | sed 's/.*://')      # aquasec/trivy:<version>
GITEA_VERSION=$(_pin gitea_version)
KUSTOMIZE_VERSION=$(_pin kustomize_version)

# What kind's base image and kubeadm need (kubeadm v1.36's constants.go asks for etcd
# 3.6.8-0, coredns v1.14.2 and pause 3.10.2).
CONTAINERD_VERSION=v2.4.2
CRICTL_VERSION=v1.37.0
CNI_VERSION=v1.10.0
ETCD_VERSION=v3.6.8
ETCD_IMAGE_TAG=3.6.8-0
COREDNS_VERSION=v1.14.2
COREDNS_IMAGE_TAG=v1.14.2
PAUSE_IMAGE_TAG=3.10.2
LOCAL_PATH_VERSION=v0.0.30
HELM_VERSION=v4.3.1   # Argo CD v3.6.1 hack/tool-versions.sh
# Argo CD v3.6's go.mod asks for Go 1.27; the go command fetches this toolchain.
ARGOCD_GO=go1.27.3
# Trivy v0.68 builds with GOEXPERIMENT=jsonv2 as Go 1.25 shaped it (its goreleaser.yml).
TRIVY_GO=go1.25.14

# Istio: served only as pseudo-versions of its branches; a commit on release-1.30
# (Makefile.core.mk: BASE_VERSION 1.30-2026-08-26). Used by istioctl.sh and binaries.sh.
ISTIO_MODULE_VERSION="v0.0.0-20260826214018-9739e10eb9d7"
# A pre-release of 1.30.0 in semver; it becomes a Kubernetes label value on every
# object istioctl installs, so it may hold only [A-Za-z0-9._-] (no "+").
ISTIO_VERSION_LABEL="1.30.0-dev.9739e10eb9d7"
ISTIO_DEP_PINS=(
  istio.io/api@v1.30.8
  istio.io/client-go@v1.30.8
  github.com/envoyproxy/go-control-plane/envoy@v1.37.1-0.20260713214202-ca8ce173c36f
  github.com/envoyproxy/go-control-plane/contrib@v1.36.1-0.20260713214202-ca8ce173c36f
)

KIND_CACHE=${LAB_CACHE_DIR:-$HOME/.cache/lab}/kind
