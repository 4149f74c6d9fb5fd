/* trace_bench.c — the cost of allocation tracing (refgc/trace.h) on allocation-heavy work.
 *
 * One binary; the first argument says how allocation is traced, so every mode runs the same
 * machine code:
 *
 *   off                 refgc, tracing off
 *   trace:F             refgc, refgc_trace_start(F) (F frames kept)
 *   sample:F:BYTES      refgc, refgc_trace_start_sampled(F, BYTES, 0x5EED)
 *   libc                glibc malloc / free instead of refgc (for heaptrack, which intercepts
 *                       the C library's allocator only); objects are 16-byte malloc blocks
 *
 * REFGC_TRACE_UNWIND=dwarf in the environment makes trace:F and sample:F:B unwind with the C
 * library's backtrace() instead of the frame-pointer chain.
 *
 * Workloads (one "RESULT ..." line on stdout per run). Every allocation is made DEPTH calls
 * below the workload's loop, through a chain of distinct non-inlined functions: each level
 * calls the next from one of two call sites, picked by one bit of a path number, so a workload
 * allocates from as many distinct stacks as it has paths (innermost levels use the low bits).
 *
 *   heap STEPS LIVE DEPTH      heap_bench's churn: LIVE (10,000) blocks of 8..512 B live; each
 *                              step frees a random one and allocates a new one (first and last
 *                              byte written). Batches of 64 steps are made at the bottom of the
 *                              chain, along one of 8 paths in turn. One op = one free + malloc.
 *   objects N FREELIST DEPTH   object_bench's churn: create and drop N objects of 16 bytes
 *                              (header + one pointer, a traverse hook, a free list of FREELIST
 *                              (80) instances, 0: none), one alive at a time, in batches of 64
 *                              along one of 8 paths. One op = refgc_new + refgc_decref. libc:
 *                              16-byte malloc + free pairs that write two words.
 *   trees MAXDEPTH DEPTH       object_bench's trees (binary-trees with GCBench's long-lived
 *                              tree and array), run at the bottom of the chain: the tree
 *                              recursion adds up to MAXDEPTH+1 frames. One op = one node.
 *   memory N SITES DEPTH KIND  N small blocks (KIND blocks: refgc_malloc of 16..128 B; KIND
 *                              objects: 16-byte objects) kept alive at once, allocated in
 *                              batches of 16 along paths 0, 1, ..., SITES-1 in turn; reports
 *                              refgc_trace_memory(), refgc_trace_count() and the distinct
 *                              tracebacks (from a snapshot).
 *
 * Build: cc -O2 -std=c11 -fno-omit-frame-pointer -I include trace_bench.c librefgc.a
 *        -lpthread -ldl -lm [-ldw -lelf]
 * (frame pointers: the tracer's default unwinder walks them, as docs/design.md says programs
 * that link refgc should keep them.)
 */
#define _GNU_SOURCE 1

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "refgc.h"

#define BENCH_PROG "trace_bench"
#define BENCH_NAME "refgc"
#include "bench_common.h"

#define NOINLINE __attribute__((noinline, noclone))
#define ESCAPE(p) __asm__ volatile("" : : "r"(p) : "memory")

/* ---------------------------------------------------------------------------------------------
 * Mode
 * ------------------------------------------------------------------------------------------ */

static int use_libc;       /* allocate with malloc / free */
static int mode_frames;    /* 0: tracing off */
static long mode_sample;   /* sampling mean in bytes (0: every allocation) */
static const char *mode_name;

static void parse_mode(const char *m) {
  mode_name = m;
  if (strcmp(m, "off") == 0) return;
  if (strcmp(m, "libc") == 0) {
    use_libc = 1;
    return;
  }
  int f = 0;
  long b = 0;
  char tail;
  if (sscanf(m, "trace:%d%c", &f, &tail) == 1 && f >= 1 && f <= REFGC_TRACE_MAX_FRAMES) {
    mode_frames = f;
    return;
  }
  if (sscanf(m, "sample:%d:%ld%c", &f, &b, &tail) == 2 && f >= 1 &&
      f <= REFGC_TRACE_MAX_FRAMES && b >= 1) {
    mode_frames = f;
    mode_sample = b;
    return;
  }
  fprintf(stderr, "trace_bench: bad mode %s (off, libc, trace:F, sample:F:BYTES)\n", m);
  exit(2);
}

