#!/usr/bin/env python3
"""Cycle collector benchmark driver: refgc's collector (refgc/gc.h) against CPython's gc module
and, for a full collection of a live heap, Boehm GC.

Builds bench/gc_bench.c once per variant (refgc, boehm), runs interleaved rounds (every run of
every benchmark once per round, the order rotated each round), and prints a Markdown report of
medians and ratios. CPython is measured with small scripts run by `python3` (the one on PATH;
--python adds or replaces interpreters). Standard library only.

    python3 bench/gc_bench.py --rounds 5                 # what docs/benchmarks.md shows
    python3 bench/gc_bench.py --rounds 5 --update-doc    # ... and rewrite its section there
    python3 bench/gc_bench.py --quick --rounds 1         # smoke run, small sizes
    python3 bench/gc_bench.py --only build               # one benchmark: cycles, live, build, trees

Benchmarks (issue "cycle collector"):
  cycles  (a) 1M objects in 2-cycles, all garbage: one collection, per object
  live    (b) 1M live tracked objects, no garbage: one full collection, per object
  build   (c) building a live heap of 10M objects with automatic collection on: collector share
              of the time and worst pause
  trees   (d) GCBench trees with automatic collection on: collector share of the time
"""

import argparse
import os
import shutil
import sys
import tempfile

from benchlib import (Results, Run, add_build_args, add_rounds_args, append_library,
                      append_skipped_failures, bench_env, compile_all, ensure_peers,
                      find_pythons, fmt, group_schedule, log, machine_info, parse_args,
                      parse_names, prepare_refgc, ratio, replace_marked_section, repro_cmd,
                      run_rounds, verdict, write_outputs)

HERE = os.path.dirname(os.path.abspath(__file__))

# variant -> (define, link flags, Debian package, header that proves it is installed)
PEERS = {
    "boehm": ("BENCH_BOEHM", ["-lgc", "-lpthread"], "libgc-dev", "/usr/include/gc.h"),
}
ALL_VARIANTS = ["refgc", "boehm", "cpython"]
GROUPS = ["cycles", "live", "build", "trees"]

SIZES = {"cycles": 1_000_000, "live": 1_000_000, "build": 10_000_000, "trees": 16}
QUICK = {"cycles": 100_000, "live": 100_000, "build": 1_000_000, "trees": 12}
LIVE_REPEAT = 5

DOC_HEADING = "## Cycle collector"
DOC_START = ("<!-- gc_bench:start — written by bench/gc_bench.py --update-doc; edit the script, "
             "not this text -->")
DOC_START_PREFIX = "<!-- gc_bench:start"
DOC_END = "<!-- gc_bench:end -->"

# targets (issue "cycle collector")
TARGET_SPEEDUP = 4.0   # (a), (b): at least 4x faster per object than CPython
TARGET_SHARE_C = 0.10  # (c): at most 10 % of the build time in the collector
TARGET_PAUSE_C = 0.050  # (c): worst pause at most 50 ms
TARGET_SHARE_D = 0.02  # (d): under 2 % of the time in the collector


REFGC_LINK_SETS = [["-lpthread", "-ldl", "-lm", "-ldw", "-lelf"], ["-lpthread", "-ldl"],
                   ["-lpthread", "-ldl", "-lm", "-latomic"]]  # libdw: the symbol resolver
# debug switches, preloads and tuning variables would change what is measured: names, prefixes
ENV_DROP = (("LD_PRELOAD", "REFGC_DEBUG", "REFGC_GC", "PYTHONMALLOC", "PYTHONGC", "GC_MARKERS",
             "GC_NPROCS"), ("MIMALLOC_", "MALLOC_CONF", "GLIBC_TUNABLES", "GC_"))


# ------------------------------------------------------------------------------------------
# CPython scripts (run as `python -I -c SCRIPT ARGS...`; each prints one RESULT line)
# ------------------------------------------------------------------------------------------

# Shapes. slots: an instance of a class with __slots__ = ("next",): one allocation holding one
# reference, the counterpart of refgc's node {header, next}. list: a 1-item list (the object
# and its item array). plain: an instance of an ordinary class with the attribute `next` (its
# attribute storage goes with it), what most Python programs have.
CPY_COMMON = r'''
import gc, platform, sys, time

class Node:
    __slots__ = ("next",)

class Plain:
    pass

def pair(kind):
    if kind == "slots":
        a = Node(); b = Node(); a.next = b; b.next = a
    elif kind == "list":
        a = [None]; b = [a]; a[0] = b
    elif kind == "plain":
        a = Plain(); b = Plain(); a.next = b; b.next = a
    else:
        raise SystemExit("unknown kind " + kind)

def one(kind):
    if kind == "slots":
        o = Node(); o.next = None
    elif kind == "list":
        o = [None]
    elif kind == "plain":
        o = Plain(); o.next = None
    else:
        raise SystemExit("unknown kind " + kind)
    return o

PY = platform.python_version()

def peak_rss_mb():
    # VmHWM: the peak of this process image (ru_maxrss may carry the launcher's size)
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return -1.0
'''

