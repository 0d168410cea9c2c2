#!/usr/bin/env bash
# Load benchmark: the release binary under wrk, with a realistic Twilio
# WhatsApp POST over 16 keep-alive connections, on loopback, against the
# idiomatic tiny_http hello world (benches/hello.rs: a recv() loop answering
# the same precomputed bytes with respond) in the same run.
#
#   bash benches/load.sh              # this server and the hello world, alternately
#   bash benches/load.sh --vs-nginx   # and nginx returning the same bytes
#
# Two loads: saturation (each connection sends its next request as soon as
# the answer arrives: throughput, and latency with queueing), then paced
# (1 ms between requests on each connection: latency at a steady load).
#
# Settings (environment): DURATION (default 10s), ROUNDS (default 3),
# CONNECTIONS (default 16), THREADS (wrk threads, default 2). The servers
# run with an empty environment (the defaults), whatever is exported.
#
# It prints every figure docs/performance.md states: per round, requests/s,
# latency and CPU time per request (user + system, from /proc) of each
# server; the medians and their ratios; start-up to first answer; the
# binary's size; resident memory idle and at peak.
#
# Each measured run follows an unmeasured 2 s warm-up with the same load, for
# both servers: a tiny_http that is fresh, or was idle for 5 s, queues some of
# a burst of new connections behind busy threads until they are released (see
# src/http/rescue.rs); that is measured separately, as the cold start.
# wrk and nginx come from the distribution's packages; they are installed
# if missing (with apt-get, as root).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-16}
THREADS=${THREADS:-2}
VS_NGINX=false
case "${1:-}" in
  "") ;;
  --vs-nginx) VS_NGINX=true ;;
  *) echo "usage: bash benches/load.sh [--vs-nginx]" >&2; exit 2 ;;
esac

need() { # command, package
  command -v "$1" >/dev/null && return
  echo "installing $2" >&2
  apt-get install -y -q "$2" >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q "$2" >/dev/null; }
}
need wrk wrk
$VS_NGINX && { command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need nginx nginx-light; }
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