static void start_tracing(void) {
  if (!mode_frames) return;
  int rc = mode_sample ? refgc_trace_start_sampled(mode_frames, (size_t)mode_sample, 0x5EED)
                       : refgc_trace_start(mode_frames);
  if (rc != 0) die("refgc_trace_start failed");
}

static const char *unwinder(void) {
  const char *u = getenv("REFGC_TRACE_UNWIND");
  return u && *u ? u : "fp";
}

static void *xalloc(size_t n) {
  void *p = use_libc ? malloc(n) : refgc_malloc(n);
  if (!p) die("allocation failed");
  return p;
}

static void xfree(void *p) {
  if (use_libc)
    free(p);
  else
    refgc_free(p);
}

/* ---------------------------------------------------------------------------------------------
 * The call chain: level0 .. level19, then the workload's leaf
 * ------------------------------------------------------------------------------------------ */

#define CHAIN_MAX 20

typedef struct chain_s {
  void (*leaf)(struct chain_s *);
  unsigned path;
  unsigned long visits; /* written on both sides of every call: the two call sites differ */
} chain_t;

typedef void level_fn(chain_t *);

/* Level i calls level i+1 (the last one calls the leaf) from one of two call sites, chosen by
 * bit (CHAIN_MAX-1-i) of the path: the innermost levels read the lowest bits. The code around
 * the two calls differs, so the compiler cannot merge them, and runs after them, so neither
 * is a tail call. */
#define LEVEL(i, next)                                                                      \
  static NOINLINE void level##i(chain_t *c) {                                              \
    if ((c->path >> (CHAIN_MAX - 1 - (i))) & 1u) {                                         \
      c->visits += 3;                                                                       \
      next(c);                                                                              \
      c->visits ^= 1;                                                                       \
    } else {                                                                                \
      c->visits += 5;                                                                       \
      next(c);                                                                              \
      c->visits ^= 2;                                                                       \
    }                                                                                       \
    ESCAPE(c);                                                                              \
  }

static NOINLINE void call_leaf(chain_t *c) {
  c->leaf(c);
  ESCAPE(c);
}

LEVEL(19, call_leaf)
LEVEL(18, level19)
LEVEL(17, level18)
LEVEL(16, level17)
LEVEL(15, level16)
LEVEL(14, level15)
LEVEL(13, level14)
LEVEL(12, level13)
LEVEL(11, level12)
LEVEL(10, level11)
LEVEL(9, level10)
LEVEL(8, level9)
LEVEL(7, level8)
LEVEL(6, level7)
LEVEL(5, level6)
LEVEL(4, level5)
LEVEL(3, level4)
LEVEL(2, level3)
LEVEL(1, level2)
LEVEL(0, level1)

static level_fn *const levels[CHAIN_MAX] = {
    level0,  level1,  level2,  level3,  level4,  level5,  level6,  level7,  level8,  level9,
    level10, level11, level12, level13, level14, level15, level16, level17, level18, level19};

/* Run c->leaf `depth` calls deep (depth 0: directly). */
static void descend(chain_t *c, int depth) {
  if (depth <= 0)
    c->leaf(c);
  else
    levels[CHAIN_MAX - depth](c);
}

static int parse_depth(const char *s) {
  long d = parse_long(s, "DEPTH", 0);
  if (d > CHAIN_MAX) {
    fprintf(stderr, "trace_bench: DEPTH is at most %d\n", CHAIN_MAX);
    exit(2);
  }
  return (int)d;
}

/* ---------------------------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------------------------ */

typedef struct {
  uint64_t s;
} rng_t;

