#!/bin/sh
# refgc command tests (registered by tests/cli/tests.cmake, one CTest test per TEST name).
#
#   sh tests/cli/run.sh TEST REFGC SNAPGEN SOURCE_DIR WORK_DIR
#
# snapgen            write the snapshots (stage1-3, nograph, sampled1-3) into WORK_DIR with
#                    tests/snapgen.c, twice, and check that the two runs give the same output
# golden             top and diff outputs against tests/cli/*.expected (REFGC_UPDATE_GOLDEN=1
#                    rewrites them); outputs hold no address, time, pid or build path
# bad_input          missing, empty, truncated, corrupted and garbage files, a directory, wrong
#                    arguments, an unwritable output: exit status 2 and a message naming the
#                    file; --help everywhere: exit status 0
# massif             exports read by ms_print (valgrind)
# heapsnapshot       exports read by check_heapsnapshot.py (what DevTools' loader requires,
#                    plus DevTools' retained sizes recomputed)
# heapsnapshot_devtools  exports loaded by Chrome DevTools' own heap snapshot worker
#                    (chrome-devtools-frontend from npm, bundled for node with esbuild, both
#                    fetched into WORK_DIR/npm-devtools once): summary, retainers, retained
#                    sizes and allocation stacks as the Memory panel computes them
# folded             exports read by check_folded.py (flamegraph.pl's line grammar) and by
#                    flamegraph.pl / inferno-flamegraph when one is installed
# speedscope         exports read by check_speedscope.py (structure)
# speedscope_schema  exports validated against speedscope's own JSON schema
#                    (file-format-schema.json of the speedscope npm package) with ajv, both
#                    fetched with npm into WORK_DIR/npm once
# dot                exports drawn by Graphviz's dot -Tsvg
# unusual_input      an empty snapshot, and type and root names that need escaping
#                    (snapgen --empty, --weird): every command and every output
#
# Exit status: 0 passed, 1 failed, 77 skipped (a consumer is missing; the reason is printed).
# shellcheck disable=SC2086 # option lists are split on purpose
set -u
test=$1
refgc=$2
snapgen=$3
src=$4
work=$5
here=$src/tests/cli
mkdir -p "$work" || exit 1
cd "$work" || exit 1
if [ "$test" != snapgen ]; then
  # each test works in a directory of its own (CTest may run them in parallel), with links to
  # the snapshots the fixture wrote
  mkdir -p "t-$test" || exit 1
  for f in *; do
    [ -f "$f" ] && ln -sf "../$f" "t-$test/$f"
  done
  cd "t-$test" || exit 1
fi
failures=0
export REFGC_PROGRESS=0

fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}

skip() {
  echo "skipped: $*"
  exit 77
}

python=""
for p in python3 python; do
  if command -v $p >/dev/null 2>&1 && $p -c 'import sys; sys.exit(sys.version_info < (3, 6))' 2>/dev/null; then
    python=$p
    break
  fi
done
need_python() {
  [ -n "$python" ] || skip "python3 is not installed (the checker is a python script)"
}

# check_text FILE TEXT: FILE contains TEXT
check_text() {
  grep -q -- "$2" "$1" || { fail "$1 lacks '$2':"; head -20 "$1"; }
}

# run EXPECTED_STATUS OUT_FILE ERR_FILE -- command...: run and check the exit status
run() {
  want=$1 out=$2 err=$3
  shift 3
  "$@" >"$out" 2>"$err"
  got=$?
  if [ "$got" -ne "$want" ]; then
    fail "exit status $got, not $want: $*"
    sed 's/^/    stderr: /' "$err" | head -20
    return 1
  fi
  return 0
}

gen() {
  "$snapgen" "$@"
}

# Options that make the output independent of the build and the machine.
stable="--no-header-time --strip-path $src/"
mine="--include */snapgen.c"

# The traced total a snapshot's `refgc top` header reports (exact bytes).
traced_bytes() {
  "$refgc" top "$1" $stable -n 0 | sed -n 's/^Traced: [^(]*(\([0-9,]*\) B).*/\1/p' | tr -d ,
}

case $test in

