#!/usr/bin/env python3
"""Check a .heapsnapshot file the way Chrome DevTools loads it (tests/cli/run.sh heapsnapshot).

usage: check_heapsnapshot.py FILE [--expect-root NAME]... [--expect-group NAME]...
                             [--expect-type TYPE=COUNT]... [--expect-allocation FUNCTION]...

What DevTools' HeapSnapshotLoader and HeapSnapshot need, checked here:
  - the text: the keys "snapshot", "nodes", "edges", "trace_function_infos", "trace_tree"
    (when trace_function_count > 0), "samples", "locations", "strings" appear in this order (the
    loader scans the text for them one after the other), and the whole file is valid JSON;
  - meta: node_fields, node_types, edge_fields, edge_types (and the trace, sample and location
    field lists) as V8 writes them;
  - nodes: node_count * 7 numbers; edges: edge_count * 3 numbers; every number of the number
    arrays an integer in [0, 2^32) (the loader parses them into Uint32Arrays, digit by digit);
  - node types and edge types in range, every string index in range, node ids unique, the sum
    of edge_count equal to the number of edges, every to_node a multiple of the node field
    count and inside the nodes array;
  - trace_function_infos: trace_function_count * 6 numbers, string indexes in range;
    trace_tree: nodes of 5 fields, unique ids, function indexes in range, children arrays of
    whole nodes; every node's trace_node_id is 0 or a trace tree id;
  - every node reachable from the root (node 0), so that DevTools gives each a distance;
  - retained sizes computed as DevTools does (dominator tree from node 0, ignoring weak edges
    and shortcut edges that do not start at the root): each at least the node's self size, the
    root's equal to the sum of all self sizes.
With expectations: the root has a shortcut edge named NAME (a declared root), an element edge to
a synthetic node NAME, COUNT object nodes named TYPE, a function FUNCTION among the allocation
stacks. Prints a summary; exit status 0 when everything holds, 1 otherwise.
"""
import json
import re
import sys

NODE_FIELDS = ["type", "name", "id", "self_size", "edge_count", "trace_node_id", "detachedness"]
EDGE_FIELDS = ["type", "name_or_index", "to_node"]
NODE_TYPES = ["hidden", "array", "string", "object", "code", "closure", "regexp", "number",
              "native", "synthetic", "concatenated string", "sliced string", "symbol", "bigint",
              "object shape"]
EDGE_TYPES = ["context", "element", "property", "internal", "hidden", "shortcut", "weak"]
TRACE_FUNCTION_INFO_FIELDS = ["function_id", "name", "script_name", "script_id", "line", "column"]
TRACE_NODE_FIELDS = ["id", "function_info_index", "count", "size", "children"]

errors = []


def error(msg):
    errors.append(msg)


def check_uints(name, arr):
    if not isinstance(arr, list):
        error(f"{name} is not an array")
        return
    for i, v in enumerate(arr):
        if not isinstance(v, int) or isinstance(v, bool) or v < 0 or v >= 2 ** 32:
            error(f"{name}[{i}] = {v!r} is not an unsigned 32-bit integer")
            return


def dominators(n, succ, root):
    """Cooper, Harvey and Kennedy's iterative algorithm over a reverse post-order."""
    order, seen = [], [False] * n
    stack = [(root, iter(succ[root]))]
    seen[root] = True
    while stack:
        v, it = stack[-1]
        for w in it:
            if not seen[w]:
                seen[w] = True
                stack.append((w, iter(succ[w])))
                break
        else:
            stack.pop()
            order.append(v)
    rpo = list(reversed(order))
    index = {v: i for i, v in enumerate(rpo)}
    pred = [[] for _ in range(n)]
    for v in rpo:
        for w in succ[v]:
            pred[w].append(v)
    idom = [None] * n
    idom[root] = root

    def intersect(a, b):
        while a != b:
            while index[a] > index[b]:
                a = idom[a]
            while index[b] > index[a]:
                b = idom[b]
        return a

    changed = True
    while changed:
        changed = False
        for v in rpo[1:]:
            new = None
            for p in pred[v]:
                if idom[p] is not None:
                    new = p if new is None else intersect(p, new)
            if new is not None and idom[v] != new:
                idom[v] = new
                changed = True
    return idom, rpo