static inline uint64_t rng_next(rng_t *r) {
  uint64_t z = (r->s += UINT64_C(0x9E3779B97F4A7C15));
  z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
  z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
  return z ^ (z >> 31);
}

static inline uint32_t rng_below(rng_t *r, uint32_t n) {
  return (uint32_t)(((rng_next(r) >> 32) * (uint64_t)n) >> 32);
}

/* The tracer's figures, appended to every RESULT line. `probe`: a live block whose traceback
 * depth is reported (frames actually captured). */
static void trace_fields(char *buf, size_t len, const void *probe) {
  if (!mode_frames) {
    snprintf(buf, len, " trace_count=0 trace_memory=0 probe_frames=0");
    return;
  }
  void *frames[REFGC_TRACE_MAX_FRAMES];
  int nf = probe ? refgc_trace_traceback(probe, frames, REFGC_TRACE_MAX_FRAMES) : 0;
  snprintf(buf, len, " trace_count=%zu trace_memory=%zu probe_frames=%d",
           refgc_trace_count(), refgc_trace_memory(), nf);
}

static void report(const char *bench, long ops, double secs, double cpu, const char *extra) {
  printf("RESULT mode=%s unwind=%s bench=%s ops=%ld seconds=%.5f cpu_seconds=%.5f "
         "ns_per_op=%.3f peak_rss_mb=%.1f%s\n",
         mode_name, mode_frames ? unwinder() : "none", bench, ops, secs, cpu,
         secs * 1e9 / (double)ops, peak_rss_mb(), extra);
}

/* ---------------------------------------------------------------------------------------------
 * heap: heap_bench's churn from DEPTH calls down
 * ------------------------------------------------------------------------------------------ */

#define HEAP_BATCH 64
#define HEAP_PATHS 8

typedef struct heap_ctx_s {
  chain_t c;
  unsigned char **slot;
  uint32_t live;
  long todo;
  rng_t r;
  unsigned sink;
  long step;
} heap_ctx_t;

static NOINLINE void heap_leaf(chain_t *c) {
  heap_ctx_t *h = (heap_ctx_t *)c;
  long n = h->todo < HEAP_BATCH ? h->todo : HEAP_BATCH;
  for (long i = 0; i < n; i++) {
    uint32_t k = rng_below(&h->r, h->live);
    unsigned char *old = h->slot[k];
    h->sink += old[0];
    xfree(old);
    size_t sz = 8 + rng_below(&h->r, 505);
    unsigned char *p = xalloc(sz);
    p[0] = (unsigned char)h->step++;
    p[sz - 1] = (unsigned char)sz;
    h->slot[k] = p;
  }
  h->todo -= n;
}

static NOINLINE void heap_fill_leaf(chain_t *c) {
  heap_ctx_t *h = (heap_ctx_t *)c;
  for (uint32_t i = 0; i < h->live; i++) {
    size_t sz = 8 + rng_below(&h->r, 505);
    unsigned char *p = xalloc(sz);
    p[0] = (unsigned char)i;
    p[sz - 1] = (unsigned char)sz;
    h->slot[i] = p;
  }
}

static void heap_run(heap_ctx_t *h, long steps, int depth) {
  h->todo = steps;
  for (unsigned b = 0; h->todo > 0; b++) {
    h->c.path = b % HEAP_PATHS;
    descend(&h->c, depth);
  }
}

/* The timed parts are functions of their own, named measured_*: callgrind's
 * --toggle-collect='measured_*' counts them alone (the driver's profile). */
static NOINLINE void measured_heap(heap_ctx_t *h, long steps, int depth) {
  heap_run(h, steps, depth);
  ESCAPE(h);
}

