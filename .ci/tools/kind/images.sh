#!/usr/bin/env bash
# Assembles the kind tier's images from the binaries that binaries.sh caches, under the
# upstream names and tags that kind, kubeadm and lab's manifests ask for:
#
#   kind node      kindest/node:<k8s>, pushed once to a throw-away registry so Docker
#                  records a digest (lab pins its node image by digest); the reference
#                  is written to $KIND_CACHE/node-image.ref
#   in the node    registry.k8s.io/{kube-apiserver,kube-controller-manager,
#                  kube-scheduler,kube-proxy}:<k8s>, etcd, coredns, pause, kind's
#                  local-path provisioner and helper (imported into the node's containerd)
#   for the lab    registry:3 (Debian's docker-registry), Gitea rootless, Argo CD and
#                  its redis, Istio's pilot, Trivy: see lab-images below
#
# Each image is built only when Docker lacks it (a label records the inputs' hash, so a
# new version or recipe rebuilds it). The kind tier's own machine quirks live here and in
# tests/kind/, never in lab: see tier-entrypoint below.
#
# Usage: .ci/tools/kind/images.sh [node]   prints the node image reference (last line);
#        `node` stops after the node image (the lab's images need every binary)
# Cold: ~5 min on 2 cores once binaries.sh has run; warm: a few seconds.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
# shellcheck source=versions.sh
source "$here/versions.sh"
export DOCKER_BUILDKIT=0

bin=$KIND_CACHE/bin
log() { echo "kind-images: $*" >&2; }
started=$SECONDS
built=()

"$root/.ci/tools/dockerd.sh" >&2
"$root/.ci/tools/standins.sh" >/dev/null   # lab-standin/debian:bookworm, redis, ...
debian=lab-standin/debian:bookworm

need() {
  local path=$bin/$1
  [[ -f "$path/.done" ]] || { log "missing $path: run .ci/tools/kind/binaries.sh first"; exit 1; }
  echo "$path"
}

# The hash of a directory's content plus extra words: an image's recipe key.
key_of() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum; shift; echo "$*") | sha256sum | cut -c1-16; }

# build IMAGE CONTEXT [EXTRA-KEY...]: docker build CONTEXT as IMAGE unless an image of
# that name carries the same recipe key.
build() {
  local image=$1 context=$2 key have
  shift 2
  key=$(key_of "$context" "$@")
  have=$(docker image inspect --format '{{ index .Config.Labels "dev.lab.kind-tier.key" }}' "$image" 2>/dev/null || true)
  if [[ "$have" == "$key" ]]; then return 0; fi
  log "building $image"
  if ! docker build --quiet --label dev.lab.standin=true --label "dev.lab.kind-tier.key=$key" \
      -t "$image" "$context" >"$KIND_CACHE/build.log" 2>&1; then
    tail -n 30 "$KIND_CACHE/build.log" >&2
    log "building $image failed"
    exit 1
  fi
  built+=("$image")
}

