/* refgc — allocation tracing and snapshots (refgc/trace.h, src/trace.c, src/snapshot.c).
 *
 * What the cases show:
 *  - exact totals: a random program (malloc, calloc, realloc, aligned_alloc, free of every size
 *    class and of large blocks, objects fixed and variable, releases) run against a model of
 *    its live blocks: traced memory, its peak and the traced count equal the model after every
 *    few hundred operations, and the heap's own counters (allocations minus frees, bytes
 *    requested) agree with the tracer; blocks allocated before a start are never traced;
 *    stopping forgets everything, also across the 255 epochs of trace words;
 *  - tracebacks: innermost first, through every allocation entry point, without refgc's own
 *    frames, cut at the frame limit, shared by identical stacks;
 *  - snapshots: statistics by file, line, function, traceback and type (plain and cumulative,
 *    recursion counted once) on a program with known sites, their order, every kind of filter
 *    and their combination, comparisons, type counts, summary figures, the memory series,
 *    save and load giving identical statistics, growth across snapshots;
 *  - sampling: the probability that a block is sampled and the unbiased estimates, checked
 *    against the variance the sampling model predicts (5 standard deviations), with a fixed
 *    seed; a seed reproduces the same samples;
 *  - threads (cases threads_*, also run under TSan): allocation and cross-thread frees while
 *    snapshots are taken give exact totals; starting and stopping while threads allocate;
 *  - the tracer's own memory: at most 24 bytes per traced block, none of it in the heap;
 *  - bad arguments: every call with NULL returns its documented error.
 *
 * Function names come from the symbol table (libdw or dladdr: the sites are exported
 * functions), file and line from this file's debug information (built with -g).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "refgc.h"
#include "test.h"

/* ---- helpers ------------------------------------------------------------------------------- */

#if defined(__clang__)
#define NOINL __attribute__((noinline))
#else
#define NOINL __attribute__((noinline, noipa))
#endif
/* keep a value and the frame that computed it (no tail call into the allocator) */
#define KEEP(p) __asm__ volatile("" : : "r"(p) : "memory")

#if defined(REFGC_ASAN) || defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SLOW_BUILD 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SLOW_BUILD 1
#endif
#endif
#ifndef SLOW_BUILD
#define SLOW_BUILD 0
#endif

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int have_libdw(void) { return strcmp(refgc_symbolizer(), "libdw") == 0; }

/* A fresh tracing session. */
static void trace_fresh(int frames) {
  if (refgc_trace_is_tracing()) ASSERT_EQ(refgc_trace_stop(), 0);
  ASSERT_EQ(refgc_trace_start(frames), 0);
}
static void trace_off(void) {
  if (refgc_trace_is_tracing()) refgc_trace_stop();
}

static size_t cur_traced(void) {
  size_t c;
  refgc_trace_get_memory(&c, NULL);
  return c;
}
static size_t peak_traced(void) {
  size_t p;
  refgc_trace_get_memory(NULL, &p);
  return p;
}

static refgc_heap_stats_t heap_stats(void) {
  refgc_heap_stats_t s;
  memset(&s, 0, sizeof s);
  s.size = sizeof s;
  refgc_heap_stats(&s);
  return s;
}

/* function name of a return address ("" unknown) */
static const char *fn_of(const void *addr) {
  refgc_frame_info_t fi;
  if (refgc_symbolize((uintptr_t)addr, &fi) != 0) return "";
  return fi.function;
}
/* `name` is `want`, or a compiler clone of it (want.isra.0, ...) */
static int fn_is(const char *name, const char *want) {
  size_t n = strlen(want);
  return name && strncmp(name, want, n) == 0 && (name[n] == 0 || name[n] == '.');
}
#define ASSERT_FN(addr, want)                                                             \
  do {                                                                                    \
    const char *got_ = fn_of(addr);                                                       \
    if (!fn_is(got_, want)) TEST_FAIL("frame %p is in \"%s\", expected \"%s\"", (addr), got_, want); \
  } while (0)

static int ends_with(const char *s, const char *suffix) {
  size_t a = strlen(s), b = strlen(suffix);
  return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* temporary directory for files, removed by the cases that made it */
static char tmpdir[256];
static const char *tmp_path(const char *name) {
  static char buf[512];
  if (!tmpdir[0]) {
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/refgc-test-trace-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmpdir)) TEST_FAIL("mkdtemp: %s", strerror(errno));
  }
  snprintf(buf, sizeof buf, "%s/%s", tmpdir, name);
  return buf;
}
__attribute__((destructor)) static void tmp_cleanup(void) {
  if (!tmpdir[0]) return;
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
}

/* ---- types --------------------------------------------------------------------------------- */

static const refgc_type_t *leaf_t, *vec_t, *cache_t;

/* Register the types and use each once with tracing off, so that the thread's own per-type
 * tables are grown before any case counts bytes. */
static void types_init(void) {
  if (leaf_t) return;
  refgc_type_spec_t s = {REFGC_TYPE_SPEC_VERSION, REFGC_TYPE_LEAF, "tt.leaf", 48, 0, NULL, NULL,
                         NULL, NULL, 0};
  leaf_t = refgc_type_register(&s);
  s.name = "tt.vec";
  s.basic_size = 16;
  s.item_size = 8;
  vec_t = refgc_type_register(&s);
  s.name = "tt.cache";
  s.basic_size = 64;
  s.item_size = 0;
  cache_t = refgc_type_register(&s);
  ASSERT(leaf_t && vec_t && cache_t);
  trace_off();
  refgc_decref(refgc_new(leaf_t));
  refgc_decref(refgc_new_var(vec_t, 3));
  refgc_decref(refgc_new_var(vec_t, 30000));
  refgc_decref(refgc_new(cache_t));
}

/* ---- allocation sites ---------------------------------------------------------------------- */

NOINL void *tt_inner(size_t n) {
  void *p = refgc_malloc(n);
  KEEP(p);
  return p;
}
NOINL void *tt_middle(size_t n) {
  void *p = tt_inner(n);
  KEEP(p);
  return p;
}
NOINL void *tt_outer(size_t n) {
  void *p = tt_middle(n);
  KEEP(p);
  return p;
}

/* one wrapper per entry point: the innermost frame must be the wrapper */
NOINL void *tt_api_malloc(size_t n) {
  void *p = refgc_malloc(n);
  KEEP(p);
  return p;
}
NOINL void *tt_api_calloc(size_t a, size_t b) {
  void *p = refgc_calloc(a, b);
  KEEP(p);
  return p;
}
NOINL void *tt_api_realloc(void *q, size_t n) {
  void *p = refgc_realloc(q, n);
  KEEP(p);
  return p;
}
NOINL void *tt_api_aligned(size_t align, size_t n) {
  void *p = refgc_aligned_alloc(align, n);
  KEEP(p);
  return p;
}
NOINL refgc_object_t *tt_api_new(const refgc_type_t *t) {
  refgc_object_t *o = refgc_new(t);
  KEEP(o);
  return o;
}
NOINL refgc_object_t *tt_api_new_var(const refgc_type_t *t, size_t n) {
  refgc_object_t *o = refgc_new_var(t, n);
  KEEP(o);
  return o;
}

/* sites of the statistics cases; each records the line of its allocating call */
static int line_a, line_b, line_c, line_d, line_e, line_e_call, line_f, line_r, line_r_call;
NOINL void *tt_site_a(size_t n) {
  line_a = __LINE__; void *p = refgc_malloc(n);
  KEEP(p);
  return p;
}
NOINL void *tt_site_b(size_t n) {
  line_b = __LINE__; void *p = refgc_malloc(n);
  KEEP(p);
  return p;
}
NOINL refgc_object_t *tt_site_c(void) {
  line_c = __LINE__; refgc_object_t *o = refgc_new(leaf_t);
  KEEP(o);
  return o;
}
NOINL refgc_object_t *tt_site_d(size_t n) {
  line_d = __LINE__; refgc_object_t *o = refgc_new_var(vec_t, n);
  KEEP(o);
  return o;
}
NOINL void *tt_site_e(size_t n) {
  line_e = __LINE__; void *p = refgc_malloc(n);
  KEEP(p);
  return p;
}
NOINL void *tt_site_e_outer(size_t n) {
  line_e_call = __LINE__; void *p = tt_site_e(n);
  KEEP(p);
  return p;
}
NOINL void *tt_site_f(size_t n) {
  line_f = __LINE__; void *p = refgc_malloc(n);
  KEEP(p);
  return p;
}
NOINL void *tt_recurse(int depth, size_t n) {
  void *p;
  if (depth == 0) {
    line_r = __LINE__; p = refgc_malloc(n);
  } else {
    line_r_call = __LINE__; p = tt_recurse(depth - 1, n);
  }
  KEEP(p);
  return p;
}
NOINL void *tt_grow(size_t n) {
  void *p = refgc_malloc(n);
  KEEP(p);
  return p;
}
NOINL void *tt_updown(size_t n) {
  void *p = refgc_malloc(n);
  KEEP(p);
  return p;
}
NOINL void *tt_const(size_t n) {
  void *p = refgc_malloc(n);
  KEEP(p);
  return p;
}
NOINL void *tt_late(size_t n) {
  void *p = refgc_malloc(n);
  KEEP(p);
  return p;
}
NOINL void *tt_tie_x(size_t n) {
  void *p = refgc_malloc(n);
  KEEP(p);
  return p;
}
NOINL void *tt_tie_y(size_t n) {
  void *p = refgc_malloc(n);
  KEEP(p);
  return p;
}

/* ---- statistics helpers -------------------------------------------------------------------- */

