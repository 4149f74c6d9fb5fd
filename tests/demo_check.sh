#!/bin/sh
# refgc — the check CI makes of the demonstration's output (CTest: demo_runs).
#
#   sh tests/demo_check.sh DEMO OUT_PREFIX [libdw|dladdr]
#
# Runs DEMO --out OUT_PREFIX (traced), requires exit status 0 (its own checks: documents
# intact, heap consistent, the debug-mode child's four reports, exactly the planted leak and the
# resurrection among the leak suspects, every object freed at the end), then requires in its
# output: the planted leak's line naming its allocation function (and, with libdw, file and
# line), the lost-reference suspect, the chain to the leaked document, the resurrected session
# with its chain from the declared root, and the seven snapshot files.
set -u
demo=$1
out=$2
symbolizer=${3:-dladdr}
log=$out.log
"$demo" --out "$out" >"$log" 2>&1
status=$?
fail=0
check() { # check DESCRIPTION EXTENDED-REGEX
  if grep -Eq -- "$2" "$log"; then
    echo "ok: $1"
  else
    echo "MISSING: $1 (/$2/)"
    fail=1
  fi
}
if [ "$status" -ne 0 ]; then
  echo "FAILED: $demo exited with status $status"
  fail=1
fi
check "the planted leak, by its allocation function" \
  '^  planted leak found: subscription allocated at observers_subscribe '
if [ "$symbolizer" = libdw ]; then
  check "the planted leak's file and line" \
    '^  planted leak found: subscription allocated at observers_subscribe \(demo\.c:[0-9]+\), keeping "Release notes" and its 400 paragraphs alive \(402 objects'
fi
check "the lost-reference suspect" \
  '^    [0-9]+\. LOST REFERENCE: a subscription with 1 reference that nothing accounts for; it keeps 402 objects'
check "the suspect's allocation stack" \
  '^       allocated at observers_subscribe .* <- objects_demo '
check "why the leaked document is alive: the chain's root" \
  '^  root  subscription 0x[0-9a-f]+ held from outside the object graph'
check "... the field that holds the document" '^        field \+[0-9]+ \(reference #0\)'
check "... the document" '^  -> document 0x[0-9a-f]+'
check "the resurrected session" \
  '^    [0-9]+\. RESURRECTED: a session finalized by the collector as garbage and alive again'
check "its chain from the declared root" \
  '^       chain from root: recent "recently closed" \.items\[0\] \(\+[0-9]+\) -> session$'
check "the resurrection line" '^  resurrection found: session 7'
check "the top allocation sites" '^  top 10 allocation sites by line'
check "the collector statistics" '^refgc cycle collector: '
check "everything freed at the end" '^    index and registry released: 0 live objects left'
for phase in 01-load 02-traffic 03-eviction 04-objects 05-cycles 06-misuse 07-final; do
  if [ -s "$out-snapshots/$phase.rgc" ]; then
    echo "ok: $out-snapshots/$phase.rgc"
  else
    echo "MISSING: $out-snapshots/$phase.rgc"
    fail=1
  fi
done
if [ "$fail" -ne 0 ]; then
  echo "--- the demonstration's output ($log):"
  cat "$log"
fi
exit "$fail"
