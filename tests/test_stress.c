/* refgc — randomized stress tests against a shadow model.
 *
 * The model is a table of live blocks (pointer, requested size, id, alignment). Every live
 * block holds a pattern unique to it: byte i is a slice of a fixed random buffer at an offset
 * derived from the id, with the first 8 bytes xored with the id itself, so that a block that
 * is overwritten by, swapped with or overlapped by another is seen. The pattern is checked in
 * full before every free and realloc, and for every live block at checkpoints, where the live
 * intervals [p, p + usable) are also sorted and checked for overlaps, the heap check must
 * pass, and the statistics must agree with the model. After `refgc_heap_collect()` the
 * committed figure must equal exactly metadata + large mappings + the OS pages that live
 * blocks overlap (collect gives back everything else).
 *
 * Cases: a mixed workload (~2M operations * scale), a sawtooth (grow to ~200 MB live, free
 * 90 % in random order, collect, regrow), and same-size churn (committed memory and address
 * space stay bounded; empty pages go back to the OS after REFGC_PURGE_DELAY).
 *
 * Every failure message starts with "seed N": replay with --seed=N (and the case name).
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "refgc.h"
#include "test.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)
#define OS_PAGE REFGC_OS_PAGE_SIZE

/* largest block the model asks for (realloc growth is capped here too) */
#define MAX_BLOCK (4 * MiB)

/* ---- errors reported by the heap are printed and counted, never fatal -------------------- */

static unsigned long heap_errors;
static uint64_t cur_seed;

static void count_error(const refgc_error_info_t *info, void *arg) {
  (void)arg;
  heap_errors++;
  fprintf(stderr, "  refgc error (seed %" PRIu64 "): %s\n", cur_seed, info->message);
}

/* ---- patterns ---------------------------------------------------------------------------- */

#define PAT_OFFSETS ((size_t)1 << 22)
static uint8_t *pat_buf; /* PAT_OFFSETS + MAX_BLOCK random bytes, from libc malloc */
static const uint8_t zeros[64 * 1024];

static void pattern_init(void) {
  if (pat_buf) return;
  size_t n = PAT_OFFSETS + MAX_BLOCK;
  pat_buf = malloc(n);
  if (!pat_buf) TEST_FAIL("out of libc memory for the patterns");
  test_rng_t r = {0x5EED5EED1234ull};
  for (size_t i = 0; i < n; i += 8) {
    uint64_t v = test_rand(&r);
    memcpy(pat_buf + i, &v, 8);
  }
}

static uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static const uint8_t *pat_src(uint64_t id) { return pat_buf + (mix64(id) & (PAT_OFFSETS - 1)); }

static uint8_t pat_byte(uint64_t id, size_t i) {
  uint8_t b = pat_src(id)[i];
  if (i < 8) b ^= (uint8_t)(id >> (8 * i));
  return b;
}

/* Write the pattern of block `id` to bytes [from, to) of `p`. */
static void pat_fill(uint8_t *p, uint64_t id, size_t from, size_t to) {
  if (from >= to) return;
  memcpy(p + from, pat_src(id) + from, to - from);
  for (size_t i = from; i < to && i < 8; i++) p[i] = pat_byte(id, i);
}

/* First byte in [from, to) of `p` that differs from the pattern of `id`, or `to`. */
static size_t pat_mismatch(const uint8_t *p, uint64_t id, size_t from, size_t to) {
  size_t i = from;
  for (; i < to && i < 8; i++)
    if (p[i] != pat_byte(id, i)) return i;
  if (i >= to) return to;
  const uint8_t *src = pat_src(id);
  if (memcmp(p + i, src + i, to - i) == 0) return to;
  /* find it: chunks first, so a long block does not cost a byte loop */
  size_t chunk = 4096;
  while (i < to) {
    size_t n = to - i < chunk ? to - i : chunk;
    if (memcmp(p + i, src + i, n) != 0) break;
    i += n;
  }
  for (; i < to; i++)
    if (p[i] != src[i]) return i;
  return to;
}