work=$(mktemp -d "${TMPDIR:-/tmp}/kind-images.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$KIND_CACHE"
kind_src=$( (cd /tmp && go mod download -json "sigs.k8s.io/kind@$KIND_VERSION") | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
k8s_src=$( (cd /tmp && go mod download -json "k8s.io/kubernetes@$K8S_VERSION") | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[[ -d "$kind_src/images/base/files" ]] || { log "no kind module source for $KIND_VERSION"; exit 1; }

# -- kind's base image ----------------------------------------------------------------
# kind's images/base/Dockerfile, on a debootstrapped Debian, with containerd, crictl and
# the CNI plugins built from their modules and Debian's runc.
ctx=$work/base
mkdir -p "$ctx/bin" "$ctx/cni"
cp -R "$kind_src/images/base/files" "$ctx/files"
chmod -R u+w "$ctx/files"
cp "$(need "containerd-$CONTAINERD_VERSION")"/{containerd,ctr,containerd-shim-runc-v2} "$ctx/bin/"
cp "$(need "crictl-$CRICTL_VERSION")/crictl" "$ctx/bin/"
cp "$(need "cni-$CNI_VERSION")"/{ptp,bridge,host-local,loopback,portmap} "$ctx/cni/"
# This machine's quirk, and only the tier's (a user's laptop runs kind's own image):
# without --privileged, Docker mounts the cgroup v1 controllers read-only, and systemd
# then fails. A bind remount (a plain remount gives EBUSY) before kind's entrypoint.
cat >"$ctx/tier-entrypoint" <<'SH'
#!/bin/sh
# mountinfo: ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS ...
awk '$5 ~ "^/sys/fs/cgroup/." && $6 ~ "^ro(,|$)" { print $5 }' /proc/self/mountinfo |
  while read -r controller; do
    mount -o remount,bind,rw "$controller" || echo "tier-entrypoint: cannot remount $controller rw" >&2
  done
exec "$@"
SH
# A single node needs no kindnetd (not served as a module): a static ptp conflist for
# the node's pod range. kind applies /kind/manifests/default-cni.yaml, which becomes a
# ConfigMap recording that choice.
cat >"$ctx/10-lab-ptp.conflist" <<'JSON'
{
  "cniVersion": "1.0.0",
  "name": "lab-tier",
  "plugins": [
    {
      "type": "ptp",
      "ipMasq": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{ "subnet": "10.244.0.0/24" }]],
        "routes": [{ "dst": "0.0.0.0/0" }]
      },
      "mtu": 1500
    },
    { "type": "portmap", "capabilities": { "portMappings": true } }
  ]
}
JSON
cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM $debian
COPY files/usr/local/bin/ /usr/local/bin/
COPY files/kind/ /kind/
COPY files/etc/ /etc/
COPY bin/ /usr/local/bin/
COPY cni/ /opt/cni/bin/
COPY 10-lab-ptp.conflist /etc/cni/net.d/10-lab-ptp.conflist
COPY tier-entrypoint /usr/local/bin/tier-entrypoint
RUN chmod 0755 /usr/local/bin/* /kind /kind/bin /kind/bin/* /opt/cni/bin/* \\
 && chmod -R a+rX /etc/systemd /etc/containerd /etc/default /etc/sysctl.d /etc/crictl.yaml /kind \\
 && apt-get update \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \\
      systemd conntrack iptables nftables iproute2 ethtool util-linux mount kmod \\
      libseccomp2 pigz e2fsprogs bash ca-certificates curl jq procps runc \\
 && apt-get clean && rm -rf /var/lib/apt/lists/* /var/log/* /usr/share/doc/* /usr/share/man/* \\
 && find /lib/systemd/system/sysinit.target.wants/ -name "systemd-tmpfiles-setup.service" -delete \\
 && rm -f /lib/systemd/system/multi-user.target.wants/* /etc/systemd/system/*.wants/* \\
      /lib/systemd/system/local-fs.target.wants/* /lib/systemd/system/sockets.target.wants/*udev* \\
      /lib/systemd/system/sockets.target.wants/*initctl* /lib/systemd/system/basic.target.wants/* \\
 && echo "ReadKMsg=no" >> /etc/systemd/journald.conf \\
 && ln -sf /usr/lib/systemd/systemd /sbin/init \\
 && systemctl enable kubelet.service containerd.service undo-mount-hacks.service \\
 && systemctl mask systemd-binfmt.service \\
 && mkdir -p /etc/kubernetes/manifests \\
 && ctr oci spec \\
      | jq '.hooks.createContainer[.hooks.createContainer| length] |= . + {"path": "/kind/bin/mount-product-files.sh"}' \\
      | jq 'del(.process.rlimits)' > /etc/containerd/cri-base.json \\
 && containerd --version && runc --version
ENV container=docker
STOPSIGNAL SIGRTMIN+3
ENTRYPOINT ["/usr/local/bin/tier-entrypoint", "/usr/local/bin/entrypoint", "/sbin/init"]
DOCKERFILE
base_image=lab-kind/base:$KIND_VERSION
build "$base_image" "$ctx" "$KIND_VERSION"

# -- the images kubeadm and kind run inside the node -----------------------------------
k8s=$(need "kubernetes-$K8S_VERSION")
images=$work/node-images
mkdir -p "$images"

# component IMAGE BINARY-PATH [PACKAGES...]: Debian + one binary in /usr/local/bin.
component() {
  local image=$1 binary=$2 name ctx
  shift 2
  name=$(basename "$binary")
  ctx=$work/c-$name
  mkdir -p "$ctx"
  cp "$binary" "$ctx/$name"
  local install=""
  if (($#)); then
    install="RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $* && rm -rf /var/lib/apt/lists/*"
  fi
  printf 'FROM %s\n%s\nCOPY %s /usr/local/bin/%s\nRUN chmod 0755 /usr/local/bin/%s\n' \
    "$debian" "$install" "$name" "$name" "$name" >"$ctx/Dockerfile"
  build "$image" "$ctx" "$image"
}
for cmd in kube-apiserver kube-controller-manager kube-scheduler; do
  component "registry.k8s.io/$cmd:$K8S_VERSION" "$k8s/$cmd"
done
# kube-proxy runs iptables from its own image: pick the node's iptables mode first, as
# upstream's iptables-wrapper does.
ctx=$work/c-kube-proxy
mkdir -p "$ctx"
cp "$k8s/kube-proxy" "$ctx/kube-proxy.real"
cat >"$ctx/kube-proxy" <<'SH'
#!/bin/sh
legacy=$( (iptables-legacy-save; ip6tables-legacy-save) 2>/dev/null | grep -c '^-' || true)
nft=$( (timeout 5 sh -c "iptables-nft-save; ip6tables-nft-save") 2>/dev/null | grep -c '^-' || true)
mode=nft
[ "${legacy:-0}" -gt "${nft:-0}" ] && mode=legacy
for tool in iptables ip6tables; do update-alternatives --set "$tool" "/usr/sbin/$tool-$mode" >/dev/null 2>&1; done
exec /usr/local/bin/kube-proxy.real "$@"
SH
cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM $debian
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends iptables nftables conntrack ipset kmod && rm -rf /var/lib/apt/lists/*
COPY kube-proxy kube-proxy.real /usr/local/bin/
RUN chmod 0755 /usr/local/bin/kube-proxy /usr/local/bin/kube-proxy.real
DOCKERFILE
build "registry.k8s.io/kube-proxy:$K8S_VERSION" "$ctx"

component "registry.k8s.io/etcd:$ETCD_IMAGE_TAG" "$(need "etcd-$ETCD_VERSION")/etcd"
# coredns' Deployment runs the image's entrypoint, /coredns.
ctx=$work/c-coredns
mkdir -p "$ctx"
cp "$(need "coredns-$COREDNS_VERSION")/coredns" "$ctx/coredns"
printf 'FROM %s\nCOPY coredns /coredns\nRUN chmod 0755 /coredns\nUSER 65532:65532\nENTRYPOINT ["/coredns"]\n' "$debian" >"$ctx/Dockerfile"
build "registry.k8s.io/coredns/coredns:$COREDNS_IMAGE_TAG" "$ctx"

# pause, from kubernetes' own C source, static.
ctx=$work/c-pause
mkdir -p "$ctx"
gcc -Os -static -o "$ctx/pause" -DVERSION="$PAUSE_IMAGE_TAG" "$k8s_src/build/pause/linux/pause.c"
printf 'FROM scratch\nCOPY pause /pause\nUSER 65535:65535\nENTRYPOINT ["/pause"]\n' >"$ctx/Dockerfile"
build "registry.k8s.io/pause:$PAUSE_IMAGE_TAG" "$ctx"
# kind's containerd config names its own sandbox image tag: serve it as the same image.
sandbox=$(sed -n 's/^ *sandbox_image = "\(.*\)"$/\1/p' "$kind_src/images/base/files/etc/containerd/config.toml")
[[ -n "$sandbox" ]] && docker tag "registry.k8s.io/pause:$PAUSE_IMAGE_TAG" "$sandbox"

# kind's local-path storage: its manifest names kind's own images; ours carry them.
storage_go=$kind_src/pkg/build/nodeimage/const_storage.go
provisioner=$(sed -n 's/^const storageProvisionerImage = "\(.*\)"$/\1/p' "$storage_go")
helper=$(sed -n 's/^const storageHelperImage = "\(.*\)"$/\1/p' "$storage_go")
component "$provisioner" "$(need "local-path-$LOCAL_PATH_VERSION")/local-path-provisioner"
ctx=$work/c-helper
mkdir -p "$ctx"
printf 'FROM %s\n' "$debian" >"$ctx/Dockerfile"
build "$helper" "$ctx" "$helper"

node_images=(
  "registry.k8s.io/kube-apiserver:$K8S_VERSION"
  "registry.k8s.io/kube-controller-manager:$K8S_VERSION"
  "registry.k8s.io/kube-scheduler:$K8S_VERSION"
  "registry.k8s.io/kube-proxy:$K8S_VERSION"
  "registry.k8s.io/etcd:$ETCD_IMAGE_TAG"
  "registry.k8s.io/coredns/coredns:$COREDNS_IMAGE_TAG"
  "registry.k8s.io/pause:$PAUSE_IMAGE_TAG"
  "$sandbox"
  "$provisioner"
  "$helper"
)

# -- the node image -------------------------------------------------------------------
# kind's node-image build, by hand (it would pull with ctr): the Kubernetes binaries in
# /usr/bin, /kind/version, the CNI and storage manifests, and every image above imported
# into containerd's k8s.io namespace, then `docker commit`.
# Bump when the assembly below changes (its inputs' IDs and binaries are keyed already).
node_recipe=2
node_key=$( (docker image inspect --format '{{.Id}}' "$base_image" "${node_images[@]}"; sha256sum "$k8s"/kube*; echo "$node_recipe") | sha256sum | cut -c1-16)
node_image=kindest/node:$K8S_VERSION
node_ref_file=$KIND_CACHE/node-image.ref
have=$(docker image inspect --format '{{ index .Config.Labels "dev.lab.kind-tier.key" }}' "$node_image" 2>/dev/null || true)
if [[ "$have" != "$node_key" || ! -s "$node_ref_file" ]] || ! docker image inspect "$(cat "$node_ref_file")" >/dev/null 2>&1; then
  log "assembling $node_image (about a minute)"
  builder=lab-kind-node-build
  docker rm -f "$builder" >/dev/null 2>&1 || true
  docker run -d --name "$builder" --entrypoint sleep "$base_image" infinity >/dev/null
  for binary in kubeadm kubelet kubectl; do docker cp "$k8s/$binary" "$builder:/usr/bin/$binary"; done
  docker exec "$builder" sh -c "chmod 0755 /usr/bin/kubeadm /usr/bin/kubelet /usr/bin/kubectl && echo $K8S_VERSION > /kind/version && mkdir -p /kind/manifests"
  python3 - "$storage_go" >"$work/default-storage.yaml" <<'PY'
# The Go constant is raw strings joined with `+` to other constants: evaluate that.
import re, sys
source = open(sys.argv[1]).read()
consts = dict(re.findall(r'^const (\w+) = "(.*)"$', source, re.M))
rest = source[source.index("const defaultStorageManifest = ") + len("const defaultStorageManifest = "):]
parts = []
while True:
    rest = rest.lstrip()
    if rest.startswith("`"):
        end = rest.index("`", 1)
        parts.append(rest[1:end])
        rest = rest[end + 1:]
    else:
        name = re.match(r"\w+", rest).group(0)
        parts.append(consts[name])
        rest = rest[len(name):]
    rest = rest.lstrip(" \t")
    if not rest.startswith("+"):
        break
    rest = rest[1:]
print("".join(parts))
PY
  cat >"$work/default-cni.yaml" <<'YAML'
# The kind tier's node image: a static ptp CNI config (/etc/cni/net.d/10-lab-ptp.conflist)
# instead of kindnetd, which cannot be built from the package registries.
apiVersion: v1
kind: ConfigMap
metadata:
  name: lab-tier-cni
  namespace: kube-system
data:
  cni: "ptp + host-local for {{ .PodSubnet }} (static conflist in the node image)"
YAML
  docker cp "$work/default-storage.yaml" "$builder:/kind/manifests/default-storage.yaml"
  docker cp "$work/default-cni.yaml" "$builder:/kind/manifests/default-cni.yaml"
  docker exec -d "$builder" containerd
  for _ in $(seq 30); do docker exec "$builder" ctr version >/dev/null 2>&1 && break; sleep 1; done
  for image in "${node_images[@]}"; do
    docker save "$image" | docker exec -i "$builder" ctr -n k8s.io images import --no-unpack - >/dev/null
  done
  docker exec "$builder" ctr -n k8s.io images ls -q | sort >"$work/imported"
  docker exec "$builder" sh -c 'pkill containerd; sleep 2; rm -rf /tmp/* /var/log/*' || true
  docker commit \
    --change 'ENTRYPOINT ["/usr/local/bin/tier-entrypoint", "/usr/local/bin/entrypoint", "/sbin/init"]' \
    --change "LABEL dev.lab.kind-tier.key=$node_key dev.lab.standin=true" \
    "$builder" "$node_image" >/dev/null
  docker rm -f "$builder" >/dev/null
  log "node image holds $(wc -l <"$work/imported") images"
  # lab pins its node image by digest: give ours one, from a throw-away local registry.
  port=5999
  docker rm -f lab-kind-digest >/dev/null 2>&1 || true
  docker run -d --name lab-kind-digest -p "127.0.0.1:$port:5000" registry:3 >/dev/null
  for _ in $(seq 30); do curl -fs "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 1; done
  docker tag "$node_image" "localhost:$port/$node_image"
  docker push "localhost:$port/$node_image" >/dev/null
  digest=$(docker image inspect --format '{{ range .RepoDigests }}{{ println . }}{{ end }}' "localhost:$port/$node_image" | grep "^localhost:$port/" | head -n 1)
  docker rm -f -v lab-kind-digest >/dev/null
  [[ -n "$digest" ]] || { log "pushing the node image gave no digest"; exit 1; }
  echo "localhost:$port/$node_image@${digest#*@}" >"$node_ref_file"
  built+=("$node_image")
fi

if [[ "${1:-all}" == node ]]; then
  log "built ${#built[@]} image(s) (${built[*]:-none}) in $((SECONDS - started))s"
  cat "$node_ref_file"
  exit 0
fi

# -- the images lab installs, under the names its manifests and pins use ---------------
pin() { sed -n "s/^ *$1: str = \"\(.*\)\"$/\1/p" "$root/lab/config.py" | head -n 1; }
# Gitea rootless: Gitea's own docker/rootless files from its module, on Debian, with the
# binary the integration tier builds (no frontend assets: templates from the source).
gitea_dir=${LAB_CACHE_DIR:-$HOME/.cache/lab}/gitea-$GITEA_VERSION
[[ -x "$gitea_dir/gitea" ]] || { log "missing $gitea_dir/gitea: run .ci/tools/gitea.sh"; exit 1; }
gitea_src=$( (cd /tmp && go mod download -json "code.gitea.io/gitea@v$GITEA_VERSION") | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
ctx=$work/gitea
mkdir -p "$ctx/app"
cp -R "$gitea_src/docker/rootless" "$ctx/rootless"
chmod -R u+w "$ctx/rootless"
cp "$gitea_dir/gitea" "$ctx/app/gitea"
cp -R "$gitea_dir/options" "$gitea_dir/templates" "$gitea_dir/public" "$ctx/app/"
cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM $debian
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \\
      bash ca-certificates dumb-init gettext-base git curl gnupg openssh-client \\
 && rm -rf /var/lib/apt/lists/* \\
 && groupadd -g 1000 git && useradd -M -d /var/lib/gitea/git -s /bin/bash -u 1000 -g git git \\
 && mkdir -p /var/lib/gitea /etc/gitea && chown git:git /var/lib/gitea /etc/gitea
COPY rootless/ /
COPY app/ /app/gitea/
# /usr/local/bin/gitea is Gitea's own wrapper (it passes -c \$GITEA_APP_INI to /app/gitea/gitea).
RUN chmod 0755 /usr/local/bin/* /app/gitea/gitea
USER 1000:1000
ENV GITEA_WORK_DIR=/var/lib/gitea GITEA_CUSTOM=/var/lib/gitea/custom GITEA_TEMP=/tmp/gitea \\
    TMPDIR=/tmp/gitea GITEA_APP_INI=/etc/gitea/app.ini HOME=/var/lib/gitea/git \\
    GITEA__server__STATIC_ROOT_PATH=/app/gitea
WORKDIR /var/lib/gitea
EXPOSE 2222 3000
ENTRYPOINT ["/usr/bin/dumb-init", "--", "/usr/local/bin/docker-entrypoint.sh"]
DOCKERFILE
build "$(pin gitea_image)" "$ctx"

# Argo CD: the multicall binary under every name its install runs, with git, kustomize
# and helm for the repo-server, as its own Dockerfile lays it out (user 999, tini).
argocd=$(need "argocd-$ARGOCD_VERSION")
kustomize=${LAB_CACHE_DIR:-$HOME/.cache/lab}/kustomize-$(pin kustomize_version)/kustomize
[[ -x "$kustomize" ]] || { log "missing $kustomize: run .ci/tools/kustomize.sh"; exit 1; }
ctx=$work/argocd
mkdir -p "$ctx/bin"
cp "$argocd/argocd" "$(need "helm-$HELM_VERSION")/helm" "$kustomize" "$ctx/bin/"
cp "$argocd"/*.sh "$ctx/bin/" 2>/dev/null || true
cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM $debian
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \\
      git tini ca-certificates gpg gpg-agent tzdata openssh-client \\
 && rm -rf /var/lib/apt/lists/* \\
 && groupadd -g 999 argocd && useradd -r -u 999 -g argocd argocd \\
 && mkdir -p /home/argocd /app/config/ssh /app/config/tls /app/config/gpg/source /app/config/gpg/keys \\
 && chown argocd:0 /home/argocd && chmod g=u /home/argocd \\
 && touch /app/config/ssh/ssh_known_hosts && ln -s /app/config/ssh/ssh_known_hosts /etc/ssh/ssh_known_hosts \\
 && chown argocd /app/config/gpg/keys && chmod 0700 /app/config/gpg/keys
COPY bin/ /usr/local/bin/
RUN chmod 0755 /usr/local/bin/* \\
 && for name in server repo-server cmp-server application-controller dex notifications \\
      applicationset-controller k8s-auth commit-server; do \\
      ln -s /usr/local/bin/argocd /usr/local/bin/argocd-\$name; done \\
 && ln -s /usr/bin/tini /usr/local/bin/tini
ENV USER=argocd GRPC_ENABLE_TXT_SERVICE_CONFIG=false
USER 999
WORKDIR /home/argocd
ENTRYPOINT ["/usr/bin/tini", "--"]
DOCKERFILE
build "quay.io/argoproj/argocd:$ARGOCD_VERSION" "$ctx"
argocd_redis=$(sed -n 's/^ *image: \(.*redis.*\)$/\1/p' "$argocd/install.yaml" | head -n 1)
docker tag redis:7-bookworm "$argocd_redis"
# The demo's own redis (gitops/redis): the same stand-in under that name.
demo_redis=$(sed -n 's/^ *image: \(redis:.*\)$/\1/p' "$root/gitops/redis/base/deployment.yaml" | head -n 1)
docker tag redis:7-bookworm "$demo_redis"

# istiod: pilot-discovery, as Istio's pilot image runs it (user 1337).
ctx=$work/pilot
mkdir -p "$ctx"
cp "$(need "pilot-$ISTIO_MODULE_VERSION")/pilot-discovery" "$ctx/"
printf 'FROM %s\nCOPY pilot-discovery /usr/local/bin/pilot-discovery\nRUN chmod 0755 /usr/local/bin/pilot-discovery\nUSER 1337:1337\nENTRYPOINT ["/usr/local/bin/pilot-discovery"]\n' "$debian" >"$ctx/Dockerfile"
build "docker.io/istio/pilot:$(pin istio_version)" "$ctx"

# Trivy, as the scan stage runs it (the image's entrypoint is trivy).
ctx=$work/trivy
mkdir -p "$ctx"
cp "$(need "trivy-$TRIVY_VERSION")/trivy" "$ctx/"
printf 'FROM %s\nCOPY trivy /usr/local/bin/trivy\nRUN chmod 0755 /usr/local/bin/trivy\nENTRYPOINT ["trivy"]\n' "$debian" >"$ctx/Dockerfile"
build "$(pin trivy_image)" "$ctx"

log "built ${#built[@]} image(s) (${built[*]:-none}) in $((SECONDS - started))s"
cat "$node_ref_file"
