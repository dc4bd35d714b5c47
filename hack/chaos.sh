#!/usr/bin/env bash
# The long chaos suite (issue 8, docs/reliability.md): every scenario of tests/chaos at full length
# (e.g. 20 controller kills instead of 6), plus the fuzzers at a larger case count. CI runs the short
# version of every scenario as part of hack/test.sh; this is for a release or a change to the
# controller's guarantees. Counts are appended to $CADENT_CHAOS_REPORT (default chaos-report.jsonl).
#
#   hack/chaos.sh                 everything, long
#   hack/chaos.sh -t "kill -9"    one scenario (arguments go to vitest)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
eval "$(hack/setup.sh --print-env | sed 's/^/export /')"
export PATH="$root/node_modules/.bin:$PATH"
export CADENT_CHAOS=full
export CADENT_FUZZ_RUNS="${CADENT_FUZZ_RUNS:-20000}"
export CADENT_FUZZ_SEED="${CADENT_FUZZ_SEED:-random}"
export CADENT_CHAOS_REPORT="${CADENT_CHAOS_REPORT:-$root/chaos-report.jsonl}"
vitest run --project chaos "$@"
vitest run --project unit tests/unit/fuzz
vitest run --project integration tests/integration/fuzz-*.test.ts
echo "chaos counts: $CADENT_CHAOS_REPORT"
