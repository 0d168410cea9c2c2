#!/usr/bin/env bash
# Reply programs under load, on loopback, against the fixed reply in the
# same run:
#
#   bash benches/programs.sh
#
# 1. Messages per second and latency with a trivial reply program
#    (examples/bots/echo.sh) and with the fixed reply: wrk posts WhatsApp
#    messages, each with a MessageSid of its own, so that every one is a run
#    of the program (a repeat would be answered from memory).
# 2. /healthz latency while 8 programs sleep 5 s each on 8 workers: the
#    request loop never waits for a program.
#
# Settings (environment): DURATION (default 10s), CONNECTIONS (default 16),
# THREADS (wrk threads, default 2), WORKERS (reply workers, default 4).
# wrk comes from the distribution's packages; it is installed if missing
# (with apt-get, as root).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-16}
THREADS=${THREADS:-2}
WORKERS=${WORKERS:-4}

command -v wrk >/dev/null || {
  echo "installing wrk" >&2
  apt-get install -y -q wrk >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q wrk >/dev/null; }
}
cargo build --release --locked --quiet
BINARY=$PWD/target/release/whatsapp-webhook

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# Every request a message of its own: thread number and counter in the sid.
cat >"$WORK/messages.lua" <<'LUA'
local threads = 0
function setup(thread)
  thread:set("id", threads)
  threads = threads + 1
end
local counter = 0
request = function()
  counter = counter + 1
  local sid = string.format("SM%04d%028d", id, counter)
  local body = "MessageSid=" .. sid .. "&From=whatsapp%3A%2B15551234567&To=whatsapp%3A%2B14155238886&Body=Hello+doc"
  return wrk.format("POST", "/whatsapp", {["Content-Type"] = "application/x-www-form-urlencoded"}, body)
end
LUA

# Starts the server with the given environment on a free port; sets PORT.
start() { # log, then VAR=value...
  local log=$1
  shift
  env -i PATH="$PATH" HOME="$HOME" "$@" "$BINARY" --host 127.0.0.1 --port 0 >"$log" 2>&1 &
  PIDS+=("$!")
  PORT=""
  for _ in $(seq 500); do
    PORT=$(sed -n 's|.*listening on http://127.0.0.1:\([0-9]*\)/whatsapp|\1|p' "$log")
    [ -n "$PORT" ] && return
    sleep 0.01
  done
  echo "the server did not start: $(cat "$log")" >&2
  exit 1
}

# Runs wrk against URL with SCRIPT (or none) after an unmeasured 2 s
# warm-up (a fresh tiny_http queues some of a burst of new connections: see
# src/http/rescue.rs); sets RPS, P50 and P99.
load() { # url [script]
  local script=()
  [ -n "${2:-}" ] && script=(-s "$2")
  wrk -t"$THREADS" -c"$CONNECTIONS" -d2s "${script[@]}" "$1" >/dev/null
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "${script[@]}" "$1" >"$WORK/wrk.txt"
  if grep -q "Non-2xx\|Socket errors" "$WORK/wrk.txt"; then
    cat "$WORK/wrk.txt" >&2
    echo "errors during the load" >&2
    exit 1
  fi
  read -r RPS P50 P99 < <(awk '/Requests\/sec/ {rps=$2} /^ +50%/ {p50=$2} /^ +99%/ {p99=$2} END {print rps, p50, p99}' "$WORK/wrk.txt")
}

echo "machine: $(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), $(uname -sr)"
echo "$CONNECTIONS connections, $WORKERS reply workers, $DURATION each"

start "$WORK/fixed.log"
FIXED_URL="http://127.0.0.1:$PORT/whatsapp"
start "$WORK/program.log" REPLY_COMMAND="$PWD/examples/bots/echo.sh" REPLY_WORKERS="$WORKERS"
PROGRAM_URL="http://127.0.0.1:$PORT/whatsapp"
got=$(curl -s --data 'MessageSid=SMcheck&From=x&Body=hi' "$PROGRAM_URL")
case "$got" in *"You said: hi"*) ;; *) echo "the program answered: $got" >&2; exit 1 ;; esac

printf '%-30s %12s %10s %10s\n' "" messages/s p50 p99
load "$FIXED_URL" "$WORK/messages.lua"
printf '%-30s %12s %10s %10s\n' "fixed reply" "$RPS" "$P50" "$P99"
FIXED_RPS=$RPS
load "$PROGRAM_URL" "$WORK/messages.lua"
printf '%-30s %12s %10s %10s\n' "reply program (echo.sh)" "$RPS" "$P50" "$P99"
if grep -q "got the fallback reply" "$WORK/program.log"; then
  echo "some messages got the fallback reply:" >&2
  grep "got the fallback reply" "$WORK/program.log" | head -3 >&2
  exit 1
fi
awk -v a="$RPS" -v b="$FIXED_RPS" 'BEGIN {printf "reply program / fixed reply: %.4f\n", a / b}'

# Eight programs sleeping 5 s, on eight workers; then /healthz under load.
start "$WORK/sleeping.log" REPLY_COMMAND="sleep 5; echo done" REPLY_WORKERS=8
SLEEPING=http://127.0.0.1:$PORT
for n in 1 2 3 4 5 6 7 8; do
  curl -s -o /dev/null --max-time 20 --data "MessageSid=SMsleep$n&From=x&Body=hi" "$SLEEPING/whatsapp" &
  PIDS+=("$!")
done
sleep 0.5
running=$(pgrep -c -f '^sleep 5$' || true)
DURATION=4s load "$SLEEPING/healthz"
echo "/healthz with $running programs sleeping: $RPS requests/s, p50 $P50, p99 $P99"
