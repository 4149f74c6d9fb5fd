#!/bin/sh
# refgc — the demonstration behind `make run`, then its report and viewer exports.
#
#   sh tools/run_demo.sh [BUILD_DIR [PREFIX]]     defaults: build/release refgc-report
#
# (REFGC_DEMO and REFGC_CMD in the environment override BUILD_DIR/refgc-demo and BUILD_DIR/refgc.)
# Runs BUILD_DIR/refgc-demo --out PREFIX (traced; it writes PREFIX.txt, PREFIX.json and
# PREFIX-snapshots/NN-PHASE.rgc, the last one with the object graph), then the refgc command:
#   PREFIX.html               refgc report (every snapshot)
#   PREFIX.massif             refgc export --format massif (every snapshot: a time series)
#   PREFIX.heapsnapshot       refgc export --format heapsnapshot (the final snapshot)
#   PREFIX.folded             refgc export --format folded
#   PREFIX.speedscope.json    refgc export --format speedscope
#   PREFIX.dot, PREFIX.svg    refgc export --format dot (the svg only when Graphviz is there)
# and says where the files are and what opens them. The exit status is the demonstration's
# (non-zero when one of its checks failed, the planted leak not found among them), else that of
# the first step that failed. The tests run it too (tests/demo_pipeline.sh).
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build/release}
out=${2:-refgc-report}
demo=${REFGC_DEMO:-$build/refgc-demo} # the environment may name them elsewhere
refgc=${REFGC_CMD:-$build/refgc}
for exe in "$demo" "$refgc"; do
  if [ ! -x "$exe" ]; then
    echo "run_demo.sh: $exe is missing: build first (make build)" >&2
    exit 2
  fi
done

"$demo" --out "$out"
status=$?
snapdir=$out-snapshots
set -- "$snapdir"/[0-9][0-9]-*.rgc
if [ ! -f "$1" ]; then
  echo "run_demo.sh: the demonstration wrote no snapshot in $snapdir/" >&2
  exit $((status ? status : 1))
fi
final=""
for f in "$@"; do final=$f; done # the last one: NN-final.rgc, with the object graph

echo
echo "the report and the viewer exports (the refgc command):"
step() { # step FILE COMMAND...: run the command, which writes FILE
  file=$1
  shift
  if "$@"; then
    printf '    wrote %-32s %s\n' "$file" "$(wc -c <"$file" | tr -d ' ') bytes"
  else
    echo "    FAILED: $*" >&2
    [ "$status" -ne 0 ] || status=1
  fi
}
step "$out.html" "$refgc" report "$@" --strip-path "$here/" -o "$out.html"
step "$out.massif" "$refgc" export "$@" --format massif --strip-path "$here/" -o "$out.massif"
step "$out.heapsnapshot" "$refgc" export "$final" --format heapsnapshot --strip-path "$here/" \
  -o "$out.heapsnapshot"
step "$out.folded" "$refgc" export "$final" --format folded --strip-path "$here/" -o "$out.folded"
step "$out.speedscope.json" "$refgc" export "$final" --format speedscope --strip-path "$here/" \
  -o "$out.speedscope.json"
step "$out.dot" "$refgc" export "$final" --format dot --strip-path "$here/" -o "$out.dot"
svg=""
if command -v dot >/dev/null 2>&1 && [ -s "$out.dot" ]; then
  step "$out.svg" dot -Tsvg "$out.dot" -o "$out.svg"
  svg=yes
fi

echo
echo "where to look (in $(pwd)):"
w=$((${#out} + 19)) # the width of the longest name, PREFIX.speedscope.json, and a space
look() { # look NAME LINE...: the name, then each line aligned under the first
  name=$1
  shift
  for line in "$@"; do
    printf "  %-${w}s %s\n" "$name" "$line"
    name=""
  done
}
look "$out.html" "the report: memory over time, a flame graph, top sites and types, the leak" \
  "suspects with their chains, growth, the collector: open it in a browser" \
  "(one self-contained page, works offline): xdg-open $out.html"
look "$out.massif" "valgrind massif format: ms_print $out.massif | less, or massif-visualizer"
look "$out.heapsnapshot" "Chrome or Chromium: DevTools > Memory > Load... (objects by type," \
  "retainers, retained sizes: the lost subscription and its document)"
look "$out.folded" "folded stacks for a flame graph: flamegraph.pl --countname=bytes" \
  "$out.folded > flame.svg, or inferno-flamegraph, or https://www.speedscope.app"
look "$out.speedscope.json" "open it on https://www.speedscope.app" \
  "(or, with speedscope installed: speedscope $out.speedscope.json)"
if [ -n "$svg" ]; then
  look "$out.dot, .svg" "the reference graph around the leak suspects, chain from a root" \
    "highlighted: open the .svg in a browser (made with dot -Tsvg $out.dot)"
else
  look "$out.dot" "the reference graph around the leak suspects: dot -Tsvg $out.dot > $out.svg" \
    "(Graphviz is not installed here: no .svg written)"
fi
look "$snapdir/" "the snapshots, one per step: refgc top FILE, refgc diff OLD NEW"
look "$out.txt, .json" "the heap report; the steps and their statistics"
exit "$status"
