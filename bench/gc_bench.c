/* gc_bench.c — cycle collector benchmarks for refgc (refgc/gc.h), with Boehm GC where a
 * tracing collector has a counterpart. CPython's side is in gc_bench.py.
 *
 * The same source is compiled once per variant:
 *
 *   -DBENCH_REFGC     refgc objects and its cycle collector (link librefgc.a -lpthread -ldl,
 *                     -Iinclude): every subcommand
 *   -DBENCH_BOEHM     Boehm–Demers–Weiser GC (-lgc): the `live` subcommand only
 *
 * Subcommands (one machine-readable "RESULT ..." line on stdout per run):
 *
 *   cycles [N [GEN]]          (a) N (1M) objects in N/2 two-cycles a <-> b, built with automatic
 *                             collection off the way a Python program builds them (each link
 *                             increfs, then the program's references are dropped: both objects
 *                             become candidate roots), then one refgc_collect(GEN) timed: GEN 2
 *                             (default) examines every tracked object (exhaustive), GEN 0 and 1
 *                             start from the candidate roots.
 *   cycles-old [N]            (a) the candidate-driven *old* collection: N objects in two-cycles
 *                             held by the program, promoted to generation 2 by an explicit
 *                             refgc_collect(2) (timed: a full collection of N live objects),
 *                             then dropped (N old candidate roots); an explicit
 *                             refgc_collect(0) files the old candidates (timed); then
 *                             thresholds 1/1/1 and one object created make the automatic
 *                             collection run, which is an old one (cands > old/4) started from
 *                             candidates: timed from the collection callbacks.
 *   live [N [REPEAT]]         (b) N (1M) live small tracked objects held by one list object, no
 *                             garbage; REPEAT (5) full collections, each timed. refgc:
 *                             refgc_collect(2); Boehm: GC_gcollect() on the same graph
 *                             (a GC_MALLOC'd array of N pointers to 16-byte GC_MALLOC blocks).
 *   build [N [SHAPE [STYLE [GC]]]]  (c) build a live heap of N (10M) objects with automatic
 *                             collection on. SHAPE "chain": a linked list, each new node holding
 *                             the previous head; "list": one growable list object that N small
 *                             objects are appended to. STYLE "own": idiomatic C, the new node
 *                             (or the list) takes over the creator's reference, no count churn;
 *                             "churn": Python-like, the link increfs and the temporary reference
 *                             is then decref'd (which makes a candidate root of every object).
 *                             GC "gc" (default), "nogc" (refgc_gc_disable()) or "t0" (threshold 0
 *                             set to 0, which also turns automatic collection off): the baselines.
 *                             Reports the build time, the time inside collections (START/STOP
 *                             callbacks) and the longest one.
 *   trees [MAXDEPTH [STYLE [GC]]]  (d) GCBench / binary-trees (the shape of object_bench.c's
 *                             `trees`: a stretch tree of depth MAXDEPTH+1, a long-lived tree of
 *                             depth MAXDEPTH and a long-lived array of 500,000 doubles, then for
 *                             d = 4, 6, ..., MAXDEPTH (16), 2^(MAXDEPTH-d+4) trees of depth d
 *                             built, checked and dropped) with automatic collection on; STYLE
 *                             "own": a parent takes over its children's references (as in
 *                             object_bench.c); "churn": a parent increfs its children and the
 *                             temporaries are decref'd, as `Node(make(d-1), make(d-1))` does in
 *                             Python. GC as for build.
 *   name                      print the variant's name.
 *
 * Object types (refgc): node {header, next} (16 bytes) with traverse and clear hooks; list
 * {header, n, cap, items} (32 bytes) whose items live in a refgc_malloc'd array (traverse,
 * clear and release hooks); tree node {header, left, right} (24 bytes). No free lists
 * (freelist_max 0).
 *
 * Build: cc -O2 -std=c11 -Wall -Wextra -Wshadow -Wstrict-prototypes gc_bench.c
 *        -DBENCH_REFGC -I../include librefgc.a -lpthread -ldl
 *        (or -DBENCH_BOEHM ... -lgc -lpthread)
 */
