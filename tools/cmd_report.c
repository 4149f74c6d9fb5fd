/* refgc report — one self-contained HTML file from one or more snapshot files.
 *
 *   refgc report SNAPSHOT... [-o report.html] [--top N] [--min-growth BYTES] [--title TEXT]
 *                [--strip-path PREFIX]
 *
 * How: the snapshots are loaded (tools/cli.c's loader: a bad file is a message and exit 2) and
 * put in the order they were taken. Everything the page shows is computed here through the public API
 * (refgc.h) and written as one JSON document inside a <script type="application/json"> block
 * of the page, escaped so that no string can end the block ('<', '>' and '&' become \u003c,
 * \u003e and \u0026; invalid UTF-8 becomes U+FFFD). The page itself — the template, the style
 * sheet and the script that draws the plot, the flame graph and the tables — comes from
 * tools/report/ and is embedded into this program at build time (tools/report/embed.cmake makes
 * report_assets.h). The page loads nothing: no network, no fonts, a CSP that forbids it.
 *
 * What is computed here rather than in the page, so that the file stays small for large
 * snapshots:
 *   - the flame graph: the last snapshot's traces are summed per traceback, then merged into
 *     one tree of frames by name, outermost frame first (identical names along a path share a
 *     node); children smaller than 0.1% of the total are merged into one "[other]" node per
 *     parent;
 *   - the memory-over-time series (the last snapshot's, which holds the whole run) is reduced
 *     to at most 4000 points, each keeping the peak of the points it stands for;
 *   - the top-N tables, the leak suspects with their retaining chains (each hop: type, field
 *     offset and index of the reference to the next hop, allocation site), the changes from
 *     the first to the last snapshot and, with three snapshots or more, the growth suspects.
 * The output is written to a temporary file beside the target and renamed over it
 * (cli_output_open).
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "refgc.h"

#include "cli.h"
#include "report_assets.h"

#define DEFAULT_TOP 100
#define DEFAULT_MIN_GROWTH 1024
#define SERIES_MAX_POINTS 4000
#define FLAME_MIN_SHARE 0.001 /* nodes under 0.1% of the total are merged into "[other]" */
#define CHAIN_MAX_HOPS 200    /* longer chains keep their first and last hops */

static const char report_usage[] =
    "usage: refgc report SNAPSHOT... [-o FILE] [options]\n"
    "\n"
    "Write one self-contained HTML page (no network, works offline) about the snapshots:\n"
    "memory over time, a flame graph of live memory by allocation stack, the top sites and\n"
    "types, the leak suspects with their retaining chains, growth across the snapshots and\n"
    "the collector's statistics. Snapshots are put in the order they were taken; the last\n"
    "one gives the flame graph, the tables and the suspects (the suspects: the last one\n"
    "taken with its object graph).\n"
    "\n"
    "options:\n"
    "  -o, --output FILE     where to write the page (default report.html; - for stdout)\n"
    "  -n, --top N           rows per table and suspects shown (default 100)\n"
    "  --min-growth BYTES    growth suspects (3 snapshots or more) grew by at least this\n"
    "                        much from the first to the last (default 1024; K, M, G)\n"
    "  --title TEXT          the page's title (default: refgc report: PROGRAM)\n"
    "  --strip-path PREFIX   remove PREFIX from source file names (repeatable)\n"
    "  -h, --help            this text\n"
    "\n"
    "exit status: 0 written; 2 bad arguments, a snapshot that cannot be read, or an output\n"
    "that cannot be written\n";

/* ---------------------------------------------------------------------------------------------
 * JSON output
 * ------------------------------------------------------------------------------------------ */

/* Writes `s` as a JSON string that is also safe inside an HTML <script> element: as
 * cli_json_string (a byte that is not valid UTF-8 becomes U+00XX), and '<', '>', '&', U+2028
 * and U+2029 escaped too. */
static void json_str(FILE *f, const char *s) {
  const unsigned char *p = (const unsigned char *)(s ? s : "");
  size_t avail = strlen((const char *)p);
  putc('"', f);
  while (*p) {
    unsigned c = *p;
    if (c < 0x80) {
      switch (c) {
      case '"': fputs("\\\"", f); break;
      case '\\': fputs("\\\\", f); break;
      case '\n': fputs("\\n", f); break;
      case '\t': fputs("\\t", f); break;
      case '\r': fputs("\\r", f); break;
      case '<': fputs("\\u003c", f); break;
      case '>': fputs("\\u003e", f); break;
      case '&': fputs("\\u0026", f); break;
      default:
        if (c < 0x20 || c == 0x7f) fprintf(f, "\\u%04x", c);
        else putc((int)c, f);
      }
      p++;
      avail--;
      continue;
    }
    size_t len = cli_utf8_len(p, avail);
    if (len == 0) {
      fprintf(f, "\\u%04x", c);
      p++;
      avail--;
      continue;
    }
    if (len == 3 && p[0] == 0xE2 && p[1] == 0x80 && (p[2] == 0xA8 || p[2] == 0xA9))
      fprintf(f, "\\u%04x", p[2] == 0xA8 ? 0x2028u : 0x2029u);
    else fwrite(p, 1, len, f);
    p += len;
    avail -= len;
  }
  putc('"', f);
}

static void json_u64(FILE *f, uint64_t v) { fprintf(f, "%" PRIu64, v); }

static void json_i64(FILE *f, int64_t v) { fprintf(f, "%" PRId64, v); }

/* Doubles: JSON has no NaN or infinity. */
static void json_num(FILE *f, double v) {
  if (!isfinite(v)) v = 0;
  if (v == floor(v) && fabs(v) < 9007199254740992.0) fprintf(f, "%.0f", v);
  else fprintf(f, "%.9g", v);
}

static void json_key(FILE *f, const char *key) {
  json_str(f, key);
  putc(':', f);
}

