/* refgc — prototypes shared between the heap's source files, and the small inline helpers
 * that the fast paths of several files use. Grouped by the file that defines them.
 */
#ifndef REFGC_INTERNAL_H
#define REFGC_INTERNAL_H

#include "track.h"
#include "types.h"

/* Owner-only statistics counters: a plain add on the owner's thread. Other threads read them
 * with `refgc_stat_get` (see refgc_heap_class_t for why the race is accepted). */
#define refgc_stat_add(field, n) ((field) += (n))
#define refgc_stat_get(field) refgc__stat_read(&(field), sizeof(field))
#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define REFGC_NO_TSAN __attribute__((no_sanitize("thread")))
#endif
#endif
#if !defined(REFGC_NO_TSAN) && defined(__SANITIZE_THREAD__)
#define REFGC_NO_TSAN __attribute__((no_sanitize_thread))
#endif
#ifndef REFGC_NO_TSAN
#define REFGC_NO_TSAN
#endif
/* Read a counter that its owner thread may be updating: one aligned word-sized load. */
REFGC_NO_TSAN static inline uint64_t refgc__stat_read(const void *p, size_t size) {
  return size == 8 ? *(const volatile uint64_t *)p : *(const volatile uint32_t *)p;
}

/* ---------------------------------------------------------------------------------------------
 * os.c — the OS layer: reserve, give back and release address space
 * ------------------------------------------------------------------------------------------ */

/* Map `size` bytes (a multiple of the OS page) aligned to `align` (a power of two ≥ the OS
 * page), readable and writable, zero-filled. NULL when the OS refuses or the injected failure
 * counter says so. */
REFGC_INTERNAL void *refgc__os_map(size_t size, size_t align);
/* Unmap what `refgc__os_map` returned (or part of it on OS page boundaries). */
REFGC_INTERNAL void refgc__os_unmap(void *p, size_t size);
/* Tell the OS that [p, p+size) may be discarded; it reads back as zero when touched again. */
REFGC_INTERNAL void refgc__os_purge(void *p, size_t size);
/* Monotonic time in nanoseconds (coarse: a few ms resolution is enough). */
REFGC_INTERNAL uint64_t refgc__os_now_ns(void);
/* The same in milliseconds, truncated to 32 bits (compare by unsigned difference). */
REFGC_INLINE uint32_t refgc__os_now_ms(void) { return (uint32_t)(refgc__os_now_ns() / 1000000u); }

/* ---------------------------------------------------------------------------------------------
 * sizeclass.c
 * ------------------------------------------------------------------------------------------ */

REFGC_INTERNAL extern const refgc_class_info_t refgc__classes[REFGC_NUM_CLASSES];
/* Size class of a block of `size` bytes, size ≤ REFGC_MEDIUM_MAX. */
REFGC_INTERNAL unsigned refgc__size_class(size_t size);

/* ---------------------------------------------------------------------------------------------
 * segment.c — segments, the segment map
 * ------------------------------------------------------------------------------------------ */

REFGC_INTERNAL extern uintptr_t refgc__cookie;
REFGC_INTERNAL extern _Atomic uint64_t refgc__segmap[(size_t)1 << (REFGC_SEGMAP_BITS - 6)];

/* The segment that would contain `p`, or NULL when no segment of ours is there. O(1). */
REFGC_INLINE refgc_segment_t *refgc__segment_of(const void *p) {
  uintptr_t a = (uintptr_t)p;
  if (refgc_unlikely((a >> REFGC_ADDRESS_BITS) != 0)) return NULL;
  uintptr_t idx = a >> REFGC_SEGMENT_SHIFT;
  uint64_t word = atomic_load_explicit(&refgc__segmap[idx >> 6], memory_order_relaxed);
  if (refgc_unlikely(((word >> (idx & 63)) & 1) == 0)) return NULL;
  return (refgc_segment_t *)(a & ~(uintptr_t)REFGC_SEGMENT_MASK);
}

REFGC_INTERNAL void refgc__segmap_set(const void *segment, bool on);
/* A fresh small or medium segment for `heap`; NULL when out of memory. */
REFGC_INTERNAL refgc_segment_t *refgc__segment_new(refgc_heap_t *heap, refgc_segment_kind_t kind);
/* Take a free slot of a segment of `heap` of the given kind, preferring resident slots and
 * the fullest segment. Returns the slot's page descriptor (not yet initialised), or NULL. */
