#!/usr/bin/env bash
# Builds the Kubernetes binaries of one pinned release (the control plane, the real node's
# kubelet, kube-proxy and kube-scheduler, and kubectl) from the k8s.io/kubernetes Go module
# (through the Go module proxy) and caches them under ~/.cache/krally/kubernetes-<version>/bin.
# A second run finds them and returns at once. KRALLY_BINARIES="kubectl" builds a subset (the
# Dockerfile's kubectl stage does).
# The throwaway module replaces every staging module with its published v0.<minor>.<patch>,
# the list read from the release's own go.mod so it stays right for any version.
set -euo pipefail

version="${KRALLY_KUBERNETES_VERSION:-$(cat "$(dirname "$0")/../tests/cluster/KUBERNETES_VERSION")}"
cache="${KRALLY_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/krally}"
bin="$cache/kubernetes-$version/bin"
read -r -a binaries <<< "${KRALLY_BINARIES:-kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubelet kubectl}"

have_all=1
for b in "${binaries[@]}"; do [ -x "$bin/$b" ] || have_all=0; done
if [ "$have_all" = 1 ]; then
  echo "control plane $version: cached in $bin"
  exit 0
fi

command -v go >/dev/null || { echo "error: go is not installed; it builds the control plane" >&2; exit 1; }
export GOTOOLCHAIN=local GOFLAGS=-mod=mod CGO_ENABLED=0
minor="${version#v1.}"; minor="${minor%%.*}"
patch="${version##*.}"
staging_version="v0.$minor.$patch"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
started=$(date +%s)
step() { echo "[build-control-plane $(( $(date +%s) - started ))s] $*"; }

step "resolving k8s.io/kubernetes@$version (first build takes minutes on 2 cores)"
go mod init krally.dev/control-plane-build >/dev/null 2>&1
gomod="$(go mod download -json "k8s.io/kubernetes@$version" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')"
[ -f "$gomod" ] || { echo "error: could not download k8s.io/kubernetes@$version" >&2; exit 1; }
staging=$(grep -E '^\s*k8s\.io/[^ ]+ => \./staging/' "$gomod" | awk '{print $1}' | sort -u)
[ -n "$staging" ] || { echo "error: no staging replaces found in $gomod" >&2; exit 1; }
for m in $staging; do go mod edit "-replace=$m=$m@$staging_version"; done
step "replaced $(echo "$staging" | wc -l) staging modules with $staging_version"
packages=()
for b in "${binaries[@]}"; do packages+=("k8s.io/kubernetes/cmd/$b@$version"); done
go get "${packages[@]}" 2>&1 | tail -n 3

ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags="$ldflags -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  ldflags="$ldflags -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done
rm -rf "$bin.partial"
mkdir -p "$bin.partial"
# Binaries already built (an earlier, smaller set) are kept, not built again.
if [ -d "$bin" ]; then cp -a "$bin/." "$bin.partial/"; fi
for b in "${binaries[@]}"; do
  if [ -x "$bin.partial/$b" ]; then continue; fi
  step "building $b"
  go build -trimpath -ldflags "$ldflags" -o "$bin.partial/$b" "k8s.io/kubernetes/cmd/$b"
done
rm -rf "$bin"
mv "$bin.partial" "$bin"
step "done: $bin"
"$bin/${binaries[0]}" --version
