/* refgc — out of memory, driven by failure injection (`refgc_test_os_fail_after(n)`: the OS
 * layer refuses every request after the next n succeed).
 *
 * The heap caches memory (a heap keeps its segments for good), so a request reaches the OS only
 * when new memory is needed. To make every failure point reachable the walk over n runs each
 * round on a brand-new thread with a brand-new heap: the threads of earlier rounds stay alive
 * (parked) until the walk ends, so their heaps are not abandoned and adopted. Each round then
 * makes exactly the same OS requests — heap struct, small segments, medium segments, large
 * mappings — and round n fails at the (n+1)-th.
 *
 * Cases:
 *   every_failure_point_fresh_heap  the walk above: first NULL has errno ENOMEM, a failed
 *                                   realloc leaves its block intact and owned, the heap checks,
 *                                   everything frees, nothing leaks, and the same sequence then
 *                                   runs to the end on the same heap
 *   new_thread_heap_creation_fails  a new thread whose heap cannot be created gets NULL+ENOMEM
 *                                   from every allocation call, no crash, no heap counted
 *   warm_heap_needs_new_segments    the main thread's heap, with cached segments, runs out
 *                                   only when it needs more than it has
 *   cache_serves_while_os_refuses   blocks from existing pages still come while the OS refuses
 *   threads_run_out_together        several threads hit the limit at once, with remote frees
 *   impossible_sizes                calloc overflow, > PTRDIFF_MAX, more than the address space
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "refgc.h"
#include "test.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

/* ---- heap errors are printed and counted, never fatal ----------------------------------- */

static atomic_ulong heap_errors;

static void count_error(const refgc_error_info_t *info, void *arg) {
  (void)arg;
  atomic_fetch_add(&heap_errors, 1);
  fprintf(stderr, "  refgc error: %s\n", info->message);
}

static refgc_heap_stats_t stats_now(void) {
  refgc_heap_stats_t s;
  memset(&s, 0, sizeof s);
  s.size = sizeof s;
  refgc_heap_stats(&s);
  return s;
}

/* ---- blocks with a fill byte derived from their id -------------------------------------- */

typedef struct blk_s {
  uint8_t *p;
  size_t size;
  uint8_t fill;
} blk_t;

typedef struct blocks_s {
  blk_t *v;
  size_t n, cap;
  unsigned next_id;
} blocks_t;

static uint8_t fill_of(unsigned id) { return (uint8_t)(id * 0x9Du + 0x41u); }

static void blocks_push(blocks_t *b, uint8_t *p, size_t size) {
  if (b->n == b->cap) {
    b->cap = b->cap ? b->cap * 2 : 1024;
    b->v = realloc(b->v, b->cap * sizeof *b->v);
    if (!b->v) abort();
  }
  uint8_t f = fill_of(b->next_id++);
  memset(p, f, size);
  b->v[b->n++] = (blk_t){p, size, f};
}

/* Whether `p[0..size)` is all `f`: compared a chunk at a time against a reference buffer. */
static int all_bytes(const uint8_t *p, size_t size, uint8_t f) {
  uint8_t ref[4096];
  memset(ref, f, sizeof ref);
  while (size) {
    size_t k = size < sizeof ref ? size : sizeof ref;
    if (memcmp(p, ref, k) != 0) return 0;
    p += k;
    size -= k;
  }
  return 1;
}

/* Index of the first block whose contents changed, or -1. */
static long blocks_verify(const blocks_t *b) {
  for (size_t i = 0; i < b->n; i++)
    if (!all_bytes(b->v[i].p, b->v[i].size, b->v[i].fill)) return (long)i;
  return -1;
}

static void blocks_free_all(blocks_t *b) {
  for (size_t i = b->n; i-- > 0;) refgc_free(b->v[i].p);
  b->n = 0;
}

/* ---- a failure message from any thread -------------------------------------------------- */

typedef struct result_s {
  int failed;
  char msg[1024];
} result_t;

#define RFAIL(res, ...)                                          \
  do {                                                           \
    if (!(res)->failed) {                                        \
      (res)->failed = 1;                                         \
      snprintf((res)->msg, sizeof (res)->msg, __VA_ARGS__);      \
    }                                                            \
  } while (0)

