/* refgc export --format massif — valgrind massif's out-file format (read by ms_print and
 * massif-visualizer).
 *
 * The file is a header (desc:, cmd:, time_unit:) and a list of snapshots, each
 *     snapshot=N / time= / mem_heap_B= / mem_heap_extra_B= / mem_stacks_B= / heap_tree=
 * where heap_tree is "empty" or "detailed" followed by a tree of allocation sites:
 *     n2: 3000 (heap allocation functions) malloc/new/new[], --alloc-fns, etc.
 *      n1: 2000 0x4005A4: make_node (snapgen.c:120)
 *       n0: 2000 0x4006B0: main (snapgen.c:300)
 *      n0: 1000 in 3 places, all below massif's threshold (1.00%)
 * (nK: the number of children; one space of indentation per level; the first level is the
 * innermost frame, the allocating function, and each level below it is a caller).
 *
 * Every input snapshot becomes a detailed massif snapshot whose tree is built from its traces
 * (bytes per traceback, sorted and grouped level by level; subtrees below --threshold percent
 * of the snapshot's total are summarised in one "in N places" line, as massif does). The
 * memory-over-time series of the latest input (when the inputs come from one process) adds
 * empty-tree snapshots: traced bytes at each point, thinned to at most 200 points, the peak
 * kept. The snapshots are put in the order they were taken, whatever the order of the
 * arguments (a shell glob puts app.rgc.10 before app.rgc.2): times are milliseconds of
 * tracing's clock (time_unit: ms) when every input comes from the same process; otherwise the
 * snapshot's number in the order of the wall clock (time_unit: i). mem_heap_B is the traced requested bytes; mem_heap_extra_B and mem_stacks_B are 0 (a
 * snapshot has no allocator overhead per block). ms_print treats '#' as the start of a
 * comment, so '#' and line breaks in names are replaced.
 */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "export.h"

#define MAX_SERIES_POINTS 200

typedef struct item_s {
  const uint32_t *frames; /* innermost first */
  size_t nf;
  uint64_t bytes;
  uint32_t key; /* frame at the current depth, UINT32_MAX when the stack ends above it */
} item_t;

typedef struct group_s {
  size_t start, end;
  uint64_t bytes;
  uint32_t frame;
} group_t;

typedef struct tree_ctx_s {
  FILE *f;
  refgc_snapshot_t *s;
  uint64_t total;
  double threshold;
} tree_ctx_t;

static int item_cmp(const void *pa, const void *pb) {
  const item_t *a = pa, *b = pb;
  return a->key < b->key ? -1 : a->key > b->key;
}

static int group_cmp(const void *pa, const void *pb) {
  const group_t *a = pa, *b = pb;
  if (a->bytes != b->bytes) return a->bytes > b->bytes ? -1 : 1;
  return a->frame < b->frame ? -1 : a->frame > b->frame;
}

static void sanitize(char *s) {
  for (; *s; s++)
    if (*s == '#' || *s == '\n' || *s == '\r') *s = '_';
}

static void frame_desc(refgc_snapshot_t *s, uint32_t index, char *buf, size_t n) {
  const refgc_frame_info_t *fi = refgc_snapshot_frame(s, index);
  uint64_t addr = fi ? (uint64_t)fi->address : 0;
  const char *fn = fi && fi->function && *fi->function ? fi->function : "???";
  const char *file = fi && fi->file && *fi->file ? cli_strip_path(fi->file) : "";
  const char *mod = fi && fi->module && *fi->module ? fi->module : "";
  if (*file && fi->line > 0)
    snprintf(buf, n, "0x%" PRIX64 ": %s (%s:%d)", addr, fn, file, fi->line);
  else if (*file)
    snprintf(buf, n, "0x%" PRIX64 ": %s (%s)", addr, fn, file);
  else if (*mod)
    snprintf(buf, n, "0x%" PRIX64 ": %s (in %s)", addr, fn, mod);
  else
    snprintf(buf, n, "0x%" PRIX64 ": %s", addr, fn);
  sanitize(buf);
}

static int significant(const tree_ctx_t *c, uint64_t bytes) {
  if (c->threshold <= 0) return 1;
  return c->total != 0 && (double)bytes * 100.0 / (double)c->total >= c->threshold;
}

/* Write the node for items[0..n) (which share their frames above `depth`) and its subtree.
 * `desc` is the node's description. */