REFGC_INTERNAL refgc_page_t *refgc__segment_take_slot(refgc_heap_t *heap, refgc_segment_kind_t kind);
/* Return a slot to its segment: it becomes free and dirty (resident). */
REFGC_INTERNAL void refgc__segment_release_slot(refgc_page_t *page);
/* Give a free slot's memory back to the OS. */
REFGC_INTERNAL void refgc__segment_purge_slot(refgc_page_t *page);
/* First byte and size of a slot's memory. */
REFGC_INTERNAL uint8_t *refgc__slot_start(const refgc_segment_t *seg, unsigned slot);
REFGC_INTERNAL size_t refgc__slot_size(const refgc_segment_t *seg, unsigned slot);
REFGC_INLINE refgc_segment_t *refgc__page_segment(const refgc_page_t *page) {
  return (refgc_segment_t *)((uintptr_t)page & ~(uintptr_t)REFGC_SEGMENT_MASK);
}
REFGC_INTERNAL int refgc__segment_check(refgc_segment_t *seg);

/* ---------------------------------------------------------------------------------------------
 * page.c — pages: carving, collecting free lists, bins, giving back OS pages
 * ------------------------------------------------------------------------------------------ */

/* Free-list links, with the block's link word opened for ASan/valgrind during the access. */
REFGC_INLINE refgc_block_t *refgc__block_next(refgc_block_t *b) {
  refgc_track_open(b, sizeof(refgc_block_t));
  refgc_block_t *n = b->next;
  refgc_track_close(b, sizeof(refgc_block_t));
  return n;
}
REFGC_INLINE void refgc__block_set_next(refgc_block_t *b, refgc_block_t *n) {
  refgc_track_open(b, sizeof(refgc_block_t));
  b->next = n;
  refgc_track_close(b, sizeof(refgc_block_t));
}

/* The page's carved end (relaxed: the owner may be carving while another thread reads). */
REFGC_INLINE uint8_t *refgc__carved_end(const refgc_page_t *page) {
  return atomic_load_explicit(&((refgc_page_t *)(uintptr_t)page)->carved_end, memory_order_relaxed);
}
REFGC_INLINE void refgc__set_carved_end(refgc_page_t *page, uint8_t *end) {
  atomic_store_explicit(&page->carved_end, end, memory_order_relaxed);
}

/* Index of the block containing `p` in `page`, or -1 when `p` is not the start of a carved
 * block of the page (a free slot, the segment header, or an interior pointer). */
REFGC_INLINE long refgc__page_block_index(const refgc_page_t *page, const void *p) {
  const uint8_t *b = (const uint8_t *)p;
  if (refgc_unlikely(b < page->start || b >= refgc__carved_end(page))) return -1;
  uint64_t off = (uint64_t)(b - page->start);
  uint64_t idx = (off * page->div_magic) >> 40;
  if (refgc_unlikely(idx * page->block_size != off)) return -1;
  return (long)idx;
}

REFGC_INTERNAL extern refgc_page_t refgc__empty_page;
REFGC_INTERNAL void refgc__page_init(refgc_page_t *page, refgc_heap_t *heap, unsigned cls);
/* Make at least one block available on `page->free` (collect local and remote frees, refill
 * from given-back OS pages, carve). false when the page is full. Owner only. */
REFGC_INTERNAL bool refgc__page_refill(refgc_page_t *page);
/* Move blocks freed by other threads onto the local free list; adjusts `used`. Owner only. */
REFGC_INTERNAL void refgc__page_collect_remote(refgc_page_t *page);
/* A local free made `used` fall to `rebin_at`: move the page to its new bin or retire it. */
REFGC_INTERNAL void refgc__page_rebin(refgc_page_t *page);
/* Push a block freed by a thread that does not own `page`. Lock-free. */
REFGC_INTERNAL void refgc__page_free_remote(refgc_page_t *page, refgc_block_t *block);
/* Give back to the OS the OS pages of `page` that overlap only free blocks. Owner only. */
/* Ranges to give back, merged while they are contiguous so that neighbouring pages' holes
 * cost one system call: add with refgc__purge_add, finish with refgc__purge_flush. */