/* Statistics back where they were: nothing leaked. Checks small classes, large blocks, bytes. */
static void check_baseline(result_t *res, const char *when, const refgc_heap_stats_t *base) {
  refgc_heap_stats_t s = stats_now();
  if (s.in_use != base->in_use)
    RFAIL(res, "%s: in_use %zu, was %zu", when, s.in_use, base->in_use);
  if (s.large_count != base->large_count || s.large_bytes != base->large_bytes)
    RFAIL(res, "%s: %zu large blocks (%zu bytes), was %zu (%zu)", when, s.large_count,
          s.large_bytes, base->large_count, base->large_bytes);
  for (unsigned c = 0; c < REFGC_MAX_CLASSES && c < s.num_classes; c++)
    if (s.classes[c].blocks_in_use != base->classes[c].blocks_in_use)
      RFAIL(res, "%s: class %u (%zu B) has %zu blocks in use, was %zu", when, c,
            s.classes[c].block_size, s.classes[c].blocks_in_use, base->classes[c].blocks_in_use);
}

/* ---- the sequence of allocations --------------------------------------------------------- */

enum { K_MALLOC, K_CALLOC, K_ALIGNED, K_REALLOC_CHAIN };

typedef struct step_s {
  int kind;
  size_t a, b; /* malloc: size; calloc: count, size; aligned: alignment, size */
  int repeat;
  const char *what;
} step_t;

/* A realloc from a small block to the heap's first medium block (a new segment), many small
 * blocks of several classes (new small segments), medium blocks (medium segments), large
 * blocks (one mapping each), aligned blocks of every path, calloc, and a realloc chain from
 * 10 bytes to 16 MiB and back. About 25 OS requests on a fresh heap. */
static const step_t sequence[] = {
    {K_REALLOC_CHAIN, 0, 0, 1, "realloc 10 -> 100000 (first medium segment)"},
    {K_MALLOC, 16, 0, 40000, "malloc 16"},
    {K_MALLOC, 48, 0, 30000, "malloc 48"},
    {K_MALLOC, 100, 0, 20000, "malloc 100"},
    {K_MALLOC, 512, 0, 4000, "malloc 512"},
    {K_MALLOC, 1000, 0, 2200, "malloc 1000"},
    {K_MALLOC, 3000, 0, 800, "malloc 3000"},
    {K_MALLOC, 8000, 0, 300, "malloc 8000"},
    {K_CALLOC, 100, 24, 500, "calloc 100 x 24"},
    {K_CALLOC, 1000, 24, 50, "calloc 1000 x 24"},
    {K_MALLOC, 10000, 0, 100, "malloc 10000"},
    {K_MALLOC, 60000, 0, 40, "malloc 60000"},
    {K_MALLOC, 131072, 0, 20, "malloc 128 KiB"},
    {K_MALLOC, 200 * 1024, 0, 1, "malloc 200 KiB"},
    {K_MALLOC, 1 << 20, 0, 1, "malloc 1 MiB"},
    {K_MALLOC, 3 << 20, 0, 1, "malloc 3 MiB"},
    {K_MALLOC, 9 << 20, 0, 1, "malloc 9 MiB"},
    {K_CALLOC, 1, 500000, 2, "calloc 1 x 500000"},
    {K_CALLOC, 3000, 100, 1, "calloc 3000 x 100"},
    {K_ALIGNED, 64, 100, 200, "aligned 64, 100"},
    {K_ALIGNED, 4096, 5000, 20, "aligned 4096, 5000"},
    {K_ALIGNED, 256, 20000, 10, "aligned 256, 20000"},
    {K_ALIGNED, 8192, 100, 3, "aligned 8192, 100"},
    {K_ALIGNED, 1 << 20, 300000, 1, "aligned 1 MiB, 300000"},
    {K_ALIGNED, 2 << 20, 10, 1, "aligned 2 MiB, 10"},
    {K_REALLOC_CHAIN, 1, 0, 1, "realloc 10 -> 16 MiB -> 1000"},
};
#define SEQ_STEPS (sizeof sequence / sizeof sequence[0])

/* realloc chains, 0-terminated: a block grown (and shrunk) step by step */
static const size_t chains[2][10] = {
    {5000, 100000, 0},
    {100, 1000, 10000, 100000, 1 << 20, 4 << 20, 16 << 20, 1000, 0},
};

typedef struct seq_out_s {
  long fail_call;     /* index of the allocation call that returned NULL, -1 if none */
  int fail_step;      /* its step */
  const char *fail_what;
} seq_out_t;

/* Run the sequence until the first NULL; every block made goes to `b`. Checks errno and, for a
 * failed realloc, that the old block is intact, owned and still in `b` (freed by the caller). */
