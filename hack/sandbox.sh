#!/usr/bin/env bash
# The local sandbox: installs and builds what is missing (hack/setup.sh), then starts a real
# Kubernetes control plane with a kwok Node and Redis on loopback and prints how to use them.
# Ctrl-C stops everything it started.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
eval "$(hack/setup.sh --print-env | sed 's/^/export /')"
export PATH="$root/node_modules/.bin:$PATH"
exec node hack/sandbox.ts "$@"
