#!/bin/sh
# refgc — build and run every test configuration; the last line is
# "total: N passed, N failed" (each configuration's CTest summary is added up; tests CTest
# skipped, exit status 77, are listed and counted apart, not as passed).
#
#   sh tests/run_all.sh [release|asan|tsan|valgrind|clang ...]   default: all of them
#
# Environment: JOBS (build parallelism, default 2), WERROR (ON/OFF, default OFF).
set -u
JOBS=${JOBS:-2}
WERROR=${WERROR:-OFF}
cd "$(dirname "$0")/.." || exit 2
configs=${*:-"release asan tsan valgrind clang"}
total_pass=0
total_fail=0
total_skip=0
failed_configs=""

run_config() {
  name=$1; dir=build/$1; label=$2; shift 2
  echo "=== $name: configure and build ($dir)"
  if ! cmake -S . -B "$dir" -DREFGC_WERROR="$WERROR" "$@" >"$dir.configure.log" 2>&1; then
    mkdir -p "$dir"; cat "$dir.configure.log"; echo "=== $name: configure FAILED"
    total_fail=$((total_fail + 1)); failed_configs="$failed_configs $name"; return
  fi
  if ! cmake --build "$dir" -j"$JOBS" >"$dir.build.log" 2>&1; then
    cat "$dir.build.log"; echo "=== $name: build FAILED"
    total_fail=$((total_fail + 1)); failed_configs="$failed_configs $name"; return
  fi
  grep -i "warning" "$dir.build.log" && echo "=== $name: the build printed warnings"
  echo "=== $name: test"
  if [ -n "$label" ]; then set -- -L "$label"; else set --; fi
  (cd "$dir" && ctest --output-on-failure --timeout 900 "$@") >"$dir.test.log" 2>&1
  cat "$dir.test.log" | grep -E "^ *[0-9]+/[0-9]+ Test|tests passed|FAILED|Failed|\*\*\*" || true
  line=$(grep -E "tests passed, [0-9]+ tests? failed out of [0-9]+" "$dir.test.log" | tail -n 1)
  if [ -z "$line" ]; then
    cat "$dir.test.log"; echo "=== $name: no CTest summary"
    total_fail=$((total_fail + 1)); failed_configs="$failed_configs $name"; return
  fi
  failed=$(echo "$line" | sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/')
  count=$(echo "$line" | sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\2/')
  # tests that exited 77 (a consumer or tool missing) count in CTest's total but did not pass
  skipped=$(sed -n '/The following tests did not run:/,/^$/p' "$dir.test.log" | grep -c "(Skipped)")
  if [ "$skipped" -ne 0 ]; then
    sed -n '/The following tests did not run:/,/^$/p' "$dir.test.log" | grep "(Skipped)" |
      sed "s/^/=== $name: skipped: /"
  fi
  total_pass=$((total_pass + count - failed - skipped))
  total_fail=$((total_fail + failed))
  total_skip=$((total_skip + skipped))
  if [ "$failed" -ne 0 ]; then
    grep -A200 "The following tests FAILED" "$dir.test.log"
    failed_configs="$failed_configs $name"
  fi
}

mkdir -p build
for c in $configs; do
  case $c in
    release) run_config release "" -DCMAKE_BUILD_TYPE=Release ;;
    asan) run_config asan "" -DCMAKE_BUILD_TYPE=Debug -DREFGC_ASAN=ON -DREFGC_UBSAN=ON ;;
    tsan) run_config tsan threads -DCMAKE_BUILD_TYPE=RelWithDebInfo -DREFGC_TSAN=ON ;;
    valgrind)
      if command -v valgrind >/dev/null 2>&1; then
        run_config valgrind valgrind -DCMAKE_BUILD_TYPE=Debug -DREFGC_VALGRIND=ON
      else
        echo "=== valgrind: skipped (valgrind is not installed)"
      fi ;;
    clang)
      if command -v clang >/dev/null 2>&1; then
        CC=clang run_config clang "" -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_COMPILER=clang
      else
        echo "=== clang: skipped (clang is not installed)"
      fi ;;
    *) echo "unknown configuration: $c (release asan tsan valgrind clang)"; exit 2 ;;
  esac
done

[ -n "$failed_configs" ] && echo "failing configurations:$failed_configs"
[ "$total_skip" -ne 0 ] && echo "skipped: $total_skip (a tool they need is missing; listed above)"
echo "total: $total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