static void run_sequence(blocks_t *b, seq_out_t *out, result_t *res) {
  long call = 0;
  out->fail_call = -1;
  out->fail_step = -1;
  out->fail_what = NULL;
  for (size_t s = 0; s < SEQ_STEPS; s++) {
    const step_t *st = &sequence[s];
    for (int r = 0; r < st->repeat; r++, call++) {
      uint8_t *p = NULL;
      size_t size = 0;
      errno = 0;
      switch (st->kind) {
        case K_MALLOC:
          size = st->a;
          p = refgc_malloc(size);
          break;
        case K_CALLOC:
          size = st->a * st->b;
          p = refgc_calloc(st->a, st->b);
          if (p && !all_bytes(p, size, 0)) RFAIL(res, "%s: block not zeroed", st->what);
          break;
        case K_ALIGNED:
          size = st->b;
          p = refgc_aligned_alloc(st->a, size);
          if (p && (uintptr_t)p % st->a) RFAIL(res, "%s: %p is misaligned", st->what, (void *)p);
          break;
        case K_REALLOC_CHAIN: {
          errno = 0;
          uint8_t *q = refgc_malloc(10);
          if (!q) goto failed;
          blocks_push(b, q, 10);
          for (size_t k = 0; chains[st->a][k]; k++, call++) {
            blk_t *e = &b->v[b->n - 1];
            size_t ns = chains[st->a][k];
            errno = 0;
            uint8_t *nq = refgc_realloc(e->p, ns);
            if (!nq) {
              int err = errno;
              if (err != ENOMEM)
                RFAIL(res, "realloc(%zu -> %zu) failed with errno %d, not ENOMEM", e->size, ns,
                      err);
              if (!all_bytes(e->p, e->size, e->fill))
                RFAIL(res, "a failed realloc(%zu -> %zu) changed the old block", e->size, ns);
              if (!refgc_owns(e->p))
                RFAIL(res, "after a failed realloc(%zu -> %zu) refgc_owns(old) is 0", e->size, ns);
              if (refgc_usable_size(e->p) < e->size)
                RFAIL(res, "after a failed realloc the old block's usable size is %zu < %zu",
                      refgc_usable_size(e->p), e->size);
              out->fail_call = call + 1;
              out->fail_step = (int)s;
              out->fail_what = st->what;
              return;
            }
            size_t keep = e->size < ns ? e->size : ns;
            if (!all_bytes(nq, keep, e->fill))
              RFAIL(res, "realloc(%zu -> %zu) lost the kept bytes", e->size, ns);
            memset(nq, e->fill, ns);
            e->p = nq;
            e->size = ns;
          }
          continue;
        }
      }
      if (!p) goto failed;
      blocks_push(b, p, size);
      continue;
    failed:
      if (errno != ENOMEM) RFAIL(res, "%s returned NULL with errno %d, not ENOMEM", st->what, errno);
      out->fail_call = call;
      out->fail_step = (int)s;
      out->fail_what = st->what;
      return;
    }
  }
}

/* ---- rounds on fresh threads, kept alive until the walk ends ----------------------------- */

static pthread_mutex_t park_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t park_cond = PTHREAD_COND_INITIALIZER;
static int park_release; /* the parked threads may exit */

typedef struct round_s {
  long n;          /* failure injection: refuse after n requests; < 0 none */
  seq_out_t out;   /* first pass (with injection) */
  seq_out_t again; /* second pass (no injection) */
  size_t heaps_before, heaps_after;
  result_t res;
  int done;
} round_t;

static void park(void) {
  pthread_mutex_lock(&park_lock);
  while (!park_release) pthread_cond_wait(&park_cond, &park_lock);
  pthread_mutex_unlock(&park_lock);
}

static void signal_done(int *done) {
  pthread_mutex_lock(&park_lock);
  *done = 1;
  pthread_cond_broadcast(&park_cond);
  pthread_mutex_unlock(&park_lock);
}

static void wait_done(int *done) {
  pthread_mutex_lock(&park_lock);
  while (!*done) pthread_cond_wait(&park_cond, &park_lock);
  pthread_mutex_unlock(&park_lock);
}