snapgen)
  rm -rf run1 run2 ./*.snap
  mkdir run1 run2
  for d in run1 run2; do
    gen $d/stage1.snap $d/stage2.snap $d/stage3.snap $d/nograph.snap ||
      fail "snapgen failed"
    gen --sampled 4096 $d/sampled1.snap $d/sampled2.snap $d/sampled3.snap ||
      fail "snapgen --sampled failed"
  done
  for s in stage1 stage2 stage3 nograph sampled1 sampled2 sampled3; do
    [ -s run1/$s.snap ] || { fail "run1/$s.snap was not written"; continue; }
    for by in traceback type; do
      (cd run1 && "$refgc" top $s.snap --by $by -n 0 $stable) >a.txt 2>&1
      (cd run2 && "$refgc" top $s.snap --by $by -n 0 $stable) >b.txt 2>&1
      cmp -s a.txt b.txt || { fail "$s.snap --by $by differs between two runs:"; diff a.txt b.txt | head -20; }
    done
    (cd run1 && "$refgc" export $s.snap --format folded) >a.txt 2>&1
    (cd run2 && "$refgc" export $s.snap --format folded) >b.txt 2>&1
    cmp -s a.txt b.txt || fail "$s.snap folded stacks differ between two runs"
  done
  cp run1/*.snap .
  ;;

golden)
  update=${REFGC_UPDATE_GOLDEN:-0}
  # name | arguments (run in WORK_DIR, where the snapshots are)
  while IFS='|' read -r name args; do
    case $name in '#'* | '') continue ;; esac
    set -f
    "$refgc" $args $stable >"$name.out" 2>"$name.err"
    status=$?
    set +f
    [ $status -eq 0 ] || { fail "$name: exit status $status: refgc $args"; cat "$name.err"; }
    if grep -E -q '0x[0-9a-fA-F]{6,}|[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:|pid [0-9]' "$name.out"; then
      fail "$name: the output shows an address, a time or a pid"
    fi
    if grep -q "$src" "$name.out"; then fail "$name: the output shows the source directory"; fi
    if [ "$update" = 1 ]; then
      cp "$name.out" "$here/$name.expected"
      echo "updated $here/$name.expected"
    elif ! diff -u "$here/$name.expected" "$name.out" >"$name.diff" 2>&1; then
      fail "$name: output differs from tests/cli/$name.expected (refgc $args):"
      cat "$name.diff"
    fi
  done <<EOF
# name | refgc arguments (plus: $stable)
top_line|top stage2.snap $mine
top_function|top stage2.snap --by function -n 0 $mine
top_file|top stage3.snap --by file $mine
top_traceback|top stage2.snap --by traceback --depth 3 -n 6 $mine
top_type|top stage3.snap --by type $mine
top_type_all|top stage3.snap --by type
top_sampled|top sampled2.snap --by type $mine
diff_line|diff stage1.snap stage2.snap $mine
diff_function|diff stage2.snap stage3.snap --by function -n 0 $mine
diff_traceback|diff stage1.snap stage3.snap --by traceback --depth 3 -n 4 $mine
diff_sampled|diff sampled1.snap sampled3.snap --by function $mine
diff_type|diff stage1.snap stage3.snap --by type $mine
EOF
  # cumulative: main is in every traceback, so it holds everything that passed the filter
  set -f
  "$refgc" top stage2.snap --by function --cumulative -n 0 $stable $mine >cum.out 2>&1 || fail "top --cumulative failed"
  set +f
  total=$(sed -n 's/^Filtered[^:]*): [^(]*(\([0-9,]*\) B).*/\1/p' cum.out)
  grep -E -q "^ +[0-9]+ +[0-9.]+ [KMG]?i?B +$total +[0-9,]+ +[0-9.]+ [KMG]?i?B  main$" cum.out ||
    { fail "top --cumulative: main does not hold the whole filtered total ($total B)"; cat cum.out; }
  # the header's program name with a filter (it lives in the unfiltered snapshot, which the
  # filter replaces: under ASan a use after free here fails the run)
  set -f
  "$refgc" top stage2.snap $mine >hdr_top.out 2>&1 || fail "top with a filter and the header time failed"
  "$refgc" diff stage1.snap stage2.snap $mine >hdr_diff.out 2>&1 || fail "diff with a filter and the header time failed"
  set +f
  grep -q '^Taken: .*snapgen$' hdr_top.out || { fail "top: the Taken line does not name snapgen"; cat hdr_top.out; }
  [ "$(grep -c '^  taken: .*snapgen$' hdr_diff.out)" = 2 ] || { fail "diff: the taken lines do not name snapgen"; cat hdr_diff.out; }
  ;;

