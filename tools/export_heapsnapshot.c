/* refgc export --format heapsnapshot — Chrome DevTools' .heapsnapshot (the V8 heap snapshot
 * JSON: DevTools > Memory > Load), made from a snapshot's object graph.
 *
 * Layout (what DevTools' HeapSnapshotLoader expects, keys in this order, because it scans the
 * text for them one after the other):
 *   "snapshot": meta (field names and types) and node_count, edge_count, trace_function_count
 *   "nodes":   7 numbers per node: type, name (string index), id, self_size, edge_count,
 *              trace_node_id, detachedness
 *   "edges":   3 numbers per edge: type, name_or_index (a string index for property and
 *              shortcut edges, a number for element edges), to_node (the target's START
 *              index in "nodes": node ordinal * 7); a node's edges follow the previous node's
 *   "trace_function_infos", "trace_tree": the allocation stacks (DevTools' "Allocation stack"
 *              of an object and the Allocation view): one function info per frame and a tree
 *              of stacks, outermost frame at the top; each object's trace_node_id is the tree
 *              node where its stack ends
 *   "samples", "locations": empty
 *   "strings": the string table
 * The loader parses the number arrays as unsigned 32-bit integers, so only non-negative
 * integers appear there (sizes are clamped to 2^32-1).
 *
 * Nodes: node 0 is the synthetic root "(refgc roots)", which DevTools takes as the root of the
 * graph for distances, retainers and the dominator tree (retained sizes). It has a "shortcut"
 * edge, named by the root's name, to each object declared with refgc_root_add, and "element"
 * edges to two synthetic groups: "(held by the program)", whose elements are the objects held
 * from outside the graph (REFGC_NODE_ROOT: more references than the graph explains), and, when
 * some objects are reachable from neither (garbage the collector has not freed yet),
 * "(unreachable)". Every object is a node of type "object" named by its type, with self_size
 * its block size, and a "property" edge per reference named by the field: "+16" (byte offset
 * in the holder) or "[2]" (position in traverse order when the offset is unknown). Ids are odd
 * numbers: 1, 3, 5 for the synthetic nodes, 7 + 2 * i for object i.
 */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "export.h"

#define NODE_FIELDS 7
#define T_SYNTHETIC 9
#define T_OBJECT 3
#define E_ELEMENT 1
#define E_PROPERTY 2
#define E_SHORTCUT 5

/* ---- the allocation trace tree ------------------------------------------------------------ */

typedef struct tnode_s {
  uint32_t fi;          /* function info index */
  uint32_t first_child; /* tnode index + 1, 0: none */
  uint32_t next;        /* next sibling, index + 1 */
  uint64_t count, size;
} tnode_t;

typedef struct ttree_s {
  tnode_t *nodes;
  size_t n, cap;
  /* (parent, frame) -> child, open addressing over keys parent<<32 | frame */
  uint64_t *keys;
  uint32_t *vals; /* tnode index + 1 */
  size_t nslots;
  /* function infos: one per snapshot frame used, info 0 is "(root)" */
  uint32_t *frame_fi;  /* snapshot frame index -> fi + 1 */
  size_t nframe_fi;
  uint32_t *fi_frame;  /* fi -> snapshot frame index (fi 0: unused) */
  size_t nfi, fi_cap;
} ttree_t;

static uint64_t mix(uint64_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdull;
  k ^= k >> 33;
  return k;
}

static uint32_t tnode_new(ttree_t *t, uint32_t fi) {
  if (t->n == t->cap) {
    t->cap = t->cap ? t->cap * 2 : 256;
    t->nodes = cli_xrealloc(t->nodes, t->cap * sizeof *t->nodes);
  }
  memset(&t->nodes[t->n], 0, sizeof t->nodes[t->n]);
  t->nodes[t->n].fi = fi;
  return (uint32_t)t->n++;
}

static void slots_grow(ttree_t *t) {
  size_t ns = t->nslots ? t->nslots * 2 : 1024;
  uint64_t *keys = cli_xcalloc(ns, sizeof *keys);
  uint32_t *vals = cli_xcalloc(ns, sizeof *vals);
  for (size_t i = 0; i < t->nslots; i++) {
    if (!t->vals[i]) continue;
    size_t h = (size_t)mix(t->keys[i]) & (ns - 1);
    while (vals[h]) h = (h + 1) & (ns - 1);
    keys[h] = t->keys[i];
    vals[h] = t->vals[i];
  }
  free(t->keys);
  free(t->vals);
  t->keys = keys;
  t->vals = vals;
  t->nslots = ns;
}