def main(argv):
    args = argv[1:]
    if not args:
        print(__doc__)
        return 2
    path = args.pop(0)
    expect_roots, expect_groups, expect_types, expect_alloc = [], [], {}, []
    while args:
        opt = args.pop(0)
        val = args.pop(0) if args else None
        if val is None:
            print(f"{opt} needs a value")
            return 2
        if opt == "--expect-root":
            expect_roots.append(val)
        elif opt == "--expect-group":
            expect_groups.append(val)
        elif opt == "--expect-type":
            t, _, c = val.partition("=")
            expect_types[t] = int(c)
        elif opt == "--expect-allocation":
            expect_alloc.append(val)
        else:
            print(f"unknown option {opt}")
            return 2

    with open(path, "rb") as f:
        raw = f.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        print(f"{path}: not UTF-8: {e}")
        return 1
    try:
        snap = json.loads(text)
    except ValueError as e:
        print(f"{path}: not JSON: {e}")
        return 1

    meta = snap["snapshot"]["meta"]
    header = snap["snapshot"]
    keys = ['"snapshot"', '"nodes"', '"edges"']
    if header.get("trace_function_count"):
        keys += ['"trace_function_infos"', '"trace_tree"']
    if "sample_fields" in meta:
        keys.append('"samples"')
    if "location_fields" in meta:
        keys.append('"locations"')
    keys.append('"strings"')
    pos = 0
    for k in keys:
        p = text.find(k, pos)
        if p < 0:
            error(f"the loader would not find {k} after offset {pos}")
            break
        pos = p + len(k)

    if meta.get("node_fields") != NODE_FIELDS:
        error(f"node_fields {meta.get('node_fields')}")
    if meta.get("edge_fields") != EDGE_FIELDS:
        error(f"edge_fields {meta.get('edge_fields')}")
    if not meta.get("node_types") or meta["node_types"][0] != NODE_TYPES:
        error("node_types[0] is not V8's list")
    if not meta.get("edge_types") or meta["edge_types"][0] != EDGE_TYPES:
        error("edge_types[0] is not V8's list")
    if meta.get("trace_function_info_fields", TRACE_FUNCTION_INFO_FIELDS) != TRACE_FUNCTION_INFO_FIELDS:
        error("trace_function_info_fields")
    if meta.get("trace_node_fields", TRACE_NODE_FIELDS) != TRACE_NODE_FIELDS:
        error("trace_node_fields")

    nodes, edges, strings = snap.get("nodes"), snap.get("edges"), snap.get("strings")
    for name in ("nodes", "edges", "trace_function_infos", "samples", "locations"):
        if name in snap:
            check_uints(name, snap[name])
    if not isinstance(strings, list) or not all(isinstance(s, str) for s in strings):
        error("strings is not an array of strings")
        strings = []
    if errors:
        return report(path)

    nf, ef = len(NODE_FIELDS), len(EDGE_FIELDS)
    node_count, edge_count = header.get("node_count"), header.get("edge_count")
    if len(nodes) != node_count * nf:
        error(f"nodes has {len(nodes)} numbers, node_count {node_count} * {nf} = {node_count * nf}")
    if len(edges) != edge_count * ef:
        error(f"edges has {len(edges)} numbers, edge_count {edge_count} * {ef} = {edge_count * ef}")
    n = len(nodes) // nf
    if n == 0:
        error("no nodes (DevTools needs the root)")
        return report(path)
    ids, total_edges = set(), 0
    for i in range(n):
        t, name, nid, size, ec = nodes[i * nf:i * nf + 5]
        if t >= len(NODE_TYPES):
            error(f"node {i}: type {t} out of range")
        if name >= len(strings):
            error(f"node {i}: name {name} out of range")
        if nid in ids:
            error(f"node {i}: id {nid} is not unique")
        ids.add(nid)
        total_edges += ec
    if total_edges * ef != len(edges):
        error(f"the nodes' edge_count add up to {total_edges}, the edges array has {len(edges) // ef}")
    if errors:
        return report(path)

    string_edge_types = {EDGE_TYPES.index(t) for t in ("context", "property", "internal", "shortcut", "weak")}
    succ = [[] for _ in range(n)]  # for the dominator tree, as DevTools filters them
    out_edges = [[] for _ in range(n)]
    e = 0
    for i in range(n):
        for _ in range(nodes[i * nf + 4]):
            t, ni, to = edges[e * ef:e * ef + 3]
            e += 1
            if t >= len(EDGE_TYPES):
                error(f"edge {e - 1}: type {t} out of range")
                continue
            if t in string_edge_types and ni >= len(strings):
                error(f"edge {e - 1}: name {ni} out of range")
            if to % nf != 0 or to >= len(nodes):
                error(f"edge {e - 1}: to_node {to} is not a node start index")
                continue
            out_edges[i].append((EDGE_TYPES[t], strings[ni] if t in string_edge_types else ni, to // nf))
            if EDGE_TYPES[t] == "weak" or (EDGE_TYPES[t] == "shortcut" and i != 0):
                continue
            succ[i].append(to // nf)
    if errors:
        return report(path)

    # allocation stacks
    fcount = header.get("trace_function_count", 0)
    infos = snap.get("trace_function_infos", [])
    tree_ids = set()
    alloc_names = set()
    if fcount:
        if len(infos) != fcount * 6:
            error(f"trace_function_infos has {len(infos)} numbers, not {fcount} * 6")
        for k in range(len(infos) // 6):
            _, name, script, _, _, _ = infos[k * 6:k * 6 + 6]
            if name >= len(strings) or script >= len(strings):
                error(f"trace function {k}: a string index out of range")
            else:
                alloc_names.add(strings[name])
        tree = snap.get("trace_tree")
        stack = [tree]
        while stack:
            arr = stack.pop()
            if not isinstance(arr, list) or len(arr) % 5:
                error("trace_tree: an array of children is not made of 5-field nodes")
                break
            for k in range(0, len(arr), 5):
                tid, fi, cnt, size, children = arr[k:k + 5]
                if not all(isinstance(x, int) and x >= 0 for x in (tid, fi, cnt, size)):
                    error(f"trace_tree node {tid}: fields are not unsigned integers")
                if tid in tree_ids:
                    error(f"trace_tree: id {tid} is not unique")
                tree_ids.add(tid)
                if fi >= fcount:
                    error(f"trace_tree node {tid}: function info {fi} out of range")
                stack.append(children)
    for i in range(n):
        tn = nodes[i * nf + 5]
        if tn and tn not in tree_ids:
            error(f"node {i}: trace_node_id {tn} is not in the trace tree")

    # reachability and retained sizes, as DevTools computes them
    idom, rpo = dominators(n, succ, 0)
    unreachable = [i for i in range(n) if idom[i] is None]
    if unreachable:
        error(f"{len(unreachable)} nodes are not reachable from the root, e.g. node {unreachable[0]}")
        return report(path)
    retained = [nodes[i * nf + 3] for i in range(n)]
    for v in reversed(rpo[1:]):
        retained[idom[v]] += retained[v]
    total_self = sum(nodes[i * nf + 3] for i in range(n))
    if retained[0] != total_self:
        error(f"the root retains {retained[0]}, the self sizes add up to {total_self}")

    # expectations
    root_edges = out_edges[0]
    shortcut_names = {name: to for (t, name, to) in root_edges if t == "shortcut"}
    groups = {strings[nodes[to * nf + 1]]: to for (t, _, to) in root_edges if t == "element"}
    for r in expect_roots:
        if r not in shortcut_names:
            error(f"no declared root '{r}' (the root's shortcut edges: {sorted(shortcut_names)})")
    for g in expect_groups:
        if g not in groups:
            error(f"no group '{g}' under the root (its element edges: {sorted(groups)})")
    counts = {}
    for i in range(n):
        if NODE_TYPES[nodes[i * nf]] == "object":
            nm = strings[nodes[i * nf + 1]]
            counts[nm] = counts.get(nm, 0) + 1
    for t, c in expect_types.items():
        if counts.get(t, 0) != c:
            error(f"{counts.get(t, 0)} objects named {t}, not {c}")
    for fn in expect_alloc:
        if fn not in alloc_names:
            error(f"no allocation stack frame '{fn}' (have {sorted(alloc_names)[:20]})")

    print(f"{path}: {n} nodes, {len(edges) // ef} edges, {len(strings)} strings, "
          f"{fcount} trace functions, {len(tree_ids)} trace tree nodes")
    print(f"objects by name: {dict(sorted(counts.items()))}")
    for name, to in sorted(shortcut_names.items()):
        print(f"declared root '{name}': retained {retained[to]} bytes")
    for name, to in sorted(groups.items()):
        print(f"group '{name}': retained {retained[to]} bytes")
    return report(path)


def report(path):
    if errors:
        for e in errors[:50]:
            print(f"{path}: {e}")
        if len(errors) > 50:
            print(f"{path}: ... {len(errors) - 50} more")
        return 1
    print(f"{path}: loads as DevTools loads it")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