static const refgc_stat_t *find_row(const refgc_stat_t *rows, size_t n, const char *key) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(rows[i].key, key) == 0) return &rows[i];
  return NULL;
}
/* the row whose key is the function `want` (or a clone of it) */
static const refgc_stat_t *find_fn_row(const refgc_stat_t *rows, size_t n, const char *want) {
  const refgc_stat_t *found = NULL;
  for (size_t i = 0; i < n; i++)
    if (fn_is(rows[i].key, want)) {
      if (found) TEST_FAIL("two rows for function %s", want);
      found = &rows[i];
    }
  return found;
}
#define ASSERT_ROW(row, sz, cnt)                                                          \
  do {                                                                                    \
    const refgc_stat_t *r_ = (row);                                                       \
    if (!r_) TEST_FAIL("no row for %s", #row);                                            \
    if (r_->size != (uint64_t)(sz) || r_->count != (uint64_t)(cnt))                       \
      TEST_FAIL("%s: row \"%s\" has size %llu count %llu, expected %llu and %llu", #row,  \
                r_->key, (unsigned long long)r_->size, (unsigned long long)r_->count,      \
                (unsigned long long)(sz), (unsigned long long)(cnt));                      \
  } while (0)

/* statistics order: size descending; equal size and count by key */
static void check_sorted(const refgc_stat_t *rows, size_t n) {
  for (size_t i = 1; i < n; i++) {
    if (rows[i - 1].size < rows[i].size)
      TEST_FAIL("row %zu (%s, %llu) before a larger row (%s, %llu)", i - 1, rows[i - 1].key,
                (unsigned long long)rows[i - 1].size, rows[i].key, (unsigned long long)rows[i].size);
    if (rows[i - 1].size == rows[i].size && rows[i - 1].count == rows[i].count &&
        strcmp(rows[i - 1].key, rows[i].key) > 0)
      TEST_FAIL("rows %zu and %zu tie but keys are out of order (%s, %s)", i - 1, i,
                rows[i - 1].key, rows[i].key);
  }
}

static uint64_t rows_size(const refgc_stat_t *rows, size_t n) {
  uint64_t s = 0;
  for (size_t i = 0; i < n; i++) s += rows[i].size;
  return s;
}
static uint64_t rows_count(const refgc_stat_t *rows, size_t n) {
  uint64_t s = 0;
  for (size_t i = 0; i < n; i++) s += rows[i].count;
  return s;
}

static refgc_snapshot_info_t snap_info(const refgc_snapshot_t *s) {
  refgc_snapshot_info_t i;
  memset(&i, 0, sizeof i);
  i.size = sizeof i;
  ASSERT_EQ(refgc_snapshot_info(s, &i), 0);
  return i;
}

/* ====================================================================================== */
/* Starting and stopping                                                                   */
/* ====================================================================================== */

/* The first start in the process learns refgc's own frames by calling every entry point: none
 * of that may be left behind as traces. (Runs first; when it is not the first start, the
 * same property is checked for an ordinary start.) */
TEST(first_start_leaves_no_traces) {
  trace_off();
  ASSERT_EQ(refgc_trace_start(16), 0);
  ASSERT_EQ(refgc_trace_count(), 0);
  ASSERT_EQ(cur_traced(), 0);
  refgc_snapshot_t *s = refgc_snapshot_take(0);
  ASSERT(s);
  size_t n;
  refgc_snapshot_traces(s, &n);
  if (n) {
    size_t ns;
    refgc_stat_t *st = refgc_snapshot_statistics(s, REFGC_GROUP_FUNCTION, 0, &ns);
    for (size_t i = 0; i < ns; i++)
      fprintf(stderr, "  stray trace: %s: %llu bytes in %llu blocks\n", st[i].key,
              (unsigned long long)st[i].size, (unsigned long long)st[i].count);
    refgc_stats_free(st);
  }
  ASSERT_EQ(n, 0);
  ASSERT_EQ(snap_info(s).trace_count, 0);
  refgc_snapshot_free(s);
  ASSERT_EQ(refgc_trace_stop(), 0);
}

TEST(start_stop_state) {
  trace_off();
  ASSERT_EQ(refgc_trace_is_tracing(), 0);
  ASSERT_EQ(refgc_trace_frames(), 0);
  ASSERT_EQ(refgc_trace_sample_bytes(), 0);
  ASSERT_EQ(refgc_trace_stop(), REFGC_EINVAL);
  ASSERT_EQ(refgc_trace_start(0), REFGC_EINVAL);
  ASSERT_EQ(refgc_trace_start(-1), REFGC_EINVAL);
  ASSERT_EQ(refgc_trace_start(REFGC_TRACE_MAX_FRAMES + 1), REFGC_EINVAL);
  ASSERT_EQ(refgc_trace_start_sampled(0, 4096, 1), REFGC_EINVAL);
  ASSERT_EQ(refgc_trace_is_tracing(), 0);
  ASSERT_EQ(refgc_trace_start(REFGC_TRACE_MAX_FRAMES), 0);
  ASSERT_EQ(refgc_trace_is_tracing(), 1);
  ASSERT_EQ(refgc_trace_frames(), REFGC_TRACE_MAX_FRAMES);
  ASSERT_EQ(refgc_trace_sample_bytes(), 0);
  ASSERT_EQ(refgc_trace_start(5), REFGC_EBUSY);
  ASSERT_EQ(refgc_trace_start_sampled(5, 100, 1), REFGC_EBUSY);
  ASSERT_EQ(refgc_trace_frames(), REFGC_TRACE_MAX_FRAMES); /* unchanged by the refusal */
  ASSERT_EQ(refgc_trace_stop(), 0);
  ASSERT_EQ(refgc_trace_is_tracing(), 0);
  ASSERT_EQ(refgc_trace_frames(), 0);
  ASSERT_EQ(refgc_trace_stop(), REFGC_EINVAL);
  ASSERT_EQ(refgc_trace_start_sampled(3, 12345, 7), 0);
  ASSERT_EQ(refgc_trace_frames(), 3);
  ASSERT_EQ(refgc_trace_sample_bytes(), 12345);
  ASSERT_EQ(refgc_trace_stop(), 0);
  ASSERT_EQ(refgc_trace_sample_bytes(), 0);
  ASSERT_EQ(refgc_trace_start_sampled(1, 0, 0), 0); /* mean 0: every allocation */
  ASSERT_EQ(refgc_trace_sample_bytes(), 0);
  void *p = refgc_malloc(10);
  ASSERT_EQ(refgc_trace_count(), 1);
  ASSERT_EQ(cur_traced(), 10);
  refgc_free(p);
  ASSERT_EQ(refgc_trace_stop(), 0);
}

/* ---- exact totals against a model ---------------------------------------------------------- */

typedef struct blk_s {
  void *p;
  size_t req;
  int obj; /* 0 raw block, 1 object */
} blk_t;

static size_t rand_size(test_rng_t *r) {
  uint64_t k = test_below(r, 100);
  if (k < 55) return (size_t)test_below(r, 257);
  if (k < 82) return 257 + (size_t)test_below(r, 8192 - 257);
  if (k < 97) return 8193 + (size_t)test_below(r, 131072 - 8193);
  return 131073 + (size_t)test_below(r, 600000 - 131073);
}

TEST(totals_exact_random_program) {
  types_init();
  trace_off();
  test_rng_t rng = {test_seed() ^ 0x7472616365ull};
  void *before[64];
  for (int i = 0; i < 64; i++) before[i] = refgc_malloc(i * 97 + (i % 8 == 0 ? 200000 : 0));
  trace_fresh(12);
  refgc_heap_stats_t h0 = heap_stats();
  size_t cap = 4096, n = 0;
  blk_t *live = calloc(cap, sizeof *live);
  ASSERT(live);
  uint64_t live_sum = 0, peak = 0, total_req = 0, nallocs = 0, nfrees = 0;
  long ops = 20000 * test_scale();
  for (long op = 0; op < ops; op++) {
    uint64_t k = test_below(&rng, 100);
    if (n > 1000 && k < 60) k = 99; /* bounded live set: lean to frees */
    if (op == ops / 2) {
      /* blocks from before the start: freeing them changes nothing */
      for (int i = 0; i < 64; i++) {
        ASSERT_EQ(refgc_trace_traceback(before[i], NULL, 0), 0);
        refgc_free(before[i]);
        before[i] = NULL;
      }
      ASSERT_EQ(cur_traced(), live_sum);
      ASSERT_EQ(refgc_trace_count(), n);
      ASSERT_EQ(peak_traced(), peak);
      h0.free_count += 64; /* those frees are the heap's, not the tracer's */
    }
    blk_t b = {NULL, 0, 0};
    if (k < 30) {
      b.req = rand_size(&rng);
      b.p = tt_api_malloc(b.req);
    } else if (k < 38) {
      size_t sz = rand_size(&rng), cnt = 1 + (size_t)test_below(&rng, 8);
      sz /= cnt;
      b.req = sz * cnt;
      b.p = tt_api_calloc(cnt, sz);
    } else if (k < 48 && n) {
      size_t i = (size_t)test_below(&rng, n);
      if (live[i].obj) continue;
      size_t req = rand_size(&rng);
      void *q = tt_api_realloc(live[i].p, req);
      ASSERT(q);
      /* the new block is allocated before the old one is freed */
      total_req += req;
      nallocs++;
      nfrees++;
      if (live_sum + req > peak) peak = live_sum + req;
      live_sum = live_sum + req - live[i].req;
      live[i].p = q;
      live[i].req = req;
      continue;
    } else if (k < 55) {
      size_t align = (size_t)1 << (4 + test_below(&rng, 13)); /* 16 .. 64 KiB */
      b.req = rand_size(&rng);
      b.p = tt_api_aligned(align, b.req);
      ASSERT(((uintptr_t)b.p & (align - 1)) == 0);
    } else if (k < 65) {
      b.req = 48;
      b.p = tt_api_new(leaf_t);
      b.obj = 1;
    } else if (k < 72) {
      size_t items = test_below(&rng, 10) == 0 ? 16384 + (size_t)test_below(&rng, 40000)
                                                : (size_t)test_below(&rng, 300);
      b.req = 16 + 8 * items;
      b.p = tt_api_new_var(vec_t, items);
      b.obj = 1;
    } else {
      if (!n) continue;
      size_t i = (size_t)test_below(&rng, n);
      if (live[i].obj)
        refgc_decref(live[i].p);
      else
        refgc_free(live[i].p);
      live_sum -= live[i].req;
      nfrees++;
      live[i] = live[--n];
      continue;
    }
    ASSERT(b.p);
    total_req += b.req;
    nallocs++;
    live_sum += b.req;
    if (live_sum > peak) peak = live_sum;
    if (n == cap) {
      cap *= 2;
      live = realloc(live, cap * sizeof *live);
      ASSERT(live);
    }
    live[n++] = b;
    if (op % 257 == 0) {
      ASSERT_EQ(cur_traced(), live_sum);
      ASSERT_EQ(refgc_trace_count(), n);
      ASSERT_EQ(peak_traced(), peak);
      ASSERT(refgc_trace_traceback(b.p, NULL, 0) > 0);
    }
  }
  ASSERT_EQ(cur_traced(), live_sum);
  ASSERT_EQ(refgc_trace_count(), n);
  ASSERT_EQ(peak_traced(), peak);
  /* the heap counted the same allocations and frees, and the same requested bytes */
  refgc_heap_stats_t h1 = heap_stats();
  ASSERT_EQ(h1.alloc_count - h0.alloc_count, nallocs);
  ASSERT_EQ(h1.free_count - h0.free_count, nfrees);
  ASSERT_EQ((h1.alloc_count - h0.alloc_count) - (h1.free_count - h0.free_count), refgc_trace_count());
  ASSERT_EQ(h1.requested_total - h0.requested_total, total_req);
  /* a snapshot holds the same traces */
  refgc_snapshot_t *s = refgc_snapshot_take(0);
  ASSERT(s);
  size_t nt;
  const refgc_trace_t *tr = refgc_snapshot_traces(s, &nt);
  ASSERT_EQ(nt, n);
  uint64_t sum = 0;
  for (size_t i = 0; i < nt; i++) {
    sum += tr[i].size;
    ASSERT(tr[i].weight == 1.0);
  }
  ASSERT_EQ(sum, live_sum);
  refgc_snapshot_info_t info = snap_info(s);
  ASSERT_EQ(info.traced_current, live_sum);
  ASSERT_EQ(info.traced_peak, peak);
  ASSERT_EQ(info.trace_count, n);
  refgc_snapshot_free(s);
  printf("# %ld operations, %llu allocations, %zu live blocks, %llu bytes live, peak %llu\n", ops,
         (unsigned long long)nallocs, n, (unsigned long long)live_sum, (unsigned long long)peak);
  for (size_t i = 0; i < n; i++) {
    if (live[i].obj)
      refgc_decref(live[i].p);
    else
      refgc_free(live[i].p);
  }
  free(live);
  ASSERT_EQ(cur_traced(), 0);
  ASSERT_EQ(refgc_trace_count(), 0);
  ASSERT_EQ(peak_traced(), peak);
  refgc_trace_stop();
}

TEST(peak_and_reset_peak) {
  trace_fresh(4);
  void *a = refgc_malloc(1000), *b = refgc_malloc(2000);
  ASSERT_EQ(cur_traced(), 3000);
  ASSERT_EQ(peak_traced(), 3000);
  refgc_free(b);
  ASSERT_EQ(cur_traced(), 1000);
  ASSERT_EQ(peak_traced(), 3000);
  refgc_trace_reset_peak();
  ASSERT_EQ(peak_traced(), 1000);
  void *c = refgc_malloc(500);
  ASSERT_EQ(peak_traced(), 1500);
  refgc_free(c);
  void *d = refgc_malloc(300000); /* large */
  ASSERT_EQ(cur_traced(), 301000);
  ASSERT_EQ(peak_traced(), 301000);
  refgc_free(d);
  refgc_free(a);
  ASSERT_EQ(cur_traced(), 0);
  ASSERT_EQ(peak_traced(), 301000);
  refgc_trace_reset_peak();
  ASSERT_EQ(peak_traced(), 0);
  refgc_trace_stop();
  size_t cur = 1, peak = 1;
  refgc_trace_get_memory(&cur, &peak);
  ASSERT_EQ(cur, 0);
  ASSERT_EQ(peak, 0);
}

TEST(stop_forgets_restart_works) {
  types_init();
  trace_fresh(8);
  void *a = tt_outer(100), *big = tt_outer(500000);
  refgc_object_t *o = tt_api_new(leaf_t);
  ASSERT_EQ(refgc_trace_count(), 3);
  ASSERT(refgc_trace_traceback(a, NULL, 0) > 0);
  ASSERT(refgc_trace_traceback(big, NULL, 0) > 0);
  ASSERT(refgc_trace_traceback(o, NULL, 0) > 0);
  refgc_snapshot_t *before = refgc_snapshot_take(0);
  ASSERT(before);
  ASSERT_EQ(refgc_trace_stop(), 0);
  ASSERT_EQ(refgc_trace_count(), 0);
  ASSERT_EQ(cur_traced(), 0);
  ASSERT_EQ(peak_traced(), 0);
  void *fr[4];
  ASSERT_EQ(refgc_trace_traceback(a, fr, 4), 0);
  ASSERT_EQ(refgc_trace_traceback(big, fr, 4), 0);
  ASSERT_EQ(refgc_trace_traceback(o, fr, 4), 0);
  /* snapshots taken before stay valid */
  size_t n;
  refgc_snapshot_traces(before, &n);
  ASSERT_EQ(n, 3);
  refgc_snapshot_t *off = refgc_snapshot_take(0);
  ASSERT(off);
  refgc_snapshot_traces(off, &n);
  ASSERT_EQ(n, 0);
  ASSERT_EQ(snap_info(off).frames, 0);
  refgc_snapshot_free(off);
  /* restart: the old blocks are not traced; freeing them changes nothing */
  ASSERT_EQ(refgc_trace_start(8), 0);
  ASSERT_EQ(refgc_trace_count(), 0);
  ASSERT_EQ(refgc_trace_traceback(a, fr, 4), 0);
  ASSERT_EQ(refgc_trace_traceback(big, fr, 4), 0);
  void *c = tt_outer(70);
  ASSERT_EQ(refgc_trace_count(), 1);
  ASSERT_EQ(cur_traced(), 70);
  refgc_free(a);
  refgc_free(big);
  refgc_decref(o);
  ASSERT_EQ(refgc_trace_count(), 1);
  ASSERT_EQ(cur_traced(), 70);
  refgc_snapshot_t *after = refgc_snapshot_take(0);
  refgc_snapshot_traces(after, &n);
  ASSERT_EQ(n, 1);
  refgc_free(c);
  ASSERT_EQ(cur_traced(), 0);
  refgc_snapshot_free(before);
  refgc_snapshot_free(after);
  refgc_trace_stop();
}

/* Trace words carry an 8-bit epoch that every stop moves on; at the wrap every word is
 * cleared. Over 300 sessions, a block of an earlier session is never taken for a traced one. */
TEST(epochs_wrap_around) {
  trace_off();
  enum { SESSIONS = 300 };
  static void *blocks[SESSIONS], *large[SESSIONS / 50 + 1];
  for (int s = 0; s < SESSIONS; s++) {
    ASSERT_EQ(refgc_trace_start(2), 0);
    ASSERT_EQ(refgc_trace_count(), 0);
    for (int k = 0; k < s; k += 37) ASSERT_EQ(refgc_trace_traceback(blocks[k], NULL, 0), 0);
    if (s > 0) ASSERT_EQ(refgc_trace_traceback(blocks[s - 1], NULL, 0), 0);
    for (int k = 0; k * 50 < s; k++) ASSERT_EQ(refgc_trace_traceback(large[k], NULL, 0), 0);
    blocks[s] = refgc_malloc(40);
    if (s % 50 == 0) large[s / 50] = refgc_malloc(200000);
    ASSERT_EQ(refgc_trace_count(), s % 50 == 0 ? 2 : 1);
    ASSERT(refgc_trace_traceback(blocks[s], NULL, 0) > 0);
    refgc_snapshot_t *snap = refgc_snapshot_take(0);
    size_t n;
    refgc_snapshot_traces(snap, &n);
    ASSERT_EQ(n, s % 50 == 0 ? 2 : 1);
    refgc_snapshot_free(snap);
    ASSERT_EQ(refgc_trace_stop(), 0);
  }
  ASSERT_EQ(refgc_trace_start(2), 0);
  for (int s = 0; s < SESSIONS; s++) refgc_free(blocks[s]);
  for (int k = 0; k * 50 < SESSIONS; k++) refgc_free(large[k]);
  ASSERT_EQ(refgc_trace_count(), 0);
  ASSERT_EQ(cur_traced(), 0);
  refgc_trace_stop();
}

/* ====================================================================================== */
/* Tracebacks                                                                              */
/* ====================================================================================== */

static void assert_no_refgc_frames(void *const *fr, int n) {
  for (int i = 0; i < n; i++) {
    const char *f = fn_of(fr[i]);
    if (strncmp(f, "refgc", 5) == 0 || strncmp(f, "calib", 5) == 0)
      TEST_FAIL("frame %d of a traceback is refgc's own: %s", i, f);
  }
}

TEST(traceback_innermost_first_without_refgc_frames) {
  trace_fresh(16);
  void *p = tt_outer(100);
  void *fr[REFGC_TRACE_MAX_FRAMES];
  int n = refgc_trace_traceback(p, fr, REFGC_TRACE_MAX_FRAMES);
  ASSERT(n >= 4);
  ASSERT(n <= 16);
  ASSERT_FN(fr[0], "tt_inner");
  ASSERT_FN(fr[1], "tt_middle");
  ASSERT_FN(fr[2], "tt_outer");
  if (have_libdw()) ASSERT_FN(fr[3], "test_traceback_innermost_first_without_refgc_frames");
  assert_no_refgc_frames(fr, n);
  /* `max` smaller than the traceback: the count is the whole, only `max` are written */
  void *two[3] = {NULL, NULL, (void *)0x1};
  ASSERT_EQ(refgc_trace_traceback(p, two, 2), n);
  ASSERT_PTR_EQ(two[0], fr[0]);
  ASSERT_PTR_EQ(two[1], fr[1]);
  ASSERT_PTR_EQ(two[2], (void *)0x1);
  ASSERT_EQ(refgc_trace_traceback(p, NULL, 0), n);
  /* interior pointers, foreign pointers */
  ASSERT_EQ(refgc_trace_traceback((char *)p + 16, fr, 4), 0);
  int local;
  ASSERT_EQ(refgc_trace_traceback(&local, fr, 4), 0);
  refgc_free(p);
  ASSERT_EQ(refgc_trace_traceback(p, fr, 4), 0); /* freed */
  refgc_trace_stop();
}

TEST(traceback_through_every_entry_point) {
  types_init();
  trace_fresh(6);
  struct {
    const char *fn;
    void *p;
    int obj;
  } c[16];
  int k = 0;
  c[k++] = (__typeof__(c[0])){"tt_api_malloc", tt_api_malloc(24), 0};
  c[k++] = (__typeof__(c[0])){"tt_api_malloc", tt_api_malloc(0), 0};
  c[k++] = (__typeof__(c[0])){"tt_api_malloc", tt_api_malloc(70000), 0};
  c[k++] = (__typeof__(c[0])){"tt_api_malloc", tt_api_malloc(1 << 20), 0};
  c[k++] = (__typeof__(c[0])){"tt_api_calloc", tt_api_calloc(10, 10), 0};
  c[k++] = (__typeof__(c[0])){"tt_api_calloc", tt_api_calloc(1000, 1000), 0};
  c[k++] = (__typeof__(c[0])){"tt_api_realloc", tt_api_realloc(NULL, 50), 0};
  void *r = refgc_malloc(10);
  c[k++] = (__typeof__(c[0])){"tt_api_realloc", tt_api_realloc(r, 5000), 0};
  r = refgc_malloc(300000);
  c[k++] = (__typeof__(c[0])){"tt_api_realloc", tt_api_realloc(r, 290000), 0};
  c[k++] = (__typeof__(c[0])){"tt_api_aligned", tt_api_aligned(256, 100), 0};
  c[k++] = (__typeof__(c[0])){"tt_api_aligned", tt_api_aligned(1 << 16, 100), 0};
  c[k++] = (__typeof__(c[0])){"tt_api_aligned", tt_api_aligned(64, 400000), 0};
  c[k++] = (__typeof__(c[0])){"tt_api_new", tt_api_new(leaf_t), 1};
  c[k++] = (__typeof__(c[0])){"tt_api_new_var", tt_api_new_var(vec_t, 4), 1};
  c[k++] = (__typeof__(c[0])){"tt_api_new_var", tt_api_new_var(vec_t, 50000), 1};
  ASSERT_EQ(refgc_trace_count(), (size_t)k);
  for (int i = 0; i < k; i++) {
    void *fr[8];
    int n = refgc_trace_traceback(c[i].p, fr, 8);
    if (n < 2) TEST_FAIL("case %d (%s): %d frames", i, c[i].fn, n);
    ASSERT(n <= 6);
    const char *f0 = fn_of(fr[0]);
    if (!fn_is(f0, c[i].fn)) TEST_FAIL("case %d: innermost frame %s, expected %s", i, f0, c[i].fn);
    if (have_libdw()) ASSERT_FN(fr[1], "test_traceback_through_every_entry_point");
    assert_no_refgc_frames(fr, n);
  }
  for (int i = 0; i < k; i++) {
    if (c[i].obj)
      refgc_decref(c[i].p);
    else
      refgc_free(c[i].p);
  }
  ASSERT_EQ(refgc_trace_count(), 0);
  ASSERT_EQ(cur_traced(), 0);
  refgc_trace_stop();
}

TEST(traceback_frame_limit) {
  void *fr[8];
  for (int limit = 1; limit <= 3; limit++) {
    trace_fresh(limit);
    void *p = tt_outer(33);
    int n = refgc_trace_traceback(p, fr, 8);
    ASSERT_EQ(n, limit);
    ASSERT_FN(fr[0], "tt_inner");
    if (limit >= 2) ASSERT_FN(fr[1], "tt_middle");
    if (limit >= 3) ASSERT_FN(fr[2], "tt_outer");
    refgc_snapshot_t *s = refgc_snapshot_take(0);
    size_t nt;
    const refgc_trace_t *t = refgc_snapshot_traces(s, &nt);
    ASSERT_EQ(nt, 1);
    const uint32_t *frames;
    ASSERT_EQ(refgc_snapshot_traceback(s, t[0].traceback, &frames), (size_t)limit);
    const refgc_frame_info_t *fi = refgc_snapshot_frame(s, frames[0]);
    ASSERT(fi);
    ASSERT(fn_is(fi->function, "tt_inner"));
    ASSERT_EQ(fi->address, (uintptr_t)fr[0]);
    ASSERT_EQ(snap_info(s).frames, limit);
    refgc_snapshot_free(s);
    refgc_free(p);
  }
  refgc_trace_stop();
}

NOINL void tt_loop_alloc(void **out, int n, size_t size) {
  for (int i = 0; i < n; i++) {
    out[i] = refgc_malloc(size + (size_t)(i % 7)); /* one call site, one stack */
    KEEP(out[i]);
  }
}

TEST(identical_stacks_share_a_traceback) {
  trace_fresh(16);
  enum { N = 1000 };
  static void *p[N], *q[N];
  static void *all[2 * N];
  tt_loop_alloc(all, 2 * N, 40); /* one call site in a loop: one stack */
  memcpy(p, all, sizeof p);
  memcpy(q, all + N, sizeof q);
  void *fa[16], *fb[16];
  int na = refgc_trace_traceback(p[0], fa, 16);
  for (int i = 1; i < N; i++) {
    int nb = refgc_trace_traceback(p[i], fb, 16);
    ASSERT_EQ(nb, na);
    ASSERT(memcmp(fa, fb, (size_t)na * sizeof *fa) == 0);
  }
  int nq = refgc_trace_traceback(q[0], fb, 16);
  for (int i = 0; i < nq || i < na; i++)
    if (i >= na || i >= nq || fa[i] != fb[i])
      printf("# frame %d: %p %s / %p %s\n", i, i < na ? fa[i] : NULL, i < na ? fn_of(fa[i]) : "",
             i < nq ? fb[i] : NULL, i < nq ? fn_of(fb[i]) : "");
  refgc_snapshot_t *s = refgc_snapshot_take(0);
  size_t nt;
  const refgc_trace_t *t = refgc_snapshot_traces(s, &nt);
  ASSERT_EQ(nt, 2 * N);
  for (size_t i = 1; i < nt; i++) ASSERT_EQ(t[i].traceback, t[0].traceback);
  ASSERT_EQ(refgc_snapshot_tracebacks(s), 1);
  size_t ns;
  refgc_stat_t *st = refgc_snapshot_statistics(s, REFGC_GROUP_TRACEBACK, 0, &ns);
  ASSERT_EQ(ns, 1);
  ASSERT_EQ(st[0].count, 2 * N);
  ASSERT_EQ(st[0].traceback, t[0].traceback);
  refgc_stats_free(st);
  refgc_snapshot_free(s);
  for (int i = 0; i < N; i++) refgc_free(p[i]), refgc_free(q[i]);
  refgc_trace_stop();
}

/* The traceback hash spreads the stacks recursion makes: binary recursion through a left and
 * a right call site, 14 deep, is 16,384 stacks of the same two return addresses; each must get
 * its own hash, and they must spread over the per-thread cache (4096 slots, indexed by bits
 * 7..18) and the table's index (the low bits) as random keys would, whatever the distance
 * between the two call sites. The same frame repeated at other depths, and any two frames
 * swapped, give other hashes. */
uint64_t refgc__trace_tb_hash(void *const *frames, int n);
static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}
static size_t distinct_u64(uint64_t *v, size_t n) {
  qsort(v, n, sizeof *v, cmp_u64);
  size_t d = 0;
  for (size_t i = 0; i < n; i++)
    if (i == 0 || v[i] != v[i - 1]) d++;
  return d;
}
TEST(traceback_hash_spreads_recursive_stacks) {
  enum { DEPTH = 14, N = 1 << DEPTH };
  static uint64_t h[N], slot[N], low[N];
  static const uintptr_t gaps[] = {5, 8, 13, 64, 4096};
  for (size_t g = 0; g < sizeof gaps / sizeof *gaps; g++) {
    uintptr_t left = 0x55555555a1c3u, right = left + gaps[g];
    for (uint32_t bits = 0; bits < N; bits++) {
      void *fr[DEPTH + 2];
      for (int i = 0; i < DEPTH; i++) fr[i] = (void *)((bits >> i) & 1 ? right : left);
      fr[DEPTH] = (void *)(uintptr_t)0x555555556010u;
      fr[DEPTH + 1] = (void *)(uintptr_t)0x7ffff7829d90u;
      h[bits] = refgc__trace_tb_hash(fr, DEPTH + 2);
      slot[bits] = (h[bits] >> 7) & 4095;
      low[bits] = h[bits] & 32767;
    }
    size_t dh = distinct_u64(h, N), ds = distinct_u64(slot, N), dl = distinct_u64(low, N);
    printf("# call sites %zu bytes apart: %zu hashes, %zu of 4096 cache slots, %zu of 32768 "
           "index slots\n", (size_t)gaps[g], dh, ds, dl);
    ASSERT_EQ(dh, N);
    /* random keys: 4096 (1 - e^-4) = 4021 and 32768 (1 - e^-0.5) = 12893 expected */
    ASSERT(ds >= 3950);
    ASSERT(dl >= 12500);
  }
  void *same[64];
  for (int i = 0; i < 64; i++) same[i] = (void *)(uintptr_t)0x400123u;
  for (int i = 0; i < 64; i++) h[i] = refgc__trace_tb_hash(same, i + 1);
  ASSERT_EQ(distinct_u64(h, 64), 64);
  test_rng_t rng = {42};
  void *fr[16];
  for (int i = 0; i < 16; i++) fr[i] = (void *)(uintptr_t)(test_rand(&rng) >> 17);
  uint64_t h0 = refgc__trace_tb_hash(fr, 16);
  for (int i = 0; i < 16; i++)
    for (int j = i + 1; j < 16; j++) {
      void *sw[16];
      memcpy(sw, fr, sizeof sw);
      sw[i] = fr[j];
      sw[j] = fr[i];
      if (fr[i] != fr[j]) ASSERT(refgc__trace_tb_hash(sw, 16) != h0);
    }
}