static void write_node(tree_ctx_t *c, item_t *items, size_t n, size_t depth, uint64_t bytes,
                       const char *desc) {
  for (size_t i = 0; i < n; i++)
    items[i].key = depth < items[i].nf ? items[i].frames[depth] : UINT32_MAX;
  qsort(items, n, sizeof *items, item_cmp);
  group_t *g = cli_xcalloc(n ? n : 1, sizeof *g);
  size_t ng = 0;
  for (size_t i = 0; i < n;) {
    if (items[i].key == UINT32_MAX) break; /* sorted last: stacks that end here */
    size_t j = i;
    uint64_t b = 0;
    while (j < n && items[j].key == items[i].key) b += items[j++].bytes;
    g[ng].start = i;
    g[ng].end = j;
    g[ng].bytes = b;
    g[ng].frame = items[i].key;
    ng++;
    i = j;
  }
  qsort(g, ng, sizeof *g, group_cmp);
  size_t nsig = 0, ninsig = 0;
  uint64_t insig_bytes = 0;
  for (size_t i = 0; i < ng; i++) {
    if (significant(c, g[i].bytes)) {
      nsig++;
    } else {
      ninsig++;
      insig_bytes += g[i].bytes;
    }
  }
  fprintf(c->f, "%*sn%zu: %" PRIu64 " %s\n", (int)depth, "", nsig + (ninsig ? 1 : 0), bytes, desc);
  for (size_t i = 0; i < ng; i++) {
    if (!significant(c, g[i].bytes)) continue;
    char d[1400];
    frame_desc(c->s, g[i].frame, d, sizeof d);
    /* items of this group are contiguous in the order sorted above; the recursion re-sorts
     * only its own range */
    write_node(c, items + g[i].start, g[i].end - g[i].start, depth + 1, g[i].bytes, d);
  }
  if (ninsig)
    fprintf(c->f, "%*sn0: %" PRIu64 " in %zu place%s, %s massif's threshold (%.2f%%)\n",
            (int)depth + 1, "", insig_bytes, ninsig, ninsig == 1 ? "" : "s",
            ninsig == 1 ? "below" : "all below", c->threshold);
  free(g);
}

/* One massif snapshot as text (in memory until every input is read). */
typedef struct entry_s {
  double time;     /* ms of tracing's clock, or the index once sorted by wall time */
  double wall;     /* when the snapshot was taken (seconds since the epoch) */
  uint64_t heap;   /* mem_heap_B */
  char *tree;      /* detailed tree text, or NULL for an empty tree */
  size_t order;    /* for a stable sort */
} entry_t;

static int entry_wall_cmp(const void *pa, const void *pb) {
  const entry_t *a = pa, *b = pb;
  if (a->wall != b->wall) return a->wall < b->wall ? -1 : 1;
  return a->order < b->order ? -1 : a->order > b->order;
}

static int entry_cmp(const void *pa, const void *pb) {
  const entry_t *a = pa, *b = pb;
  if (a->time != b->time) return a->time < b->time ? -1 : 1;
  if (a->wall != b->wall) return a->wall < b->wall ? -1 : 1;
  return a->order < b->order ? -1 : a->order > b->order;
}

/* The detailed tree of snapshot `s` as a malloc'd string; *total gets its top node's bytes. */
static char *tree_text(refgc_snapshot_t *s, double threshold, uint64_t *total) {
  size_t n = 0;
  tb_total_t *t = export_traceback_totals(s, &n, total);
  item_t *items = cli_xcalloc(n ? n : 1, sizeof *items);
  for (size_t i = 0; i < n; i++) {
    items[i].nf = refgc_snapshot_traceback(s, t[i].traceback, &items[i].frames);
    items[i].bytes = t[i].bytes;
  }
  char *text = NULL;
  size_t len = 0;
  FILE *m = open_memstream(&text, &len);
  if (!m) {
    cli_error("out of memory");
    exit(CLI_EXIT_USAGE);
  }
  tree_ctx_t c = {m, s, *total, threshold};
  write_node(&c, items, n, 0, *total,
             "(heap allocation functions) malloc/new/new[], --alloc-fns, etc.");
  fclose(m);
  free(items);
  free(t);
  return text;
}