static void json_hex(FILE *f, uint64_t v) { fprintf(f, "\"0x%" PRIx64 "\"", v); }

/* HTML text (the title). */
static void html_text(FILE *f, const char *s) {
  for (; *s; s++) {
    switch (*s) {
    case '&': fputs("&amp;", f); break;
    case '<': fputs("&lt;", f); break;
    case '>': fputs("&gt;", f); break;
    case '"': fputs("&quot;", f); break;
    default: putc(*s, f);
    }
  }
}

/* ---------------------------------------------------------------------------------------------
 * Small helpers
 * ------------------------------------------------------------------------------------------ */

static uint64_t hash_str(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

static uint64_t hash_u64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  return x ^ (x >> 33);
}

/* How a frame is named in the page: as the other subcommands name flame graph frames. */
static void frame_name(const refgc_frame_info_t *fi, char *buf, size_t cap) {
  if (!fi) snprintf(buf, cap, "???");
  else cli_frame_label(fi, CLI_FRAME_SHORT, buf, cap);
}

/* Where a frame is: "file:line", "file", or "" when unknown. */
static void frame_loc(const refgc_frame_info_t *fi, char *buf, size_t cap) {
  if (!fi || !fi->file || !fi->file[0]) buf[0] = 0;
  else if (fi->line > 0) snprintf(buf, cap, "%s:%d", cli_strip_path(fi->file), fi->line);
  else snprintf(buf, cap, "%s", cli_strip_path(fi->file));
}

/* One progress display at a time (tools/cli.c draws it only on a terminal, after a second). */
static cli_progress_t progress;
static int progress_on;

static void progress_begin(const char *what) {
  if (progress_on) cli_progress_end(&progress);
  cli_progress_begin(&progress, what);
  progress_on = 1;
}

static void progress_update(uint64_t done, uint64_t total) {
  if (progress_on) cli_progress_update(&progress, done, total);
}

static void progress_end(void) {
  if (progress_on) cli_progress_end(&progress);
  progress_on = 0;
}

/* ---------------------------------------------------------------------------------------------
 * String table (interned strings for the flame graph)
 * ------------------------------------------------------------------------------------------ */

typedef struct strtab_s {
  char **strs;
  size_t n, cap;
  uint32_t *slots; /* id + 1; 0 empty */
  size_t nslots;   /* power of two */
} strtab_t;

static uint32_t strtab_intern(strtab_t *t, const char *s) {
  if ((t->n + 1) * 2 > t->nslots) {
    size_t ns = t->nslots ? t->nslots * 2 : 1024;
    uint32_t *slots = cli_xcalloc(ns, sizeof *slots);
    for (size_t i = 0; i < t->n; i++) {
      size_t j = hash_str(t->strs[i]) & (ns - 1);
      while (slots[j]) j = (j + 1) & (ns - 1);
      slots[j] = (uint32_t)i + 1;
    }
    free(t->slots);
    t->slots = slots;
    t->nslots = ns;
  }
  size_t j = hash_str(s) & (t->nslots - 1);
  while (t->slots[j]) {
    if (strcmp(t->strs[t->slots[j] - 1], s) == 0) return t->slots[j] - 1;
    j = (j + 1) & (t->nslots - 1);
  }
  if (t->n == t->cap) {
    t->cap = t->cap ? t->cap * 2 : 256;
    t->strs = cli_xrealloc(t->strs, (t->cap) * sizeof *t->strs);
  }
  t->strs[t->n] = cli_xstrdup(s);
  t->slots[j] = (uint32_t)t->n + 1;
  return (uint32_t)t->n++;
}

static void strtab_free(strtab_t *t) {
  for (size_t i = 0; i < t->n; i++) free(t->strs[i]);
  free(t->strs);
  free(t->slots);
}

/* ---------------------------------------------------------------------------------------------
 * The flame graph: tracebacks merged into a tree of frame names, outermost first
 * ------------------------------------------------------------------------------------------ */

#define NONE UINT32_MAX

typedef struct fnode_s {
  uint32_t name, loc;    /* strtab ids; loc NONE when unknown */
  uint32_t parent;
  uint32_t first_child, next_sibling;
  double bytes, count;
} fnode_t;

typedef struct flame_s {
  fnode_t *nodes;
  size_t n, cap;
  uint32_t *slots; /* (parent, name) -> node index + 1 */
  size_t nslots;
  strtab_t str;
  uint32_t *fr_name, *fr_loc; /* per snapshot frame index, NONE until looked up */
  size_t nfr;
  uint32_t *out_id; /* per strtab id: index in the emitted table, NONE when unused */
  size_t nout;
  double min_bytes; /* children below this are merged into "[other]" */
  uint32_t other_name;
} flame_t;

static uint32_t flame_new_node(flame_t *fl, uint32_t parent, uint32_t name, uint32_t loc) {
  if (fl->n == fl->cap) {
    fl->cap = fl->cap ? fl->cap * 2 : 1024;
    fl->nodes = cli_xrealloc(fl->nodes, (fl->cap) * sizeof *fl->nodes);
  }
  uint32_t id = (uint32_t)fl->n++;
  fnode_t *nd = &fl->nodes[id];
  nd->name = name;
  nd->loc = loc;
  nd->parent = parent;
  nd->first_child = NONE;
  nd->next_sibling = NONE;
  nd->bytes = nd->count = 0;
  if (parent != NONE) {
    nd->next_sibling = fl->nodes[parent].first_child;
    fl->nodes[parent].first_child = id;
  }
  return id;
}

static uint64_t flame_key_hash(uint32_t parent, uint32_t name) {
  return hash_u64(((uint64_t)parent << 32) | name);
}

