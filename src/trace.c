/* refgc — allocation tracing: tracemalloc's model for C (refgc/trace.h).
 *
 * Switching on without touching the fast paths. Each heap has a byte budget that the
 * allocation fast paths draw from (one load, subtract and store on a field next to the size
 * classes); when it runs out, the allocation takes the generic path, which ends in
 * `refgc__alloc_hook`. The hook sets the next budget: 256 KiB while tracing is off (so a
 * thread notices tracing starting within that much allocation; start and stop also zero every
 * heap's budget), 0 while every allocation is traced, and the distance to the next sample while
 * sampling — so a sampled program keeps its fast paths between samples. Frees test a byte of
 * the page descriptor they already read (`slow_free`), set when the page holds traced blocks
 * (or in debug mode); only those frees take the generic path, which forgets the trace.
 *
 * One trace per block, no hash table. A block's trace is a 64-bit word in a side array kept
 * per page, indexed by the block's index in its page (the same exact division the free path
 * already does), so recording and forgetting a trace is a store, and the tracer costs 8 bytes
 * per block of a traced page:
 *
 *     word = requested size (32 bits) << 32 | traceback id (24 bits) << 8 | epoch (8 bits)
 *
 * A large block keeps the same word, and its full requested size, in its segment header. The
 * side array of a page is made by the page's owner on the first traced block and freed when the
 * page is given back; a word is valid only when its epoch is the current one, so stopping
 * tracing forgets every trace at once by moving the epoch (no walk). Blocks allocated before
 * tracing started have no valid word and are not traced, as with tracemalloc.
 *
 * Counting. Traced bytes and blocks are per-thread counters (plain stores by their thread),
 * summed when read; the peak is exact while a single thread traces and is folded in every
 * 64 KiB of a thread's growth otherwise.
 *
 * Tracebacks. A capture walks the frame-pointer chain (the library is built with frame
 * pointers; each step checks the next frame lies above the last and inside the thread's
 * stack, so a program built without them gives short stacks, never a crash). REFGC_TRACE_UNWIND
 * =dwarf uses the C library's DWARF unwinder (backtrace) instead: slower, right without frame
 * pointers. refgc's own frames are left out by address: when tracing starts, every allocation
 * entry point is called once from a known place and the return addresses seen between the
 * capture and that place are remembered as "ours". Identical tracebacks are stored once in a
 * global table (hash, open addressing, under a mutex), fronted by a per-thread cache so that a
 * repeated stack takes no lock. Traceback entries are immutable once published and never freed
 * (they are kept across stop and start), so readers need no lock.
 *
 * Sampling. Each thread counts bytes down to its next sample; the distance is drawn from an
 * exponential distribution of the mean asked for, so a block of s bytes is traced with
 * probability p = 1 - exp(-s/mean), and counts s/p bytes and 1/p blocks in the totals.
 *
 * Memory over time. Every REFGC_TRACE_SERIES_MS the allocation path adds a point (time, RSS,
 * traced, heap in use and committed) to a ring of 65536 points; periodic snapshots
 * (REFGC_TRACE_EVERY_MS / _BYTES) are written from the same place.
 *
 * All of the tracer's memory comes from the C library's malloc: it never shows as the program's.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pthread_getattr_np */
#endif
#include <assert.h>
#include <errno.h>
#include <execinfo.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

/* ---------------------------------------------------------------------------------------------
 * State
 * ------------------------------------------------------------------------------------------ */

#define TB_CHUNK 4096                    /* traceback pointers per chunk */
#define TB_MAX ((uint32_t)1 << 24)       /* traceback ids fit 24 bits; id 0 is "none" */
#define TB_CACHE 4096                    /* per-thread cache entries (power of two; 64 KiB) */
#define SERIES_CAP 65536
#define OWN_MAX 64                       /* remembered return addresses of refgc's frames */

/* A stored traceback: immutable once its id is published. */
typedef struct tb_s {
  uint64_t hash;
  uint32_t n;
  void *frames[];
} tb_t;

static pthread_mutex_t trace_lock = PTHREAD_MUTEX_INITIALIZER; /* tables, page arrays, epoch */
_Atomic int refgc__trace_all;
static _Atomic int tracing;
static _Atomic int trace_frames;       /* atomics: start writes them while threads allocate */
static int unwind_dwarf;               /* REFGC_TRACE_UNWIND=dwarf */
static _Atomic uint64_t sample_mean;   /* 0: every allocation */
static _Atomic uint64_t sample_seed;
static _Atomic uint32_t trace_epoch = 1; /* 1..255 */
static _Atomic uint32_t trace_session;   /* bumped at every start: per-thread state resets */

/* Traced bytes and blocks are counted per thread (plain stores of the thread's own counters)
 * and summed on demand; the peak is exact while one thread allocates (a store per new high)
 * and otherwise folded in whenever a thread's count grew by PEAK_SYNC since its last sync. */
#define PEAK_SYNC ((int64_t)64 << 10)
static _Atomic int64_t traced_peak;
static _Atomic size_t tracer_mem;      /* bytes of tracer memory */

/* traceback table: ids -> entries (chunked, published with release stores), and a hash index */
static _Atomic(tb_t **) tb_chunks[TB_MAX / TB_CHUNK];
static _Atomic uint32_t tb_count = 1;  /* next id */
static uint32_t *tb_index;             /* open addressing: ids, 0 empty */
static size_t tb_index_cap;

/* refgc's own return addresses (see the file comment): a small open-addressing set, filled
 * once by calibration before tracing first starts, read-only afterwards */
#define OWN_SET 256
static void *own_set[OWN_SET];
static _Atomic int own_count;

/* memory-over-time series */
static pthread_mutex_t series_lock = PTHREAD_MUTEX_INITIALIZER;
static refgc_series_point_t *series;
static size_t series_head, series_len; /* ring */
static uint64_t clock_start_ns;
static _Atomic uint64_t series_due_ns;
static uint64_t series_interval_ns = 100 * 1000000ull;

/* periodic snapshots */
static char *snap_path;                /* REFGC_TRACE_FILE */
static uint64_t every_ms, every_bytes;
static _Atomic uint64_t next_snap_ns;
static _Atomic int64_t snap_mark_bytes; /* traced bytes at the last periodic snapshot */
static _Atomic unsigned snap_seq;
static _Atomic int snap_busy;

typedef struct tl_trace_s {
  /* counters: written by the owning thread (relaxed stores), summed by readers */
  _Atomic int64_t bytes, blocks;
  _Atomic int64_t high;     /* highest `bytes` since the last sync or reset */
  int64_t base;             /* other threads' bytes at the last sync */
  int64_t last_sync;        /* `bytes` at the last sync */
  struct tl_trace_s *next;  /* registry (under tl_lock); structs are reused, never freed */
  bool in_use;              /* a live thread owns it */
  uint32_t gen;             /* tl_gen at the last sync: `base` is stale when it moved */
  uint32_t session;
  int64_t sample_left;      /* debug mode: bytes to the next sample */
  uint64_t rng;
  uintptr_t stack_lo, stack_hi;
  int in_tracer;
  unsigned tick;
  struct {
    uint64_t hash;
    uint32_t id;
  } cache[TB_CACHE];
} tl_trace_t;
static REFGC_TLS_MODEL _Thread_local tl_trace_t *tl;
static pthread_mutex_t tl_lock = PTHREAD_MUTEX_INITIALIZER;
static tl_trace_t *tl_all;
static _Atomic int tl_live;       /* threads owning a struct now */
static _Atomic uint32_t tl_gen;   /* moves when a thread registers or exits and when counters
                                     are zeroed: every thread's `base` must be taken again */
