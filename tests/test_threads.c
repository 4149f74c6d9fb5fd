/* refgc — the heap under several threads: blocks handed between threads and freed remotely,
 * threads that come and go (abandoned heaps, adoption, freeing into dead threads' heaps),
 * every thread freeing every other thread's blocks, and statistics/collect/check running
 * while all that happens.
 *
 * Every block carries a pattern derived from who allocated it and when; whoever frees a block
 * first checks the pattern, so two live blocks that overlap, or a block handed out twice, show
 * up as a pattern mismatch. Each case ends with every block freed, the remote frees collected
 * and the statistics back at their baseline exactly (see "exact in-use" below), and with
 * refgc_heap_check() == 0.
 *
 * Exact in-use: a block freed by another thread counts as in use until its owner collects its
 * remote frees. The owner does so in its allocation slow path or in refgc_heap_collect() called
 * on its own thread; a thread that exited leaves an abandoned heap whose remote frees any
 * thread's refgc_heap_collect() takes. So the cases either make each live owner call
 * refgc_heap_collect() itself once nobody frees into its heap any more, or join the owners
 * and call refgc_heap_collect() on the main thread; in-use is then exact.
 *
 * Work is scaled down in sanitizer builds (TSan and ASan) and up by --scale=N.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, nanosleep under -std=c11 */
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "refgc.h"
#include "test.h"

/* ---- build flavour ------------------------------------------------------------------------ */

#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TT_TSAN 1
#endif
#if __has_feature(address_sanitizer)
#define TT_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__) && !defined(TT_TSAN)
#define TT_TSAN 1
#endif
#if defined(__SANITIZE_ADDRESS__) && !defined(TT_ASAN)
#define TT_ASAN 1
#endif

#if defined(TT_TSAN)
#define TT_FLAVOUR "tsan"
#define TT_DIV 2 /* work divisor */
#define TT_LARGE_MAX ((size_t)384 << 10)
#elif defined(TT_ASAN)
#define TT_FLAVOUR "asan"
#define TT_DIV 2
#define TT_LARGE_MAX ((size_t)512 << 10)
#else
#define TT_FLAVOUR "plain"
#define TT_DIV 1
#define TT_LARGE_MAX ((size_t)1 << 20)
#endif

/* scaled count: n at scale 1 in a plain build, at least `min` */
static long tt_work(long n, long min) {
  long v = n * test_scale() / TT_DIV;
  return v < min ? min : v;
}

#define KiB ((size_t)1 << 10)
#define SMALL_MAX (8 * KiB)
#define MEDIUM_MAX (128 * KiB) /* above: large blocks, one mapping each */

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- failures on worker threads ------------------------------------------------------------ */

/* TEST_FAIL longjmps, which works only on the main thread. Workers record the first failure
 * here and stop; the main thread turns it into a test failure after joining them. */
static pthread_mutex_t fail_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int fail_count;
static char fail_msg[1024];

__attribute__((format(printf, 1, 2))) static void worker_fail(const char *fmt, ...) {
  va_list ap;
  pthread_mutex_lock(&fail_lock);
  if (atomic_fetch_add(&fail_count, 1) == 0) {
    va_start(ap, fmt);
    vsnprintf(fail_msg, sizeof fail_msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "  worker failure: %s\n", fail_msg);
  }
  pthread_mutex_unlock(&fail_lock);
}

static bool workers_failed(void) { return atomic_load(&fail_count) != 0; }

#define ASSERT_WORKERS_OK()                                                          \
  do {                                                                               \
    if (workers_failed())                                                            \
      TEST_FAIL("%d worker failure(s), first: %s", atomic_load(&fail_count), fail_msg); \
  } while (0)

/* Errors reported by the heap (any thread): counted and printed, never aborting. */
static atomic_int heap_errors;

static void count_error(const refgc_error_info_t *info, void *arg) {
  (void)arg;
  atomic_fetch_add(&heap_errors, 1);
  fprintf(stderr, "  refgc error %s: %s\n", refgc_err_name(info->code), info->message);
}

static void case_begin(void) {
  atomic_store(&fail_count, 0);
  fail_msg[0] = 0;
  atomic_store(&heap_errors, 0);
  refgc_set_error_handler(count_error, NULL);
}

static void case_end(void) { refgc_set_error_handler(NULL, NULL); }

/* atomics read for ASSERT_*: functions, so that the failure message shows the call */
static long ld_i(atomic_int *p) { return atomic_load(p); }
static unsigned long ld_ul(atomic_ulong *p) { return atomic_load(p); }

/* ---- patterns --------------------------------------------------------------------------- */

#define PAT_K 0x9E3779B97F4A7C15ull

static uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* Fill bytes [from, n) of block `p` (16-byte aligned) with the pattern of `tag`. `from` is a
 * multiple of 8. */
static void pat_fill(void *p, size_t from, size_t n, uint64_t tag) {
  uint64_t m = mix64(tag);
  uint64_t *w = p;
  size_t nw = n / 8;
  for (size_t i = from / 8; i < nw; i++) w[i] = m ^ (i * PAT_K);
  if (n % 8 && n > from) {
    uint64_t last = m ^ (nw * PAT_K);
    memcpy((uint8_t *)p + nw * 8, &last, n % 8);
  }
}

/* Offset of the first byte of [from, n) that does not hold `tag`'s pattern, or -1. */
static long pat_check(const void *p, size_t from, size_t n, uint64_t tag) {
  uint64_t m = mix64(tag);
  const uint64_t *w = p;
  size_t nw = n / 8;
  for (size_t i = from / 8; i < nw; i++)
    if (w[i] != (m ^ (i * PAT_K))) return (long)(i * 8);
  if (n % 8 && n > from) {
    uint64_t last = m ^ (nw * PAT_K);
    if (memcmp((const uint8_t *)p + nw * 8, &last, n % 8)) return (long)(nw * 8);
  }
  return -1;
}