typedef struct refgc_purge_acc_s {
  uint8_t *start;
  size_t len;
} refgc_purge_acc_t;
REFGC_INTERNAL void refgc__purge_add(refgc_purge_acc_t *acc, uint8_t *p, size_t n);
REFGC_INTERNAL void refgc__purge_flush(refgc_purge_acc_t *acc);
REFGC_INTERNAL size_t refgc__page_punch_holes(refgc_page_t *page, refgc_purge_acc_t *acc);
REFGC_INTERNAL int refgc__page_check(refgc_page_t *page);
REFGC_INTERNAL void refgc__bin_remove(refgc_heap_t *heap, refgc_page_t *page);
REFGC_INTERNAL void refgc__bin_insert(refgc_heap_t *heap, refgc_page_t *page);
/* Mark a page that left the current position with no free block as full. */
REFGC_INTERNAL void refgc__page_set_full(refgc_page_t *page);

/* ---------------------------------------------------------------------------------------------
 * heap.c — thread heaps
 * ------------------------------------------------------------------------------------------ */

REFGC_INTERNAL extern REFGC_TLS_MODEL _Thread_local refgc_heap_t *refgc__tl_heap;
REFGC_INTERNAL extern refgc_heap_t refgc__empty_heap;
REFGC_INTERNAL extern refgc_options_t refgc__opt;
REFGC_INTERNAL extern refgc_global_stats_t refgc__gstats;

/* The calling thread's heap, creating or adopting one; NULL when out of memory. */
REFGC_INTERNAL refgc_heap_t *refgc__heap_get(void);
/* Allocate a block of class `cls` for a request of `size` bytes when the current page has no
 * free block (counts it in the statistics; the caller tells ASan/valgrind). NULL + ENOMEM. */
REFGC_INTERNAL void *refgc__heap_alloc_slow(refgc_heap_t *heap, unsigned cls, size_t size);
/* Process the pages that other threads freed blocks into. Owner only. */
REFGC_INTERNAL void refgc__heap_drain_pending(refgc_heap_t *heap);
/* A page of `heap` became empty: give its slot back to the segment and queue it for purge. */
REFGC_INTERNAL void refgc__heap_retire_page(refgc_heap_t *heap, refgc_page_t *page);
/* Purge free slots that have been free longer than the delay (all of them when `force`). */
REFGC_INTERNAL void refgc__heap_purge(refgc_heap_t *heap, bool force);
REFGC_INTERNAL void refgc__committed_add(size_t n);
REFGC_INTERNAL void refgc__committed_sub(size_t n);
REFGC_INTERNAL void refgc__global_init(void);
/* Run `fn` on every heap under the heaps lock (stats readers). */
REFGC_INTERNAL void refgc__heaps_foreach(void (*fn)(refgc_heap_t *, void *), void *arg);

/* The small-block fast path (lane `cls`, 1 ≤ size ≤ REFGC_MEDIUM_MAX): pop the current
 * page's free list, or take the slow path. Used by alloc.c and, for objects, object.c. */
REFGC_INLINE void *refgc__heap_malloc_small(refgc_heap_t *heap, unsigned cls, size_t size) {
  refgc_heap_class_t *hc = &heap->cls[cls];
  refgc_page_t *page = hc->current;
  refgc_block_t *b = page->free;
  if (refgc_unlikely(!b)) {
    b = refgc__heap_alloc_slow(heap, cls, size);
    if (!b) return NULL;
  } else {
    page->free = refgc__block_next(b);
    page->used++;
    refgc_stat_add(hc->allocs, 1);
    refgc_stat_add(hc->requested, size);
  }
  refgc_track_malloc(b, size, refgc__classes[REFGC_LANE_CLASS(cls)].block_size);
  return b;
}

/* ---------------------------------------------------------------------------------------------
 * alloc.c — the allocation API below debug mode
 * ------------------------------------------------------------------------------------------ */

/* Allocate without debug decorations: `size` bytes aligned to `align` (≥ 16, a power of two),
 * in an object page when `object` (refgc_new's blocks), else a raw page. */
REFGC_INTERNAL void *refgc__raw_malloc(size_t size, size_t align, bool object);
/* Memory for an object of `size` bytes (debug decorations in debug mode). */
REFGC_INTERNAL void *refgc__object_malloc(size_t size);
/* Free an object's block (known valid: skips the pointer checks outside debug mode). */
REFGC_INTERNAL void refgc__object_free(void *p);
/* Usable bytes of the block that starts at `p` (raw size, before debug mode's tail), or 0
 * when `p` is not the start of a block. O(1); never reports. */