static pthread_key_t tl_key;
static pthread_once_t tl_key_once = PTHREAD_ONCE_INIT;

static void *tmalloc(size_t n) {
  void *p = malloc(n);
  if (p) atomic_fetch_add_explicit(&tracer_mem, n, memory_order_relaxed);
  return p;
}
static void *tcalloc(size_t n, size_t size) {
  void *p = calloc(n, size);
  if (p) atomic_fetch_add_explicit(&tracer_mem, n * size, memory_order_relaxed);
  return p;
}
static void tfree(void *p, size_t n) {
  if (!p) return;
  atomic_fetch_sub_explicit(&tracer_mem, n, memory_order_relaxed);
  free(p);
}

/* Make every heap take the generic path at its next allocation (start, stop). */
static void budget_zero(refgc_heap_t *heap, void *arg) {
  (void)arg;
  atomic_store_explicit(&heap->budget, 0, memory_order_relaxed);
}
static void budgets_zero(void) { refgc__heaps_foreach(budget_zero, NULL); }

/* ---------------------------------------------------------------------------------------------
 * Per-thread state
 * ------------------------------------------------------------------------------------------ */

static uint64_t splitmix(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* Bytes to the next sample: exponential with mean `sample_mean` (at least 1). */
static int64_t next_interval(tl_trace_t *t) {
  double u = (double)(splitmix(&t->rng) >> 11) * (1.0 / 9007199254740992.0); /* [0,1) */
  double d = -log(1.0 - u) * (double)sample_mean;
  if (d < 1) d = 1;
  if (d > 9e18) d = 9e18;
  return (int64_t)d;
}

static _Atomic uint64_t thread_serial;

static void tl_thread_done(void *arg) {
  tl_trace_t *t = arg;
  tl = NULL; /* frees later in this thread's exit take a struct of their own, not this one */
  pthread_mutex_lock(&tl_lock);
  t->in_use = false; /* its counters stay in the sums: the blocks it traced may live on */
  pthread_mutex_unlock(&tl_lock);
  atomic_fetch_sub_explicit(&tl_live, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&tl_gen, 1, memory_order_relaxed);
}
static void tl_key_init(void) { pthread_key_create(&tl_key, tl_thread_done); }

static tl_trace_t *tl_get(void) {
  tl_trace_t *t = tl;
  uint32_t session = atomic_load_explicit(&trace_session, memory_order_acquire);
  if (t && t->session == session) return t;
  if (!t) {
    pthread_once(&tl_key_once, tl_key_init);
    pthread_mutex_lock(&tl_lock);
    for (t = tl_all; t && t->in_use; t = t->next) {
    }
    if (!t) {
      t = calloc(1, sizeof *t);
      if (!t) {
        pthread_mutex_unlock(&tl_lock);
        return NULL;
      }
      atomic_fetch_add_explicit(&tracer_mem, sizeof *t, memory_order_relaxed);
      t->next = tl_all;
      tl_all = t;
    }
    t->in_use = true;
    t->stack_lo = t->stack_hi = 0;
    pthread_mutex_unlock(&tl_lock);
    atomic_fetch_add_explicit(&tl_live, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&tl_gen, 1, memory_order_relaxed);
    pthread_setspecific(tl_key, t);
    pthread_attr_t attr;
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
      void *addr;
      size_t size;
      if (pthread_attr_getstack(&attr, &addr, &size) == 0) {
        t->stack_lo = (uintptr_t)addr;
        t->stack_hi = (uintptr_t)addr + size;
      }
      pthread_attr_destroy(&attr);
    }
    tl = t;
  } else {
    memset(t->cache, 0, sizeof t->cache);
  }
  t->session = session;
  t->rng = sample_seed ^ (atomic_fetch_add(&thread_serial, 1) * 0xD1B54A32D192ED03ull);
  t->sample_left = sample_mean ? next_interval(t) : 0;
  return t;
}

/* ---------------------------------------------------------------------------------------------
 * Capturing a stack
 * ------------------------------------------------------------------------------------------ */

static size_t own_slot(const void *ra) {
  return (size_t)(((uintptr_t)ra * 0x9E3779B97F4A7C15ull) >> 56) & (OWN_SET - 1);
}

static bool is_own(void *ra) {
  for (size_t j = own_slot(ra);; j = (j + 1) & (OWN_SET - 1)) {
    if (own_set[j] == ra) return true;
    if (!own_set[j]) return false;
  }
}

/* A traceback's hash: the sum of each frame times a random odd 64-bit key of its position
 * (splitmix64 from a fixed seed, so hashes repeat from run to run), then mixed. One multiply and
 * one add a frame, with no chain of dependent multiplies through the frames; not linear in
 * the way a plain sum is (two frames swapped, or the same return addresses at other depths as
 * recursion makes them, give other sums; the first, additive version sent 16,384 distinct
 * binary-tree stacks into 470 hashes). fp_walk sums as it walks; tb_hash does it for a stack
 * another unwinder captured. Equal hashes are confirmed by comparing frames. */
static const uint64_t tb_keys[REFGC_TRACE_MAX_FRAMES] = {
    0x2cb0f69f4abea221ull, 0x9417034723148989ull, 0xdd555950609dfe03ull,
    0xdbafb150deb12801ull, 0x7e789b2e6c442cb7ull, 0xf41e5636c7e4f8c5ull,
    0x0959d150f8fba7e5ull, 0xa97316f13cdb9eebull, 0x74cd8258f9520069ull,
    0x55c74a62e116868bull, 0xd2f4c799a2023cbdull, 0xdf98cb79a37b51b9ull,
    0x396f5885524f3905ull, 0xaf1d56386ca3b277ull, 0xa9ffbe6b5104e85bull,
    0x6bd0c51b9fd533b3ull, 0x980ce91c50ab4b57ull, 0x28ac395780fe62c5ull,
    0x768912e3a6bcedc7ull, 0x50b3e8c9332c7c89ull, 0xce3bbfe520bd47dbull,
    0xcba6c8e8e0bb7c4full, 0xbf194db8434a346dull, 0x7d8f2a7b60416d7full,
    0x0849d1f6e0e10a5full, 0x7654b590d064e22full, 0x16d1da9507df3af3ull,
    0xf63aef1089ea30e5ull, 0x9ade6673cc6c522bull, 0x4c75bc274e37087dull,
    0xd35e12b49f51f27bull, 0x22ddf2ffcee481ebull, 0x06007fb13c59a1f1ull,
    0x8966a38c651ea4dbull, 0x25242f018fc01ac7ull, 0xa73ec74fa31b717dull,
    0x7ee0abdd9797d3a3ull, 0x5c06ff7dc4ac1881ull, 0x8434e41042c28a7dull,
    0x770a372d64327351ull, 0xeed940dad9e9c06dull, 0x8977e93646524825ull,
    0xa9897f0a62a51617ull, 0xa35d4250c53f2b3bull, 0x4072542a94b9c33full,
    0x3154a7a62447e8abull, 0x686865712a1a245full, 0x0fba67727d7b3b99ull,
    0x0634e2024536912full, 0xd9ff52a26cf9881bull, 0x9435dc0399f932dbull,
    0x18d39fc1af93e7f1ull, 0x12f7147c1e7f46abull, 0xdedf66783eddb4a1ull,
    0x6f75480614554799ull, 0xe40e95e8ef84bde3ull, 0xbb41fe601fefb567ull,
    0x5c3702e4c7bf19f1ull, 0x8c7d1d0d3d4a8ec5ull, 0xee779996ba62dccbull,
    0x80ccb15bf530844bull, 0xdf56e7dc4d57959dull, 0x9eb86a81fe90b68full,
    0x6a25741fa696fbd3ull,
};
REFGC_INLINE uint64_t tb_mix(const void *frame, int i) {
  return (uint64_t)(uintptr_t)frame * tb_keys[i];
}
REFGC_INLINE uint64_t tb_finish(uint64_t sum, int n) {
  uint64_t h = sum + (uint64_t)n * 0x9E3779B97F4A7C15ull;
  h ^= h >> 29;
  h *= 0xC4CEB9FE1A85EC53ull;
  h ^= h >> 32;
  return h ? h : 1; /* never 0 (an empty cache entry); not h | 1, which would leave the
                       * table's index (the low bits) only its odd slots */
}

