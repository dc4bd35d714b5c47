#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what is missing (hack/setup.sh), then runs
# the linters, the type checker, the build, and the unit and integration suites against a real
# control plane, Redis and Celery that the suite starts and stops itself.
#
#   hack/test.sh                      everything
#   hack/test.sh --project unit       one suite (any further arguments go to vitest)
#   CADENT_TEST_KUBECONFIG=~/.kube/config hack/test.sh   against an existing cluster
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
started=$(date +%s)

eval "$(hack/setup.sh --print-env | sed 's/^/export /')"
# Every script and test runs on the project-local Node 24, never the machine's own node.
export PATH="$root/node_modules/.bin:$PATH"
[[ "$(node --version)" == v24.* ]] || { echo "expected the project-local Node 24, got $(node --version)" >&2; exit 1; }

echo "== lint, types, build ($(node --version))"
npm run --silent lint
npm run --silent typecheck
npm run --silent build

echo "== tests"
report="$(mktemp -d)/vitest.json"
status=0
vitest run --reporter=default --reporter=json --outputFile.json="$report" "$@" || status=$?
if [[ -f "$report" ]]; then
  node -e '
    const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const skipped = r.numPendingTests + r.numTodoTests;
    console.log(`vitest: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped`);
  ' "$report"
fi
echo "== done in $(( $(date +%s) - started ))s"
exit $status