# (a) cycles: KIND GEN N. N/2 pairs a <-> b built with the collector disabled, then one
# gc.collect(GEN) timed (it finds, clears and frees them). tracked_before: the interpreter's
# own tracked objects, which a full collection examines too.
CPY_CYCLES = CPY_COMMON + r'''
kind, gen, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
gc.collect()
tracked = len(gc.get_objects())
gc.disable()
b0 = time.perf_counter()
for _ in range(n // 2):
    pair(kind)
b1 = time.perf_counter()
c0 = time.process_time()
t0 = time.perf_counter()
found = gc.collect(gen)
t1 = time.perf_counter()
c1 = time.process_time()
print(f"RESULT variant=cpython bench=cycles kind={kind} gen={gen} n={n} seconds={t1 - t0:.6f} "
      f"cpu_seconds={c1 - c0:.4f} ns_per_object={(t1 - t0) * 1e9 / n:.3f} returned={found} "
      f"tracked_before={tracked} build_seconds={b1 - b0:.4f} python={PY}")
'''

# (b) live: KIND N REPEAT. A list of N live objects built with the collector disabled, then
# REPEAT full collections, each timed: the first alone, the median of the others.
CPY_LIVE = CPY_COMMON + r'''
kind, n, repeat = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
gc.collect()
tracked = len(gc.get_objects())
gc.disable()
b0 = time.perf_counter()
lst = [one(kind) for _ in range(n)]
b1 = time.perf_counter()
secs = []
c0 = time.process_time()
for _ in range(repeat):
    t0 = time.perf_counter()
    found = gc.collect()
    secs.append(time.perf_counter() - t0)
    if found:
        raise SystemExit(f"live: gc.collect() found {found} unreachable objects")
c1 = time.process_time()
first = secs[0]
rest = sorted(secs[1:]) or [first]
m = len(rest)
steady = rest[m // 2] if m % 2 else (rest[m // 2 - 1] + rest[m // 2]) / 2
print(f"RESULT variant=cpython bench=live kind={kind} n={n} seconds={steady:.6f} "
      f"cpu_seconds={(c1 - c0) / repeat:.4f} ns_per_object={steady * 1e9 / n:.3f} "
      f"repeat={repeat} first_seconds={first:.6f} first_ns_per_object={first * 1e9 / n:.3f} "
      f"tracked_before={tracked} build_seconds={b1 - b0:.4f} python={PY}")
'''

# (c) build: SHAPE N GC. chain: `x = Node(); x.next = head; head = x`; list: `lst.append(Node())`.
# GC "gc": the collector on, with its default thresholds; its time is taken from gc.callbacks
# (start/stop); "nogc": gc.disable(), the baseline.
CPY_BUILD = CPY_COMMON + r'''
shape, n, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
st = {"t": 0.0, "total": 0.0, "max": 0.0, "max_gen": -1, "n": [0, 0, 0], "s": [0.0, 0.0, 0.0]}

def cb(phase, info):
    if phase == "start":
        st["t"] = time.perf_counter()
        return
    d = time.perf_counter() - st["t"]
    g = info["generation"]
    st["total"] += d
    st["n"][g] += 1
    st["s"][g] += d
    if d > st["max"]:
        st["max"], st["max_gen"] = d, g

gc.collect()
if mode == "nogc":
    gc.disable()
else:
    gc.enable()
gc.callbacks.append(cb)
c0 = time.process_time()
t0 = time.perf_counter()
if shape == "chain":
    head = None
    for _ in range(n):
        x = Node(); x.next = head; head = x
elif shape == "list":
    lst = []
    for _ in range(n):
        lst.append(Node())
else:
    raise SystemExit("unknown shape " + shape)
t1 = time.perf_counter()
c1 = time.process_time()
gc.callbacks.remove(cb)
s = t1 - t0
print(f"RESULT variant=cpython bench=build shape={shape} gc={mode} n={n} seconds={s:.5f} "
      f"cpu_seconds={c1 - c0:.4f} ns_per_object={s * 1e9 / n:.3f} gc_seconds={st['total']:.6f} "
      f"gc_max_pause={st['max']:.6f} gc_max_gen={st['max_gen']} gc_n0={st['n'][0]} "
      f"gc_n1={st['n'][1]} gc_n2={st['n'][2]} gc_s0={st['s'][0]:.6f} gc_s1={st['s'][1]:.6f} "
      f"gc_s2={st['s'][2]:.6f} threshold={'/'.join(map(str, gc.get_threshold()))} "
      f"peak_rss_mb={peak_rss_mb():.1f} python={PY}")
'''