static void round_body(round_t *rd) {
  result_t *res = &rd->res;
  blocks_t b = {0};
  refgc_heap_stats_t base = stats_now();
  rd->heaps_before = base.heaps;
  unsigned long errs = atomic_load(&heap_errors);

  /* 1. with injection, up to the first NULL */
  refgc_test_os_fail_after(rd->n);
  run_sequence(&b, &rd->out, res);
  refgc_test_os_fail_after(-1);
  /* on any failure stop here, blocks and all: freeing them could crash on a broken heap */
  if (res->failed) return;
  int bad = refgc_heap_check();
  if (bad) RFAIL(res, "after the failure: refgc_heap_check() = %d", bad);
  long changed = blocks_verify(&b);
  if (changed >= 0) RFAIL(res, "after the failure: block %ld (%zu B) changed", changed, b.v[changed].size);
  if (res->failed) return;
  blocks_free_all(&b);
  check_baseline(res, "after the failure, everything freed", &base);
  if (res->failed) return;

  /* 2. the same sequence on the same heap, without injection: it must run to the end */
  run_sequence(&b, &rd->again, res);
  if (rd->again.fail_call >= 0)
    RFAIL(res, "without injection the sequence failed at call %ld (%s)", rd->again.fail_call,
          rd->again.fail_what);
  if (res->failed) return;
  bad = refgc_heap_check();
  if (bad) RFAIL(res, "after the second pass: refgc_heap_check() = %d", bad);
  changed = blocks_verify(&b);
  if (changed >= 0) RFAIL(res, "second pass: block %ld changed", changed);
  if (res->failed) return;
  blocks_free_all(&b);
  check_baseline(res, "after the second pass, everything freed", &base);

  /* 3. collect: the pages go back; only metadata stays */
  refgc_heap_collect();
  refgc_heap_stats_t s = stats_now();
  rd->heaps_after = s.heaps;
  if (s.heaps != base.heaps + 1)
    RFAIL(res, "heaps went from %zu to %zu (expected one new heap)", base.heaps, s.heaps);
  if (s.committed - s.metadata != base.committed - base.metadata)
    RFAIL(res, "after collect: committed - metadata is %zu, was %zu", s.committed - s.metadata,
          base.committed - base.metadata);
  if (atomic_load(&heap_errors) != errs) RFAIL(res, "the heap reported errors");
  free(b.v);
}

static void *round_thread(void *arg) {
  round_t *rd = arg;
  round_body(rd);
  signal_done(&rd->done);
  park();
  return NULL;
}

/* Adopt every abandoned heap with a parked thread, so that the next new thread must create a
 * heap. Returns how many threads were started (stored in `tids`). */
static void *adopter_thread(void *arg) {
  int *done = arg;
  void *p = refgc_malloc(1);
  refgc_free(p);
  signal_done(done);
  park();
  return NULL;
}

typedef struct parked_s {
  pthread_t *tids;
  size_t n, cap;
} parked_t;

static void parked_add(parked_t *pk, pthread_t t) {
  if (pk->n == pk->cap) {
    pk->cap = pk->cap ? pk->cap * 2 : 64;
    pk->tids = realloc(pk->tids, pk->cap * sizeof *pk->tids);
    if (!pk->tids) abort();
  }
  pk->tids[pk->n++] = t;
}

static void absorb_abandoned(parked_t *pk) {
  for (int guard = 0; stats_now().heaps_abandoned > 0 && guard < 1000; guard++) {
    static int done[1000];
    done[guard] = 0;
    pthread_t t;
    if (pthread_create(&t, NULL, adopter_thread, &done[guard]) != 0) TEST_FAIL("pthread_create");
    parked_add(pk, t);
    wait_done(&done[guard]);
  }
  ASSERT_EQ(stats_now().heaps_abandoned, 0);
}

static void release_parked(parked_t *pk) {
  pthread_mutex_lock(&park_lock);
  park_release = 1;
  pthread_cond_broadcast(&park_cond);
  pthread_mutex_unlock(&park_lock);
  for (size_t i = 0; i < pk->n; i++) pthread_join(pk->tids[i], NULL);
  pthread_mutex_lock(&park_lock);
  park_release = 0;
  pthread_mutex_unlock(&park_lock);
  free(pk->tids);
  pk->tids = NULL;
  pk->n = pk->cap = 0;
}

/* ---- cases ------------------------------------------------------------------------------- */

