/* refgc — thread heaps: creation and adoption, the allocation slow path, remote frees,
 * retiring and purging pages, explicit collection.
 *
 * Each thread allocates from its own heap through a thread-local pointer, with no lock. A new
 * thread's pointer starts at `refgc__empty_heap`, whose current pages have no free block, so
 * the first allocation lands in the slow path, which creates the real heap (or adopts one
 * abandoned by a thread that exited). Heaps are never destroyed: their segments hold page
 * descriptors that other threads may still push remote frees to, and adopting the whole heap
 * reuses its memory without rewriting any page's owner.
 *
 * The slow path (`refgc__heap_alloc_slow`), in order:
 *   1. refill the current page (local frees, remote frees, holes, carving);
 *   2. the page is full: take remote frees reported on the pending stack, honour a collect
 *      request, purge expired free slots;
 *   3. take the fullest page from the class's bins;
 *   4. take a free slot from the fullest segment, or map a new segment.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "prim/prim.h"

REFGC_TLS_MODEL _Thread_local refgc_heap_t *refgc__tl_heap = &refgc__empty_heap;
#define EMPTY1 {&refgc__empty_page, 0, 0, 0}
#define EMPTY8 EMPTY1, EMPTY1, EMPTY1, EMPTY1, EMPTY1, EMPTY1, EMPTY1, EMPTY1
/* Statically initialised, so that an allocation made before any constructor runs is safe. */
#define EMPTY64 EMPTY8, EMPTY8, EMPTY8, EMPTY8, EMPTY8, EMPTY8, EMPTY8, EMPTY8
refgc_heap_t refgc__empty_heap = {.cls = {EMPTY64, EMPTY64}};
refgc_options_t refgc__opt = {0, 8, 50, 0};
refgc_global_stats_t refgc__gstats;

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t heaps_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_key_t heap_key;
static refgc_heap_t *heaps_all;       /* every heap, under heaps_lock */
static refgc_heap_t *heaps_abandoned; /* heaps of exited threads, under heaps_lock */
static atomic_uint collect_epoch;     /* bumped by refgc_heap_collect */

/* Slow paths between two looks at the clock for the purge queue. */
#define PURGE_CHECK_INTERVAL 32

/* ---------------------------------------------------------------------------------------------
 * Committed-memory accounting
 * ------------------------------------------------------------------------------------------ */

void refgc__committed_add(size_t n) {
  size_t now = atomic_fetch_add_explicit(&refgc__gstats.committed, n, memory_order_relaxed) + n;
  size_t peak = atomic_load_explicit(&refgc__gstats.committed_peak, memory_order_relaxed);
  while (now > peak && !atomic_compare_exchange_weak_explicit(&refgc__gstats.committed_peak,
                                                              &peak, now, memory_order_relaxed,
                                                              memory_order_relaxed)) {
  }
}

void refgc__committed_sub(size_t n) {
  atomic_fetch_sub_explicit(&refgc__gstats.committed, n, memory_order_relaxed);
}

/* ---------------------------------------------------------------------------------------------
 * Process and thread set-up
 * ------------------------------------------------------------------------------------------ */

static void heap_thread_done(void *arg);

static void empty_heap_init(refgc_heap_t *heap) {
  for (unsigned c = 0; c < REFGC_NUM_LANES; c++) heap->cls[c].current = &refgc__empty_page;
}

/* fork(): no lock may be held by a thread that does not exist in the child, and the heaps of
 * those threads must not be lost. The child abandons them, so its threads adopt them. */
static void atfork_prepare(void) {
  pthread_mutex_lock(&heaps_lock);
  refgc__large_lock(true);
}

static void atfork_parent(void) {
  refgc__large_lock(false);
  pthread_mutex_unlock(&heaps_lock);
}

static void atfork_child(void) {
  refgc__large_lock(false);
  refgc_heap_t *self = refgc__tl_heap;
  for (refgc_heap_t *h = heaps_all; h; h = h->all_next) {
    if (h == self || h->abandoned) continue;
    h->abandoned = true;
    h->abandoned_next = heaps_abandoned;
    heaps_abandoned = h;
    atomic_fetch_add_explicit(&refgc__gstats.heaps_abandoned, 1, memory_order_relaxed);
  }
  pthread_mutex_unlock(&heaps_lock);
}