# ------------------------------------------------------------------------------------------
# Runs
# ------------------------------------------------------------------------------------------

CPY_KIND_LABEL = {
    "slots": "instance of a class with `__slots__ = ('next',)`",
    "list": "1-item list",
    "plain": "instance of an ordinary class (attribute `next`)",
}


def plan(args, binaries, pythons):
    sz = QUICK if args.quick else SIZES
    b = binaries
    runs = []
    # (a) cycles
    n = sz["cycles"]
    if "refgc" in b:
        runs.append(Run("refgc-full", "cycles",
                        "refgc: `refgc_collect(2)` (exhaustive: every tracked object)",
                        [b["refgc"], "cycles", str(n), "2"], "refgc"))
        runs.append(Run("refgc-young", "cycles",
                        "refgc: `refgc_collect(0)` (young, from the candidate roots)",
                        [b["refgc"], "cycles", str(n), "0"], "refgc"))
        runs.append(Run("refgc-old-auto", "cycles",
                        "refgc: automatic old collection, from candidate roots (objects in "
                        "generation 2)", [b["refgc"], "cycles-old", str(n)], "refgc"))
    for i, (py, _label) in enumerate(pythons):
        for kind, gen in (("slots", 2), ("slots", 0), ("list", 2), ("plain", 2)):
            runs.append(Run(f"py{i}-{kind}-g{gen}", "cycles",
                            f"CPython {'gc.collect()' if gen == 2 else 'gc.collect(0)'}, "
                            f"{CPY_KIND_LABEL[kind]}",
                            [py, "-I", "-c", CPY_CYCLES, kind, str(gen), str(n)], "cpython"))
    # (b) live
    n = sz["live"]
    if "refgc" in b:
        runs.append(Run("refgc", "live", "refgc: `refgc_collect(2)`",
                        [b["refgc"], "live", str(n), str(LIVE_REPEAT)], "refgc"))
    if "boehm" in b:
        runs.append(Run("boehm", "live", "Boehm GC: `GC_gcollect()`",
                        [b["boehm"], "live", str(n), str(LIVE_REPEAT)], "boehm"))
    for i, (py, _label) in enumerate(pythons):
        for kind in ("slots", "plain"):
            runs.append(Run(f"py{i}-{kind}", "live",
                            f"CPython `gc.collect()`, {CPY_KIND_LABEL[kind]}",
                            [py, "-I", "-c", CPY_LIVE, kind, str(n), str(LIVE_REPEAT)],
                            "cpython"))
    # (c) build
    n = sz["build"]
    if "refgc" in b:
        for shape in ("chain", "list"):
            for style in ("own", "churn"):
                for gc in ("gc", "t0", "nogc"):
                    runs.append(Run(f"refgc-{shape}-{style}-{gc}", "build",
                                    f"refgc, {shape}, {style}", [b["refgc"], "build", str(n),
                                                                 shape, style, gc], "refgc"))
    for i, (py, _label) in enumerate(pythons):
        for shape in ("chain", "list"):
            for gc in ("gc", "nogc"):
                runs.append(Run(f"py{i}-{shape}-{gc}", "build", f"CPython, {shape}",
                                [py, "-I", "-c", CPY_BUILD, shape, str(n), gc], "cpython"))
    # (d) trees
    depth = sz["trees"]
    if "refgc" in b:
        for style in ("own", "churn"):
            for gc in ("gc", "t0", "nogc"):
                runs.append(Run(f"refgc-{style}-{gc}", "trees", f"refgc, {style}",
                                [b["refgc"], "trees", str(depth), style, gc], "refgc"))
    return [r for r in runs if not args.only or r.group in args.only]


# ------------------------------------------------------------------------------------------
# Reporting
# ------------------------------------------------------------------------------------------

def pct(v, nd=1):
    return "—" if v is None else f"{v * 100:.{nd}f} %"