TEST(every_failure_point_fresh_heap) {
  refgc_set_error_handler(count_error, NULL);
  refgc_heap_collect();
  parked_t pk = {0};
  absorb_abandoned(&pk);
  enum { MAX_N = 400 };
  static round_t rounds[MAX_N];
  long prev_call = -1;
  int points = 0;
  char trail[2048] = "";
  size_t tl = 0;
  long n;
  for (n = 0; n < MAX_N; n++) {
    round_t *rd = &rounds[n];
    memset(rd, 0, sizeof *rd);
    rd->n = n;
    pthread_t t;
    if (pthread_create(&t, NULL, round_thread, rd) != 0) TEST_FAIL("pthread_create failed");
    parked_add(&pk, t);
    wait_done(&rd->done);
    if (rd->res.failed) {
      refgc_test_os_fail_after(-1);
      release_parked(&pk);
      TEST_FAIL("fail_after(%ld), failing at call %ld (%s): %s", n, rd->out.fail_call,
                rd->out.fail_what ? rd->out.fail_what : "-", rd->res.msg);
    }
    if (rd->out.fail_call < 0) break; /* the whole sequence ran: every failure point seen */
    /* a later failure point with each extra request allowed, never an earlier one */
    if (rd->out.fail_call < prev_call) {
      release_parked(&pk);
      TEST_FAIL("fail_after(%ld) failed at call %ld, fail_after(%ld) at call %ld", n,
                rd->out.fail_call, n - 1, prev_call);
    }
    if (rd->out.fail_call != prev_call) points++;
    prev_call = rd->out.fail_call;
    if (tl < sizeof trail - 64)
      tl += (size_t)snprintf(trail + tl, sizeof trail - tl, " %ld:%s", rd->out.fail_call,
                             rd->out.fail_what);
  }
  release_parked(&pk);
  if (n == MAX_N) TEST_FAIL("the sequence still failed with fail_after(%d)", MAX_N - 1);
  /* the sequence needs at least: a heap, 3 small segments, a medium segment, 15 mappings */
  ASSERT_GE(n, 20);
  printf("# every_failure_point_fresh_heap: the sequence makes %ld OS requests; %d distinct "
         "failure points\n",
         n, points);
  printf("# failure points (call:step):%s\n", trail);
  ASSERT_EQ(refgc_heap_check(), 0);
  refgc_set_error_handler(NULL, NULL);
}

typedef struct newthread_s {
  long allow; /* fail_after value set before the first allocation */
  int expect_heap;
  result_t res;
  size_t heaps_before, heaps_after_fail;
  int done;
} newthread_t;

static void newthread_body(newthread_t *nt) {
  result_t *res = &nt->res;
  refgc_heap_stats_t base = stats_now();
  nt->heaps_before = base.heaps;
  refgc_test_os_fail_after(nt->allow);
  struct {
    const char *what;
    int kind;
  } calls[] = {{"refgc_malloc(16)", 0},       {"refgc_malloc(0)", 1},
               {"refgc_calloc(4, 8)", 2},      {"refgc_aligned_alloc(64, 64)", 3},
               {"refgc_realloc(NULL, 32)", 4}, {"refgc_malloc(200000)", 5},
               {"refgc_aligned_alloc(8192, 8)", 6}, {"refgc_malloc(70000)", 7}};
  for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++) {
    void *p = NULL;
    errno = 0;
    switch (calls[i].kind) {
      case 0: p = refgc_malloc(16); break;
      case 1: p = refgc_malloc(0); break;
      case 2: p = refgc_calloc(4, 8); break;
      case 3: p = refgc_aligned_alloc(64, 64); break;
      case 4: p = refgc_realloc(NULL, 32); break;
      case 5: p = refgc_malloc(200000); break;
      case 6: p = refgc_aligned_alloc(8192, 8); break;
      case 7: p = refgc_malloc(70000); break;
    }
    int err = errno;
    if (p) {
      RFAIL(res, "fail_after(%ld) in a new thread: %s returned %p", nt->allow, calls[i].what, p);
      refgc_free(p);
    } else if (err != ENOMEM) {
      RFAIL(res, "%s returned NULL with errno %d, not ENOMEM", calls[i].what, err);
    }
  }
  refgc_free(NULL);
  refgc_heap_collect();
  int bad = refgc_heap_check();
  if (bad) RFAIL(res, "refgc_heap_check() = %d with the heap uncreated", bad);
  refgc_heap_stats_t s = stats_now();
  nt->heaps_after_fail = s.heaps;
  if (s.heaps != base.heaps + (size_t)nt->expect_heap)
    RFAIL(res, "fail_after(%ld): heaps went from %zu to %zu", nt->allow, base.heaps, s.heaps);
  if (s.large_count != base.large_count) RFAIL(res, "a failed large block was counted");
  if (s.reserved - s.metadata != base.reserved - base.metadata && !nt->expect_heap)
    RFAIL(res, "reserved went from %zu to %zu with nothing mapped", base.reserved, s.reserved);
  /* the OS gives memory again: the thread's heap works */
  refgc_test_os_fail_after(-1);
  uint8_t *q = refgc_malloc(100);
  if (!q) {
    RFAIL(res, "refgc_malloc(100) failed once the OS gives memory again");
    return;
  }
  memset(q, 1, 100);
  uint8_t *big = refgc_malloc(300000);
  if (!big) RFAIL(res, "refgc_malloc(300000) failed once the OS gives memory again");
  refgc_free(big);
  refgc_free(q);
  bad = refgc_heap_check();
  if (bad) RFAIL(res, "refgc_heap_check() = %d after recovering", bad);
  check_baseline(res, "new thread, everything freed", &base);
}

typedef struct adopt_s {
  result_t res;
} adopt_t;

