/* heap_bench.c — heap benchmarks for refgc and peer allocators.
 *
 * The same source is compiled once per allocator; a thin macro layer picks the allocator:
 *
 *   -DBENCH_REFGC     refgc_malloc / refgc_free, give back = refgc_heap_collect()
 *                     (link build/release/librefgc.a -lpthread, -Iinclude)
 *   -DBENCH_MIMALLOC  malloc / free overridden by -lmimalloc, give back = mi_collect(true)
 *   -DBENCH_JEMALLOC  malloc / free overridden by -ljemalloc,
 *                     give back = mallctl("arena.<MALLCTL_ARENAS_ALL>.purge")
 *   -DBENCH_TCMALLOC  malloc / free overridden by -ltcmalloc_minimal,
 *                     give back = MallocExtension_ReleaseFreeMemory()
 *   (none)            glibc malloc / free, give back = malloc_trim(0)
 *
 * Subcommands (one machine-readable "RESULT ..." line on stdout per run):
 *
 *   churn [STEPS [LIVE]]             STEPS (20M) free+malloc pairs of 8..512 B, LIVE (10,000)
 *                                    blocks live.
 *   prodcons [BLOCKS [P [C]]]        P (2) producer threads allocate BLOCKS (10M) blocks of
 *                                    16..512 B in total and hand them in batches of 64 to C (2)
 *                                    consumer threads, which free them.
 *   frag KEEP [BYTES]                allocate about BYTES (1 GiB) in blocks of 16..256 B, free
 *                                    all but about 1 in KEEP chosen at random, give back; report
 *                                    resident memory before the frees, after them and after
 *                                    giving back, and the floor: the 4 KiB pages that the
 *                                    surviving blocks lie on.
 *
 * Every run also reports its peak RSS: peak_rss_mb is VmHWM from /proc/self/status (the peak of
 * this process image); ru_maxrss_mb is getrusage's ru_maxrss, which Linux carries across
 * execve and so may show the launching process's size instead.
 *
 * Build: cc -O2 -std=c11 -Wall -Wextra -Wshadow -Wstrict-prototypes heap_bench.c -lpthread
 *        [-DBENCH_... and the allocator's library]
 */
#define _GNU_SOURCE 1

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* ---------------------------------------------------------------------------------------------
 * The allocator layer
 * ------------------------------------------------------------------------------------------ */

#define BENCH_STR_(x) #x
#define BENCH_STRINGIFY(x) BENCH_STR_(x)

#if defined(BENCH_REFGC)
#include "refgc.h"
#define ALLOC_NAME "refgc"
#define BENCH_MALLOC(n) refgc_malloc(n)
#define BENCH_FREE(p) refgc_free(p)
static void bench_give_back(void) { refgc_heap_collect(); }
static int bench_owns(void *p) { return refgc_owns(p); }

#elif defined(BENCH_MIMALLOC)
#include <mimalloc.h>
#define ALLOC_NAME "mimalloc"
#define BENCH_MALLOC(n) malloc(n)
#define BENCH_FREE(p) free(p)
static void bench_give_back(void) { mi_collect(true); }
static int bench_owns(void *p) { return mi_is_in_heap_region(p) ? 1 : 0; }

#elif defined(BENCH_JEMALLOC)
#include <jemalloc/jemalloc.h>
#define ALLOC_NAME "jemalloc"
#define BENCH_MALLOC(n) malloc(n)
#define BENCH_FREE(p) free(p)
static void bench_give_back(void) {
  int rc = mallctl("arena." BENCH_STRINGIFY(MALLCTL_ARENAS_ALL) ".purge", NULL, NULL, NULL, 0);
  if (rc != 0) fprintf(stderr, "heap_bench: jemalloc purge failed: %s\n", strerror(rc));
}
/* jemalloc owns a block if this thread's allocation counter moved when it was made; the
 * caller passes a block made right after bench_owns_prepare(). */
