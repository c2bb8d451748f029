#!/usr/bin/env bash
# Build the local cluster's binaries from their Go modules at pinned versions:
#   the control plane (etcd, kube-apiserver, kube-controller-manager) and kubectl;
#   the node (kubelet, kube-scheduler, kube-proxy, CoreDNS, local-path-provisioner);
#   the dev cluster's own small programs in hack/nodeimages (pause, local-path-helper, testkit);
#   the helm and kubeconform CLIs.
#
# Binaries land in $KUBELOOP_CACHE/bin (default: <repo>/.cache/kubeloop/bin, git-ignored).
# Each group has a stamp file (bin/.stamp-<group>) recording what it was built from (its command
# line and the digest of its go.mod/go.sum or sources); a group is skipped when its stamp matches,
# so adding or changing a group never rebuilds the others.
# Pins live here (the Kubernetes version for its ldflags, helm, kubeconform) and in
# hack/tools/*/go.mod (etcd, CoreDNS, local-path-provisioner, the Kubernetes modules): change
# them together.
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
# The pins above must be the ones the modules lock.
pinned() {
  grep -Eq "^\s*(require )?$2 $3( |$)" "$tools/$1/go.mod" ||
    { echo "hack/tools/$1/go.mod does not pin $2 $3: change them together" >&2; exit 1; }
}
pinned kube k8s.io/kubernetes "$KUBERNETES_VERSION"
pinned etcd go.etcd.io/etcd/server/v3 "$ETCD_VERSION"
pinned coredns github.com/coredns/coredns "$COREDNS_VERSION"
pinned local-path github.com/rancher/local-path-provisioner "$LOCAL_PATH_PROVISIONER_VERSION"

mkdir -p "$bin"
export CGO_ENABLED=0 GOFLAGS=-mod=mod
start=$(date +%s)
built=0

# group NAME "BINARY..." INPUT... -- COMMAND...: run COMMAND unless the group's stamp matches and
# its binaries exist. The stamp is the command line itself (pins and flags are in it) and the
# digest of the inputs (the locked module graph, our sources).
group() {
  local name=$1 binaries=$2 inputs=()
  shift 2
  while [[ $1 != -- ]]; do inputs+=("$1"); shift; done
  shift
  local want stamp=$bin/.stamp-$name b fresh=1
  want="$* $(cat "${inputs[@]}" | sha256sum | cut -c1-16)"
  [[ -f $stamp && "$(cat "$stamp")" == "$want" ]] || fresh=0
  for b in $binaries; do [[ -x $bin/$b ]] || fresh=0; done
  (( fresh )) && return 0
  local began=$(date +%s)
  echo "building $binaries"
  "$@"
  echo "$want" > "$stamp"
  built=$((built + 1))
  echo "  $name built in $(( $(date +%s) - began ))s"
}

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
group kube "${kube[*]}" "$tools/kube/go.mod" "$tools/kube/go.sum" -- \
  go -C "$tools/kube" build -trimpath -ldflags "$ldflags" -o "$bin/" "${kube[@]/#/k8s.io/kubernetes/cmd/}"

group etcd etcd "$tools/etcd/go.mod" "$tools/etcd/go.sum" -- \
  go -C "$tools/etcd" build -trimpath -o "$bin/etcd" go.etcd.io/etcd/server/v3

# CoreDNS from its module, linked with only the plugins the dev cluster's Corefile uses
# (hack/tools/coredns/main.go): the upstream main links every plugin and its cloud SDKs.
group coredns coredns "$tools/coredns/"{go.mod,go.sum,main.go} -- \
  go -C "$tools/coredns" build -trimpath -o "$bin/coredns" .

group local-path local-path-provisioner "$tools/local-path/go.mod" "$tools/local-path/go.sum" -- \
  go -C "$tools/local-path" build -trimpath -ldflags "-X main.VERSION=$LOCAL_PATH_PROVISIONER_VERSION" \
  -o "$bin/local-path-provisioner" github.com/rancher/local-path-provisioner

# Our own static programs, packed into images by hack/devcluster.py (hack/image_tar.py).
images=$repo/hack/nodeimages
mapfile -t sources < <(find "$images" -type f | sort)
group nodeimages "pause local-path-helper testkit" "${sources[@]}" -- \
  go -C "$images" build -trimpath -ldflags "-s -w" -o "$bin/" ./pause ./local-path-helper ./testkit

group helm helm /dev/null -- env GOBIN="$bin" GOFLAGS= go install -trimpath \
  -ldflags "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
  "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
group kubeconform kubeconform /dev/null -- env GOBIN="$bin" GOFLAGS= go install -trimpath \
  -ldflags "-X main.version=$KUBECONFORM_VERSION" \
  "github.com/yannh/kubeconform/cmd/kubeconform@$KUBECONFORM_VERSION"

if (( built == 0 )); then
  echo "tools up to date in $bin"
else
  echo "tools built in $bin in $(( $(date +%s) - start ))s ($built group(s))"
fi