static uint32_t frame_fi(ttree_t *t, uint32_t frame) {
  if (frame >= t->nframe_fi) {
    size_t nn = t->nframe_fi ? t->nframe_fi : 64;
    while (nn <= frame) nn *= 2;
    t->frame_fi = cli_xrealloc(t->frame_fi, nn * sizeof *t->frame_fi);
    memset(t->frame_fi + t->nframe_fi, 0, (nn - t->nframe_fi) * sizeof *t->frame_fi);
    t->nframe_fi = nn;
  }
  if (!t->frame_fi[frame]) {
    if (t->nfi == t->fi_cap) {
      t->fi_cap = t->fi_cap ? t->fi_cap * 2 : 64;
      t->fi_frame = cli_xrealloc(t->fi_frame, t->fi_cap * sizeof *t->fi_frame);
    }
    t->fi_frame[t->nfi] = frame;
    t->frame_fi[frame] = (uint32_t)++t->nfi; /* fi = nfi - 1, stored + 1 */
  }
  return t->frame_fi[frame] - 1;
}

static uint32_t tchild(ttree_t *t, uint32_t parent, uint32_t frame) {
  uint32_t fi = frame_fi(t, frame);
  if ((t->n + 1) * 2 > t->nslots) slots_grow(t);
  uint64_t key = (uint64_t)parent << 32 | fi;
  size_t h = (size_t)mix(key) & (t->nslots - 1);
  while (t->vals[h]) {
    if (t->keys[h] == key) return t->vals[h] - 1;
    h = (h + 1) & (t->nslots - 1);
  }
  uint32_t c = tnode_new(t, fi);
  t->keys[h] = key;
  t->vals[h] = c + 1;
  t->nodes[c].next = t->nodes[parent].first_child;
  t->nodes[parent].first_child = c + 1;
  return c;
}

static void write_tnode(FILE *f, const ttree_t *t, uint32_t i) {
  const tnode_t *n = &t->nodes[i];
  fprintf(f, "%" PRIu32 ",%" PRIu32 ",%" PRIu64 ",%" PRIu64 ",[", i + 1, n->fi, n->count,
          n->size > UINT32_MAX ? (uint64_t)UINT32_MAX : n->size);
  int first = 1;
  for (uint32_t c = n->first_child; c; c = t->nodes[c - 1].next) {
    if (!first) fputc(',', f);
    first = 0;
    write_tnode(f, t, c - 1);
  }
  fputc(']', f);
}

/* ---- the export --------------------------------------------------------------------------- */

static uint64_t clamp32(uint64_t v) { return v > UINT32_MAX ? UINT32_MAX : v; }

/* Node i's edges: [*begin, *end) within the edge array (clamped to it). */
static void edge_range(const refgc_node_t *nodes, size_t nn, size_t ne, size_t i, size_t *begin,
                       size_t *end) {
  size_t b = nodes[i].first_edge, e = i + 1 < nn ? nodes[i + 1].first_edge : ne;
  if (e > ne) e = ne;
  if (b > e) b = e;
  *begin = b;
  *end = e;
}