/* Mostly small, some medium (8K–128K), a few large (> 128K, up to `large_max`; 0: none). */
static size_t rand_size(test_rng_t *r, size_t min, size_t large_max) {
  uint64_t k = test_below(r, 1000);
  size_t s;
  if (k < 8 && large_max > MEDIUM_MAX)
    s = MEDIUM_MAX + 1 + test_below(r, large_max - MEDIUM_MAX);
  else if (k < 70)
    s = SMALL_MAX + 1 + test_below(r, MEDIUM_MAX - SMALL_MAX);
  else if (k < 300)
    s = 513 + test_below(r, SMALL_MAX - 512);
  else
    s = 1 + test_below(r, 512);
  return s < min ? min : s;
}

/* ---- self-describing blocks: [tag][size][pattern of tag ...] ------------------------------ *
 * Used where a bare pointer travels between threads (tables of atomic slots). The tag holds
 * the allocating thread's id in its top 16 bits and a sequence number below. */

#define HDR 16
#define TAG(tid, seq) (((uint64_t)(tid) << 48) | ((uint64_t)(seq) & 0xFFFFFFFFFFFFull))
#define TAG_TID(tag) ((unsigned)((tag) >> 48))

static atomic_ulong blocks_allocated; /* refgc allocations made by the helpers below */

static void *blk_new(test_rng_t *r, uint64_t tag, size_t large_max) {
  size_t n = rand_size(r, HDR, large_max);
  uint64_t *p;
  unsigned how = (unsigned)test_below(r, 16);
  if (how == 0) {
    p = refgc_calloc(1, n);
    if (p) {
      for (size_t i = 0; i < n / 8; i++)
        if (p[i]) {
          worker_fail("calloc(1, %zu) = %p: word %zu is %#llx, not 0", n, (void *)p, i,
                      (unsigned long long)p[i]);
          break;
        }
    }
  } else if (how == 1 && n <= MEDIUM_MAX) {
    size_t align = (size_t)16 << test_below(r, 9); /* 16 .. 4096 */
    p = refgc_aligned_alloc(align, n);
    if (p && (uintptr_t)p % align) worker_fail("aligned_alloc(%zu, %zu) = %p", align, n, (void *)p);
  } else {
    p = refgc_malloc(n);
  }
  if (!p) {
    worker_fail("allocation of %zu bytes failed", n);
    return NULL;
  }
  atomic_fetch_add_explicit(&blocks_allocated, 1, memory_order_relaxed);
  p[0] = tag;
  p[1] = n;
  pat_fill(p, HDR, n, tag);
  return p;
}

/* Check a block made by blk_new; its tag, or 0 (after reporting) when it is damaged. */
static uint64_t blk_verify(const void *p, const char *who) {
  const uint64_t *w = p;
  uint64_t tag = w[0];
  size_t n = (size_t)w[1];
  if (n < HDR || n > TT_LARGE_MAX || tag == 0) {
    worker_fail("%s: block %p has a damaged header (tag %#llx, size %zu)", who, p,
                (unsigned long long)tag, n);
    return 0;
  }
  long bad = pat_check(p, HDR, n, tag);
  if (bad >= 0) {
    worker_fail("%s: block %p (%zu bytes, thread %u, seq %llu) overwritten at offset %ld", who,
                p, n, TAG_TID(tag), (unsigned long long)(tag & 0xFFFFFFFFFFFFull), bad);
    return 0;
  }
  return tag;
}

static size_t blk_size(const void *p) { return (size_t)((const uint64_t *)p)[1]; }

/* ---- statistics helpers -------------------------------------------------------------------- */

static refgc_heap_stats_t stats_now(void) {
  refgc_heap_stats_t s;
  memset(&s, 0, sizeof s);
  s.size = sizeof s;
  if (refgc_heap_stats(&s) != 0) fprintf(stderr, "  refgc_heap_stats failed\n");
  return s;
}

static void join_all(pthread_t *t, int n) {
  for (int i = 0; i < n; i++) pthread_join(t[i], NULL);
}

static void start(pthread_t *t, void *(*fn)(void *), void *arg) {
  if (pthread_create(t, NULL, fn, arg) != 0) {
    fprintf(stderr, "pthread_create failed\n");
    abort();
  }
}

/* =============================================================================================
 * 1. Producers and consumers
 *
 * P producers allocate blocks of random sizes, fill them with the pattern of (producer, seq)
 * and pass them through a bounded queue to C consumers, who check and free them: every block
 * is freed by a thread other than its allocator. Consumers also allocate and free scratch
 * blocks of their own (local frees), and free one block in 32 through refgc_realloc(p, 0).
 *
 * At the end, with the producers still alive but idle:
 *   - large blocks are back at the baseline at once (they are unmapped by whoever frees them);
 *   - in-use is at least the baseline and exceeds it by at most the bytes of the small and
 *     medium blocks freed remotely (uncollected remote frees);
 *   - after each producer calls refgc_heap_collect() on its own thread, in-use, the
 *     allocation and free counts and the requested bytes are exactly as expected;
 *   - after the producers exit, refgc_heap_collect() on the main thread keeps it exact and
 *     refgc_heap_check() (main heap + abandoned heaps + large blocks) finds nothing.
 * ========================================================================================== */

typedef struct qitem_s {
  void *p;
  size_t size;
  unsigned producer; /* thread id of the allocator */
  uint64_t seq;
} qitem_t;

typedef struct queue_s {
  pthread_mutex_t mu;
  pthread_cond_t not_empty, not_full;
  qitem_t *items;
  size_t cap, head, count;
  int producers_left;
} queue_t;

