#!/usr/bin/env bash
# Build the local cluster's binaries from their Go modules at pinned versions:
#   the control plane (etcd, kube-apiserver, kube-controller-manager) and kubectl;
#   the node (kubelet, kube-scheduler, kube-proxy, CoreDNS, local-path-provisioner);
#   the dev cluster's own small programs in hack/nodeimages (pause, local-path-helper, testkit);
#   the helm and kubeconform CLIs.
#
# Binaries land in $KUBELOOP_CACHE/bin (default: <repo>/.cache/kubeloop/bin, git-ignored).
# Each group has a stamp file recording what it was built from (pins, locked module graph, this
# recipe); a group is skipped when its stamp matches, so adding a group never rebuilds the others.
# Pins live here and in hack/tools/*/go.mod: change them together.
set -euo pipefail

KUBERNETES_VERSION=v1.34.4
ETCD_VERSION=v3.6.16
HELM_VERSION=v3.19.5
KUBECONFORM_VERSION=v0.7.0
COREDNS_VERSION=v1.15.0
LOCAL_PATH_PROVISIONER_VERSION=v0.0.30

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${KUBELOOP_CACHE:-$repo/.cache/kubeloop}
bin=$cache/bin
tools=$repo/hack/tools
mkdir -p "$bin"
export CGO_ENABLED=0 GOFLAGS=-mod=mod
recipe=$(sha256sum "${BASH_SOURCE[0]}" | cut -c1-16)
start=$(date +%s)
built=0

digest() { cat "$@" | sha256sum | cut -c1-16; }

# up_to_date GROUP WANT BINARY...: the group's stamp says WANT and every binary exists.
up_to_date() {
  local group=$1 want=$2; shift 2
  local stamp=$bin/.stamp-$group
  [[ -f $stamp && "$(cat "$stamp")" == "$want" ]] || return 1
  for b in "$@"; do [[ -x $bin/$b ]] || return 1; done
}

stamp() { echo "$2" > "$bin/.stamp-$1"; built=$((built + 1)); }

minor=${KUBERNETES_VERSION#v1.}; minor=${minor%%.*}
ldflags=""
# Without a stamped version /version reports v0.0.0 and helm's capability checks see 0.0.
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean"
done

# The Kubernetes commands share one module graph (hack/tools/kube), so one `go build` links them
# all; with Go's build cache warm, the ones that did not change cost only their link.
kube=(kube-apiserver kube-controller-manager kubectl kubelet kube-scheduler kube-proxy)
want="k8s=$KUBERNETES_VERSION $(digest "$tools/kube/go.mod" "$tools/kube/go.sum") $recipe"
if ! up_to_date kube "$want" "${kube[@]}"; then
  echo "building ${kube[*]} $KUBERNETES_VERSION"
  (cd "$tools/kube" && go build -trimpath -ldflags "$ldflags" -o "$bin/" \
    "${kube[@]/#/k8s.io/kubernetes/cmd/}")
  stamp kube "$want"
fi

want="etcd=$ETCD_VERSION $(digest "$tools/etcd/go.mod" "$tools/etcd/go.sum") $recipe"
if ! up_to_date etcd "$want" etcd; then
  echo "building etcd $ETCD_VERSION"
  (cd "$tools/etcd" && go build -trimpath -o "$bin/etcd" go.etcd.io/etcd/server/v3)
  stamp etcd "$want"
fi

# CoreDNS from its module, linked with only the plugins the dev cluster's Corefile uses
# (hack/tools/coredns/main.go): the upstream main links every plugin and its cloud SDKs.
want="coredns=$COREDNS_VERSION $(digest "$tools/coredns/"{go.mod,go.sum,main.go}) $recipe"
if ! up_to_date coredns "$want" coredns; then
  echo "building coredns $COREDNS_VERSION"
  (cd "$tools/coredns" && go build -trimpath -o "$bin/coredns" .)
  stamp coredns "$want"
fi

want="lpp=$LOCAL_PATH_PROVISIONER_VERSION $(digest "$tools/local-path/go.mod" "$tools/local-path/go.sum") $recipe"
if ! up_to_date local-path "$want" local-path-provisioner; then
  echo "building local-path-provisioner $LOCAL_PATH_PROVISIONER_VERSION"
  (cd "$tools/local-path" && go build -trimpath \
    -ldflags "-X main.VERSION=$LOCAL_PATH_PROVISIONER_VERSION" \
    -o "$bin/local-path-provisioner" github.com/rancher/local-path-provisioner)
  stamp local-path "$want"
fi

# Our own static programs, packed into images by hack/devcluster.py (hack/image_tar.py).
images=$repo/hack/nodeimages
want="nodeimages $(cd "$images" && find . -type f | sort | xargs cat | sha256sum | cut -c1-16) $recipe"
if ! up_to_date nodeimages "$want" pause local-path-helper testkit; then
  echo "building pause, local-path-helper, testkit (hack/nodeimages)"
  (cd "$images" && go build -trimpath -ldflags "-s -w" -o "$bin/" ./pause ./local-path-helper ./testkit)
  stamp nodeimages "$want"
fi

want="helm=$HELM_VERSION kubeconform=$KUBECONFORM_VERSION $recipe"
if ! up_to_date clis "$want" helm kubeconform; then
  echo "building helm $HELM_VERSION, kubeconform $KUBECONFORM_VERSION"
  GOBIN=$bin GOFLAGS= go install -trimpath \
    -ldflags "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
    "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  GOBIN=$bin GOFLAGS= go install -trimpath -ldflags "-X main.version=$KUBECONFORM_VERSION" \
    "github.com/yannh/kubeconform/cmd/kubeconform@$KUBECONFORM_VERSION"
  stamp clis "$want"
fi

if (( built == 0 )); then
  echo "tools up to date in $bin"
else
  echo "tools built in $bin in $(( $(date +%s) - start ))s ($built group(s))"
fi