static int all_zero(const uint8_t *p, size_t n) {
  while (n) {
    size_t k = n < sizeof zeros ? n : sizeof zeros;
    if (memcmp(p, zeros, k) != 0) return 0;
    p += k;
    n -= k;
  }
  return 1;
}

/* ---- the model --------------------------------------------------------------------------- */

typedef struct blk_s {
  uint8_t *p;
  size_t size;  /* requested */
  size_t align; /* asked for (16 unless aligned_alloc) */
  uint64_t id;
} blk_t;

typedef struct model_s {
  blk_t *v;
  size_t n, cap;
  size_t live_bytes; /* requested bytes of live blocks */
  uint64_t next_id;
  uint64_t seed;
  uint64_t op;
  const char *phase;
  test_rng_t rng;
  refgc_heap_stats_t base; /* figures before the case started */
  size_t committed_base;   /* committed - metadata - large after a collect, before the case */
  int debug;               /* REFGC_DEBUG=1: usable == requested, no class checks */
  unsigned large_weight;   /* in 10000 allocations, how many are 128 KiB .. 4 MiB */
  unsigned long errors_base;
  /* counters for the report */
  uint64_t n_malloc, n_calloc, n_realloc, n_aligned, n_free, n_large, n_collect, n_check;
  /* checkpoint scratch */
  struct ival_s *iv;
  size_t iv_cap;
} model_t;

typedef struct ival_s {
  uintptr_t start, end;
  size_t idx;
  int large;
} ival_t;

#define MFAIL(m, fmt, ...)                                                                  \
  TEST_FAIL("seed %" PRIu64 " op %" PRIu64 " (%s): " fmt, (m)->seed, (m)->op, (m)->phase, \
            __VA_ARGS__)

static refgc_heap_stats_t stats_now(void) {
  refgc_heap_stats_t s;
  memset(&s, 0, sizeof s);
  s.size = sizeof s;
  refgc_heap_stats(&s);
  return s;
}

static void model_init(model_t *m, uint64_t salt, const char *phase) {
  memset(m, 0, sizeof *m);
  pattern_init();
  m->seed = test_seed();
  cur_seed = m->seed;
  m->rng.s = m->seed ^ salt;
  m->next_id = 1;
  m->phase = phase;
  m->large_weight = 15;
  m->debug = refgc_debug_mode();
  refgc_set_error_handler(count_error, NULL);
  m->errors_base = heap_errors;
  refgc_heap_collect();
  m->base = stats_now();
  m->committed_base = m->base.committed - m->base.metadata - m->base.large_bytes;
}

static void model_done(model_t *m) {
  free(m->v);
  free(m->iv);
  m->v = NULL;
  m->iv = NULL;
  refgc_set_error_handler(NULL, NULL);
}

static void model_push(model_t *m, uint8_t *p, size_t size, size_t align, uint64_t id) {
  if (m->n == m->cap) {
    m->cap = m->cap ? m->cap * 2 : 4096;
    m->v = realloc(m->v, m->cap * sizeof *m->v);
    if (!m->v) TEST_FAIL("out of libc memory for the model");
  }
  m->v[m->n++] = (blk_t){p, size, align, id};
  m->live_bytes += size;
}

static int is_large(const void *p) {
  refgc_segment_t *seg = refgc__segment_of(p);
  return seg && seg->kind == REFGC_SEGMENT_LARGE;
}

/* Bytes the block at `p` really takes (its class; in debug mode the class of size + tail). */
static size_t block_bytes(const void *p) {
  refgc_segment_t *seg = refgc__segment_of(p);
  if (seg->kind == REFGC_SEGMENT_LARGE) return seg->large_map_size;
  return seg->pages[((uintptr_t)p - (uintptr_t)seg) >> seg->page_shift].block_size;
}

static void verify_block(model_t *m, const blk_t *b, const char *when) {
  size_t bad = pat_mismatch(b->p, b->id, 0, b->size);
  if (bad != b->size)
    MFAIL(m, "%s: block id %" PRIu64 " at %p (%zu bytes) byte %zu is 0x%02x, expected 0x%02x",
          when, b->id, (void *)b->p, b->size, bad, b->p[bad], pat_byte(b->id, bad));
}