def report(res, runs, pythons, args, failures, skipped, refgc_lib, fp_before):
    out = []
    q = " (--quick sizes)" if args.quick else ""
    sz = QUICK if args.quick else SIZES
    by_group = {}
    for r in runs:
        by_group.setdefault(r.group, []).append(r)
    verdicts = []
    notes = []
    py0 = "py0"
    plabel = pythons[0][1] if pythons else "CPython"

    # ---- (a) cycles -----------------------------------------------------------------------
    if "cycles" in by_group:
        n = sz["cycles"]
        out.append(f"### (a) {n:,} objects in 2-cycles, all garbage: one collection{q}")
        out.append("")
        out.append(f"{n // 2:,} pairs a ↔ b built with automatic collection off, the way a Python "
                   "program builds them (`a.next = b; b.next = a; del a, b`: each link increfs, "
                   "the program's references are then dropped, which leaves both objects with a "
                   "count of 1 and makes both candidate roots); then one collection is timed "
                   "(wall clock around the call), which finds the pairs, clears them and frees "
                   "them. refgc objects: {header, next}, 16 bytes, with traverse and clear hooks. "
                   "Rows: `refgc_collect(2)` examines every tracked object (walks the object "
                   "pages); `refgc_collect(0)` starts from the candidate roots (young "
                   "collection, as the automatic ones); the automatic old collection: the same "
                   "pairs held by the program and promoted to generation 2 by an explicit full "
                   f"collection, then dropped ({n:,} old candidate roots), filed by a "
                   "`refgc_collect(0)`, and collected by the automatic collection that "
                   "thresholds 1/1/1 and the next object creation start: an old collection from "
                   "candidate roots, timed by the START/STOP callbacks. CPython: the same pairs "
                   "built with `gc.disable()`, then `gc.collect()` (or `gc.collect(0)`) timed "
                   "with `time.perf_counter()`; a full collection also examines the "
                   "interpreter's own tracked objects (column *other tracked*).")
        out.append("")
        out.append("| variant | runs | ns per object (median) | min–max | ms per collection | "
                   "CPU ns per object | examined | unreachable | other tracked | CPython "
                   "`gc.collect()` (slots) ÷ this |")
        out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        cpy = res.col("cycles", f"{py0}-slots-g2", "ns_per_object")
        for r in by_group["cycles"]:
            v = res.col("cycles", r.key, "ns_per_object")
            s = res.col("cycles", r.key, "seconds")
            c = res.col("cycles", r.key, "cpu_seconds")
            cn = c * 1e9 / n if c is not None else None
            if r.variant == "refgc":
                ex = fmt(res.col("cycles", r.key, "examined"), 0)
                un = fmt(res.col("cycles", r.key, "unreachable"), 0)
                other = "—"
            else:
                ex = "—"
                un = fmt(res.col("cycles", r.key, "returned"), 0)
                other = fmt(res.col("cycles", r.key, "tracked_before"), 0)
            label = r.label if len(pythons) < 2 or r.variant != "cpython" else \
                f"{r.label} ({pythons[int(r.key[2:].split('-')[0])][1]})"
            out.append(f"| {label} | {res.n('cycles', r.key)} | {fmt(v, 1)} | "
                       f"{res.spread('cycles', r.key, 'ns_per_object', 1)} | "
                       f"{fmt(s * 1e3 if s is not None else None, 1)} | {fmt(cn, 1)} | "
                       f"{ex} | {un} | {other} | {fmt(ratio(cpy, v), 2)} |")
        out.append("")
        pr = res.col("cycles", "refgc-old-auto", "promote_seconds")
        fi = res.col("cycles", "refgc-old-auto", "file_seconds")
        if pr is not None:
            out.append(f"For the automatic old collection row: the explicit full collection that "
                       f"promoted the {n:,} live objects took {fmt(pr * 1e3, 1)} ms "
                       f"({fmt(pr * 1e9 / n, 1)} ns per object, median), and the "
                       f"`refgc_collect(0)` that filed the old candidate roots "
                       f"{fmt(fi * 1e3, 1)} ms ({fmt(fi * 1e9 / n, 1)} ns per object); neither "
                       f"is in the row.")
            out.append("")
        out.append("Which CPython figure to compare with: the `__slots__` instance is the same "
                   "object as refgc's node (one allocation holding one reference) and is the "
                   "figure the ratios and verdicts use; the 1-item list and the ordinary-class "
                   "instance carry a second block (the item array; the attribute storage) that "
                   "CPython's collector also pays for, and are shown for scale.")
        out.append("")
        for key in ("refgc-full", "refgc-young", "refgc-old-auto"):
            if not res.n("cycles", key):
                continue
            v = res.col("cycles", key, "ns_per_object")
            sp = ratio(cpy, v)
            lab = {"refgc-full": "refgc_collect(2)", "refgc-young": "refgc_collect(0)",
                   "refgc-old-auto": "automatic old collection"}[key]
            verdicts.append((f"(a) 2-cycles, {lab}: ≥ {TARGET_SPEEDUP:.0f}× faster per object "
                             f"than CPython `gc.collect()` (slots)",
                             f"{fmt(cpy, 1)} ns ÷ {fmt(v, 1)} ns = {fmt(sp, 2)}×",
                             verdict(sp, TARGET_SPEEDUP, at_most=False)))
        plain = res.col("cycles", f"{py0}-plain-g2", "ns_per_object")
        v = res.col("cycles", "refgc-full", "ns_per_object")
        if plain is not None and v is not None:
            sp = ratio(plain, v)
            verdicts.append(("(a) the same, refgc_collect(2) against CPython's ordinary-class "
                             "instances (for scale)",
                             f"{fmt(plain, 1)} ns ÷ {fmt(v, 1)} ns = {fmt(sp, 2)}×",
                             verdict(sp, TARGET_SPEEDUP, at_most=False)))

    # ---- (b) live -------------------------------------------------------------------------
    if "live" in by_group:
        n = sz["live"]
        out.append(f"### (b) {n:,} live tracked objects, no garbage: one full collection{q}")
        out.append("")
        out.append(f"One list object holding {n:,} small tracked objects (refgc: a list object "
                   "{header, n, cap, items} whose traverse hook visits the items, and nodes "
                   "{header, next = NULL}; Boehm: a `GC_MALLOC`'d array of pointers to 16-byte "
                   "`GC_MALLOC` blocks; CPython: a list of objects), built with automatic "
                   f"collection off; then {LIVE_REPEAT} full collections in the same process, "
                   "each timed: the figure is the median of the 2nd to the last (the first "
                   "is shown apart: in CPython and refgc it also moves the objects to the "
                   "oldest generation). Boehm's `GC_gcollect()` marks from the roots and "
                   "sweeps lazily (the sweep is paid by later allocations, so its figure is "
                   "mostly marking).")
        out.append("")
        out.append("| variant | runs | ns per object (median) | min–max | ms per collection | "
                   "first collection, ns per object | CPython (slots) ÷ this |")
        out.append("|---|---:|---:|---:|---:|---:|---:|")
        cpy = res.col("live", f"{py0}-slots", "ns_per_object")
        for r in by_group["live"]:
            v = res.col("live", r.key, "ns_per_object")
            s = res.col("live", r.key, "seconds")
            out.append(f"| {r.label} | {res.n('live', r.key)} | {fmt(v, 1)} | "
                       f"{res.spread('live', r.key, 'ns_per_object', 1)} | "
                       f"{fmt(s * 1e3 if s is not None else None, 1)} | "
                       f"{fmt(res.col('live', r.key, 'first_ns_per_object'), 1)} | "
                       f"{fmt(ratio(cpy, v), 2)} |")
        out.append("")
        bpar = res.col("live", "boehm", "gc_parallel")
        if bpar is not None:
            out.append(f"Boehm GC: parallel marking {'on' if bpar else 'off'} "
                       f"(`GC_get_parallel()` = {bpar:.0f}), heap "
                       f"{fmt(res.col('live', 'boehm', 'gc_heap_mb'), 1)} MB.")
            out.append("")
        v = res.col("live", "refgc", "ns_per_object")
        if v is not None:
            sp = ratio(cpy, v)
            verdicts.append((f"(b) live heap, refgc_collect(2): ≥ {TARGET_SPEEDUP:.0f}× faster "
                             f"per object than CPython `gc.collect()` (slots)",
                             f"{fmt(cpy, 1)} ns ÷ {fmt(v, 1)} ns = {fmt(sp, 2)}×",
                             verdict(sp, TARGET_SPEEDUP, at_most=False)))
            bo = res.col("live", "boehm", "ns_per_object")
            if bo is not None:
                notes.append(f"(b) for scale: Boehm GC's full collection of the same graph takes "
                             f"{fmt(bo, 1)} ns per object, {fmt(ratio(v, bo), 2)}× less than "
                             f"refgc's (no target).")

    # ---- (c) build ------------------------------------------------------------------------
    if "build" in by_group:
        n = sz["build"]
        out.append(f"### (c) building a live heap of {n:,} objects, automatic collection on{q}")
        out.append("")
        out.append(f"{n:,} small tracked objects made and kept, with the collector on and its "
                   "default thresholds. Shapes: *chain*, a linked list, each new node holding "
                   "the previous head; *list*, one growable list object the nodes are appended "
                   "to (items in a `refgc_realloc`'d array). Styles: *own*, idiomatic C: the "
                   "new node (or the list) takes over the creator's reference, no count changes "
                   "besides; *churn*, Python-like: the link increfs and the temporary reference "
                   "is dropped after (`x.next = head; head = x`, `lst.append(x)`), which leaves a "
                   "count of 1 and makes a candidate root of every object. *Build* is the wall "
                   "time of the loop; *collector* is the time inside collections, summed from "
                   "the START/STOP callbacks (refgc_gc_callback_add; CPython: gc.callbacks); "
                   "*share* = collector ÷ build, per run, median; *worst pause* = the longest "
                   "single collection of a run (median over runs; max over runs after the "
                   "slash). *gc off* is the same build with automatic collection off: refgc "
                   "with threshold 0 set to 0 (`refgc_gc_set_threshold(0, 10, 10)`, which the "
                   "API documents as disabling automatic collection), CPython with "
                   "`gc.disable()`; *(on − off) ÷ on* is the share of the build the collector "
                   "costs all told, its indirect costs included (noisier: two different runs). "
                   "*refgc_gc_disable()* is the same build with the collector switched off by "
                   "`refgc_gc_disable()` instead, as a program would. CPython: the objects are "
                   "`__slots__` instances.")
        out.append("")
        out.append("| variant | runs | build s (median) | min–max | ns per object | collector s | "
                   "share | worst pause ms (median / max) | collections gen 0/1/2 | "
                   "examined per object | gc off: build s | (on − off) ÷ on | "
                   "refgc_gc_disable(): build s | peak RSS MB (on / off) |")
        out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        slow_disable = []
        for r in by_group["build"]:
            if not r.key.endswith("-gc"):
                continue
            base = r.key[:-3]
            off = base + ("-t0" if r.variant == "refgc" else "-nogc")
            dis = base + "-nogc" if r.variant == "refgc" else None
            s = res.col("build", r.key, "seconds")
            so = res.col("build", off, "seconds")
            g = res.col("build", r.key, "gc_seconds")
            sh = res.share("build", r.key)
            mp = res.col("build", r.key, "gc_max_pause")
            mpx = res.maxv("build", r.key, "gc_max_pause")
            ns = [res.col("build", r.key, f"gc_n{k}") for k in range(3)]
            ex = res.col("build", r.key, "gc_examined")
            out.append(f"| {r.label} | {res.n('build', r.key)} | {fmt(s, 3)} | "
                       f"{res.spread('build', r.key, 'seconds', 3)} | "
                       f"{fmt(res.col('build', r.key, 'ns_per_object'), 1)} | {fmt(g, 3)} | "
                       f"{pct(sh)} | {fmt(mp * 1e3 if mp is not None else None, 2)} / "
                       f"{fmt(mpx * 1e3 if mpx is not None else None, 2)} | "
                       f"{'/'.join(fmt(x, 0) for x in ns)} | "
                       f"{fmt(ex / n if ex is not None else None, 2)} | {fmt(so, 3)} | "
                       f"{pct(ratio(s - so, s) if s is not None and so is not None else None)} | "
                       f"{fmt(res.col('build', dis, 'seconds'), 3) if dis else '—'} | "
                       f"{fmt(res.col('build', r.key, 'peak_rss_mb'), 1)} / "
                       f"{fmt(res.col('build', off, 'peak_rss_mb'), 1)} |")
            sd = res.col("build", dis, "seconds") if dis else None
            if sd is not None and so and sd > 1.15 * so:
                slow_disable.append(f"{r.label} {sd:.3f} s against {so:.3f} s")
            if r.variant == "refgc":
                verdicts.append((f"(c) build, {r.label}: collector ≤ {TARGET_SHARE_C:.0%} of the "
                                 f"time", f"{pct(sh)} ({fmt(g, 3)} s of {fmt(s, 3)} s)",
                                 verdict(sh, TARGET_SHARE_C)))
                verdicts.append((f"(c) build, {r.label}: worst pause ≤ "
                                 f"{TARGET_PAUSE_C * 1e3:.0f} ms",
                                 f"{fmt(mp * 1e3 if mp is not None else None, 2)} ms (median; "
                                 f"max {fmt(mpx * 1e3 if mpx is not None else None, 2)} ms)",
                                 verdict(mp, TARGET_PAUSE_C)))
        out.append("")
        if any(r.variant == "cpython" for r in by_group["build"]):
            out.append(f"CPython rows: {plabel}, thresholds "
                       f"{res.by.get(('build', py0 + '-chain-gc'), [{}])[0].get('threshold', '?')}."
                       " *examined per object* is not available from CPython's callbacks.")
            out.append("")
        if slow_disable:
            out.append("With the collector switched off by `refgc_gc_disable()` these builds "
                       "took longer than with threshold0 = 0 (medians): "
                       + "; ".join(slow_disable) + ".")
            out.append("")
        notes.append("(c), (d): the *own* rows meet their targets because no count is ever "
                     "decremented to a non-zero value there, so there is no candidate root and "
                     "no automatic collection runs at all (collections 0/0/0); the *churn* rows "
                     "are the ones that exercise the collector.")

    # ---- (d) trees ------------------------------------------------------------------------
    if "trees" in by_group:
        depth = sz["trees"]
        nodes = None
        for r in by_group["trees"]:
            nodes = nodes or res.col("trees", r.key, "n")
        out.append(f"### (d) GCBench trees, max depth {depth}, automatic collection on{q}")
        out.append("")
        out.append(f"The shape of `bench/object_bench.c`'s trees: a stretch tree of depth "
                   f"{depth + 1} built, checked and dropped; a long-lived tree of depth {depth} "
                   f"and an array of 500,000 doubles kept throughout; then for d = 4, 6, …, "
                   f"{depth}: 2^({depth}−d+4) trees of depth d built, checked and dropped "
                   f"({int(nodes) if nodes else '?':,} nodes in all; no cycles). Nodes: "
                   "{header, left, right}. *own*: a parent takes over its children's references "
                   "(object_bench.c's program); *churn*: a parent increfs its children and the "
                   "two temporaries are then dropped, as Python's `Node(make(d - 1), "
                   "make(d - 1))` does (every node but the roots becomes a candidate root). "
                   "Columns as in (c).")
        out.append("")
        out.append("| variant | runs | total s (median) | min–max | collector s | share | "
                   "worst pause ms (median / max) | collections gen 0/1/2 | examined per node | "
                   "gc off: total s | (on − off) ÷ on | refgc_gc_disable(): total s | "
                   "peak RSS MB (on / off / disabled) |")
        out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        rss_notes = []
        for r in by_group["trees"]:
            if not r.key.endswith("-gc"):
                continue
            off = r.key[:-3] + "-t0"
            dis = r.key[:-3] + "-nogc"
            s = res.col("trees", r.key, "seconds")
            so = res.col("trees", off, "seconds")
            g = res.col("trees", r.key, "gc_seconds")
            sh = res.share("trees", r.key)
            mp = res.col("trees", r.key, "gc_max_pause")
            mpx = res.maxv("trees", r.key, "gc_max_pause")
            ns = [res.col("trees", r.key, f"gc_n{k}") for k in range(3)]
            ex = res.col("trees", r.key, "gc_examined")
            out.append(f"| {r.label} | {res.n('trees', r.key)} | {fmt(s, 3)} | "
                       f"{res.spread('trees', r.key, 'seconds', 3)} | {fmt(g, 3)} | {pct(sh)} | "
                       f"{fmt(mp * 1e3 if mp is not None else None, 2)} / "
                       f"{fmt(mpx * 1e3 if mpx is not None else None, 2)} | "
                       f"{'/'.join(fmt(x, 0) for x in ns)} | "
                       f"{fmt(ex / nodes if ex is not None and nodes else None, 2)} | "
                       f"{fmt(so, 3)} | "
                       f"{pct(ratio(s - so, s) if s is not None and so is not None else None)} | "
                       f"{fmt(res.col('trees', dis, 'seconds'), 3)} | "
                       f"{fmt(res.col('trees', r.key, 'peak_rss_mb'), 1)} / "
                       f"{fmt(res.col('trees', off, 'peak_rss_mb'), 1)} / "
                       f"{fmt(res.col('trees', dis, 'peak_rss_mb'), 1)} |")
            ron = res.col("trees", r.key, "peak_rss_mb")
            roff = res.col("trees", off, "peak_rss_mb")
            if ron and roff and roff > 2 * ron:
                rss_notes.append(f"{r.label}: {roff:.1f} MB with automatic collection off against "
                                 f"{ron:.1f} MB with it on")
            verdicts.append((f"(d) trees, {r.label}: collector < {TARGET_SHARE_D:.0%} of the "
                             f"time", f"{pct(sh, 2)} ({fmt(g, 3)} s of {fmt(s, 3)} s)",
                             verdict(sh, TARGET_SHARE_D)))
        out.append("")
        if rss_notes:
            nodes_ = int(nodes) if nodes else 0
            out.append("Peak RSS with automatic collection off: " + "; ".join(rss_notes) +
                       f". Decrements to a non-zero count still record candidate roots (8 "
                       f"bytes each, up to one per node: {nodes_:,} × 8 B = "
                       f"{nodes_ * 8 / 2**20:.0f} MiB) and no collection drains the buffer.")
            out.append("")

    # ---- targets --------------------------------------------------------------------------
    if verdicts:
        out.append("### Targets and verdicts")
        out.append("")
        out.append("| target | measured (medians) | verdict |")
        out.append("|---|---|---|")
        for t, m, v in verdicts:
            out.append(f"| {t} | {m} | {v} |")
        out.append("")
        for note in notes:
            out.append(note)
            out.append("")

    append_library(out, args, refgc_lib, fp_before)
    append_skipped_failures(out, skipped, failures)
    return "\n".join(out)