REFGC_INTERNAL size_t refgc__block_usable(const void *p);
/* Whether `p` is the start of a block in an object page (or a large object), whatever the
 * block's state. O(1); never reports. */
REFGC_INTERNAL bool refgc__is_object_block(const void *p);
/* Free a block known to be valid (`seg`, `page` from the lookup), without debug checks. */
REFGC_INTERNAL void refgc__raw_free_valid(refgc_segment_t *seg, refgc_page_t *page, void *p);
/* Usable bytes of a valid block. */
REFGC_INTERNAL size_t refgc__raw_usable(const refgc_segment_t *seg, const refgc_page_t *page,
                                        const void *p);
/* Find the segment and page of `p`; report an error for `func` and return false when `p` is
 * not the start of a block. `page` is NULL for a large block. */
REFGC_INTERNAL bool refgc__lookup(const char *func, const void *p, refgc_segment_t **seg,
                                  refgc_page_t **page);

/* ---------------------------------------------------------------------------------------------
 * large.c — blocks above REFGC_MEDIUM_MAX, one mapping each
 * ------------------------------------------------------------------------------------------ */

REFGC_INTERNAL void *refgc__large_alloc(size_t size, size_t align, bool object);
REFGC_INTERNAL void refgc__large_free(refgc_segment_t *seg);
REFGC_INTERNAL int refgc__large_check(void);
/* Call `fn` on every live large block's segment, under the large-block lock. */
REFGC_INTERNAL void refgc__large_foreach(void (*fn)(refgc_segment_t *, void *), void *arg);
/* Take or release the large-block lock (around fork). */
REFGC_INTERNAL void refgc__large_lock(bool lock);

/* ---------------------------------------------------------------------------------------------
 * debug.c — debug mode (REFGC_DEBUG)
 * ------------------------------------------------------------------------------------------ */

REFGC_INTERNAL void *refgc__debug_malloc(const char *func, size_t size, size_t align, bool zero,
                                         bool object);
REFGC_INTERNAL void refgc__debug_free(const char *func, void *p);
REFGC_INTERNAL size_t refgc__debug_usable(const char *func, const void *p);
/* Copy up to `max` frames of the allocation stack of the block at `p` (debug mode; 0 when
 * unknown). */
REFGC_INTERNAL int refgc__debug_stack(const void *p, void **out, int max);
/* Whether a debug block at `p` is live (debug mode only). */
REFGC_INTERNAL bool refgc__debug_is_live(const void *p, size_t usable);
/* Fill fresh free blocks with the freed pattern (debug mode) so that the check on allocation
 * holds for blocks that were never allocated. */
REFGC_INTERNAL void refgc__debug_fill_free(void *block, size_t block_size);

/* ---------------------------------------------------------------------------------------------
 * error.c — reporting
 * ------------------------------------------------------------------------------------------ */

/* Report an error: format the message, attach the allocation stack if given, call the
 * handler. Never allocates from the refgc heap. */
REFGC_INTERNAL void refgc__report(int code, const char *func, const void *ptr, size_t block_size,
                                  size_t requested, void *const *stack, int depth,
                                  const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 8, 9)))
#endif
    ;

/* ---------------------------------------------------------------------------------------------
 * object.c, weakref.c — objects
 * ------------------------------------------------------------------------------------------ */

typedef struct refgc_tstate_s refgc_tstate_t;
REFGC_INTERNAL void refgc__set_error(int err);
REFGC_INTERNAL extern _Atomic(refgc_type_t **) refgc__type_chunks[REFGC_MAX_TYPES / REFGC_TYPE_CHUNK];
/* The type with index `id` (of a live object's header: always registered). Lock-free: the
 * chunk was published with a release store before any object of the type existed. */