bad_input)
  R=$refgc
  check_message() { # FILE-OR-WORD ERR: the message must name it
    grep -q -- "$1" "$2" || { fail "the message does not name '$1':"; cat "$2"; }
  }
  # missing, empty, directory, garbage
  run 2 o.txt e.txt "$R" top missing.snap && check_message missing.snap e.txt
  : >empty.snap
  run 2 o.txt e.txt "$R" top empty.snap && check_message empty.snap e.txt
  mkdir -p adir.snap
  run 2 o.txt e.txt "$R" top adir.snap && check_message adir.snap e.txt
  printf 'this is not a snapshot, just some text\n' >garbage.snap
  run 2 o.txt e.txt "$R" top garbage.snap && check_message garbage.snap e.txt
  # truncated at several places, for every subcommand that reads snapshots
  size=$(wc -c <stage2.snap)
  for cut in 1 7 8 16 40 $((size / 4)) $((size / 2)) $((size - 9)) $((size - 1)); do
    head -c $cut stage2.snap >trunc.snap
    run 2 o.txt e.txt "$R" top trunc.snap && check_message trunc.snap e.txt
    run 2 o.txt e.txt "$R" diff stage1.snap trunc.snap && check_message trunc.snap e.txt
    for fmt in massif heapsnapshot folded speedscope dot; do
      run 2 o.txt e.txt "$R" export trunc.snap --format $fmt -o out.$fmt &&
        check_message trunc.snap e.txt
      [ -e out.$fmt ] && fail "export --format $fmt left an output file behind for a bad input"
      rm -f out.$fmt
    done
  done
  # corrupted: one byte changed at many offsets: either refused (2, naming the file) or read
  # (0); never a crash (the sanitizer builds would report it)
  off=0
  while [ $off -lt "$size" ]; do
    cp stage2.snap corrupt.snap
    printf '\377' | dd of=corrupt.snap bs=1 seek=$off conv=notrunc 2>/dev/null
    for args in "top corrupt.snap --by traceback -n 0" "export corrupt.snap --format heapsnapshot" \
      "export corrupt.snap --format dot" "export corrupt.snap --format massif"; do
        "$R" $args >o.txt 2>e.txt
      st=$?
      if [ $st -eq 2 ]; then
        check_message corrupt.snap e.txt
      elif [ $st -ne 0 ]; then
        fail "byte $off corrupted: exit status $st: refgc $args"
        head -20 e.txt
      fi
    done
    off=$((off + 97))
  done
  # wrong arguments
  run 2 o.txt e.txt "$R" && check_message Usage e.txt
  run 2 o.txt e.txt "$R" frobnicate && check_message frobnicate e.txt
  run 2 o.txt e.txt "$R" --frobnicate && check_message frobnicate e.txt
  run 2 o.txt e.txt "$R" top && check_message "which snapshot" e.txt
  run 2 o.txt e.txt "$R" top stage1.snap stage2.snap && check_message "one snapshot" e.txt
  run 2 o.txt e.txt "$R" top stage2.snap --by size && check_message "size" e.txt
  run 2 o.txt e.txt "$R" top stage2.snap --by && check_message "needs a value" e.txt
  run 2 o.txt e.txt "$R" top stage2.snap -n many && check_message "many" e.txt
  run 2 o.txt e.txt "$R" top stage2.snap -n -3 && check_message "\-3" e.txt
  run 2 o.txt e.txt "$R" top stage2.snap --cumulative --by type && check_message cumulative e.txt
  run 2 o.txt e.txt "$R" top stage2.snap --colour && check_message "colour" e.txt
  run 2 o.txt e.txt "$R" top stage2.snap --no-header-time=yes && check_message "takes no value" e.txt
  run 2 o.txt e.txt "$R" diff stage2.snap && check_message "two snapshots" e.txt
  run 2 o.txt e.txt "$R" diff stage1.snap stage2.snap stage3.snap && check_message "stage3.snap" e.txt
  run 2 o.txt e.txt "$R" diff missing.snap stage2.snap && check_message missing.snap e.txt
  run 2 o.txt e.txt "$R" diff stage2.snap missing.snap && check_message missing.snap e.txt
  run 2 o.txt e.txt "$R" export stage2.snap && check_message "format" e.txt
  run 2 o.txt e.txt "$R" export stage2.snap --format svg && check_message "svg" e.txt
  run 2 o.txt e.txt "$R" export --format dot && check_message "which snapshot" e.txt
  run 2 o.txt e.txt "$R" export stage2.snap --format dot --max-nodes 0 && check_message "max-nodes" e.txt
  run 2 o.txt e.txt "$R" export stage2.snap --format massif --threshold 120 && check_message "threshold" e.txt
  run 2 o.txt e.txt "$R" export nograph.snap --format heapsnapshot && check_message "no object graph" e.txt
  run 2 o.txt e.txt "$R" export nograph.snap --format dot && check_message "no object graph" e.txt
  run 2 o.txt e.txt "$R" export stage2.snap --format folded -o no/such/dir/out.txt && check_message "no/such/dir/out.txt" e.txt
  run 2 o.txt e.txt "$R" help frobnicate && check_message frobnicate e.txt
  if [ -w /dev/full ]; then
    run 2 o.txt e.txt sh -c "\"$R\" top stage2.snap >/dev/full" && check_message "cannot write" e.txt
    run 2 o.txt e.txt sh -c "\"$R\" export stage2.snap --format heapsnapshot >/dev/full" && check_message "cannot write" e.txt
  fi
  # help: on stdout, exit status 0, the same through `refgc help CMD`
  run 0 o.txt e.txt "$R" --help && check_message "Usage: refgc COMMAND" o.txt
  run 0 o.txt e.txt "$R" -h
  run 0 o.txt e.txt "$R" help
  run 0 o.txt e.txt "$R" --version && check_message "refgc " o.txt
  for cmd in top diff export report; do
    run 0 h1.txt e.txt "$R" $cmd --help
    run 0 h2.txt e.txt "$R" help $cmd
    cmp -s h1.txt h2.txt || fail "'refgc $cmd --help' and 'refgc help $cmd' differ"
    [ -s h1.txt ] || fail "'refgc $cmd --help' printed nothing"
  done
  # the environment variables that make a program write snapshots do not touch the command
  cp stage2.snap keep.snap
  REFGC_TRACE=8 REFGC_TRACE_FILE=keep.snap "$R" top keep.snap >o.txt 2>e.txt ||
    fail "top with REFGC_TRACE_FILE set failed"
  cmp -s keep.snap stage2.snap || fail "REFGC_TRACE_FILE made the command overwrite the snapshot"
  # progress goes to stderr only, and only when asked (not a terminal here)
  REFGC_PROGRESS='' "$R" export stage2.snap --format heapsnapshot >o.txt 2>e.txt || fail "export failed"
  [ -s e.txt ] && { fail "stderr is not empty without a terminal:"; cat e.txt; }
  ;;

