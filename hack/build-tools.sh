#!/usr/bin/env bash
# Build the local control plane (etcd, kube-apiserver, kube-controller-manager, kubectl)
# and the helm / kubeconform CLIs from their Go modules at pinned versions.
#
# Binaries land in $KUBELOOP_CACHE/bin (default: <repo>/.cache/kubeloop/bin, git-ignored).
# A stamp file records what was built; the build is skipped when the pins are unchanged.
# Pins live here and in hack/tools/*/go.mod: change them together.
set -euo pipefail

KUBERNETES_VERSION=v1.34.4
ETCD_VERSION=v3.6.16
HELM_VERSION=v3.19.5
KUBECONFORM_VERSION=v0.7.0

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${KUBELOOP_CACHE:-$repo/.cache/kubeloop}
bin=$cache/bin
stamp=$bin/.versions
# The stamp covers the pins, the locked module graphs and this recipe itself.
want="k8s=$KUBERNETES_VERSION etcd=$ETCD_VERSION helm=$HELM_VERSION kubeconform=$KUBECONFORM_VERSION $(cat "$repo/hack/tools/kube/go.sum" "$repo/hack/tools/etcd/go.sum" "${BASH_SOURCE[0]}" | sha256sum | cut -c1-16)"

if [[ -f $stamp && "$(cat "$stamp")" == "$want" ]]; then
  for b in etcd kube-apiserver kube-controller-manager kubectl helm kubeconform; do
    [[ -x $bin/$b ]] || { rm -f "$stamp"; break; }
  done
  if [[ -f $stamp ]]; then echo "tools up to date in $bin"; exit 0; fi
fi

mkdir -p "$bin"
export CGO_ENABLED=0 GOFLAGS=-mod=mod
minor=${KUBERNETES_VERSION#v1.}; minor=${minor%%.*}
ldflags=""
# Without a stamped version /version reports v0.0.0 and helm's capability checks see 0.0.
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean"
done

start=$(date +%s)
echo "building kube-apiserver, kube-controller-manager, kubectl $KUBERNETES_VERSION"
(cd "$repo/hack/tools/kube" && go build -trimpath -ldflags "$ldflags" -o "$bin/" \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kubectl)
echo "building etcd $ETCD_VERSION"
(cd "$repo/hack/tools/etcd" && go build -trimpath -o "$bin/etcd" go.etcd.io/etcd/server/v3)
echo "building helm $HELM_VERSION, kubeconform $KUBECONFORM_VERSION"
GOBIN=$bin GOFLAGS= go install -trimpath \
  -ldflags "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
  "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
GOBIN=$bin GOFLAGS= go install -trimpath -ldflags "-X main.version=$KUBECONFORM_VERSION" \
  "github.com/yannh/kubeconform/cmd/kubeconform@$KUBECONFORM_VERSION"

echo "$want" > "$stamp"
echo "tools built in $bin in $(( $(date +%s) - start ))s"