/* Walk the frame-pointer chain from this function's frame: drop the first two return
 * addresses ("into capture" and "into capture's caller"), then (unless `raw`) the leading ones
 * that are refgc's own, then keep up to `max` into `out` and their hash into *hash. Stops as
 * soon as it has them. Reads only saved frame pointers and return addresses: 8-byte aligned,
 * inside the thread's stack bounds (when known), each frame above the one before.
 *
 * Two loops: the first skips (and probes the set of refgc's return addresses), the second only
 * copies and hashes, with one unsigned compare for both bounds; this is the inner loop of
 * tracing (see "Where the time goes" in docs/benchmarks.md). */
__attribute__((noinline, no_sanitize("address"))) REFGC_NO_TSAN static int
fp_walk(tl_trace_t *t, void **out, int max, bool raw, uint64_t *hash) {
  uintptr_t lo = t->stack_lo;
  /* f is a frame to read when (f & 7) == 0 and f - lo <= span, i.e. lo <= f <= hi - 16 */
  uintptr_t span = lo && t->stack_hi - lo >= 16 ? t->stack_hi - lo - 16 : UINTPTR_MAX - 16;
  uintptr_t f = (uintptr_t)__builtin_frame_address(0);
  void *ra;
  *hash = tb_finish(0, 0);
  for (int d = 0;; d++) {
    if ((f & 7) || f - lo > span) return 0;
    ra = ((void **)f)[1];
    if (!ra) return 0;
    if (d >= 2 && (raw || !is_own(ra))) break;
    uintptr_t next = ((uintptr_t *)f)[0];
    if (next <= f) return 0;
    f = next;
  }
  uint64_t sum = 0;
  int n = 0;
  while (n < max) {
    out[n] = ra;
    sum += tb_mix(ra, n);
    n++;
    uintptr_t next = ((uintptr_t *)f)[0];
    if (next <= f || (next & 7) || next - lo > span) break;
    f = next;
    ra = ((void **)f)[1];
    if (!ra) break;
  }
  *hash = tb_finish(sum, n);
  return n;
}

static uint64_t tb_hash(void *const *frames, int n) {
  uint64_t sum = 0;
  for (int i = 0; i < n; i++) sum += tb_mix(frames[i], i);
  return tb_finish(sum, n);
}

/* The allocating call's stack without refgc's own frames: up to `max` frames from
 * buf[*first], and their hash (tb_hash's) in *hash. Not inlined, so that the first two return
 * addresses an unwinder sees are always "into capture" and "into capture's caller" (record, in
 * calibration as in real use): both are dropped, and what follows is the same return addresses
 * in calibration and in real use. */
#define CAPTURE_BUF (REFGC_TRACE_MAX_FRAMES + 24)
static _Atomic int own_depth = 22; /* most leading frames of ours seen in calibration */

static REFGC_NOINLINE int capture(tl_trace_t *t, void **buf, int max, bool raw, int *first,
                                  uint64_t *hash) {
  if (!unwind_dwarf) {
    *first = 0;
    int n = fp_walk(t, buf, max, raw, hash);
    __asm__ volatile("" ::: "memory"); /* keep this frame */
    return n;
  }
  int want = max + 2 + atomic_load_explicit(&own_depth, memory_order_relaxed);
  int n = backtrace(buf, want);
  int skip = n < 2 ? n : 2;
  if (!raw)
    while (skip < n && is_own(buf[skip])) skip++;
  n -= skip;
  if (n > max) n = max;
  *first = skip;
  *hash = tb_hash(buf + skip, n);
  __asm__ volatile("" ::: "memory");
  return n;
}

/* ---------------------------------------------------------------------------------------------
 * The traceback table
 * ------------------------------------------------------------------------------------------ */

static tb_t *tb_get(uint32_t id) {
  if (id == 0 || id >= TB_MAX) return NULL;
  tb_t **chunk = atomic_load_explicit(&tb_chunks[id / TB_CHUNK], memory_order_acquire);
  return chunk ? chunk[id % TB_CHUNK] : NULL;
}

static bool tb_equal(const tb_t *tb, uint64_t h, void *const *frames, int n) {
  if (!tb || tb->hash != h || tb->n != (uint32_t)n) return false;
  for (int i = 0; i < n; i++) /* short: no call to memcmp */
    if (tb->frames[i] != frames[i]) return false;
  return true;
}

static bool tb_index_grow(void) {
  size_t cap = tb_index_cap ? tb_index_cap * 2 : 4096;
  uint32_t *idx = tcalloc(cap, sizeof *idx);
  if (!idx) return false;
  for (size_t i = 0; i < tb_index_cap; i++) {
    uint32_t id = tb_index[i];
    if (!id) continue;
    size_t j = tb_get(id)->hash & (cap - 1);
    while (idx[j]) j = (j + 1) & (cap - 1);
    idx[j] = id;
  }
  tfree(tb_index, tb_index_cap * sizeof *tb_index);
  tb_index = idx;
  tb_index_cap = cap;
  return true;
}

/* The id of this traceback, storing it if new; 0 when out of memory or ids. Takes the lock. */
static uint32_t tb_intern_locked(uint64_t h, void *const *frames, int n) {
  if (tb_index_cap) {
    for (size_t j = h & (tb_index_cap - 1); tb_index[j]; j = (j + 1) & (tb_index_cap - 1))
      if (tb_equal(tb_get(tb_index[j]), h, frames, n)) return tb_index[j];
  }
  uint32_t id = atomic_load_explicit(&tb_count, memory_order_relaxed);
  if (id >= TB_MAX) return 0;
  if ((id + 1) * 2 > tb_index_cap && !tb_index_grow()) return 0;
  _Atomic(tb_t **) *slot = &tb_chunks[id / TB_CHUNK];
  tb_t **chunk = atomic_load_explicit(slot, memory_order_relaxed);
  if (!chunk) {
    chunk = tcalloc(TB_CHUNK, sizeof *chunk);
    if (!chunk) return 0;
    atomic_store_explicit(slot, chunk, memory_order_release);
  }
  tb_t *tb = tmalloc(sizeof *tb + (size_t)n * sizeof(void *));
  if (!tb) return 0;
  tb->hash = h;
  tb->n = (uint32_t)n;
  memcpy(tb->frames, frames, (size_t)n * sizeof *frames);
  /* publish: the entry, then the id (readers find ids only through slots or the index) */
  atomic_store_explicit((_Atomic(tb_t *) *)&chunk[id % TB_CHUNK], tb, memory_order_release);
  size_t j = h & (tb_index_cap - 1);
  while (tb_index[j]) j = (j + 1) & (tb_index_cap - 1);
  tb_index[j] = id;
  atomic_store_explicit(&tb_count, id + 1, memory_order_release);
  return id;
}

