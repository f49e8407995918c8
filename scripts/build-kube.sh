#!/usr/bin/env bash
# Builds kube-apiserver and kubectl from the published k8s.io/kubernetes module (it cannot be `go install`ed:
# its go.mod replaces the k8s.io/* modules with ./staging copies), into a cache folder; does nothing when
# the binaries are there. Used by .ci/run and by test/support's kubernetes() (tests on a real API server).
#   KUBE_VERSION (default v1.34.4)   SNAPMESH_CACHE (default ~/.cache/snapmesh)
set -euo pipefail
version="${KUBE_VERSION:-v1.34.4}"
out="${SNAPMESH_CACHE:-$HOME/.cache/snapmesh}/kube-$version"
if [ -x "$out/kube-apiserver" ] && [ -x "$out/kubectl" ]; then
  echo "$out"
  exit 0
fi
minor="${version#v1.}"; minor="${minor%%.*}"
staging="v0.${version#v1.}"
scratch="$(mktemp -d)"
trap 'chmod -R u+w "$scratch" 2>/dev/null; rm -rf "$scratch"' EXIT
export GOPATH="$scratch/gopath" GOFLAGS=-mod=mod GOWORK=off
echo "building kube-apiserver and kubectl $version (several minutes, once)" >&2
dir="$(cd "$scratch" && go mod download -json "k8s.io/kubernetes@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
cp -r "$dir" "$scratch/src" && chmod -R u+w "$scratch/src"
cd "$scratch/src"
# The staging copies are published as k8s.io/<name> v0.<minor>.<patch>: point the replaces at those.
sed -i -E "s#^(\s*)(k8s\.io/[a-z0-9-]+) => \./staging/src/k8s\.io/[a-z0-9-]+#\1\2 => \2 $staging#" go.mod
pkg=k8s.io/component-base/version
ldflags="-s -w -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
mkdir -p "$out.tmp"
go build -trimpath -ldflags "$ldflags" -o "$out.tmp/" ./cmd/kube-apiserver ./cmd/kubectl
rm -rf "$out" && mv "$out.tmp" "$out"
echo "$out"