static void queue_init(queue_t *q, size_t cap, int producers) {
  pthread_mutex_init(&q->mu, NULL);
  pthread_cond_init(&q->not_empty, NULL);
  pthread_cond_init(&q->not_full, NULL);
  q->items = malloc(cap * sizeof *q->items);
  q->cap = cap;
  q->head = q->count = 0;
  q->producers_left = producers;
}

static void queue_destroy(queue_t *q) {
  free(q->items);
  pthread_mutex_destroy(&q->mu);
  pthread_cond_destroy(&q->not_empty);
  pthread_cond_destroy(&q->not_full);
}

static void queue_push(queue_t *q, qitem_t it) {
  pthread_mutex_lock(&q->mu);
  while (q->count == q->cap) pthread_cond_wait(&q->not_full, &q->mu);
  q->items[(q->head + q->count) % q->cap] = it;
  q->count++;
  pthread_cond_signal(&q->not_empty);
  pthread_mutex_unlock(&q->mu);
}

static void queue_producer_done(queue_t *q) {
  pthread_mutex_lock(&q->mu);
  q->producers_left--;
  pthread_cond_broadcast(&q->not_empty);
  pthread_mutex_unlock(&q->mu);
}

/* false when every producer is done and the queue is empty */
static bool queue_pop(queue_t *q, qitem_t *out) {
  pthread_mutex_lock(&q->mu);
  while (q->count == 0 && q->producers_left > 0) pthread_cond_wait(&q->not_empty, &q->mu);
  if (q->count == 0) {
    pthread_mutex_unlock(&q->mu);
    return false;
  }
  *out = q->items[q->head];
  q->head = (q->head + 1) % q->cap;
  q->count--;
  pthread_cond_signal(&q->not_full);
  pthread_mutex_unlock(&q->mu);
  return true;
}

typedef struct pc_shared_s {
  queue_t q;
  long per_producer;
  /* phases, under `mu`: 0 running, 1 producers collect, 2 producers exit */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int phase;
  int collected; /* producers that have collected and checked */
  /* totals */
  atomic_ulong allocs, requested;             /* every refgc allocation, and bytes asked */
  atomic_ulong large_blocks, small_bytes_max; /* blocks > 128K; bound for uncollected bytes */
  atomic_ulong remote_frees, consumer_allocs;
  atomic_int producer_check_bad;
} pc_shared_t;

typedef struct pc_arg_s {
  pc_shared_t *sh;
  unsigned id; /* producers 1..P, consumers 101.. */
  test_rng_t rng;
} pc_arg_t;

static void pc_wait_phase(pc_shared_t *sh, int phase) {
  pthread_mutex_lock(&sh->mu);
  while (sh->phase < phase) pthread_cond_wait(&sh->cv, &sh->mu);
  pthread_mutex_unlock(&sh->mu);
}

static void pc_set_phase(pc_shared_t *sh, int phase) {
  pthread_mutex_lock(&sh->mu);
  sh->phase = phase;
  pthread_cond_broadcast(&sh->cv);
  pthread_mutex_unlock(&sh->mu);
}

/* Upper bound of the block size the heap uses for a small/medium request (for the bound on
 * uncollected remote frees): the size classes waste at most 25 %, plus 16 bytes of rounding.
 * Debug mode adds a tail of at most 8 + 8 * 32 + 8 bytes to every request. */
static size_t class_bound(size_t n) {
  if (refgc_debug_mode()) n += 272;
  return n + n / 4 + 16;
}

static void *producer_main(void *argp) {
  pc_arg_t *a = argp;
  pc_shared_t *sh = a->sh;
  for (long seq = 0; seq < sh->per_producer && !workers_failed(); seq++) {
    size_t n = rand_size(&a->rng, 1, TT_LARGE_MAX);
    void *p = refgc_malloc(n);
    if (!p) {
      worker_fail("producer %u: refgc_malloc(%zu) failed", a->id, n);
      break;
    }
    atomic_fetch_add(&sh->allocs, 1);
    atomic_fetch_add(&sh->requested, n);
    if (n > MEDIUM_MAX)
      atomic_fetch_add(&sh->large_blocks, 1);
    else
      atomic_fetch_add(&sh->small_bytes_max, class_bound(n));
    pat_fill(p, 0, n, TAG(a->id, seq));
    queue_push(&sh->q, (qitem_t){p, n, a->id, (uint64_t)seq});
  }
  queue_producer_done(&sh->q);
  /* Consumers are done once the main thread has joined them: take the remote frees now. */
  pc_wait_phase(sh, 1);
  refgc_heap_collect();
  if (refgc_heap_check() != 0) atomic_fetch_add(&sh->producer_check_bad, 1);
  pthread_mutex_lock(&sh->mu);
  sh->collected++;
  pthread_cond_broadcast(&sh->cv);
  pthread_mutex_unlock(&sh->mu);
  pc_wait_phase(sh, 2);
  return NULL;
}