/* Checks made on every block the heap hands out. */
static void check_new(model_t *m, const char *what, uint8_t *p, size_t size, size_t align) {
  if (!p) MFAIL(m, "%s(%zu, align %zu) returned NULL, errno %d", what, size, align, errno);
  if ((uintptr_t)p % 16) MFAIL(m, "%s(%zu) gave %p, not 16-aligned", what, size, (void *)p);
  if ((uintptr_t)p % align)
    MFAIL(m, "%s(%zu) gave %p, not aligned to %zu", what, size, (void *)p, align);
  size_t u = refgc_usable_size(p);
  if (u < size) MFAIL(m, "%s(%zu) gave %p with usable size %zu", what, size, (void *)p, u);
  if (m->debug && u != size)
    MFAIL(m, "debug mode: %s(%zu) usable size is %zu", what, size, u);
  if (!refgc_owns(p)) MFAIL(m, "%s(%zu) gave %p, which refgc_owns denies", what, size, (void *)p);
  if (size > REFGC_MEDIUM_MAX || align > OS_PAGE) m->n_large++;
  /* the slack up to the usable size is the program's too: touch both ends of it */
  if (u > size) {
    p[size] = 0xEE;
    p[u - 1] = 0xEE;
  }
}

/* ---- operations -------------------------------------------------------------------------- */

/* Sizes: mostly 1–512, some 513–8192, some 8K–128K, rare 128K–4M, plus class edges and 0. */
static size_t rand_size(model_t *m) {
  test_rng_t *r = &m->rng;
  uint64_t x = test_below(r, 10000);
  if (x < 30) return 0;
  if (x < 600) {
    /* a class edge: block size - 1, block size, block size + 1 */
    unsigned c = (unsigned)test_below(r, REFGC_NUM_CLASSES);
    size_t bs = refgc__classes[c].block_size;
    return bs - 1 + (size_t)test_below(r, 3);
  }
  if (x < 8000) return 1 + (size_t)test_below(r, 512);
  if (x < 9700) return 513 + (size_t)test_below(r, 8 * KiB - 512);
  if (x < 10000 - m->large_weight) return 8 * KiB + 1 + (size_t)test_below(r, 128 * KiB - 8 * KiB);
  return 128 * KiB + 1 + (size_t)test_below(r, MAX_BLOCK - 128 * KiB);
}

static void op_malloc(model_t *m) {
  size_t size = rand_size(m);
  uint8_t *p = refgc_malloc(size);
  check_new(m, "refgc_malloc", p, size, 16);
  uint64_t id = m->next_id++;
  pat_fill(p, id, 0, size);
  model_push(m, p, size, 16, id);
  m->n_malloc++;
}

static void op_calloc(model_t *m) {
  size_t total = rand_size(m);
  size_t count = 1 + (size_t)test_below(&m->rng, total < 64 ? total + 1 : 64);
  size_t each = total / count;
  if (test_below(&m->rng, 2)) {
    size_t t = count;
    count = each;
    each = t;
  }
  size_t n = count * each;
  uint8_t *p = refgc_calloc(count, each);
  check_new(m, "refgc_calloc", p, n, 16);
  if (!all_zero(p, n)) {
    size_t i = 0;
    while (p[i] == 0) i++;
    MFAIL(m, "refgc_calloc(%zu, %zu) byte %zu is 0x%02x", count, each, i, p[i]);
  }
  uint64_t id = m->next_id++;
  pat_fill(p, id, 0, n);
  model_push(m, p, n, 16, id);
  m->n_calloc++;
}

static void op_aligned(model_t *m) {
  size_t align = (size_t)16 << test_below(&m->rng, 13); /* 16 .. 64 KiB */
  size_t size = rand_size(m);
  uint8_t *p = refgc_aligned_alloc(align, size);
  check_new(m, "refgc_aligned_alloc", p, size, align);
  uint64_t id = m->next_id++;
  pat_fill(p, id, 0, size);
  model_push(m, p, size, align, id);
  m->n_aligned++;
}