cargo build --release --locked --quiet
BINARY=target/release/whatsapp-webhook
HELLO=$(cargo build --release --locked --quiet --bench hello --message-format=json |
  python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "hello" and m.get("executable"):
        print(m["executable"])')
TWIML='<?xml version="1.0" encoding="UTF-8"?><Response><Message>What'"'"'s app, doc?</Message></Response>'

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# A WhatsApp message as Twilio posts it: the 16 fields of a sandbox message,
# 610 bytes of form (about 800 bytes of request with the headers).
FORM='SmsMessageSid=SM9d3b1b2f6a0c4e5f8a7b6c5d4e3f2a1b&NumMedia=0&ProfileName=Ada+Lovelace&MessageType=text&SmsSid=SM9d3b1b2f6a0c4e5f8a7b6c5d4e3f2a1b&WaId=15551234567&SmsStatus=received&Body=Hello+doc%21+Caf%C3%A9+%26+co+%3D+100%25+%F0%9F%91%8B&To=whatsapp%3A%2B14155238886&NumSegments=1&ReferralNumMedia=0&MessageSid=SM9d3b1b2f6a0c4e5f8a7b6c5d4e3f2a1b&AccountSid=AC0123456789abcdef0123456789abcdef&From=whatsapp%3A%2B15551234567&ApiVersion=2010-04-01&ChannelMetadata=%7B%22type%22%3A%22whatsapp%22%2C%22data%22%3A%7B%22context%22%3A%7B%22ProfileName%22%3A%22Ada+Lovelace%22%2C%22WaId%22%3A%2215551234567%22%7D%7D%7D'
cat >"$WORK/post.lua" <<EOF
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["User-Agent"] = "TwilioProxy/1.1"
wrk.headers["X-Twilio-Signature"] = "NFmK53ftI6h/mrzyAyFZr49RbPE="
wrk.body = "$FORM"
EOF
# The same requests, each connection waiting 1 ms after each answer: a
# steady load well below saturation, for latency without queueing.
{ cat "$WORK/post.lua"; echo 'function delay() return 1 end'; } >"$WORK/paced.lua"

# The port in a server's "listening on" line in LOG, with no process
# started (mapfile and =~ are bash's own); sets PORT, empty until then.
port_in() { # log
  local lines line
  PORT=""
  mapfile -t lines <"$1"
  for line in "${lines[@]}"; do
    if [[ $line =~ listening\ on\ http://127\.0\.0\.1:([0-9]+)/whatsapp ]]; then
      PORT=${BASH_REMATCH[1]}
      return
    fi
  done
}

# Starts a server (the log file, then the command) on a free port with an
# empty environment, its output going to the log; sets PORT and PID.
start_server() {
  local log=$1
  shift
  : >"$log"
  env -i "$@" >"$log" 2>&1 &
  PID=$!
  PIDS+=("$PID")
  for _ in $(seq 500); do
    port_in "$log"
    [ -n "$PORT" ] && return
    sleep 0.01
  done
  echo "the server did not start: $(cat "$log")" >&2
  exit 1
}

# CPU time a process has used, user and system, in clock ticks.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
TICK_US=$((1000000 / $(getconf CLK_TCK)))

# Runs wrk with SCRIPT against URL (served by process PID) after a warm-up,
# in this shell (so that a failure ends the script); sets RPS, P50, P99
# and CPU_US (CPU time per request, in microseconds).
load() { # url script pid
  wrk -t"$THREADS" -c"$CONNECTIONS" -d2s -s "$2" "$1" >/dev/null
  local before
  before=$(ticks "$3")
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$2" "$1" >"$WORK/wrk.txt"
  local used=$(($(ticks "$3") - before))
  if grep -q "Non-2xx\|Socket errors" "$WORK/wrk.txt"; then
    cat "$WORK/wrk.txt" >&2
    grep -v "incoming message" "$WORK/server.log" | tail -20 >&2 || true
    echo "errors during the load" >&2
    exit 1
  fi
  local requests
  read -r RPS P50 P99 requests < <(awk '/Requests\/sec/ {rps=$2} /^ +50%/ {p50=$2} /^ +99%/ {p99=$2} / requests in / {n=$1} END {print rps, p50, p99, n}' "$WORK/wrk.txt")
  CPU_US=$(awk -v t="$used" -v us="$TICK_US" -v n="$requests" 'BEGIN {printf "%.2f", t * us / n}')
}

kib() { awk -v key="$2:" '$1 == key {print $2}' "/proc/$1/status"; }

# Start-up: from exec to the first answered request. Nothing but the
# server is started in the timed part: the clock is bash's own
# ($EPOCHREALTIME), the log is read with builtins, the request goes over
# bash's /dev/tcp.
startup_ms() {
  for run in $(seq 20); do
    # A log of its own, created before the server starts: the port read
    # must be this server's.
    local log="$WORK/startup.$run.log"
    : >"$log"
    local t0=$EPOCHREALTIME
    env -i "$BINARY" --host 127.0.0.1 --port 0 2>"$log" &
    local pid=$!
    local deadline=$((${t0%[.,]*} + 5))
    PORT=""
    while [ -z "$PORT" ]; do
      port_in "$log"
      [ "${EPOCHREALTIME%[.,]*}" -lt "$deadline" ] || { echo "no start in 5 s: $(cat "$log")" >&2; exit 1; }
    done
    exec 3<>"/dev/tcp/127.0.0.1/$PORT" || { echo "cannot connect to port $PORT" >&2; exit 1; }
    printf 'GET /whatsapp HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' >&3
    local status
    read -r status <&3
    local t1=$EPOCHREALTIME
    exec 3<&-
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    [[ $status == "HTTP/1.1 200 OK"* ]] || { echo "unexpected answer: $status" >&2; exit 1; }
    # Microseconds, from seconds with six decimals (a comma in some locales).
    local us=$(( 10#${t1//[.,]/} - 10#${t0//[.,]/} ))
    echo "$us" >>"$WORK/startup.txt"
  done
  sort -n "$WORK/startup.txt" | awk '{a[NR]=$1} END {printf "%.1f ms median, %.1f ms best\n", a[int((NR+1)/2)]/1000, a[1]/1000}'
}

echo "machine: $(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), $(uname -sr)"
echo "binary: $(stat -c %s "$BINARY") bytes (stripped release build)"
echo "start-up to first answer: $(startup_ms)"

start_server "$WORK/server.log" "$BINARY" --host 127.0.0.1 --port 0
SERVER_PID=$PID
SERVER_URL="http://127.0.0.1:$PORT/whatsapp"
got=$(curl -s -X POST --data "$FORM" "$SERVER_URL")
[ "$got" = "$TWIML" ] || { echo "unexpected answer: $got" >&2; exit 1; }
echo "idle RSS: $(kib "$SERVER_PID" VmRSS) KiB"
wrk -t"$THREADS" -c"$CONNECTIONS" -d2s --latency -s "$WORK/post.lua" "$SERVER_URL" >"$WORK/cold.txt"
echo "cold start, first 2 s: $(awk '/^ +99%/ {p99=$2} /Requests\/sec/ {rps=$2} END {print rps " requests/s, p99 " p99}' "$WORK/cold.txt")"

start_server "$WORK/hello.log" "$HELLO" --serve
HELLO_PID=$PID
HELLO_URL="http://127.0.0.1:$PORT/whatsapp"
got=$(curl -s -X POST --data "$FORM" "$HELLO_URL")
[ "$got" = "$TWIML" ] || { echo "the hello world answered: $got" >&2; exit 1; }
SERVERS=(whatsapp-webhook tiny_http-hello)
URLS=("$SERVER_URL" "$HELLO_URL")
SERVER_PIDS=("$SERVER_PID" "$HELLO_PID")

# Starts nginx (one worker, access log off) answering the same bytes from a
# static return; sets NGINX_URL.
start_nginx() {
NGINX_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$WORK/nginx"
cat >"$WORK/nginx/nginx.conf" <<EOF
worker_processes 1;
master_process off;
daemon off;
error_log $WORK/nginx/error.log;
pid $WORK/nginx/nginx.pid;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx/body;
  proxy_temp_path $WORK/nginx/proxy;
  fastcgi_temp_path $WORK/nginx/fastcgi;
  uwsgi_temp_path $WORK/nginx/uwsgi;
  scgi_temp_path $WORK/nginx/scgi;
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location = /whatsapp {
      default_type "text/xml";
      charset utf-8;
      return 200 "${TWIML//\"/\\\"}";
    }
  }
}
EOF
"$NGINX" -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx" 2>"$WORK/nginx/stderr" &
NGINX_PID=$!
PIDS+=("$NGINX_PID")
NGINX_URL="http://127.0.0.1:$NGINX_PORT/whatsapp"
for _ in $(seq 200); do curl -s -o /dev/null "$NGINX_URL" && break; sleep 0.02; done
if grep -qs emerg "$WORK/nginx/error.log"; then
  cat "$WORK/nginx/error.log" >&2
  exit 1
fi
}

if $VS_NGINX; then
  start_nginx
  got=$(curl -s -X POST --data "$FORM" "$NGINX_URL")
  [ "$got" = "$TWIML" ] || { echo "nginx answered: $got" >&2; exit 1; }
  SERVERS+=(nginx)
  URLS+=("$NGINX_URL")
  SERVER_PIDS+=("$NGINX_PID")
fi

printf '%-7s %-18s %12s %10s %10s %14s\n' round server requests/s p50 p99 "CPU/request"
for round in $(seq "$ROUNDS"); do
  for i in "${!SERVERS[@]}"; do
    load "${URLS[$i]}" "$WORK/post.lua" "${SERVER_PIDS[$i]}"
    printf '%-7s %-18s %12s %10s %10s %11s us\n' "$round" "${SERVERS[$i]}" "$RPS" "$P50" "$P99" "$CPU_US"
    echo "$RPS" >>"$WORK/rps.$i"
    echo "$CPU_US" >>"$WORK/cpu.$i"
  done
done
echo "paced, 1 ms between requests on each connection:"
for i in "${!SERVERS[@]}"; do
  load "${URLS[$i]}" "$WORK/paced.lua" "${SERVER_PIDS[$i]}"
  printf '  %-18s %s requests/s, p50 %s, p99 %s, CPU %s us/request\n' "${SERVERS[$i]}" "$RPS" "$P50" "$P99" "$CPU_US"
done
median() { sort -n "$1" | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
for what in rps cpu; do
  ours=$(median "$WORK/$what.0")
  case $what in
    rps) printf 'median of %s rounds, requests/s: whatsapp-webhook %s' "$ROUNDS" "$ours" ;;
    cpu) printf 'median of %s rounds, CPU us/request: whatsapp-webhook %s' "$ROUNDS" "$ours" ;;
  esac
  for i in "${!SERVERS[@]}"; do
    [ "$i" = 0 ] && continue
    theirs=$(median "$WORK/$what.$i")
    printf ', %s %s (ratio %s)' "${SERVERS[$i]}" "$theirs" "$(ratio "$ours" "$theirs")"
  done
  echo
done
echo "peak RSS of whatsapp-webhook: $(kib "$SERVER_PID" VmHWM) KiB"