static void *adopt_under_refusal(void *arg) {
  adopt_t *ad = arg;
  result_t *res = &ad->res;
  refgc_test_os_fail_after(0);
  errno = 0;
  uint8_t *p = refgc_malloc(16);
  if (!p) RFAIL(res, "an adopted heap could not serve malloc(16) without the OS (errno %d)", errno);
  errno = 0;
  uint8_t *big = refgc_malloc(200000);
  if (big) RFAIL(res, "malloc(200000) succeeded while the OS refuses");
  else if (errno != ENOMEM) RFAIL(res, "malloc(200000): errno %d, not ENOMEM", errno);
  refgc_test_os_fail_after(-1);
  refgc_free(big);
  refgc_free(p);
  return NULL;
}

static void *newthread_parked(void *arg) {
  newthread_t *nt = arg;
  newthread_body(nt);
  signal_done(&nt->done);
  park();
  return NULL;
}

static void *fail_and_exit(void *arg) {
  int *ok = arg;
  refgc_test_os_fail_after(0);
  errno = 0;
  void *p = refgc_malloc(64);
  *ok = p == NULL && errno == ENOMEM;
  refgc_test_os_fail_after(-1);
  if (p) refgc_free(p);
  return NULL; /* exits with no heap: nothing to abandon */
}

TEST(new_thread_heap_creation_fails) {
  refgc_set_error_handler(count_error, NULL);
  parked_t pk = {0};
  absorb_abandoned(&pk);
  /* fail_after(0): the heap struct itself is refused */
  static newthread_t a, b;
  memset(&a, 0, sizeof a);
  a.allow = 0;
  a.expect_heap = 0;
  pthread_t t;
  ASSERT_EQ(pthread_create(&t, NULL, newthread_parked, &a), 0);
  parked_add(&pk, t);
  wait_done(&a.done);
  if (a.res.failed) {
    release_parked(&pk);
    TEST_FAIL("%s", a.res.msg);
  }
  /* fail_after(1): the heap is made, its first segment is refused */
  memset(&b, 0, sizeof b);
  b.allow = 1;
  b.expect_heap = 1;
  ASSERT_EQ(pthread_create(&t, NULL, newthread_parked, &b), 0);
  parked_add(&pk, t);
  wait_done(&b.done);
  if (b.res.failed) {
    release_parked(&pk);
    TEST_FAIL("%s", b.res.msg);
  }
  /* a thread that fails to make its heap and exits leaves nothing behind */
  size_t abandoned = stats_now().heaps_abandoned, heaps = stats_now().heaps;
  int ok = 0;
  ASSERT_EQ(pthread_create(&t, NULL, fail_and_exit, &ok), 0);
  pthread_join(t, NULL);
  ASSERT(ok);
  ASSERT_EQ(stats_now().heaps_abandoned, abandoned);
  ASSERT_EQ(stats_now().heaps, heaps);
  release_parked(&pk);
  /* after the parked threads exit, their heaps are abandoned and the next thread adopts one:
   * with the OS refusing everything it still gets small blocks from the adopted segments,
   * while a large block (a mapping of its own) is refused */
  ASSERT_GT(stats_now().heaps_abandoned, 0);
  static adopt_t c;
  memset(&c, 0, sizeof c);
  ASSERT_EQ(pthread_create(&t, NULL, adopt_under_refusal, &c), 0);
  pthread_join(t, NULL);
  if (c.res.failed) TEST_FAIL("%s", c.res.msg);
  ASSERT_EQ(stats_now().heaps, heaps);
  ASSERT_EQ(refgc_heap_check(), 0);
  refgc_set_error_handler(NULL, NULL);
}

/* The main thread's heap has segments cached from earlier cases and rounds: with n new OS
 * requests allowed it runs out only after using every cached slot and n new mappings. */
