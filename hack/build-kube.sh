#!/usr/bin/env bash
# Builds the Kubernetes control plane cadent's tests run against, from Go modules only:
# kube-apiserver, kube-controller-manager, kube-scheduler, kubectl and etcd (from the tools
# module in hack/kube), plus kwok, kwokctl and helm (go install). Binaries are cached outside
# the repository, keyed by version, and built only when missing.
#
#   hack/build-kube.sh            build what is missing, print the bin directory
#   CADENT_CACHE=/path ...        cache root (default ~/.cache/cadent)
set -euo pipefail

KUBE_VERSION=v1.36.3
KWOK_VERSION=v0.8.0
HELM_VERSION=v3.21.4
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${CADENT_CACHE:-$HOME/.cache/cadent}"
bin="$cache/kube-$KUBE_VERSION-kwok-$KWOK_VERSION-helm-$HELM_VERSION/bin"
mkdir -p "$bin"

log() { echo "[build-kube] $*" >&2; }

if ! command -v go >/dev/null; then
  log "Go is required to build the test control plane (https://go.dev/dl)"; exit 1
fi

need_kube=0
for b in kube-apiserver kube-controller-manager kube-scheduler kubectl etcd; do
  [[ -x "$bin/$b" ]] || need_kube=1
done

# Two cores: keep the build parallelism modest so the linker does not exhaust memory.
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false

if [[ $need_kube == 1 ]]; then
  log "building Kubernetes $KUBE_VERSION and etcd into $bin (cold: tens of minutes)"
  minor="${KUBE_VERSION#v1.}"; minor="${minor%%.*}"
  ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$KUBE_VERSION \
    -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor \
    -X k8s.io/component-base/version.gitTreeState=clean \
    -X k8s.io/client-go/pkg/version.gitVersion=$KUBE_VERSION \
    -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$minor"
  tmp="$bin.tmp.$$"; mkdir -p "$tmp"
  trap 'rm -rf "$tmp"' EXIT
  (cd "$here/kube" &&
    go build -trimpath -ldflags "$ldflags" -o "$tmp/" \
      k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
      k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl &&
    go build -trimpath -ldflags "-s -w" -o "$tmp/etcd" go.etcd.io/etcd/server/v3)
  mv "$tmp"/* "$bin/"
fi

# go install of these works directly (their go.mod has no replaces); stamp their versions.
install_tool() { # name module@version ldflags
  if [[ ! -x "$bin/$1" ]]; then
    log "installing $2"
    GOBIN="$bin" go install -trimpath -ldflags "-s -w $3" "$2"
  fi
}
install_tool kwok "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" "-X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION"
install_tool kwokctl "sigs.k8s.io/kwok/cmd/kwokctl@$KWOK_VERSION" "-X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION"
install_tool helm "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"

echo "$bin"
