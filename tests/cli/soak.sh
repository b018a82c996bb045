#!/bin/sh
# `moirai soak` end to end: COUNT checked messages through every transport must all arrive, once, in order and
# intact, with resident memory flat (exit 0), and the JSON must say so per transport. Usage: soak.sh MOIRAI COUNT
set -u
moirai="$1"
count="$2"
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
fail() { echo "FAIL: $*"; cat "$out"; exit 1; }

"$moirai" soak --transport all --messages "$count" --senders 3 --json >"$out" 2>&1 || fail "exit $?"
for t in channel mpsc tcp udp unix ipc; do
  row="$(tr '{' '\n' <"$out" | grep "\"transport\":\"$t\"")" || fail "no row for $t"
  for field in "\"messages\":$count," "\"received\":$count," '"lost":0,' '"duplicated":0,' '"reordered":0,' \
    '"corrupt":0,' '"pass":true,' '"violations":""'; do
    echo "$row" | grep -q "$field" || fail "$t: no $field in $row"
  done
  echo "$row" | grep -Eq '"msgs_per_sec":[0-9.e+]+,' || fail "$t: no msgs_per_sec"
  echo "$row" | grep -Eq '"rss_start_kb":[1-9][0-9]*,"rss_end_kb":[1-9][0-9]*,' || fail "$t: no resident memory"
done
tr '{' '\n' <"$out" | grep '"transport":"mpsc"' | grep -q '"senders":3,' || fail "mpsc did not use 3 senders"
tr '{' '\n' <"$out" | grep '"transport":"ipc"' | grep -Eq '"peer_rss_start_kb":[1-9]' || fail "ipc: no sender memory"
grep -q '\],"pass":true}$' "$out" || fail "the run as a whole did not pass"
echo "PASS soak"