static void *consumer_main(void *argp) {
  pc_arg_t *a = argp;
  pc_shared_t *sh = a->sh;
  qitem_t it;
  unsigned long n_items = 0;
  while (queue_pop(&sh->q, &it)) {
    n_items++;
    if (it.producer == a->id) worker_fail("consumer %u got its own block", a->id);
    uint64_t tag = TAG(it.producer, it.seq);
    long bad = pat_check(it.p, 0, it.size, tag);
    if (bad >= 0)
      worker_fail("consumer %u: block %p (%zu bytes, producer %u, seq %llu) overwritten at "
                  "offset %ld",
                  a->id, it.p, it.size, it.producer, (unsigned long long)it.seq, bad);
    if (!refgc_owns(it.p)) worker_fail("refgc_owns(%p) is 0 for a live block", it.p);
    size_t u = refgc_usable_size(it.p);
    if (u < it.size) worker_fail("usable_size(%p) = %zu < %zu", it.p, u, it.size);
    if (n_items % 32 == 0) {
      /* realloc(p, 0): frees p (remotely) and returns a block of our own heap */
      void *m = refgc_realloc(it.p, 0);
      if (!m) worker_fail("realloc(%p, 0) returned NULL", it.p);
      atomic_fetch_add(&sh->allocs, 1);
      atomic_fetch_add(&sh->consumer_allocs, 1);
      refgc_free(m);
    } else {
      refgc_free(it.p);
    }
    atomic_fetch_add(&sh->remote_frees, 1);
    if (n_items % 8 == 0) {
      /* scratch: a block of the consumer's own heap, freed locally */
      size_t n = rand_size(&a->rng, 1, 0);
      void *s = refgc_malloc(n);
      if (!s) {
        worker_fail("consumer %u: refgc_malloc(%zu) failed", a->id, n);
        continue;
      }
      atomic_fetch_add(&sh->allocs, 1);
      atomic_fetch_add(&sh->requested, n);
      atomic_fetch_add(&sh->consumer_allocs, 1);
      pat_fill(s, 0, n, TAG(a->id, n_items));
      if (pat_check(s, 0, n, TAG(a->id, n_items)) >= 0) worker_fail("scratch block changed");
      refgc_free(s);
    }
  }
  return NULL;
}

TEST(producer_consumer_remote_frees) {
  case_begin();
  enum { P = 3, C = 3 };
  static pc_shared_t sh;
  memset(&sh, 0, sizeof sh);
  sh.per_producer = tt_work(30000, 500);
  queue_init(&sh.q, 256, P);
  pthread_mutex_init(&sh.mu, NULL);
  pthread_cond_init(&sh.cv, NULL);
  double t0 = now_s();

  refgc_heap_collect();
  refgc_heap_stats_t base = stats_now();

  pthread_t prod[P], cons[C];
  pc_arg_t pa[P], ca[C];
  for (int i = 0; i < C; i++) {
    ca[i] = (pc_arg_t){&sh, 101u + (unsigned)i, {test_seed() ^ (0xC0 + (uint64_t)i) * PAT_K}};
    start(&cons[i], consumer_main, &ca[i]);
  }
  for (int i = 0; i < P; i++) {
    pa[i] = (pc_arg_t){&sh, 1u + (unsigned)i, {test_seed() ^ (0x50 + (uint64_t)i) * PAT_K}};
    start(&prod[i], producer_main, &pa[i]);
  }
  join_all(cons, C);

  /* Every block is freed; the producers are alive and idle. Snapshots are taken now and
   * checked once every thread is joined, so that a failed check leaves no thread blocked. */
  refgc_heap_stats_t mid = stats_now();
  /* the main thread's collect need not take a live thread's remote frees */
  refgc_heap_collect();
  refgc_heap_stats_t mid2 = stats_now();

  /* each producer takes its own remote frees */
  pc_set_phase(&sh, 1);
  pthread_mutex_lock(&sh.mu);
  while (sh.collected < P) pthread_cond_wait(&sh.cv, &sh.mu);
  pthread_mutex_unlock(&sh.mu);
  refgc_heap_stats_t end = stats_now();

  /* the producers exit: their heaps are abandoned, and the figures stay exact */
  pc_set_phase(&sh, 2);
  join_all(prod, P);
  refgc_heap_collect();
  refgc_heap_stats_t after = stats_now();

  ASSERT_WORKERS_OK();
  ASSERT_EQ(ld_ul(&sh.remote_frees), (unsigned long)P * (unsigned long)sh.per_producer);
  /* large blocks are unmapped by whoever frees them: back at the baseline at once */
  ASSERT_EQ(mid.large_count, base.large_count);
  ASSERT_EQ(mid.large_bytes, base.large_bytes);
  /* small and medium blocks freed remotely count until their owner collects them */
  ASSERT_GE(mid.in_use, base.in_use);
  ASSERT_LE(mid.in_use - base.in_use, ld_ul(&sh.small_bytes_max));
  size_t uncollected = mid.in_use - base.in_use;
  ASSERT_GE(mid2.in_use, base.in_use);
  ASSERT_LE(mid2.in_use, mid.in_use);
  /* after each owner's refgc_heap_collect(): exact */
  unsigned long allocs = ld_ul(&sh.allocs);
  ASSERT_EQ(ld_i(&sh.producer_check_bad), 0);
  ASSERT_EQ(end.in_use, base.in_use);
  ASSERT_EQ(end.alloc_count - base.alloc_count, allocs);
  ASSERT_EQ(end.free_count - base.free_count, allocs);
  /* debug mode (REFGC_DEBUG=1, not how CTest runs this) counts each block's debug tail too */
  if (refgc_debug_mode())
    ASSERT_GE(end.requested_total - base.requested_total, ld_ul(&sh.requested));
  else
    ASSERT_EQ(end.requested_total - base.requested_total, ld_ul(&sh.requested));
  ASSERT_EQ(end.large_count, base.large_count);
  /* after the owners exited and main collected: still exact */
  ASSERT_EQ(after.in_use, base.in_use);
  ASSERT_EQ(after.alloc_count - after.free_count, base.alloc_count - base.free_count);
  ASSERT_LE(after.heaps_abandoned, after.heaps);
  ASSERT_EQ(refgc_heap_check(), 0);
  ASSERT_EQ(ld_i(&heap_errors), 0);
  printf("# producer/consumer [%s]: %d producers x %ld blocks (%lu large), %lu consumer "
         "blocks, %zu bytes of remote frees uncollected before the owners collected, "
         "%.2f s\n",
         TT_FLAVOUR, P, sh.per_producer, atomic_load(&sh.large_blocks),
         atomic_load(&sh.consumer_allocs), uncollected, now_s() - t0);
  queue_destroy(&sh.q);
  pthread_mutex_destroy(&sh.mu);
  pthread_cond_destroy(&sh.cv);
  case_end();
}