static void flame_rehash(flame_t *fl) {
  size_t ns = fl->nslots ? fl->nslots * 2 : 4096;
  uint32_t *slots = cli_xcalloc(ns, sizeof *slots);
  for (size_t i = 1; i < fl->n; i++) { /* node 0, the root, is never looked up */
    size_t j = flame_key_hash(fl->nodes[i].parent, fl->nodes[i].name) & (ns - 1);
    while (slots[j]) j = (j + 1) & (ns - 1);
    slots[j] = (uint32_t)i + 1;
  }
  free(fl->slots);
  fl->slots = slots;
  fl->nslots = ns;
}

/* The child of `parent` named `name`, made when missing. `loc` is the frame's place: a node
 * that merges frames of different places keeps the file alone, or nothing. */
static uint32_t flame_child(flame_t *fl, uint32_t parent, uint32_t name, uint32_t loc) {
  if ((fl->n + 1) * 2 > fl->nslots) flame_rehash(fl);
  size_t j = flame_key_hash(parent, name) & (fl->nslots - 1);
  while (fl->slots[j]) {
    uint32_t id = fl->slots[j] - 1;
    fnode_t *nd = &fl->nodes[id];
    if (nd->parent == parent && nd->name == name) {
      if (nd->loc != loc && nd->loc != NONE) {
        /* different lines: keep the common file, if any */
        const char *a = fl->str.strs[nd->loc];
        const char *b = loc == NONE ? "" : fl->str.strs[loc];
        const char *ca = strrchr(a, ':'), *cb = strrchr(b, ':');
        size_t la = ca ? (size_t)(ca - a) : strlen(a), lb = cb ? (size_t)(cb - b) : strlen(b);
        if (la == lb && la > 0 && memcmp(a, b, la) == 0) {
          char buf[4096];
          snprintf(buf, sizeof buf, "%.*s", (int)la, a);
          nd->loc = strtab_intern(&fl->str, buf);
        } else {
          nd->loc = NONE;
        }
      }
      return id;
    }
    j = (j + 1) & (fl->nslots - 1);
  }
  uint32_t id = flame_new_node(fl, parent, name, loc);
  fl->slots[j] = id + 1;
  return id;
}

static void flame_frame(flame_t *fl, refgc_snapshot_t *snap, uint32_t frame, uint32_t *name,
                        uint32_t *loc) {
  if (frame >= fl->nfr) {
    size_t nn = fl->nfr ? fl->nfr : 1024;
    while (nn <= frame) nn *= 2;
    fl->fr_name = cli_xrealloc(fl->fr_name, (nn) * sizeof *fl->fr_name);
    fl->fr_loc = cli_xrealloc(fl->fr_loc, (nn) * sizeof *fl->fr_loc);
    for (size_t i = fl->nfr; i < nn; i++) fl->fr_name[i] = fl->fr_loc[i] = NONE;
    fl->nfr = nn;
  }
  if (fl->fr_name[frame] == NONE) {
    const refgc_frame_info_t *fi = refgc_snapshot_frame(snap, frame);
    char buf[4096];
    frame_name(fi, buf, sizeof buf);
    fl->fr_name[frame] = strtab_intern(&fl->str, buf);
    frame_loc(fi, buf, sizeof buf);
    fl->fr_loc[frame] = buf[0] ? strtab_intern(&fl->str, buf) : NONE;
  }
  *name = fl->fr_name[frame];
  *loc = fl->fr_loc[frame];
}

static void flame_build(flame_t *fl, refgc_snapshot_t *snap) {
  memset(fl, 0, sizeof *fl);
  uint32_t root_name = strtab_intern(&fl->str, "all");
  fl->other_name = strtab_intern(&fl->str, "[other]");
  uint32_t no_tb = strtab_intern(&fl->str, "[no traceback]");
  flame_new_node(fl, NONE, root_name, NONE);

  size_t ntraces = 0;
  const refgc_trace_t *traces = refgc_snapshot_traces(snap, &ntraces);
  size_t ntb = refgc_snapshot_tracebacks(snap);
  /* sum per traceback first: tracebacks are far fewer than traces */
  double *tb_bytes = cli_xcalloc(ntb + 1, sizeof *tb_bytes);
  double *tb_count = cli_xcalloc(ntb + 1, sizeof *tb_count);
  for (size_t i = 0; i < ntraces; i++) {
    size_t tb = traces[i].traceback < ntb ? traces[i].traceback : ntb;
    double w = traces[i].weight > 0 ? traces[i].weight : 1;
    tb_bytes[tb] += (double)traces[i].size * w;
    tb_count[tb] += w;
    if ((i & 0xffff) == 0xffff) progress_update(i, ntraces + ntb);
  }
  for (size_t tb = 0; tb <= ntb; tb++) {
    if (tb_count[tb] == 0) continue;
    const uint32_t *frames = NULL;
    size_t nf = tb < ntb ? refgc_snapshot_traceback(snap, (uint32_t)tb, &frames) : 0;
    uint32_t node = 0;
    fl->nodes[0].bytes += tb_bytes[tb];
    fl->nodes[0].count += tb_count[tb];
    if (nf == 0) {
      node = flame_child(fl, node, no_tb, NONE);
      fl->nodes[node].bytes += tb_bytes[tb];
      fl->nodes[node].count += tb_count[tb];
    }
    for (size_t k = nf; k-- > 0;) { /* outermost first */
      uint32_t name, loc;
      flame_frame(fl, snap, frames[k], &name, &loc);
      node = flame_child(fl, node, name, loc);
      fl->nodes[node].bytes += tb_bytes[tb];
      fl->nodes[node].count += tb_count[tb];
    }
    if ((tb & 0xfff) == 0xfff) progress_update(ntraces + tb, ntraces + ntb);
  }
  free(tb_bytes);
  free(tb_count);
  fl->min_bytes = fl->nodes[0].bytes * FLAME_MIN_SHARE;
}