TEST(warm_heap_needs_new_segments) {
  refgc_set_error_handler(count_error, NULL);
  unsigned long errs = atomic_load(&heap_errors);
  const size_t cap = 32 * MiB;
  size_t prev_bytes = 0;
  long n;
  for (n = 0; n < 200; n++) {
    refgc_heap_collect();
    refgc_heap_stats_t base = stats_now();
    blocks_t b = {0};
    size_t bytes = 0;
    int failed = 0;
    refgc_test_os_fail_after(n);
    for (long i = 0; bytes < cap; i++) {
      size_t size = i % 128 == 127 ? 300000 : i % 2 ? 70000 : 1000;
      errno = 0;
      uint8_t *p = i % 7 == 3 ? refgc_calloc(1, size) : refgc_malloc(size);
      if (!p) {
        int err = errno;
        refgc_test_os_fail_after(-1);
        if (err != ENOMEM) TEST_FAIL("fail_after(%ld): NULL with errno %d", n, err);
        failed = 1;
        break;
      }
      blocks_push(&b, p, size);
      bytes += size;
    }
    refgc_test_os_fail_after(-1);
    ASSERT_EQ(refgc_heap_check(), 0);
    long changed = blocks_verify(&b);
    if (changed >= 0) TEST_FAIL("fail_after(%ld): block %ld changed", n, changed);
    blocks_free_all(&b);
    free(b.v);
    result_t res = {0};
    check_baseline(&res, "warm heap, everything freed", &base);
    if (res.failed) TEST_FAIL("fail_after(%ld): %s", n, res.msg);
    if (!failed) break;
    /* more requests allowed, at least as much allocated before the failure */
    ASSERT_GE(bytes, prev_bytes);
    prev_bytes = bytes;
  }
  ASSERT_LT(n, 200);
  ASSERT_GT(n, 0); /* 32 MiB needs new mappings: the large blocks at least */
  ASSERT_EQ(atomic_load(&heap_errors), errs);
  printf("# warm_heap_needs_new_segments: 32 MiB ran through with %ld OS requests allowed\n", n);
  refgc_set_error_handler(NULL, NULL);
}

/* While the OS refuses, blocks that need no new memory still come: the cache keeps working,
 * and what needs the OS fails cleanly, then works again. */
TEST(cache_serves_while_os_refuses) {
  refgc_set_error_handler(count_error, NULL);
  refgc_heap_stats_t base = stats_now();
  /* make sure the classes used below have a current page with free blocks */
  void *warm[4] = {refgc_malloc(16), refgc_malloc(700), refgc_malloc(20000), refgc_malloc(3000)};
  for (int i = 0; i < 4; i++) ASSERT(warm[i] != NULL);
  refgc_test_os_fail_after(0);
  void *a = refgc_malloc(16), *b = refgc_malloc(700), *c = refgc_calloc(1, 20000);
  void *d = refgc_aligned_alloc(1024, 3000); /* 3072-byte class: 1024-aligned */
  errno = 0;
  void *big = refgc_malloc(1 << 20);
  int big_errno = errno;
  errno = 0;
  void *grown = refgc_realloc(a, 1 << 20);
  int grown_errno = errno;
  refgc_test_os_fail_after(-1);
  ASSERT(a && b && c && d);
  ASSERT(big == NULL);
  ASSERT_EQ(big_errno, ENOMEM);
  ASSERT(grown == NULL);
  ASSERT_EQ(grown_errno, ENOMEM);
  ASSERT(refgc_owns(a));
  ASSERT_EQ((uintptr_t)d % 1024, 0);
  big = refgc_malloc(1 << 20);
  ASSERT(big != NULL);
  memset(big, 1, 1 << 20);
  refgc_free(big);
  refgc_free(a);
  refgc_free(b);
  refgc_free(c);
  refgc_free(d);
  for (int i = 0; i < 4; i++) refgc_free(warm[i]);
  ASSERT_EQ(refgc_heap_check(), 0);
  result_t res = {0};
  check_baseline(&res, "cache case", &base);
  if (res.failed) TEST_FAIL("%s", res.msg);
  refgc_set_error_handler(NULL, NULL);
}

/* Several threads run out at the same time; half of each thread's blocks are freed by the main
 * thread afterwards (remote frees into abandoned heaps, collected by refgc_heap_collect). */
enum { NTHREADS = 4 };

typedef struct racer_s {
  blocks_t b;
  result_t res;
  int hit_null;
} racer_t;

static pthread_barrier_t race_barrier;

static void *racer(void *arg) {
  racer_t *rc = arg;
  pthread_barrier_wait(&race_barrier);
  size_t bytes = 0;
  for (long i = 0; bytes < 24 * MiB; i++) {
    size_t size = i % 64 == 63 ? 200000 : (size_t)(16 + (i * 37) % 9000);
    errno = 0;
    uint8_t *p = refgc_malloc(size);
    if (!p) {
      if (errno != ENOMEM) RFAIL(&rc->res, "NULL with errno %d", errno);
      rc->hit_null = 1;
      break;
    }
    blocks_push(&rc->b, p, size);
    bytes += size;
  }
  pthread_barrier_wait(&race_barrier); /* everyone has failed (or finished) */
  if (blocks_verify(&rc->b) >= 0) RFAIL(&rc->res, "a block changed");
  /* free every other block here, leave the rest to the main thread */
  size_t kept = 0;
  for (size_t i = 0; i < rc->b.n; i++) {
    if (i % 2)
      refgc_free(rc->b.v[i].p);
    else
      rc->b.v[kept++] = rc->b.v[i];
  }
  rc->b.n = kept;
  return NULL;
}

