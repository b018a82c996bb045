#!/usr/bin/env bash
# `moirai echo --metrics`: the server serves its runtime's metrics over HTTP while it echoes; after a client's
# 500 round trips, GET /metrics answers 200 with Prometheus text counting them, and GET /metrics.json answers
# JSON. Usage: metrics.sh MOIRAI_BINARY
set -u
moirai="$1"
dir="$(mktemp -d)"
trap 'kill "$server" 2>/dev/null; rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*"; cat "$dir/server.out" 2>/dev/null; exit 1; }

"$moirai" echo --listen 127.0.0.1:0 --metrics 127.0.0.1:0 --cpus 1 --idle sleep >"$dir/server.out" 2>&1 &
server=$!
for _ in $(seq 1 100); do
  grep -q "metrics at" "$dir/server.out" && grep -q "listening on" "$dir/server.out" && break
  sleep 0.05
done
address="$(sed -n 's/^moirai echo: listening on \([^ ]*\) .*/\1/p' "$dir/server.out")"
metrics="$(sed -n 's|^moirai: metrics at http://\([^/]*\)/metrics$|\1|p' "$dir/server.out")"
[ -n "$address" ] && [ -n "$metrics" ] || fail "the server did not say where it listens and serves metrics"
"$moirai" echo --connect "$address" --count 500 --cpus 0 --idle sleep >"$dir/client.out" 2>&1 ||
  fail "client: $(cat "$dir/client.out")"

get() {  # get PATH: the whole HTTP response
  exec 3<>"/dev/tcp/${metrics%:*}/${metrics##*:}" || fail "cannot connect to $metrics"
  printf 'GET %s HTTP/1.1\r\nHost: x\r\n\r\n' "$1" >&3
  cat <&3
  exec 3<&-
}
get /metrics >"$dir/metrics.out"
head -n 1 "$dir/metrics.out" | grep -q "^HTTP/1.1 200 OK" || fail "GET /metrics: $(head -n 1 "$dir/metrics.out")"
grep -q '^# TYPE moirai_task_run_time_seconds histogram' "$dir/metrics.out" || fail "no run-time histogram"
# The server's shard resumed its connection's task at least once per frame.
resumptions="$(sed -n 's/^moirai_task_resumptions_total{shard="0",cpu="1"} \([0-9]*\)$/\1/p' "$dir/metrics.out")"
[ -n "$resumptions" ] && [ "$resumptions" -ge 500 ] || fail "resumptions: '$resumptions'"
get /metrics.json | grep -q '"histograms":{"scheduling_delay":{"count":' || fail "GET /metrics.json"
get /nope | head -n 1 | grep -q "^HTTP/1.1 404" || fail "GET /nope is not a 404"

kill -TERM "$server"
wait "$server"
[ $? -eq 0 ] || fail "server exit after SIGTERM"
echo "PASS metrics"