static void flame_free(flame_t *fl) {
  free(fl->nodes);
  free(fl->slots);
  free(fl->fr_name);
  free(fl->fr_loc);
  free(fl->out_id);
  strtab_free(&fl->str);
}

static const fnode_t *sort_nodes_base;
static int cmp_node_bytes(const void *a, const void *b) {
  const fnode_t *x = &sort_nodes_base[*(const uint32_t *)a];
  const fnode_t *y = &sort_nodes_base[*(const uint32_t *)b];
  if (x->bytes != y->bytes) return x->bytes > y->bytes ? -1 : 1;
  return x->name < y->name ? -1 : x->name > y->name;
}

static uint32_t flame_out_id(flame_t *fl, uint32_t id) {
  if (id == NONE) return NONE;
  if (fl->out_id[id] == NONE) fl->out_id[id] = (uint32_t)fl->nout++;
  return fl->out_id[id];
}

/* Walks the pruned tree: with `f` NULL it only numbers the strings that will be written. A
 * node is [name, loc, bytes, count] or [name, loc, bytes, count, [children...]], loc -1 when
 * unknown; children are largest first, small ones merged into one "[other]". */
static void flame_emit(flame_t *fl, uint32_t id, FILE *f) {
  const fnode_t *nd = &fl->nodes[id];
  uint32_t name = flame_out_id(fl, nd->name), loc = flame_out_id(fl, nd->loc);
  if (f) {
    fprintf(f, "[%" PRIu32 ",", name);
    if (loc == NONE) fputs("-1", f);
    else fprintf(f, "%" PRIu32, loc);
    putc(',', f);
    json_num(f, floor(nd->bytes + 0.5));
    putc(',', f);
    json_num(f, floor(nd->count + 0.5));
  }
  size_t nch = 0;
  for (uint32_t c = nd->first_child; c != NONE; c = fl->nodes[c].next_sibling) nch++;
  if (nch) {
    uint32_t *ch = cli_xcalloc(nch, sizeof *ch);
    size_t k = 0;
    for (uint32_t c = nd->first_child; c != NONE; c = fl->nodes[c].next_sibling) ch[k++] = c;
    sort_nodes_base = fl->nodes;
    qsort(ch, nch, sizeof *ch, cmp_node_bytes);
    double ob = 0, oc = 0;
    int first = 1;
    if (f) fputs(",[", f);
    for (k = 0; k < nch; k++) {
      const fnode_t *c = &fl->nodes[ch[k]];
      if (c->bytes < fl->min_bytes) {
        ob += c->bytes;
        oc += c->count;
        continue;
      }
      if (f && !first) putc(',', f);
      first = 0;
      flame_emit(fl, ch[k], f);
    }
    if (oc > 0) {
      uint32_t on = flame_out_id(fl, fl->other_name);
      if (f) {
        if (!first) putc(',', f);
        fprintf(f, "[%" PRIu32 ",-1,", on);
        json_num(f, floor(ob + 0.5));
        putc(',', f);
        json_num(f, floor(oc + 0.5));
        putc(']', f);
      }
    }
    if (f) putc(']', f);
    free(ch);
  }
  if (f) putc(']', f);
}

static void flame_write(flame_t *fl, FILE *f) {
  fl->out_id = cli_xcalloc(fl->str.n, sizeof *fl->out_id);
  for (size_t i = 0; i < fl->str.n; i++) fl->out_id[i] = NONE;
  fl->nout = 0;
  flame_emit(fl, 0, NULL);
  const char **names = cli_xcalloc(fl->nout, sizeof *names);
  for (size_t i = 0; i < fl->str.n; i++)
    if (fl->out_id[i] != NONE) names[fl->out_id[i]] = fl->str.strs[i];
  fputs("{\"strings\":[", f);
  for (size_t i = 0; i < fl->nout; i++) {
    if (i) putc(',', f);
    json_str(f, names[i]);
  }
  free(names);
  fputs("],\"min_share\":", f);
  json_num(f, FLAME_MIN_SHARE);
  fputs(",\"root\":", f);
  flame_emit(fl, 0, f);
  putc('}', f);
}

/* ---------------------------------------------------------------------------------------------
 * The other sections
 * ------------------------------------------------------------------------------------------ */

typedef struct input_s {
  const char *path;
  refgc_snapshot_t *snap;
  refgc_snapshot_info_t info;
  size_t order; /* position on the command line */
} input_t;

static void write_frame_obj(FILE *f, refgc_snapshot_t *snap, uint32_t frame) {
  const refgc_frame_info_t *fi = refgc_snapshot_frame(snap, frame);
  char name[4096], loc[4096];
  frame_name(fi, name, sizeof name);
  frame_loc(fi, loc, sizeof loc);
  fputs("{\"name\":", f);
  json_str(f, name);
  fputs(",\"loc\":", f);
  json_str(f, loc);
  fputs(",\"module\":", f);
  json_str(f, fi && fi->module ? cli_basename(fi->module) : "");
  putc('}', f);
}

/* A traceback as an array of frames, innermost first. */
static void write_stack(FILE *f, refgc_snapshot_t *snap, uint32_t tb) {
  const uint32_t *frames = NULL;
  size_t nf = tb == NONE ? 0 : refgc_snapshot_traceback(snap, tb, &frames);
  putc('[', f);
  for (size_t k = 0; k < nf; k++) {
    if (k) putc(',', f);
    write_frame_obj(f, snap, frames[k]);
  }
  putc(']', f);
}

/* "function file:line" of the innermost frame of traceback `tb` ("" untraced). */
static void site_of(refgc_snapshot_t *snap, uint32_t tb, char *buf, size_t cap) {
  const uint32_t *frames = NULL;
  size_t nf = tb == NONE ? 0 : refgc_snapshot_traceback(snap, tb, &frames);
  buf[0] = 0;
  if (nf == 0) return;
  const refgc_frame_info_t *fi = refgc_snapshot_frame(snap, frames[0]);
  char name[2048], loc[2048];
  frame_name(fi, name, sizeof name);
  frame_loc(fi, loc, sizeof loc);
  if (loc[0]) snprintf(buf, cap, "%s %s", name, loc);
  else snprintf(buf, cap, "%s", name);
}