static void op_realloc(model_t *m) {
  blk_t *b = &m->v[test_below(&m->rng, m->n)];
  verify_block(m, b, "before realloc");
  size_t old = b->size, ns;
  uint64_t r = test_below(&m->rng, 100);
  if (r < 35)
    ns = rand_size(m); /* anything */
  else if (r < 65)
    ns = old + 1 + (size_t)test_below(&m->rng, old + 1); /* grow up to 2x */
  else if (r < 90)
    ns = (size_t)test_below(&m->rng, old + 1); /* shrink, sometimes to 0 */
  else {
    size_t d = (size_t)test_below(&m->rng, 33); /* about the same: -16 .. +16 */
    ns = old + d > 16 ? old + d - 16 : 0;
  }
  if (ns > MAX_BLOCK) ns = MAX_BLOCK;
  uint8_t *q = refgc_realloc(b->p, ns);
  check_new(m, "refgc_realloc", q, ns, 16);
  size_t keep = old < ns ? old : ns;
  size_t bad = pat_mismatch(q, b->id, 0, keep);
  if (bad != keep)
    MFAIL(m, "realloc(%p, %zu -> %zu) = %p lost byte %zu of block id %" PRIu64
          " (0x%02x, expected 0x%02x)",
          (void *)b->p, old, ns, (void *)q, bad, b->id, q[bad], pat_byte(b->id, bad));
  pat_fill(q, b->id, keep, ns);
  m->live_bytes = m->live_bytes - old + ns;
  b->p = q;
  b->size = ns;
  b->align = 16;
  m->n_realloc++;
}

static void free_at(model_t *m, size_t i) {
  blk_t b = m->v[i];
  verify_block(m, &b, "before free");
  int large = is_large(b.p);
  refgc_free(b.p);
  if (large && refgc_owns(b.p))
    MFAIL(m, "refgc_owns(%p) still 1 after freeing a large block", (void *)b.p);
  m->v[i] = m->v[--m->n];
  m->live_bytes -= b.size;
  m->n_free++;
}

static void free_all(model_t *m) {
  const char *phase = m->phase;
  m->phase = "free everything";
  while (m->n) {
    m->op++;
    free_at(m, (size_t)test_below(&m->rng, m->n));
  }
  m->phase = phase;
}

/* ---- checkpoints ------------------------------------------------------------------------- */

static int ival_cmp(const void *a, const void *b) {
  const ival_t *x = a, *y = b;
  return x->start < y->start ? -1 : x->start > y->start;
}

/* Everything the model can say about the heap: patterns, usable sizes, alignment, ownership,
 * no overlaps, the heap check, per-class statistics; after a collect, committed memory. */