static int bench_heap(long steps, long live, int depth) {
  heap_ctx_t h;
  memset(&h, 0, sizeof h);
  h.live = (uint32_t)live;
  h.slot = xmmap((size_t)live * sizeof *h.slot);
  h.r.s = UINT64_C(0x5EED0001);
  start_tracing();
  h.c.leaf = heap_fill_leaf;
  descend(&h.c, depth);
  h.c.leaf = heap_leaf;
  heap_run(&h, steps / 20, depth); /* warm-up: tracebacks interned, caches filled */
  double c0 = cpu_sec();
  double t0 = now_sec();
  measured_heap(&h, steps, depth);
  double t1 = now_sec();
  double c1 = cpu_sec();
  char extra[256], tf[160];
  trace_fields(tf, sizeof tf, h.slot[0]);
  snprintf(extra, sizeof extra, " live=%ld depth=%d sink=%u%s", live, depth, h.sink & 0xffu, tf);
  for (long i = 0; i < live; i++) xfree(h.slot[i]);
  munmap(h.slot, (size_t)live * sizeof *h.slot);
  report("heap", steps, t1 - t0, c1 - c0, extra);
  return 0;
}

/* ---------------------------------------------------------------------------------------------
 * objects: object_bench's churn from DEPTH calls down
 * ------------------------------------------------------------------------------------------ */

typedef struct small_s {
  refgc_object_t ob;
  struct small_s *field;
} small_t;

static void small_traverse(refgc_object_t *self, refgc_visit_fn *visit, void *arg) {
  small_t *s = (small_t *)self;
  if (s->field) visit(&s->field->ob, arg);
}

static const refgc_type_t *register_type(const char *name, size_t size, refgc_traverse_fn *trav,
                                         long freelist_max) {
  refgc_type_spec_t spec;
  memset(&spec, 0, sizeof spec);
  spec.version = REFGC_TYPE_SPEC_VERSION;
  spec.name = name;
  spec.basic_size = size;
  spec.traverse = trav;
  spec.freelist_max = (uint32_t)freelist_max;
  const refgc_type_t *t = refgc_type_register(&spec);
  if (t == NULL) die("refgc_type_register failed");
  return t;
}

static refgc_object_t *xnew(const refgc_type_t *t) {
  refgc_object_t *o = refgc_new(t);
  if (o == NULL) die("refgc_new failed");
  return o;
}

#define OBJ_BATCH 64

typedef struct obj_ctx_s {
  chain_t c;
  const refgc_type_t *t;
  long todo;
  refgc_object_t *kept; /* keep: make one object and keep it (the traceback probe) */
  int keep;
} obj_ctx_t;

static NOINLINE void obj_leaf(chain_t *c) {
  obj_ctx_t *x = (obj_ctx_t *)c;
  if (x->keep) {
    x->kept = xnew(x->t);
    return;
  }
  long n = x->todo < OBJ_BATCH ? x->todo : OBJ_BATCH;
  if (use_libc) {
    for (long i = 0; i < n; i++) {
      uint64_t *s = xalloc(16); /* what refgc_new writes: a header word and the field */
      s[0] = 1;
      s[1] = 0;
      ESCAPE(s);
      free(s);
    }
  } else {
    for (long i = 0; i < n; i++) {
      refgc_object_t *o = xnew(x->t);
      ESCAPE(o);
      refgc_decref(o);
    }
  }
  x->todo -= n;
}

static void obj_run(obj_ctx_t *x, long n, int depth) {
  x->todo = n;
  for (unsigned b = 0; x->todo > 0; b++) {
    x->c.path = b % HEAP_PATHS;
    descend(&x->c, depth);
  }
}

static NOINLINE void measured_objects(obj_ctx_t *x, long n, int depth) {
  obj_run(x, n, depth);
  ESCAPE(x);
}