static uint64_t bench_je_before;
static void bench_owns_prepare(void) {
  size_t sz = sizeof bench_je_before;
  if (mallctl("thread.allocated", &bench_je_before, &sz, NULL, 0) != 0) bench_je_before = 0;
}
#define BENCH_HAVE_OWNS_PREPARE 1
static int bench_owns(void *p) {
  uint64_t after = 0;
  size_t sz = sizeof after;
  (void)p;
  if (mallctl("thread.allocated", &after, &sz, NULL, 0) != 0) return -1; /* cannot tell */
  return after > bench_je_before ? 1 : 0;
}

#elif defined(BENCH_TCMALLOC)
#include <gperftools/malloc_extension_c.h>
#define ALLOC_NAME "tcmalloc"
#define BENCH_MALLOC(n) malloc(n)
#define BENCH_FREE(p) free(p)
static void bench_give_back(void) { MallocExtension_ReleaseFreeMemory(); }
static int bench_owns(void *p) {
  return MallocExtension_GetOwnership(p) == MallocExtension_kOwned ? 1 : 0;
}

#else
#include <malloc.h>
#define ALLOC_NAME "glibc"
#define BENCH_MALLOC(n) malloc(n)
#define BENCH_FREE(p) free(p)
static void bench_give_back(void) { (void)malloc_trim(0); }
static int bench_owns(void *p) {
  (void)p;
  return -1; /* glibc has no ownership query; it is the default anyway */
}
#endif

#ifndef BENCH_HAVE_OWNS_PREPARE
static void bench_owns_prepare(void) {}
#endif

#define BENCH_PROG "heap_bench"
#define BENCH_NAME ALLOC_NAME
#include "bench_common.h"

/* ---------------------------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------------------------ */

/* splitmix64: fast, good enough, fixed seeds so every allocator sees the same sequence. */
typedef struct {
  uint64_t s;
} rng_t;

static inline uint64_t rng_next(rng_t *r) {
  uint64_t z = (r->s += UINT64_C(0x9E3779B97F4A7C15));
  z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
  z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
  return z ^ (z >> 31);
}

/* Uniform in [0, n) for n < 2^32 without a division. */
static inline uint32_t rng_below(rng_t *r, uint32_t n) {
  return (uint32_t)(((rng_next(r) >> 32) * (uint64_t)n) >> 32);
}

static inline size_t rng_size(rng_t *r, size_t lo, size_t hi) {
  return lo + rng_below(r, (uint32_t)(hi - lo + 1));
}

/* Resident bytes of one mmap'd range (to take the benchmark's own arrays out of RSS). */
static double mapped_resident(void *base, size_t len) {
  long page = sysconf(_SC_PAGESIZE);
  size_t pages = (len + (size_t)page - 1) / (size_t)page;
  unsigned char *vec = mmap(NULL, pages, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                            -1, 0);
  size_t n = 0;
  if (vec == MAP_FAILED) return 0.0;
  if (mincore(base, len, vec) == 0) {
    for (size_t i = 0; i < pages; i++) n += vec[i] & 1u;
  }
  /* the vector itself is resident now too: count it as ours */
  n += (pages + (size_t)page - 1) / (size_t)page;
  munmap(vec, pages);
  return (double)n * (double)page;
}

/* Bytes marked MADV_FREE that the kernel has not taken back yet: they still count in RSS until
 * there is memory pressure (mimalloc, and jemalloc's muzzy pages, give memory back this way). */
static double lazyfree_bytes(void) {
  FILE *f = fopen("/proc/self/smaps_rollup", "r");
  char line[256];
  unsigned long kb = 0;
  if (f == NULL) return -1.0;
  while (fgets(line, sizeof line, f) != NULL) {
    if (sscanf(line, "LazyFree: %lu kB", &kb) == 1) break;
  }
  fclose(f);
  return (double)kb * 1024.0;
}

/* Abort if the allocator under test does not own the blocks malloc hands out (a peer library
 * that failed to override malloc would otherwise silently benchmark glibc). */
