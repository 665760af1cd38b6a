#!/usr/bin/env bash
# Installs what the agent needs on a Debian host and runs it against the local Docker daemon.
# Usage: sudo bash scripts/run-local.sh [harbormaster run flags...]
#   e.g. sudo bash scripts/run-local.sh --listen 127.0.0.1:9105
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

need_root() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "error: $1 needs root; run: sudo bash scripts/run-local.sh" >&2
    exit 1
  fi
}

if ! command -v node >/dev/null || [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
  echo "error: Node.js 20 or newer is required (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi

sock="${DOCKER_HOST:-unix:///var/run/docker.sock}"
sock="${sock#unix://}"
if [ -n "${DOCKER_HOST:-}" ] && [[ "$DOCKER_HOST" != unix://* ]]; then
  echo "using DOCKER_HOST=$DOCKER_HOST"
elif ! curl -fsS --unix-socket "$sock" http://docker/_ping >/dev/null 2>&1; then
  if ! command -v dockerd >/dev/null; then
    need_root "installing docker.io"
    echo "installing Debian's docker.io..."
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io curl >/dev/null
  fi
  need_root "starting dockerd"
  if command -v systemctl >/dev/null && systemctl is-system-running >/dev/null 2>&1; then
    systemctl start docker
  else
    echo "starting dockerd (log: /var/log/dockerd.log)..."
    nohup dockerd >/var/log/dockerd.log 2>&1 &
  fi
  for _ in $(seq 1 60); do
    curl -fsS --unix-socket "$sock" http://docker/_ping >/dev/null 2>&1 && break
    sleep 0.5
  done
  curl -fsS --unix-socket "$sock" http://docker/_ping >/dev/null || {
    echo "error: dockerd did not come up on $sock (see /var/log/dockerd.log)" >&2
    exit 1
  }
fi

[ -d node_modules ] || npm ci --no-audit --no-fund
npm run build --silent
if [ -z "${HARBORMASTER_STATE_DIR:-}" ] && [ "$(id -u)" -ne 0 ]; then
  export HARBORMASTER_STATE_DIR="${XDG_STATE_HOME:-$HOME/.local/state}/harbormaster"
fi
echo "starting harbormaster: metrics on http://localhost:9105/metrics (Ctrl-C stops it)"
# V8 flags: src/node-flags.ts (why; kept in step by test/unit/node-flags.test.ts)
exec node --max-semi-space-size=8 dist/src/cli.js run "$@"