static int bench_objects(long n, long freelist_max, int depth) {
  obj_ctx_t x;
  memset(&x, 0, sizeof x);
  x.t = use_libc ? NULL : register_type("small", sizeof(small_t), small_traverse, freelist_max);
  x.c.leaf = obj_leaf;
  start_tracing();
  obj_run(&x, n / 20, depth);
  double c0 = cpu_sec();
  double t0 = now_sec();
  measured_objects(&x, n, depth);
  double t1 = now_sec();
  double c1 = cpu_sec();
  /* one live object, made from the same depth, to probe the traceback depth */
  refgc_object_t *probe = NULL;
  if (!use_libc) {
    x.keep = 1;
    descend(&x.c, depth);
    probe = x.kept;
  }
  char extra[256], tf[160];
  trace_fields(tf, sizeof tf, probe);
  snprintf(extra, sizeof extra, " freelist_max=%ld depth=%d%s", freelist_max, depth, tf);
  if (probe) refgc_decref(probe);
  report("objects", n, t1 - t0, c1 - c0, extra);
  return 0;
}

/* ---------------------------------------------------------------------------------------------
 * trees: object_bench's binary-trees at the bottom of the chain
 * ------------------------------------------------------------------------------------------ */

#define MIN_DEPTH 4
#define ARRAY_LEN 500000

typedef struct onode_s {
  refgc_object_t ob;
  struct onode_s *left, *right;
} onode_t;

typedef struct mnode_s {
  struct mnode_s *left, *right;
} mnode_t;

static const refgc_type_t *onode_type;
static int probe_frames;

static void onode_traverse(refgc_object_t *self, refgc_visit_fn *visit, void *arg) {
  onode_t *n = (onode_t *)self;
  if (n->left) visit(&n->left->ob, arg);
  if (n->right) visit(&n->right->ob, arg);
}

static NOINLINE onode_t *otree_new(int depth) {
  onode_t *n = (onode_t *)xnew(onode_type);
  if (depth > 0) {
    n->left = otree_new(depth - 1);
    n->right = otree_new(depth - 1);
  }
  return n;
}

static long otree_check(const onode_t *n) {
  if (n->left == NULL) return 1;
  return 1 + otree_check(n->left) + otree_check(n->right);
}

static const onode_t *otree_leftmost(const onode_t *n) {
  while (n->left) n = n->left;
  return n;
}

static NOINLINE mnode_t *mtree_new(int depth) {
  mnode_t *n = xalloc(sizeof *n);
  if (depth > 0) {
    n->left = mtree_new(depth - 1);
    n->right = mtree_new(depth - 1);
  } else {
    n->left = n->right = NULL;
  }
  return n;
}

static long mtree_check(const mnode_t *n) {
  if (n->left == NULL) return 1;
  return 1 + mtree_check(n->left) + mtree_check(n->right);
}

static void mtree_free(mnode_t *n) {
  if (n->left != NULL) {
    mtree_free(n->left);
    mtree_free(n->right);
  }
  xfree(n);
}

typedef struct trees_ctx_s {
  chain_t c;
  int max_depth;
  long check, nodes;
} trees_ctx_t;

#define TREES_BODY(T, NEW, CHECK, DROP)                                                        \
  do {                                                                                         \
    T *stretch = NEW(max_depth + 1);                                                           \
    check += CHECK(stretch);                                                                   \
    DROP(stretch);                                                                             \
    T *long_lived = NEW(max_depth);                                                            \
    double *array = xalloc(ARRAY_LEN * sizeof *array);                                         \
    for (long i = 0; i < ARRAY_LEN / 2; i++) array[i] = 1.0 / (double)(i + 1);                 \
    for (int d = MIN_DEPTH; d <= max_depth; d += 2) {                                          \
      long iters = 1L << (max_depth - d + MIN_DEPTH);                                          \
      for (long i = 0; i < iters; i++) {                                                       \
        T *t = NEW(d);                                                                         \
        check += CHECK(t);                                                                     \
        DROP(t);                                                                               \
      }                                                                                        \
      nodes += iters * ((2L << d) - 1);                                                        \
    }                                                                                          \
    check += CHECK(long_lived);                                                                \
    if (array[1000] != 1.0 / 1001.0) die("trees: the long-lived array was overwritten");      \
    PROBE(long_lived);                                                                         \
    DROP(long_lived);                                                                          \
    xfree(array);                                                                              \
    nodes += (2L << (max_depth + 1)) - 1 + (2L << max_depth) - 1;                              \
  } while (0)

