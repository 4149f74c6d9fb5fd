#!/bin/sh
# refgc — `make run` in the build tree (CTest: demo_pipeline): tools/run_demo.sh runs the traced
# demonstration, then `refgc report` and `refgc export` in every format; every file it should
# write must exist, be non-empty and look like what it claims to be.
#
#   sh tests/demo_pipeline.sh SOURCE_DIR DEMO REFGC WORK_DIR
set -u
src=$1
work=$4
REFGC_DEMO=$2
REFGC_CMD=$3
export REFGC_DEMO REFGC_CMD
rm -rf "$work"
mkdir -p "$work" && cd "$work" || exit 2
sh "$src/tools/run_demo.sh" . demo >pipeline.log 2>&1
status=$?
fail=0
if [ "$status" -ne 0 ]; then
  echo "FAILED: tools/run_demo.sh exited with status $status"
  fail=1
fi
has() { # has FILE [EXTENDED-REGEX]: FILE is non-empty (and holds a match)
  if [ ! -s "$1" ]; then
    echo "MISSING or empty: $work/$1"
    fail=1
  elif [ $# -gt 1 ] && ! grep -Eq -- "$2" "$1"; then
    echo "WRONG: $work/$1 has no /$2/"
    fail=1
  else
    echo "ok: $1"
  fi
}
has demo.txt 'in use'
has demo.json '"steps"'
for phase in 01-load 02-traffic 03-eviction 04-objects 05-cycles 06-misuse 07-final; do
  has "demo-snapshots/$phase.rgc"
done
has demo.html '<html'
has demo.html 'observers_subscribe'
has demo.massif '^snapshot=0$'
has demo.massif 'heap_tree=detailed'
has demo.heapsnapshot '"node_fields"'
has demo.heapsnapshot 'observers_subscribe'
has demo.folded '^[^ ]*observers_subscribe [0-9]+$'
has demo.speedscope.json 'speedscope.app/file-format-schema.json'
has demo.speedscope.json 'observers_subscribe'
has demo.dot '^digraph'
has demo.dot 'subscription'
if command -v dot >/dev/null 2>&1; then
  has demo.svg '<svg'
else
  echo "skipped: demo.svg (Graphviz's dot is not installed)"
fi
if command -v ms_print >/dev/null 2>&1; then
  if ms_print demo.massif >ms_print.txt 2>&1; then
    echo "ok: ms_print reads demo.massif"
  else
    echo "WRONG: ms_print cannot read demo.massif"
    cat ms_print.txt
    fail=1
  fi
fi
has pipeline.log '^where to look'
if [ "$fail" -ne 0 ]; then
  echo "--- tools/run_demo.sh's output ($work/pipeline.log):"
  cat pipeline.log
fi
exit "$fail"