static void check_owner(void) {
  bench_owns_prepare();
  void *p = xmalloc(64);
  memset(p, 0, 64);
  int owns = bench_owns(p);
  BENCH_FREE(p);
  if (owns == 0) die("the allocator under test does not own malloc's blocks");
}

/* ---------------------------------------------------------------------------------------------
 * churn
 * ------------------------------------------------------------------------------------------ */

static int bench_churn(long steps, long live) {
  void **slot = xmmap((size_t)live * sizeof *slot);
  rng_t r = {UINT64_C(0x5EED0001)};
  unsigned sink = 0;

  double c0 = cpu_sec();
  double t0 = now_sec();
  for (long i = 0; i < live; i++) {
    size_t n = rng_size(&r, 8, 512);
    unsigned char *p = xmalloc(n);
    p[0] = (unsigned char)i;
    p[n - 1] = (unsigned char)n;
    slot[i] = p;
  }
  for (long i = 0; i < steps; i++) {
    uint32_t k = rng_below(&r, (uint32_t)live);
    unsigned char *old = slot[k];
    sink += old[0];
    BENCH_FREE(old);
    size_t n = rng_size(&r, 8, 512);
    unsigned char *p = xmalloc(n);
    p[0] = (unsigned char)i;
    p[n - 1] = (unsigned char)n;
    slot[k] = p;
  }
  double t1 = now_sec();
  double c1 = cpu_sec();
  double rss_end = rss_bytes() - mapped_resident(slot, (size_t)live * sizeof *slot);

  for (long i = 0; i < live; i++) BENCH_FREE(slot[i]);
  munmap(slot, (size_t)live * sizeof *slot);

  printf("RESULT alloc=%s bench=churn steps=%ld live=%ld seconds=%.4f cpu_seconds=%.4f "
         "rss_end_mb=%.1f "
         "peak_rss_mb=%.1f ru_maxrss_mb=%.1f sink=%u\n",
         ALLOC_NAME, steps, live, t1 - t0, c1 - c0, mb(rss_end), peak_rss_mb(), ru_maxrss_mb(),
         sink & 0xffu);
  return 0;
}

/* ---------------------------------------------------------------------------------------------
 * prodcons
 * ------------------------------------------------------------------------------------------ */

#define BATCH 64
#define QUEUE_SLOTS 64
/* Hysteresis, so that threads do not sleep and wake once per batch (a futex round trip costs
 * more than the 64 malloc/free calls in a batch): a sleeping consumer is woken only once
 * WAKE_CONSUMER_AT batches wait, a producer blocked on a full ring only once it is half empty. */
#define WAKE_CONSUMER_AT 16
#define WAKE_PRODUCERS_AT (QUEUE_SLOTS / 2)

typedef struct {
  int n;
  void *p[BATCH];
} batch_t;

/* One bounded ring of batches per consumer (mutex + condition variables); producers deal their
 * batches out round-robin. */
typedef struct {
  pthread_mutex_t mu;
  pthread_cond_t not_empty;
  pthread_cond_t not_full;
  unsigned head, tail; /* head: next to pop; tail: next to push; count = tail - head */
  bool done;
  batch_t slot[QUEUE_SLOTS];
} queue_t;

typedef struct {
  queue_t *queues;
  int nqueues;
  int id;
  long blocks;           /* producer: blocks to make */
  unsigned long checksum; /* consumer: sum of first bytes */
  long freed;             /* consumer: blocks freed */
} worker_t;

static void queue_init(queue_t *q) {
  pthread_mutex_init(&q->mu, NULL);
  pthread_cond_init(&q->not_empty, NULL);
  pthread_cond_init(&q->not_full, NULL);
  q->head = q->tail = 0;
  q->done = false;
}

static void queue_destroy(queue_t *q) {
  pthread_mutex_destroy(&q->mu);
  pthread_cond_destroy(&q->not_empty);
  pthread_cond_destroy(&q->not_full);
}