static uint32_t tb_intern(tl_trace_t *t, void *const *frames, int n, uint64_t h) {
  assert(h == tb_hash(frames, n)); /* the walk's running hash is tb_hash (debug builds) */
  unsigned c = (unsigned)(h >> 7) & (TB_CACHE - 1);
  if (t->cache[c].hash == h && tb_equal(tb_get(t->cache[c].id), h, frames, n))
    return t->cache[c].id;
  pthread_mutex_lock(&trace_lock);
  uint32_t id = tb_intern_locked(h, frames, n);
  pthread_mutex_unlock(&trace_lock);
  if (id) {
    t->cache[c].hash = h;
    t->cache[c].id = id;
  }
  return id;
}

uint64_t refgc__trace_tb_hash(void *const *frames, int n) { return tb_hash(frames, n); }

size_t refgc__trace_tb_count(void) { return atomic_load_explicit(&tb_count, memory_order_acquire); }

int refgc__trace_tb_frames(uint32_t id, void *const **frames) {
  tb_t *tb = tb_get(id);
  if (!tb) return -1;
  *frames = tb->frames;
  return (int)tb->n;
}

/* ---------------------------------------------------------------------------------------------
 * Trace words
 * ------------------------------------------------------------------------------------------ */

#define WORD(size, id, epoch) (((uint64_t)(size) << 32) | ((uint64_t)(id) << 8) | (epoch))
#define WORD_EPOCH(w) ((uint32_t)((w) & 0xFF))
#define WORD_ID(w) ((uint32_t)(((w) >> 8) & 0xFFFFFF))
#define WORD_SIZE(w) ((uint64_t)((w) >> 32))

static size_t tpage_bytes(uint32_t capacity) {
  return sizeof(refgc_trace_page_t) + (size_t)capacity * sizeof(_Atomic uint64_t);
}

/* The side array of `page`, made on demand (owner thread only). */
static refgc_trace_page_t *tpage_get(refgc_segment_t *seg, refgc_page_t *page, bool make) {
  _Atomic(refgc_trace_page_t *) *table = atomic_load_explicit(&seg->trace_pages, memory_order_acquire);
  if (!table) {
    if (!make) return NULL;
    table = tcalloc(seg->slot_count, sizeof *table);
    if (!table) return NULL;
    pthread_mutex_lock(&trace_lock);
    atomic_store_explicit(&seg->trace_pages, table, memory_order_release);
    pthread_mutex_unlock(&trace_lock);
  }
  refgc_trace_page_t *tp = atomic_load_explicit(&table[page->slot], memory_order_acquire);
  if (tp || !make) return tp;
  tp = tcalloc(1, tpage_bytes(page->capacity));
  if (!tp) return NULL;
  tp->start = page->start;
  tp->block_size = page->block_size;
  tp->capacity = page->capacity;
  tp->object = page->cls >= REFGC_OBJECT_LANE;
  pthread_mutex_lock(&trace_lock);
  atomic_store_explicit(&table[page->slot], tp, memory_order_release);
  pthread_mutex_unlock(&trace_lock);
  return tp;
}

void refgc__trace_page_retired(refgc_page_t *page) {
  atomic_store_explicit(&page->slow_free, refgc__opt.debug ? 1 : 0, memory_order_relaxed);
  refgc_segment_t *seg = refgc__page_segment(page);
  _Atomic(refgc_trace_page_t *) *table = atomic_load_explicit(&seg->trace_pages, memory_order_acquire);
  if (!table) return;
  refgc_trace_page_t *tp = atomic_load_explicit(&table[page->slot], memory_order_acquire);
  if (!tp) return;
  pthread_mutex_lock(&trace_lock);
  atomic_store_explicit(&table[page->slot], NULL, memory_order_relaxed);
  pthread_mutex_unlock(&trace_lock);
  tfree(tp, tpage_bytes(tp->capacity));
}

/* Bytes a trace of `size` stands for (s/p when sampling). */
static int64_t weight_bytes(uint64_t size) {
  if (!sample_mean) return (int64_t)size;
  double p = -expm1(-(double)size / (double)sample_mean);
  return p > 0 ? (int64_t)llround((double)size / p) : 0;
}
static double weight_count(uint64_t size) {
  if (!sample_mean) return 1.0;
  double p = -expm1(-(double)size / (double)sample_mean);
  return p > 0 ? 1.0 / p : 0.0;
}

double refgc__trace_weight(uint64_t size) { return weight_count(size); }
uint64_t refgc__trace_weight_bytes(uint64_t size) { return (uint64_t)weight_bytes(size); }

/* Sum of every thread's counters (the registry lock held by the caller). */
static void sum_locked(int64_t *bytes, int64_t *blocks) {
  int64_t b = 0, n = 0;
  for (tl_trace_t *t = tl_all; t; t = t->next) {
    b += atomic_load_explicit(&t->bytes, memory_order_relaxed);
    n += atomic_load_explicit(&t->blocks, memory_order_relaxed);
  }
  if (bytes) *bytes = b;
  if (blocks) *blocks = n;
}

static void peak_max(int64_t v) {
  int64_t peak = atomic_load_explicit(&traced_peak, memory_order_relaxed);
  while (v > peak && !atomic_compare_exchange_weak_explicit(&traced_peak, &peak, v,
                                                            memory_order_relaxed,
                                                            memory_order_relaxed)) {
  }
}

/* Fold the exact total into the peak; remember the other threads' share. */
static void peak_sync(tl_trace_t *t) {
  int64_t total;
  t->gen = atomic_load_explicit(&tl_gen, memory_order_relaxed);
  pthread_mutex_lock(&tl_lock);
  sum_locked(&total, NULL);
  pthread_mutex_unlock(&tl_lock);
  int64_t mine = atomic_load_explicit(&t->bytes, memory_order_relaxed);
  t->base = total - mine;
  t->last_sync = mine;
  peak_max(total);
}

/* The calling thread's counters change by (bytes, blocks). */
static void account(tl_trace_t *t, int64_t bytes, int64_t blocks) {
  int64_t b = atomic_load_explicit(&t->bytes, memory_order_relaxed) + bytes;
  atomic_store_explicit(&t->bytes, b, memory_order_relaxed);
  atomic_store_explicit(&t->blocks, atomic_load_explicit(&t->blocks, memory_order_relaxed) + blocks,
                        memory_order_relaxed);
  if (bytes <= 0 || b <= atomic_load_explicit(&t->high, memory_order_relaxed)) return;
  atomic_store_explicit(&t->high, b, memory_order_relaxed);
  if (t->gen != atomic_load_explicit(&tl_gen, memory_order_relaxed)) {
    peak_sync(t); /* threads came or went, or counters were zeroed, since `base` was taken */
  } else if (atomic_load_explicit(&tl_live, memory_order_relaxed) <= 1) {
    /* alone: the others' share cannot change, so base + b is the exact total */
    int64_t total = t->base + b;
    if (total > atomic_load_explicit(&traced_peak, memory_order_relaxed)) peak_max(total);
  } else if (b - t->last_sync >= PEAK_SYNC) {
    peak_sync(t);
  }
}

