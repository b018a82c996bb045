#!/usr/bin/env bash
# Installs the build into a scratch prefix, builds the README quickstart against it as an outside project would
# (find_package(moirai), moirai::moirai), and runs it.
set -euo pipefail
build="$1"
source_dir="$2"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cmake --install "$build" --prefix "$work/prefix" >/dev/null
# The first ```cpp block of the README is the quickstart.
awk '/^```cpp$/{inside=1; next} /^```$/{if(inside){exit}} inside{print}' "$source_dir/README.md" >"$work/main.cpp"
test -s "$work/main.cpp" || { echo "no \`\`\`cpp block found in README.md" >&2; exit 1; }

cmake -S "$source_dir/tests/install" -B "$work/build" -DCMAKE_PREFIX_PATH="$work/prefix" \
  -DQUICKSTART_SOURCE="$work/main.cpp" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$work/build" -j "$(nproc)" >/dev/null
"$work/build/quickstart"