REFGC_INLINE refgc_type_t *refgc__type_of_id(uint32_t id) {
  refgc_type_t **chunk = atomic_load_explicit(&refgc__type_chunks[id / REFGC_TYPE_CHUNK],
                                              memory_order_acquire);
  return chunk ? chunk[id % REFGC_TYPE_CHUNK] : NULL;
}
/* The type with index `id`, or NULL for an unregistered index. Lock-free. */
REFGC_INTERNAL refgc_type_t *refgc__type_by_id(uint32_t id);
/* The calling thread's object state (release stack, free lists); NULL when out of memory. */
REFGC_INTERNAL refgc_tstate_t *refgc__tstate(void);
/* Debug checks: whether `o` is a live object, reporting for `func` when it is not. */
REFGC_INTERNAL bool refgc__object_check(const char *func, const refgc_object_t *o);
/* Queue a weak reference callback to run when the current release finishes; takes over the
 * caller's reference to `weakref`. */
REFGC_INTERNAL void refgc__queue_callback(refgc_tstate_t *ts, refgc_object_t *weakref,
                                          refgc_weakref_callback *cb, void *arg);
/* `o` is being released: detach every weak reference to it and queue their callbacks. */
REFGC_INTERNAL void refgc__weakrefs_clear(refgc_tstate_t *ts, refgc_object_t *o);
/* Run the weak reference callbacks queued on `ts`. */
REFGC_INTERNAL void refgc__run_callbacks(refgc_tstate_t *ts);
/* Threads that have object state now (have created or released objects and not exited). */
REFGC_INTERNAL int refgc__tstates_live(void);
/* Call `fn` on every thread's object state, under the registry lock. */
REFGC_INTERNAL void refgc__tstates_foreach(void (*fn)(refgc_tstate_t *, void *), void *arg);

/* ---------------------------------------------------------------------------------------------
 * gc.c — the cycle collector
 * ------------------------------------------------------------------------------------------ */

REFGC_INTERNAL void refgc__gc_options_init(void);
/* A tracked object was created on `ts`'s thread: generation 0, young buffer. */
REFGC_INTERNAL void refgc__gc_track_new(refgc_tstate_t *ts, refgc_object_t *o);
/* A tracked object is being released while objects are frozen: forget its freeze bit. */
REFGC_INTERNAL void refgc__gc_untrack_frozen(refgc_object_t *o);
/* Objects frozen now (refgc_gc_freeze): while 0, releases need not look at freeze bitmaps. */
REFGC_INTERNAL extern atomic_size_t refgc__gc_frozen;
/* Threshold 0 (SIZE_MAX when automatic collection is off by threshold). */
REFGC_INTERNAL extern _Atomic size_t refgc__gc_threshold0;
/* Before creating a tracked object, when the thread's young count reached threshold 0:
 * collect if there is anything to collect. */
REFGC_INTERNAL void refgc__gc_maybe_collect(refgc_tstate_t *ts);

/* ---------------------------------------------------------------------------------------------
 * trace.c — allocation tracing
 * ------------------------------------------------------------------------------------------ */

/* The allocation fast paths' test: take `size` bytes of the heap's budget (true), or leave it
 * untouched and take the generic path (false), which calls refgc__alloc_hook. */
REFGC_INLINE bool refgc__budget_take(refgc_heap_t *heap, size_t size) {
  int64_t left = atomic_load_explicit(&heap->budget, memory_order_relaxed) - (int64_t)size;
  if (refgc_likely(left > 0)) {
    atomic_store_explicit(&heap->budget, left, memory_order_relaxed);
    return true;
  }
  return false;
}
/* Whether frees in `page` must take the generic path (debug mode, traced blocks). */
REFGC_INLINE bool refgc__page_slow_free(const refgc_page_t *page) {
  return atomic_load_explicit(&((refgc_page_t *)(uintptr_t)page)->slow_free,
                              memory_order_relaxed) != 0;
}
/* Whether block `idx` of `page` has a trace word (a free must forget it). The page holds a
 * block being freed, so it cannot be retired meanwhile and its side array stays. */
REFGC_INLINE bool refgc__trace_word_set(refgc_segment_t *seg, refgc_page_t *page, long idx) {
  _Atomic(refgc_trace_page_t *) *table =
      atomic_load_explicit(&seg->trace_pages, memory_order_acquire);
  if (!table) return false;
  refgc_trace_page_t *tp = atomic_load_explicit(&table[page->slot], memory_order_acquire);
  return tp && (uint32_t)idx < tp->capacity &&
         atomic_load_explicit(&tp->slot[idx], memory_order_relaxed) != 0;
}
/* Whether a valid block of `page` can be freed without the generic path: the page holds no
 * traced block, or (outside debug mode) this block has no trace. */