static void checkpoint(model_t *m, int collect) {
  if (collect) {
    refgc_heap_collect();
    m->n_collect++;
  }
  m->n_check++;
  const char *when = collect ? "checkpoint after collect" : "checkpoint";
  for (size_t i = 0; i < m->n; i++) verify_block(m, &m->v[i], when);

  if (m->iv_cap < m->n) {
    m->iv_cap = m->n + 1024;
    free(m->iv);
    m->iv = malloc(m->iv_cap * sizeof *m->iv);
    if (!m->iv) TEST_FAIL("out of libc memory for the intervals");
  }
  size_t per_class[REFGC_NUM_CLASSES] = {0};
  size_t large = 0;
  for (size_t i = 0; i < m->n; i++) {
    const blk_t *b = &m->v[i];
    size_t u = refgc_usable_size(b->p);
    if (u < b->size)
      MFAIL(m, "block id %" PRIu64 " at %p: usable %zu < requested %zu", b->id, (void *)b->p, u,
            b->size);
    if (!refgc_owns(b->p)) MFAIL(m, "refgc_owns(%p) is 0 for a live block", (void *)b->p);
    if (refgc_owns(b->p + 1)) MFAIL(m, "refgc_owns(%p + 1) is 1", (void *)b->p);
    if ((uintptr_t)b->p % b->align)
      MFAIL(m, "block id %" PRIu64 " at %p lost its alignment %zu", b->id, (void *)b->p, b->align);
    int L = is_large(b->p);
    if (L) {
      large++;
    } else if (!m->debug) {
      unsigned c = refgc__size_class(u);
      if (u > REFGC_MEDIUM_MAX || refgc__classes[c].block_size != u)
        MFAIL(m, "block at %p: usable size %zu is not a block size", (void *)b->p, u);
      per_class[c]++;
      /* aligned to the largest power of two dividing its class, up to 4 KiB */
      size_t low = u & (0 - u);
      if (low > OS_PAGE) low = OS_PAGE;
      if ((uintptr_t)b->p % low)
        MFAIL(m, "block at %p of the %zu-byte class is not aligned to %zu", (void *)b->p, u, low);
    }
    m->iv[i] = (ival_t){(uintptr_t)b->p, (uintptr_t)b->p + (u ? u : 1), i, L};
  }
  qsort(m->iv, m->n, sizeof *m->iv, ival_cmp);
  for (size_t i = 1; i < m->n; i++) {
    const ival_t *a = &m->iv[i - 1], *b = &m->iv[i];
    if (b->start < a->end)
      MFAIL(m, "blocks overlap: id %" PRIu64 " [%p, +%zu) and id %" PRIu64 " [%p, +%zu)",
            m->v[a->idx].id, (void *)a->start, (size_t)(a->end - a->start), m->v[b->idx].id,
            (void *)b->start, (size_t)(b->end - b->start));
  }

  int bad = refgc_heap_check();
  if (bad) MFAIL(m, "refgc_heap_check() found %d problem(s)", bad);
  if (heap_errors != m->errors_base)
    MFAIL(m, "the heap reported %lu error(s)", heap_errors - m->errors_base);

  refgc_heap_stats_t s = stats_now();
  if (!m->debug) {
    for (unsigned c = 0; c < REFGC_NUM_CLASSES; c++)
      if (s.classes[c].blocks_in_use - m->base.classes[c].blocks_in_use != per_class[c])
        MFAIL(m, "class %u (%zu B): stats say %zu more blocks in use, the model %zu", c,
              s.classes[c].block_size,
              (size_t)(s.classes[c].blocks_in_use - m->base.classes[c].blocks_in_use),
              per_class[c]);
  }
  if (s.large_count - m->base.large_count != large)
    MFAIL(m, "stats say %zu more large blocks, the model %zu",
          (size_t)(s.large_count - m->base.large_count), large);
  if (s.committed < s.in_use)
    MFAIL(m, "committed %zu < in use %zu", s.committed, s.in_use);
  if (s.reserved < s.committed)
    MFAIL(m, "reserved %zu < committed %zu", s.reserved, s.committed);

  if (collect && !m->debug) {
    /* After a collect only these stay committed: metadata, large mappings and the OS pages
     * that live blocks overlap. */
    size_t pinned = 0;
    uintptr_t last = 0; /* last OS page counted, + 1 */
    for (size_t i = 0; i < m->n; i++) {
      if (m->iv[i].large) continue;
      uintptr_t q0 = m->iv[i].start / OS_PAGE, q1 = (m->iv[i].end - 1) / OS_PAGE + 1;
      if (q0 < last) q0 = last;
      if (q1 > q0) pinned += q1 - q0;
      if (q1 > last) last = q1;
    }
    size_t expect = s.metadata + s.large_bytes + pinned * OS_PAGE + m->committed_base;
    if (s.committed != expect)
      MFAIL(m, "after collect: committed %zu != metadata %zu + large %zu + %zu OS pages under "
            "live blocks + %zu before the case (= %zu; off by %lld)",
            s.committed, s.metadata, s.large_bytes, pinned, m->committed_base, expect,
            (long long)s.committed - (long long)expect);
  }
}