int export_massif(FILE *f, char **paths, size_t npaths, const export_opts_t *o) {
  entry_t *e = NULL;
  size_t ne = 0, cap = 0;
  refgc_series_point_t *series = NULL;
  size_t nseries = 0;
  uint64_t pid0 = 0;
  int same_process = 1;
  double latest_uptime = -1;
  char *cmd = NULL;
  int rc = -1;
  cli_progress_t pr;
  cli_progress_begin(&pr, "reading snapshots");
  for (size_t i = 0; i < npaths; i++) {
    cli_progress_update(&pr, i, npaths);
    refgc_snapshot_t *s = cli_load(paths[i]);
    if (!s) goto out;
    refgc_snapshot_info_t in;
    if (cli_info(s, paths[i], &in) < 0) {
      refgc_snapshot_free(s);
      goto out;
    }
    if (i == 0) {
      pid0 = in.pid;
      cmd = cli_xstrdup(in.program && *in.program ? in.program : "(unknown)");
    } else if (in.pid != pid0) {
      same_process = 0;
    }
    if (in.frames == 0) cli_note("%s: tracing was off: its tree is empty", paths[i]);
    if (ne == cap) {
      cap = cap ? cap * 2 : 16;
      e = cli_xrealloc(e, cap * sizeof *e);
    }
    uint64_t total = 0;
    e[ne].tree = tree_text(s, o->threshold, &total);
    e[ne].heap = total;
    e[ne].time = in.uptime * 1000.0; /* replaced by the index when not one process */
    e[ne].wall = in.time;
    e[ne].order = ne;
    ne++;
    if (in.pid == pid0 && in.uptime > latest_uptime) {
      /* the series of the latest snapshot of the process holds the whole run */
      size_t np = 0;
      const refgc_series_point_t *pts = refgc_snapshot_series(s, &np);
      latest_uptime = in.uptime;
      free(series);
      series = NULL;
      nseries = 0;
      if (pts && np) {
        series = cli_xcalloc(np, sizeof *series);
        memcpy(series, pts, np * sizeof *series);
        nseries = np;
      }
    }
    refgc_snapshot_free(s);
  }
  cli_progress_end(&pr);
  if (pid0 == 0) same_process = npaths == 1;

  if (!same_process) {
    /* several processes: their clocks differ; number the snapshots in the order taken */
    if (ne) qsort(e, ne, sizeof *e, entry_wall_cmp);
    for (size_t i = 0; i < ne; i++) e[i].time = (double)i;
  } else if (nseries) {
    /* the series' points as empty snapshots: at most MAX_SERIES_POINTS, keeping the peak */
    size_t peak = 0;
    for (size_t i = 1; i < nseries; i++)
      if (series[i].traced > series[peak].traced) peak = i;
    size_t step = (nseries + MAX_SERIES_POINTS - 1) / MAX_SERIES_POINTS;
    if (step == 0) step = 1;
    e = cli_xrealloc(e, (ne + nseries / step + 2) * sizeof *e);
    for (size_t i = 0; i < nseries; i++) {
      if (i % step != 0 && i != peak) continue;
      e[ne].time = series[i].t * 1000.0;
      e[ne].wall = 0;
      e[ne].heap = series[i].traced;
      e[ne].tree = NULL;
      e[ne].order = ne;
      ne++;
    }
  }
  if (ne) qsort(e, ne, sizeof *e, entry_cmp);
  if (!cmd) cmd = cli_xstrdup("(unknown)");
  sanitize(cmd);
  fprintf(f, "desc: refgc export --format massif:");
  for (size_t i = 0; i < npaths; i++) {
    char *p = cli_xstrdup(paths[i]);
    sanitize(p);
    fprintf(f, " %s", p);
    free(p);
  }
  fprintf(f, "\ndesc: mem_heap_B: traced requested bytes of live blocks\n");
  fprintf(f, "cmd: %s\n", cmd);
  fprintf(f, "time_unit: %s\n", same_process ? "ms" : "i");
  for (size_t i = 0; i < ne; i++) {
    fprintf(f,
            "#-----------\nsnapshot=%zu\n#-----------\ntime=%lld\nmem_heap_B=%" PRIu64
            "\nmem_heap_extra_B=0\nmem_stacks_B=0\nheap_tree=%s\n",
            i, (long long)llround(e[i].time), e[i].heap, e[i].tree ? "detailed" : "empty");
    if (e[i].tree) fputs(e[i].tree, f);
  }
  rc = 0;
out:
  cli_progress_end(&pr);
  for (size_t i = 0; i < ne; i++) free(e[i].tree);
  free(e);
  free(series);
  free(cmd);
  return rc;
}