REFGC_INLINE bool refgc__free_is_plain(refgc_segment_t *seg, refgc_page_t *page, long idx) {
  if (refgc_likely(!refgc__page_slow_free(page))) return true;
  return !refgc__opt.debug && !refgc__trace_word_set(seg, page, idx);
}
/* Set while every allocation is traced (not sampling): objects then bypass their types' free
 * lists, so that each object has the trace of its own creation and a released object is gone
 * from the traces. */
REFGC_INTERNAL extern _Atomic int refgc__trace_all;
REFGC_INLINE bool refgc__trace_all_is_on(void) {
  return atomic_load_explicit(&refgc__trace_all, memory_order_relaxed) != 0;
}
/* Every generic-path allocation of `size` requested bytes ends here with its block (NULL when
 * it failed): sets the calling thread's budget and traces the block when due. */
REFGC_INTERNAL void refgc__alloc_hook(void *p, size_t size);
/* The valid small block `idx` of `page` is about to be freed: forget its trace. */
REFGC_INTERNAL void refgc__trace_free_small(refgc_segment_t *seg, refgc_page_t *page, long idx);
/* The block at `p` is about to be freed: forget its trace. */
REFGC_INTERNAL void refgc__trace_free(const void *p);
/* A page is being given back: free its trace words. */
REFGC_INTERNAL void refgc__trace_page_retired(refgc_page_t *page);
/* The trace of the live block at `p`: traceback id and requested size. */
REFGC_INTERNAL bool refgc__trace_lookup(const void *p, uint32_t *id, uint64_t *size);
/* Visit every valid trace (block, requested size, traceback id, object page?) under the
 * trace lock and the heaps lock. */
typedef void refgc__trace_visit_fn(void *block, uint64_t size, uint32_t tb, bool object, void *arg);
REFGC_INTERNAL void refgc__trace_walk(refgc__trace_visit_fn *fn, void *arg);
/* The hash of a traceback (as the tracer's table and per-thread cache use it; for tests). */
REFGC_INTERNAL uint64_t refgc__trace_tb_hash(void *const *frames, int n);
/* Traceback ids are 1..count-1; frames of one (immutable); -1 for a bad id. */
REFGC_INTERNAL size_t refgc__trace_tb_count(void);
REFGC_INTERNAL int refgc__trace_tb_frames(uint32_t id, void *const **frames);
/* Blocks and bytes one trace of `size` stands for (1 and size unless sampling). */
REFGC_INTERNAL double refgc__trace_weight(uint64_t size);
REFGC_INTERNAL uint64_t refgc__trace_weight_bytes(uint64_t size);
/* Seconds since tracing's clock started; a copy of the series (malloc'd; count returned). */
REFGC_INTERNAL double refgc__trace_clock(void);
/* The process's resident set size in bytes (0 when unknown). */
REFGC_INTERNAL uint64_t refgc__rss_bytes(void);
REFGC_INTERNAL size_t refgc__trace_series_copy(refgc_series_point_t **out);
REFGC_INTERNAL void refgc__trace_options_init(void);
REFGC_INTERNAL void refgc__trace_autostart(void);

/* gc.c: walk every live object (false when a collection or another walk is running) */
REFGC_INTERNAL bool refgc__gc_walk_objects(void (*fn)(refgc_object_t *o, void *arg), void *arg);
/* gc.c: whether walking every heap's pages cannot race with another thread setting up pages:
 * one live thread heap, or the program declared it serialises object use */
REFGC_INTERNAL bool refgc__gc_walk_is_safe(void);
/* gc.c: call `visit` for each reference of `o` (its type's traverse hook) */
REFGC_INTERNAL void refgc__gc_traverse(refgc_object_t *o, refgc_visit_fn *visit, void *arg);

/* ---------------------------------------------------------------------------------------------
 * options.c
 * ------------------------------------------------------------------------------------------ */

REFGC_INTERNAL void refgc__options_init(void);

/* ---------------------------------------------------------------------------------------------
 * symbols.c — return addresses to names (refgc_symbolize)
 * ------------------------------------------------------------------------------------------ */

/* Bytes the symbol cache holds (tables and interned strings, from the C library's malloc). */
REFGC_INTERNAL size_t refgc__symbols_memory(void);

#endif /* REFGC_INTERNAL_H */
