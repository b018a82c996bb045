#!/usr/bin/env bash
# The public headers' shape, checked with the compiler itself:
#   - <moirai/core/runtime.hpp> pulls in at most 10 Moirai headers (itself included), and never liburing.h:
#     an application that only starts a runtime does not compile the scheduler's internals or io_uring's;
#   - every public header (outside detail/ folders) compiles on its own;
#   - every public header is reachable from its module's umbrella (<moirai/core.hpp>, <moirai/io.hpp>, ...),
#     and <moirai/moirai.hpp> reaches them all;
#   - no public header is detail from top to bottom: each declares something outside a detail namespace.
# Usage: public_headers.sh CXX SOURCE_DIR
set -euo pipefail
cxx="$1"
src="$2"
modules=(base io numa rt core transport)
include_dir() { if [ "$1" = base ]; then echo "$src/core/base/include"; else echo "$src/$1/include"; fi; }
flags=(-std=c++20 -fsyntax-only)
for m in "${modules[@]}"; do flags+=(-I "$(include_dir "$m")"); done
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failed=0
fail() {
  echo "FAIL: $*" >&2
  failed=1
}

# 1. What runtime.hpp pulls in.
echo '#include <moirai/core/runtime.hpp>' >"$work/runtime.cpp"
"$cxx" "${flags[@]}" -H "$work/runtime.cpp" 2>"$work/runtime.h.txt"
moirai_headers="$(grep -E '^\.+ ' "$work/runtime.h.txt" | grep -c '/moirai/' || true)"
echo "runtime.hpp pulls in $moirai_headers Moirai headers:"
grep -E '^\.+ ' "$work/runtime.h.txt" | grep '/moirai/' | sed "s#$src/##"
if [ "$moirai_headers" -gt 10 ]; then
  fail "runtime.hpp pulls in $moirai_headers Moirai headers (at most 10): keep internals out of what it includes"
fi
if grep -q 'liburing' "$work/runtime.h.txt"; then
  fail "runtime.hpp pulls in liburing.h: only moirai/core/io.hpp and moirai/io/ring.hpp may"
fi

# 2-4. Each public header alone, its umbrella, and its share of non-detail declarations.
for m in "${modules[@]}"; do
  dir="$(include_dir "$m")/moirai/$m"
  [ -d "$dir" ] || continue
  umbrella="$(include_dir "$m")/moirai/$m.hpp"
  reach="$work/$m.reach"
  if [ -f "$umbrella" ]; then
    echo "#include <moirai/$m.hpp>" >"$work/umbrella_$m.cpp"
    "$cxx" "${flags[@]}" -H "$work/umbrella_$m.cpp" 2>"$reach" || fail "<moirai/$m.hpp> does not compile"
  elif [ "$m" != base ]; then
    fail "module $m has no umbrella header <moirai/$m.hpp>"
  fi
  while IFS= read -r h; do
    rel="${h#"$(include_dir "$m")/"}"
    echo "#include <$rel>" >"$work/one.cpp"
    "$cxx" "${flags[@]}" "$work/one.cpp" 2>"$work/one.err" || {
      cat "$work/one.err" >&2
      fail "<$rel> does not compile on its own"
    }
    if [ -f "$reach" ] && ! grep -q "/$rel\$" "$reach"; then fail "<$rel> is not reached from <moirai/$m.hpp>"; fi
    if ! grep -qE '^namespace moirai(::[a-z_]+)? \{' "$h" || ! grep -E '^namespace moirai(::[a-z_]+)? \{' "$h" |
      grep -qv '::detail'; then
      fail "<$rel> declares nothing outside a detail namespace: move it under detail/"
    fi
  done < <(find "$dir" -name '*.hpp' -not -path '*/detail/*' | sort)
done

# The umbrella of umbrellas.
echo '#include <moirai/moirai.hpp>' >"$work/all.cpp"
"$cxx" "${flags[@]}" -H "$work/all.cpp" 2>"$work/all.txt" || fail "<moirai/moirai.hpp> does not compile"
for m in io numa rt core transport; do
  grep -q "/moirai/$m.hpp\$" "$work/all.txt" || fail "<moirai/moirai.hpp> does not include <moirai/$m.hpp>"
done

[ "$failed" -eq 0 ] && echo "public headers: ok"
exit "$failed"