massif)
  command -v ms_print >/dev/null 2>&1 || skip "ms_print is not installed (Debian: valgrind)"
  for s in stage1 stage2 stage3 sampled2; do
    run 0 out.txt e.txt "$refgc" export $s.snap --format massif -o $s.massif || continue
    ms_print $s.massif >$s.ms 2>e.txt || { fail "ms_print refused $s.massif:"; cat e.txt; continue; }
    grep -q "Detailed snapshots" $s.ms || fail "ms_print shows no detailed snapshot for $s.massif"
    # the detailed snapshot's tree holds the traced total
    total=$(traced_bytes $s.snap)
    grep -q "^mem_heap_B=$total\$" $s.massif ||
      [ "$s" = sampled2 ] || fail "$s.massif: no snapshot with mem_heap_B=$total"
  done
  # every allocation site of stage2 made it into the tree (threshold 0)
  run 0 out.txt e.txt "$refgc" export stage2.snap --format massif --threshold 0 -o all.massif &&
    { ms_print --threshold=0 all.massif >all.ms 2>e.txt || { fail "ms_print refused all.massif"; cat e.txt; }; }
  for fn in make_buffers cache_add make_config build_tree lose_reference resurrect_session \
    make_garbage_cycle new_cache; do
    grep -q ": $fn (tests/snapgen.c:[0-9]*)" all.massif 2>/dev/null ||
      grep -q ": $fn (.*snapgen.c:[0-9]*)" all.massif || fail "all.massif: no frame of $fn"
  done
  # a time series of three snapshots of one process: three detailed snapshots in time order
  run 0 out.txt e.txt "$refgc" export stage1.snap stage2.snap stage3.snap --format massif -o series.massif &&
    { ms_print series.massif >series.ms 2>e.txt || { fail "ms_print refused series.massif"; cat e.txt; }; }
  [ "$(grep -c '^heap_tree=detailed' series.massif)" = 3 ] || fail "series.massif: not 3 detailed snapshots"
  grep -q '^time_unit: ms$' series.massif || fail "series.massif: time unit is not ms"
  awk -F= '/^time=/ { if ($2 + 0 < last) bad = 1; last = $2 + 0 } END { exit bad }' series.massif ||
    fail "series.massif: times go backwards"
  # the order of the arguments does not matter: snapshots are put in the order they were taken
  run 0 out.txt e.txt "$refgc" export stage3.snap stage1.snap stage2.snap --format massif -o shuffled.massif &&
    { ms_print shuffled.massif >shuffled.ms 2>e.txt || { fail "ms_print refused shuffled.massif"; cat e.txt; }; }
  order() { awk '/^mem_heap_B=/ { m = $0 } /^heap_tree=detailed/ { print m }' "$1"; }
  [ "$(order shuffled.massif)" = "$(order series.massif)" ] ||
    fail "shuffled.massif: the detailed snapshots are not in the order they were taken"
  # snapshots of different processes: numbered (time_unit i)
  mkdir -p other
  (cd other && gen s1.snap s2.snap s3.snap) || fail "snapgen failed"
  run 0 out.txt e.txt "$refgc" export stage1.snap other/s2.snap --format massif -o mixed.massif &&
    { ms_print mixed.massif >mixed.ms 2>e.txt || { fail "ms_print refused mixed.massif"; cat e.txt; }; }
  grep -q '^time_unit: i$' mixed.massif || fail "mixed.massif: time unit is not i"
  # a name with '#' or a newline cannot break the file: covered by the sanitizer in the code
  ;;