static void queue_push(queue_t *q, const batch_t *b) {
  pthread_mutex_lock(&q->mu);
  while (q->tail - q->head == QUEUE_SLOTS) pthread_cond_wait(&q->not_full, &q->mu);
  batch_t *s = &q->slot[q->tail % QUEUE_SLOTS];
  s->n = b->n;
  memcpy(s->p, b->p, (size_t)b->n * sizeof b->p[0]);
  q->tail++;
  if (q->tail - q->head >= WAKE_CONSUMER_AT) pthread_cond_signal(&q->not_empty);
  pthread_mutex_unlock(&q->mu);
}

/* Returns false when the queue is drained and closed. */
static bool queue_pop(queue_t *q, batch_t *b) {
  pthread_mutex_lock(&q->mu);
  while (q->tail == q->head && !q->done) pthread_cond_wait(&q->not_empty, &q->mu);
  if (q->tail == q->head) {
    pthread_mutex_unlock(&q->mu);
    return false;
  }
  const batch_t *s = &q->slot[q->head % QUEUE_SLOTS];
  b->n = s->n;
  memcpy(b->p, s->p, (size_t)s->n * sizeof s->p[0]);
  q->head++;
  if (q->tail - q->head == WAKE_PRODUCERS_AT) pthread_cond_broadcast(&q->not_full);
  pthread_mutex_unlock(&q->mu);
  return true;
}

static void queue_close(queue_t *q) {
  pthread_mutex_lock(&q->mu);
  q->done = true;
  pthread_cond_broadcast(&q->not_empty);
  pthread_mutex_unlock(&q->mu);
}

static void *producer_main(void *arg) {
  worker_t *w = arg;
  rng_t r = {UINT64_C(0xA11C0000) + (uint64_t)w->id};
  batch_t b;
  int next_q = w->id % w->nqueues;
  b.n = 0;
  for (long i = 0; i < w->blocks; i++) {
    size_t n = rng_size(&r, 16, 512);
    unsigned char *p = xmalloc(n);
    p[0] = (unsigned char)i;
    p[n - 1] = (unsigned char)n;
    b.p[b.n++] = p;
    if (b.n == BATCH) {
      queue_push(&w->queues[next_q], &b);
      next_q = (next_q + 1) % w->nqueues;
      b.n = 0;
    }
  }
  if (b.n > 0) queue_push(&w->queues[next_q], &b);
  return NULL;
}

static void *consumer_main(void *arg) {
  worker_t *w = arg;
  queue_t *q = &w->queues[w->id];
  batch_t b;
  while (queue_pop(q, &b)) {
    for (int i = 0; i < b.n; i++) {
      unsigned char *p = b.p[i];
      w->checksum += p[0];
      BENCH_FREE(p);
    }
    w->freed += b.n;
  }
  return NULL;
}

static int bench_prodcons(long blocks, int nprod, int ncons) {
  queue_t *queues = xmmap((size_t)ncons * sizeof *queues);
  worker_t *prod = xmmap((size_t)nprod * sizeof *prod);
  worker_t *cons = xmmap((size_t)ncons * sizeof *cons);
  pthread_t *pt = xmmap((size_t)(nprod + ncons) * sizeof *pt);

  for (int i = 0; i < ncons; i++) queue_init(&queues[i]);

  double c0 = cpu_sec();
  double t0 = now_sec();
  for (int i = 0; i < ncons; i++) {
    cons[i] = (worker_t){.queues = queues, .nqueues = ncons, .id = i};
    if (pthread_create(&pt[nprod + i], NULL, consumer_main, &cons[i]) != 0)
      die("pthread_create failed");
  }
  for (int i = 0; i < nprod; i++) {
    long share = blocks / nprod + (i < blocks % nprod ? 1 : 0);
    prod[i] = (worker_t){.queues = queues, .nqueues = ncons, .id = i, .blocks = share};
    if (pthread_create(&pt[i], NULL, producer_main, &prod[i]) != 0)
      die("pthread_create failed");
  }
  for (int i = 0; i < nprod; i++) pthread_join(pt[i], NULL);
  for (int i = 0; i < ncons; i++) queue_close(&queues[i]);
  for (int i = 0; i < ncons; i++) pthread_join(pt[nprod + i], NULL);
  double t1 = now_sec();
  double c1 = cpu_sec();

  long freed = 0;
  unsigned long sum = 0;
  for (int i = 0; i < ncons; i++) {
    freed += cons[i].freed;
    sum += cons[i].checksum;
    queue_destroy(&queues[i]);
  }
  if (freed != blocks) die("prodcons: not every block was freed");
  double rss_end = rss_bytes();

  printf("RESULT alloc=%s bench=prodcons blocks=%ld producers=%d consumers=%d seconds=%.4f "
         "cpu_seconds=%.4f rss_end_mb=%.1f peak_rss_mb=%.1f ru_maxrss_mb=%.1f sink=%lu\n",
         ALLOC_NAME, blocks, nprod, ncons, t1 - t0, c1 - c0, mb(rss_end), peak_rss_mb(),
         ru_maxrss_mb(), sum & 0xfful);
  return 0;
}