static void write_info(FILE *f, const input_t *in) {
  const refgc_snapshot_info_t *i = &in->info;
  fputs("{\"file\":", f);
  json_str(f, in->path);
  fputs(",\"version\":", f);
  json_u64(f, i->version);
  fputs(",\"time\":", f);
  json_num(f, i->time);
  fputs(",\"uptime\":", f);
  json_num(f, i->uptime);
  fputs(",\"pid\":", f);
  json_u64(f, i->pid);
  fputs(",\"program\":", f);
  json_str(f, i->program ? i->program : "");
#define U64(field)                                                                               \
  fputs(",\"" #field "\":", f);                                                                \
  json_u64(f, (uint64_t)i->field)
  U64(frames);
  U64(sample_bytes);
  U64(traced_current);
  U64(traced_peak);
  U64(trace_count);
  U64(heap_in_use);
  U64(heap_committed);
  U64(rss);
  U64(tracer_memory);
  U64(objects);
  U64(graph_nodes);
  U64(graph_edges);
  U64(series_points);
#undef U64
  fputs(",\"gc\":{\"collections\":[", f);
  for (int g = 0; g < 3; g++) fprintf(f, "%s%" PRIu64, g ? "," : "", i->gc_collections[g]);
  fputs("],\"collected\":[", f);
  for (int g = 0; g < 3; g++) fprintf(f, "%s%" PRIu64, g ? "," : "", i->gc_collected[g]);
  fputs("],\"uncollectable\":[", f);
  for (int g = 0; g < 3; g++) fprintf(f, "%s%" PRIu64, g ? "," : "", i->gc_uncollectable[g]);
  fputs("],\"pause_total\":", f);
  json_num(f, i->gc_pause_total);
  fputs(",\"pause_max\":", f);
  json_num(f, i->gc_pause_max);
  fputs("}}", f);
}

/* The series as columns {t:[], rss:[], traced:[], in_use:[], committed:[]}, at most
 * SERIES_MAX_POINTS: each output point is the first time of a run of input points and the
 * peak of each value over the run. Without a series (older files, or tracing's series
 * disabled), one point per snapshot of the same process as the last one. */
static void write_series(FILE *f, const input_t *ins, size_t nin) {
  const input_t *last = &ins[nin - 1];
  size_t n = 0;
  const refgc_series_point_t *pts = refgc_snapshot_series(last->snap, &n);
  refgc_series_point_t *own = NULL;
  int synthetic = 0;
  if (!pts || n == 0) {
    own = cli_xcalloc(nin, sizeof *own);
    n = 0;
    for (size_t k = 0; k < nin; k++) {
      if (ins[k].info.pid != last->info.pid) continue;
      own[n].t = ins[k].info.uptime;
      own[n].rss = ins[k].info.rss;
      own[n].traced = ins[k].info.traced_current;
      own[n].in_use = ins[k].info.heap_in_use;
      own[n].committed = ins[k].info.heap_committed;
      n++;
    }
    pts = own;
    synthetic = 1;
  }
  size_t per = (n + SERIES_MAX_POINTS - 1) / SERIES_MAX_POINTS;
  if (per == 0) per = 1;
  size_t nout = (n + per - 1) / per;
  static const char *const cols[] = {"t", "rss", "traced", "in_use", "committed"};
  fputs("{\"synthetic\":", f);
  fputs(synthetic ? "true" : "false", f);
  fputs(",\"points\":", f);
  json_u64(f, n);
  for (int c = 0; c < 5; c++) {
    putc(',', f);
    json_key(f, cols[c]);
    putc('[', f);
    for (size_t o = 0; o < nout; o++) {
      size_t a = o * per, b = a + per < n ? a + per : n;
      if (o) putc(',', f);
      if (c == 0) {
        fprintf(f, "%.4f", isfinite(pts[a].t) ? pts[a].t : 0.0);
        continue;
      }
      uint64_t m = 0;
      for (size_t k = a; k < b; k++) {
        uint64_t v = c == 1 ? pts[k].rss : c == 2 ? pts[k].traced : c == 3 ? pts[k].in_use
                                                                           : pts[k].committed;
        if (v > m) m = v;
      }
      json_u64(f, m);
    }
    putc(']', f);
  }
  putc('}', f);
  free(own);
}

static void write_stats(FILE *f, refgc_snapshot_t *snap, refgc_group_t group, size_t top) {
  size_t n = 0;
  refgc_stat_t *st = refgc_snapshot_statistics(snap, group, 0, &n);
  putc('[', f);
  for (size_t i = 0; i < n && i < top; i++) {
    if (i) putc(',', f);
    fputs("{\"key\":", f);
    json_str(f, st[i].key);
    fputs(",\"size\":", f);
    json_u64(f, st[i].size);
    fputs(",\"count\":", f);
    json_u64(f, st[i].count);
    if (group == REFGC_GROUP_TRACEBACK) {
      fputs(",\"stack\":", f);
      write_stack(f, snap, st[i].traceback);
    }
    putc('}', f);
  }
  putc(']', f);
  refgc_stats_free(st);
}

/* Live objects by type, with the traced bytes of each type where traced. */
static void write_types(FILE *f, refgc_snapshot_t *snap, size_t top) {
  size_t n = 0, ns = 0;
  const refgc_type_count_t *tc = refgc_snapshot_type_counts(snap, &n);
  refgc_stat_t *st = refgc_snapshot_statistics(snap, REFGC_GROUP_TYPE, 0, &ns);
  putc('[', f);
  size_t rows = 0;
  for (size_t i = 0; tc && i < n && rows < top; i++) {
    if (rows++) putc(',', f);
    fputs("{\"type\":", f);
    json_str(f, tc[i].type);
    fputs(",\"count\":", f);
    json_u64(f, tc[i].count);
    fputs(",\"bytes\":", f);
    json_u64(f, tc[i].bytes);
    for (size_t k = 0; k < ns; k++) {
      if (st[k].key && tc[i].type && strcmp(st[k].key, tc[i].type) == 0) {
        fputs(",\"traced_size\":", f);
        json_u64(f, st[k].size);
        fputs(",\"traced_count\":", f);
        json_u64(f, st[k].count);
        break;
      }
    }
    putc('}', f);
  }
  putc(']', f);
  refgc_stats_free(st);
}

static void write_compare(FILE *f, refgc_snapshot_t *newer, refgc_snapshot_t *older,
                          size_t top) {
  size_t n = 0;
  refgc_stat_t *st = refgc_snapshot_compare(newer, older, REFGC_GROUP_LINE, 0, &n);
  putc('[', f);
  for (size_t i = 0; i < n && i < top; i++) {
    if (i) putc(',', f);
    fputs("{\"key\":", f);
    json_str(f, st[i].key);
    fputs(",\"size\":", f);
    json_u64(f, st[i].size);
    fputs(",\"size_diff\":", f);
    json_i64(f, st[i].size_diff);
    fputs(",\"count\":", f);
    json_u64(f, st[i].count);
    fputs(",\"count_diff\":", f);
    json_i64(f, st[i].count_diff);
    putc('}', f);
  }
  putc(']', f);
  refgc_stats_free(st);
}

static void write_growth(FILE *f, refgc_snapshot_t **snaps, size_t n, uint64_t min_growth,
                         size_t top) {
  static const struct {
    refgc_group_t group;
    const char *name;
  } groups[] = {{REFGC_GROUP_LINE, "line"},
                {REFGC_GROUP_TRACEBACK, "traceback"},
                {REFGC_GROUP_TYPE, "type"}};
  putc('[', f);
  int first = 1;
  for (size_t g = 0; g < sizeof groups / sizeof groups[0]; g++) {
    size_t ng = 0;
    refgc_growth_t *gr = refgc_snapshots_growth(snaps, n, groups[g].group, min_growth, &ng);
    for (size_t i = 0; gr && i < ng && i < top; i++) {
      if (!first) putc(',', f);
      first = 0;
      fputs("{\"group\":", f);
      json_str(f, groups[g].name);
      fputs(",\"key\":", f);
      json_str(f, gr[i].key);
      fputs(",\"first_size\":", f);
      json_u64(f, gr[i].first_size);
      fputs(",\"last_size\":", f);
      json_u64(f, gr[i].last_size);
      fputs(",\"first_count\":", f);
      json_u64(f, gr[i].first_count);
      fputs(",\"last_count\":", f);
      json_u64(f, gr[i].last_count);
      if (groups[g].group == REFGC_GROUP_TRACEBACK) {
        fputs(",\"stack\":", f);
        write_stack(f, snaps[n - 1], gr[i].traceback);
      }
      putc('}', f);
    }
    refgc_growth_free(gr);
  }
  putc(']', f);
}

static const char *leak_class_name(refgc_leak_class_t c) {
  switch (c) {
  case REFGC_LEAK_LOST_REFERENCE: return "lost reference";
  case REFGC_LEAK_RESURRECTED: return "resurrected";
  case REFGC_LEAK_GROWTH: return "growth";
  }
  return "unknown";
}

static void write_node(FILE *f, refgc_snapshot_t *snap, const refgc_node_t *nodes,
                       size_t nnodes, uint32_t id) {
  if (id >= nnodes) { /* left open, as below: the caller adds fields and closes it */
    fputs("{\"node\":-1", f);
    return;
  }
  const refgc_node_t *nd = &nodes[id];
  char site[4096];
  site_of(snap, nd->traceback, site, sizeof site);
  const char *tn = refgc_snapshot_type_name(snap, nd->type);
  fputs("{\"node\":", f);
  json_u64(f, id);
  fputs(",\"type\":", f);
  json_str(f, tn ? tn : "");
  fputs(",\"address\":", f);
  json_hex(f, nd->address);
  fputs(",\"size\":", f);
  json_u64(f, nd->size);
  fputs(",\"refcnt\":", f);
  json_u64(f, nd->refcnt);
  fputs(",\"retained\":", f);
  json_u64(f, nd->retained);
  fputs(",\"flags\":[", f);
  static const struct {
    uint32_t bit;
    const char *name;
  } flags[] = {{REFGC_NODE_ROOT, "root"},           {REFGC_NODE_DECLARED, "declared"},
               {REFGC_NODE_FINALIZED, "finalized"}, {REFGC_NODE_IMMORTAL, "immortal"},
               {REFGC_NODE_GARBAGE, "garbage"},     {REFGC_NODE_FROZEN, "frozen"}};
  int first = 1;
  for (size_t k = 0; k < sizeof flags / sizeof flags[0]; k++) {
    if (!(nd->flags & flags[k].bit)) continue;
    if (!first) putc(',', f);
    first = 0;
    json_str(f, flags[k].name);
  }
  putc(']', f);
  if (nd->flags & REFGC_NODE_DECLARED) {
    const char *rn = refgc_snapshot_string(snap, nd->root_name);
    fputs(",\"root_name\":", f);
    json_str(f, rn ? rn : "");
  }
  fputs(",\"site\":", f);
  json_str(f, site);
}

/* The edge from `from` to `to` (the first one when there are several), or NULL. */
static const refgc_edge_t *find_edge(const refgc_node_t *nodes, size_t nnodes,
                                     const refgc_edge_t *edges, size_t nedges, uint32_t from,
                                     uint32_t to) {
  if (from >= nnodes) return NULL;
  size_t a = nodes[from].first_edge;
  size_t b = from + 1 < nnodes ? nodes[from + 1].first_edge : nedges;
  if (b > nedges) b = nedges;
  for (size_t e = a; e < b; e++)
    if (edges[e].to == to) return &edges[e];
  return NULL;
}

static void write_suspects(FILE *f, refgc_snapshot_t *snap, size_t top) {
  size_t ns = 0, nnodes = 0, nedges = 0;
  const refgc_suspect_t *sus = refgc_snapshot_suspects(snap, &ns);
  const refgc_edge_t *edges = NULL;
  const refgc_node_t *nodes = refgc_snapshot_graph(snap, &nnodes, &edges, &nedges);
  putc('[', f);
  for (size_t i = 0; sus && nodes && i < ns && i < top; i++) {
    const refgc_suspect_t *s = &sus[i];
    if (i) putc(',', f);
    fputs("{\"class\":", f);
    json_str(f, leak_class_name(s->cls));
    fputs(",\"unexplained\":", f);
    json_u64(f, s->unexplained);
    fputs(",\"retained\":", f);
    json_u64(f, s->retained);
    fputs(",\"retained_count\":", f);
    json_u64(f, s->retained_count);
    fputs(",\"object\":", f);
    write_node(f, snap, nodes, nnodes, s->node);
    putc('}', f);
    fputs(",\"stack\":", f);
    write_stack(f, snap, s->node < nnodes ? nodes[s->node].traceback : NONE);
    fputs(",\"chain_len\":", f);
    json_u64(f, s->chain_len);
    fputs(",\"chain\":[", f);
    for (uint32_t h = 0; s->chain && h < s->chain_len; h++) {
      if (h) putc(',', f);
      if (s->chain_len > CHAIN_MAX_HOPS && h == CHAIN_MAX_HOPS / 2) {
        /* the middle of a long chain: its first and last CHAIN_MAX_HOPS / 2 hops are kept */
        uint32_t skip = s->chain_len - CHAIN_MAX_HOPS;
        fprintf(f, "{\"elided\":%" PRIu32 "},", skip);
        h += skip;
      }
      write_node(f, snap, nodes, nnodes, s->chain[h]);
      if (h + 1 < s->chain_len) {
        const refgc_edge_t *e =
            find_edge(nodes, nnodes, edges, nedges, s->chain[h], s->chain[h + 1]);
        fputs(",\"offset\":", f);
        json_i64(f, e ? e->offset : -1);
        fputs(",\"index\":", f);
        json_i64(f, e ? (int64_t)e->index : -1);
      }
      putc('}', f);
    }
    fputs("]}", f);
  }
  putc(']', f);
}

/* ---------------------------------------------------------------------------------------------
 * The page
 * ------------------------------------------------------------------------------------------ */

typedef struct options_s {
  const char *out;
  const char *title;
  size_t top;
  uint64_t min_growth;
} options_t;

static void write_data(FILE *f, input_t *ins, size_t nin, const options_t *o) {
  input_t *last = &ins[nin - 1];
  refgc_snapshot_t **snaps = cli_xcalloc(nin, sizeof *snaps);
  for (size_t k = 0; k < nin; k++) snaps[k] = ins[k].snap;

  fputs("{\"format\":1,\"tool\":", f);
  json_str(f, refgc_version_string());
  fputs(",\"min_growth\":", f);
  json_u64(f, o->min_growth);
  fputs(",\"top\":", f);
  json_u64(f, o->top);
  fputs(",\n\"snapshots\":[", f);
  for (size_t k = 0; k < nin; k++) {
    if (k) fputs(",\n", f);
    write_info(f, &ins[k]);
  }
  fputs("],\n\"series\":", f);
  write_series(f, ins, nin);

  progress_begin("building the flame graph");
  flame_t fl;
  flame_build(&fl, last->snap);
  fputs(",\n\"flame\":", f);
  flame_write(&fl, f);
  flame_free(&fl);

  progress_begin("writing the report");
  fputs(",\n\"sites_line\":", f);
  write_stats(f, last->snap, REFGC_GROUP_LINE, o->top);
  fputs(",\n\"sites_traceback\":", f);
  write_stats(f, last->snap, REFGC_GROUP_TRACEBACK, o->top);
  fputs(",\n\"sites_function\":", f);
  write_stats(f, last->snap, REFGC_GROUP_FUNCTION, o->top);
  fputs(",\n\"types\":", f);
  write_types(f, last->snap, o->top);

  /* suspects: those of the newest snapshot that has a graph */
  size_t with_graph = nin;
  for (size_t k = nin; k-- > 0;) {
    if (ins[k].info.graph_nodes > 0) {
      with_graph = k;
      break;
    }
  }
  fputs(",\n\"suspects_snapshot\":", f);
  if (with_graph < nin) json_u64(f, with_graph);
  else fputs("-1", f);
  fputs(",\n\"suspects\":", f);
  if (with_graph < nin) write_suspects(f, ins[with_graph].snap, o->top);
  else fputs("[]", f);

  fputs(",\n\"changes\":", f);
  if (nin >= 2) write_compare(f, last->snap, ins[0].snap, o->top);
  else fputs("[]", f);
  fputs(",\n\"growth\":", f);
  if (nin >= 3) write_growth(f, snaps, nin, o->min_growth, o->top);
  else fputs("[]", f);
  fputs("}\n", f);
  free(snaps);
}

/* Copies the template to `f`, replacing {{title}}, {{style}}, {{data}} and {{script}}. */
static void write_page(FILE *f, input_t *ins, size_t nin, const options_t *o) {
  const char *t = (const char *)report_asset_template_html;
  while (*t) {
    const char *m = strstr(t, "{{");
    if (!m) {
      fputs(t, f);
      break;
    }
    fwrite(t, 1, (size_t)(m - t), f);
    if (strncmp(m, "{{title}}", 9) == 0) {
      if (o->title) {
        html_text(f, o->title);
      } else {
        const char *prog = ins[nin - 1].info.program;
        fputs("refgc report", f);
        if (prog && prog[0]) {
          fputs(": ", f);
          html_text(f, cli_basename(prog));
        }
      }
      t = m + 9;
    } else if (strncmp(m, "{{style}}", 9) == 0) {
      fputs((const char *)report_asset_report_css, f);
      t = m + 9;
    } else if (strncmp(m, "{{script}}", 10) == 0) {
      fputs((const char *)report_asset_report_js, f);
      t = m + 10;
    } else if (strncmp(m, "{{data}}", 8) == 0) {
      write_data(f, ins, nin, o);
      t = m + 8;
    } else {
      fputs("{{", f);
      t = m + 2;
    }
  }
}

static int parse_size(const char *s, uint64_t *out) {
  char *end = NULL;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || end == s || s[0] == '-') return -1;
  uint64_t mul = 1;
  switch (*end) {
  case 0: break;
  case 'k': case 'K': mul = 1024; end++; break;
  case 'm': case 'M': mul = 1024 * 1024; end++; break;
  case 'g': case 'G': mul = 1024ull * 1024 * 1024; end++; break;
  default: return -1;
  }
  if (mul > 1 && *end == 'i') end++;
  if (*end == 'B') end++;
  if (*end) return -1;
  if (v > UINT64_MAX / mul) return -1;
  *out = (uint64_t)v * mul;
  return 0;
}