heapsnapshot)
  need_python
  for s in stage1 stage2 stage3 sampled2; do
    run 0 out.txt e.txt "$refgc" export $s.snap --format heapsnapshot -o $s.heapsnapshot || continue
    $python "$here/check_heapsnapshot.py" $s.heapsnapshot >$s.check 2>&1 ||
      { fail "$s.heapsnapshot does not load:"; cat $s.check; }
  done
  # stage2: the declared roots, the leak, the garbage cycle; retained sizes DevTools computes
  $python "$here/check_heapsnapshot.py" stage2.heapsnapshot --expect-root tree --expect-root cache --expect-root "recently closed" \
    --expect-group "(held by the program)" --expect-group "(unreachable)" \
    --expect-type Node=21 --expect-type Leaf=8 --expect-type Blob=50 --expect-type Cache=1 \
    --expect-type Session=1 --expect-allocation new_blob --expect-allocation build_tree \
    >check.txt 2>&1 || { fail "stage2.heapsnapshot: expectations not met:"; cat check.txt; }
  # the checker itself rejects broken files (an edge into the middle of a node, a wrong count,
  # a string index out of range, keys out of order)
  for broken in 'd["edges"][2] += 1' 'd["snapshot"]["node_count"] += 1' \
    'd["nodes"][1] = len(d["strings"])' 'd = {k: d[k] for k in ["snapshot", "edges", "nodes", "trace_function_infos", "trace_tree", "samples", "locations", "strings"]}'; do
    $python -c "import json, sys; d = json.load(open('stage2.heapsnapshot')); $broken; json.dump(d, open('broken.heapsnapshot', 'w'))"
    $python "$here/check_heapsnapshot.py" broken.heapsnapshot >broken.check 2>&1 &&
      fail "check_heapsnapshot.py accepted a broken file ($broken)"
  done
  # stdout and -o give the same bytes
  "$refgc" export stage2.snap --format heapsnapshot >stdout.heapsnapshot 2>e.txt ||
    fail "export to stdout failed"
  cmp -s stdout.heapsnapshot stage2.heapsnapshot || fail "stdout and -o outputs differ"
  ;;

folded)
  need_python
  for s in stage1 stage2 stage3 sampled2; do
    run 0 out.txt e.txt "$refgc" export $s.snap --format folded -o $s.folded || continue
    total=$(traced_bytes $s.snap)
    if [ "$s" = sampled2 ]; then total_arg=""; else total_arg="--total $total"; fi
    $python "$here/check_folded.py" $s.folded $total_arg >$s.check 2>&1 ||
      { fail "$s.folded:"; cat $s.check; }
  done
  for broken in 'main;f' 'main;;f 10' 'main;f -3' 'main;f 1.5x'; do
    { cat stage2.folded; echo "$broken"; } >broken.folded
    $python "$here/check_folded.py" broken.folded >broken.check 2>&1 &&
      fail "check_folded.py accepted the line '$broken'"
  done
  grep -q ';main;stage2;make_buffers 20000$' stage2.folded || fail "stage2.folded: no 'main;stage2;make_buffers 20000'"
  grep -q ';main;stage2;cache_add;new_blob 8640$' stage2.folded || fail "stage2.folded: no 'main;stage2;cache_add;new_blob 8640'"
  flame=""
  for tool in flamegraph.pl flamegraph inferno-flamegraph; do
    command -v $tool >/dev/null 2>&1 && { flame=$tool; break; }
  done
  if [ -n "$flame" ]; then
    $flame --countname=bytes stage2.folded >stage2.svg 2>e.txt || { fail "$flame refused stage2.folded"; cat e.txt; }
    grep -q "make_buffers" stage2.svg || fail "$flame: make_buffers is not in the flame graph"
    echo "checked with $flame"
  else
    echo "note: no flamegraph.pl or inferno-flamegraph here; the grammar checker stands in for them"
  fi
  ;;