/* =============================================================================================
 * 2. Threads come and go
 *
 * Waves of W short-lived threads. Each thread frees blocks from a global table (most of them
 * allocated by threads that are dead by now, whose heaps are abandoned or adopted), allocates
 * blocks, frees most of them locally and keeps some in the table, checks its heap and exits.
 * Between waves the main thread frees blocks of dead threads too (remote frees into abandoned
 * heaps). In odd waves a thread's replacement starts as soon as it has exited, while the rest
 * of the wave still runs.
 *
 * Checks: at most W threads (plus main) ever live at once, so the number of heaps never
 * exceeds max(baseline, W + 1), whatever the number of waves; after each wave every heap but
 * the main thread's is abandoned. At the end, with every block freed and refgc_heap_collect()
 * called, in-use is exactly the baseline and committed memory, less heap metadata (segment
 * headers and heap structs, which are never given back), is within a small slack of the
 * baseline.
 * ========================================================================================== */

enum { CG_W = 4, CG_TABLE = 1024, CG_MAX_THREADS = 4096 };

typedef struct cg_shared_s {
  _Atomic(void *) table[CG_TABLE];
  atomic_bool dead[CG_MAX_THREADS]; /* by thread id, set once joined */
  long per_thread, keep;
  atomic_ulong freed_dead, freed_live, freed_by_main, frees;
  atomic_int check_bad;
} cg_shared_t;

typedef struct cg_arg_s {
  cg_shared_t *sh;
  unsigned id;
  test_rng_t rng;
} cg_arg_t;

static void cg_free_block(cg_shared_t *sh, void *p, const char *who) {
  uint64_t tag = blk_verify(p, who);
  if (tag) {
    unsigned tid = TAG_TID(tag);
    if (tid < CG_MAX_THREADS && atomic_load(&sh->dead[tid]))
      atomic_fetch_add(&sh->freed_dead, 1);
    else
      atomic_fetch_add(&sh->freed_live, 1);
  }
  refgc_free(p);
  atomic_fetch_add(&sh->frees, 1);
}

static void *cg_thread(void *argp) {
  cg_arg_t *a = argp;
  cg_shared_t *sh = a->sh;
  /* free blocks left by earlier threads */
  for (int k = 0; k < CG_TABLE / (2 * CG_W); k++) {
    void *p = atomic_exchange(&sh->table[test_below(&a->rng, CG_TABLE)], NULL);
    if (p) cg_free_block(sh, p, "wave thread (old block)");
  }
  /* allocate; free most locally, in a random order; keep some */
  enum { LIVE = 64 };
  void *live[LIVE] = {0};
  long kept = 0;
  for (long seq = 0; seq < sh->per_thread && !workers_failed(); seq++) {
    unsigned i = (unsigned)test_below(&a->rng, LIVE);
    if (live[i]) {
      if (kept < sh->keep && test_below(&a->rng, 4) == 0) {
        void *old = atomic_exchange(&sh->table[test_below(&a->rng, CG_TABLE)], live[i]);
        kept++;
        if (old) cg_free_block(sh, old, "wave thread (replaced block)");
      } else {
        cg_free_block(sh, live[i], "wave thread (own block)");
      }
    }
    live[i] = blk_new(&a->rng, TAG(a->id, seq), TT_LARGE_MAX);
  }
  for (unsigned i = 0; i < LIVE; i++)
    if (live[i]) cg_free_block(sh, live[i], "wave thread (own block)");
  if (refgc_heap_check() != 0) atomic_fetch_add(&sh->check_bad, 1);
  return NULL;
}