/* ---------------------------------------------------------------------------------------------
 * frag
 * ------------------------------------------------------------------------------------------ */

#define FRAG_SEED UINT64_C(0xF4A60000)

static int cmp_uptr(const void *a, const void *b) {
  uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
  return x < y ? -1 : x > y;
}

/* The floor for RSS after give-back without moving blocks: the bytes of the distinct 4 KiB
 * pages that the survivors' requested bytes lie on. Block sizes are replayed from the seed. */
static double live_pages_bytes(void **kept, const size_t *kept_idx, size_t nkept) {
  const uintptr_t page = 4096;
  size_t len = (2 * nkept + 1) * sizeof(uintptr_t);
  uintptr_t *pages = xmmap(len);
  rng_t r = {FRAG_SEED};
  size_t np = 0, k = 0;
  for (size_t i = 0; k < nkept; i++) {
    size_t sz = rng_size(&r, 16, 256);
    if (i != kept_idx[k]) continue;
    uintptr_t a = (uintptr_t)kept[k] / page, b = ((uintptr_t)kept[k] + sz - 1) / page;
    pages[np++] = a;
    if (b != a) pages[np++] = b; /* at most 256 B: spans at most two pages */
    k++;
  }
  qsort(pages, np, sizeof pages[0], cmp_uptr);
  size_t distinct = 0;
  for (size_t i = 0; i < np; i++)
    if (i == 0 || pages[i] != pages[i - 1]) distinct++;
  munmap(pages, len);
  return (double)distinct * (double)page;
}