speedscope)
  need_python
  for s in stage1 stage2 stage3 sampled2; do
    run 0 out.txt e.txt "$refgc" export $s.snap --format speedscope -o $s.speedscope.json || continue
    total=$(traced_bytes $s.snap)
    if [ "$s" = sampled2 ]; then total_arg=""; else total_arg="--total $total"; fi
    $python "$here/check_speedscope.py" $s.speedscope.json $total_arg >$s.check 2>&1 ||
      { fail "$s.speedscope.json:"; cat $s.check; }
  done
  for broken in 'd["profiles"][0]["weights"].pop()' 'd["profiles"][0]["samples"][0].append(len(d["shared"]["frames"]))' \
    'd["profiles"][0]["endValue"] += 1'; do
    $python -c "import json; d = json.load(open('stage2.speedscope.json')); $broken; json.dump(d, open('broken.json', 'w'))"
    $python "$here/check_speedscope.py" broken.json >broken.check 2>&1 &&
      fail "check_speedscope.py accepted a broken file ($broken)"
  done
  ;;

speedscope_schema)
  command -v node >/dev/null 2>&1 || skip "node is not installed"
  command -v npm >/dev/null 2>&1 || skip "npm is not installed"
  npmdir=$work/npm
  if [ ! -f "$npmdir/ready" ]; then
    rm -rf "$npmdir" && mkdir -p "$npmdir"
    (
      cd "$npmdir" &&
        timeout 300 npm pack --loglevel=error speedscope@1.25.0 >pack.log 2>&1 &&
        tar xzf speedscope-1.25.0.tgz package/dist/release/file-format-schema.json &&
        timeout 300 npm install --loglevel=error --no-audit --no-fund --no-save --prefix "$npmdir" \
          ajv@8 >install.log 2>&1
    ) || skip "npm could not fetch speedscope's schema and ajv (no network?): $(tail -n 2 "$npmdir"/*.log 2>/dev/null | tr '\n' ' ')"
    : >"$npmdir/ready"
  fi
  for s in stage1 stage2 stage3 sampled2; do
    run 0 out.txt e.txt "$refgc" export $s.snap --format speedscope -o $s.speedscope.json || continue
    NODE_PATH=$npmdir/node_modules node "$here/validate_speedscope.js" \
      "$npmdir/package/dist/release/file-format-schema.json" $s.speedscope.json >$s.schema 2>&1 ||
      { fail "$s.speedscope.json does not match speedscope's schema:"; cat $s.schema; }
  done
  # the schema check itself rejects a wrong unit and a missing field
  sed 's/"unit":"bytes"/"unit":"bits"/' stage2.speedscope.json >broken1.json
  sed 's/"endValue":[0-9]*,//' stage2.speedscope.json >broken2.json
  for b in broken1.json broken2.json; do
    NODE_PATH=$npmdir/node_modules node "$here/validate_speedscope.js" \
      "$npmdir/package/dist/release/file-format-schema.json" $b >broken.schema 2>&1 &&
      fail "the schema check accepted $b"
  done
  ;;

unusual_input)
  # an empty snapshot (tracing off, no object): every command works, every output is valid
  need_python
  gen --empty empty.snap || fail "snapgen --empty failed"
  run 0 o.txt e.txt "$refgc" top empty.snap && check_text o.txt "No traced blocks"
  run 0 o.txt e.txt "$refgc" diff empty.snap empty.snap --by type
  run 0 o.txt e.txt "$refgc" diff empty.snap stage2.snap && check_text o.txt "tests/snapgen.c"
  for fmt in massif heapsnapshot folded speedscope dot; do
    run 0 out.txt e.txt "$refgc" export empty.snap --format $fmt -o empty.$fmt
  done
  $python "$here/check_heapsnapshot.py" empty.heapsnapshot >w.check 2>&1 || { fail "empty.heapsnapshot:"; cat w.check; }
  $python "$here/check_speedscope.py" empty.speedscope >w.check 2>&1 || { fail "empty.speedscope:"; cat w.check; }
  $python "$here/check_folded.py" empty.folded >w.check 2>&1 || { fail "empty.folded:"; cat w.check; }
  command -v dot >/dev/null 2>&1 && { dot -Tsvg empty.dot >empty.svg 2>e.txt || { fail "dot refused empty.dot"; cat e.txt; }; }
  command -v ms_print >/dev/null 2>&1 && { ms_print empty.massif >empty.ms 2>e.txt || { fail "ms_print refused empty.massif"; cat e.txt; }; }

  # names with quotes, backslashes, control characters, bytes that are not UTF-8, '#', ';',
  # "</script>": every output stays valid for its consumer, the text stays one line per row
  gen --weird weird.snap || fail "snapgen --weird failed"
  for args in "top weird.snap --by type" "top weird.snap --by traceback" "diff weird.snap weird.snap --by type"; do
    "$refgc" $args >w.txt 2>e.txt || { fail "refgc $args failed"; cat e.txt; }
    $python -c "