/* ====================================================================================== */
/* Snapshots: statistics, filters, compare                                                 */
/* ====================================================================================== */

/* The constructed program of the statistics cases:
 *   A: 10 raw blocks of 100        (tt_site_a)        1000 bytes
 *   B: 5 raw blocks of 3000        (tt_site_b)       15000
 *   C: 3 tt.leaf objects of 48     (tt_site_c)         144
 *   D: 2 tt.vec objects, 10 items  (tt_site_d)         192
 *   E: 7 raw blocks of 50          (tt_site_e, called from tt_site_e_outer)  350 */
typedef struct prog_s {
  void *a[10], *b[5], *e[7];
  refgc_object_t *c[3], *d[2];
} prog_t;
#define PROG_TOTAL (1000 + 15000 + 144 + 192 + 350)
#define PROG_COUNT (10 + 5 + 3 + 2 + 7)

static void prog_run(prog_t *pg) {
  for (int i = 0; i < 10; i++) pg->a[i] = tt_site_a(100);
  for (int i = 0; i < 5; i++) pg->b[i] = tt_site_b(3000);
  for (int i = 0; i < 3; i++) pg->c[i] = tt_site_c();
  for (int i = 0; i < 2; i++) pg->d[i] = tt_site_d(10);
  for (int i = 0; i < 7; i++) pg->e[i] = tt_site_e_outer(50);
}
static void prog_free(prog_t *pg) {
  for (int i = 0; i < 10; i++) refgc_free(pg->a[i]);
  for (int i = 0; i < 5; i++) refgc_free(pg->b[i]);
  for (int i = 0; i < 3; i++) refgc_decref(pg->c[i]);
  for (int i = 0; i < 2; i++) if (pg->d[i]) refgc_decref(pg->d[i]);
  for (int i = 0; i < 7; i++) refgc_free(pg->e[i]);
}

/* this file's name as the symbolizer spells it */
static char this_file[1024];
static void find_this_file(void) {
  refgc_frame_info_t fi;
  ASSERT_EQ(refgc_symbolize((uintptr_t)(void *)tt_site_a + 8, &fi), 0);
  snprintf(this_file, sizeof this_file, "%s", fi.file);
  if (!ends_with(this_file, "test_trace.c")) TEST_FAIL("file of tt_site_a: \"%s\"", this_file);
}
static const char *line_key(int line) {
  static char buf[8][1100];
  static int k;
  char *b = buf[k++ % 8];
  snprintf(b, sizeof buf[0], "%s:%d", this_file, line);
  return b;
}

