#!/usr/bin/env python3
"""Heap benchmark driver: refgc against glibc, mimalloc, jemalloc and tcmalloc.

Builds bench/heap_bench.c once per allocator, runs interleaved rounds (every allocator runs
every benchmark once per round, the allocator order rotated each round), and prints a Markdown
table of medians and ratios. Standard library only.

    python3 bench/heap_bench.py --rounds 5 --out /tmp/heap.md
    python3 bench/heap_bench.py --quick --rounds 1          # smoke run, small sizes
    python3 bench/heap_bench.py --only frag                 # one benchmark
"""

import argparse
import os
import shutil
import sys
import tempfile
import time

from benchlib import (add_build_args, add_rounds_args, append_skipped_failures, bench_env,
                      compile_all, ensure_peers, log, machine_info, med, parse_args,
                      parse_names, ratio, rotated, run, run_rounds, source_fingerprint,
                      write_outputs)
import benchlib

HERE = os.path.dirname(os.path.abspath(__file__))

# name -> (define, link flags, Debian package providing it, header that proves it is there)
PEERS = {
    "glibc": (None, ["-lpthread"], None, None),
    "mimalloc": ("BENCH_MIMALLOC", ["-lmimalloc", "-lpthread"], "libmimalloc-dev",
                 "/usr/include/mimalloc.h"),
    "jemalloc": ("BENCH_JEMALLOC", ["-ljemalloc", "-lpthread"], "libjemalloc-dev",
                 "/usr/include/jemalloc/jemalloc.h"),
    "tcmalloc": ("BENCH_TCMALLOC", ["-ltcmalloc_minimal", "-lpthread"],
                 "libgoogle-perftools-dev", "/usr/include/gperftools/malloc_extension_c.h"),
}
ALL_ALLOCATORS = ["refgc", "glibc", "mimalloc", "jemalloc", "tcmalloc"]
RSS_PEERS = ["glibc", "mimalloc", "jemalloc"]  # target (c): refgc vs the best of these

# Benchmark cases: id -> (subcommand argv for full size, argv for --quick)
CASES = {
    "churn": (["churn", "20000000", "10000"], ["churn", "2000000", "10000"]),
    "prodcons": (["prodcons", "10000000", "2", "2"], ["prodcons", "1000000", "2", "2"]),
    "frag1000": (["frag", "1000", str(1 << 30)], ["frag", "1000", str(64 << 20)]),
    "frag100": (["frag", "100", str(1 << 30)], ["frag", "100", str(64 << 20)]),
}
BENCH_OF_CASE = {"churn": "churn", "prodcons": "prodcons", "frag1000": "frag",
                 "frag100": "frag"}


# librefgc.a needs pthreads; the later lists cover a library that also needs more.
REFGC_LINK_SETS = [["-lpthread", "-lm", "-ldl", "-ldw", "-lelf"], ["-lpthread"], ["-lpthread", "-lm", "-ldl"],
                   ["-lpthread", "-lm", "-ldl", "-latomic"]]
ENV_DROP = (("LD_PRELOAD", "REFGC_DEBUG"),  # debug switches and preloads: names, prefixes
            ("MIMALLOC_", "MALLOC_CONF", "TCMALLOC_", "GLIBC_TUNABLES"))


# ------------------------------------------------------------------------------------------
# refgc
# ------------------------------------------------------------------------------------------

def find_lib(build_dir):
    direct = os.path.join(build_dir, "librefgc.a")
    if os.path.exists(direct):
        return direct
    for root, _dirs, files in os.walk(build_dir):
        if "librefgc.a" in files:
            return os.path.join(root, "librefgc.a")
    return None


def build_refgc(repo, build_dir, lib, rebuild):
    """Return the path of librefgc.a, building it if needed; None if it cannot be built."""
    if lib:
        if os.path.exists(lib):
            return lib
        log(f"SKIP refgc: {lib} does not exist")
        return None
    default_dir = os.path.join(repo, "build", "release")
    if not rebuild:
        found = find_lib(build_dir) if os.path.isdir(build_dir) else None
        if found:
            return found
    # The top-level Makefile builds into build/release; only use it for the default dir.
    if os.path.abspath(build_dir) == os.path.abspath(default_dir) and \
            os.path.exists(os.path.join(repo, "Makefile")):
        r = run(["make", "-C", repo, "build"])
        if r.returncode == 0:
            found = find_lib(build_dir)
            if found:
                return found
        log("note: `make build` did not produce librefgc.a; trying cmake")
    if not os.path.exists(os.path.join(repo, "CMakeLists.txt")):
        log("SKIP refgc: no CMakeLists.txt (and no Makefile `build` target) in " + repo)
        return None
    if not shutil.which("cmake"):
        log("SKIP refgc: cmake is not installed")
        return None
    r = run(["cmake", "-S", repo, "-B", build_dir, "-DCMAKE_BUILD_TYPE=Release"])
    if r.returncode == 0:
        r = run(["cmake", "--build", build_dir, "-j2"])
    found = find_lib(build_dir)
    if r.returncode == 0 and found:
        return found
    # Tests or tools may be broken while the library itself builds. Build the static library
    # alone, in a separate directory so that the cache of the main build is left as it was.
    lib_dir = build_dir.rstrip("/") + "-libonly"
    log(f"note: the full build failed; building the static library alone in {lib_dir}")
    r = run(["cmake", "-S", repo, "-B", lib_dir, "-DCMAKE_BUILD_TYPE=Release",
             "-DREFGC_BUILD_TESTS=OFF", "-DREFGC_BUILD_TOOLS=OFF", "-DREFGC_BUILD_SHARED=OFF"])
    if r.returncode == 0:
        r = run(["cmake", "--build", lib_dir, "-j2"])
    found = find_lib(lib_dir) if os.path.isdir(lib_dir) else None
    if r.returncode != 0 or not found:
        log("SKIP refgc: the library failed to build")
        return None
    return found