/* The word slot of the block at `p`, or NULL (not traced page, not a block start); the page's
 * side array and descriptor in *tpp / *pagep (NULL for a large block). */
static _Atomic uint64_t *word_of(const void *p, bool make, refgc_segment_t **segp,
                                 refgc_trace_page_t **tpp, refgc_page_t **pagep) {
  refgc_segment_t *seg = refgc__segment_of(p);
  if (!seg) return NULL;
  *segp = seg;
  *tpp = NULL;
  *pagep = NULL;
  if (seg->kind == REFGC_SEGMENT_LARGE)
    return (const uint8_t *)p == (uint8_t *)seg + seg->large_offset ? &seg->large_trace : NULL;
  refgc_page_t *page = &seg->pages[((uintptr_t)p - (uintptr_t)seg) >> seg->page_shift];
  long idx = refgc__page_block_index(page, p);
  if (idx < 0) return NULL;
  refgc_trace_page_t *tp = tpage_get(seg, page, make);
  if (!tp || tp->start != page->start || (uint32_t)idx >= tp->capacity) return NULL;
  *tpp = tp;
  *pagep = page;
  return &tp->slot[idx];
}

static void periodic(tl_trace_t *t);
static REFGC_TLS_MODEL _Thread_local int calibrating;
/* where record puts the raw stack while calibrating */
static REFGC_TLS_MODEL _Thread_local void **calib_out;
static REFGC_TLS_MODEL _Thread_local int calib_n;

/* Record the trace of the block at `p` (tracing on, this allocation chosen); while
 * calibrating, keep the raw stack instead. Not inlined and called from one place only, so that
 * the return addresses below it are the same in calibration and in real use. */
static REFGC_NOINLINE void record(tl_trace_t *t, void *p, size_t size, uint32_t epoch) {
  if (t->in_tracer) return;
  t->in_tracer = 1;
  void *buf[CAPTURE_BUF];
  int first;
  uint64_t hash;
  /* one call of capture for both, so that the return address into this function is the same
   * in calibration as in real use (an unwinder may not drop it: ASan's backtrace interceptor
   * adds a frame of its own) */
  bool calib = refgc_unlikely(calibrating);
  int n = capture(t, buf, calib ? REFGC_TRACE_MAX_FRAMES : trace_frames, calib, &first,
                  &hash);
  if (calib) {
    calib_n = n;
    memcpy(calib_out, buf + first, (size_t)calib_n * sizeof *buf);
    t->in_tracer = 0;
    return;
  }
  uint32_t id = tb_intern(t, buf + first, n, hash);
  refgc_segment_t *seg;
  refgc_trace_page_t *tp;
  refgc_page_t *page;
  _Atomic uint64_t *w = id ? word_of(p, true, &seg, &tp, &page) : NULL;
  if (w) {
    uint64_t s32 = size > UINT32_MAX ? UINT32_MAX : size;
    if (seg->kind == REFGC_SEGMENT_LARGE) seg->large_requested = size;
    /* release: a snapshot that sees the word sees large_requested too */
    uint64_t old = atomic_exchange_explicit(w, WORD(s32, id, epoch), memory_order_acq_rel);
    if (tp && !old) {
      atomic_store_explicit(&tp->recorded,
                            atomic_load_explicit(&tp->recorded, memory_order_relaxed) + 1,
                            memory_order_relaxed);
      if (!refgc__page_slow_free(page))
        atomic_store_explicit(&page->slow_free, 1, memory_order_relaxed);
    }
    account(t, weight_bytes(size), 1);
  }
  if ((++t->tick & 63) == 0 || sample_mean) periodic(t);
  t->in_tracer = 0;
}

#define BUDGET_REFILL ((int64_t)256 << 10)

/* What the hook should do with this allocation: nothing, or record it. Sets the budget. */
static bool hook_decide(refgc_heap_t *heap, tl_trace_t **tp, void *p, size_t size, bool on) {
  if (refgc_unlikely(calibrating)) {
    atomic_store_explicit(&heap->budget, 0, memory_order_relaxed);
    return (*tp = tl_get()) != NULL;
  }
  if (refgc__opt.debug || heap == &refgc__empty_heap) {
    /* the budget stays 0: every allocation comes here (debug mode, or no heap yet) */
    if (!on || !p) return false;
    tl_trace_t *t = *tp = tl_get();
    if (!t) return false;
    if (sample_mean) {
      t->sample_left -= (int64_t)size;
      if (t->sample_left > 0) return false;
      t->sample_left = next_interval(t);
    }
    return true;
  }
  if (!on) {
    atomic_store_explicit(&heap->budget, BUDGET_REFILL, memory_order_relaxed);
    return false;
  }
  tl_trace_t *t = *tp = tl_get();
  if (!t) return false;
  if (!sample_mean) {
    atomic_store_explicit(&heap->budget, 0, memory_order_relaxed);
    return p != NULL;
  }
  /* sampling: the budget is the distance to the next sample */
  int64_t budget = atomic_load_explicit(&heap->budget, memory_order_relaxed);
  if (t->sample_left) { /* the thread's first interval this session (start zeroed the budget) */
    budget = t->sample_left;
    t->sample_left = 0;
  }
  int64_t left = budget - (int64_t)size;
  if (left > 0) {
    atomic_store_explicit(&heap->budget, left, memory_order_relaxed);
    return false;
  }
  atomic_store_explicit(&heap->budget, next_interval(t), memory_order_relaxed);
  return p != NULL;
}

void refgc__alloc_hook(void *p, size_t size) {
  refgc_heap_t *heap = refgc__tl_heap;
  /* the epoch before the flag: a stop in between (it clears the flag, then moves the epoch)
   * leaves this trace in the old epoch, never in the next session's */
  uint32_t epoch = atomic_load_explicit(&trace_epoch, memory_order_acquire);
  bool on = atomic_load_explicit(&tracing, memory_order_acquire) != 0;
  tl_trace_t *t = NULL;
  if (hook_decide(heap, &t, p, size, on)) record(t, p, size, epoch);
  __asm__ volatile("" ::: "memory"); /* no tail call: record's return address stays in here */
}

/* A word of `tp` (page `page`) was cleared: count it; the owner makes the page's frees fast
 * again when none is left (see refgc_trace_page_t). */
static void tp_forget(refgc_trace_page_t *tp, refgc_page_t *page) {
  if (page->heap != refgc__tl_heap) {
    atomic_fetch_add_explicit(&tp->remote, 1, memory_order_relaxed);
    return;
  }
  uint32_t rec = atomic_load_explicit(&tp->recorded, memory_order_relaxed) - 1;
  atomic_store_explicit(&tp->recorded, rec, memory_order_relaxed);
  if (rec != atomic_load_explicit(&tp->remote, memory_order_relaxed)) return;
  atomic_store_explicit(&tp->recorded, 0, memory_order_relaxed);
  atomic_store_explicit(&tp->remote, 0, memory_order_relaxed);
  if (!refgc__opt.debug) atomic_store_explicit(&page->slow_free, 0, memory_order_relaxed);
}