TEST(statistics_by_group) {
  types_init();
  trace_fresh(16);
  prog_t pg;
  prog_run(&pg);
  refgc_snapshot_t *s = refgc_snapshot_take(0);
  ASSERT(s);
  size_t n;

  /* function */
  refgc_stat_t *st = refgc_snapshot_statistics(s, REFGC_GROUP_FUNCTION, 0, &n);
  ASSERT(st);
  check_sorted(st, n);
  ASSERT_ROW(find_fn_row(st, n, "tt_site_a"), 1000, 10);
  ASSERT_ROW(find_fn_row(st, n, "tt_site_b"), 15000, 5);
  ASSERT_ROW(find_fn_row(st, n, "tt_site_c"), 144, 3);
  ASSERT_ROW(find_fn_row(st, n, "tt_site_d"), 192, 2);
  ASSERT_ROW(find_fn_row(st, n, "tt_site_e"), 350, 7);
  ASSERT(find_fn_row(st, n, "tt_site_e_outer") == NULL); /* not cumulative */
  ASSERT_EQ(n, 5);
  ASSERT(fn_is(st[0].key, "tt_site_b"));
  ASSERT(fn_is(st[1].key, "tt_site_a"));
  ASSERT(fn_is(st[2].key, "tt_site_e"));
  ASSERT(fn_is(st[3].key, "tt_site_d"));
  ASSERT(fn_is(st[4].key, "tt_site_c"));
  for (size_t i = 0; i < n; i++) {
    ASSERT_EQ(st[i].traceback, UINT32_MAX);
    ASSERT_EQ(st[i].size_diff, 0);
    ASSERT_EQ(st[i].count_diff, 0);
  }
  ASSERT_EQ(rows_size(st, n), PROG_TOTAL);
  ASSERT_EQ(rows_count(st, n), PROG_COUNT);
  refgc_stats_free(st);

  /* type */
  st = refgc_snapshot_statistics(s, REFGC_GROUP_TYPE, 0, &n);
  check_sorted(st, n);
  ASSERT_EQ(n, 3);
  ASSERT_ROW(find_row(st, n, ""), 1000 + 15000 + 350, 22);
  ASSERT_ROW(find_row(st, n, "tt.leaf"), 144, 3);
  ASSERT_ROW(find_row(st, n, "tt.vec"), 192, 2);
  refgc_stats_free(st);

  /* traceback: one per site, the key is the innermost frame's file:line */
  st = refgc_snapshot_statistics(s, REFGC_GROUP_TRACEBACK, 0, &n);
  check_sorted(st, n);
  ASSERT_EQ(n, 5);
  static const char *sites[] = {"tt_site_b", "tt_site_a", "tt_site_e", "tt_site_d", "tt_site_c"};
  for (size_t i = 0; i < n; i++) {
    ASSERT(st[i].traceback < refgc_snapshot_tracebacks(s));
    const uint32_t *frames;
    size_t nf = refgc_snapshot_traceback(s, st[i].traceback, &frames);
    ASSERT(nf >= 3);
    const refgc_frame_info_t *f0 = refgc_snapshot_frame(s, frames[0]);
    if (!fn_is(f0->function, sites[i])) TEST_FAIL("row %zu: %s, expected %s", i, f0->function, sites[i]);
    if (i == 2) ASSERT(fn_is(refgc_snapshot_frame(s, frames[1])->function, "tt_site_e_outer"));
    if (have_libdw()) {
      char key[1100];
      snprintf(key, sizeof key, "%s:%d", f0->file, f0->line);
      ASSERT(strcmp(st[i].key, key) == 0);
    }
  }
  refgc_stats_free(st);

  if (have_libdw()) {
    find_this_file();
    /* file */
    st = refgc_snapshot_statistics(s, REFGC_GROUP_FILE, 0, &n);
    ASSERT_EQ(n, 1);
    ASSERT(strcmp(st[0].key, this_file) == 0);
    ASSERT_ROW(&st[0], PROG_TOTAL, PROG_COUNT);
    refgc_stats_free(st);
    /* line */
    st = refgc_snapshot_statistics(s, REFGC_GROUP_LINE, 0, &n);
    check_sorted(st, n);
    ASSERT_EQ(n, 5);
    ASSERT_ROW(find_row(st, n, line_key(line_a)), 1000, 10);
    ASSERT_ROW(find_row(st, n, line_key(line_b)), 15000, 5);
    ASSERT_ROW(find_row(st, n, line_key(line_c)), 144, 3);
    ASSERT_ROW(find_row(st, n, line_key(line_d)), 192, 2);
    ASSERT_ROW(find_row(st, n, line_key(line_e)), 350, 7);
    refgc_stats_free(st);
    /* traceback rows have the line keys of their innermost frames */
    st = refgc_snapshot_statistics(s, REFGC_GROUP_TRACEBACK, 0, &n);
    ASSERT(strcmp(st[0].key, line_key(line_b)) == 0);
    ASSERT(strcmp(st[4].key, line_key(line_c)) == 0);
    refgc_stats_free(st);
  }
  refgc_snapshot_free(s);
  prog_free(&pg);
  refgc_trace_stop();
}

TEST(statistics_cumulative) {
  types_init();
  trace_fresh(16);
  prog_t pg;
  prog_run(&pg);
  void *rec[4];
  for (int i = 0; i < 4; i++) rec[i] = tt_recurse(5, 1000); /* tt_recurse 6 times per stack */
  refgc_snapshot_t *s = refgc_snapshot_take(0);
  size_t n;
  refgc_stat_t *st = refgc_snapshot_statistics(s, REFGC_GROUP_FUNCTION, 1, &n);
  check_sorted(st, n);
  ASSERT_ROW(find_fn_row(st, n, "tt_site_a"), 1000, 10);
  ASSERT_ROW(find_fn_row(st, n, "tt_site_e"), 350, 7);
  ASSERT_ROW(find_fn_row(st, n, "tt_site_e_outer"), 350, 7);
  ASSERT_ROW(find_fn_row(st, n, "tt_recurse"), 4000, 4); /* once per trace, not 6 times */
  ASSERT_ROW(find_fn_row(st, n, "main"), PROG_TOTAL + 4000, PROG_COUNT + 4);
  if (have_libdw())
    ASSERT_ROW(find_fn_row(st, n, "test_statistics_cumulative"), PROG_TOTAL + 4000, PROG_COUNT + 4);
  /* the largest rows are those every trace passes through */
  ASSERT_EQ(st[0].size, PROG_TOTAL + 4000);
  refgc_stats_free(st);
  /* non-cumulative: the recursion's traces under tt_recurse only */
  st = refgc_snapshot_statistics(s, REFGC_GROUP_FUNCTION, 0, &n);
  ASSERT_ROW(find_fn_row(st, n, "tt_recurse"), 4000, 4);
  ASSERT(find_fn_row(st, n, "main") == NULL);
  refgc_stats_free(st);
  /* type statistics ignore `cumulative` */
  st = refgc_snapshot_statistics(s, REFGC_GROUP_TYPE, 1, &n);
  ASSERT_EQ(n, 3);
  ASSERT_ROW(find_row(st, n, "tt.leaf"), 144, 3);
  ASSERT_EQ(rows_size(st, n), PROG_TOTAL + 4000);
  refgc_stats_free(st);
  if (have_libdw()) {
    find_this_file();
    st = refgc_snapshot_statistics(s, REFGC_GROUP_LINE, 1, &n);
    check_sorted(st, n);
    ASSERT_ROW(find_row(st, n, line_key(line_r)), 4000, 4);
    ASSERT_ROW(find_row(st, n, line_key(line_r_call)), 4000, 4); /* 5 frames, one key */
    ASSERT_ROW(find_row(st, n, line_key(line_e_call)), 350, 7);
    ASSERT_ROW(find_row(st, n, line_key(line_e)), 350, 7);
    refgc_stats_free(st);
    st = refgc_snapshot_statistics(s, REFGC_GROUP_FILE, 1, &n);
    ASSERT_ROW(find_row(st, n, this_file), PROG_TOTAL + 4000, PROG_COUNT + 4);
    refgc_stats_free(st);
  }
  refgc_snapshot_free(s);
  for (int i = 0; i < 4; i++) refgc_free(rec[i]);
  prog_free(&pg);
  refgc_trace_stop();
}

TEST(statistics_order_and_ties) {
  trace_fresh(4);
  void *x = tt_tie_x(200), *y1 = tt_tie_y(100), *y2 = tt_tie_y(100);
  void *big = tt_site_f(5000);
  refgc_snapshot_t *s = refgc_snapshot_take(0);
  size_t n;
  refgc_stat_t *st = refgc_snapshot_statistics(s, REFGC_GROUP_FUNCTION, 0, &n);
  ASSERT_EQ(n, 3);
  check_sorted(st, n);
  ASSERT(fn_is(st[0].key, "tt_site_f"));
  ASSERT_EQ(st[1].size, 200);
  ASSERT_EQ(st[2].size, 200);
  refgc_stats_free(st);
  refgc_snapshot_free(s);
  refgc_free(x), refgc_free(y1), refgc_free(y2), refgc_free(big);
  /* an empty snapshot: NULL and no error */
  s = refgc_snapshot_take(0);
  n = 99;
  st = refgc_snapshot_statistics(s, REFGC_GROUP_LINE, 0, &n);
  ASSERT(st == NULL);
  ASSERT_EQ(n, 0);
  ASSERT_EQ(refgc_last_error(), 0);
  refgc_snapshot_free(s);
  refgc_trace_stop();
}

/* the traces a filtered snapshot kept, as total size and count */
static void filtered(refgc_snapshot_t *s, const refgc_filter_t *f, size_t nf, uint64_t *size,
                     uint64_t *count) {
  refgc_snapshot_t *d = refgc_snapshot_filter(s, f, nf);
  if (!d) TEST_FAIL("refgc_snapshot_filter failed: %d", refgc_last_error());
  size_t n;
  const refgc_trace_t *t = refgc_snapshot_traces(d, &n);
  *size = 0;
  *count = n;
  for (size_t i = 0; i < n; i++) *size += t[i].size;
  refgc_snapshot_info_t info = snap_info(d);
  ASSERT_EQ(info.traced_current, *size);
  ASSERT_EQ(info.trace_count, n);
  /* statistics of the filtered snapshot add up to the same */
  size_t ns;
  refgc_stat_t *st = refgc_snapshot_statistics(d, REFGC_GROUP_FUNCTION, 0, &ns);
  ASSERT_EQ(rows_size(st, ns), *size);
  ASSERT_EQ(rows_count(st, ns), n);
  refgc_stats_free(st);
  refgc_snapshot_free(d);
}
#define ASSERT_FILTER(f, nf, sz, cnt)                                                        \
  do {                                                                                       \
    uint64_t s_, c_;                                                                         \
    filtered(s, f, nf, &s_, &c_);                                                            \
    if (s_ != (uint64_t)(sz) || c_ != (uint64_t)(cnt))                                       \
      TEST_FAIL("filter %s kept %llu bytes in %llu traces, expected %llu in %llu", #f,       \
                (unsigned long long)s_, (unsigned long long)c_, (unsigned long long)(sz),    \
                (unsigned long long)(cnt));                                                  \
  } while (0)

TEST(filters) {
  types_init();
  if (!have_libdw()) {
    printf("# files and lines need libdw: only type and size filters\n");
  }
  trace_fresh(16);
  prog_t pg;
  prog_run(&pg);
  refgc_snapshot_t *s = refgc_snapshot_take(0);
  refgc_filter_t f[3];
  memset(f, 0, sizeof f);
  /* no filters: everything */
  ASSERT_FILTER(f, 0, PROG_TOTAL, PROG_COUNT);
  ASSERT_FILTER(NULL, 0, PROG_TOTAL, PROG_COUNT);
  /* an all-zero exclusive filter matches everything and drops it */
  ASSERT_FILTER(f, 1, 0, 0);
  /* an all-zero inclusive filter keeps everything */
  f[0].inclusive = 1;
  ASSERT_FILTER(f, 1, PROG_TOTAL, PROG_COUNT);
  /* types */
  f[0] = (refgc_filter_t){1, NULL, 0, 0, "tt.*", 0, 0};
  ASSERT_FILTER(f, 1, 144 + 192, 5);
  f[0] = (refgc_filter_t){1, NULL, 0, 0, "", 0, 0};
  ASSERT_FILTER(f, 1, 16350, 22);
  f[0] = (refgc_filter_t){0, NULL, 0, 0, "tt.leaf", 0, 0};
  ASSERT_FILTER(f, 1, PROG_TOTAL - 144, PROG_COUNT - 3);
  /* sizes: bounds are inclusive; max 0 is no limit */
  f[0] = (refgc_filter_t){1, NULL, 0, 0, NULL, 50, 100};
  ASSERT_FILTER(f, 1, 1000 + 192 + 350, 10 + 2 + 7);
  f[0] = (refgc_filter_t){1, NULL, 0, 0, NULL, 101, 0};
  ASSERT_FILTER(f, 1, 15000, 5);
  f[0] = (refgc_filter_t){0, NULL, 0, 0, NULL, 0, 99};
  ASSERT_FILTER(f, 1, 1000 + 15000, 15);
  if (have_libdw()) {
    find_this_file();
    /* file patterns (fnmatch on the frame's file as the symbolizer gives it) */
    f[0] = (refgc_filter_t){1, "*test_trace.c", 0, 0, NULL, 0, 0};
    ASSERT_FILTER(f, 1, PROG_TOTAL, PROG_COUNT);
    f[0] = (refgc_filter_t){1, this_file, 0, 0, NULL, 0, 0};
    ASSERT_FILTER(f, 1, PROG_TOTAL, PROG_COUNT);
    f[0] = (refgc_filter_t){0, "*test_trace.c", 0, 0, NULL, 0, 0};
    ASSERT_FILTER(f, 1, 0, 0);
    f[0] = (refgc_filter_t){1, "*nosuchfile.c", 0, 0, NULL, 0, 0};
    ASSERT_FILTER(f, 1, 0, 0);
    /* lines: of the innermost frame, or of any frame with all_frames */
    f[0] = (refgc_filter_t){1, NULL, line_b, 0, NULL, 0, 0};
    ASSERT_FILTER(f, 1, 15000, 5);
    f[0] = (refgc_filter_t){1, "*test_trace.c", line_b, 0, NULL, 0, 0};
    ASSERT_FILTER(f, 1, 15000, 5);
    f[0] = (refgc_filter_t){1, "*other.c", line_b, 0, NULL, 0, 0};
    ASSERT_FILTER(f, 1, 0, 0);
    f[0] = (refgc_filter_t){1, NULL, line_e_call, 0, NULL, 0, 0};
    ASSERT_FILTER(f, 1, 0, 0);
    f[0] = (refgc_filter_t){1, NULL, line_e_call, 1, NULL, 0, 0};
    ASSERT_FILTER(f, 1, 350, 7);
    f[0] = (refgc_filter_t){0, NULL, line_e_call, 1, NULL, 0, 0};
    ASSERT_FILTER(f, 1, PROG_TOTAL - 350, PROG_COUNT - 7);
    /* a file pattern with all_frames matches traces whose stack passes through the file */
    f[0] = (refgc_filter_t){1, "*test_trace.c", 0, 1, NULL, 0, 0};
    ASSERT_FILTER(f, 1, PROG_TOTAL, PROG_COUNT);
    /* combinations: (raw OR line b) AND NOT size >= 1000 -> A and E */
    f[0] = (refgc_filter_t){1, NULL, 0, 0, "", 0, 0};
    f[1] = (refgc_filter_t){1, NULL, line_b, 0, NULL, 0, 0};
    f[2] = (refgc_filter_t){0, NULL, 0, 0, NULL, 1000, 0};
    ASSERT_FILTER(f, 3, 1000 + 350, 17);
    /* within one filter every field must match: type tt.vec at line b matches nothing */
    f[0] = (refgc_filter_t){1, NULL, line_b, 0, "tt.vec", 0, 0};
    ASSERT_FILTER(f, 1, 0, 0);
    f[0] = (refgc_filter_t){1, NULL, line_d, 0, "tt.vec", 0, 0};
    ASSERT_FILTER(f, 1, 192, 2);
    /* two exclusive filters: neither line a nor line e */
    f[0] = (refgc_filter_t){0, NULL, line_a, 0, NULL, 0, 0};
    f[1] = (refgc_filter_t){0, NULL, line_e, 0, NULL, 0, 0};
    ASSERT_FILTER(f, 2, PROG_TOTAL - 1000 - 350, PROG_COUNT - 17);
    /* a filtered snapshot filters again, and its line statistics keep their keys */
    f[0] = (refgc_filter_t){1, NULL, line_a, 0, NULL, 0, 0};
    refgc_snapshot_t *d = refgc_snapshot_filter(s, f, 1);
    refgc_snapshot_t *d2 = refgc_snapshot_filter(d, NULL, 0);
    size_t n;
    refgc_stat_t *st = refgc_snapshot_statistics(d2, REFGC_GROUP_LINE, 0, &n);
    ASSERT_EQ(n, 1);
    ASSERT(strcmp(st[0].key, line_key(line_a)) == 0);
    ASSERT_ROW(&st[0], 1000, 10);
    refgc_stats_free(st);
    refgc_snapshot_free(d2);
    refgc_snapshot_free(d);
  }
  /* combination without files: (type tt.* OR size >= 3000), not tt.leaf */
  f[0] = (refgc_filter_t){1, NULL, 0, 0, "tt.*", 0, 0};
  f[1] = (refgc_filter_t){1, NULL, 0, 0, NULL, 3000, 0};
  f[2] = (refgc_filter_t){0, NULL, 0, 0, "tt.leaf", 0, 0};
  ASSERT_FILTER(f, 3, 192 + 15000, 7);
  /* the filtered snapshot keeps everything but traces */
  f[0] = (refgc_filter_t){1, NULL, 0, 0, "tt.vec", 0, 0};
  refgc_snapshot_t *d = refgc_snapshot_filter(s, f, 1);
  refgc_snapshot_info_t a = snap_info(s), b = snap_info(d);
  ASSERT_EQ(b.trace_count, 2);
  ASSERT_EQ(b.traced_current, 192);
  ASSERT_EQ(a.pid, b.pid);
  ASSERT_EQ(a.objects, b.objects);
  ASSERT_EQ(a.heap_in_use, b.heap_in_use);
  ASSERT_EQ(a.frames, b.frames);
  ASSERT_EQ(a.series_points, b.series_points);
  refgc_snapshot_free(d);
  refgc_snapshot_free(s);
  prog_free(&pg);
  refgc_trace_stop();
}