# ------------------------------------------------------------------------------------------
# Reporting
# ------------------------------------------------------------------------------------------

def fmt(v, nd=3):
    return benchlib.fmt(v, nd)


def report(results, allocs, cases, args, failures, skipped, refgc_lib):
    """results[(alloc, case)] -> list of result dicts."""
    out = []
    sizes = "--quick sizes" if args.quick else "full sizes"
    out.append(f"Rounds: {args.rounds} ({sizes}); figures are medians over the rounds "
               f"(and min–max where shown). RSS figures exclude the benchmark's own mmap'd "
               f"pointer arrays; peak RSS is the process's VmHWM (/proc/self/status), which "
               f"does include them.")
    out.append("")

    def col(alloc, case, key):
        return med([r[key] for r in results.get((alloc, case), []) if key in r])

    def rng_(alloc, case, key):
        vals = [r[key] for r in results.get((alloc, case), []) if key in r]
        if not vals:
            return "—"
        return f"{min(vals):.3f}–{max(vals):.3f}"

    for case in cases:
        argv = (CASES[case][1] if args.quick else CASES[case][0])
        bench = BENCH_OF_CASE[case]
        out.append(f"#### {case}: `heap_bench {' '.join(argv)}`")
        out.append("")
        present = [a for a in allocs if results.get((a, case))]
        if bench in ("churn", "prodcons"):
            out.append("| allocator | runs | median s | min–max s | × mimalloc | "
                       "median CPU s | CPU × mimalloc | peak RSS MB | RSS at end MB |")
            out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
            mi = col("mimalloc", case, "seconds")
            mi_cpu = col("mimalloc", case, "cpu_seconds")
            for a in present:
                s = col(a, case, "seconds")
                c = col(a, case, "cpu_seconds")
                out.append(f"| {a} | {len(results[(a, case)])} | {fmt(s)} | "
                           f"{rng_(a, case, 'seconds')} | {fmt(ratio(s, mi), 2)} | "
                           f"{fmt(c)} | {fmt(ratio(c, mi_cpu), 2)} | "
                           f"{fmt(col(a, case, 'peak_rss_mb'), 1)} | "
                           f"{fmt(col(a, case, 'rss_end_mb'), 1)} |")
        else:
            best_name, best = None, None
            for a in RSS_PEERS:
                v = col(a, case, "rss_after_giveback_mb")
                if v is not None and (best is None or v < best):
                    best_name, best = a, v
            out.append("| allocator | runs | RSS before free MB | after free MB | "
                       "after give-back MB | × best of glibc/mimalloc/jemalloc | "
                       "live-page floor MB | give-back s | total s | peak RSS MB |")
            out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
            for a in present:
                g = col(a, case, "rss_after_giveback_mb")
                out.append(f"| {a} | {len(results[(a, case)])} | "
                           f"{fmt(col(a, case, 'rss_before_free_mb'), 1)} | "
                           f"{fmt(col(a, case, 'rss_after_free_mb'), 1)} | "
                           f"{fmt(g, 1)} | {fmt(ratio(g, best), 2)} | "
                           f"{fmt(col(a, case, 'live_pages_mb'), 1)} | "
                           f"{fmt(col(a, case, 'giveback_seconds'), 4)} | "
                           f"{fmt(col(a, case, 'seconds'), 3)} | "
                           f"{fmt(col(a, case, 'peak_rss_mb'), 1)} |")
            out.append("")
            out.append("Live-page floor: the distinct 4 KiB pages that the surviving blocks lie "
                       "on, i.e. the least RSS any allocator could keep without moving blocks "
                       "(it depends on where each allocator placed them).")
            if best_name:
                out.append("")
                out.append(f"Best of glibc/mimalloc/jemalloc after give-back: {best_name}, "
                           f"{best:.1f} MB.")
        out.append("")

    # Targets for refgc
    if "refgc" in allocs and any(results.get(("refgc", c)) for c in cases):
        out.append("#### Targets (refgc)")
        out.append("")
        out.append("| target | measured | verdict |")
        out.append("|---|---|---|")

        def verdict(v, limit):
            if v is None:
                return "not measured"
            return "met" if v <= limit else f"missed by {100 * (v / limit - 1):.0f}%"

        if "churn" in cases:
            r_ = ratio(col("refgc", "churn", "seconds"), col("mimalloc", "churn", "seconds"))
            out.append(f"| (a) churn time ≤ 0.9× mimalloc | {fmt(r_, 2)}× | "
                       f"{verdict(r_, 0.9)} |")
        if "prodcons" in cases:
            r_ = ratio(col("refgc", "prodcons", "seconds"),
                       col("mimalloc", "prodcons", "seconds"))
            out.append(f"| (b) prodcons time ≤ 1.0× mimalloc | {fmt(r_, 2)}× | "
                       f"{verdict(r_, 1.0)} |")
        for case in cases:
            if BENCH_OF_CASE[case] != "frag":
                continue
            vals = {a: col(a, case, "rss_after_giveback_mb") for a in RSS_PEERS}
            vals = {a: v for a, v in vals.items() if v is not None}
            g = col("refgc", case, "rss_after_giveback_mb")
            if vals and g is not None:
                bn = min(vals, key=vals.get)
                out.append(f"| (c) {case} RSS after give-back ≤ best of glibc/mimalloc/"
                           f"jemalloc | {g:.1f} MB vs {bn} {vals[bn]:.1f} MB | "
                           f"{verdict(g / vals[bn], 1.0)} |")
        peaks = ", ".join(f"{c} {fmt(col('refgc', c, 'peak_rss_mb'), 1)} MB" for c in cases
                          if results.get(("refgc", c)))
        out.append(f"| (d) peak RSS of each run (reported) | {peaks} | reported |")
        out.append("")

    if refgc_lib:
        built = time.strftime("%Y-%m-%d %H:%M", time.localtime(os.path.getmtime(refgc_lib)))
        out.append(f"refgc library: `{refgc_lib}` (built {built}); source tree: "
                   f"{source_fingerprint(args.repo, dirty_mark=False)}")
        out.append("")
    append_skipped_failures(out, skipped, failures, "Skipped allocators")
    return "\n".join(out)