import sys
data = open('w.txt', 'rb').read()
data.decode('utf-8')
bad = [c for c in data if c < 32 and c != 10]
sys.exit(1 if bad else 0)" || fail "refgc $args printed control characters or bytes that are not UTF-8"
  done
  grep -q 'We"ird\\ </script> #1;2\\n\\t\\x01\\xff' w.txt || fail "the type name is not shown escaped"
  for fmt in massif heapsnapshot folded speedscope dot; do
    run 0 out.txt e.txt "$refgc" export weird.snap --format $fmt -o weird.$fmt || continue
  done
  $python "$here/check_heapsnapshot.py" weird.heapsnapshot >w.check 2>&1 || { fail "weird.heapsnapshot:"; cat w.check; }
  $python - <<'PY' || fail "weird.heapsnapshot does not hold the names as they were"
import json, sys
d = json.load(open("weird.heapsnapshot", encoding="utf-8"))
want = "We\"ird\\ </script> #1;2\n\t\x01\xff \u2028 caf\xe9"  # 0xff kept as U+00FF
sys.exit(0 if want in d["strings"] else 1)
PY
  $python "$here/check_speedscope.py" weird.speedscope >w.check 2>&1 || { fail "weird.speedscope:"; cat w.check; }
  $python "$here/check_folded.py" weird.folded >w.check 2>&1 || { fail "weird.folded:"; cat w.check; }
  if command -v dot >/dev/null 2>&1; then
    dot -Tsvg weird.dot >weird.svg 2>e.txt || { fail "dot refused weird.dot"; cat e.txt; }
    [ -s e.txt ] && { fail "dot warned about weird.dot:"; cat e.txt; }
  fi
  if command -v ms_print >/dev/null 2>&1; then
    ms_print weird.massif >weird.ms 2>e.txt || { fail "ms_print refused weird.massif"; cat e.txt; }
  fi
  ;;

heapsnapshot_devtools)
  need_python
  command -v node >/dev/null 2>&1 || skip "node is not installed"
  command -v npm >/dev/null 2>&1 || skip "npm is not installed"
  cdt=$work/npm-devtools
  version=1.0.1705227
  if [ ! -f "$cdt/ready" ]; then
    rm -rf "$cdt" && mkdir -p "$cdt/h"
    (
      cd "$cdt" &&
        timeout 600 npm pack --loglevel=error chrome-devtools-frontend@$version >pack.log 2>&1 &&
        tar xzf chrome-devtools-frontend-$version.tgz package/front_end/core package/front_end/models \
          package/front_end/entrypoints/heap_snapshot_worker package/front_end/third_party &&
        rm -f chrome-devtools-frontend-$version.tgz &&
        timeout 300 npm install --loglevel=error --no-audit --no-fund --no-save --prefix "$cdt" \
          esbuild@0.24.2 >install.log 2>&1
    ) || skip "npm could not fetch chrome-devtools-frontend and esbuild (no network?): $(tail -n 2 "$cdt"/*.log 2>/dev/null | tr '\n' ' ')"
    # locales.js is generated by DevTools' own build: English only is enough here
    printf '%s\n' "export const LOCALES = ['en-US'];" "export const BUNDLED_LOCALES = ['en-US'];" \
      "export const DEFAULT_LOCALE = 'en-US';" "export const REMOTE_FETCH_PATTERN = '';" \
      "export const LOCAL_FETCH_PATTERN = '';" >"$cdt/package/front_end/core/i18n/locales.js"
    : >"$cdt/ready"
  fi
  cp "$here/devtools_load.ts" "$cdt/h/devtools_load.ts"
  # node 20 has no Promise.withResolvers, which DevTools' worker uses
  "$cdt/node_modules/.bin/esbuild" "$cdt/h/devtools_load.ts" --bundle --platform=node --format=esm \
    --outfile="$cdt/h/devtools_load.mjs" --log-level=error \
    "--banner:js=if (!Promise.withResolvers) Promise.withResolvers = function () { let resolve, reject; const promise = new Promise((a, b) => { resolve = a; reject = b; }); return {promise, resolve, reject}; };" \
    >esbuild.log 2>&1 || { fail "esbuild could not bundle DevTools' heap snapshot worker:"; cat esbuild.log; }
  for s in stage1 stage2 stage3 sampled2; do
    run 0 out.txt e.txt "$refgc" export $s.snap --format heapsnapshot -o $s.heapsnapshot || continue
    node "$cdt/h/devtools_load.mjs" $s.heapsnapshot >$s.devtools.json 2>e.txt ||
      { fail "DevTools' loader refused $s.heapsnapshot:"; cat e.txt; continue; }
    # DevTools' retained sizes agree with check_heapsnapshot.py's, its summary with the graph
    $python "$here/check_heapsnapshot.py" $s.heapsnapshot >$s.check 2>&1 || fail "$s.heapsnapshot: checker failed"
    $python - $s.devtools.json $s.check <<'PY' || fail "$s: DevTools and the checker disagree"