TEST(compare_snapshots) {
  types_init();
  trace_fresh(16);
  prog_t pg;
  prog_run(&pg);
  refgc_snapshot_t *older = refgc_snapshot_take(0);
  /* A: 5 of 10 freed; B: 4 more; D: all gone; F: new, 2 of 700; C, E unchanged */
  for (int i = 0; i < 5; i++) refgc_free(pg.a[i]), pg.a[i] = NULL;
  void *more_b[4], *f[2];
  for (int i = 0; i < 4; i++) more_b[i] = tt_site_b(3000);
  for (int i = 0; i < 2; i++) refgc_decref(pg.d[i]), pg.d[i] = NULL;
  for (int i = 0; i < 2; i++) f[i] = tt_site_f(700);
  refgc_snapshot_t *newer = refgc_snapshot_take(0);
  size_t n;
  refgc_stat_t *st = refgc_snapshot_compare(newer, older, REFGC_GROUP_FUNCTION, 0, &n);
  ASSERT(st);
  for (size_t i = 0; i < n; i++)
    printf("# %s: %llu (%+lld) in %llu (%+lld)\n", st[i].key, (unsigned long long)st[i].size,
           (long long)st[i].size_diff, (unsigned long long)st[i].count, (long long)st[i].count_diff);
  ASSERT_EQ(n, 6);
  /* largest absolute size difference first */
  ASSERT(fn_is(st[0].key, "tt_site_b"));
  ASSERT_EQ(st[0].size, 27000);
  ASSERT_EQ(st[0].count, 9);
  ASSERT_EQ(st[0].size_diff, 12000);
  ASSERT_EQ(st[0].count_diff, 4);
  ASSERT(fn_is(st[1].key, "tt_site_f"));
  ASSERT_EQ(st[1].size, 1400);
  ASSERT_EQ(st[1].size_diff, 1400);
  ASSERT_EQ(st[1].count_diff, 2);
  ASSERT(fn_is(st[2].key, "tt_site_a"));
  ASSERT_EQ(st[2].size, 500);
  ASSERT_EQ(st[2].count, 5);
  ASSERT_EQ(st[2].size_diff, -500);
  ASSERT_EQ(st[2].count_diff, -5);
  ASSERT(fn_is(st[3].key, "tt_site_d")); /* gone: size 0 */
  ASSERT_EQ(st[3].size, 0);
  ASSERT_EQ(st[3].count, 0);
  ASSERT_EQ(st[3].size_diff, -192);
  ASSERT_EQ(st[3].count_diff, -2);
  ASSERT_EQ(st[3].traceback, UINT32_MAX);
  /* unchanged rows last, by size */
  ASSERT(fn_is(st[4].key, "tt_site_e"));
  ASSERT_EQ(st[4].size_diff, 0);
  ASSERT(fn_is(st[5].key, "tt_site_c"));
  ASSERT_EQ(st[5].size_diff, 0);
  ASSERT_EQ(st[5].count, 3);
  refgc_stats_free(st);
  /* by traceback: indexes are the newer snapshot's */
  st = refgc_snapshot_compare(newer, older, REFGC_GROUP_TRACEBACK, 0, &n);
  ASSERT_EQ(n, 7); /* the 4 new blocks of B come through another stack than prog_run's */
  ASSERT_EQ(st[0].size, 12000);
  ASSERT_EQ(st[0].size_diff, 12000);
  ASSERT_EQ(st[0].count_diff, 4);
  for (size_t i = 0; i < n; i++) {
    if (st[i].size == 0) {
      ASSERT_EQ(st[i].traceback, UINT32_MAX);
      continue;
    }
    const uint32_t *fr;
    ASSERT(refgc_snapshot_traceback(newer, st[i].traceback, &fr) > 0);
  }
  ASSERT_EQ(st[0].size_diff, 12000);
  refgc_stats_free(st);
  /* by type */
  st = refgc_snapshot_compare(newer, older, REFGC_GROUP_TYPE, 0, &n);
  ASSERT_EQ(n, 3);
  ASSERT_EQ(st[0].key[0], 0); /* raw: +12000 + 1400 - 500 */
  ASSERT_EQ(st[0].size_diff, 12900);
  ASSERT_EQ(st[0].count_diff, 1);
  ASSERT(strcmp(st[1].key, "tt.vec") == 0);
  ASSERT_EQ(st[1].size_diff, -192);
  ASSERT(strcmp(st[2].key, "tt.leaf") == 0);
  ASSERT_EQ(st[2].size_diff, 0);
  refgc_stats_free(st);
  /* a snapshot compared with itself: every difference 0, rows as its statistics */
  st = refgc_snapshot_compare(newer, newer, REFGC_GROUP_FUNCTION, 1, &n);
  size_t n2;
  refgc_stat_t *plain = refgc_snapshot_statistics(newer, REFGC_GROUP_FUNCTION, 1, &n2);
  ASSERT_EQ(n, n2);
  for (size_t i = 0; i < n; i++) {
    ASSERT_EQ(st[i].size_diff, 0);
    ASSERT_EQ(st[i].count_diff, 0);
    ASSERT(strcmp(st[i].key, plain[i].key) == 0);
    ASSERT_EQ(st[i].size, plain[i].size);
  }
  refgc_stats_free(plain);
  refgc_stats_free(st);
  /* the same in the other direction */
  st = refgc_snapshot_compare(older, newer, REFGC_GROUP_FUNCTION, 0, &n);
  ASSERT_EQ(n, 6);
  ASSERT(fn_is(st[0].key, "tt_site_b"));
  ASSERT_EQ(st[0].size_diff, -12000);
  ASSERT(fn_is(st[1].key, "tt_site_f"));
  ASSERT_EQ(st[1].size, 0);
  ASSERT_EQ(st[1].size_diff, -1400);
  refgc_stats_free(st);
  refgc_snapshot_free(older);
  refgc_snapshot_free(newer);
  for (int i = 0; i < 4; i++) refgc_free(more_b[i]);
  for (int i = 0; i < 2; i++) refgc_free(f[i]);
  prog_free(&pg);
  refgc_trace_stop();
}

/* ---- type counts, info, series ------------------------------------------------------------- */

static const refgc_type_count_t *find_type(const refgc_type_count_t *tc, size_t n, const char *name) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(tc[i].type, name) == 0) return &tc[i];
  return NULL;
}

TEST(type_counts_and_info) {
  types_init();
  trace_off();
  /* objects made before tracing count too (type counts cover every object) */
  /* counts before, so that objects an earlier failed case left behind do not matter */
  size_t nb;
  refgc_type_count_t *before = refgc_objects_by_type(&nb);
  uint64_t leaf0 = 0, vec0 = 0, cache0 = 0;
  for (size_t i = 0; i < nb; i++) {
    if (strcmp(before[i].type, "tt.leaf") == 0) leaf0 = before[i].count;
    if (strcmp(before[i].type, "tt.vec") == 0) vec0 = before[i].count;
    if (strcmp(before[i].type, "tt.cache") == 0) cache0 = before[i].count;
  }
  refgc_type_counts_free(before);
  refgc_object_t *early[4];
  for (int i = 0; i < 4; i++) early[i] = refgc_new(cache_t);
  trace_fresh(8);
  prog_t pg;
  prog_run(&pg);
  refgc_object_t *late = refgc_new(cache_t);
  refgc_heap_stats_t hs = heap_stats();
  size_t cur, peak;
  refgc_trace_get_memory(&cur, &peak);
  double t0 = (double)time(NULL);
  refgc_snapshot_t *s = refgc_snapshot_take(0);
  ASSERT(s);
  size_t n;
  const refgc_type_count_t *tc = refgc_snapshot_type_counts(s, &n);
  ASSERT(tc && n >= 3);
  const refgc_type_count_t *leaf = find_type(tc, n, "tt.leaf"), *vec = find_type(tc, n, "tt.vec"),
                           *cache = find_type(tc, n, "tt.cache");
  ASSERT(leaf && vec && cache);
  ASSERT_EQ(leaf->count, leaf0 + 3);
  ASSERT_EQ(leaf->bytes, (leaf0 + 3) * refgc_object_size(pg.c[0]));
  ASSERT_EQ(vec->count, vec0 + 2);
  if (!vec0) ASSERT_EQ(vec->bytes, 2 * refgc_object_size(pg.d[0]));
  ASSERT_EQ(cache->count, cache0 + 5);
  ASSERT_EQ(cache->bytes, (cache0 + 5) * refgc_object_size(late));
  for (size_t i = 1; i < n; i++) ASSERT(tc[i - 1].count >= tc[i].count);
  uint64_t objects = 0;
  for (size_t i = 0; i < n; i++) objects += tc[i].count;
  refgc_snapshot_info_t info = snap_info(s);
  ASSERT_EQ(info.size, sizeof info);
  ASSERT_EQ(info.objects, objects);
  ASSERT_EQ(info.frames, 8);
  ASSERT_EQ(info.sample_bytes, 0);
  ASSERT_EQ(info.traced_current, cur);
  ASSERT_EQ(info.traced_current, PROG_TOTAL + 64);
  ASSERT_EQ(info.traced_peak, peak);
  ASSERT_EQ(info.trace_count, PROG_COUNT + 1);
  ASSERT_EQ(info.heap_in_use, hs.in_use);
  ASSERT_EQ(info.heap_committed, hs.committed);
  ASSERT_EQ(info.pid, (uint64_t)getpid());
  ASSERT(info.program && ends_with(info.program, "test_trace"));
  ASSERT(info.time >= t0 - 2 && info.time <= t0 + 60);
  ASSERT(info.uptime >= 0);
  ASSERT(info.rss > 0);
  ASSERT(info.tracer_memory > 0);
  ASSERT_EQ(info.graph_nodes, 0);
  ASSERT_EQ(info.graph_edges, 0);
  ASSERT(info.version >= 1);
  refgc_gc_gen_stats_t gs[3];
  refgc_gc_get_stats(gs);
  for (int g = 0; g < 3; g++) ASSERT_EQ(info.gc_collections[g], gs[g].collections);
  /* a caller with an older, smaller struct is refused */
  refgc_snapshot_info_t small;
  small.size = sizeof small - 8;
  ASSERT_EQ(refgc_snapshot_info(s, &small), REFGC_EINVAL);
  /* the type of each object trace is its type; raw blocks have type 0 "" */
  const refgc_trace_t *tr = refgc_snapshot_traces(s, &n);
  size_t raw = 0, leafs = 0, caches = 0;
  for (size_t i = 0; i < n; i++) {
    const char *name = refgc_snapshot_type_name(s, tr[i].type);
    ASSERT(name);
    if (tr[i].type == 0) {
      ASSERT_EQ(name[0], 0);
      raw++;
    }
    if (strcmp(name, "tt.leaf") == 0) {
      ASSERT_EQ(tr[i].size, 48);
      leafs++;
    }
    if (strcmp(name, "tt.cache") == 0) {
      ASSERT_EQ(tr[i].size, 64);
      caches++;
    }
  }
  ASSERT_EQ(raw, 22);
  ASSERT_EQ(leafs, 3); /* traces: only this session's */
  ASSERT_EQ(caches, 1); /* only the one made while tracing */
  refgc_snapshot_free(s);
  prog_free(&pg);
  refgc_decref(late);
  for (int i = 0; i < 4; i++) refgc_decref(early[i]);
  refgc_trace_stop();
}

TEST(memory_series) {
  trace_fresh(4);
  refgc_snapshot_t *s0 = refgc_snapshot_take(0);
  size_t n0;
  refgc_snapshot_series(s0, &n0);
  refgc_snapshot_free(s0);
  ASSERT_EQ(n0, 0); /* a new start begins a new series */
  void *p = refgc_malloc(12345);
  refgc_trace_sample_now();
  void *q = refgc_malloc(300000);
  refgc_trace_sample_now();
  refgc_free(p);
  refgc_trace_sample_now();
  refgc_snapshot_t *s = refgc_snapshot_take(0);
  size_t n;
  const refgc_series_point_t *pt = refgc_snapshot_series(s, &n);
  /* our three points; the allocation path may have added one of its own at an allocation
   * (its first point of a session is due at once), with the same traced figure */
  ASSERT(n == 3 || n == 4);
  ASSERT_EQ(snap_info(s).series_points, n);
  uint64_t distinct[4];
  size_t nd = 0;
  for (size_t i = 0; i < n; i++) {
    if (i) ASSERT(pt[i - 1].t <= pt[i].t);
    if (!nd || distinct[nd - 1] != pt[i].traced) distinct[nd++] = pt[i].traced;
  }
  ASSERT_EQ(nd, 3);
  ASSERT_EQ(distinct[0], 12345);
  ASSERT_EQ(distinct[1], 312345);
  ASSERT_EQ(distinct[2], 300000);
  for (size_t i = 0; i < n; i++) /* the large block is in the heap's figures too */
    if (pt[i].traced == 312345) ASSERT(pt[i].in_use >= pt[0].in_use + 300000);
  ASSERT(pt[n - 1].committed >= pt[n - 1].in_use);
  ASSERT(pt[n - 1].rss > 0);
  refgc_snapshot_free(s);
  size_t kept = n;
  /* the series survives stop, for a snapshot after tracing */
  refgc_trace_stop();
  s = refgc_snapshot_take(0);
  refgc_snapshot_series(s, &n);
  ASSERT_EQ(n, kept);
  refgc_snapshot_free(s);
  /* the allocation path adds points by itself every REFGC_TRACE_SERIES_MS (100 ms) */
  ASSERT_EQ(refgc_trace_start(4), 0);
  double t = now_s();
  while (now_s() - t < 0.25) {
    void *r = refgc_malloc(64);
    refgc_free(r);
  }
  s = refgc_snapshot_take(0);
  refgc_snapshot_series(s, &n);
  ASSERT(n >= 2 && n <= 4);
  refgc_snapshot_free(s);
  refgc_free(q);
  refgc_trace_stop();
}