static int cmp_inputs(const void *a, const void *b) {
  const input_t *x = a, *y = b;
  if (x->info.time != y->info.time) return x->info.time < y->info.time ? -1 : 1;
  if (x->info.pid == y->info.pid && x->info.uptime != y->info.uptime)
    return x->info.uptime < y->info.uptime ? -1 : 1;
  return x->order < y->order ? -1 : x->order > y->order;
}

enum { OPT_HELP = 1, OPT_OUTPUT, OPT_TOP, OPT_MIN_GROWTH, OPT_TITLE, OPT_STRIP_PATH };

int refgc_cmd_report(int argc, char **argv) {
  static const cli_opt_t opts[] = {
      {"help", 'h', 0, OPT_HELP},          {"output", 'o', 1, OPT_OUTPUT},
      {"top", 'n', 1, OPT_TOP},            {"min-growth", 0, 1, OPT_MIN_GROWTH},
      {"title", 0, 1, OPT_TITLE},          {"strip-path", 0, 1, OPT_STRIP_PATH},
      {NULL, 0, 0, 0}};
  options_t o = {"report.html", NULL, DEFAULT_TOP, DEFAULT_MIN_GROWTH};
  const char **paths = cli_xcalloc((size_t)argc + 1, sizeof *paths);
  size_t npaths = 0;
  cli_parser_t p;
  cli_parser_init(&p, argc, argv);
  const char *val = NULL;
  int id;
  while ((id = cli_next(&p, opts, &val)) != CLI_END) {
    long n;
    switch (id) {
    case CLI_ARG: paths[npaths++] = val; break;
    case CLI_ERROR: free(paths); return CLI_EXIT_USAGE;
    case OPT_HELP: fputs(report_usage, stdout); free(paths); return CLI_EXIT_OK;
    case OPT_OUTPUT: o.out = val; break;
    case OPT_TITLE: o.title = val; break;
    case OPT_STRIP_PATH: cli_strip_path_add(val); break;
    case OPT_TOP:
      if (cli_parse_count("--top", val, 1000000, &n) != 0) {
        free(paths);
        return CLI_EXIT_USAGE;
      }
      o.top = n > 0 ? (size_t)n : 1;
      break;
    case OPT_MIN_GROWTH:
      if (parse_size(val, &o.min_growth) != 0) {
        free(paths);
        return cli_usage_error("--min-growth wants a size in bytes (suffixes K, M, G), not '%s'",
                               val);
      }
      break;
    default: break;
    }
  }
  if (npaths == 0) {
    free(paths);
    return cli_usage_error("no snapshot given");
  }

  input_t *ins = cli_xcalloc(npaths, sizeof *ins);
  int status = CLI_EXIT_OK;
  progress_begin("loading snapshots");
  for (size_t k = 0; k < npaths; k++) {
    progress_update(k, npaths);
    ins[k].path = paths[k];
    ins[k].order = k;
    ins[k].snap = cli_load(paths[k]);
    if (!ins[k].snap || cli_info(ins[k].snap, paths[k], &ins[k].info) != 0) {
      status = CLI_EXIT_USAGE;
      break;
    }
  }
  progress_end();
  if (status == CLI_EXIT_OK) {
    qsort(ins, npaths, sizeof *ins, cmp_inputs);
    cli_output_t out;
    if (cli_output_open(&out, o.out) != 0) {
      status = CLI_EXIT_USAGE;
    } else {
      write_page(out.f, ins, npaths, &o);
      progress_end();
      long size = out.path ? ftell(out.f) : -1;
      if (cli_output_close(&out, 1) != 0) {
        status = CLI_EXIT_USAGE;
      } else if (out.path) {
        char sz[32];
        cli_size(size > 0 ? (uint64_t)size : 0, sz, sizeof sz);
        fprintf(stderr, "refgc report: wrote %s (%s, %zu snapshot%s)\n", o.out, sz, npaths,
                npaths == 1 ? "" : "s");
      }
    }
  }
  for (size_t k = 0; k < npaths; k++) refgc_snapshot_free(ins[k].snap);
  free(ins);
  free(paths);
  return status;
}