TEST(threads_run_out_together) {
  refgc_set_error_handler(count_error, NULL);
  unsigned long errs = atomic_load(&heap_errors);
  refgc_heap_collect();
  refgc_heap_stats_t base = stats_now();
  int nulls = 0;
  for (long n = 0; n < 24; n += 3) {
    static racer_t rc[NTHREADS];
    pthread_t t[NTHREADS];
    memset(rc, 0, sizeof rc);
    pthread_barrier_init(&race_barrier, NULL, NTHREADS);
    refgc_test_os_fail_after(n);
    for (int i = 0; i < NTHREADS; i++) ASSERT_EQ(pthread_create(&t[i], NULL, racer, &rc[i]), 0);
    for (int i = 0; i < NTHREADS; i++) pthread_join(t[i], NULL);
    refgc_test_os_fail_after(-1);
    pthread_barrier_destroy(&race_barrier);
    for (int i = 0; i < NTHREADS; i++) {
      if (rc[i].res.failed) TEST_FAIL("fail_after(%ld), thread %d: %s", n, i, rc[i].res.msg);
      nulls += rc[i].hit_null;
      if (blocks_verify(&rc[i].b) >= 0) TEST_FAIL("fail_after(%ld): thread %d's block changed", n, i);
      blocks_free_all(&rc[i].b); /* remote frees: the owners have exited */
      free(rc[i].b.v);
    }
    refgc_heap_collect(); /* takes the remote frees of the abandoned heaps */
    ASSERT_EQ(refgc_heap_check(), 0);
    result_t res = {0};
    check_baseline(&res, "threads out of memory, everything freed", &base);
    if (res.failed) TEST_FAIL("fail_after(%ld): %s", n, res.msg);
  }
  ASSERT_GT(nulls, 0);
  ASSERT_EQ(atomic_load(&heap_errors), errs);
  refgc_set_error_handler(NULL, NULL);
}

/* volatile: keep the compiler from folding (and warning about) the impossible sizes */
static volatile size_t vmax = SIZE_MAX;
static volatile size_t vpd = PTRDIFF_MAX;

TEST(impossible_sizes) {
  refgc_heap_stats_t base = stats_now();
  struct {
    const char *what;
    void *p;
    int err;
  } r[8];
  int k = 0;
#define TRY(expr)                     \
  do {                                \
    errno = 0;                        \
    r[k].what = #expr;                \
    r[k].p = (expr);                  \
    r[k].err = errno;                 \
    k++;                              \
  } while (0)
  TRY(refgc_calloc(vmax / 2 + 1, 2));            /* count * size overflows */
  TRY(refgc_calloc(vpd / 2 + 1, 2));             /* PTRDIFF_MAX + 1, no overflow */
  TRY(refgc_malloc(vpd + 1));
  TRY(refgc_malloc(vpd));                        /* no room for the large block's header */
  TRY(refgc_aligned_alloc(2 << 20, vpd - 100));
  TRY(refgc_malloc((size_t)1 << 47));            /* more than the address space: the OS says no */
  TRY(refgc_aligned_alloc(4096, (size_t)1 << 47));
#undef TRY
  for (int i = 0; i < k; i++) {
    if (r[i].p) TEST_FAIL("%s returned %p", r[i].what, r[i].p);
    if (r[i].err != ENOMEM) TEST_FAIL("%s: errno %d, not ENOMEM", r[i].what, r[i].err);
  }
  /* nothing was mapped, nothing counted (a heap struct may have been made: metadata) */
  refgc_heap_stats_t s = stats_now();
  ASSERT_EQ(s.large_count, base.large_count);
  ASSERT_EQ(s.reserved - s.metadata, base.reserved - base.metadata);
  /* a failed realloc to an impossible size keeps the block */
  uint8_t *p = refgc_malloc(100);
  ASSERT(p != NULL);
  memset(p, 0x77, 100);
  errno = 0;
  ASSERT(refgc_realloc(p, vpd + 1) == NULL);
  ASSERT_EQ(errno, ENOMEM);
  errno = 0;
  ASSERT(refgc_realloc(p, (size_t)1 << 47) == NULL);
  ASSERT_EQ(errno, ENOMEM);
  ASSERT(refgc_owns(p));
  ASSERT(all_bytes(p, 100, 0x77));
  refgc_free(p);
  s = stats_now();
  ASSERT_EQ(s.large_count, base.large_count);
  ASSERT_EQ(s.in_use, base.in_use);
  ASSERT_EQ(refgc_heap_check(), 0);
}