/* ---- save and load -------------------------------------------------------------------------- */

static void same_stats(refgc_snapshot_t *a, refgc_snapshot_t *b, refgc_group_t g, int cumulative) {
  size_t na, nb;
  refgc_stat_t *sa = refgc_snapshot_statistics(a, g, cumulative, &na);
  refgc_stat_t *sb = refgc_snapshot_statistics(b, g, cumulative, &nb);
  if (na != nb) TEST_FAIL("group %d cumulative %d: %zu rows, loaded %zu", g, cumulative, na, nb);
  for (size_t i = 0; i < na; i++) {
    if (strcmp(sa[i].key, sb[i].key) != 0 || sa[i].size != sb[i].size || sa[i].count != sb[i].count)
      TEST_FAIL("group %d cumulative %d row %zu: %s %llu %llu, loaded %s %llu %llu", g, cumulative,
                i, sa[i].key, (unsigned long long)sa[i].size, (unsigned long long)sa[i].count,
                sb[i].key, (unsigned long long)sb[i].size, (unsigned long long)sb[i].count);
    if (g == REFGC_GROUP_TRACEBACK) {
      const uint32_t *fa, *fb;
      size_t ka = refgc_snapshot_traceback(a, sa[i].traceback, &fa);
      size_t kb = refgc_snapshot_traceback(b, sb[i].traceback, &fb);
      ASSERT_EQ(ka, kb);
      for (size_t k = 0; k < ka; k++) {
        const refgc_frame_info_t *x = refgc_snapshot_frame(a, fa[k]), *y = refgc_snapshot_frame(b, fb[k]);
        ASSERT(strcmp(x->function, y->function) == 0);
        ASSERT(strcmp(x->file, y->file) == 0);
        ASSERT(strcmp(x->module, y->module) == 0);
        ASSERT_EQ(x->line, y->line);
        ASSERT_EQ(x->offset, y->offset);
        ASSERT_EQ(x->address, y->address);
      }
    }
  }
  refgc_stats_free(sa);
  refgc_stats_free(sb);
}

TEST(save_load_identical_statistics) {
  types_init();
  trace_fresh(16);
  prog_t pg;
  prog_run(&pg);
  void *rec[3];
  for (int i = 0; i < 3; i++) rec[i] = tt_recurse(3, 77);
  refgc_trace_sample_now();
  refgc_snapshot_t *s = refgc_snapshot_take(0);
  const char *path = tmp_path("roundtrip.rgc");
  ASSERT_EQ(refgc_snapshot_save(s, path), 0);
  refgc_snapshot_t *l = refgc_snapshot_load(path);
  if (!l) TEST_FAIL("load: %s", refgc_snapshot_error());
  for (int g = REFGC_GROUP_FILE; g <= REFGC_GROUP_TYPE; g++)
    for (int c = 0; c < 2; c++) same_stats(s, l, (refgc_group_t)g, c);
  refgc_snapshot_info_t a = snap_info(s), b = snap_info(l);
  ASSERT_EQ(a.pid, b.pid);
  ASSERT(a.time == b.time);
  ASSERT_EQ(a.frames, b.frames);
  ASSERT_EQ(a.traced_current, b.traced_current);
  ASSERT_EQ(a.traced_peak, b.traced_peak);
  ASSERT_EQ(a.trace_count, b.trace_count);
  ASSERT_EQ(a.heap_in_use, b.heap_in_use);
  ASSERT_EQ(a.objects, b.objects);
  ASSERT_EQ(a.series_points, b.series_points);
  ASSERT(strcmp(a.program, b.program) == 0);
  size_t na, nb;
  const refgc_type_count_t *ta = refgc_snapshot_type_counts(s, &na), *tb = refgc_snapshot_type_counts(l, &nb);
  ASSERT_EQ(na, nb);
  for (size_t i = 0; i < na; i++) {
    ASSERT(strcmp(ta[i].type, tb[i].type) == 0);
    ASSERT_EQ(ta[i].count, tb[i].count);
    ASSERT_EQ(ta[i].bytes, tb[i].bytes);
  }
  /* compared with its own copy, nothing changed */
  refgc_stat_t *d = refgc_snapshot_compare(l, s, REFGC_GROUP_TRACEBACK, 0, &na);
  ASSERT(na > 0);
  for (size_t i = 0; i < na; i++) ASSERT_EQ(d[i].size_diff, 0);
  refgc_stats_free(d);
  /* saving the loaded snapshot gives a snapshot with the same statistics again */
  const char *path2 = tmp_path("roundtrip2.rgc");
  ASSERT_EQ(refgc_snapshot_save(l, path2), 0);
  refgc_snapshot_t *l2 = refgc_snapshot_load(path2);
  ASSERT(l2);
  same_stats(l, l2, REFGC_GROUP_LINE, 1);
  same_stats(l, l2, REFGC_GROUP_TRACEBACK, 0);
  refgc_snapshot_free(l2);
  /* no temporary file is left next to the saved one */
  char tmpname[600];
  snprintf(tmpname, sizeof tmpname, "%s.tmp.%ld", path, (long)getpid());
  ASSERT(access(tmpname, F_OK) != 0);
  /* errors */
  ASSERT_EQ(refgc_snapshot_save(s, "/nonexistent-dir/x.rgc"), REFGC_EIO);
  ASSERT_STR_CONTAINS(refgc_snapshot_error(), "/nonexistent-dir/x.rgc");
  ASSERT(refgc_snapshot_load(tmp_path("missing.rgc")) == NULL);
  ASSERT_EQ(refgc_last_error(), REFGC_EIO);
  ASSERT_STR_CONTAINS(refgc_snapshot_error(), "missing.rgc");
  refgc_snapshot_free(l);
  refgc_snapshot_free(s);
  remove(path);
  remove(path2);
  for (int i = 0; i < 3; i++) refgc_free(rec[i]);
  prog_free(&pg);
  refgc_trace_stop();
}

/* ---- growth --------------------------------------------------------------------------------- */

TEST(growth_across_snapshots) {
  types_init();
  trace_fresh(4);
  enum { ROUNDS = 4 };
  static const int updown[ROUNDS] = {10, 30, 5, 40};
  void *grow[40], *ud[40], *cst[10], *late[15];
  refgc_object_t *cache[40];
  int nud = 0, ncache = 0;
  refgc_snapshot_t *snaps[ROUNDS];
  for (int i = 0; i < 10; i++) cst[i] = tt_const(64);
  for (int r = 0; r < ROUNDS; r++) {
    for (int i = 0; i < 10; i++) grow[r * 10 + i] = tt_grow(64);
    if (r > 0)
      for (int i = 0; i < 5; i++) late[(r - 1) * 5 + i] = tt_late(64);
    while (nud > updown[r]) refgc_free(ud[--nud]);
    while (nud < updown[r]) ud[nud++] = tt_updown(64);
    for (int i = 0; i < 10; i++) cache[ncache++] = refgc_new(cache_t);
    snaps[r] = refgc_snapshot_take(0);
    ASSERT(snaps[r]);
  }
  size_t n;
  refgc_growth_t *g = refgc_snapshots_growth(snaps, ROUNDS, REFGC_GROUP_FUNCTION, 1, &n);
  ASSERT(g);
  for (size_t i = 0; i < n; i++)
    printf("# growth: %s %llu -> %llu\n", g[i].key, (unsigned long long)g[i].first_size,
           (unsigned long long)g[i].last_size);
  /* tt_grow: 640 -> 2560; the objects' site (this function): 640 -> 2560; tt_late 0 -> 960 */
  ASSERT_EQ(n, 3);
  int seen_grow = 0, seen_late = 0;
  for (size_t i = 0; i < n; i++) {
    ASSERT(!fn_is(g[i].key, "tt_updown"));
    ASSERT(!fn_is(g[i].key, "tt_const"));
    ASSERT_EQ(g[i].traceback, UINT32_MAX);
    if (i) ASSERT(g[i - 1].last_size - g[i - 1].first_size >= g[i].last_size - g[i].first_size);
    if (fn_is(g[i].key, "tt_grow")) {
      seen_grow = 1;
      ASSERT_EQ(g[i].first_size, 640);
      ASSERT_EQ(g[i].last_size, 2560);
      ASSERT_EQ(g[i].first_count, 10);
      ASSERT_EQ(g[i].last_count, 40);
    }
    if (fn_is(g[i].key, "tt_late")) {
      seen_late = 1;
      ASSERT_EQ(i, 2);
      ASSERT_EQ(g[i].first_size, 0);
      ASSERT_EQ(g[i].last_size, 960);
      ASSERT_EQ(g[i].first_count, 0);
      ASSERT_EQ(g[i].last_count, 15);
    }
  }
  ASSERT(seen_grow && seen_late);
  refgc_growth_free(g);
  /* min_growth: at least that many bytes */
  g = refgc_snapshots_growth(snaps, ROUNDS, REFGC_GROUP_FUNCTION, 1920, &n);
  ASSERT_EQ(n, 2);
  refgc_growth_free(g);
  g = refgc_snapshots_growth(snaps, ROUNDS, REFGC_GROUP_FUNCTION, 1921, &n);
  ASSERT_EQ(n, 0);
  refgc_growth_free(g);
  /* by type: the cache objects */
  g = refgc_snapshots_growth(snaps, ROUNDS, REFGC_GROUP_TYPE, 1, &n);
  ASSERT(n >= 1);
  int seen_cache = 0;
  for (size_t i = 0; i < n; i++)
    if (strcmp(g[i].key, "tt.cache") == 0) {
      seen_cache = 1;
      ASSERT_EQ(g[i].first_count, 10);
      ASSERT_EQ(g[i].last_count, 40);
    }
  ASSERT(seen_cache);
  refgc_growth_free(g);
  /* by traceback: keys and indexes of the last snapshot */
  g = refgc_snapshots_growth(snaps, ROUNDS, REFGC_GROUP_TRACEBACK, 1, &n);
  ASSERT_EQ(n, 3);
  for (size_t i = 0; i < n; i++) {
    const uint32_t *fr;
    ASSERT(refgc_snapshot_traceback(snaps[ROUNDS - 1], g[i].traceback, &fr) > 0);
  }
  refgc_growth_free(g);
  /* three snapshots are enough; two are not */
  g = refgc_snapshots_growth(snaps + 1, 3, REFGC_GROUP_FUNCTION, 1, &n);
  ASSERT(g);
  refgc_growth_free(g);
  ASSERT(refgc_snapshots_growth(snaps, 2, REFGC_GROUP_FUNCTION, 1, &n) == NULL);
  ASSERT_EQ(n, 0);
  ASSERT_EQ(refgc_last_error(), REFGC_EINVAL);
  for (int r = 0; r < ROUNDS; r++) refgc_snapshot_free(snaps[r]);
  for (int i = 0; i < 40; i++) refgc_free(grow[i]);
  for (int i = 0; i < 15; i++) refgc_free(late[i]);
  for (int i = 0; i < 10; i++) refgc_free(cst[i]);
  while (nud) refgc_free(ud[--nud]);
  for (int i = 0; i < ncache; i++) refgc_decref(cache[i]);
  refgc_trace_stop();
}

/* ====================================================================================== */
/* Sampling                                                                                 */
/* ====================================================================================== */

static double sample_p(double size, double mean) { return -expm1(-size / mean); }

/* Churn: 200 MB (1/4 under sanitizers) in blocks of mixed sizes, allocated in batches that are
 * freed again. Per batch the traced count and bytes move by the sampled blocks only; over
 * all batches the number of samples and the estimated bytes must match what the sampling
 * model predicts within 5 standard deviations; and when every block is freed, the totals are
 * back to exactly what they were. */
TEST(sampling_probability_and_estimates) {
  trace_off();
  const double mean = 65536;
  ASSERT_EQ(refgc_trace_start_sampled(4, (size_t)mean, 0x5eed), 0);
  ASSERT_EQ(refgc_trace_sample_bytes(), (size_t)mean);
  test_rng_t rng = {0x12345}; /* fixed: the test is deterministic */
  const uint64_t total_target = (SLOW_BUILD ? 50ull : 200ull) << 20;
  enum { BATCH = 512 };
  void *batch[BATCH];
  size_t sizes[BATCH];
  uint64_t total = 0, blocks = 0, samples = 0;
  double exp_samples = 0, var_samples = 0, est_bytes = 0, var_bytes = 0;
  size_t base_cur = cur_traced(), base_n = refgc_trace_count();
  while (total < total_target) {
    size_t c0 = cur_traced(), n0 = refgc_trace_count();
    for (int i = 0; i < BATCH; i++) {
      uint64_t k = test_below(&rng, 1000);
      size_t s = k < 700   ? 1 + (size_t)test_below(&rng, 512)
                 : k < 950 ? 512 + (size_t)test_below(&rng, 16384)
                 : k < 998 ? 16384 + (size_t)test_below(&rng, 100000)
                           : 131072 + (size_t)test_below(&rng, 400000);
      sizes[i] = s;
      batch[i] = refgc_malloc(s);
      ASSERT(batch[i]);
      total += s;
      double p = sample_p((double)s, mean);
      exp_samples += p;
      var_samples += p * (1 - p);
      var_bytes += (double)s * (double)s * (1 - p) / p;
    }
    blocks += BATCH;
    size_t c1 = cur_traced(), n1 = refgc_trace_count();
    samples += n1 - n0;
    est_bytes += (double)(c1 - c0);
    /* exactly the sampled blocks moved the totals: their weights are s/p */
    double w = 0;
    size_t traced_here = 0;
    for (int i = 0; i < BATCH; i++)
      if (refgc_trace_traceback(batch[i], NULL, 0) > 0) {
        traced_here++;
        w += (double)llround((double)sizes[i] / sample_p((double)sizes[i], mean));
      }
    ASSERT_EQ(traced_here, n1 - n0);
    ASSERT_EQ((uint64_t)w, c1 - c0);
    for (int i = 0; i < BATCH; i++) refgc_free(batch[i]);
    ASSERT_EQ(cur_traced(), c0);
    ASSERT_EQ(refgc_trace_count(), n0);
  }
  ASSERT_EQ(cur_traced(), base_cur);
  ASSERT_EQ(refgc_trace_count(), base_n);
  double sd_s = sqrt(var_samples), sd_b = sqrt(var_bytes);
  printf("# sampling mean %.0f: %llu blocks, %llu bytes; %llu samples (expected %.1f, sd %.1f); "
         "estimated %.0f bytes (sd %.0f, %.2f sd off)\n",
         mean, (unsigned long long)blocks, (unsigned long long)total, (unsigned long long)samples,
         exp_samples, sd_s, est_bytes, sd_b, (est_bytes - (double)total) / sd_b);
  ASSERT(fabs((double)samples - exp_samples) <= 5 * sd_s);
  ASSERT(fabs(est_bytes - (double)total) <= 5 * sd_b);
  ASSERT(samples * 10 < blocks); /* far fewer samples than blocks */
  refgc_trace_stop();
}