static void global_init_once(void) {
  refgc__options_init();
  uintptr_t seed = (uintptr_t)&seed ^ (uintptr_t)refgc__prim_now_ns() ^ (uintptr_t)&global_once;
  seed ^= seed >> 29;
  seed *= (uintptr_t)0x9E3779B97F4A7C15ull;
  refgc__cookie = seed | 1;
  pthread_key_create(&heap_key, heap_thread_done);
  pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

void refgc__global_init(void) {
  pthread_once(&global_once, global_init_once);
}

#if defined(__GNUC__)
/* Read the environment before main() so that debug mode is fixed before the first block. */
__attribute__((constructor)) static void refgc_constructor(void) {
  refgc__global_init();
  refgc__trace_autostart(); /* REFGC_TRACE: after the heap is ready, before main() */
}
#endif

refgc_heap_t *refgc__heap_get(void) {
  refgc_heap_t *heap = refgc__tl_heap;
  if (heap != &refgc__empty_heap) return heap;
  refgc__global_init();
  pthread_mutex_lock(&heaps_lock);
  heap = heaps_abandoned;
  if (heap) {
    heaps_abandoned = heap->abandoned_next;
    heap->abandoned_next = NULL;
    heap->abandoned = false;
    atomic_fetch_sub_explicit(&refgc__gstats.heaps_abandoned, 1, memory_order_relaxed);
  } else {
    size_t size = (sizeof(refgc_heap_t) + REFGC_OS_PAGE_SIZE - 1) & ~(REFGC_OS_PAGE_SIZE - 1);
    heap = refgc__os_map(size, REFGC_OS_PAGE_SIZE);
    if (!heap) {
      pthread_mutex_unlock(&heaps_lock);
      return NULL;
    }
    empty_heap_init(heap);
    heap->map_size = size;
    heap->collect_epoch = atomic_load(&collect_epoch);
    heap->all_next = heaps_all;
    heaps_all = heap;
    atomic_fetch_add_explicit(&refgc__gstats.heaps, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&refgc__gstats.metadata, size, memory_order_relaxed);
    refgc__committed_add(size);
  }
  pthread_mutex_unlock(&heaps_lock);
  refgc__tl_heap = heap;
  pthread_setspecific(heap_key, heap);
  refgc__heap_drain_pending(heap);
  return heap;
}

/* Thread exit: the heap is abandoned, with its pages and blocks as they are. Blocks that other
 * threads free meanwhile go to the pages' remote lists; the next thread that starts adopts the
 * heap and takes them, and `refgc_heap_collect` gives its empty pages back to the OS. */
static void heap_thread_done(void *arg) {
  refgc_heap_t *heap = arg;
  refgc__tl_heap = &refgc__empty_heap;
  if (!heap || heap == &refgc__empty_heap) return;
  refgc__heap_drain_pending(heap);
  refgc__heap_purge(heap, false);
  pthread_mutex_lock(&heaps_lock);
  heap->abandoned = true;
  heap->abandoned_next = heaps_abandoned;
  heaps_abandoned = heap;
  atomic_fetch_add_explicit(&refgc__gstats.heaps_abandoned, 1, memory_order_relaxed);
  pthread_mutex_unlock(&heaps_lock);
}

void refgc__heaps_foreach(void (*fn)(refgc_heap_t *, void *), void *arg) {
  pthread_mutex_lock(&heaps_lock);
  for (refgc_heap_t *h = heaps_all; h; h = h->all_next) fn(h, arg);
  pthread_mutex_unlock(&heaps_lock);
}

/* ---------------------------------------------------------------------------------------------
 * Remote frees, retiring, purging
 * ------------------------------------------------------------------------------------------ */

void refgc__heap_drain_pending(refgc_heap_t *heap) {
  if (!atomic_load_explicit(&heap->pending, memory_order_relaxed)) return;
  refgc_page_t *page = atomic_exchange_explicit(&heap->pending, NULL, memory_order_acquire);
  while (page) {
    refgc_page_t *next = page->pending_next;
    atomic_store_explicit(&page->queued, 0, memory_order_seq_cst);
    if (page->start) {
      refgc__page_collect_remote(page);
      if (page->bin != REFGC_BIN_CURRENT && page->used <= page->rebin_at) refgc__page_rebin(page);
    }
    page = next;
  }
}

void refgc__heap_retire_page(refgc_heap_t *heap, refgc_page_t *page) {
  if (page->bin < REFGC_BINS) refgc__bin_remove(heap, page);
  if (page->bin == REFGC_BIN_CURRENT) heap->cls[page->cls].current = &refgc__empty_page;
  refgc_stat_add(heap->class_pages[page->cls], (size_t)-1);
  refgc_stat_add(heap->class_capacity[page->cls], (size_t)0 - page->capacity);
  refgc__trace_page_retired(page);
  page->start = NULL;
  refgc__set_carved_end(page, NULL);
  page->free = page->local_free = NULL;
  page->used = 0;
  page->carved = page->capacity = 0;
  page->bin = REFGC_BIN_FULL;
  page->rebin_at = 0;
  refgc__segment_release_slot(page);
  if (refgc__opt.purge_delay_ms == 0) refgc__heap_purge(heap, false);
}

void refgc__heap_purge(refgc_heap_t *heap, bool force) {
  if (!heap->purge_head) return;
  if (!force && refgc__opt.purge_delay_ms < 0) return;
  uint32_t now = refgc__os_now_ms();
  uint32_t delay = force ? 0 : (uint32_t)refgc__opt.purge_delay_ms;
  while (heap->purge_head && (uint32_t)(now - heap->purge_head->empty_since_ms) >= delay)
    refgc__segment_purge_slot(heap->purge_head);
}

/* Everything `refgc_heap_collect` does to one heap; the caller owns the heap. */
static size_t heap_collect_one(refgc_heap_t *heap) {
  size_t released = 0;
  refgc_purge_acc_t acc = {NULL, 0}; /* holes of neighbouring pages merge into one call */
  refgc__heap_drain_pending(heap);
  for (refgc_segment_t *seg = heap->segments; seg; seg = seg->next) {
    for (unsigned i = 0; i < seg->slot_count; i++) {
      refgc_page_t *page = &seg->pages[i];
      if (!page->start) continue;
      refgc__page_collect_remote(page);
      if (page->used == 0) {
        refgc__heap_retire_page(heap, page);
        continue;
      }
      if (page->bin != REFGC_BIN_CURRENT && page->used <= page->rebin_at) refgc__page_rebin(page);
      released += refgc__page_punch_holes(page, &acc);
    }
  }
  refgc__purge_flush(&acc);
  refgc__heap_purge(heap, true);
  return released;
}

void refgc_heap_collect(void) {
  refgc__global_init();
  atomic_fetch_add_explicit(&collect_epoch, 1, memory_order_relaxed);
  refgc_heap_t *heap = refgc__tl_heap;
  if (heap != &refgc__empty_heap) {
    heap->collect_epoch = atomic_load_explicit(&collect_epoch, memory_order_relaxed);
    heap_collect_one(heap);
  }
  pthread_mutex_lock(&heaps_lock);
  for (refgc_heap_t *h = heaps_abandoned; h; h = h->abandoned_next) heap_collect_one(h);
  pthread_mutex_unlock(&heaps_lock);
}

/* ---------------------------------------------------------------------------------------------
 * The allocation slow path
 * ------------------------------------------------------------------------------------------ */

static void heap_set_current(refgc_heap_t *heap, refgc_page_t *page) {
  page->bin = REFGC_BIN_CURRENT;
  page->rebin_at = 0;
  heap->cls[page->cls].current = page;
}

/* Sample the in-use peak: called when the heap grows by a page. */
static void heap_note_peak(refgc_heap_t *heap) {
  size_t in_use = 0;
  for (unsigned c = 0; c < REFGC_NUM_LANES; c++) {
    uint64_t a = heap->cls[c].allocs, f = heap->cls[c].frees;
    in_use += (size_t)(a - f) * refgc__classes[REFGC_LANE_CLASS(c)].block_size;
  }
  if (in_use > heap->in_use_peak) heap->in_use_peak = in_use;
}

/* Find a page of class `cls` with a free block and make it current; NULL when out of memory. */
static refgc_page_t *heap_find_page(refgc_heap_t *heap, unsigned cls) {
  static _Thread_local unsigned slow_count;
  refgc_page_t *page = heap->cls[cls].current;
  if (page != &refgc__empty_page) {
    if (refgc__page_refill(page)) return page;
    refgc__page_set_full(page);
    heap->cls[cls].current = &refgc__empty_page;
  }
  refgc__heap_drain_pending(heap);
  unsigned epoch = atomic_load_explicit(&collect_epoch, memory_order_relaxed);
  if (refgc_unlikely(epoch != heap->collect_epoch)) {
    heap->collect_epoch = epoch;
    heap_collect_one(heap);
  } else if (++slow_count % PURGE_CHECK_INTERVAL == 0) {
    refgc__heap_purge(heap, false);
  }
  for (unsigned b = REFGC_BINS; b-- > 0;) {
    page = heap->bins[cls][b];
    if (!page) continue;
    refgc__bin_remove(heap, page);
    heap_set_current(heap, page);
    if (page->free || refgc__page_refill(page)) return page;
    /* cannot happen: a binned page has a free block somewhere; treat it as full */
    refgc__page_set_full(page);
    heap->cls[cls].current = &refgc__empty_page;
  }
  refgc_segment_kind_t kind = REFGC_LANE_CLASS(cls) < REFGC_NUM_SMALL_CLASSES
                                  ? REFGC_SEGMENT_SMALL
                                  : REFGC_SEGMENT_MEDIUM;
  page = refgc__segment_take_slot(heap, kind);
  if (!page) return NULL;
  refgc__page_init(page, heap, cls);
  heap_set_current(heap, page);
  refgc__page_refill(page);
  heap_note_peak(heap);
  return page;
}

void *refgc__heap_alloc_slow(refgc_heap_t *heap, unsigned cls, size_t size) {
  if (heap == &refgc__empty_heap) {
    heap = refgc__heap_get();
    if (!heap) {
      errno = ENOMEM;
      return NULL;
    }
  }
  refgc_page_t *page = heap->cls[cls].current;
  if (!page->free) {
    page = heap_find_page(heap, cls);
    if (!page) {
      errno = ENOMEM;
      return NULL;
    }
  }
  refgc_block_t *b = page->free;
  page->free = refgc__block_next(b);
  page->used++;
  refgc_stat_add(heap->cls[cls].allocs, 1);
  refgc_stat_add(heap->cls[cls].requested, size);
  return b;
}
