#!/usr/bin/env bash
# Removes kind tier builds that the current versions no longer use: binary directories
# under ~/.cache/lab/kind/bin/ whose <component>-<version> is not pinned now, and tier
# images (label dev.lab.kind-tier.key) that no tag points at any more.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.sh
source "$here/versions.sh"
wanted=(
  "kind-$KIND_VERSION" "kubernetes-$K8S_VERSION" "containerd-$CONTAINERD_VERSION"
  "crictl-$CRICTL_VERSION" "cni-$CNI_VERSION" "etcd-$ETCD_VERSION" "coredns-$COREDNS_VERSION"
  "local-path-$LOCAL_PATH_VERSION" "pilot-$ISTIO_MODULE_VERSION" "argocd-$ARGOCD_VERSION"
  "helm-$HELM_VERSION" "trivy-$TRIVY_VERSION"
)
removed=0
for dir in "$KIND_CACHE"/bin/*/; do
  [[ -d "$dir" ]] || continue
  name=$(basename "$dir")
  keep=0
  for w in "${wanted[@]}"; do [[ "$name" == "$w" ]] && keep=1; done
  if ((!keep)); then
    echo "kind-prune: removing $dir ($(du -sh "$dir" | cut -f1)), no longer pinned"
    rm -rf "$dir"; removed=$((removed + 1))
  fi
done
dangling=$(docker images -q --filter dangling=true --filter label=dev.lab.kind-tier.key 2>/dev/null || true)
if [[ -n "$dangling" ]]; then
  # shellcheck disable=SC2086
  docker rmi $dangling >/dev/null 2>&1 || true
  echo "kind-prune: removed $(wc -w <<<"$dangling") superseded tier image(s)"
fi
echo "kind-prune: $removed stale build(s) removed"