TEST(threads_come_and_go) {
  case_begin();
  static cg_shared_t sh;
  memset(&sh, 0, sizeof sh);
  long waves = tt_work(48, 12);
  if (waves * CG_W * 2 + 1 >= CG_MAX_THREADS) waves = (CG_MAX_THREADS - 2) / (CG_W * 2);
  sh.per_thread = 600 / TT_DIV; /* --scale adds waves, not work per thread */
  sh.keep = 40;
  double t0 = now_s();

  refgc_free(refgc_malloc(1)); /* the main thread has a heap from here on */
  refgc_heap_collect();
  refgc_heap_stats_t base = stats_now();
  size_t heap_bound = base.heaps > CG_W + 1 ? base.heaps : CG_W + 1;
  unsigned long allocs0 = atomic_load(&blocks_allocated);

  test_rng_t rng = {test_seed() ^ 0x2222};
  unsigned next_id = 1;
  size_t heaps_max = 0, committed_peak = 0;
  for (long w = 0; w < waves && !workers_failed(); w++) {
    pthread_t t[CG_W];
    cg_arg_t args[2 * CG_W];
    unsigned n_args = 0;
    for (int i = 0; i < CG_W; i++) {
      unsigned id = next_id++;
      args[n_args] = (cg_arg_t){&sh, id, {test_seed() ^ mix64(id)}};
      start(&t[i], cg_thread, &args[n_args++]);
    }
    for (int i = 0; i < CG_W; i++) {
      pthread_join(t[i], NULL);
      atomic_store(&sh.dead[args[i].id], true);
      if (w % 2) {
        /* replacement: adopts the heap just abandoned while the others still run */
        unsigned id = next_id++;
        args[n_args] = (cg_arg_t){&sh, id, {test_seed() ^ mix64(id)}};
        start(&t[i], cg_thread, &args[n_args++]);
      }
    }
    if (w % 2) {
      for (int i = 0; i < CG_W; i++) {
        pthread_join(t[i], NULL);
        atomic_store(&sh.dead[args[CG_W + i].id], true);
      }
    }
    /* the main thread frees some blocks of dead threads: remote frees into abandoned heaps */
    for (int k = 0; k < CG_TABLE / 8; k++) {
      void *p = atomic_exchange(&sh.table[test_below(&rng, CG_TABLE)], NULL);
      if (p) {
        cg_free_block(&sh, p, "main thread");
        atomic_fetch_add(&sh.freed_by_main, 1);
      }
    }
    refgc_heap_stats_t s = stats_now();
    if (s.heaps > heaps_max) heaps_max = s.heaps;
    if (s.committed_peak > committed_peak) committed_peak = s.committed_peak;
    if (s.heaps > heap_bound)
      TEST_FAIL("wave %ld: %zu heaps, more than max(baseline %zu, %d threads + main)", w,
                s.heaps, base.heaps, CG_W);
    /* every thread is dead: every heap but main's is abandoned */
    ASSERT_EQ(s.heaps_abandoned, s.heaps - 1);
  }
  ASSERT_WORKERS_OK();
  for (int i = 0; i < CG_TABLE; i++) {
    void *p = atomic_exchange(&sh.table[i], NULL);
    if (p) {
      cg_free_block(&sh, p, "main thread (final)");
      atomic_fetch_add(&sh.freed_by_main, 1);
    }
  }
  ASSERT_WORKERS_OK();
  ASSERT_EQ(ld_i(&sh.check_bad), 0);
  unsigned long made = atomic_load(&blocks_allocated) - allocs0;
  ASSERT_EQ(ld_ul(&sh.frees), made);
  ASSERT_GT(ld_ul(&sh.freed_dead), 0);

  refgc_heap_stats_t before_collect = stats_now();
  refgc_heap_collect();
  refgc_heap_stats_t end = stats_now();
  ASSERT_EQ(end.in_use, base.in_use);
  ASSERT_EQ(end.alloc_count - base.alloc_count, made);
  ASSERT_EQ(end.free_count - base.free_count, made);
  ASSERT_EQ(end.large_count, base.large_count);
  ASSERT_LE(end.heaps, heap_bound);
  ASSERT_EQ(end.heaps_abandoned, end.heaps - 1);
  /* memory came back: all but metadata, which stays (segments are never unmapped) */
  size_t slack = 256 * KiB;
  size_t base_data = base.committed - base.metadata, end_data = end.committed - end.metadata;
  if (end_data > base_data + slack)
    TEST_FAIL("committed less metadata is %zu after collect, baseline %zu (+%zu slack); "
              "committed %zu, metadata %zu, peak %zu",
              end_data, base_data, slack, end.committed, end.metadata, committed_peak);
  ASSERT_LT(end.committed, before_collect.committed + 1); /* never grows by collecting */
  ASSERT_EQ(refgc_heap_check(), 0);
  ASSERT_EQ(ld_i(&heap_errors), 0);
  printf("# come and go [%s]: %ld waves of %d threads (%u threads), %lu blocks, %lu freed from "
         "dead threads, %lu by main; heaps %zu -> max %zu (bound %zu); committed less metadata "
         "%zu -> %zu (peak committed %zu, before collect %zu), metadata %zu -> %zu; %.2f s\n",
         TT_FLAVOUR, waves, CG_W, next_id - 1, made, atomic_load(&sh.freed_dead),
         atomic_load(&sh.freed_by_main), base.heaps, heaps_max, heap_bound, base_data, end_data,
         committed_peak, before_collect.committed, base.metadata, end.metadata, now_s() - t0);
  case_end();
}

/* =============================================================================================
 * 3. All to all
 *
 * N threads share a table of slots. Each step a thread either takes the block in a random slot
 * (atomic exchange with NULL: whoever gets the pointer owns it), checks and frees it — most
 * often a block of another thread, so a remote free, sometimes its own; or reallocates it
 * (refgc_realloc of another thread's block), refills and puts it back; or allocates a block
 * and puts it in a slot (freeing what was there); or allocates and frees a burst of blocks
 * locally. The workers of case 4 run the same loop.
 * ========================================================================================== */

enum { AA_SLOTS = 2048 };

typedef struct aa_shared_s {
  _Atomic(void *) table[AA_SLOTS];
  long steps;
  atomic_bool stop; /* case 4: stop early */
  atomic_ulong own_frees, other_frees, reallocs, local_bursts, frees;
  atomic_int check_bad;
  atomic_int finished; /* workers that have returned */
} aa_shared_t;

typedef struct aa_arg_s {
  aa_shared_t *sh;
  unsigned id;
  test_rng_t rng;
} aa_arg_t;

static void aa_free(aa_shared_t *sh, unsigned self, void *p, const char *who) {
  uint64_t tag = blk_verify(p, who);
  if (tag && TAG_TID(tag) == self)
    atomic_fetch_add_explicit(&sh->own_frees, 1, memory_order_relaxed);
  else
    atomic_fetch_add_explicit(&sh->other_frees, 1, memory_order_relaxed);
  refgc_free(p);
  atomic_fetch_add_explicit(&sh->frees, 1, memory_order_relaxed);
}