import json, re, sys
d = json.load(open(sys.argv[1]))
check = open(sys.argv[2]).read()
ok = not d["problems"]
for c in d["rootChildren"]:
    kind = "declared root" if c["edge"] == "shortcut" else "group"
    name = c["name"] if c["edge"] == "shortcut" else c["node"]
    m = re.search(r"%s '%s': retained (\d+) bytes" % (re.escape(kind), re.escape(name)), check)
    if not m or int(m.group(1)) != c["retained"]:
        print(f"{kind} {name}: DevTools retains {c['retained']}, the checker {m and m.group(1)}")
        ok = False
names = re.search(r"objects by name: (\{.*\})", check).group(1)
counts = eval(names)
for name, n in counts.items():
    if d["summary"].get(name, {}).get("count") != n:
        print(f"{name}: DevTools counts {d['summary'].get(name)}, the graph {n}")
        ok = False
sys.exit(0 if ok else 1)
PY
  done
  # stage2 as a person sees it in the Memory panel
  $python - stage2.devtools.json <<'PY' || fail "stage2: DevTools does not show what it should"
import json, sys
d = json.load(open(sys.argv[1]))
ok = True
def want(cond, msg):
    global ok
    if not cond:
        print(msg)
        ok = False
kids = {(c["edge"], c["name"] if c["edge"] == "shortcut" else c["node"]): c for c in d["rootChildren"]}
want(("shortcut", "tree") in kids and kids[("shortcut", "tree")]["distance"] == 1, "no root 'tree' at distance 1")
want(("shortcut", "cache") in kids, "no root 'cache'")
want(("element", "(held by the program)") in kids, "no group (held by the program)")
want(("element", "(unreachable)") in kids and kids[("element", "(unreachable)")]["retained"] > 0, "no (unreachable) garbage")
for t in ("Node", "Leaf", "Blob", "Cache", "Session"):
    want(t in d["summary"], f"no {t} in the summary")
want(d["summary"]["Session"]["count"] == 1, "not one Session")
st = d["allocationStacks"].get("Leaf") or []
want(len(st) > 2 and st[0].startswith("new_leaf ") and st[1].startswith("build_tree "), f"Leaf's allocation stack: {st[:3]}")
tops = {t["name"]: t for t in d["allocationTops"]}
want(tops.get("new_blob", {}).get("liveCount") == 50, f"new_blob allocations: {tops.get('new_blob')}")
sys.exit(0 if ok else 1)
PY
  ;;

dot)
  command -v dot >/dev/null 2>&1 || skip "dot is not installed (Debian: graphviz)"
  for s in stage1 stage2 stage3 sampled2; do
    run 0 out.txt e.txt "$refgc" export $s.snap --format dot -o $s.dot || continue
    dot -Tsvg $s.dot >$s.svg 2>e.txt || { fail "dot refused $s.dot:"; cat e.txt; continue; }
    [ -s e.txt ] && { fail "dot warned about $s.dot:"; cat e.txt; }
    grep -q '<svg' $s.svg || fail "$s.svg is not SVG"
    n=$(grep -c '^  n[0-9]* \[label=' $s.dot)
    [ "$n" -le 200 ] || fail "$s.dot: $n nodes (more than 200)"
  done
  grep -q 'LEAK: lost reference' stage2.dot || fail "stage2.dot: the lost reference is not shown"
  grep -q 'LEAK: resurrected' stage2.dot || fail "stage2.dot: the resurrected session is not shown"
  grep -q 'color="#d62728", fontcolor' stage2.dot || fail "stage2.dot: no highlighted chain"
  grep -q 'no leak suspects' stage1.dot || fail "stage1.dot: the title does not say there are no suspects"
  grep -q 'root \\"tree\\"' stage1.dot || fail "stage1.dot: the declared root 'tree' is not shown"
  run 0 out.txt e.txt "$refgc" export stage2.snap --format dot --max-nodes 3 -o small.dot &&
    { dot -Tsvg small.dot >small.svg 2>e.txt || fail "dot refused small.dot"; }
  n=$(grep -c '^  n[0-9]* \[label=' small.dot)
  [ "$n" -le 3 ] || fail "--max-nodes 3 drew $n nodes"
  ;;

*)
  echo "unknown test '$test'"
  exit 2
  ;;
esac

if [ $failures -ne 0 ]; then
  echo "$test: $failures failure(s)"
  exit 1
fi
echo "$test: passed"
exit 0