#define ODROP(n) refgc_decref(&(n)->ob)

static NOINLINE void trees_leaf(chain_t *c) {
  trees_ctx_t *x = (trees_ctx_t *)c;
  int max_depth = x->max_depth;
  long check = 0, nodes = 0;
  if (use_libc) {
#define PROBE(t) ((void)0)
    TREES_BODY(mnode_t, mtree_new, mtree_check, mtree_free);
#undef PROBE
  } else {
#define PROBE(t)                                                                               \
  do {                                                                                         \
    void *fr[REFGC_TRACE_MAX_FRAMES];                                                          \
    probe_frames = mode_frames ? refgc_trace_traceback(otree_leftmost(t), fr,                 \
                                                       REFGC_TRACE_MAX_FRAMES)                 \
                               : 0;                                                            \
  } while (0)
    TREES_BODY(onode_t, otree_new, otree_check, ODROP);
#undef PROBE
  }
  x->check = check;
  x->nodes = nodes;
}

static NOINLINE void measured_trees(trees_ctx_t *x, int depth) {
  descend(&x->c, depth);
  ESCAPE(x);
}

static int bench_trees(int max_depth, int depth) {
  trees_ctx_t x;
  memset(&x, 0, sizeof x);
  x.max_depth = max_depth;
  x.c.leaf = trees_leaf;
  if (!use_libc) onode_type = register_type("tree_node", sizeof(onode_t), onode_traverse, 0);
  start_tracing();
  double c0 = cpu_sec();
  double t0 = now_sec();
  measured_trees(&x, depth);
  double t1 = now_sec();
  double c1 = cpu_sec();
  if (x.check != x.nodes) die("trees: node count mismatch");
  char extra[256];
  snprintf(extra, sizeof extra,
           " max_depth=%d depth=%d trace_count=%zu trace_memory=%zu probe_frames=%d", max_depth,
           depth, mode_frames ? refgc_trace_count() : 0, mode_frames ? refgc_trace_memory() : 0,
           probe_frames);
  report("trees", x.nodes, t1 - t0, c1 - c0, extra);
  return 0;
}

/* ---------------------------------------------------------------------------------------------
 * memory: tracer bytes per traced live block
 * ------------------------------------------------------------------------------------------ */

#define MEM_BATCH 16

typedef struct mem_ctx_s {
  chain_t c;
  void **blocks;
  long n, next;
  int objects;
  const refgc_type_t *t;
  rng_t r;
} mem_ctx_t;

static NOINLINE void mem_leaf(chain_t *c) {
  mem_ctx_t *m = (mem_ctx_t *)c;
  for (int i = 0; i < MEM_BATCH && m->next < m->n; i++) {
    void *p;
    if (m->objects) {
      p = xnew(m->t);
    } else {
      size_t sz = 16 + rng_below(&m->r, 113);
      p = xalloc(sz);
      memset(p, 1, sz);
    }
    m->blocks[m->next++] = p;
  }
}