static void *aa_thread(void *argp) {
  aa_arg_t *a = argp;
  aa_shared_t *sh = a->sh;
  test_rng_t *r = &a->rng;
  uint64_t seq = 0;
  for (long step = 0; step < sh->steps && !workers_failed() && !atomic_load(&sh->stop); step++) {
    unsigned op = (unsigned)test_below(r, 100);
    _Atomic(void *) *slot = &sh->table[test_below(r, AA_SLOTS)];
    if (op < 40) {
      void *p = atomic_exchange(slot, NULL);
      if (p) aa_free(sh, a->id, p, "take and free");
    } else if (op < 48) {
      void *p = atomic_exchange(slot, NULL);
      if (!p) continue;
      if (!blk_verify(p, "take for realloc")) continue;
      size_t old = blk_size(p);
      size_t n = rand_size(r, HDR, TT_LARGE_MAX);
      uint64_t *q = refgc_realloc(p, n);
      if (!q) {
        worker_fail("realloc(%p, %zu) failed", p, n);
        continue;
      }
      atomic_fetch_add_explicit(&sh->reallocs, 1, memory_order_relaxed);
      /* the kept prefix still holds the old pattern */
      size_t keep = old < n ? old : n;
      uint64_t tag = q[0];
      if (q[1] != old || pat_check(q, HDR, keep, tag) >= 0)
        worker_fail("realloc(%p, %zu) -> %p lost the first %zu bytes", p, n, (void *)q, keep);
      uint64_t ntag = TAG(a->id, seq++);
      q[0] = ntag;
      q[1] = n;
      pat_fill(q, HDR, n, ntag);
      void *old_block = atomic_exchange(slot, q);
      if (old_block) aa_free(sh, a->id, old_block, "replaced after realloc");
    } else if (op < 92) {
      void *p = blk_new(r, TAG(a->id, seq++), TT_LARGE_MAX);
      if (!p) continue;
      void *old_block = atomic_exchange(slot, p);
      if (old_block) aa_free(sh, a->id, old_block, "replaced");
    } else {
      enum { BURST = 24 };
      void *local[BURST];
      unsigned n = 1 + (unsigned)test_below(r, BURST);
      for (unsigned i = 0; i < n; i++) local[i] = blk_new(r, TAG(a->id, seq++), 0);
      for (unsigned i = n; i-- > 1;) { /* shuffle, then free in that order */
        unsigned j = (unsigned)test_below(r, i + 1);
        void *t = local[i];
        local[i] = local[j];
        local[j] = t;
      }
      for (unsigned i = 0; i < n; i++)
        if (local[i]) aa_free(sh, a->id, local[i], "local burst");
      atomic_fetch_add_explicit(&sh->local_bursts, 1, memory_order_relaxed);
    }
  }
  if (refgc_heap_check() != 0) atomic_fetch_add(&sh->check_bad, 1);
  atomic_fetch_add(&sh->finished, 1);
  return NULL;
}

/* Free what is left in the table (from the calling thread). */
static void aa_drain(aa_shared_t *sh) {
  for (int i = 0; i < AA_SLOTS; i++) {
    void *p = atomic_exchange(&sh->table[i], NULL);
    if (p) aa_free(sh, 0, p, "final drain");
  }
}

TEST(all_to_all_frees) {
  case_begin();
  enum { N = 4 };
  static aa_shared_t sh;
  memset(&sh, 0, sizeof sh);
  sh.steps = tt_work(40000, 2000);
  double t0 = now_s();
  refgc_heap_collect();
  refgc_heap_stats_t base = stats_now();
  unsigned long allocs0 = atomic_load(&blocks_allocated);

  pthread_t t[N];
  aa_arg_t args[N];
  for (int i = 0; i < N; i++) {
    args[i] = (aa_arg_t){&sh, 1u + (unsigned)i, {test_seed() ^ mix64(0xAA00u + (unsigned)i)}};
    start(&t[i], aa_thread, &args[i]);
  }
  join_all(t, N);
  ASSERT_WORKERS_OK();
  aa_drain(&sh); /* the owners are dead: remote frees into abandoned heaps */
  ASSERT_WORKERS_OK();
  ASSERT_EQ(ld_i(&sh.check_bad), 0);
  unsigned long made = atomic_load(&blocks_allocated) - allocs0;
  ASSERT_EQ(ld_ul(&sh.frees), made);
  ASSERT_GT(ld_ul(&sh.other_frees), 0);
  ASSERT_GT(ld_ul(&sh.own_frees), 0);

  refgc_heap_collect();
  refgc_heap_stats_t end = stats_now();
  ASSERT_EQ(end.in_use, base.in_use);
  ASSERT_EQ(end.large_count, base.large_count);
  /* realloc of a block that moves is one allocation and one free more */
  ASSERT_EQ((end.alloc_count - base.alloc_count) - (end.free_count - base.free_count), 0);
  ASSERT_GE(end.alloc_count - base.alloc_count, made);
  ASSERT_EQ(refgc_heap_check(), 0);
  ASSERT_EQ(ld_i(&heap_errors), 0);
  printf("# all to all [%s]: %d threads x %ld steps, %lu blocks, %lu frees of other threads' "
         "blocks, %lu of own, %lu reallocs, %lu local bursts; %.2f s\n",
         TT_FLAVOUR, N, sh.steps, made, atomic_load(&sh.other_frees), atomic_load(&sh.own_frees),
         atomic_load(&sh.reallocs), atomic_load(&sh.local_bursts), now_s() - t0);
  case_end();
}

/* =============================================================================================
 * 4. Statistics, reports, collect and check while the heap is busy
 *
 * All-to-all workers run, and a churn thread keeps starting short threads that allocate blocks
 * into the shared table and exit (so there are always abandoned heaps and remote frees into
 * them). Meanwhile a monitor thread with no heap of its own, and the main thread, repeatedly
 * call refgc_heap_stats, refgc_heap_stats_print_json, refgc_heap_stats_print,
 * refgc_heap_collect and refgc_heap_check. Nothing may crash, trip a sanitizer or be reported
 * as corrupt; each snapshot must be sane; each JSON report must be one complete object.
 * ========================================================================================== */

typedef struct mon_shared_s {
  aa_shared_t *aa;
  atomic_bool stop;
  atomic_ulong rounds, churned, sane_bad, json_bad;
  atomic_int check_bad;
} mon_shared_t;

