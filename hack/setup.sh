#!/usr/bin/env bash
# Installs everything cadent's tests and sandbox need, caching what is slow:
#   - npm packages (npm ci; the project-local Node 24 comes with them),
#   - Debian's redis-server and python3-venv (apt-get update first), when missing,
#   - the Go-built Kubernetes control plane, kwok and helm (hack/build-kube.sh), when missing,
#   - the Python virtualenv with Celery pinned in tests/python/requirements.txt, when missing.
# Idempotent: a warm run takes seconds. Prints nothing on stdout but the env lines it exports
# when called with --print-env.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${CADENT_CACHE:-$HOME/.cache/cadent}"
log() { echo "[setup] $*" >&2; }

# --- Debian packages -------------------------------------------------------------------------
missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v redis-benchmark >/dev/null || missing+=(redis-tools)
python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
if ((${#missing[@]})); then
  if [[ $(id -u) != 0 ]]; then
    log "missing Debian packages: ${missing[*]} — install them (sudo apt-get install ${missing[*]})"; exit 1
  fi
  log "apt-get install ${missing[*]}"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
  # Debian starts a system redis on 6379; cadent never uses it, and leaves it alone.
fi

# --- npm packages ----------------------------------------------------------------------------
stamp="$root/node_modules/.cadent-lock-hash"
want="$(sha256sum "$root/package-lock.json" | cut -c1-16)"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  log "npm ci"
  (cd "$root" && npm ci --no-audit --no-fund >&2)
  echo "$want" >"$stamp"
fi

# --- Kubernetes control plane, kwok, helm -----------------------------------------------------
# Built even when the tests use an existing cluster: kubectl and helm serve the chart tests.
kube_bin="$("$root/hack/build-kube.sh")"

# --- Python virtualenv with Celery ------------------------------------------------------------
req="$root/tests/python/requirements.txt"
venv="$cache/venv-$(cat "$req" <(python3 -c 'import sys; print(sys.version)') | sha256sum | cut -c1-12)"
if [[ ! -f "$venv/.complete" ]]; then
  log "creating the Celery virtualenv in $venv"
  rm -rf "$venv" && python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$req" >&2
  touch "$venv/.complete"
fi

if [[ "${1:-}" == --print-env ]]; then
  echo "CADENT_KUBE_BIN=$kube_bin"
  echo "CADENT_VENV=$venv"
fi
