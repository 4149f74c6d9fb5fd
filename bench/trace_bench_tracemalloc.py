#!/usr/bin/env python3
"""trace_bench's workloads in Python, under tracemalloc: the scale for refgc's tracing cost.

    python3 bench/trace_bench_tracemalloc.py MODE WORKLOAD ARGS...

MODE: off (tracemalloc not started), tm1 / tm16 (tracemalloc.start(1) / start(16), before the
warm-up, so that the timed part runs with tracing on and its tables warm). Prints one
"RESULT ..." line, with the fields bench/trace_bench.c prints.

Every allocation is made DEPTH calls below the workload's loop, through a chain of 20 distinct
functions (level0 .. level19); each level calls the next from one of two lines picked by one
bit of a path number (the innermost levels read the lowest bits), as in trace_bench.c, so
tracemalloc's tracebacks (file, line) are as deep and as varied as refgc's.

  heap STEPS LIVE DEPTH      LIVE (10,000) bytes objects of 8..512 bytes alive; each step
                             replaces a random one with a new `bytes(n)` (the old one is freed
                             when its slot is overwritten). Batches of 64 along one of 8 paths.
                             The random slots and sizes are drawn beforehand (65,536 of each,
                             reused in turn) so that no random number is made in the loop.
  objects N DEPTH            create and drop N instances of a class with __slots__ = ("field",)
                             (one GC-tracked allocation each; CPython keeps no free list of
                             instances), one alive at a time, in batches of 64 along 8 paths.
  trees MAXDEPTH DEPTH       binary-trees as in trace_bench.c (stretch tree, long-lived tree,
                             a list of 500,000 floats, short-lived trees of depth 4..MAXDEPTH)
                             with nodes of a class with __slots__ = ("left", "right").
  memory N SITES DEPTH       N bytes objects of 16..128 bytes kept alive, made in batches of 16
                             along paths 0 .. SITES-1 in turn; reports
                             tracemalloc.get_tracemalloc_memory() and the number of traces.
Standard library only.
"""

import platform
import random
import sys
import time
import tracemalloc

CHAIN_MAX = 20


def make_chain():
    """level0 .. level19 and `descend`, compiled from generated source so that every level is
    its own code object with its own lines."""
    src = []
    for i in range(CHAIN_MAX):
        nxt = f"level{i + 1}(c)" if i + 1 < CHAIN_MAX else "c.leaf(c)"
        bit = CHAIN_MAX - 1 - i
        src.append(f"def level{i}(c):\n"
                   f"    if (c.path >> {bit}) & 1:\n"
                   f"        {nxt}\n"
                   f"    else:\n"
                   f"        {nxt}\n")
    src.append("LEVELS = [" + ", ".join(f"level{i}" for i in range(CHAIN_MAX)) + "]\n")
    src.append("def descend(c, depth):\n"
               "    if depth <= 0:\n"
               "        c.leaf(c)\n"
               "    else:\n"
               f"        LEVELS[{CHAIN_MAX} - depth](c)\n")
    ns = {}
    exec(compile("\n".join(src), "trace_bench_chain.py", "exec"), ns)
    return ns["descend"]


descend = make_chain()


class Ctx:
    pass


class Small:
    __slots__ = ("field",)

    def __init__(self):
        self.field = None


class Node:
    __slots__ = ("left", "right")

    def __init__(self, left, right):
        self.left = left
        self.right = right


def frames_of(mode):
    if mode == "off":
        return 0
    if mode.startswith("tm") and mode[2:].isdigit() and 1 <= int(mode[2:]) <= 64:
        return int(mode[2:])
    raise SystemExit(f"bad mode {mode}: off, tm1, tm16 (tmN: N frames)")


def start(mode):
    n = frames_of(mode)
    if n:
        tracemalloc.start(n)
    return n


def tm_fields(nframes):
    if not nframes:
        return " trace_count=0 trace_memory=0"
    return (f" trace_count={len(tracemalloc._get_traces())} "
            f"trace_memory={tracemalloc.get_tracemalloc_memory()}")


