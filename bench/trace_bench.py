#!/usr/bin/env python3
"""Tracing benchmark driver: what allocation tracing (refgc/trace.h) costs, against
tracemalloc and heaptrack for scale.

Builds bench/trace_bench.c once (one binary: the first argument picks the tracing mode, so
every mode runs the same machine code), runs interleaved rounds (every run of a workload once
per round, the order rotated each round, each run a fresh process) and prints a Markdown report
of medians and slowdown ratios against no tracing. Standard library only.

    python3 bench/trace_bench.py --rounds 5 --ref 1ce1410            # what the doc shows
                                     # (1ce1410: the last commit before tracing)
    python3 bench/trace_bench.py --rounds 5 --ref 1ce1410 --update-doc  # ... and rewrite the
                                                    # Tracing section of docs/benchmarks.md
    python3 bench/trace_bench.py --quick --rounds 1 --no-profile     # smoke run

What runs:
  refgc, in one binary: no tracing; refgc_trace_start(1); refgc_trace_start(16);
      refgc_trace_start_sampled(16, 512 KiB); 16 frames with REFGC_TRACE_UNWIND=dwarf. On heap
      churn (heap_bench's churn), object churn with and without a free list (object_bench's
      churn) and binary trees (object_bench's trees), all allocating 16+ calls deep.
  tracemalloc: the same workloads in Python (bench/trace_bench_tracemalloc.py): no tracing,
      tracemalloc.start(1), tracemalloc.start(16).
  heaptrack: the same binary allocating with glibc malloc, with and without heaptrack (which
      intercepts the C library's malloc only), and refgc untraced under heaptrack.
  memory (first round only): tracer bytes per traced live block, 1M small blocks from 8 and
      from 16,384 distinct stacks; tracemalloc's bytes per trace likewise.
  regression (--ref REF): heap_bench churn, object_bench churn and trees on the work tree's
      library and on commit REF's, untraced: did adding tracing slow the fast paths?
  profile (unless --no-profile): callgrind instruction counts per operation, by function, of
      the timed part only (--toggle-collect='measured_*'), per tracing mode.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import benchlib
from benchlib import (CFLAGS, Results, Run, append_skipped_failures, bench_env, build_refgc,
                      export_ref, fmt, log, machine_info, med, ratio, replace_marked_section,
                      rotated, run, run_rounds, source_fingerprint, verdict, write_outputs)

HERE = os.path.dirname(os.path.abspath(__file__))

DOC_HEADING = "## Tracing"
DOC_START = "<!-- trace_bench:start -->"
DOC_START_PREFIX = "<!-- trace_bench:start"
DOC_END = "<!-- trace_bench:end -->"

SAMPLE_BYTES = 512 * 1024
TARGET_16 = 2.0       # slowdown with 16 frames
TARGET_SAMPLE = 1.05  # slowdown when sampling at 512 KiB
TARGET_BYTES = 24.0   # tracer bytes per traced live block

DEPTH = 16            # calls between a workload's loop and its allocations

# Sizes: full, --quick. "small" sizes are for the slow modes (DWARF unwinding, heaptrack);
# the figures are per operation, and steady-state churn costs the same per operation at any
# length; trees' small runs get their own untraced baseline of the same size.
SIZES = {
    "heap_steps": (4_000_000, 400_000),
    "heap_steps_small": (200_000, 50_000),
    "heap_live": (10_000, 10_000),
    "obj_n": (4_000_000, 400_000),
    "obj_n_small": (100_000, 20_000),
    "trees": (14, 10),
    "trees_small": (10, 8),
    "py_heap": (100_000, 20_000),
    "py_obj": (200_000, 40_000),
    "py_trees": (10, 8),
    "mem_n": (1_000_000, 100_000),
    "py_mem_n": (250_000, 50_000),
    "reg_heap": (10_000_000, 1_000_000),
    "reg_obj": (10_000_000, 1_000_000),
    "reg_trees": (16, 12),
    "prof_heap": (100_000, 20_000),
    "prof_obj": (100_000, 20_000),
    "prof_trees": (10, 8),
    "samp_heap": (2_000_000, 200_000),
    "samp_obj": (2_000_000, 200_000),
    "samp_trees": (12, 8),
    "reg_prof_heap": ((500_000, 1_000_000), (100_000, 200_000)),
    "reg_prof_obj": ((500_000, 1_000_000), (100_000, 200_000)),
    "reg_prof_trees": ((10, 12), (8, 10)),
}
SAMP_PAIRS = 6        # untraced / sampled pairs per round in the sampling close-up

# librefgc.a with libdw symbols needs -ldw -lelf (harmless for one without, when installed)
LINK_SETS = [["-lpthread", "-ldl", "-lm", "-ldw", "-lelf"], ["-lpthread", "-ldl", "-lm"],
             ["-lpthread", "-ldl", "-lm", "-ldw", "-lelf", "-latomic"]]
ENV_DROP = (("LD_PRELOAD", "REFGC_DEBUG", "PYTHONMALLOC", "PYTHONTRACEMALLOC",
             "PYTHONDEVMODE"), ("REFGC_TRACE", "MALLOC_", "GLIBC_TUNABLES"))

MODES = [  # key, trace_bench mode argument, label, environment prefix
    ("off", "off", "no tracing", []),
    ("t1", "trace:1", "1 frame", []),
    ("t16", "trace:16", "16 frames", []),
    ("s16", f"sample:16:{SAMPLE_BYTES}", "sampling 512 KiB, 16 frames", []),
    ("d16", "trace:16", "16 frames, REFGC_TRACE_UNWIND=dwarf", ["env",
                                                                "REFGC_TRACE_UNWIND=dwarf"]),
]
PY_MODES = [("off", "no tracemalloc"), ("tm1", "tracemalloc.start(1)"),
            ("tm16", "tracemalloc.start(16)")]


def size(args, name):
    return SIZES[name][1 if args.quick else 0]


# ------------------------------------------------------------------------------------------
# Building
# ------------------------------------------------------------------------------------------

def compile_prog(src, out, include_root, lib, extra_flags, defines=()):
    last = None
    for links in LINK_SETS:
        cmd = (["cc"] + CFLAGS + list(extra_flags) + list(defines) +
               ["-I" + os.path.join(include_root, "include"), src, "-o", out, lib] + links)
        r = run(cmd, capture_output=True, text=True)
        if r.stderr.strip():
            log(r.stderr.rstrip())
        if r.returncode == 0:
            return out
        last = r
    log(f"{os.path.basename(src)} failed to compile or link (exit {last.returncode})")
    return None


def tool_version(cmd):
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    out = (r.stdout or r.stderr).strip().splitlines()
    return out[0] if out else None


# ------------------------------------------------------------------------------------------
# Plan
# ------------------------------------------------------------------------------------------

def heaptrack_argv(binary, args_, out_prefix):
    """Run `binary args_` under heaptrack, deleting its output file afterwards."""
    script = 'p="$1"; shift; heaptrack -o "$p" "$@"; rc=$?; rm -f "$p" "$p".*; exit $rc'
    return ["sh", "-c", script, "sh", out_prefix] + [binary] + args_


def plan(args, tb, py, tmpdir, reg):
    runs = []
    d = str(DEPTH)
    hs, hss, live = (str(size(args, "heap_steps")), str(size(args, "heap_steps_small")),
                     str(size(args, "heap_live")))
    on, ons = str(size(args, "obj_n")), str(size(args, "obj_n_small"))
    tr, trs = str(size(args, "trees")), str(size(args, "trees_small"))
    ht = shutil.which("heaptrack") and not args.no_heaptrack
    hto = os.path.join(tmpdir, "heaptrack")

    def tb_run(group, key, label, mode, env, wargs):
        runs.append(Run(key, group, label, env + [tb, mode] + wargs, "refgc"))

    # heap churn
    for key, mode, label, env in MODES:
        tb_run("heap", key, label, mode, env,
               ["heap", hss if key == "d16" else hs, live, d])
    tb_run("heap", "libc", "glibc malloc/free, no tracing", "libc", [], ["heap", hs, live, d])
    if ht:
        runs.append(Run("ht-libc", "heap", "glibc malloc/free under heaptrack",
                        heaptrack_argv(tb, ["libc", "heap", hss, live, d], hto), "heaptrack"))
        runs.append(Run("ht-refgc", "heap", "refgc, no tracing, under heaptrack",
                        heaptrack_argv(tb, ["off", "heap", hss, live, d], hto), "heaptrack"))
    # object churn, free list of 80 (object_bench's default)
    for key, mode, label, env in MODES:
        if key == "d16":
            continue  # nothing is traced when objects come from the free list (see the notes)
        tb_run("obj80", key, label, mode, env, ["objects", on, "80", d])
    # object churn, no free list: every object from the heap
    for key, mode, label, env in MODES:
        tb_run("obj0", key, label, mode, env, ["objects", ons if key == "d16" else on, "0", d])
    tb_run("obj0", "libc", "glibc 16-byte malloc/free, no tracing", "libc", [],
           ["objects", on, "0", d])
    if ht:
        runs.append(Run("ht-libc", "obj0", "glibc 16-byte malloc/free under heaptrack",
                        heaptrack_argv(tb, ["libc", "objects", ons, "0", d], hto), "heaptrack"))
    # trees
    for key, mode, label, env in MODES:
        if key == "d16":
            continue
        tb_run("trees", key, label, mode, env, ["trees", tr, "4"])
    tb_run("trees", "libc", "glibc malloc/free, no tracing", "libc", [], ["trees", tr, "4"])
    tb_run("trees", "off-small", f"no tracing, max depth {trs}", "off", [], ["trees", trs, "4"])
    tb_run("trees", "d16", f"16 frames, REFGC_TRACE_UNWIND=dwarf, max depth {trs}", "trace:16",
           MODES[4][3], ["trees", trs, "4"])
    tb_run("trees", "libc-small", f"glibc malloc/free, no tracing, max depth {trs}", "libc", [],
           ["trees", trs, "4"])
    if ht:
        runs.append(Run("ht-libc", "trees", f"glibc malloc/free under heaptrack, max depth {trs}",
                        heaptrack_argv(tb, ["libc", "trees", trs, "4"], hto), "heaptrack"))
    # sampling close-up: SAMP_PAIRS adjacent (no tracing, sampling) pairs per round
    sm = MODES[3][1]
    for g, wargs in (("samp-heap", ["heap", str(size(args, "samp_heap")), live, d]),
                     ("samp-obj0", ["objects", str(size(args, "samp_obj")), "0", d]),
                     ("samp-trees", ["trees", str(size(args, "samp_trees")), "4"])):
        for i in range(SAMP_PAIRS):
            tb_run(g, f"off#{i}", "no tracing", "off", [], wargs)
            tb_run(g, f"s16#{i}", "sampling", sm, [], wargs)
    # tracemalloc
    if py:
        script = os.path.join(HERE, "trace_bench_tracemalloc.py")
        for key, label in PY_MODES:
            runs.append(Run(key, "py-heap", label, [py, "-I", script, key, "heap",
                                                    str(size(args, "py_heap")), live, d],
                            "cpython"))
            runs.append(Run(key, "py-obj", label, [py, "-I", script, key, "objects",
                                                   str(size(args, "py_obj")), d], "cpython"))
            runs.append(Run(key, "py-trees", label, [py, "-I", script, key, "trees",
                                                     str(size(args, "py_trees")), "4"],
                            "cpython"))
    # regression against --ref
    if reg:
        for which in ("ref", "now"):
            hb, ob = reg[which]["heap"], reg[which]["object"]
            lab = f"`{args.ref}`" if which == "ref" else "work tree"
            runs.append(Run(which, "reg-heap", lab, [hb, "churn", str(size(args, "reg_heap")),
                                                     "10000"], "refgc"))
            runs.append(Run(which, "reg-obj", lab, [ob, "churn", str(size(args, "reg_obj")),
                                                    "80"], "refgc"))
            runs.append(Run(which, "reg-trees", lab, [ob, "trees", str(size(args, "reg_trees")),
                                                      "0"], "refgc"))
    # memory: first round only
    n, pn = str(size(args, "mem_n")), str(size(args, "py_mem_n"))
    mem = [("t16-8", "trace:16", "16 frames, refgc_malloc 16–128 B, 8 stacks", ["8", d, "blocks"]),
           ("t16-16k", "trace:16", "16 frames, refgc_malloc 16–128 B, 16,384 stacks",
            ["16384", d, "blocks"]),
           ("t1-8", "trace:1", "1 frame, refgc_malloc 16–128 B, 8 stacks", ["8", d, "blocks"]),
           ("t16-obj", "trace:16", "16 frames, 16-byte objects, 8 stacks", ["8", d, "objects"]),
           ("s16-8", f"sample:16:{SAMPLE_BYTES}",
            "sampling 512 KiB, 16 frames, refgc_malloc 16–128 B, 8 stacks", ["8", d, "blocks"])]
    for key, mode, label, wargs in mem:
        runs.append(Run(key, "memory", label, [tb, mode, "memory", n] + wargs, "refgc"))
    if py:
        script = os.path.join(HERE, "trace_bench_tracemalloc.py")
        for key, mode, label, sites in (("tm16-8", "tm16", "tracemalloc, 16 frames, bytes "
                                         "16–128 B, 8 stacks", "8"),
                                        ("tm16-16k", "tm16", "tracemalloc, 16 frames, bytes "
                                         "16–128 B, 16,384 stacks", "16384"),
                                        ("tm1-8", "tm1", "tracemalloc, 1 frame, bytes 16–128 B, "
                                         "8 stacks", "8")):
            runs.append(Run(key, "memory", label, [py, "-I", script, mode, "memory", pn, sites,
                                                   d], "cpython"))
    return runs


GROUPS = ["heap", "obj80", "obj0", "trees", "samp-heap", "samp-obj0", "samp-trees", "py-heap",
          "py-obj", "py-trees", "reg-heap", "reg-obj", "reg-trees", "memory"]


def schedule_for(runs):
    def schedule(rnd):
        items = []
        for g in GROUPS:
            if g == "memory" and rnd > 0:
                continue
            grp = [r for r in runs if r.group == g]
            if not grp:
                continue
            if g.startswith("samp-"):
                # pairs stay adjacent; which of the two runs first alternates by round
                grp = [r for i in range(SAMP_PAIRS)
                       for r in sorted([x for x in grp if x.key.endswith(f"#{i}")],
                                       key=lambda x: x.key.startswith("off") == (rnd % 2 == 0))]
            else:
                grp = rotated(grp, rnd)
            for r in grp:
                items.append((f"{g}/{r.key}", r.argv, f"group={g} key={r.key} ", r))
        return "", items
    return schedule


# ------------------------------------------------------------------------------------------
# Profile (callgrind)
# ------------------------------------------------------------------------------------------

ANNOT_RE = re.compile(r"^\s*([\d,]+) \(\s*[\d.]+%\)\s+(\S.*?)(?: \[(.*)\])?\s*$")


def short_fn(name):
    fn = name.split(":", 1)[1] if ":" in name else name
    fn = re.sub(r"\.(isra|constprop|part|cold|lto_priv)\.\d+", "", fn)
    return fn


def callgrind_total(cmd, env):
    """(instructions, RESULT fields) of one run under callgrind, or (None, None)."""
    with tempfile.NamedTemporaryFile(prefix="cg.", delete=False) as f:
        path = f.name
    try:
        full = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={path}"] + cmd
        log("+ " + " ".join(full))
        r = subprocess.run(full, capture_output=True, text=True, env=env, timeout=900)
        m = re.search(r"Collected : (\d+)", r.stderr)
        res = benchlib.parse_result(r.stdout)
        if r.returncode != 0 or not m or not res:
            log(f"callgrind failed: {r.stderr[-500:]}")
            return None, None
        return int(m.group(1)), res
    finally:
        os.unlink(path)


def regression_instructions(args, reg, env):
    """{group: {"ref"/"now": instructions per op}}: the difference of two run lengths, so that
    start-up and set-up cancel out."""
    if args.no_profile or not reg or not shutil.which("valgrind"):
        return None
    out = {}
    for g, prog, sub, key, extra in (("reg-heap", "heap", "churn", "reg_prof_heap", ["10000"]),
                                     ("reg-obj", "object", "churn", "reg_prof_obj", ["80"]),
                                     ("reg-trees", "object", "trees", "reg_prof_trees", ["0"])):
        out[g] = {}
        small, big = size(args, key)
        for which in ("ref", "now"):
            pts = []
            for n in (small, big):
                ins, res = callgrind_total([reg[which][prog], sub, str(n)] + extra, env)
                if ins is None:
                    break
                pts.append((ins, res.get("steps", res.get("n"))))
            if len(pts) == 2 and pts[1][1] != pts[0][1]:
                out[g][which] = (pts[1][0] - pts[0][0]) / (pts[1][1] - pts[0][1])
    return out


def callgrind_profile(tb, args, tmpdir, env):
    """{workload: {mode key: (ops, total instructions, {function: instructions})}}."""
    if args.no_profile or not shutil.which("valgrind") or not shutil.which("callgrind_annotate"):
        return None
    work = {
        "heap": ["heap", str(size(args, "prof_heap")), str(size(args, "heap_live")), str(DEPTH)],
        "obj0": ["objects", str(size(args, "prof_obj")), "0", str(DEPTH)],
        "trees": ["trees", str(size(args, "prof_trees")), "4"],
    }
    out = {}
    for w, wargs in work.items():
        out[w] = {}
        for key, mode, _label, _env in MODES[:4]:
            f = os.path.join(tmpdir, f"cg.{w}.{key}")
            cmd = ["valgrind", "--tool=callgrind", "--collect-atstart=no",
                   "--toggle-collect=measured_*", f"--callgrind-out-file={f}", tb, mode] + wargs
            log("+ " + " ".join(cmd))
            r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
            res = benchlib.parse_result(r.stdout)
            if r.returncode != 0 or not res or not os.path.exists(f):
                log(f"profile {w}/{key} failed: {r.stderr[-500:]}")
                continue
            a = subprocess.run(["callgrind_annotate", "--inclusive=no", "--threshold=100", f],
                               capture_output=True, text=True)
            fns, total = {}, None
            for line in a.stdout.splitlines():
                m = ANNOT_RE.match(line)
                if not m:
                    continue
                n = int(m.group(1).replace(",", ""))
                if m.group(2) == "PROGRAM TOTALS":
                    total = n
                    continue
                fn = short_fn(m.group(2))
                fns[fn] = fns.get(fn, 0) + n
            if total:
                out[w][key] = (res["ops"], total, fns)
            os.unlink(f)
    return out


# ------------------------------------------------------------------------------------------
# Reporting
# ------------------------------------------------------------------------------------------

WORKLOADS = [  # group, heading, description
    ("heap", "heap churn",
     "heap_bench's churn: {live:,} blocks of 8–512 B live; each step frees a random one and "
     "allocates a new one (`refgc_free` + `refgc_malloc`, first and last byte written), in "
     "batches of 64 made {depth} calls down a chain of distinct functions, along 8 paths in "
     "turn (8 distinct stacks). {steps:,} steps ({small:,} for the DWARF and heaptrack rows). "
     "One op = one free + one malloc."),
    ("obj80", "object churn, free list on",
     "object_bench's churn: `refgc_new` + `refgc_decref` of a 16-byte object with a traverse "
     "hook and a free list of up to 80 instances (object_bench's default), one alive at a "
     "time, {depth} calls down, 8 stacks; {n:,} objects. One op = one object made and "
     "dropped."),
    ("obj0", "object churn, no free list",
     "The same with `freelist_max` 0, so that every object comes from the heap and goes back "
     "to it; {n:,} objects ({nsmall:,} for the DWARF and heaptrack rows). glibc row: a 16-byte "
     "`malloc` + `free` that writes the two words `refgc_new` writes."),
    ("trees", "binary trees",
     "object_bench's trees (binary-trees with GCBench's long-lived tree and array), max depth "
     "{trees}, run 4 calls down the chain; the tree recursion adds up to {trees1} frames, and "
     "the left and right recursive calls are two call sites, so the 16-frame tracebacks are "
     "many and distinct. Nodes are refgc objects {{header, left, right}}, no free list. The "
     "DWARF and heaptrack rows run at max depth {tsmall} (every node traced by `backtrace()` "
     "at depth {trees} takes minutes), with their own untraced baselines at that depth. One op "
     "= one node."),
]


def workload_table(out, res, runs, group, base_key="off", libc_key="libc"):
    out.append("| mode | runs | ns/op (median) | min–max | CPU ns/op | × no tracing | "
               "CPU × no tracing | frames in a probe traceback | tracer memory at end MB |")
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in [r for r in runs if r.group == group]:
        ns = res.col(group, r.key, "ns_per_op")
        ops = res.col(group, r.key, "ops")
        cpu = res.col(group, r.key, "cpu_seconds")
        cns = cpu * 1e9 / ops if cpu is not None and ops else None
        base = base_of(r.key, group)
        b = res.col(group, base, "ns_per_op")
        bops = res.col(group, base, "ops")
        bcpu = res.col(group, base, "cpu_seconds")
        bcns = bcpu * 1e9 / bops if bcpu is not None and bops else None
        pf = res.col(group, r.key, "probe_frames")
        tm = res.col(group, r.key, "trace_memory")
        label = r.label + ("" if base == "off" else f" (÷ {base_label(base)})")
        out.append(f"| {label} | {res.n(group, r.key)} | {fmt(ns, 1)} | "
                   f"{res.spread(group, r.key, 'ns_per_op', 1)} | {fmt(cns, 1)} | "
                   f"{fmt(ratio(ns, b), 2)} | {fmt(ratio(cns, bcns), 2)} | "
                   f"{fmt(pf, 0) if pf else '—'} | "
                   f"{fmt(tm / 1048576, 1) if tm else '—'} |")
    out.append("")


def base_of(key, group):
    """The untraced run a run is compared with."""
    if key in ("libc", "libc-small"):
        return "off" if key == "libc" else "off-small"
    if key == "ht-libc":
        return "libc-small" if group == "trees" else "libc"
    if key == "ht-refgc":
        return "off"
    if group == "trees" and key in ("d16",):
        return "off-small"
    if group == "trees" and key == "off-small":
        return "off-small"
    return "off"


def base_label(key):
    return {"libc": "glibc, no tracing", "libc-small": "glibc, no tracing, same depth",
            "off-small": "no tracing, same depth", "off": "no tracing"}[key]


def py_table(out, res, group):
    out.append("| mode | runs | ns/op (median) | min–max | CPU ns/op | × no tracemalloc | "
               "CPU × no tracemalloc |")
    out.append("|---|---:|---:|---:|---:|---:|---:|")
    b = res.col(group, "off", "ns_per_op")
    bc = cpu_ns(res, group, "off")
    for key, label in PY_MODES:
        ns = res.col(group, key, "ns_per_op")
        c = cpu_ns(res, group, key)
        out.append(f"| {label} | {res.n(group, key)} | {fmt(ns, 1)} | "
                   f"{res.spread(group, key, 'ns_per_op', 1)} | {fmt(c, 1)} | "
                   f"{fmt(ratio(ns, b), 2)} | {fmt(ratio(c, bc), 2)} |")
    out.append("")


def cpu_ns(res, group, key):
    cpu = res.col(group, key, "cpu_seconds")
    ops = res.col(group, key, "ops")
    return cpu * 1e9 / ops if cpu is not None and ops else None


def slow(res, group, key):
    return ratio(res.col(group, key, "ns_per_op"), res.col(group, base_of(key, group),
                                                            "ns_per_op"))


def slow_cpu(res, group, key):
    return ratio(cpu_ns(res, group, key), cpu_ns(res, group, base_of(key, group)))


def paired(res, group):
    """Per-pair ratios sampled ÷ untraced (wall and CPU), over every round."""
    wall, cpu = [], []
    for i in range(SAMP_PAIRS):
        a = res.by.get((group, f"off#{i}"), [])
        b = res.by.get((group, f"s16#{i}"), [])
        for x, y in zip(a, b):
            if x.get("ns_per_op") and y.get("ns_per_op"):
                wall.append(y["ns_per_op"] / x["ns_per_op"])
            if x.get("cpu_seconds") and y.get("cpu_seconds"):
                cpu.append(y["cpu_seconds"] / x["cpu_seconds"])
    return wall, cpu


def pooled(res, group, prefix, field):
    return [r[field] for i in range(SAMP_PAIRS) for r in res.by.get((group, f"{prefix}#{i}"), [])
            if isinstance(r.get(field), float)]


def samp_verdict(w, c, ins):
    """Met or missed when the paired wall and CPU ratios and the instruction ratio agree;
    otherwise say that they do not (5 % is within this machine's noise)."""
    vals = [v for v in (w, c, ins) if v is not None]
    if not vals:
        return "not measured"
    if all(v <= TARGET_SAMPLE for v in vals):
        return "**met**" + ("" if len(vals) == 3 else " (instructions not measured)")
    if all(v > TARGET_SAMPLE for v in vals):
        return f"**missed** ({w / TARGET_SAMPLE:.2f}× the limit)" if w else "**missed**"
    over = [n for n, v in (("wall", w), ("CPU", c), ("instructions", ins))
            if v is not None and v > TARGET_SAMPLE]
    return ("**unresolved**: over the limit on " + " and ".join(over) + " only (the "
            "machine's noise is larger than 5 %)")


def report(res, runs, args, failures, skipped, prof, py_label, fps, reg_ins=None):
    out = []
    q = " (--quick sizes)" if args.quick else ""
    have = {(r.group, r.key) for r in runs}
    fields = dict(live=size(args, "heap_live"), depth=DEPTH, steps=size(args, "heap_steps"),
                  small=size(args, "heap_steps_small"), n=size(args, "obj_n"),
                  nsmall=size(args, "obj_n_small"), trees=size(args, "trees"),
                  trees1=size(args, "trees") + 2, tsmall=size(args, "trees_small"))

    # ---- summary --------------------------------------------------------------------------
    out.append(f"### Slowdown against no tracing{q}")
    out.append("")
    out.append("Medians of wall time per operation, each divided by the untraced run of the "
               "same workload (refgc rows: the same binary with tracing off; tracemalloc: the "
               "same Python script without it; heaptrack: the same binary allocating with "
               "glibc malloc, without heaptrack). In brackets: the same ratio on CPU time "
               "(user + system of the benchmark process), which other work on the machine "
               "disturbs less. heaptrack's CPU figure leaves out its helper process.")
    out.append("")
    cols = [("heap", "heap churn", "py-heap"), ("obj80", "object churn, free list", None),
            ("obj0", "object churn, no free list", "py-obj"), ("trees", "binary trees",
                                                                "py-trees")]
    out.append("| tracing | " + " | ".join(c[1] for c in cols) + " |")
    out.append("|---|" + "---:|" * len(cols))
    rows = [("refgc, 1 frame", "t1", False), ("refgc, 16 frames", "t16", False),
            ("refgc, sampling 512 KiB (16 frames)", "s16", False),
            ("refgc, 16 frames, DWARF unwinding (`backtrace()`)", "d16", False),
            ("tracemalloc, 1 frame", "tm1", True), ("tracemalloc, 16 frames", "tm16", True),
            ("heaptrack (glibc malloc)", "ht-libc", False)]
    for label, key, is_py in rows:
        cells = []
        for g, _h, pg in cols:
            grp = pg if is_py else g
            if not grp or (grp, key) not in have:
                cells.append("—")
                continue
            s, c = slow(res, grp, key), slow_cpu(res, grp, key)
            cells.append(f"{fmt(s, 2)}× ({fmt(c, 2)}×)" if s is not None else "—")
        out.append(f"| {label} | " + " | ".join(cells) + " |")
    out.append("")
    nt = [(g, h, res.col(g, "off", "ns_per_op")) for g, h, _ in cols]
    out.append("Untraced refgc, ns/op: " + "; ".join(f"{h} {fmt(v, 1)}" for _g, h, v in nt)
               + ". " + (f"Python ({py_label}) untraced, ns/op: heap churn "
                         f"{fmt(res.col('py-heap', 'off', 'ns_per_op'), 1)}; object churn "
                         f"{fmt(res.col('py-obj', 'off', 'ns_per_op'), 1)}; binary trees "
                         f"{fmt(res.col('py-trees', 'off', 'ns_per_op'), 1)}."
                         if ("py-heap", "off") in have else ""))
    out.append("")

    # ---- per workload ---------------------------------------------------------------------
    for g, heading, desc in WORKLOADS:
        if not any(r.group == g for r in runs):
            continue
        out.append(f"### {heading}{q}")
        out.append("")
        out.append(desc.format(**fields))
        out.append("")
        workload_table(out, res, runs, g)
        if g == "heap" and ("heap", "ht-refgc") in have:
            a = res.col("heap", "ht-refgc", "heaptrack_allocations")
            out.append(f"heaptrack intercepts the C library's allocator only: under it, the "
                       f"untraced refgc binary made {fmt(a, 0)} allocations that heaptrack saw "
                       f"(the benchmark's own stdio and set-up), none of the workload's, so "
                       f"its row measures heaptrack's presence, not tracing; the glibc rows are "
                       f"the comparison.")
            out.append("")

    # ---- sampling close-up ----------------------------------------------------------------
    samp_groups = [("samp-heap", "heap churn", "heap"), ("samp-obj0", "object churn, no free "
                                                          "list", "obj0"),
                   ("samp-trees", "binary trees", "trees")]
    samp_ratio = {}
    if any(r.group.startswith("samp-") for r in runs):
        out.append(f"### Sampling at 512 KiB, close up{q}")
        out.append("")
        out.append(f"A 5 % target is below this machine's run-to-run noise, so sampling gets "
                   f"{SAMP_PAIRS} more pairs of runs per round: an untraced run and a sampled "
                   f"run of the same binary back to back (which one goes first alternates by "
                   f"round), {args.rounds * SAMP_PAIRS} pairs in all. Heap churn "
                   f"{size(args, 'samp_heap'):,} steps, object churn (no free list) "
                   f"{size(args, 'samp_obj'):,}, trees max depth {size(args, 'samp_trees')}. "
                   "The paired ratio (each sampled run ÷ its untraced partner, median over the "
                   "pairs) cancels the slow drifts of the machine's load; the instruction ratio "
                   "is callgrind's, from the profile below.")
        out.append("")
        out.append("| workload | pairs | untraced ns/op (median) | sampled ns/op (median) | "
                   "paired ratio, wall (median) | paired ratio, CPU (median) | ratio of the "
                   "fastest runs | instructions × no tracing |")
        out.append("|---|---:|---:|---:|---:|---:|---:|---:|")
        for g, h, pw in samp_groups:
            w, c = paired(res, g)
            a, b = pooled(res, g, "off", "ns_per_op"), pooled(res, g, "s16", "ns_per_op")
            ins = None
            if prof and pw in prof and "off" in prof[pw] and "s16" in prof[pw]:
                po, ps = prof[pw]["off"], prof[pw]["s16"]
                ins = ratio(ps[1] / ps[0], po[1] / po[0])
            samp_ratio[pw] = (med(w), med(c), ins)
            out.append(f"| {h} | {len(w)} | {fmt(med(a), 1)} | {fmt(med(b), 1)} | "
                       f"{fmt(med(w), 3)} | {fmt(med(c), 3)} | "
                       f"{fmt(ratio(min(b), min(a)) if a and b else None, 3)} | "
                       f"{fmt(ins, 3)} |")
        out.append("")

    # ---- tracemalloc ----------------------------------------------------------------------
    if any(r.group.startswith("py-") for r in runs):
        out.append(f"### tracemalloc: the same workloads in Python{q}")
        out.append("")
        out.append(f"`bench/trace_bench_tracemalloc.py` under {py_label}: heap churn "
                   f"({size(args, 'py_heap'):,} steps: `slots[k] = bytes(n)`, 8–512 B, "
                   f"{size(args, 'heap_live'):,} live), object churn "
                   f"({size(args, 'py_obj'):,} instances of a class with one slot, one alive "
                   f"at a time; CPython keeps no free list of instances), binary trees (max "
                   f"depth {size(args, 'py_trees')}), through the same kind of {DEPTH}-deep "
                   f"chain of functions. `tracemalloc.start(n)` is called before the warm-up.")
        out.append("")
        for g, h in (("py-heap", "heap churn"), ("py-obj", "object churn"),
                     ("py-trees", "binary trees")):
            out.append(f"**{h}**")
            out.append("")
            py_table(out, res, g)

    # ---- memory ---------------------------------------------------------------------------
    if any(r.group == "memory" for r in runs):
        out.append(f"### Tracer memory per traced block{q}")
        out.append("")
        out.append(f"{size(args, 'mem_n'):,} small blocks (tracemalloc: "
                   f"{size(args, 'py_mem_n'):,}) kept alive, made in batches of 16 from "
                   f"{DEPTH} calls down, along 8 or 16,384 paths in turn. refgc: "
                   "`refgc_trace_memory()` ÷ `refgc_trace_count()` (everything the tracer holds: "
                   "the per-page arrays of trace words, the tracebacks and their tables, the "
                   "per-thread cache, the memory-over-time ring); tracemalloc: "
                   "`tracemalloc.get_tracemalloc_memory()` ÷ the number of traces. First round "
                   "only (the figures do not vary).")
        out.append("")
        out.append("| what | live blocks traced | tracer memory MB | distinct tracebacks | "
                   "bytes per traced block | bytes per live block | frames in the last "
                   "block's traceback |")
        out.append("|---|---:|---:|---:|---:|---:|---:|")
        for r in [r for r in runs if r.group == "memory"]:
            tm = res.col("memory", r.key, "trace_memory")
            out.append(f"| {'refgc' if r.variant == 'refgc' else 'CPython'}: {r.label} | "
                       f"{fmt(res.col('memory', r.key, 'trace_count'), 0)} | "
                       f"{fmt(tm / 1048576 if tm else None, 2)} | "
                       f"{fmt(res.col('memory', r.key, 'tracebacks'), 0)} | "
                       f"{fmt(res.col('memory', r.key, 'bytes_per_traced'), 2)} | "
                       f"{fmt(res.col('memory', r.key, 'bytes_per_live'), 2)} | "
                       f"{fmt(res.col('memory', r.key, 'probe_frames'), 0)} |")
        out.append("")

    # ---- regression -----------------------------------------------------------------------
    if any(r.group.startswith("reg-") for r in runs):
        out.append(f"### No tracing: the work tree against `{args.ref}`{q}")
        out.append("")
        out.append(f"The untraced fast paths before and after tracing was added: "
                   f"`bench/heap_bench.c` and `bench/object_bench.c`, compiled as their drivers "
                   f"do (`cc {' '.join(CFLAGS)}`), linked once with the work tree's library "
                   f"and once with the library of `{args.ref}` ({fps.get('ref', '?')}), both "
                   f"built with CMake's Release flags (the work tree's now with "
                   f"`-fno-omit-frame-pointer`). Interleaved in the same rounds.")
        out.append("")
        out.append(f"| benchmark | runs | `{args.ref}` ns/op | min–max | work tree ns/op | "
                   f"min–max | work tree ÷ `{args.ref}` | CPU: work tree ÷ `{args.ref}` | "
                   f"instructions per op: `{args.ref}` → work tree (callgrind) |")
        out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for g, lab, field in (("reg-heap", f"heap_bench churn {size(args, 'reg_heap'):,} 10000",
                               None),
                              ("reg-obj", f"object_bench churn {size(args, 'reg_obj'):,} 80",
                               "ns_per_object"),
                              ("reg-trees", f"object_bench trees {size(args, 'reg_trees')} 0",
                               "ns_per_object")):
            def per_op(key, cpu=False):
                if field is None:  # heap_bench: seconds over steps
                    s = res.col(g, key, "cpu_seconds" if cpu else "seconds")
                    steps = res.col(g, key, "steps")
                    return s * 1e9 / steps if s is not None and steps else None
                if cpu:
                    s = res.col(g, key, "cpu_seconds")
                    n = res.col(g, key, "n")
                    return s * 1e9 / n if s is not None and n else None
                return res.col(g, key, field)
            def spread(key):  # min–max of the runs' ns/op
                if field is None:
                    v = [r["seconds"] * 1e9 / r["steps"] for r in res.by.get((g, key), [])
                         if isinstance(r.get("seconds"), float) and r.get("steps")]
                else:
                    v = res.vals(g, key, field)
                return f"{min(v):.2f}–{max(v):.2f}" if v else "—"
            a, b = per_op("ref"), per_op("now")
            ac, bc = per_op("ref", True), per_op("now", True)
            ri = (reg_ins or {}).get(g, {})
            ins = (f"{fmt(ri['ref'], 1)} → {fmt(ri['now'], 1)} (× {fmt(ratio(ri['now'], ri['ref']), 3)})"
                   if "ref" in ri and "now" in ri else "—")
            out.append(f"| {lab} | {res.n(g, 'now')} | {fmt(a, 2)} | {spread('ref')} | "
                       f"{fmt(b, 2)} | {spread('now')} | {fmt(ratio(b, a), 3)} | "
                       f"{fmt(ratio(bc, ac), 3)} | {ins} |")
        out.append("")
        out.append("Where the two ranges overlap, the ratio of the medians is within this "
                   "machine's run-to-run spread (some of these programs run at one of two speeds "
                   "from one process to the next, whichever library they are linked with); "
                   "the instruction counts are the steady measure.")
        out.append("")
        if reg_ins:
            out.append("Instructions per operation come from two run lengths under callgrind "
                       "(the difference, divided by the difference in operations, so that "
                       "start-up and set-up cancel): heap churn "
                       f"{' and '.join(f'{n:,}' for n in size(args, 'reg_prof_heap'))} steps, "
                       f"object churn {' and '.join(f'{n:,}' for n in size(args, 'reg_prof_obj'))}"
                       f", trees max depth "
                       f"{' and '.join(str(n) for n in size(args, 'reg_prof_trees'))}.")
            out.append("")

    # ---- targets --------------------------------------------------------------------------
    out.append("### Targets and verdicts")
    out.append("")
    out.append("Verdicts on wall time; the CPU-time ratio is shown beside it. For sampling, "
               "the verdict is on the close-up pairs where there are some (the median of "
               "the first table is shown beside them), and says *met* or *missed* only when "
               "the paired wall ratio, the paired CPU ratio and callgrind's instruction ratio "
               "all agree; the object churn with a free list has no close-up and is judged on "
               "the first table's median.")
    out.append("")
    out.append("| target | workload | measured (medians) | verdict | CPU-time ratio |")
    out.append("|---|---|---|---|---|")
    samp_close = {pw for _g, _h, pw in samp_groups if pw in samp_ratio}
    for key, limit, what in (("t16", TARGET_16, "≤ 2× slowdown with 16 frames"),
                             ("s16", TARGET_SAMPLE, "≤ 1.05× slowdown sampling at 512 KiB")):
        for g, h, _pg in cols:
            if (g, key) not in have or (key == "s16" and g in samp_close):
                continue
            s, c = slow(res, g, key), slow_cpu(res, g, key)
            out.append(f"| {what} | {h} | {fmt(s, 2)}× | {verdict(s, limit)} | {fmt(c, 2)}× |")
    for g, h, pw in samp_groups:
        if pw not in samp_ratio:
            continue
        w, c, ins = samp_ratio[pw]
        out.append(f"| ≤ 1.05× slowdown sampling at 512 KiB | {h} (close up, "
                   f"{len(paired(res, g)[0])} pairs) | {fmt(w, 3)}× ("
                   + (f"instructions {fmt(ins, 3)}×; " if ins is not None else "")
                   + f"first table {fmt(slow(res, pw, 's16'), 2)}×) | "
                   f"{samp_verdict(w, c, ins)} | {fmt(c, 3)}× |")
    for r in [r for r in runs if r.group == "memory" and r.variant == "refgc"
              and not r.key.startswith("s")]:
        b = res.col("memory", r.key, "bytes_per_traced")
        out.append(f"| ≤ 24 bytes per traced block | {r.label} | {fmt(b, 2)} B | "
                   f"{verdict(b, TARGET_BYTES)} | (not a time) |")
    out.append("")

    # ---- profile --------------------------------------------------------------------------
    if prof:
        out.append(f"### Where the time goes: instructions per operation{q}")
        out.append("")
        out.append("callgrind (`valgrind --tool=callgrind --collect-atstart=no "
                   "--toggle-collect='measured_*'`) counts the instructions of the timed part "
                   "only; counts repeat exactly from run to run, unlike times on this machine. "
                   f"Smaller runs: heap churn {size(args, 'prof_heap'):,} steps, object churn "
                   f"(no free list) {size(args, 'prof_obj'):,}, trees max depth "
                   f"{size(args, 'prof_trees')}. Self instructions per op of each function "
                   "(inlined code counts in its caller); functions under 1 instruction per op "
                   "in every mode are summed in \"other\". Instructions are not time (cache "
                   "misses are not counted): the ratios of the totals are a floor under the "
                   "time ratios above.")
        out.append("")
        for w, h in (("heap", "heap churn"), ("obj0", "object churn, no free list"),
                     ("trees", "binary trees")):
            data = prof.get(w) or {}
            keys = [k for k, *_ in MODES[:4] if k in data]
            if not keys:
                continue
            out.append(f"**{h}**")
            out.append("")
            per = {k: {fn: n / data[k][0] for fn, n in data[k][2].items()} for k in keys}
            fns = sorted({fn for k in keys for fn in per[k]},
                         key=lambda fn: -max(per[k].get(fn, 0) for k in keys))
            shown = [fn for fn in fns if max(per[k].get(fn, 0) for k in keys) >= 1.0]
            labels = {k: l for k, _m, l, _e in MODES}
            out.append("| function | " + " | ".join(labels[k] for k in keys) + " |")
            out.append("|---|" + "---:|" * len(keys))
            for fn in shown:
                out.append(f"| `{fn}` | " + " | ".join(fmt(per[k].get(fn), 1) if fn in per[k]
                                                     else "—" for k in keys) + " |")
            other = {k: sum(v for fn, v in per[k].items() if fn not in shown) for k in keys}
            out.append("| other | " + " | ".join(fmt(other[k], 1) for k in keys) + " |")
            tot = {k: data[k][1] / data[k][0] for k in keys}
            out.append("| **total** | " + " | ".join(f"**{fmt(tot[k], 1)}**" for k in keys)
                       + " |")
            if "off" in tot:
                out.append("| × no tracing | " + " | ".join(fmt(ratio(tot[k], tot["off"]), 2)
                                                           for k in keys) + " |")
            out.append("")

    # ---- notes ----------------------------------------------------------------------------
    notes = []
    m80, m0 = res.col("obj80", "t16", "trace_memory"), res.col("obj0", "t16", "trace_memory")
    if m80 is not None and m0 is not None:
        notes.append("**Free lists while tracing.** While every allocation is traced, objects "
                     "bypass their types' free lists, so that each object carries the trace of "
                     "its own creation and a released object leaves the traces: the free-list "
                     "rows do the same work as the no-free-list rows (tracer memory at the end "
                     f"{m80 / 1048576:.1f} MB, against {m0 / 1048576:.1f} MB without the free "
                     "list). While sampling, free lists stay on: an object reused from one "
                     "keeps the trace (if any) of its block's first allocation, as CPython's "
                     "free lists do with tracemalloc.")
    t1, t16 = res.col("trees", "t1", "ns_per_op"), res.col("trees", "t16", "ns_per_op")
    mt = res.col("trees", "t16", "trace_memory")
    if t1 and t16 and mt:
        notes.append(f"**Recursion makes many distinct stacks.** In binary trees every node's "
                     f"16-frame stack is a different path of left and right calls: the tracer "
                     f"ends with {mt / 1048576:.1f} MB of tracebacks, and 16 frames cost "
                     f"{t16 / t1:.1f}× what 1 frame does (heap churn, 8 stacks: "
                     f"{fmt(ratio(res.col('heap', 't16', 'ns_per_op'), res.col('heap', 't1', 'ns_per_op')), 1)}×). "
                     "The profile shows where: the per-thread traceback cache misses, so "
                     "stacks are looked up in the global table under its "
                     "mutex and stored (`malloc`); the gap between its instruction ratio and "
                     "the time ratio is cache misses in a table of that size.")
    d = slow(res, "heap", "d16")
    if d:
        notes.append(f"**Frame pointers against DWARF.** With `REFGC_TRACE_UNWIND=dwarf` each "
                     f"capture is a glibc `backtrace()` (libgcc's unwinder: a lookup of the "
                     f"return address's unwind table and a CFI interpretation for every frame): "
                     f"{d:.0f}× on heap churn, against {fmt(slow(res, 'heap', 't16'), 1)}× for "
                     f"the frame-pointer walk of the same 16 frames. What frame pointers cost "
                     f"the untraced library is in the regression table above (the library is "
                     f"now built with `-fno-omit-frame-pointer`).")
    if notes:
        out.append("### Notes")
        out.append("")
        for n_ in notes:
            out.append("- " + n_)
        out.append("")

    append_skipped_failures(out, skipped, failures)
    return "\n".join(out)


# ------------------------------------------------------------------------------------------
# main
# ------------------------------------------------------------------------------------------

def repro(args):
    return ("python3 bench/trace_bench.py --rounds " + str(args.rounds) +
            (" --quick" if args.quick else "") + (f" --ref {args.ref}" if args.ref else "") +
            (" --no-profile" if args.no_profile else "") +
            (" --no-heaptrack" if args.no_heaptrack else "") +
            (f" --python {args.python}" if args.python_given else ""))


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    benchlib.add_rounds_args(ap)
    ap.add_argument("--ref", help="also compare untraced heap_bench / object_bench runs with "
                                  "this commit's library (e.g. HEAD, the commit before tracing)")
    ap.add_argument("--python", help="interpreter for the tracemalloc runs (default: "
                                     "/usr/bin/python3, else python3 on PATH; 'none' to skip)")
    ap.add_argument("--no-profile", action="store_true", help="skip the callgrind profile")
    ap.add_argument("--no-heaptrack", action="store_true", help="skip the heaptrack rows")
    ap.add_argument("--out", help="also write the Markdown report to this file")
    ap.add_argument("--update-doc", nargs="?", const="", metavar="PATH",
                    help="replace the Tracing section of PATH (default: "
                         "REPO/docs/benchmarks.md), between its markers, with the report")
    ap.add_argument("--raw", help="append every RESULT line to this file")
    ap.add_argument("--repo", default=os.path.dirname(HERE), help="refgc checkout (default: ..)")
    ap.add_argument("--build-dir", help="where refgc is built (default REPO/build/trace-bench)")
    ap.add_argument("--lib", help="use this librefgc.a as is (no build)")
    ap.add_argument("--timeout", type=int, default=300, help="per-run timeout in seconds")
    args = benchlib.parse_args(ap)
    args.repo = os.path.abspath(args.repo)
    args.python_given = args.python is not None
    repo = args.repo
    build_dir = os.path.abspath(args.build_dir or os.path.join(repo, "build", "trace-bench"))
    skipped, fps = [], {}

    fps["now"] = source_fingerprint(repo)
    lib = build_refgc(repo, build_dir, args.lib, False)
    if not lib:
        log("refgc failed to build")
        return 1
    tmp = tempfile.TemporaryDirectory(prefix="trace_bench.")
    tb = compile_prog(os.path.join(HERE, "trace_bench.c"), os.path.join(tmp.name, "trace_bench"),
                      repo, lib, ["-fno-omit-frame-pointer"])
    if not tb:
        return 1

    reg = None
    if args.ref:
        src, sha = export_ref(repo, args.ref, build_dir)
        ref_lib = build_refgc(src, os.path.join(build_dir, "build-" + sha[:12]), None,
                              False) if src else None
        if ref_lib:
            fps["ref"] = source_fingerprint(src, sha)
            reg = {}
            for which, root, l in (("ref", src, ref_lib), ("now", repo, lib)):
                d = os.path.join(tmp.name, which)
                os.makedirs(d, exist_ok=True)
                hb = compile_prog(os.path.join(HERE, "heap_bench.c"),
                                  os.path.join(d, "heap_bench"), root, l, [], ["-DBENCH_REFGC"])
                ob = compile_prog(os.path.join(HERE, "object_bench.c"),
                                  os.path.join(d, "object_bench"), root, l, [],
                                  ["-DBENCH_REFGC"])
                if not hb or not ob:
                    reg = None
                    skipped.append(("regression", "heap_bench/object_bench failed to build"))
                    break
                reg[which] = {"heap": hb, "object": ob}
        else:
            skipped.append(("regression", f"the library of {args.ref} failed to build"))

    py = None
    if args.python != "none":
        cands = [args.python] if args.python else ["/usr/bin/python3", "python3"]
        found = benchlib.find_pythons(cands, cands)
        if found:
            py, py_label = found[0]
        else:
            skipped.append(("tracemalloc", "no working python3"))
    py_label = py_label if py else ""
    if not shutil.which("heaptrack") and not args.no_heaptrack:
        skipped.append(("heaptrack", "not installed (Debian package heaptrack)"))

    runs = plan(args, tb, py, tmp.name, reg)
    res = Results()
    env = bench_env(*ENV_DROP)

    def record(r, out, name):
        if r.variant == "heaptrack":
            m = re.search(r"allocations:\s+(\d+)", out.get("_stderr", ""))
            out["heaptrack_allocations"] = float(m.group(1)) if m else None
            out.pop("_stderr", None)
        res.add(r, out)
        if r.group == "memory":
            return (f"{name:24s} {out.get('bytes_per_traced', 0):9.2f} B/traced block, "
                    f"{out.get('tracebacks', 0):.0f} tracebacks")
        v = out.get("ns_per_op", out.get("ns_per_object"))
        if v is None and out.get("steps"):
            v = out["seconds"] * 1e9 / out["steps"]
        return f"{name:24s} {v:10.1f} ns/op"

    rr = run_rounds(args.rounds, schedule_for(runs), args.timeout, env, args.raw, record)
    prof = callgrind_profile(tb, args, tmp.name, env)
    reg_ins = regression_instructions(args, reg, env)
    fp_after = source_fingerprint(repo)
    tmp.cleanup()

    extra_tools = []
    v = tool_version(["heaptrack", "--version"]) if shutil.which("heaptrack") else None
    if v:
        extra_tools.append(f"- heaptrack: {v} (Debian heaptrack {benchlib.dpkg_version('heaptrack') or '?'})")
    v = tool_version(["valgrind", "--version"]) if shutil.which("valgrind") else None
    if v and prof:
        extra_tools.append(f"- callgrind: {v}")
    sizes = "--quick sizes" if args.quick else "full sizes"
    lib_line = (f"refgc: {fps['now']}, built with CMake's Release flags into "
                f"`{os.path.relpath(lib, repo) if lib.startswith(repo + os.sep) else lib}`")
    if fp_after != fps["now"]:
        lib_line += (f". **The sources changed during the run** (now: {fp_after}); the figures "
                     f"are for the library built at the start")
    text = (DOC_HEADING + "\n\n"
            "Issue \"Tracing\": what allocation tracing (`refgc/trace.h`) costs on the "
            "allocation-heavy benchmarks of the heap and objects issues, against tracemalloc "
            "and heaptrack for scale. Written by `bench/trace_bench.py` (the programs: "
            "`bench/trace_bench.c`, one binary for every mode, and "
            "`bench/trace_bench_tracemalloc.py`); do not edit by hand. Reproduce (prints the "
            "section; `--update-doc` also rewrites it here, between its markers):\n\n"
            f"    {repro(args)}\n\n"
            f"Rounds: {args.rounds} ({sizes}), interleaved: every run of a workload once per "
            "round, in an order rotated each round, each run a fresh process; figures are "
            "medians over the rounds, min–max where shown. `trace_bench.c` is compiled with "
            f"`cc {' '.join(CFLAGS)} -fno-omit-frame-pointer` (the frame-pointer unwinder needs "
            "the program's frame pointers too) and timed inside the process, after a warm-up "
            "of 5 % of the operations with tracing already on.\n\n"
            "### Machine\n\n" + machine_info([], {}, [(py, py_label)] if py else []) + "\n" +
            "\n".join(extra_tools) + ("\n" if extra_tools else "") +
            f"- date: {time.strftime('%Y-%m-%d %H:%M %Z')}\n- {lib_line}\n\n" +
            report(res, runs, args, rr.failures, skipped, prof, py_label, fps, reg_ins) +
            rr.load_line("the benchmark itself adds about 1; more than that means other work "
                         "shared the 2 cores"))
    write_outputs(text, args.out)
    if args.update_doc is not None:
        path = args.update_doc or os.path.join(repo, "docs", "benchmarks.md")
        replace_marked_section(path, DOC_HEADING, DOC_START, DOC_START_PREFIX, DOC_END, text,
                               "trace_bench")
        log(f"updated the trace_bench section of {path}")
    return 1 if rr.failures else 0


if __name__ == "__main__":
    sys.exit(main())