# ------------------------------------------------------------------------------------------
# main
# ------------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    add_rounds_args(ap)
    ap.add_argument("--only", choices=GROUPS, action="append",
                    help="run only this benchmark (may be repeated)")
    ap.add_argument("--variants", default=",".join(ALL_VARIANTS),
                    help="comma-separated subset of " + ",".join(ALL_VARIANTS))
    ap.add_argument("--python", action="append",
                    help="CPython interpreter to measure (may be repeated; default: python3 on "
                         "PATH); the first one is the one the ratios use")
    ap.add_argument("--out", help="also write the Markdown report to this file")
    ap.add_argument("--update-doc", nargs="?", const="", metavar="PATH",
                    help="replace (or add) the gc_bench section of PATH (default: "
                         "REPO/docs/benchmarks.md), between its markers, with the report")
    add_build_args(ap, "REPO/build/gc_bench", exported=True)
    args = parse_args(ap)
    args.repo = os.path.abspath(args.repo)

    repo = args.repo
    build_dir = os.path.abspath(args.build_dir or os.path.join(repo, "build", "gc_bench"))
    src = os.path.join(HERE, "gc_bench.c")
    wanted = parse_names(ap, args.variants, ALL_VARIANTS, "variant")
    if "boehm" in wanted and args.only and "live" not in args.only:
        wanted.remove("boehm")  # Boehm takes part in (b) only

    usable, skipped = ensure_peers(wanted, PEERS)
    refgc_lib, fp_before = prepare_refgc(args, build_dir, wanted, usable, skipped)

    tmp = None if args.bin_dir else tempfile.TemporaryDirectory(prefix="gc_bench.")
    bin_dir = args.bin_dir or tmp.name
    os.makedirs(bin_dir, exist_ok=True)
    binaries = compile_all(wanted, usable, src, bin_dir, args.lib_src or repo, refgc_lib, PEERS,
                           REFGC_LINK_SETS, skipped)
    pythons = (find_pythons(args.python, [shutil.which("python3") or sys.executable])
               if "cpython" in wanted else [])
    if "cpython" in wanted and not pythons:
        skipped.append(("cpython", "no working python3 interpreter"))
    runs = plan(args, binaries, pythons)
    if not runs:
        log("nothing to run")
        return 1

    res = Results()
    groups = [g for g in GROUPS if any(r.group == g for r in runs)]

    def record(r, out, name):
        res.add(r, out)
        what = f"{out.get('ns_per_object', 0):9.1f} ns/object"
        if r.group in ("build", "trees"):
            gs = out.get("gc_seconds", 0.0)
            what = (f"{out['seconds']:.3f} s, collector {gs:.3f} s "
                    f"({100 * gs / out['seconds']:.1f} %), worst pause "
                    f"{1e3 * out.get('gc_max_pause', 0.0):.2f} ms")
        return f"{name:28s} {what}"

    rr = run_rounds(args.rounds, group_schedule(runs, groups), args.timeout, bench_env(*ENV_DROP),
                    args.raw, record)
    if tmp:
        tmp.cleanup()

    variants = sorted(set(r.variant for r in runs), key=ALL_VARIANTS.index)
    sizes = "--quick sizes" if args.quick else "full sizes"
    text = (DOC_HEADING + "\n\n"
            "Issue \"cycle collector\": refgc's cycle collector (`refgc/gc.h`: trial deletion "
            "from candidate roots, generations 0/1/2) against CPython's `gc` module on the same "
            "graph shapes, and Boehm GC for a full collection of a live heap. Written by "
            "`bench/gc_bench.py` (the program: `bench/gc_bench.c`, one binary per variant); do "
            "not edit by hand. Reproduce (prints the section; `--update-doc` also rewrites it "
            "here, between its markers):\n\n"
            f"    {repro_cmd('gc_bench.py', args)}\n\n"
            f"Rounds: {args.rounds} ({sizes}), interleaved: every run of a benchmark once per "
            "round, in an order rotated each round, each run a fresh process. Figures are "
            "medians over the rounds; min–max where shown.\n\n"
            "### Machine\n\n" + machine_info(variants, PEERS, pythons, glibc=False) + "\n\n" +
            report(res, runs, pythons, args, rr.failures, skipped, refgc_lib, fp_before) +
            rr.load_line("the benchmark itself adds about 1; more than that means other work "
                         "shared the 2 cores"))
    write_outputs(text, args.out)
    if args.update_doc is not None:
        path = args.update_doc or os.path.join(repo, "docs", "benchmarks.md")
        replace_marked_section(path, DOC_HEADING, DOC_START, DOC_START_PREFIX, DOC_END, text,
                               "gc_bench")
        log(f"updated the gc_bench section of {path}")
    return 1 if rr.failures else 0


if __name__ == "__main__":
    sys.exit(main())