def report(mode, nframes, bench, ops, secs, cpu, extra):
    print(f"RESULT mode={mode} unwind={'python' if nframes else 'none'} bench={bench} "
          f"ops={ops} seconds={secs:.5f} cpu_seconds={cpu:.5f} ns_per_op={secs * 1e9 / ops:.3f} "
          f"python={platform.python_version()}{extra}")


# ------------------------------------------------------------------------------------------
# heap
# ------------------------------------------------------------------------------------------

BATCH = 64
PATHS = 8
TABLE = 65536


def heap_leaf(c):
    slots, ks, ns = c.slots, c.ks, c.ns
    j = c.j
    n = BATCH if c.todo >= BATCH else c.todo
    for _ in range(n):
        slots[ks[j]] = bytes(ns[j])
        j = (j + 1) & (TABLE - 1)
    c.j = j
    c.todo -= n


def heap_fill_leaf(c):
    rnd = random.Random(1)
    for i in range(len(c.slots)):
        c.slots[i] = bytes(rnd.randint(8, 512))


def heap_run(c, steps, depth):
    c.todo = steps
    b = 0
    while c.todo > 0:
        c.path = b % PATHS
        descend(c, depth)
        b += 1


def bench_heap(mode, steps, live, depth):
    c = Ctx()
    rnd = random.Random(0x5EED0001)
    c.slots = [None] * live
    c.ks = [rnd.randrange(live) for _ in range(TABLE)]
    c.ns = [rnd.randint(8, 512) for _ in range(TABLE)]
    c.j = 0
    c.path = 0
    nframes = start(mode)
    c.leaf = heap_fill_leaf
    descend(c, depth)
    c.leaf = heap_leaf
    heap_run(c, steps // 20, depth)
    c0 = time.process_time()
    t0 = time.perf_counter()
    heap_run(c, steps, depth)
    t1 = time.perf_counter()
    c1 = time.process_time()
    extra = f" live={live} depth={depth}" + tm_fields(nframes)
    report(mode, nframes, "heap", steps, t1 - t0, c1 - c0, extra)


# ------------------------------------------------------------------------------------------
# objects
# ------------------------------------------------------------------------------------------

def obj_leaf(c):
    n = BATCH if c.todo >= BATCH else c.todo
    for _ in range(n):
        o = Small()
    c.todo -= n


def obj_run(c, n, depth):
    c.todo = n
    b = 0
    while c.todo > 0:
        c.path = b % PATHS
        descend(c, depth)
        b += 1


def bench_objects(mode, n, depth):
    c = Ctx()
    c.leaf = obj_leaf
    c.path = 0
    nframes = start(mode)
    obj_run(c, n // 20, depth)
    c0 = time.process_time()
    t0 = time.perf_counter()
    obj_run(c, n, depth)
    t1 = time.perf_counter()
    c1 = time.process_time()
    report(mode, nframes, "objects", n, t1 - t0, c1 - c0,
           f" depth={depth}" + tm_fields(nframes))


# ------------------------------------------------------------------------------------------
# trees
# ------------------------------------------------------------------------------------------

MIN_DEPTH = 4
ARRAY_LEN = 500000


def tree_new(depth):
    if depth > 0:
        return Node(tree_new(depth - 1), tree_new(depth - 1))
    return Node(None, None)


def tree_check(n):
    if n.left is None:
        return 1
    return 1 + tree_check(n.left) + tree_check(n.right)


def trees_leaf(c):
    max_depth = c.max_depth
    check = nodes = 0
    stretch = tree_new(max_depth + 1)
    check += tree_check(stretch)
    del stretch
    long_lived = tree_new(max_depth)
    array = [0.0] * ARRAY_LEN
    for i in range(ARRAY_LEN // 2):
        array[i] = 1.0 / (i + 1)
    for d in range(MIN_DEPTH, max_depth + 1, 2):
        iters = 1 << (max_depth - d + MIN_DEPTH)
        for _ in range(iters):
            t = tree_new(d)
            check += tree_check(t)
            del t
        nodes += iters * ((2 << d) - 1)
    check += tree_check(long_lived)
    if array[1000] != 1.0 / 1001.0:
        raise SystemExit("trees: the long-lived array was overwritten")
    del long_lived, array
    nodes += (2 << (max_depth + 1)) - 1 + (2 << max_depth) - 1
    c.check, c.nodes = check, nodes


def bench_trees(mode, max_depth, depth):
    c = Ctx()
    c.leaf = trees_leaf
    c.path = 0
    c.max_depth = max_depth
    nframes = start(mode)
    c0 = time.process_time()
    t0 = time.perf_counter()
    descend(c, depth)
    t1 = time.perf_counter()
    c1 = time.process_time()
    if c.check != c.nodes:
        raise SystemExit("trees: node count mismatch")
    report(mode, nframes, "trees", c.nodes, t1 - t0, c1 - c0,
           f" max_depth={max_depth} depth={depth}" + tm_fields(nframes))


# ------------------------------------------------------------------------------------------
# memory
# ------------------------------------------------------------------------------------------

MEM_BATCH = 16


def mem_leaf(c):
    blocks, sizes = c.blocks, c.sizes
    i = c.next
    end = min(i + MEM_BATCH, c.n)
    while i < end:
        blocks[i] = bytes(sizes[i & (TABLE - 1)])
        i += 1
    c.next = i


def bench_memory(mode, n, sites, depth):
    nframes = frames_of(mode)
    if not nframes:
        raise SystemExit("memory: needs tm1 or tm16")
    c = Ctx()
    rnd = random.Random(42)
    c.sizes = [rnd.randint(16, 128) for _ in range(TABLE)]
    c.blocks = [None] * n
    c.n, c.next = n, 0
    c.leaf = mem_leaf
    c.path = 0
    tracemalloc.start(nframes)
    mem0 = tracemalloc.get_tracemalloc_memory()
    t0 = time.perf_counter()
    b = 0
    while c.next < n:
        c.path = b % sites
        descend(c, depth)
        b += 1
    t1 = time.perf_counter()
    mem = tracemalloc.get_tracemalloc_memory()
    traced, _peak = tracemalloc.get_traced_memory()
    traces = tracemalloc._get_traces()  # what take_snapshot() reads, without its objects
    count = len(traces)
    tracebacks = len({t[2] for t in traces})
    probe = tracemalloc.get_object_traceback(c.blocks[n - 1])
    print(f"RESULT mode={mode} unwind=python bench=memory kind=bytes n={n} sites={sites} "
          f"depth={depth} trace_count={count} trace_memory={mem} trace_memory_at_start={mem0} "
          f"tracebacks={tracebacks} bytes_per_traced={mem / count:.3f} "
          f"bytes_per_live={mem / n:.3f} traced_per_block={traced / n:.3f} "
          f"probe_frames={len(probe) if probe else 0} seconds={t1 - t0:.4f} "
          f"python={platform.python_version()}")


def main():
    argv = sys.argv[1:]
    if len(argv) < 2:
        raise SystemExit(__doc__)
    mode, cmd, rest = argv[0], argv[1], [int(a) for a in argv[2:]]
    if cmd == "heap":
        steps, live, depth = (rest + [1000000, 10000, 16][len(rest):])[:3]
        bench_heap(mode, steps, live, depth)
    elif cmd == "objects":
        n, depth = (rest + [1000000, 16][len(rest):])[:2]
        bench_objects(mode, n, depth)
    elif cmd == "trees":
        max_depth, depth = (rest + [12, 4][len(rest):])[:2]
        bench_trees(mode, max_depth, depth)
    elif cmd == "memory":
        n, sites, depth = (rest + [1000000, 8, 16][len(rest):])[:3]
        bench_memory(mode, n, sites, depth)
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
