#!/bin/sh
# refgc — CTest's browser_report: the page of `refgc report` checked in a headless browser.
#
#   sh tests/browser/run.sh REFGC WORKDIR [report.test.js options] -- GENERATOR [ARGS...]
#
# How: runs the generator to write snapshot files into a directory DIR: "@DIR@" in its
# arguments becomes DIR (snapgen @DIR@/stage1 @DIR@/stage2 @DIR@/stage3); without "@DIR@" DIR
# is passed as its last argument. Then it moves the files under a
# directory whose path contains "</script><!--" (the paths are embedded in the page's JSON:
# a broken escape would break the page), checks that a truncated snapshot is refused with exit
# status 2, runs `REFGC report` on the snapshots, and opens the page with report.test.js
# (playwright-core driving Debian's chromium). The page is WORKDIR/report.html and the
# screenshot WORKDIR/report-screenshot.png.
#
# Exits 77 (CTest's SKIP_RETURN_CODE) after printing "skipped: <reason>" when chromium, node
# (20 or newer) or playwright-core (npm ci in tests/browser) is missing. CHROMIUM overrides the
# browser's path.
set -u
here=$(cd "$(dirname "$0")" && pwd)
skip() { echo "skipped: $*"; exit 77; }
fail() { echo "FAIL: $*"; echo "0 passed, 1 failed"; exit 1; }

[ $# -ge 4 ] || { echo "usage: run.sh REFGC WORKDIR [options] -- GENERATOR [ARGS...]"; exit 2; }
refgc=$1
work=$2
shift 2
opts=""
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
  opts="$opts $1" # options of report.test.js: single words only
  shift
done
[ $# -gt 1 ] || { echo "run.sh: no generator after --"; exit 2; }
shift

chromium=${CHROMIUM:-}
if [ -z "$chromium" ]; then
  for c in /usr/bin/chromium chromium chromium-browser; do
    if command -v "$c" >/dev/null 2>&1; then chromium=$(command -v "$c"); break; fi
  done
fi
[ -n "$chromium" ] && [ -x "$chromium" ] || skip "chromium is not installed (apt-get install chromium)"
command -v node >/dev/null 2>&1 || skip "node is not installed"
node -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)' ||
  skip "node 20 or newer is needed (this is $(node --version))"
(cd "$here" && node -e 'require.resolve("playwright-core")') >/dev/null 2>&1 ||
  skip "playwright-core is not installed (cd tests/browser && npm ci)"
[ -x "$refgc" ] || fail "no refgc command at $refgc"

rm -rf "$work"
mkdir -p "$work/gen" || fail "cannot make $work"
gen_dir="$work/gen"
nargs=$#
found=0
for a in "$@"; do
  case $a in
    *@DIR@*) found=1; a=$(printf '%s\n' "$a" | sed "s|@DIR@|$gen_dir|g") ;;
  esac
  set -- "$@" "$a"
done
shift "$nargs"
[ "$found" = 1 ] || set -- "$@" "$gen_dir"
"$@" >"$work/generator.log" 2>&1 || { cat "$work/generator.log"; fail "the generator failed: $*"; }
odd="$work/snaps</script><!--&\"x\""
mkdir -p "$odd" || fail "cannot make $odd"
n=0
for f in "$work"/gen/*; do
  [ -f "$f" ] || continue
  mv "$f" "$odd/" || fail "cannot move $f"
  n=$((n + 1))
done
[ "$n" -gt 0 ] || fail "the generator wrote no snapshot in $work/gen"

# a bad file: a clear message and exit status 2
first=$(ls "$odd" | head -n 1)
head -c 64 "$odd/$first" >"$work/truncated.snap"
"$refgc" report "$work/truncated.snap" -o "$work/bad.html" >"$work/bad.log" 2>&1
status=$?
[ "$status" -eq 2 ] || { cat "$work/bad.log"; fail "refgc report on a truncated file exited $status, not 2"; }
grep -q "truncated.snap" "$work/bad.log" || { cat "$work/bad.log"; fail "the message does not name the file"; }
[ ! -e "$work/bad.html" ] || fail "refgc report left a page behind for a bad file"
echo "ok   a truncated snapshot is refused with exit status 2: $(head -n 1 "$work/bad.log")"

"$refgc" report "$odd"/* -o "$work/report.html" || fail "refgc report failed"
echo "ok   refgc report wrote $work/report.html ($(wc -c <"$work/report.html") bytes)"

# shellcheck disable=SC2086 # $opts is a list of single-word options
node "$here/report.test.js" --chromium "$chromium" --report "$work/report.html" \
  --screenshot "$work/report-screenshot.png" --expect-snapshots "$n" \
  --expect-path '</script><!--' $opts