/* A live set of known sizes: the estimated count of each size (sum of the traces' weights),
 * the traced memory and the snapshot's statistics, within 5 standard deviations. */
TEST(sampling_live_set_estimates) {
  trace_off();
  const double mean = 4096;
  ASSERT_EQ(refgc_trace_start_sampled(8, (size_t)mean, 0xfeed), 0);
  static const size_t size[] = {16, 256, 4096, 65536, 200000};
  static const size_t count[] = {50000, 20000, 2000, 100, 20};
  enum { K = 5 };
  size_t total_blocks = 0;
  for (int k = 0; k < K; k++) total_blocks += count[k];
  void **live = malloc(total_blocks * sizeof *live);
  ASSERT(live);
  size_t m = 0;
  double truth = 0, var = 0;
  for (int k = 0; k < K; k++)
    for (size_t i = 0; i < count[k]; i++) {
      live[m++] = tt_api_malloc(size[k]);
      double p = sample_p((double)size[k], mean);
      truth += (double)size[k];
      var += (double)size[k] * (double)size[k] * (1 - p) / p;
    }
  refgc_snapshot_t *s = refgc_snapshot_take(0);
  refgc_snapshot_info_t info = snap_info(s);
  ASSERT_EQ(info.sample_bytes, (uint64_t)mean);
  size_t nt;
  const refgc_trace_t *tr = refgc_snapshot_traces(s, &nt);
  ASSERT_EQ(nt, refgc_trace_count());
  ASSERT_EQ(info.trace_count, nt);
  ASSERT(nt < total_blocks / 4);
  double est_count[K] = {0}, tr_bytes = 0;
  size_t samples[K] = {0};
  for (size_t i = 0; i < nt; i++) {
    int k = -1;
    for (int j = 0; j < K; j++)
      if (tr[i].size == size[j]) k = j;
    if (k < 0) TEST_FAIL("a trace of %llu bytes", (unsigned long long)tr[i].size);
    double p = sample_p((double)size[k], mean);
    if (fabs(tr[i].weight - 1 / p) > 1e-9 / p) TEST_FAIL("weight %g for %zu bytes, expected %g", tr[i].weight, size[k], 1 / p);
    est_count[k] += tr[i].weight;
    samples[k]++;
    tr_bytes += (double)tr[i].size * tr[i].weight;
  }
  for (int k = 0; k < K; k++) {
    double p = sample_p((double)size[k], mean);
    double sd = sqrt((double)count[k] * (1 - p) / p);
    printf("# size %6zu: %6zu blocks, %5zu sampled, estimated %.1f (sd %.1f)\n", size[k], count[k],
           samples[k], est_count[k], sd);
    ASSERT(fabs(est_count[k] - (double)count[k]) <= 5 * sd + 1e-6);
  }
  double sd = sqrt(var);
  size_t cur = cur_traced();
  printf("# live %.0f bytes: traced %zu (sd %.0f, %.2f sd off)\n", truth, cur, sd, ((double)cur - truth) / sd);
  ASSERT(fabs((double)cur - truth) <= 5 * sd);
  ASSERT(fabs(tr_bytes - (double)cur) <= (double)nt); /* rounding of each trace only */
  ASSERT(fabs((double)info.traced_current - (double)cur) <= 0.5);
  /* statistics add up to the same estimates */
  size_t n;
  refgc_stat_t *st = refgc_snapshot_statistics(s, REFGC_GROUP_FUNCTION, 0, &n);
  ASSERT_EQ(n, 1);
  ASSERT(fn_is(st[0].key, "tt_api_malloc"));
  ASSERT(fabs((double)st[0].size - tr_bytes) <= 1);
  double est_total = 0;
  for (int k = 0; k < K; k++) est_total += est_count[k];
  ASSERT(fabs((double)st[0].count - est_total) <= 1);
  refgc_stats_free(st);
  st = refgc_snapshot_statistics(s, REFGC_GROUP_TYPE, 0, &n);
  ASSERT_EQ(n, 1);
  ASSERT(fabs((double)st[0].size - tr_bytes) <= 1);
  refgc_stats_free(st);
  /* saved and loaded, the weights and estimates are the same */
  const char *path = tmp_path("sampled.rgc");
  ASSERT_EQ(refgc_snapshot_save(s, path), 0);
  refgc_snapshot_t *l = refgc_snapshot_load(path);
  ASSERT(l);
  same_stats(s, l, REFGC_GROUP_FUNCTION, 0);
  ASSERT_EQ(snap_info(l).sample_bytes, (uint64_t)mean);
  refgc_snapshot_free(l);
  remove(path);
  refgc_snapshot_free(s);
  for (size_t i = 0; i < m; i++) refgc_free(live[i]);
  free(live);
  ASSERT_EQ(cur_traced(), 0);
  ASSERT_EQ(refgc_trace_count(), 0);
  refgc_trace_stop();
}

/* the blocks a fixed sequence samples under `seed` */
static void sampled_set(uint64_t seed, unsigned char *out, size_t n, void **blocks) {
  ASSERT_EQ(refgc_trace_start_sampled(2, 2048, seed), 0);
  for (size_t i = 0; i < n; i++) blocks[i] = refgc_malloc(8 + (i * 37) % 1000);
  for (size_t i = 0; i < n; i++) out[i] = refgc_trace_traceback(blocks[i], NULL, 0) > 0;
  for (size_t i = 0; i < n; i++) refgc_free(blocks[i]);
  ASSERT_EQ(refgc_trace_stop(), 0);
}

TEST(sampling_seed_reproducible) {
  trace_off();
  enum { N = 4000 };
  static unsigned char a[N], b[N], c[N];
  static void *blocks[N];
  sampled_set(42, a, N, blocks);
  sampled_set(42, b, N, blocks);
  sampled_set(43, c, N, blocks);
  size_t na = 0, diff_ab = 0, diff_ac = 0;
  for (int i = 0; i < N; i++) {
    na += a[i];
    diff_ab += a[i] != b[i];
    diff_ac += a[i] != c[i];
  }
  printf("# seed 42: %zu of %d sampled; again: %zu differ; seed 43: %zu differ\n", na, N, diff_ab,
         diff_ac);
  ASSERT(na > 0);
  ASSERT_EQ(diff_ab, 0);
  ASSERT(diff_ac > 0);
}

/* With a mean of 2^40 bytes a 16-byte block is sampled with probability 1.5e-11: the first
 * allocation of a session, or of a new thread, is no exception. */
static void *first_alloc_thread(void *arg) {
  void **out = arg;
  *out = refgc_malloc(16);
  return NULL;
}

TEST(sampling_first_allocation_is_not_special) {
  trace_off();
  int sampled = 0;
  for (int i = 0; i < 20; i++) {
    ASSERT_EQ(refgc_trace_start_sampled(2, (size_t)1 << 40, (uint64_t)i + 1), 0);
    void *p = refgc_malloc(16);
    sampled += refgc_trace_count() != 0;
    refgc_free(p);
    ASSERT_EQ(refgc_trace_stop(), 0);
  }
  ASSERT_EQ(sampled, 0);
  ASSERT_EQ(refgc_trace_start_sampled(2, (size_t)1 << 40, 99), 0);
  void *q = NULL;
  pthread_t t;
  ASSERT_EQ(pthread_create(&t, NULL, first_alloc_thread, &q), 0);
  pthread_join(t, NULL);
  ASSERT(q);
  size_t n = refgc_trace_count(), cur = cur_traced();
  refgc_free(q);
  refgc_trace_stop();
  ASSERT_EQ(n, 0);
  ASSERT_EQ(cur, 0);
}

/* ====================================================================================== */
/* Threads                                                                                  */
/* ====================================================================================== */

enum { TH = 4, TH_KEEP = 64 };

typedef struct th_arg_s {
  int id;
  long iters;
  void *keep[TH_KEEP];
  size_t keep_size[TH_KEEP];
  uint64_t kept_bytes;
} th_arg_t;

/* blocks handed from one thread to the next, which frees them */
static pthread_mutex_t hand_lock = PTHREAD_MUTEX_INITIALIZER;
static void *hand[TH][64];
static size_t hand_size[TH][64];
static int hand_n[TH];
static atomic_int th_running;
static atomic_int th_stop;

static void *th_worker(void *arg) {
  th_arg_t *a = arg;
  test_rng_t rng = {test_seed() * 31 + (uint64_t)a->id};
  void *mine[TH_KEEP];
  size_t mine_size[TH_KEEP];
  int n = 0;
  for (long it = 0; it < a->iters || (a->iters < 0 && !atomic_load(&th_stop)); it++) {
    uint64_t k = test_below(&rng, 100);
    size_t s = k < 90 ? 1 + (size_t)test_below(&rng, 2000) : k < 99 ? 2000 + (size_t)test_below(&rng, 60000)
                                                                   : 131073 + (size_t)test_below(&rng, 100000);
    void *p = tt_api_malloc(s);
    if (!p) abort();
    if (n < TH_KEEP) {
      mine[n] = p;
      mine_size[n++] = s;
    } else {
      int j = (int)test_below(&rng, TH_KEEP);
      if (test_below(&rng, 2)) {
        refgc_free(mine[j]);
      } else { /* hand it to the next thread */
        int to = (a->id + 1) % TH;
        pthread_mutex_lock(&hand_lock);
        if (hand_n[to] < 64) {
          hand[to][hand_n[to]] = mine[j];
          hand_size[to][hand_n[to]++] = mine_size[j];
        } else {
          refgc_free(mine[j]);
        }
        pthread_mutex_unlock(&hand_lock);
      }
      mine[j] = p;
      mine_size[j] = s;
    }
    if ((it & 15) == 0) { /* free what others handed over */
      pthread_mutex_lock(&hand_lock);
      while (hand_n[a->id] > 0) refgc_free(hand[a->id][--hand_n[a->id]]);
      pthread_mutex_unlock(&hand_lock);
    }
  }
  for (int i = 0; i < n; i++) { /* live at the end: the main thread frees them */
    a->keep[i] = mine[i];
    a->keep_size[i] = mine_size[i];
    a->kept_bytes += mine_size[i];
  }
  atomic_fetch_sub(&th_running, 1);
  return NULL;
}

TEST(threads_totals_exact) {
  trace_fresh(8);
  th_arg_t args[TH];
  pthread_t t[TH];
  memset(args, 0, sizeof args);
  memset(hand_n, 0, sizeof hand_n);
  atomic_store(&th_running, TH);
  for (int i = 0; i < TH; i++) {
    args[i].id = i;
    args[i].iters = (SLOW_BUILD ? 20000 : 100000) * test_scale();
    ASSERT_EQ(pthread_create(&t[i], NULL, th_worker, &args[i]), 0);
  }
  int snaps = 0;
  while (atomic_load(&th_running) > 0) {
    refgc_snapshot_t *s = refgc_snapshot_take(0);
    ASSERT(s);
    size_t n;
    refgc_stat_t *st = refgc_snapshot_statistics(s, REFGC_GROUP_FUNCTION, 0, &n);
    ASSERT(n <= 1);
    refgc_stats_free(st);
    refgc_snapshot_free(s);
    size_t cur, peak;
    refgc_trace_get_memory(&cur, &peak);
    ASSERT(cur <= peak);
    snaps++;
  }
  for (int i = 0; i < TH; i++) pthread_join(t[i], NULL);
  uint64_t live = 0, nlive = 0;
  for (int i = 0; i < TH; i++) {
    live += args[i].kept_bytes;
    for (int k = 0; k < TH_KEEP; k++) nlive += args[i].keep[k] != NULL;
    for (int k = 0; k < hand_n[i]; k++) live += hand_size[i][k], nlive++;
  }
  printf("# %d snapshots while %d threads allocated; %llu blocks live\n", snaps, TH,
         (unsigned long long)nlive);
  ASSERT_EQ(cur_traced(), live);
  ASSERT_EQ(refgc_trace_count(), nlive);
  refgc_snapshot_t *s = refgc_snapshot_take(0);
  size_t n;
  refgc_stat_t *st = refgc_snapshot_statistics(s, REFGC_GROUP_FUNCTION, 0, &n);
  ASSERT_EQ(n, 1);
  ASSERT(fn_is(st[0].key, "tt_api_malloc"));
  ASSERT_ROW(&st[0], live, nlive);
  refgc_stats_free(st);
  /* every traceback is the worker's: tt_api_malloc, then th_worker */
  size_t nt;
  const refgc_trace_t *tr = refgc_snapshot_traces(s, &nt);
  ASSERT_EQ(nt, nlive);
  const uint32_t *fr;
  ASSERT(refgc_snapshot_traceback(s, tr[0].traceback, &fr) >= 2);
  ASSERT(fn_is(refgc_snapshot_frame(s, fr[1])->function, "th_worker") || !have_libdw());
  refgc_snapshot_free(s);
  for (int i = 0; i < TH; i++) {
    for (int k = 0; k < TH_KEEP; k++) refgc_free(args[i].keep[k]);
    while (hand_n[i] > 0) refgc_free(hand[i][--hand_n[i]]);
  }
  ASSERT_EQ(cur_traced(), 0);
  ASSERT_EQ(refgc_trace_count(), 0);
  refgc_trace_stop();
}