static int bench_frag(long keep, long long total_bytes) {
  /* Blocks average 136 B; size the pointer array for the worst case (all 16 B). */
  size_t cap = (size_t)(total_bytes / 16) + 1;
  size_t arr_len = cap * sizeof(void *);
  void **ptrs = xmmap(arr_len);
  rng_t r = {FRAG_SEED};
  double rss_start = rss_bytes();

  double t0 = now_sec();
  size_t n = 0;
  long long bytes = 0;
  while (bytes < total_bytes && n < cap) {
    size_t sz = rng_size(&r, 16, 256);
    unsigned char *p = xmalloc(sz);
    memset(p, (int)(n & 0xff), sz); /* make every byte of it real */
    ptrs[n++] = p;
    bytes += (long long)sz;
  }
  double rss_before = rss_bytes() - mapped_resident(ptrs, arr_len);

  /* Free all but about 1 in KEEP, chosen at random; keep the survivors in a small array so
   * the big one can be unmapped before measuring. */
  size_t kept_cap = n / (size_t)keep * 2 + 1024;
  size_t kept_len = kept_cap * sizeof(void *);
  void **kept = xmmap(kept_len);
  size_t idx_len = kept_cap * sizeof(size_t);
  size_t *kept_idx = xmmap(idx_len); /* which allocation each survivor was */
  size_t nkept = 0;
  for (size_t i = 0; i < n; i++) {
    if (rng_below(&r, (uint32_t)keep) == 0 && nkept < kept_cap) {
      kept_idx[nkept] = i;
      kept[nkept++] = ptrs[i];
    } else {
      BENCH_FREE(ptrs[i]);
    }
  }
  munmap(ptrs, arr_len);
  double rss_after_free =
      rss_bytes() - mapped_resident(kept, kept_len) - mapped_resident(kept_idx, idx_len);

  double tg0 = now_sec();
  bench_give_back();
  double tg1 = now_sec();
  double rss_after_gb =
      rss_bytes() - mapped_resident(kept, kept_len) - mapped_resident(kept_idx, idx_len);
  double lazy_after_gb = lazyfree_bytes();
  double t1 = now_sec();

  /* the survivors must still be intact */
  unsigned long bad = 0;
  for (size_t i = 0; i < nkept; i++) {
    unsigned char *p = kept[i];
    if (p[1] != p[0]) bad++;
  }
  if (bad != 0) die("frag: a kept block was overwritten");
  double peak = peak_rss_mb();
  double peak_ru = ru_maxrss_mb();
  double floor_bytes = live_pages_bytes(kept, kept_idx, nkept);
  for (size_t i = 0; i < nkept; i++) BENCH_FREE(kept[i]);
  munmap(kept, kept_len);
  munmap(kept_idx, idx_len);

  printf("RESULT alloc=%s bench=frag keep=%ld blocks=%zu kept=%zu bytes_mb=%.1f seconds=%.4f "
         "giveback_seconds=%.4f rss_start_mb=%.1f rss_before_free_mb=%.1f "
         "rss_after_free_mb=%.1f rss_after_giveback_mb=%.1f lazyfree_after_giveback_mb=%.1f "
         "live_pages_mb=%.1f peak_rss_mb=%.1f ru_maxrss_mb=%.1f\n",
         ALLOC_NAME, keep, n, nkept, mb((double)bytes), t1 - t0, tg1 - tg0, mb(rss_start),
         mb(rss_before), mb(rss_after_free), mb(rss_after_gb), mb(lazy_after_gb),
         mb(floor_bytes), peak, peak_ru);
  return 0;
}

/* ---------------------------------------------------------------------------------------------
 * main
 * ------------------------------------------------------------------------------------------ */

static void usage(void) {
  fprintf(stderr,
          "usage: heap_bench churn [STEPS [LIVE]]\n"
          "       heap_bench prodcons [BLOCKS [PRODUCERS [CONSUMERS]]]\n"
          "       heap_bench frag KEEP [BYTES]\n"
          "       heap_bench name\n");
  exit(2);
}

int main(int argc, char **argv) {
  if (argc < 2) usage();
  const char *cmd = argv[1];
  if (strcmp(cmd, "name") == 0) {
    printf("%s\n", ALLOC_NAME);
    return 0;
  }
  check_owner();
  if (strcmp(cmd, "churn") == 0) {
    long steps = argc > 2 ? parse_long(argv[2], "STEPS", 1) : 20000000L;
    long live = argc > 3 ? parse_long(argv[3], "LIVE", 1) : 10000L;
    if (live > 0x7fffffffL) usage();
    return bench_churn(steps, live);
  }
  if (strcmp(cmd, "prodcons") == 0) {
    long blocks = argc > 2 ? parse_long(argv[2], "BLOCKS", 1) : 10000000L;
    long p = argc > 3 ? parse_long(argv[3], "PRODUCERS", 1) : 2;
    long c = argc > 4 ? parse_long(argv[4], "CONSUMERS", 1) : 2;
    if (p > 256 || c > 256) usage();
    return bench_prodcons(blocks, (int)p, (int)c);
  }
  if (strcmp(cmd, "frag") == 0) {
    if (argc < 3) usage();
    long keep = parse_long(argv[2], "KEEP", 1);
    long long bytes = argc > 3 ? parse_long(argv[3], "BYTES", 1) : (1LL << 30);
    if (keep > 0x7fffffffL) usage();
    return bench_frag(keep, bytes);
  }
  usage();
  return 2;
}