void refgc__trace_free_small(refgc_segment_t *seg, refgc_page_t *page, long idx) {
  if (!atomic_load_explicit(&tracing, memory_order_relaxed)) return;
  _Atomic(refgc_trace_page_t *) *table = atomic_load_explicit(&seg->trace_pages, memory_order_acquire);
  refgc_trace_page_t *tp = table ? atomic_load_explicit(&table[page->slot], memory_order_acquire) : NULL;
  if (!tp || tp->start != page->start || (uint32_t)idx >= tp->capacity) return;
  _Atomic uint64_t *w = &tp->slot[idx];
  uint64_t v = atomic_load_explicit(w, memory_order_relaxed);
  if (!v) return;
  atomic_store_explicit(w, 0, memory_order_relaxed);
  tp_forget(tp, page);
  if (WORD_EPOCH(v) != atomic_load_explicit(&trace_epoch, memory_order_relaxed)) return;
  tl_trace_t *t = tl_get();
  if (t) account(t, -weight_bytes(WORD_SIZE(v)), -1);
}

/* Forget the trace of the block at `p` (before it is freed). */
void refgc__trace_free(const void *p) {
  if (!atomic_load_explicit(&tracing, memory_order_relaxed)) return;
  refgc_segment_t *seg;
  refgc_trace_page_t *tp;
  refgc_page_t *page;
  _Atomic uint64_t *w = word_of(p, false, &seg, &tp, &page);
  if (!w) return;
  uint64_t v = atomic_load_explicit(w, memory_order_relaxed);
  if (!v) return;
  atomic_store_explicit(w, 0, memory_order_relaxed);
  if (tp) tp_forget(tp, page);
  if (WORD_EPOCH(v) != atomic_load_explicit(&trace_epoch, memory_order_relaxed)) return;
  tl_trace_t *t = tl_get();
  if (!t) return;
  uint64_t size = seg->kind == REFGC_SEGMENT_LARGE ? seg->large_requested : WORD_SIZE(v);
  account(t, -weight_bytes(size), -1);
}

bool refgc__trace_lookup(const void *p, uint32_t *id, uint64_t *size) {
  refgc_segment_t *seg;
  refgc_trace_page_t *tp;
  refgc_page_t *page;
  _Atomic uint64_t *w = word_of(p, false, &seg, &tp, &page);
  if (!w) return false;
  uint64_t v = atomic_load_explicit(w, memory_order_relaxed);
  if (!v || WORD_EPOCH(v) != atomic_load_explicit(&trace_epoch, memory_order_relaxed)) return false;
  *id = WORD_ID(v);
  *size = seg->kind == REFGC_SEGMENT_LARGE ? seg->large_requested : WORD_SIZE(v);
  return true;
}

/* ---------------------------------------------------------------------------------------------
 * Walking every trace (snapshots), under the trace lock
 * ------------------------------------------------------------------------------------------ */

typedef struct trace_walk_s {
  refgc__trace_visit_fn *fn;
  void *arg;
  uint32_t epoch;
} trace_walk_t;

/* Call `fn` on every side array of `heap`'s pages (under the trace lock). */
static void heap_tpages(refgc_heap_t *heap, void (*fn)(refgc_trace_page_t *tp, void *arg),
                        void *arg) {
  /* another thread's list: acquire pairs with refgc__segment_new's release (the list only
   * grows at its head, and a segment's `next` is never changed once it is published) */
  for (refgc_segment_t *seg = __atomic_load_n(&heap->segments, __ATOMIC_ACQUIRE); seg;
       seg = seg->next) {
    _Atomic(refgc_trace_page_t *) *table = atomic_load_explicit(&seg->trace_pages, memory_order_acquire);
    if (!table) continue;
    for (unsigned i = 0; i < seg->slot_count; i++) {
      refgc_trace_page_t *tp = atomic_load_explicit(&table[i], memory_order_acquire);
      if (tp) fn(tp, arg);
    }
  }
}

static void trace_walk_tpage(refgc_trace_page_t *tp, void *arg) {
  trace_walk_t *w = arg;
  for (uint32_t b = 0; b < tp->capacity; b++) {
    uint64_t v = atomic_load_explicit(&tp->slot[b], memory_order_relaxed);
    if (!v || WORD_EPOCH(v) != w->epoch) continue;
    w->fn(tp->start + (size_t)b * tp->block_size, WORD_SIZE(v), WORD_ID(v), tp->object, w->arg);
  }
}

static void trace_walk_heap(refgc_heap_t *heap, void *arg) { heap_tpages(heap, trace_walk_tpage, arg); }

static void trace_walk_large(refgc_segment_t *seg, void *arg) {
  trace_walk_t *w = arg;
  uint64_t v = atomic_load_explicit(&seg->large_trace, memory_order_acquire);
  if (!v || WORD_EPOCH(v) != w->epoch) return;
  w->fn((uint8_t *)seg + seg->large_offset, seg->large_requested, WORD_ID(v), seg->large_object,
        w->arg);
}

void refgc__trace_walk(refgc__trace_visit_fn *fn, void *arg) {
  if (!atomic_load(&tracing)) return;
  pthread_mutex_lock(&trace_lock);
  trace_walk_t w = {fn, arg, atomic_load(&trace_epoch)};
  refgc__heaps_foreach(trace_walk_heap, &w);
  refgc__large_foreach(trace_walk_large, &w);
  pthread_mutex_unlock(&trace_lock);
}

/* Zero every word (epoch wrap-around), under the trace lock. */
static void trace_zero_tpage(refgc_trace_page_t *tp, void *arg) {
  (void)arg;
  for (uint32_t b = 0; b < tp->capacity; b++)
    atomic_store_explicit(&tp->slot[b], 0, memory_order_relaxed);
  atomic_store_explicit(&tp->recorded, 0, memory_order_relaxed);
  atomic_store_explicit(&tp->remote, 0, memory_order_relaxed);
}

static void trace_zero_heap(refgc_heap_t *heap, void *arg) { heap_tpages(heap, trace_zero_tpage, arg); }

static void trace_zero_large(refgc_segment_t *seg, void *arg) {
  (void)arg;
  atomic_store_explicit(&seg->large_trace, 0, memory_order_relaxed);
}

/* ---------------------------------------------------------------------------------------------
 * Which return addresses are refgc's own: call each entry point once from here
 * ------------------------------------------------------------------------------------------ */


static void own_add(void *ra) {
  if (!ra || is_own(ra) || atomic_load(&own_count) >= OWN_MAX) return;
  size_t j = own_slot(ra);
  while (own_set[j]) j = (j + 1) & (OWN_SET - 1);
  own_set[j] = ra;
  atomic_fetch_add(&own_count, 1);
}

static const refgc_type_t *calib_type, *calib_var_type;
static int calib_depth;

static void calib_traverse(refgc_object_t *self, refgc_visit_fn *visit, void *arg) {
  (void)self, (void)visit, (void)arg;
}