static void monitor_round(mon_shared_t *m, FILE *json, FILE *text) {
  refgc_heap_stats_t s = stats_now();
  if (s.version != REFGC_HEAP_STATS_VERSION || s.num_classes == 0 ||
      s.num_classes > REFGC_MAX_CLASSES || !(s.fragmentation >= 0.0) ||
      s.classes[0].block_size == 0) {
    atomic_fetch_add(&m->sane_bad, 1);
    fprintf(stderr, "  insane snapshot: version %u classes %u heaps %zu abandoned %zu frag %f\n",
            s.version, s.num_classes, s.heaps, s.heaps_abandoned, s.fragmentation);
  }
  rewind(json);
  if (refgc_heap_stats_print_json(json) != 0) atomic_fetch_add(&m->json_bad, 1);
  long len = ftell(json);
  char head[16] = {0}, tail[4] = {0};
  rewind(json);
  if (fread(head, 1, 12, json) != 12 || memcmp(head, "{\"version\":1", 12) != 0)
    atomic_fetch_add(&m->json_bad, 1);
  if (len < 4 || fseek(json, len - 3, SEEK_SET) != 0 || fread(tail, 1, 3, json) != 3 ||
      memcmp(tail, "]}\n", 3) != 0)
    atomic_fetch_add(&m->json_bad, 1);
  refgc_heap_stats_print(text);
  refgc_heap_collect();
  if (refgc_heap_check() != 0) atomic_fetch_add(&m->check_bad, 1);
  atomic_fetch_add(&m->rounds, 1);
}

static void *monitor_thread(void *argp) {
  mon_shared_t *m = argp;
  FILE *json = tmpfile(), *text = fopen("/dev/null", "w");
  if (!json || !text) {
    worker_fail("monitor: cannot open its output files");
    return NULL;
  }
  while (!atomic_load(&m->stop)) monitor_round(m, json, text);
  fclose(json);
  fclose(text);
  return NULL;
}

typedef struct churn_arg_s {
  mon_shared_t *m;
  unsigned id;
  test_rng_t rng;
} churn_arg_t;

static void *churn_child(void *argp) {
  churn_arg_t *c = argp;
  aa_shared_t *sh = c->m->aa;
  for (int k = 0; k < 24; k++) {
    void *p = blk_new(&c->rng, TAG(c->id, k), TT_LARGE_MAX / 2);
    if (!p) break;
    void *old = atomic_exchange(&sh->table[test_below(&c->rng, AA_SLOTS)], p);
    if (old) aa_free(sh, c->id, old, "churn thread");
  }
  return NULL;
}

static void *churn_thread(void *argp) {
  mon_shared_t *m = argp;
  unsigned id = 1000;
  while (!atomic_load(&m->stop) && !workers_failed()) {
    enum { K = 2 };
    pthread_t t[K];
    churn_arg_t args[K];
    for (int i = 0; i < K; i++) {
      args[i] = (churn_arg_t){m, id, {test_seed() ^ mix64(id)}};
      id++;
      start(&t[i], churn_child, &args[i]);
    }
    join_all(t, K);
    atomic_fetch_add(&m->churned, K);
  }
  return NULL;
}

TEST(stats_collect_check_while_busy) {
  case_begin();
  enum { N = 3 };
  static aa_shared_t sh;
  static mon_shared_t m;
  memset(&sh, 0, sizeof sh);
  memset(&m, 0, sizeof m);
  m.aa = &sh;
  sh.steps = tt_work(30000, 1500);
  double t0 = now_s();
  refgc_heap_collect();
  refgc_heap_stats_t base = stats_now();
  unsigned long allocs0 = atomic_load(&blocks_allocated);

  FILE *json = tmpfile(), *text = fopen("/dev/null", "w");
  ASSERT(json && text);
  pthread_t t[N], mon, churn;
  aa_arg_t args[N];
  start(&mon, monitor_thread, &m);
  start(&churn, churn_thread, &m);
  for (int i = 0; i < N; i++) {
    args[i] = (aa_arg_t){&sh, 1u + (unsigned)i, {test_seed() ^ mix64(0x4400u + (unsigned)i)}};
    start(&t[i], aa_thread, &args[i]);
  }
  /* the main thread, which has a heap, monitors too, at a gentler pace */
  unsigned long main_rounds = 0;
  while (atomic_load(&sh.finished) < N) {
    monitor_round(&m, json, text);
    main_rounds++;
    struct timespec ts = {0, 2000000};
    nanosleep(&ts, NULL);
  }
  join_all(t, N);
  atomic_store(&m.stop, true);
  pthread_join(mon, NULL);
  pthread_join(churn, NULL);
  fclose(json);
  fclose(text);
  ASSERT_WORKERS_OK();
  aa_drain(&sh);
  ASSERT_WORKERS_OK();
  ASSERT_EQ(ld_i(&sh.check_bad), 0);
  ASSERT_EQ(ld_i(&m.check_bad), 0);
  ASSERT_EQ(ld_ul(&m.sane_bad), 0);
  ASSERT_EQ(ld_ul(&m.json_bad), 0);
  ASSERT_GT(ld_ul(&m.rounds), main_rounds);
  unsigned long made = atomic_load(&blocks_allocated) - allocs0;
  ASSERT_EQ(ld_ul(&sh.frees), made);

  refgc_heap_collect();
  refgc_heap_stats_t end = stats_now();
  ASSERT_EQ(end.in_use, base.in_use);
  ASSERT_EQ(end.large_count, base.large_count);
  ASSERT_EQ((end.alloc_count - base.alloc_count) - (end.free_count - base.free_count), 0);
  ASSERT_EQ(refgc_heap_check(), 0);
  ASSERT_EQ(ld_i(&heap_errors), 0);
  printf("# busy stats [%s]: %d workers x %ld steps, %lu short threads, %lu monitor rounds "
         "(%lu on main), %lu blocks; %.2f s\n",
         TT_FLAVOUR, N, sh.steps, atomic_load(&m.churned), atomic_load(&m.rounds), main_rounds,
         made, now_s() - t0);
  case_end();
}