# ------------------------------------------------------------------------------------------
# main
# ------------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    add_rounds_args(ap)
    ap.add_argument("--only", choices=["churn", "prodcons", "frag"], action="append",
                    help="run only this benchmark (may be repeated)")
    ap.add_argument("--allocators", default=",".join(ALL_ALLOCATORS),
                    help="comma-separated subset of " + ",".join(ALL_ALLOCATORS))
    ap.add_argument("--out", help="also write the Markdown report to this file")
    add_build_args(ap, "REPO/build/release", exported=False)
    args = parse_args(ap)

    repo = os.path.abspath(args.repo)
    build_dir = os.path.abspath(args.build_dir or os.path.join(repo, "build", "release"))
    src = os.path.join(HERE, "heap_bench.c")
    wanted = parse_names(ap, args.allocators, ALL_ALLOCATORS, "allocator")
    cases = [c for c in CASES if not args.only or BENCH_OF_CASE[c] in args.only]

    usable, skipped = ensure_peers(wanted, PEERS)

    refgc_lib = None
    if "refgc" in wanted:
        refgc_lib = build_refgc(repo, build_dir, args.lib, args.rebuild)
        if refgc_lib:
            usable.add("refgc")
        else:
            skipped.append(("refgc", "library not available or failed to build"))

    bin_dir = args.bin_dir or tempfile.mkdtemp(prefix="heap_bench.")
    os.makedirs(bin_dir, exist_ok=True)
    binaries = compile_all(wanted, usable, src, bin_dir, repo, refgc_lib, PEERS,
                           REFGC_LINK_SETS, skipped)
    allocs = [a for a in wanted if a in binaries]
    if not allocs:
        log("nothing to run")
        return 1
    if "mimalloc" not in allocs:
        log("note: mimalloc is not available, so there are no ratios to mimalloc")

    def schedule(rnd):
        order = rotated(allocs, rnd)
        return f": {' '.join(order)}", [
            (f"{a} {case}", [binaries[a]] + (CASES[case][1] if args.quick else CASES[case][0]),
             "", (a, case)) for case in cases for a in order]

    results = {}

    def record(item, res, _name):
        a, case = item
        results.setdefault((a, case), []).append(res)
        return (f"{a:9s} {case:9s} {res.get('seconds', 0):8.3f} s  "
                f"peak {res.get('peak_rss_mb', 0):7.1f} MB" +
                (f"  after give-back {res['rss_after_giveback_mb']:.1f} MB"
                 if 'rss_after_giveback_mb' in res else ""))

    rr = run_rounds(args.rounds, schedule, args.timeout, bench_env(*ENV_DROP), args.raw, record,
                    plain_numbers=True)
    text = ("### Machine\n\n" + machine_info(allocs, PEERS, memory=False, compiler_note=False) +
            "\n\n### Results\n\n" +
            report(results, allocs, cases, args, rr.failures, skipped, refgc_lib) +
            rr.load_line("the benchmark itself adds up to about 1 on its own, 2 during "
                         "prodcons"))
    write_outputs(text, args.out)
    return 1 if rr.failures else 0


if __name__ == "__main__":
    sys.exit(main())