#define _GNU_SOURCE 1

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#if defined(BENCH_REFGC)
#include "refgc.h"
#define VARIANT_NAME "refgc"
#elif defined(BENCH_BOEHM)
#define GC_THREADS 1 /* the documented way to include gc.h with a threaded libgc */
#include <gc.h>
#define VARIANT_NAME "boehm"
#else
#error "define BENCH_REFGC or BENCH_BOEHM"
#endif

#define BENCH_PROG "gc_bench"
#define BENCH_NAME VARIANT_NAME
#include "bench_common.h"

/* ---------------------------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------------------------ */

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Median of v[0..n) (sorts v). */
static double median(double *v, size_t n) {
  if (n == 0) return 0.0;
  qsort(v, n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

#if defined(BENCH_REFGC)

/* ---------------------------------------------------------------------------------------------
 * refgc: types
 * ------------------------------------------------------------------------------------------ */

typedef struct node_s {
  refgc_object_t ob;
  struct node_s *next;
} node_t;

typedef struct list_s {
  refgc_object_t ob;
  size_t n, cap;
  refgc_object_t **items; /* refgc_malloc'd */
} list_t;

typedef struct tnode_s {
  refgc_object_t ob;
  struct tnode_s *left, *right;
} tnode_t;

static const refgc_type_t *node_type, *list_type, *tnode_type;

static void node_traverse(refgc_object_t *self, refgc_visit_fn *visit, void *arg) {
  node_t *n = (node_t *)self;
  if (n->next) visit(&n->next->ob, arg);
}

static void node_clear(refgc_object_t *self) {
  node_t *n = (node_t *)self;
  node_t *old = n->next;
  n->next = NULL;
  if (old) refgc_decref(&old->ob);
}

static void list_traverse(refgc_object_t *self, refgc_visit_fn *visit, void *arg) {
  list_t *l = (list_t *)self;
  for (size_t i = 0; i < l->n; i++) visit(l->items[i], arg);
}

static void list_clear(refgc_object_t *self) {
  list_t *l = (list_t *)self;
  size_t n = l->n;
  refgc_object_t **items = l->items;
  l->n = 0;
  l->items = NULL;
  l->cap = 0;
  for (size_t i = 0; i < n; i++) refgc_xdecref(items[i]);
  refgc_free(items);
}

static void list_release(refgc_object_t *self) {
  list_t *l = (list_t *)self;
  refgc_free(l->items);
  l->items = NULL;
}

static void tnode_traverse(refgc_object_t *self, refgc_visit_fn *visit, void *arg) {
  tnode_t *t = (tnode_t *)self;
  if (t->left) visit(&t->left->ob, arg);
  if (t->right) visit(&t->right->ob, arg);
}

static void tnode_clear(refgc_object_t *self) {
  tnode_t *t = (tnode_t *)self;
  tnode_t *l = t->left, *r = t->right;
  t->left = t->right = NULL;
  if (l) refgc_decref(&l->ob);
  if (r) refgc_decref(&r->ob);
}

static const refgc_type_t *register_type(const char *name, size_t size, refgc_traverse_fn *trav,
                                         refgc_clear_fn *clear, refgc_release_fn *release) {
  refgc_type_spec_t spec;
  memset(&spec, 0, sizeof spec);
  spec.version = REFGC_TYPE_SPEC_VERSION;
  spec.name = name;
  spec.basic_size = size;
  spec.traverse = trav;
  spec.clear = clear;
  spec.release = release;
  spec.freelist_max = 0;
  const refgc_type_t *t = refgc_type_register(&spec);
  if (t == NULL) die("refgc_type_register failed");
  return t;
}

static void register_types(void) {
  node_type = register_type("node", sizeof(node_t), node_traverse, node_clear, NULL);
  list_type = register_type("list", sizeof(list_t), list_traverse, list_clear, list_release);
  tnode_type = register_type("tree_node", sizeof(tnode_t), tnode_traverse, tnode_clear, NULL);
}

static refgc_object_t *xnew(const refgc_type_t *t) {
  refgc_object_t *o = refgc_new(t);
  if (o == NULL) die("refgc_new failed");
  return o;
}

static node_t *node_new(void) { return (node_t *)xnew(node_type); }

static list_t *list_new(size_t cap) {
  list_t *l = (list_t *)xnew(list_type);
  if (cap) {
    l->items = refgc_malloc(cap * sizeof *l->items);
    if (l->items == NULL) die("refgc_malloc failed");
    l->cap = cap;
  }
  return l;
}

/* Append, taking over the caller's reference to `o` (steal). */
static void list_append_steal(list_t *l, refgc_object_t *o) {
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 8;
    refgc_object_t **grown = refgc_realloc(l->items, cap * sizeof *grown);
    if (grown == NULL) die("refgc_realloc failed");
    l->items = grown;
    l->cap = cap;
  }
  l->items[l->n++] = o;
}

/* ---------------------------------------------------------------------------------------------
 * refgc: watching collections through the callbacks
 * ------------------------------------------------------------------------------------------ */

typedef struct watch_s {
  double t_start;
  double total;        /* seconds inside collections (START to STOP) */
  double max;          /* the longest one */
  int max_gen;         /* its generation */
  size_t max_examined; /* what it examined */
  long count[3];       /* collections per generation */
  double secs[3];      /* seconds per generation */
  uint64_t examined;   /* objects examined, all collections */
  uint64_t unreachable;
  refgc_gc_result_t last; /* the last collection's result */
} watch_t;

static watch_t watch;

static void watch_cb(int phase, const refgc_gc_result_t *info, void *arg) {
  watch_t *w = arg;
  if (phase == REFGC_GC_START) {
    w->t_start = now_sec();
    return;
  }
  double d = now_sec() - w->t_start;
  int g = info->generation >= 0 && info->generation < 3 ? info->generation : 2;
  w->total += d;
  w->count[g]++;
  w->secs[g] += d;
  w->examined += info->examined;
  w->unreachable += info->unreachable;
  if (d > w->max) {
    w->max = d;
    w->max_gen = g;
    w->max_examined = info->examined;
  }
  w->last = *info;
}

static void watch_start(void) {
  memset(&watch, 0, sizeof watch);
  watch.max_gen = -1;
  if (refgc_gc_callback_add(watch_cb, &watch) != 0) die("refgc_gc_callback_add failed");
}

/* " gc_seconds=... gc_max_pause=..." from the callbacks, and the same from refgc_gc_get_stats
 * (stats_*: the library's own figures, for a cross-check). */
static void watch_format(char *out, size_t len) {
  refgc_gc_gen_stats_t st[3];
  refgc_gc_get_stats(st);
  double ssum = st[0].seconds + st[1].seconds + st[2].seconds;
  double smax = st[0].max_pause;
  for (int g = 1; g < 3; g++)
    if (st[g].max_pause > smax) smax = st[g].max_pause;
  snprintf(out, len,
           " gc_seconds=%.6f gc_max_pause=%.6f gc_max_gen=%d gc_max_examined=%zu "
           "gc_n0=%ld gc_n1=%ld gc_n2=%ld gc_s0=%.6f gc_s1=%.6f gc_s2=%.6f "
           "gc_examined=%llu gc_unreachable=%llu stats_seconds=%.6f stats_max_pause=%.6f "
           "stats_objects0=%zu stats_objects1=%zu stats_objects2=%zu",
           watch.total, watch.max, watch.max_gen, watch.max_examined, watch.count[0],
           watch.count[1], watch.count[2], watch.secs[0], watch.secs[1], watch.secs[2],
           (unsigned long long)watch.examined, (unsigned long long)watch.unreachable, ssum, smax,
           st[0].objects, st[1].objects, st[2].objects);
}

/* "gc": automatic collection on (the default); "nogc": refgc_gc_disable(); "t0": threshold 0
 * set to 0 (refgc_gc_set_threshold: "threshold0 = 0 disables automatic collection"), the other
 * two kept. */
static void set_gc(const char *gc) {
  if (strcmp(gc, "gc") == 0) {
    refgc_gc_enable();
    return;
  }
  if (strcmp(gc, "t0") == 0) {
    size_t t[3];
    refgc_gc_get_threshold(t);
    refgc_gc_set_threshold(0, t[1], t[2]);
    return;
  }
  if (strcmp(gc, "nogc") != 0) die("GC is gc, nogc or t0");
  refgc_gc_disable();
}

static size_t live_nodes(void) {
  refgc_type_stats_t ts;
  if (refgc_type_stats(node_type, &ts) != 0) die("refgc_type_stats failed");
  return ts.live;
}

/* ---------------------------------------------------------------------------------------------
 * (a) cycles
 * ------------------------------------------------------------------------------------------ */

/* Build n/2 pairs a <-> b as Python does (`a.x = b; b.x = a; del a, b`): every link increfs,
 * every drop decrefs (to 1: both objects become candidate roots). `keep`: store the program's
 * references there instead of dropping them. */
static void build_pairs(long n, node_t **keep) {
  for (long i = 0; i < n / 2; i++) {
    node_t *a = node_new(), *b = node_new();
    a->next = b;
    refgc_incref(&b->ob);
    b->next = a;
    refgc_incref(&a->ob);
    if (keep) {
      keep[2 * i] = a;
      keep[2 * i + 1] = b;
    } else {
      refgc_decref(&a->ob);
      refgc_decref(&b->ob);
    }
  }
}

static void report_collect(const char *bench, long n, int gen, double secs, double cpu,
                           long ret, const refgc_gc_result_t *r, double build_s,
                           const char *extra) {
  printf("RESULT variant=refgc bench=%s n=%ld gen=%d seconds=%.6f cpu_seconds=%.4f "
         "ns_per_object=%.3f returned=%ld examined=%zu unreachable=%zu collected=%zu "
         "lib_seconds=%.6f build_seconds=%.4f left=%zu peak_rss_mb=%.1f%s\n",
         bench, n, gen, secs, cpu, secs * 1e9 / (double)n, ret, r->examined, r->unreachable,
         r->collected, r->seconds, build_s, live_nodes(), peak_rss_mb(), extra);
}

static int bench_cycles(long n, int gen) {
  refgc_gc_disable(); /* as CPython's gc.disable() while building */
  double b0 = now_sec();
  build_pairs(n, NULL);
  double b1 = now_sec();
  refgc_gc_result_t r;
  memset(&r, 0, sizeof r);
  double c0 = cpu_sec();
  double t0 = now_sec();
  long ret = refgc_collect(gen, &r);
  double t1 = now_sec();
  double c1 = cpu_sec();
  if (ret < 0) die("refgc_collect failed");
  report_collect("cycles", n, gen, t1 - t0, c1 - c0, ret, &r, b1 - b0, "");
  return 0;
}

static int bench_cycles_old(long n) {
  refgc_gc_disable();
  node_t **keep = malloc((size_t)n * sizeof *keep);
  if (keep == NULL) die("malloc failed");
  double b0 = now_sec();
  build_pairs(n, keep);
  double b1 = now_sec();
  /* promote everything to generation 2 (a full collection of n live objects) */
  refgc_gc_result_t rp;
  double p0 = now_sec();
  if (refgc_collect(2, &rp) != 0) die("promotion: the pairs were found unreachable");
  double p1 = now_sec();
  for (long i = 0; i < n; i++) refgc_decref(&keep[i]->ob);
  free(keep);
  /* a young collection files the n old candidate roots under generation 2 */
  refgc_gc_result_t rf;
  double f0 = now_sec();
  if (refgc_collect(0, &rf) < 0) die("refgc_collect(0) failed");
  double f1 = now_sec();
  /* now the automatic collection: thresholds 1/1/1 and creations until it ran */
  watch_start();
  refgc_gc_set_threshold(1, 1, 1);
  refgc_gc_enable();
  double c0 = cpu_sec();
  double t0 = now_sec();
  node_t *probe[8];
  int np = 0;
  while (np < 8 && watch.count[2] == 0) probe[np++] = node_new();
  double t1 = now_sec();
  double c1 = cpu_sec();
  refgc_gc_disable();
  for (int i = 0; i < np; i++) refgc_decref(&probe[i]->ob);
  if (watch.count[2] == 0) die("cycles-old: no automatic old collection ran");
  char extra[512];
  snprintf(extra, sizeof extra,
           " promote_seconds=%.6f promote_examined=%zu file_seconds=%.6f file_examined=%zu "
           "auto_collections=%ld/%ld/%ld auto_gc_seconds=%.6f creations=%d",
           p1 - p0, rp.examined, f1 - f0, rf.examined, watch.count[0], watch.count[1],
           watch.count[2], watch.total, np);
  refgc_gc_result_t last = watch.last;
  /* the figure: the old collection alone, from its callbacks (the other collections the
   * creations may have triggered first are in auto_gc_seconds) */
  double old_s = watch.secs[2];
  (void)t0;
  (void)t1;
  report_collect("cycles-old", n, 2, old_s, c1 - c0, (long)last.unreachable, &last, b1 - b0,
                 extra);
  return 0;
}

/* ---------------------------------------------------------------------------------------------
 * (b) live
 * ------------------------------------------------------------------------------------------ */

static int bench_live(long n, int repeat) {
  refgc_gc_disable();
  double b0 = now_sec();
  list_t *l = list_new((size_t)n);
  for (long i = 0; i < n; i++) list_append_steal(l, &node_new()->ob);
  double b1 = now_sec();
  double *secs = calloc((size_t)repeat, sizeof *secs);
  if (secs == NULL) die("calloc failed");
  refgc_gc_result_t r, first;
  memset(&first, 0, sizeof first);
  double c0 = cpu_sec();
  for (int k = 0; k < repeat; k++) {
    double t0 = now_sec();
    long ret = refgc_collect(2, &r);
    secs[k] = now_sec() - t0;
    if (ret != 0) die("live: a full collection found garbage");
    if (k == 0) first = r;
  }
  double c1 = cpu_sec();
  double first_s = secs[0];
  double steady = repeat > 1 ? median(secs + 1, (size_t)repeat - 1) : secs[0];
  if (live_nodes() != (size_t)n) die("live: objects were lost");
  char extra[256];
  snprintf(extra, sizeof extra,
           " repeat=%d first_seconds=%.6f first_ns_per_object=%.3f first_examined=%zu",
           repeat, first_s, first_s * 1e9 / (double)n, first.examined);
  report_collect("live", n, 2, steady, (c1 - c0) / repeat, 0, &r, b1 - b0, extra);
  refgc_decref(&l->ob);
  free(secs);
  return 0;
}

/* ---------------------------------------------------------------------------------------------
 * (c) build
 * ------------------------------------------------------------------------------------------ */

static int bench_build(long n, const char *shape, const char *style, const char *gc) {
  int chain = strcmp(shape, "chain") == 0;
  int churn = strcmp(style, "churn") == 0;
  if (!chain && strcmp(shape, "list") != 0) die("build: SHAPE is chain or list");
  if (!churn && strcmp(style, "own") != 0) die("build: STYLE is own or churn");
  set_gc(gc);
  watch_start();
  node_t *head = NULL;
  list_t *l = chain ? NULL : list_new(0);
  double c0 = cpu_sec();
  double t0 = now_sec();
  if (chain && !churn) {
    for (long i = 0; i < n; i++) {
      node_t *x = node_new();
      x->next = head; /* x takes over the reference to the old head */
      head = x;
    }
  } else if (chain) {
    for (long i = 0; i < n; i++) {
      node_t *x = node_new();
      x->next = head; /* x.next = head: a new reference ... */
      if (head) {
        refgc_incref(&head->ob);
        refgc_decref(&head->ob); /* ... and head = x drops the old one */
      }
      head = x;
    }
  } else if (!churn) {
    for (long i = 0; i < n; i++) list_append_steal(l, &node_new()->ob);
  } else {
    for (long i = 0; i < n; i++) {
      node_t *x = node_new();
      refgc_incref(&x->ob); /* lst.append(x) */
      list_append_steal(l, &x->ob);
      refgc_decref(&x->ob); /* the temporary goes */
    }
  }
  double t1 = now_sec();
  double c1 = cpu_sec();
  char wx[1024];
  watch_format(wx, sizeof wx);
  double rss = peak_rss_mb();
  size_t live = live_nodes();
  refgc_gc_disable(); /* teardown is not what is measured */
  double d0 = now_sec();
  if (chain)
    refgc_decref(&head->ob);
  else
    refgc_decref(&l->ob);
  double d1 = now_sec();
  if (live != (size_t)n) die("build: objects were lost");
  printf("RESULT variant=refgc bench=build shape=%s style=%s gc=%s n=%ld seconds=%.5f "
         "cpu_seconds=%.4f ns_per_object=%.3f drop_seconds=%.4f peak_rss_mb=%.1f%s\n",
         shape, style, gc, n, t1 - t0, c1 - c0, (t1 - t0) * 1e9 / (double)n, d1 - d0, rss, wx);
  return 0;
}

/* ---------------------------------------------------------------------------------------------
 * (d) trees
 * ------------------------------------------------------------------------------------------ */

#define MIN_DEPTH 4
#define ARRAY_LEN 500000

static tnode_t *tree_own(int depth) {
  tnode_t *t = (tnode_t *)xnew(tnode_type);
  if (depth > 0) {
    t->left = tree_own(depth - 1);
    t->right = tree_own(depth - 1);
  }
  return t;
}

/* Python's `Node(make(d - 1), make(d - 1))`: the node increfs its children, then the two
 * temporaries are dropped. */
static tnode_t *tree_churn(int depth) {
  if (depth == 0) return (tnode_t *)xnew(tnode_type);
  tnode_t *l = tree_churn(depth - 1);
  tnode_t *r = tree_churn(depth - 1);
  tnode_t *t = (tnode_t *)xnew(tnode_type);
  t->left = l;
  refgc_incref(&l->ob);
  t->right = r;
  refgc_incref(&r->ob);
  refgc_decref(&l->ob);
  refgc_decref(&r->ob);
  return t;
}

static long tree_check(const tnode_t *t) {
  if (t->left == NULL) return 1;
  return 1 + tree_check(t->left) + tree_check(t->right);
}

static int bench_trees(int max_depth, const char *style, const char *gc) {
  int churn = strcmp(style, "churn") == 0;
  if (!churn && strcmp(style, "own") != 0) die("trees: STYLE is own or churn");
  tnode_t *(*make)(int) = churn ? tree_churn : tree_own;
  set_gc(gc);
  watch_start();
  long check = 0, nodes = 0;
  double c0 = cpu_sec();
  double t0 = now_sec();
  tnode_t *stretch = make(max_depth + 1);
  check += tree_check(stretch);
  refgc_decref(&stretch->ob);
  tnode_t *long_lived = make(max_depth);
  double *array = refgc_malloc(ARRAY_LEN * sizeof *array);
  if (array == NULL) die("refgc_malloc failed");
  for (long i = 0; i < ARRAY_LEN / 2; i++) array[i] = 1.0 / (double)(i + 1);
  for (int d = MIN_DEPTH; d <= max_depth; d += 2) {
    long iters = 1L << (max_depth - d + MIN_DEPTH);
    for (long i = 0; i < iters; i++) {
      tnode_t *t = make(d);
      check += tree_check(t);
      refgc_decref(&t->ob);
    }
    nodes += iters * ((2L << d) - 1);
  }
  check += tree_check(long_lived);
  if (array[1000] != 1.0 / 1001.0) die("trees: the long-lived array was overwritten");
  refgc_decref(&long_lived->ob);
  refgc_free(array);
  nodes += (2L << (max_depth + 1)) - 1 + (2L << max_depth) - 1;
  double t1 = now_sec();
  double c1 = cpu_sec();
  if (check != nodes) die("trees: node count mismatch");
  char wx[1024];
  watch_format(wx, sizeof wx);
  printf("RESULT variant=refgc bench=trees style=%s gc=%s max_depth=%d n=%ld seconds=%.5f "
         "cpu_seconds=%.4f ns_per_object=%.3f peak_rss_mb=%.1f%s\n",
         style, gc, max_depth, nodes, t1 - t0, c1 - c0, (t1 - t0) * 1e9 / (double)nodes,
         peak_rss_mb(), wx);
  return 0;
}

#else /* BENCH_BOEHM */

/* ---------------------------------------------------------------------------------------------
 * Boehm: (b) live only
 * ------------------------------------------------------------------------------------------ */

typedef struct bnode_s {
  uint64_t header; /* written as refgc_new writes its header */
  struct bnode_s *next;
} bnode_t;

static int bench_live(long n, int repeat) {
  double b0 = now_sec();
  bnode_t **arr = GC_MALLOC((size_t)n * sizeof *arr);
  if (arr == NULL) die("GC_MALLOC failed");
  for (long i = 0; i < n; i++) {
    bnode_t *b = GC_MALLOC(sizeof *b);
    if (b == NULL) die("GC_MALLOC failed");
    b->header = 1;
    b->next = NULL;
    arr[i] = b;
  }
  double b1 = now_sec();
  double *secs = calloc((size_t)repeat, sizeof *secs);
  if (secs == NULL) die("calloc failed");
  unsigned long gc0 = (unsigned long)GC_get_gc_no();
  double c0 = cpu_sec();
  for (int k = 0; k < repeat; k++) {
    double t0 = now_sec();
    GC_gcollect();
    secs[k] = now_sec() - t0;
  }
  double c1 = cpu_sec();
  for (long i = 0; i < n; i += 4096)
    if (arr[i]->header != 1) die("live: a live object was reclaimed");
  double first_s = secs[0];
  double steady = repeat > 1 ? median(secs + 1, (size_t)repeat - 1) : secs[0];
  printf("RESULT variant=boehm bench=live n=%ld gen=2 seconds=%.6f cpu_seconds=%.4f "
         "ns_per_object=%.3f repeat=%d first_seconds=%.6f first_ns_per_object=%.3f "
         "build_seconds=%.4f gc_count_before=%lu gc_count=%lu gc_heap_mb=%.1f gc_parallel=%d "
         "peak_rss_mb=%.1f\n",
         n, steady, (c1 - c0) / repeat, steady * 1e9 / (double)n, repeat, first_s,
         first_s * 1e9 / (double)n, b1 - b0, gc0, (unsigned long)GC_get_gc_no(),
         (double)GC_get_heap_size() / (1024.0 * 1024.0), GC_get_parallel(), peak_rss_mb());
  free(secs);
  return 0;
}

#endif

/* ---------------------------------------------------------------------------------------------
 * main
 * ------------------------------------------------------------------------------------------ */

static void usage(void) {
  fprintf(stderr,
          "usage: gc_bench cycles [N [GEN]]                       (refgc)\n"
          "       gc_bench cycles-old [N]                         (refgc)\n"
          "       gc_bench live [N [REPEAT]]                      (refgc, boehm)\n"
          "       gc_bench build [N [chain|list [own|churn [gc|nogc|t0]]]]   (refgc)\n"
          "       gc_bench trees [MAXDEPTH [own|churn [gc|nogc|t0]]]        (refgc)\n"
          "       gc_bench name\n");
  exit(2);
}

int main(int argc, char **argv) {
  if (argc < 2) usage();
  const char *cmd = argv[1];
  if (strcmp(cmd, "name") == 0) {
    printf("%s\n", VARIANT_NAME);
    return 0;
  }
#if defined(BENCH_BOEHM)
  GC_INIT();
  if (strcmp(cmd, "live") == 0) {
    long n = argc > 2 ? parse_long(argv[2], "N", 1) : 1000000L;
    long rep = argc > 3 ? parse_long(argv[3], "REPEAT", 1) : 5;
    return bench_live(n, (int)rep);
  }
  usage();
#else
  register_types();
  if (strcmp(cmd, "cycles") == 0) {
    long n = argc > 2 ? parse_long(argv[2], "N", 2) : 1000000L;
    long gen = argc > 3 ? parse_long(argv[3], "GEN", 0) : 2;
    if (gen > 2) usage();
    return bench_cycles(n, (int)gen);
  }
  if (strcmp(cmd, "cycles-old") == 0) {
    long n = argc > 2 ? parse_long(argv[2], "N", 2) : 1000000L;
    return bench_cycles_old(n);
  }
  if (strcmp(cmd, "live") == 0) {
    long n = argc > 2 ? parse_long(argv[2], "N", 1) : 1000000L;
    long rep = argc > 3 ? parse_long(argv[3], "REPEAT", 1) : 5;
    if (rep > 1000) usage();
    return bench_live(n, (int)rep);
  }
  if (strcmp(cmd, "build") == 0) {
    long n = argc > 2 ? parse_long(argv[2], "N", 1) : 10000000L;
    const char *shape = argc > 3 ? argv[3] : "chain";
    const char *style = argc > 4 ? argv[4] : "own";
    const char *gc = argc > 5 ? argv[5] : "gc";
    return bench_build(n, shape, style, gc);
  }
  if (strcmp(cmd, "trees") == 0) {
    long depth = argc > 2 ? parse_long(argv[2], "MAXDEPTH", MIN_DEPTH) : 16;
    const char *style = argc > 3 ? argv[3] : "own";
    const char *gc = argc > 4 ? argv[4] : "gc";
    if (depth > 24) usage();
    return bench_trees((int)depth, style, gc);
  }
  usage();
#endif
  return 2;
}