static int bench_memory(long n, long sites, int depth, const char *kind) {
  if (!mode_frames || use_libc) die("memory: needs a tracing mode");
  mem_ctx_t m;
  memset(&m, 0, sizeof m);
  m.n = n;
  m.objects = strcmp(kind, "objects") == 0;
  if (!m.objects && strcmp(kind, "blocks") != 0) die("memory: KIND is blocks or objects");
  if (m.objects) m.t = register_type("small", sizeof(small_t), small_traverse, 0);
  m.blocks = xmmap((size_t)n * sizeof *m.blocks);
  m.r.s = 42;
  m.c.leaf = mem_leaf;
  start_tracing();
  size_t mem0 = refgc_trace_memory();
  double t0 = now_sec();
  for (unsigned long b = 0; m.next < n; b++) {
    m.c.path = (unsigned)(b % (unsigned long)sites);
    descend(&m.c, depth);
  }
  double t1 = now_sec();
  size_t mem = refgc_trace_memory();
  size_t count = refgc_trace_count();
  void *fr[REFGC_TRACE_MAX_FRAMES];
  int nf = refgc_trace_traceback(m.blocks[n - 1], fr, REFGC_TRACE_MAX_FRAMES);
  refgc_snapshot_t *snap = refgc_snapshot_take(0);
  size_t tbs = snap ? refgc_snapshot_tracebacks(snap) : 0;
  refgc_snapshot_free(snap);
  refgc_heap_stats_t hs;
  memset(&hs, 0, sizeof hs);
  hs.size = sizeof hs;
  refgc_heap_stats(&hs);
  printf("RESULT mode=%s unwind=%s bench=memory kind=%s n=%ld sites=%ld depth=%d "
         "trace_count=%zu trace_memory=%zu trace_memory_at_start=%zu tracebacks=%zu "
         "bytes_per_traced=%.3f bytes_per_live=%.3f heap_in_use_per_block=%.3f "
         "probe_frames=%d seconds=%.4f peak_rss_mb=%.1f\n",
         mode_name, unwinder(), kind, n, sites, depth, count, mem, mem0, tbs,
         count ? (double)mem / (double)count : 0.0, (double)mem / (double)n,
         (double)hs.in_use / (double)n, nf, t1 - t0, peak_rss_mb());
  for (long i = 0; i < n; i++) {
    if (m.objects)
      refgc_decref(m.blocks[i]);
    else
      xfree(m.blocks[i]);
  }
  munmap(m.blocks, (size_t)n * sizeof *m.blocks);
  return 0;
}

/* ---------------------------------------------------------------------------------------------
 * main
 * ------------------------------------------------------------------------------------------ */

static void usage(void) {
  fprintf(stderr,
          "usage: trace_bench MODE heap [STEPS [LIVE [DEPTH]]]\n"
          "       trace_bench MODE objects [N [FREELIST [DEPTH]]]\n"
          "       trace_bench MODE trees [MAXDEPTH [DEPTH]]\n"
          "       trace_bench MODE memory [N [SITES [DEPTH [blocks|objects]]]]\n"
          "MODE: off | libc | trace:FRAMES | sample:FRAMES:BYTES\n");
  exit(2);
}

int main(int argc, char **argv) {
  if (argc < 3) usage();
  parse_mode(argv[1]);
  const char *cmd = argv[2];
  if (strcmp(cmd, "heap") == 0) {
    long steps = argc > 3 ? parse_long(argv[3], "STEPS", 1) : 20000000L;
    long live = argc > 4 ? parse_long(argv[4], "LIVE", 1) : 10000L;
    int depth = argc > 5 ? parse_depth(argv[5]) : 16;
    if (live > 0x7fffffffL) usage();
    return bench_heap(steps, live, depth);
  }
  if (strcmp(cmd, "objects") == 0) {
    long n = argc > 3 ? parse_long(argv[3], "N", 1) : 10000000L;
    long fl = argc > 4 ? parse_long(argv[4], "FREELIST", 0) : 80;
    int depth = argc > 5 ? parse_depth(argv[5]) : 16;
    if (fl > 0x7fffffffL) usage();
    return bench_objects(n, fl, depth);
  }
  if (strcmp(cmd, "trees") == 0) {
    long md = argc > 3 ? parse_long(argv[3], "MAXDEPTH", MIN_DEPTH) : 16;
    int depth = argc > 4 ? parse_depth(argv[4]) : 4;
    if (md > 24) usage();
    return bench_trees((int)md, depth);
  }
  if (strcmp(cmd, "memory") == 0) {
    long n = argc > 3 ? parse_long(argv[3], "N", 1) : 1000000L;
    long sites = argc > 4 ? parse_long(argv[4], "SITES", 1) : 8;
    int depth = argc > 5 ? parse_depth(argv[5]) : 16;
    const char *kind = argc > 6 ? argv[6] : "blocks";
    return bench_memory(n, sites, depth, kind);
  }
  usage();
  return 2;
}