int export_heapsnapshot(FILE *f, refgc_snapshot_t *s, const char *path, const export_opts_t *o) {
  (void)o;
  refgc_snapshot_info_t in;
  if (cli_info(s, path, &in) < 0) return -1;
  size_t nn = 0, ne = 0;
  const refgc_edge_t *edges = NULL;
  const refgc_node_t *nodes = refgc_snapshot_graph(s, &nn, &edges, &ne);
  if (!nodes || nn == 0) {
    if (in.objects > 0) {
      cli_error("%s has no object graph: take the snapshot with REFGC_SNAPSHOT_GRAPH "
                "(refgc_snapshot_take) or REFGC_TRACE_FILE", path);
      return -1;
    }
    cli_note("%s has no objects: the heap snapshot has only its root", path);
    nn = 0;
    ne = 0;
  }

  /* reachability from the roots, to find what only an "(unreachable)" group can hold */
  unsigned char *reached = cli_xcalloc(nn ? nn : 1, 1);
  uint32_t *queue = cli_xcalloc(nn ? nn : 1, sizeof *queue);
  size_t qh = 0, qt = 0, ndeclared = 0, nheld = 0, nunreached = 0;
  for (size_t i = 0; i < nn; i++) {
    if (nodes[i].flags & REFGC_NODE_DECLARED)
      ndeclared++;
    else if (nodes[i].flags & REFGC_NODE_ROOT)
      nheld++;
    if (nodes[i].flags & (REFGC_NODE_DECLARED | REFGC_NODE_ROOT)) {
      reached[i] = 1;
      queue[qt++] = (uint32_t)i;
    }
  }
  while (qh < qt) {
    uint32_t i = queue[qh++];
    size_t begin, end;
    edge_range(nodes, nn, ne, i, &begin, &end);
    for (size_t e = begin; e < end; e++) {
      uint32_t to = edges[e].to;
      if (to < nn && !reached[to]) {
        reached[to] = 1;
        queue[qt++] = to;
      }
    }
  }
  for (size_t i = 0; i < nn; i++)
    if (!reached[i]) nunreached++;
  free(queue);

  size_t base = nunreached ? 3 : 2; /* ordinal of the first object */
  size_t total_nodes = base + nn;
  size_t nobj_edges = 0;
  for (size_t i = 0; i < nn; i++) {
    size_t begin, end;
    edge_range(nodes, nn, ne, i, &begin, &end);
    nobj_edges += end - begin;
  }
  size_t total_edges = ndeclared + 1 + (nunreached ? 1 : 0) + nheld + nunreached + nobj_edges;

  strtab_t st;
  strtab_init(&st);
  strtab_intern(&st, "");

  /* allocation trace tree over the objects' tracebacks */
  ttree_t tt;
  memset(&tt, 0, sizeof tt);
  tnode_new(&tt, 0); /* the root, function info 0 */
  tt.nfi = 1;        /* function info 0 is "(root)" */
  tt.fi_cap = 64;
  tt.fi_frame = cli_xcalloc(tt.fi_cap, sizeof *tt.fi_frame);
  uint32_t *trace_node = cli_xcalloc(nn ? nn : 1, sizeof *trace_node);
  size_t ntraced = 0;
  cli_progress_t pr;
  cli_progress_begin(&pr, "building allocation stacks");
  for (size_t i = 0; i < nn; i++) {
    cli_progress_update(&pr, i, nn);
    if (nodes[i].traceback == UINT32_MAX) continue;
    const uint32_t *fr = NULL;
    size_t nf = refgc_snapshot_traceback(s, nodes[i].traceback, &fr);
    uint32_t cur = 0;
    for (size_t j = nf; j-- > 0;) cur = tchild(&tt, cur, fr[j]);
    tt.nodes[cur].count++;
    tt.nodes[cur].size += nodes[i].size;
    trace_node[i] = cur + 1; /* tree ids are index + 1 */
    ntraced++;
  }
  cli_progress_end(&pr);

  /* ---- snapshot header ---- */
  fprintf(f,
          "{\"snapshot\":{\"meta\":{"
          "\"node_fields\":[\"type\",\"name\",\"id\",\"self_size\",\"edge_count\","
          "\"trace_node_id\",\"detachedness\"],\n"
          "\"node_types\":[[\"hidden\",\"array\",\"string\",\"object\",\"code\",\"closure\","
          "\"regexp\",\"number\",\"native\",\"synthetic\",\"concatenated string\","
          "\"sliced string\",\"symbol\",\"bigint\",\"object shape\"],\"string\",\"number\","
          "\"number\",\"number\",\"number\",\"number\"],\n"
          "\"edge_fields\":[\"type\",\"name_or_index\",\"to_node\"],\n"
          "\"edge_types\":[[\"context\",\"element\",\"property\",\"internal\",\"hidden\","
          "\"shortcut\",\"weak\"],\"string_or_number\",\"node\"],\n"
          "\"trace_function_info_fields\":[\"function_id\",\"name\",\"script_name\","
          "\"script_id\",\"line\",\"column\"],\n"
          "\"trace_node_fields\":[\"id\",\"function_info_index\",\"count\",\"size\","
          "\"children\"],\n"
          "\"sample_fields\":[\"timestamp_us\",\"last_assigned_id\"],\n"
          "\"location_fields\":[\"object_index\",\"script_id\",\"line\",\"column\"]},\n"
          "\"node_count\":%zu,\"edge_count\":%zu,\"trace_function_count\":%zu},\n",
          total_nodes, total_edges, ntraced ? tt.nfi : (size_t)0);

  /* ---- nodes ---- */
  fprintf(f, "\"nodes\":[");
  fprintf(f, "%d,%" PRIu32 ",1,0,%zu,0,0", T_SYNTHETIC, strtab_intern(&st, "(refgc roots)"),
          ndeclared + 1 + (nunreached ? 1 : 0));
  fprintf(f, ",\n%d,%" PRIu32 ",3,0,%zu,0,0", T_SYNTHETIC,
          strtab_intern(&st, "(held by the program)"), nheld);
  if (nunreached)
    fprintf(f, ",\n%d,%" PRIu32 ",5,0,%zu,0,0", T_SYNTHETIC, strtab_intern(&st, "(unreachable)"),
            nunreached);
  cli_progress_begin(&pr, "writing objects");
  for (size_t i = 0; i < nn; i++) {
    cli_progress_update(&pr, i, nn * 2);
    const char *tn = refgc_snapshot_type_name(s, nodes[i].type);
    size_t begin, end;
    edge_range(nodes, nn, ne, i, &begin, &end);
    size_t ecount = end - begin;
    fprintf(f, ",\n%d,%" PRIu32 ",%" PRIu64 ",%" PRIu64 ",%zu,%" PRIu32 ",0", T_OBJECT,
            strtab_intern(&st, tn && *tn ? tn : "(unnamed type)"), (uint64_t)7 + 2 * (uint64_t)i,
            clamp32(nodes[i].size), ecount, trace_node[i]);
  }

  /* ---- edges ---- */
  fprintf(f, "],\n\"edges\":[");
  const char *sep = "";
  for (size_t i = 0; i < nn; i++) {
    if (!(nodes[i].flags & REFGC_NODE_DECLARED)) continue;
    const char *name = refgc_snapshot_string(s, nodes[i].root_name);
    fprintf(f, "%s%d,%" PRIu32 ",%zu", sep, E_SHORTCUT,
            strtab_intern(&st, name && *name ? name : "(declared root)"), (base + i) * NODE_FIELDS);
    sep = ",\n";
  }
  fprintf(f, "%s%d,0,%d", sep, E_ELEMENT, 1 * NODE_FIELDS);
  sep = ",\n";
  if (nunreached) fprintf(f, "%s%d,1,%d", sep, E_ELEMENT, 2 * NODE_FIELDS);
  size_t k = 0;
  for (size_t i = 0; i < nn; i++)
    if (!(nodes[i].flags & REFGC_NODE_DECLARED) && (nodes[i].flags & REFGC_NODE_ROOT))
      fprintf(f, "%s%d,%zu,%zu", sep, E_ELEMENT, k++, (base + i) * NODE_FIELDS);
  k = 0;
  for (size_t i = 0; i < nn; i++)
    if (!reached[i]) fprintf(f, "%s%d,%zu,%zu", sep, E_ELEMENT, k++, (base + i) * NODE_FIELDS);
  for (size_t i = 0; i < nn; i++) {
    cli_progress_update(&pr, nn + i, nn * 2);
    size_t begin, end;
    edge_range(nodes, nn, ne, i, &begin, &end);
    for (size_t e = begin; e < end; e++) {
      char field[32];
      if (edges[e].offset >= 0)
        snprintf(field, sizeof field, "+%" PRId64, edges[e].offset);
      else
        snprintf(field, sizeof field, "[%" PRIu32 "]", edges[e].index);
      uint32_t to = edges[e].to < nn ? edges[e].to : 0;
      fprintf(f, "%s%d,%" PRIu32 ",%zu", sep, E_PROPERTY, strtab_intern(&st, field),
              (base + to) * NODE_FIELDS);
    }
  }
  cli_progress_end(&pr);

  /* ---- allocation stacks ---- */
  fprintf(f, "],\n\"trace_function_infos\":[");
  if (ntraced) {
    strtab_t scripts; /* script ids: 1 + index of the file name */
    strtab_init(&scripts);
    strtab_intern(&scripts, "");
    fprintf(f, "0,%" PRIu32 ",%" PRIu32 ",0,0,0", strtab_intern(&st, "(root)"),
            strtab_intern(&st, ""));
    for (size_t fi = 1; fi < tt.nfi; fi++) {
      const refgc_frame_info_t *fr = refgc_snapshot_frame(s, tt.fi_frame[fi]);
      char name[1024];
      cli_frame_label(fr, CLI_FRAME_SHORT, name, sizeof name);
      const char *file = fr && fr->file && *fr->file ? cli_strip_path(fr->file)
                         : fr && fr->module ? cli_basename(fr->module)
                                            : "";
      uint32_t script = *file ? strtab_intern(&scripts, file) : 0;
      /* interned one after the other, so that the string order does not depend on the
       * compiler's order of evaluating arguments */
      uint32_t name_id = strtab_intern(&st, name);
      uint32_t file_id = strtab_intern(&st, file);
      fprintf(f, ",\n%zu,%" PRIu32 ",%" PRIu32 ",%" PRIu32 ",%d,0", fi, name_id, file_id, script,
              fr && fr->line > 0 ? fr->line : 0);
    }
    strtab_free(&scripts);
  }
  fprintf(f, "],\n\"trace_tree\":[");
  if (ntraced) write_tnode(f, &tt, 0);
  fprintf(f, "],\n\"samples\":[],\n\"locations\":[],\n\"strings\":[");
  for (size_t i = 0; i < st.n; i++) {
    if (i) fputs(",\n", f);
    cli_json_string(f, st.strs[i]);
  }
  fprintf(f, "]}\n");

  strtab_free(&st);
  free(tt.nodes);
  free(tt.keys);
  free(tt.vals);
  free(tt.frame_fi);
  free(tt.fi_frame);
  free(trace_node);
  free(reached);
  return 0;
}
