#!/usr/bin/env bash
# Copies the upstream CRDs the chart tests need from shared/crds (beside the repository, or $1) into
# k8s/crds, so `npm test` works on a plain clone. Run it when shared/crds moves to new upstream versions;
# test/chart checks the copy is not stale whenever shared/crds is present.
set -euo pipefail
cd "$(dirname "$0")/.."
src="${1:-../shared/crds}"
[ -d "$src" ] || { echo "no CRDs at $src" >&2; exit 1; }
rm -rf k8s/crds.tmp && mkdir -p k8s/crds.tmp
cp -r "$src"/. k8s/crds.tmp/
cat > k8s/crds.tmp/LICENSES.md <<'NOTE'
# Licenses of the vendored CRDs

Copied unchanged by `scripts/sync-crds.sh` (versions in README.md beside this file). Each is the upstream
project's own data, under its license: Knative Serving, Knative Eventing and eventing-natss (Apache-2.0,
github.com/knative, github.com/knative-extensions), Cilium (Apache-2.0, github.com/cilium/cilium), Istio
(Apache-2.0, github.com/istio/api). Used only by the chart tests; the chart does not ship them.
NOTE
rm -rf k8s/crds && mv k8s/crds.tmp k8s/crds
echo "k8s/crds synced from $src"
