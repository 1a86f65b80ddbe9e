#!/usr/bin/env bash
# Time `make demo` on a fresh clone until the leaderboard answers, then a second run (results reused).
#   bash perf/demo_timing.sh [PORT]
set -euo pipefail
port=${1:-5099}
src=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
git clone -q "$src" "$work/phasebench"
cd "$work/phasebench"

run_once() {
  local label=$1 start end pid
  start=$(date +%s)
  make demo PORT="$port" >"$work/$label.log" 2>&1 &
  pid=$!
  until curl -fs "http://127.0.0.1:$port/api/tasks" >/dev/null 2>&1; do
    kill -0 "$pid" 2>/dev/null || { echo "$label: make demo exited early; see $work/$label.log"; tail -20 "$work/$label.log"; exit 1; }
    sleep 1
  done
  end=$(date +%s)
  echo "$label: $((end - start)) s to a served leaderboard"
  pkill -f "phasebench serve --port $port" || true
  wait "$pid" 2>/dev/null || true
}

run_once "first run (fresh clone, install included)"
run_once "second run (results reused)"
echo "logs in $work"