/* One entry point, called from here: everything captured before our own frame is refgc's. */
__attribute__((noinline)) static void calib_one(int which) {
  void *here = __builtin_return_address(0); /* in calibrate(), after the call to us */
  void *buf[CAPTURE_BUF];
  calib_out = buf;
  calib_n = 0;
  void *p = NULL, *q;
  refgc_object_t *o = NULL;
  switch (which) {
    case 0: p = refgc_malloc(24); break;
    case 1: p = refgc_malloc((size_t)1 << 20); break;
    case 2: p = refgc_calloc(3, 8); break;
    case 3: p = refgc_aligned_alloc(64, 100); break;
    case 4:
      q = refgc_malloc(8);
      p = refgc_realloc(q, 4000);
      if (!p) refgc_free(q);
      break;
    case 5: o = refgc_new(calib_type); break;
    case 6: o = refgc_new_var(calib_var_type, 3); break;
    case 7: o = refgc_new_var(calib_var_type, 40000); break;
    case 8: p = refgc_realloc(NULL, 40); break; /* its own call of refgc_malloc */
    default: break;
  }
  __asm__ volatile("" ::: "memory");
  int n = calib_n;
  /* buf: [refgc frames ..., the frame in calib_one, `here` (calibrate), ...] */
  for (int i = 0; i < n; i++) {
    if (buf[i] == here) {
      for (int k = 0; k + 1 < i; k++) own_add(buf[k]);
      if (i - 1 > calib_depth) calib_depth = i - 1;
      break;
    }
  }
  refgc_free(p);
  if (o) refgc_decref(o);
}

__attribute__((noinline)) static void calibrate(void) {
  if (!calib_type) {
    /* leaf types: creating them never depends on the collector's budget */
    refgc_type_spec_t spec = {REFGC_TYPE_SPEC_VERSION, REFGC_TYPE_LEAF, "refgc.calibration", 24, 0,
                              calib_traverse, NULL, NULL, NULL, 0};
    calib_type = refgc_type_register(&spec);
    spec.item_size = 8;
    spec.name = "refgc.calibration_var";
    calib_var_type = refgc_type_register(&spec);
  }
  calibrating = 1;
  calib_depth = 0;
  for (int i = 0; i < 18; i++) calib_one(i % 9); /* twice: a first call may set up state */
  calibrating = 0;
  /* frames of ours an allocation can have in front, with room for paths calibration missed */
  atomic_store(&own_depth, calib_depth + 4 < 22 ? calib_depth + 4 : 22);
  __asm__ volatile("" ::: "memory");
}

/* ---------------------------------------------------------------------------------------------
 * Series and periodic snapshots
 * ------------------------------------------------------------------------------------------ */

uint64_t refgc__rss_bytes(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  if (!f) return 0;
  unsigned long size = 0, res = 0;
  int ok = fscanf(f, "%lu %lu", &size, &res);
  fclose(f);
  return ok == 2 ? (uint64_t)res * (uint64_t)sysconf(_SC_PAGESIZE) : 0;
}

double refgc__trace_clock(void) {
  return (double)(refgc__os_now_ns() - clock_start_ns) / 1e9;
}

void refgc_trace_sample_now(void) {
  refgc__global_init();
  refgc_heap_stats_t hs;
  hs.size = sizeof hs;
  refgc_heap_stats(&hs);
  refgc_series_point_t pt = {refgc__trace_clock(), refgc__rss_bytes(), 0, hs.in_use, hs.committed};
  size_t cur;
  refgc_trace_get_memory(&cur, NULL);
  pt.traced = cur;
  pthread_mutex_lock(&series_lock);
  if (!series) {
    series = tmalloc(SERIES_CAP * sizeof *series);
    series_head = series_len = 0;
  }
  if (series) {
    series[(series_head + series_len) % SERIES_CAP] = pt;
    if (series_len < SERIES_CAP)
      series_len++;
    else
      series_head = (series_head + 1) % SERIES_CAP;
  }
  pthread_mutex_unlock(&series_lock);
}

size_t refgc__trace_series_copy(refgc_series_point_t **out) {
  pthread_mutex_lock(&series_lock);
  size_t n = series_len;
  refgc_series_point_t *v = n ? malloc(n * sizeof *v) : NULL;
  if (v)
    for (size_t i = 0; i < n; i++) v[i] = series[(series_head + i) % SERIES_CAP];
  else
    n = 0;
  pthread_mutex_unlock(&series_lock);
  *out = v;
  return n;
}

static void write_periodic(void) {
  int expected = 0;
  if (!snap_path || !atomic_compare_exchange_strong(&snap_busy, &expected, 1)) return;
  unsigned seq = atomic_fetch_add(&snap_seq, 1) + 1;
  size_t len = strlen(snap_path) + 16;
  char *path = malloc(len);
  if (path) {
    snprintf(path, len, "%s.%u", snap_path, seq);
    refgc_snapshot_t *s = refgc_snapshot_take(0);
    if (s && refgc_snapshot_save(s, path) != 0)
      fprintf(stderr, "refgc: REFGC_TRACE_EVERY: %s\n", refgc_snapshot_error());
    refgc_snapshot_free(s);
    free(path);
  }
  atomic_store(&snap_busy, 0);
}

static void periodic(tl_trace_t *t) {
  (void)t;
  uint64_t now = refgc__os_now_ns();
  uint64_t due = atomic_load_explicit(&series_due_ns, memory_order_relaxed);
  if (now >= due && atomic_compare_exchange_strong(&series_due_ns, &due, now + series_interval_ns))
    refgc_trace_sample_now();
  if (!snap_path) return;
  bool write = false;
  if (every_ms) {
    uint64_t next = atomic_load_explicit(&next_snap_ns, memory_order_relaxed);
    if (now >= next &&
        atomic_compare_exchange_strong(&next_snap_ns, &next, now + every_ms * 1000000ull))
      write = true;
  }
  if (every_bytes) {
    size_t cur_u;
    refgc_trace_get_memory(&cur_u, NULL);
    int64_t cur = (int64_t)cur_u;
    int64_t mark = atomic_load_explicit(&snap_mark_bytes, memory_order_relaxed);
    int64_t d = cur - mark;
    if ((uint64_t)(d < 0 ? -d : d) >= every_bytes &&
        atomic_compare_exchange_strong(&snap_mark_bytes, &mark, cur))
      write = true;
  }
  if (write) write_periodic();
}

/* ---------------------------------------------------------------------------------------------
 * Public API
 * ------------------------------------------------------------------------------------------ */

/* Zero every thread's counters and the peak (start, stop). */
static void counters_zero(void) {
  pthread_mutex_lock(&tl_lock);
  for (tl_trace_t *t = tl_all; t; t = t->next) {
    atomic_store_explicit(&t->bytes, 0, memory_order_relaxed);
    atomic_store_explicit(&t->blocks, 0, memory_order_relaxed);
    atomic_store_explicit(&t->high, 0, memory_order_relaxed);
  }
  pthread_mutex_unlock(&tl_lock);
  atomic_fetch_add_explicit(&tl_gen, 1, memory_order_relaxed);
  atomic_store(&traced_peak, 0);
}

