#!/bin/sh
# `moirai echo` end to end: a server on an ephemeral port (or a Unix path), a client whose every reply must come
# back intact (exit 0), again with both ends reading their sockets themselves while they spin (--poll-when-idle),
# a clean stop on SIGINT that reports what was served, and a client with nobody to talk to that fails with a
# clear error. Usage: echo.sh MOIRAI_BINARY tcp|udp|unix
set -u
moirai="$1"
transport="$2"
dir="$(mktemp -d)"
trap 'kill "$server" 2>/dev/null; rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*"; cat "$dir/server.out" 2>/dev/null; exit 1; }

# A port alone: the server must listen on loopback, not on every interface.
if [ "$transport" = unix ]; then at="$dir/echo.sock"; else at=":0"; fi
"$moirai" echo --listen "$at" --transport "$transport" --cpus 1 --idle spin-then-sleep --poll-when-idle \
  >"$dir/server.out" 2>&1 &
server=$!
for _ in $(seq 1 100); do
  grep -q "listening on" "$dir/server.out" && break
  sleep 0.05
done
address="$(sed -n 's/^moirai echo: listening on \([^ ]*\) .*/\1/p' "$dir/server.out")"
[ -n "$address" ] || fail "the server did not say where it listens"
if [ "$transport" = unix ]; then address="${address#unix:}"; fi
case "$transport:$address" in
  unix:* | *:127.0.0.1:*) ;;
  *) fail "given a port alone, the server listens on $address instead of 127.0.0.1" ;;
esac

"$moirai" echo --connect "$address" --transport "$transport" --count 2000 --cpus 0 --idle sleep --json \
  >"$dir/client.out" 2>&1 || fail "client exit $? with $(cat "$dir/client.out")"
grep -q '"count":2000' "$dir/client.out" || fail "client did not time 2000 round trips: $(cat "$dir/client.out")"
grep -q '2000 sent, 2000 echoed, 0 wrong, 0 missing' "$dir/client.out" || fail "replies: $(cat "$dir/client.out")"
"$moirai" echo --connect "$address" --transport "$transport" --count 2000 --cpus 0 --idle spin-then-sleep \
  --poll-when-idle --json >"$dir/polled.out" 2>&1 || fail "polling client exit $? with $(cat "$dir/polled.out")"
grep -q '2000 sent, 2000 echoed, 0 wrong, 0 missing' "$dir/polled.out" || fail "replies: $(cat "$dir/polled.out")"

kill -INT "$server"
wait "$server"
rc=$?
[ "$rc" -eq 0 ] || fail "server exit $rc after SIGINT"
grep -q "stopped by Interrupt" "$dir/server.out" || fail "no clean stop"
if [ "$transport" = udp ]; then
  grep -q "served 4000 frames; dropped: none" "$dir/server.out" || fail "the server's summary is wrong"
else
  grep -q "served 2 connections, 4000 frames" "$dir/server.out" || fail "the server's summary is wrong"
fi

# Nobody listens now: the client fails, naming the address.
if "$moirai" echo --connect "$address" --transport "$transport" --count 1 --timeout 0.2 >"$dir/none.out" 2>&1; then
  fail "a client with no server succeeded"
fi
grep -q "moirai: error: connect to" "$dir/none.out" || fail "no clear error: $(cat "$dir/none.out")"
echo "PASS $transport"
