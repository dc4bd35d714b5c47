#!/usr/bin/env bash
# Every benchmark of docs/benchmarks.md, end to end, from a fresh clone: installs what they need
# (hack/setup.sh: npm packages incl. BullMQ and celery-node, Debian's redis-server and
# redis-benchmark, the control plane, the Celery virtualenv), then runs each and prints its
# markdown table. Takes about an hour on 2 cores; run it on a quiet machine.
#
#   hack/bench.sh                         all of them
#   hack/bench.sh worker fire-lag         some of them (schedule, worker, fire-lag, job-lag, footprint)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
eval "$(hack/setup.sh --print-env | sed 's/^/export /')"
export PATH="$root/node_modules/.bin:$PATH"
npm run --silent build
benches=("$@")
[[ ${#benches[@]} -gt 0 ]] || benches=(schedule worker fire-lag job-lag footprint)
for bench in "${benches[@]}"; do
  echo "== bench:$bench ($(date -u +%FT%TZ), load average $(cut -d' ' -f1-3 /proc/loadavg))"
  npm run --silent "bench:$bench"
done