TEST(threads_start_stop_while_running) {
  trace_off();
  th_arg_t args[TH];
  pthread_t t[TH];
  memset(args, 0, sizeof args);
  memset(hand_n, 0, sizeof hand_n);
  atomic_store(&th_running, TH);
  atomic_store(&th_stop, 0);
  for (int i = 0; i < TH; i++) {
    args[i].id = i;
    args[i].iters = -1;
    ASSERT_EQ(pthread_create(&t[i], NULL, th_worker, &args[i]), 0);
  }
  int rounds = SLOW_BUILD ? 40 : 200;
  for (int r = 0; r < rounds; r++) {
    int rc = r % 3 == 2 ? refgc_trace_start_sampled(1 + r % 8, 4096, (uint64_t)r + 1)
                        : refgc_trace_start(1 + r % 8);
    ASSERT_EQ(rc, 0);
    for (int k = 0; k < 200; k++) {
      void *p = refgc_malloc(100);
      refgc_free(p);
    }
    if (r % 4 == 0) {
      refgc_snapshot_t *s = refgc_snapshot_take(0);
      ASSERT(s);
      size_t n;
      refgc_stat_t *st = refgc_snapshot_statistics(s, REFGC_GROUP_TRACEBACK, r & 1, &n);
      refgc_stats_free(st);
      refgc_snapshot_free(s);
    }
    size_t cur, peak;
    refgc_trace_get_memory(&cur, &peak);
    (void)refgc_trace_count();
    ASSERT_EQ(refgc_trace_stop(), 0);
  }
  atomic_store(&th_stop, 1);
  for (int i = 0; i < TH; i++) pthread_join(t[i], NULL);
  /* after all that, a new session counts exactly again */
  trace_fresh(4);
  void *p = tt_api_malloc(1234);
  ASSERT_EQ(cur_traced(), 1234);
  ASSERT_EQ(refgc_trace_count(), 1);
  for (int i = 0; i < TH; i++) {
    for (int k = 0; k < TH_KEEP; k++) refgc_free(args[i].keep[k]);
    while (hand_n[i] > 0) refgc_free(hand[i][--hand_n[i]]);
  }
  ASSERT_EQ(cur_traced(), 1234);
  ASSERT_EQ(refgc_trace_count(), 1);
  refgc_free(p);
  ASSERT_EQ(cur_traced(), 0);
  refgc_trace_stop();
}

/* The peak after another thread that traced has gone: it counts what is live, not what that
 * thread held when this one last looked. */
static pthread_mutex_t pk_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pk_cond = PTHREAD_COND_INITIALIZER;
static int pk_step;
static void pk_wait(int step) {
  pthread_mutex_lock(&pk_lock);
  while (pk_step < step) pthread_cond_wait(&pk_cond, &pk_lock);
  pthread_mutex_unlock(&pk_lock);
}
static void pk_set(int step) {
  pthread_mutex_lock(&pk_lock);
  pk_step = step;
  pthread_cond_broadcast(&pk_cond);
  pthread_mutex_unlock(&pk_lock);
}
static void *pk_worker(void *arg) {
  (void)arg;
  void *big = refgc_malloc(1 << 20);
  pk_set(1);
  pk_wait(2); /* the main thread allocated meanwhile */
  refgc_free(big);
  return NULL;
}

TEST(threads_peak_after_a_thread_exits) {
  trace_fresh(2);
  void *warm = refgc_malloc(8); /* the main thread counts too */
  pk_step = 0;
  pthread_t t;
  ASSERT_EQ(pthread_create(&t, NULL, pk_worker, NULL), 0);
  pk_wait(1);
  void *mid[4];
  for (int i = 0; i < 4; i++) mid[i] = refgc_malloc(30000); /* 120 KB while the worker holds 1 MB */
  pk_set(2);
  pthread_join(t, NULL);
  size_t cur, peak;
  refgc_trace_get_memory(&cur, &peak);
  ASSERT_EQ(cur, 120008);
  ASSERT(peak >= 1048576 + 8);
  for (int i = 0; i < 4; i++) refgc_free(mid[i]);
  refgc_free(warm);
  ASSERT_EQ(cur_traced(), 0);
  refgc_trace_reset_peak();
  ASSERT_EQ(peak_traced(), 0);
  void *p = refgc_malloc(10);
  refgc_trace_get_memory(&cur, &peak);
  ASSERT_EQ(cur, 10);
  ASSERT_EQ(peak, 10);
  refgc_free(p);
  /* and in the next session */
  ASSERT_EQ(refgc_trace_stop(), 0);
  ASSERT_EQ(refgc_trace_start(2), 0);
  p = refgc_malloc(10);
  refgc_trace_get_memory(&cur, &peak);
  ASSERT_EQ(cur, 10);
  ASSERT_EQ(peak, 10);
  refgc_free(p);
  refgc_trace_stop();
}

/* ====================================================================================== */
/* The tracer's own memory                                                                  */
/* ====================================================================================== */

NOINL void tt_many(void **out, size_t n, size_t size) {
  for (size_t i = 0; i < n; i++) {
    out[i] = refgc_malloc(size);
    KEEP(out[i]);
  }
}

TEST(tracer_memory_per_block) {
  trace_off();
  size_t n = SLOW_BUILD ? 250000 : 1000000;
  void **p = malloc(n * sizeof *p);
  ASSERT(p);
  trace_fresh(4);
  refgc_heap_stats_t h0 = heap_stats();
  size_t m0 = refgc_trace_memory();
  tt_many(p, n / 2, 16);
  tt_many(p + n / 2, n - n / 2, 32);
  size_t m1 = refgc_trace_memory();
  refgc_heap_stats_t h1 = heap_stats();
  ASSERT_EQ(refgc_trace_count(), n);
  double per = (double)(m1 - m0) / (double)n;
  printf("# tracer memory: %zu bytes for %zu live traced blocks: %.2f bytes per block (%zu in all)\n",
         m1 - m0, n, per, m1);
  ASSERT(per <= 24.0);
  ASSERT(m1 > m0);
  /* none of it is in the heap: in use grew by the blocks' own sizes */
  ASSERT_EQ(h1.in_use - h0.in_use, (n / 2) * refgc_usable_size(p[0]) + (n - n / 2) * refgc_usable_size(p[n - 1]));
  ASSERT_EQ(h1.alloc_count - h0.alloc_count, n);
  refgc_snapshot_t *s = refgc_snapshot_take(0);
  refgc_heap_stats_t h2 = heap_stats();
  ASSERT_EQ(h2.in_use, h1.in_use); /* nor is a snapshot's */
  ASSERT_EQ(h2.alloc_count, h1.alloc_count);
  size_t ns;
  refgc_stat_t *st = refgc_snapshot_statistics(s, REFGC_GROUP_FUNCTION, 1, &ns);
  refgc_stats_free(st);
  ASSERT_EQ(heap_stats().alloc_count, h1.alloc_count); /* nor symbols and statistics */
  ASSERT_EQ(snap_info(s).tracer_memory, m1);
  refgc_snapshot_free(s);
  for (size_t i = 0; i < n; i++) refgc_free(p[i]);
  free(p);
  ASSERT_EQ(refgc_trace_count(), 0);
  refgc_trace_stop();
  refgc_heap_collect();
  size_t m2 = refgc_trace_memory();
  printf("# after freeing them and giving pages back: %zu bytes\n", m2);
  ASSERT(m2 < m0 + (m1 - m0) / 2); /* the per-page arrays go with their pages */
}

/* ====================================================================================== */
/* Bad arguments                                                                            */
/* ====================================================================================== */

TEST(null_arguments) {
  trace_fresh(4);
  void *fr[4];
  ASSERT_EQ(refgc_trace_traceback(NULL, fr, 4), 0);
  void *p = refgc_malloc(10);
  ASSERT(refgc_trace_traceback(p, NULL, 4) > 0);
  ASSERT(refgc_trace_traceback(p, fr, 0) > 0);
  ASSERT(refgc_trace_traceback(p, fr, -3) > 0);
  refgc_trace_get_memory(NULL, NULL);
  ASSERT_EQ(refgc_symbolize(0x1000, NULL), REFGC_EINVAL);
  refgc_frame_info_t fi;
  ASSERT_EQ(refgc_symbolize(0, &fi), 0);
  ASSERT(fi.function && fi.file && fi.module);
  refgc_snapshot_free(NULL);
  refgc_stats_free(NULL);
  refgc_growth_free(NULL);
  ASSERT(refgc_snapshot_take(0x80) == NULL);
  ASSERT_EQ(refgc_last_error(), REFGC_EINVAL);
  refgc_snapshot_t *s = refgc_snapshot_take(0);
  ASSERT(s);
  ASSERT_EQ(refgc_snapshot_save(NULL, tmp_path("x.rgc")), REFGC_EINVAL);
  ASSERT(refgc_snapshot_error()[0] != 0);
  ASSERT_EQ(refgc_snapshot_save(s, NULL), REFGC_EINVAL);
  ASSERT(refgc_snapshot_load(NULL) == NULL);
  ASSERT_EQ(refgc_last_error(), REFGC_EINVAL);
  refgc_snapshot_info_t info;
  info.size = sizeof info;
  ASSERT_EQ(refgc_snapshot_info(NULL, &info), REFGC_EINVAL);
  ASSERT_EQ(refgc_snapshot_info(s, NULL), REFGC_EINVAL);
  size_t n = 7;
  ASSERT(refgc_snapshot_traces(NULL, &n) == NULL);
  ASSERT_EQ(n, 0);
  ASSERT(refgc_snapshot_traces(s, NULL) != NULL);
  const uint32_t *frames = (const uint32_t *)1;
  ASSERT_EQ(refgc_snapshot_traceback(NULL, 0, &frames), 0);
  ASSERT(frames == NULL);
  frames = (const uint32_t *)1;
  ASSERT_EQ(refgc_snapshot_traceback(s, 1000000, &frames), 0);
  ASSERT(frames == NULL);
  ASSERT(refgc_snapshot_traceback(s, 0, NULL) > 0);
  ASSERT_EQ(refgc_snapshot_tracebacks(NULL), 0);
  ASSERT(refgc_snapshot_frame(NULL, 0) == NULL);
  ASSERT(refgc_snapshot_frame(s, 1000000) == NULL);
  ASSERT(refgc_snapshot_frame(s, 0) != NULL);
  ASSERT(refgc_snapshot_type_name(NULL, 0) == NULL);
  ASSERT(refgc_snapshot_type_name(s, 0) && refgc_snapshot_type_name(s, 0)[0] == 0);
  ASSERT(refgc_snapshot_type_name(s, 1000000) == NULL);
  ASSERT(refgc_snapshot_string(NULL, 0) == NULL);
  ASSERT(refgc_snapshot_string(s, 0) && refgc_snapshot_string(s, 0)[0] == 0);
  ASSERT(refgc_snapshot_string(s, UINT32_MAX) == NULL);
  n = 7;
  ASSERT(refgc_snapshot_statistics(NULL, REFGC_GROUP_LINE, 0, &n) == NULL);
  ASSERT_EQ(n, 0);
  ASSERT_EQ(refgc_last_error(), REFGC_EINVAL);
  ASSERT(refgc_snapshot_statistics(s, REFGC_GROUP_LINE, 0, NULL) == NULL);
  ASSERT_EQ(refgc_last_error(), REFGC_EINVAL);
  ASSERT(refgc_snapshot_statistics(s, (refgc_group_t)5, 0, &n) == NULL);
  ASSERT_EQ(refgc_last_error(), REFGC_EINVAL);
  ASSERT(refgc_snapshot_statistics(s, (refgc_group_t)-1, 0, &n) == NULL);
  ASSERT(refgc_snapshot_compare(NULL, s, REFGC_GROUP_LINE, 0, &n) == NULL);
  ASSERT_EQ(refgc_last_error(), REFGC_EINVAL);
  ASSERT(refgc_snapshot_compare(s, NULL, REFGC_GROUP_LINE, 0, &n) == NULL);
  ASSERT(refgc_snapshot_compare(s, s, REFGC_GROUP_LINE, 0, NULL) == NULL);
  ASSERT(refgc_snapshot_compare(s, s, (refgc_group_t)9, 0, &n) == NULL);
  ASSERT(refgc_snapshot_filter(NULL, NULL, 0) == NULL);
  ASSERT_EQ(refgc_last_error(), REFGC_EINVAL);
  ASSERT(refgc_snapshot_filter(s, NULL, 1) == NULL);
  ASSERT_EQ(refgc_last_error(), REFGC_EINVAL);
  refgc_snapshot_t *copy = refgc_snapshot_filter(s, NULL, 0);
  ASSERT(copy);
  refgc_snapshot_free(copy);
  n = 7;
  ASSERT(refgc_snapshot_type_counts(NULL, &n) == NULL);
  ASSERT_EQ(n, 0);
  n = 7;
  ASSERT(refgc_snapshot_series(NULL, &n) == NULL);
  ASSERT_EQ(n, 0);
  size_t nn = 7, ne = 7;
  const refgc_edge_t *e = (const refgc_edge_t *)1;
  ASSERT(refgc_snapshot_graph(NULL, &nn, &e, &ne) == NULL);
  ASSERT_EQ(nn, 0);
  ASSERT_EQ(ne, 0);
  ASSERT(e == NULL);
  ASSERT(refgc_snapshot_graph(s, NULL, NULL, NULL) == NULL); /* no graph taken */
  n = 7;
  ASSERT(refgc_snapshot_suspects(NULL, &n) == NULL);
  ASSERT_EQ(n, 0);
  ASSERT(refgc_snapshot_suspects(s, &n) == NULL);
  ASSERT_EQ(n, 0);
  uint32_t chain[4];
  ASSERT_EQ(refgc_snapshot_chain(NULL, 0, chain, 4), 0);
  ASSERT_EQ(refgc_snapshot_chain(s, 0, chain, 4), 0); /* no graph: no node 0 */
  refgc_snapshot_t *three[3] = {s, NULL, s};
  n = 7;
  ASSERT(refgc_snapshots_growth(NULL, 3, REFGC_GROUP_LINE, 0, &n) == NULL);
  ASSERT_EQ(n, 0);
  ASSERT_EQ(refgc_last_error(), REFGC_EINVAL);
  ASSERT(refgc_snapshots_growth(three, 3, REFGC_GROUP_LINE, 0, &n) == NULL);
  ASSERT_EQ(refgc_last_error(), REFGC_EINVAL);
  three[1] = s;
  ASSERT(refgc_snapshots_growth(three, 3, REFGC_GROUP_LINE, 0, NULL) == NULL);
  ASSERT(refgc_snapshots_growth(three, 3, (refgc_group_t)7, 0, &n) == NULL);
  refgc_growth_t *g = refgc_snapshots_growth(three, 3, REFGC_GROUP_LINE, 0, &n);
  ASSERT_EQ(n, 0); /* the same snapshot three times: nothing grew */
  refgc_growth_free(g);
  refgc_snapshot_free(s);
  refgc_free(p);
  refgc_trace_stop();
  /* calls that read tracing state with tracing off */
  ASSERT_EQ(refgc_trace_traceback(fr, fr, 4), 0);
  ASSERT_EQ(refgc_trace_count(), 0);
  refgc_trace_reset_peak();
  ASSERT_EQ(peak_traced(), 0);
}
