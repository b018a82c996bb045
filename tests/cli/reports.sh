#!/bin/sh
# `moirai bench`'s files and its regression gate, end to end on a quick bench. Usage:
# reports.sh MOIRAI_BINARY hgrm|plot|report|gate|gate_bad_file; prints "PASS <mode>" on success.
set -u
moirai="$1"
mode="$2"
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL $mode: $*"; exit 1; }
bench() { "$moirai" bench pingpong --count 2000 "$@"; }

case "$mode" in
hgrm)
  bench --hgrm "$dir/pp.hgrm" >"$dir/out" 2>&1 || fail "exit $?: $(cat "$dir/out")"
  for row in baseline.cacheline moirai.submit_to; do
    f="$dir/pp.$row.hgrm"
    [ -f "$f" ] || fail "no $f: $(cat "$dir/out")"
    grep -q "^       Value     Percentile TotalCount 1/(1-Percentile)$" "$f" || fail "$f has no header"
    grep -q '^ *[0-9.]* 1.000000000000 *2000$' "$f" || fail "$f has no 100% line with 2000 recordings"
    grep -q '^#\[Max     = ' "$f" || fail "$f has no footer"
  done
  ;;
plot)
  bench --plot "$dir/pp.svg" >"$dir/out" 2>&1 || fail "exit $?: $(cat "$dir/out")"
  grep -q '<svg xmlns="http://www.w3.org/2000/svg"' "$dir/pp.svg" || fail "not an SVG"
  grep -q '<polyline class="series baseline" data-name="baseline.cacheline"' "$dir/pp.svg" || fail "no baseline"
  grep -q '<polyline class="series moirai" data-name="moirai.submit_to"' "$dir/pp.svg" || fail "no moirai row"
  ;;
report)
  bench --report "$dir/r/deeper" >"$dir/out" 2>&1 || fail "exit $?: $(cat "$dir/out")"
  for f in pingpong.json pingpong.svg pingpong.baseline.cacheline.hgrm pingpong.moirai.submit_to.hgrm all.json \
    summary.md; do
    [ -s "$dir/r/deeper/$f" ] || fail "no $f: $(cat "$dir/out")"
  done
  grep -q '^| moirai.submit_to | [0-9]* | [0-9]* | [0-9.]*x | [0-9.]*x |$' "$dir/r/deeper/summary.md" ||
    fail "summary: $(cat "$dir/r/deeper/summary.md")"
  touch "$dir/file"
  bench --report "$dir/file/sub" >"$dir/out" 2>&1 && fail "a report under a file was accepted"
  grep -q "moirai: error: cannot create report directory '$dir/file/sub'" "$dir/out" || fail "$(cat "$dir/out")"
  ;;
gate)
  # A saved run whose p50 ratio is far below any a machine can give: the gate must fire and name it.
  bench --report "$dir/r" >"$dir/out" 2>&1 || fail "exit $?: $(cat "$dir/out")"
  sed 's/"ratio_p50":[0-9.e+-]*/"ratio_p50":0.001/g' "$dir/r/all.json" >"$dir/doctored.json"
  bench --baseline "$dir/doctored.json" --tolerance 25 >"$dir/out" 2>"$dir/err"
  rc=$?
  [ "$rc" -eq 3 ] || fail "exit $rc, not 3: $(cat "$dir/out" "$dir/err")"
  grep -q '^moirai: regression: pingpong/moirai.submit_to p50 ratio 0.001x -> [0-9.]*x (+[0-9]*%, tolerance 25%)$' \
    "$dir/err" || fail "stderr: $(cat "$dir/err")"
  grep -q 'pingpong/moirai.submit_to p50 .*REGRESSION' "$dir/out" || fail "table: $(cat "$dir/out")"
  ;;
gate_bad_file)
  echo '[{"bench":' >"$dir/bad.json"
  bench --baseline "$dir/bad.json" >"$dir/out" 2>&1
  rc=$?
  [ "$rc" -eq 2 ] || fail "exit $rc, not 2"
  grep -q "moirai: error: baseline '$dir/bad.json': invalid JSON.*moirai bench --json >" "$dir/out" || fail "$(cat "$dir/out")"
  bench --baseline "$dir/none.json" >"$dir/out" 2>&1
  rc=$?
  [ "$rc" -eq 2 ] || fail "exit $rc, not 2"
  grep -q "moirai: error: cannot read baseline '$dir/none.json': No such file" "$dir/out" || fail "$(cat "$dir/out")"
  ;;
*) fail "unknown mode" ;;
esac
echo "PASS $mode"