int refgc_trace_start_sampled(int frames, size_t mean_bytes, uint64_t seed) {
  refgc__global_init();
  if (frames < 1 || frames > REFGC_TRACE_MAX_FRAMES) return REFGC_EINVAL;
  static pthread_mutex_t start_lock = PTHREAD_MUTEX_INITIALIZER;
  pthread_mutex_lock(&start_lock);
  if (atomic_load(&tracing)) {
    pthread_mutex_unlock(&start_lock);
    return REFGC_EBUSY;
  }
  if (!refgc__heap_get()) {
    pthread_mutex_unlock(&start_lock);
    return REFGC_ENOMEM;
  }
  trace_frames = frames;
  sample_mean = mean_bytes;
  sample_seed = seed ? seed : refgc__os_now_ns() * 0x9E3779B97F4A7C15ull;
  atomic_store(&series_due_ns, 0);
  pthread_mutex_lock(&series_lock); /* a new start begins a new series (trace.h) */
  series_head = series_len = 0;
  pthread_mutex_unlock(&series_lock);
  /* learn refgc's own frames: this thread's allocations come to the hook, none is recorded */
  if (atomic_load(&own_count) == 0) {
    atomic_store_explicit(&refgc__tl_heap->budget, 0, memory_order_relaxed);
    calibrate();
  }
  atomic_store(&thread_serial, 0); /* the same seed, the same intervals, in every session */
  atomic_fetch_add_explicit(&trace_session, 1, memory_order_release); /* fresh thread state */
  counters_zero();
  atomic_store(&refgc__trace_all, mean_bytes == 0);
  atomic_store(&tracing, 1);
  budgets_zero(); /* every thread takes the generic path next, which sets its budget */
  pthread_mutex_unlock(&start_lock);
  return 0;
}

int refgc_trace_start(int frames) { return refgc_trace_start_sampled(frames, 0, 0); }

int refgc_trace_stop(void) {
  refgc__global_init();
  if (!atomic_exchange(&tracing, 0)) return REFGC_EINVAL;
  atomic_store(&refgc__trace_all, 0);
  budgets_zero();
  pthread_mutex_lock(&trace_lock);
  uint32_t e = atomic_load(&trace_epoch) + 1;
  if (e > 255) {
    refgc__heaps_foreach(trace_zero_heap, NULL);
    refgc__large_foreach(trace_zero_large, NULL);
    e = 1;
  }
  atomic_store(&trace_epoch, e);
  pthread_mutex_unlock(&trace_lock);
  counters_zero();
  return 0;
}

int refgc_trace_is_tracing(void) { return atomic_load_explicit(&tracing, memory_order_relaxed); }
int refgc_trace_frames(void) { return refgc_trace_is_tracing() ? trace_frames : 0; }
size_t refgc_trace_sample_bytes(void) { return refgc_trace_is_tracing() ? (size_t)sample_mean : 0; }

void refgc_trace_get_memory(size_t *current, size_t *peak) {
  int64_t c;
  pthread_mutex_lock(&tl_lock);
  sum_locked(&c, NULL);
  pthread_mutex_unlock(&tl_lock);
  peak_max(c);
  int64_t p = atomic_load_explicit(&traced_peak, memory_order_relaxed);
  if (current) *current = c > 0 ? (size_t)c : 0;
  if (peak) *peak = p > 0 ? (size_t)p : 0;
}

size_t refgc_trace_count(void) {
  int64_t n;
  pthread_mutex_lock(&tl_lock);
  sum_locked(NULL, &n);
  pthread_mutex_unlock(&tl_lock);
  return n > 0 ? (size_t)n : 0;
}

void refgc_trace_reset_peak(void) {
  int64_t c;
  pthread_mutex_lock(&tl_lock);
  sum_locked(&c, NULL);
  for (tl_trace_t *t = tl_all; t; t = t->next)
    atomic_store_explicit(&t->high, atomic_load_explicit(&t->bytes, memory_order_relaxed),
                          memory_order_relaxed);
  atomic_store(&traced_peak, c);
  pthread_mutex_unlock(&tl_lock);
}

size_t refgc_trace_memory(void) {
  return atomic_load_explicit(&tracer_mem, memory_order_relaxed) + refgc__symbols_memory();
}

int refgc_trace_traceback(const void *p, void **frames, int max) {
  uint32_t id;
  uint64_t size;
  if (!p || !refgc_trace_is_tracing() || !refgc__trace_lookup(p, &id, &size)) return 0;
  tb_t *tb = tb_get(id);
  if (!tb) return 0;
  int n = (int)tb->n;
  if (frames && max > 0) memcpy(frames, tb->frames, (size_t)(n < max ? n : max) * sizeof(void *));
  return n;
}

/* ---------------------------------------------------------------------------------------------
 * Start-up configuration (REFGC_TRACE...), read by options.c
 * ------------------------------------------------------------------------------------------ */

static int autostart_frames;
static uint64_t autostart_mean, autostart_seed;

static void snapshot_at_exit(void) {
  refgc_snapshot_t *s = refgc_snapshot_take(REFGC_SNAPSHOT_GRAPH);
  if (!s) s = refgc_snapshot_take(0);
  if (s && refgc_snapshot_save(s, snap_path) != 0)
    fprintf(stderr, "refgc: REFGC_TRACE_FILE: %s\n", refgc_snapshot_error());
  refgc_snapshot_free(s);
}

static bool env_u64(const char *name, uint64_t max, uint64_t *out) {
  const char *s = getenv(name);
  if (!s || !*s) return false;
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || *end || *s == '-' || v > max) {
    fprintf(stderr, "refgc: ignoring %s=%s: expected a whole number from 0 to %llu\n", name, s,
            (unsigned long long)max);
    return false;
  }
  *out = v;
  return true;
}

void refgc__trace_options_init(void) {
  clock_start_ns = refgc__os_now_ns(); /* the series' and snapshots' clock: from start-up */
  const char *unwind = getenv("REFGC_TRACE_UNWIND");
  if (unwind && *unwind) {
    if (strcmp(unwind, "dwarf") == 0)
      unwind_dwarf = 1;
    else if (strcmp(unwind, "fp") != 0)
      fprintf(stderr, "refgc: ignoring REFGC_TRACE_UNWIND=%s: expected fp or dwarf\n", unwind);
  }
  uint64_t v;
  if (env_u64("REFGC_TRACE_SERIES_MS", 3600000, &v) && v) series_interval_ns = v * 1000000ull;
  const char *path = getenv("REFGC_TRACE_FILE");
  if (path && *path) {
    snap_path = strdup(path);
    if (snap_path) atexit(snapshot_at_exit);
  }
  env_u64("REFGC_TRACE_EVERY_MS", 86400000ull, &every_ms);
  env_u64("REFGC_TRACE_EVERY_BYTES", UINT64_MAX >> 1, &every_bytes);
  if ((every_ms || every_bytes) && !snap_path)
    fprintf(stderr, "refgc: REFGC_TRACE_EVERY_MS/_BYTES need REFGC_TRACE_FILE (the path prefix)\n");
  uint64_t frames = 0, mean = 0, seed = 0;
  if (!env_u64("REFGC_TRACE", REFGC_TRACE_MAX_FRAMES, &frames) || frames == 0) return;
  env_u64("REFGC_TRACE_SAMPLE", UINT64_MAX >> 1, &mean);
  env_u64("REFGC_TRACE_SEED", UINT64_MAX, &seed);
  autostart_frames = (int)frames;
  autostart_mean = mean;
  autostart_seed = seed;
}

void refgc__trace_autostart(void) {
  if (!autostart_frames) return;
  int err = refgc_trace_start_sampled(autostart_frames, (size_t)autostart_mean, autostart_seed);
  if (err) fprintf(stderr, "refgc: REFGC_TRACE: cannot start tracing: %s\n", refgc_strerror(err));
  autostart_frames = 0;
}