/* Everything freed: the statistics are back where they started. */
static void end_checks(model_t *m) {
  refgc_heap_collect();
  int bad = refgc_heap_check();
  if (bad) MFAIL(m, "refgc_heap_check() found %d problem(s) after freeing everything", bad);
  if (heap_errors != m->errors_base)
    MFAIL(m, "the heap reported %lu error(s)", heap_errors - m->errors_base);
  refgc_heap_stats_t s = stats_now();
  if (s.in_use != m->base.in_use)
    MFAIL(m, "everything freed but in_use is %zu, was %zu", s.in_use, m->base.in_use);
  for (unsigned c = 0; c < REFGC_NUM_CLASSES; c++)
    if (s.classes[c].blocks_in_use != m->base.classes[c].blocks_in_use)
      MFAIL(m, "everything freed but class %u has %zu blocks in use, was %zu", c,
            s.classes[c].blocks_in_use, m->base.classes[c].blocks_in_use);
  if (s.large_count != m->base.large_count || s.large_bytes != m->base.large_bytes)
    MFAIL(m, "everything freed but %zu large blocks (%zu bytes), was %zu (%zu)", s.large_count,
          s.large_bytes, m->base.large_count, m->base.large_bytes);
  if (s.alloc_count - m->base.alloc_count != s.free_count - m->base.free_count)
    MFAIL(m, "%" PRIu64 " allocations but %" PRIu64 " frees during the case",
          s.alloc_count - m->base.alloc_count, s.free_count - m->base.free_count);
  if (!m->debug && s.committed - s.metadata - s.large_bytes != m->committed_base)
    MFAIL(m, "everything freed and collected: committed %zu - metadata %zu = %zu, was %zu",
          s.committed, s.metadata, s.committed - s.metadata - s.large_bytes, m->committed_base);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void report(const model_t *m, const char *name, double t0) {
  printf("# %s: %" PRIu64 " ops (malloc %" PRIu64 ", calloc %" PRIu64 ", realloc %" PRIu64
         ", aligned %" PRIu64 ", free %" PRIu64 ", large %" PRIu64 "), %" PRIu64
         " checkpoints, %" PRIu64 " collects, %.2f s\n",
         name, m->op, m->n_malloc, m->n_calloc, m->n_realloc, m->n_aligned, m->n_free,
         m->n_large, m->n_check, m->n_collect, now_s() - t0);
}

/* ---- cases ------------------------------------------------------------------------------- */

TEST(mixed_workload) {
  double t0 = now_s();
  model_t m;
  model_init(&m, 0x6D69786564ull, "mixed");
  const uint64_t ops = 2000000ull * (uint64_t)test_scale();
  const size_t targets[] = {10, 500, 5000, 20000, 60000};
  const size_t byte_cap = 96 * MiB;
  size_t target = 1000;
  for (m.op = 0; m.op < ops; m.op++) {
    if (m.op % 50000 == 0) target = targets[test_below(&m.rng, 5)];
    if ((m.op & 0xFFFF) == 0xFFFF) checkpoint(&m, ((m.op >> 16) & 3) == 3);
    uint64_t r = test_below(&m.rng, 100);
    if (m.n && (m.live_bytes > byte_cap || r < (m.n > target ? 58u : 38u))) {
      free_at(&m, (size_t)test_below(&m.rng, m.n));
      continue;
    }
    r = test_below(&m.rng, 100);
    if (r < 55)
      op_malloc(&m);
    else if (r < 68)
      op_calloc(&m);
    else if (r < 82)
      op_aligned(&m);
    else if (m.n)
      op_realloc(&m);
    else
      op_malloc(&m);
  }
  checkpoint(&m, 1);
  free_all(&m);
  end_checks(&m);
  report(&m, "mixed_workload", t0);
  model_done(&m);
}

TEST(sawtooth) {
  double t0 = now_s();
  model_t m;
  model_init(&m, 0x736177ull, "sawtooth");
  m.large_weight = 4; /* mostly small and medium pages: the bytes should not all be mappings */
  const size_t peak = 200 * MiB;
  const long cycles = 3 * test_scale();
  for (long cyc = 0; cyc < cycles; cyc++) {
    m.phase = "sawtooth: grow";
    while (m.live_bytes < peak) {
      m.op++;
      uint64_t r = test_below(&m.rng, 100);
      if (r < 8 && m.n)
        free_at(&m, (size_t)test_below(&m.rng, m.n));
      else if (r < 15 && m.n)
        op_realloc(&m);
      else if (r < 65)
        op_malloc(&m);
      else if (r < 80)
        op_calloc(&m);
      else
        op_aligned(&m);
    }
    checkpoint(&m, 0);
    refgc_heap_stats_t top = stats_now();
    m.phase = "sawtooth: free 90% in random order";
    size_t keep = m.n / 10;
    while (m.n > keep) {
      m.op++;
      free_at(&m, (size_t)test_below(&m.rng, m.n));
    }
    m.phase = "sawtooth: collect";
    checkpoint(&m, 1);
    refgc_heap_stats_t low = stats_now();
    printf("# sawtooth cycle %ld: %zu blocks kept, committed %.1f MiB at the top, %.1f MiB after "
           "freeing 90%% and collecting\n",
           cyc, m.n, (double)top.committed / (double)MiB, (double)low.committed / (double)MiB);
    if (low.committed >= top.committed)
      MFAIL(&m, "collect gave nothing back: committed %zu at the top, %zu after", top.committed,
            low.committed);
  }
  m.phase = "sawtooth: end";
  free_all(&m);
  end_checks(&m);
  report(&m, "sawtooth", t0);
  model_done(&m);
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

static size_t committed_now(void) { return stats_now().committed; }
static size_t reserved_now(void) { return stats_now().reserved; }

TEST(same_size_churn) {
  double t0 = now_s();
  model_t m;
  model_init(&m, 0x636875726Eull, "churn");
  const long scale = test_scale();

  /* 1. one block allocated and freed in a loop: no growth at all after the first round */
  static const size_t one_sizes[] = {1, 48, 500, 3000, 8192, 20000, 131072, 300000};
  for (size_t k = 0; k < sizeof one_sizes / sizeof one_sizes[0]; k++) {
    size_t size = one_sizes[k];
    m.phase = "churn: one block in a loop";
    long iters = (size > REFGC_MEDIUM_MAX ? 3000 : 200000) * scale / (m.debug ? 10 : 1);
    uint8_t *p = refgc_malloc(size);
    check_new(&m, "refgc_malloc", p, size, 16);
    refgc_free(p);
    size_t c0 = committed_now(), r0 = reserved_now(), cmax = c0;
    for (long i = 0; i < iters; i++) {
      m.op++;
      p = refgc_malloc(size);
      m.n_malloc++;
      if (!p) MFAIL(&m, "refgc_malloc(%zu) returned NULL", size);
      p[0] = (uint8_t)i;
      p[size - 1] = (uint8_t)i;
      if ((i & 1023) == 0) {
        size_t c = committed_now();
        if (c > cmax) cmax = c;
      }
      refgc_free(p);
    }
    size_t c1 = committed_now(), r1 = reserved_now();
    if (cmax > c0 + size + 64 * KiB)
      MFAIL(&m, "one %zu-byte block in a loop: committed grew from %zu to %zu", size, c0, cmax);
    if (c1 > c0) MFAIL(&m, "one %zu-byte block in a loop: committed %zu -> %zu", size, c0, c1);
    if (r1 != r0)
      MFAIL(&m, "one %zu-byte block in a loop: reserved %zu -> %zu", size, r0, r1);
  }

  /* 2. batches of one size, allocated then freed in varying order, many rounds: committed
   * stays near one batch, and no new address space is reserved after the first round */
  static const size_t batch_sizes[] = {16, 48, 1000, 4000, 9000, 70000};
  for (size_t k = 0; k < sizeof batch_sizes / sizeof batch_sizes[0]; k++) {
    size_t size = batch_sizes[k];
    uint8_t *probe = refgc_malloc(size);
    check_new(&m, "refgc_malloc", probe, size, 16);
    size_t bs = block_bytes(probe);
    refgc_free(probe);
    size_t count = 8 * MiB / bs;
    if (count > 200000) count = 200000;
    long rounds = 30 * scale / (m.debug ? 3 : 1);
    m.phase = "churn: batches";
    refgc_heap_collect();
    size_t c0 = committed_now(), cmax = c0, r1 = 0;
    for (long round = 0; round < rounds; round++) {
      for (size_t i = 0; i < count; i++) {
        m.op++;
        uint8_t *p = refgc_malloc(size);
        check_new(&m, "refgc_malloc", p, size, 16);
        uint64_t id = m.next_id++;
        pat_fill(p, id, 0, size);
        model_push(&m, p, size, 16, id);
        m.n_malloc++;
      }
      size_t c = committed_now();
      if (c > cmax) cmax = c;
      if (round == rounds / 2) checkpoint(&m, 0);
      int order = (int)(round % 3); /* 0 random, 1 oldest first, 2 newest first */
      if (order == 1) {
        for (size_t i = 0; i < m.n; i++) {
          m.op++;
          verify_block(&m, &m.v[i], "before free");
          refgc_free(m.v[i].p);
          m.n_free++;
        }
        m.n = 0;
        m.live_bytes = 0;
      } else {
        while (m.n) {
          m.op++;
          free_at(&m, order == 0 ? (size_t)test_below(&m.rng, m.n) : m.n - 1);
        }
      }
      if (round == 0) r1 = reserved_now();
      if (round > 0 && reserved_now() != r1)
        MFAIL(&m, "batches of %zu x %zu B: round %ld reserved %zu bytes, round 0 %zu", count,
              size, round, reserved_now(), r1);
    }
    size_t bound = c0 + count * bs + count * bs / 4 + 2 * MiB;
    if (cmax > bound)
      MFAIL(&m, "batches of %zu x %zu B (%zu KiB): committed peaked at %zu, from %zu", count,
            size, count * bs / KiB, cmax, c0);
    if (refgc_heap_check()) MFAIL(&m, "refgc_heap_check() failed after batches of %zu B", size);
  }

  /* 3. empty pages go back to the OS by themselves after REFGC_PURGE_DELAY, at the next
   * slow paths, without refgc_heap_collect */
  const char *env = getenv("REFGC_PURGE_DELAY");
  long delay = env && *env ? strtol(env, NULL, 10) : 50;
  if (delay < 0 || delay > 2000) {
    printf("# same_size_churn: purge-delay check skipped (REFGC_PURGE_DELAY=%ld)\n", delay);
  } else {
    m.phase = "churn: purge after the delay";
    refgc_heap_collect();
    size_t c0 = committed_now();
    size_t count = 32 * MiB / 1024;
    for (size_t i = 0; i < count; i++) {
      m.op++;
      uint8_t *p = refgc_malloc(1000);
      check_new(&m, "refgc_malloc", p, 1000, 16);
      uint64_t id = m.next_id++;
      pat_fill(p, id, 0, 1000);
      model_push(&m, p, 1000, 16, id);
    }
    size_t c_top = committed_now();
    free_all(&m);
    size_t c_freed = committed_now();
    sleep_ms(2 * delay + 50);
    /* 8000-byte blocks: a slow path every other allocation, so the purge queue is looked at */
    enum { K = 256 };
    static uint8_t *keep[K];
    for (int i = 0; i < K; i++) {
      keep[i] = refgc_malloc(8000);
      check_new(&m, "refgc_malloc", keep[i], 8000, 16);
      memset(keep[i], 0x3C, 8000);
    }
    size_t c_after = committed_now();
    for (int i = 0; i < K; i++) refgc_free(keep[i]);
    printf("# same_size_churn: purge delay %ld ms: committed %.1f MiB before, %.1f with 32 MiB "
           "live, %.1f just after freeing, %.1f after the delay\n",
           delay, (double)c0 / (double)MiB, (double)c_top / (double)MiB,
           (double)c_freed / (double)MiB, (double)c_after / (double)MiB);
    if (c_after > c0 + (size_t)K * 8192 + 2 * MiB)
      MFAIL(&m, "empty pages were not given back after the purge delay: committed %zu, was %zu "
            "before the 32 MiB batch",
            c_after, c0);
  }

  m.phase = "churn: end";
  free_all(&m);
  end_checks(&m);
  report(&m, "same_size_churn", t0);
  model_done(&m);
}
