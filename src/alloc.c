/* refgc — the allocation API: malloc, calloc, realloc, aligned_alloc, free, usable_size.
 *
 * Fast path of `refgc_malloc` for 1–512 bytes (cost: a thread-local load, a shift, four loads
 * and three stores, one predictable branch):
 *     page = heap->cls[(size - 1) >> 4].current;  block = page->free;
 *     page->free = block->next;  page->used++;  (two counters)
 * Everything else — an empty free list, larger sizes, alignment, debug mode — goes to an
 * out-of-line path.
 *
 * Fast path of `refgc_free` (no header to read): mask the address to its segment, test the
 * segment's bit in the segment map, index the page descriptor, check that the address is a
 * block start with one multiply (the class's `div_magic`), then push on the page's local list
 * (owner thread) or its atomic remote list (any other thread). A pointer that fails a check
 * is never written to: `refgc__lookup` explains it to the error handler.
 */
#include <errno.h>
#include <string.h>

#include "internal.h"

/* ---------------------------------------------------------------------------------------------
 * Looking up a block
 * ------------------------------------------------------------------------------------------ */

static refgc_page_t *page_of(refgc_segment_t *seg, const void *p) {
  return &seg->pages[((uintptr_t)p - (uintptr_t)seg) >> seg->page_shift];
}

bool refgc__lookup(const char *func, const void *p, refgc_segment_t **segp, refgc_page_t **pagep) {
  refgc_segment_t *seg = refgc__segment_of(p);
  if (!seg) {
    refgc__report(REFGC_EFOREIGN, func, p, 0, 0, NULL, 0,
                  "%s(%p): pointer was not allocated by refgc (no refgc segment contains this "
                  "address; a large block that was already freed looks like this too)",
                  func, p);
    return false;
  }
  if (seg->kind == REFGC_SEGMENT_LARGE) {
    uint8_t *block = (uint8_t *)seg + seg->large_offset;
    if ((const uint8_t *)p == block) {
      *segp = seg;
      *pagep = NULL;
      return true;
    }
    if ((const uint8_t *)p > block && (const uint8_t *)p < block + seg->large_usable)
      refgc__report(REFGC_EINTERIOR, func, p, seg->large_usable, 0, NULL, 0,
                    "%s(%p): pointer into the middle of a block: it is %zu bytes into the "
                    "%zu-byte large block at %p",
                    func, p, (size_t)((const uint8_t *)p - block), seg->large_usable,
                    (void *)block);
    else
      refgc__report(REFGC_EFOREIGN, func, p, 0, 0, NULL, 0,
                    "%s(%p): pointer was not allocated by refgc (it lies outside the large "
                    "block at %p)",
                    func, p, (void *)block);
    return false;
  }
  refgc_page_t *page = page_of(seg, p);
  if (!page->start) {
    refgc__report(REFGC_EFOREIGN, func, p, 0, 0, NULL, 0,
                  "%s(%p): pointer lies in an unused page of a refgc segment (its page was "
                  "emptied: a double free, or a pointer refgc never returned)",
                  func, p);
    return false;
  }
  long idx = refgc__page_block_index(page, p);
  if (idx >= 0) {
    *segp = seg;
    *pagep = page;
    return true;
  }
  const uint8_t *b = p;
  if (b >= page->start && b < refgc__carved_end(page)) {
    size_t off = (size_t)(b - page->start);
    size_t start = off - off % page->block_size;
    refgc__report(REFGC_EINTERIOR, func, p, page->block_size, 0, NULL, 0,
                  "%s(%p): pointer into the middle of a block: it is %zu bytes into the "
                  "%u-byte block at %p",
                  func, p, off - start, page->block_size, (void *)(page->start + start));
  } else {
    refgc__report(REFGC_EFOREIGN, func, p, 0, 0, NULL, 0,
                  "%s(%p): pointer was not allocated by refgc (it lies in a refgc page of "
                  "%u-byte blocks, outside any block handed out)",
                  func, p, page->block_size);
  }
  return false;
}

size_t refgc__raw_usable(const refgc_segment_t *seg, const refgc_page_t *page, const void *p) {
  (void)p;
  return page ? page->block_size : seg->large_usable;
}

/* ---------------------------------------------------------------------------------------------
 * Allocation below debug mode
 * ------------------------------------------------------------------------------------------ */

/* The smallest class of at least `size` bytes whose blocks are all aligned to `align`
 * (blocks sit at `start + i * block_size` with `start` aligned to the OS page), or -1. */
static int aligned_class(size_t size, size_t align) {
  if (align > REFGC_OS_PAGE_SIZE) return -1;
  for (unsigned c = refgc__size_class(size < align ? align : size); c < REFGC_NUM_CLASSES; c++)
    if (refgc__classes[c].block_size % align == 0) return (int)c;
  return -1;
}

void *refgc__raw_malloc(size_t size, size_t align, bool object) {
  if (refgc_unlikely(size > PTRDIFF_MAX)) {
    errno = ENOMEM;
    return NULL;
  }
  unsigned lane_base = object ? REFGC_OBJECT_LANE : 0;
  if (align <= REFGC_MIN_ALIGN) {
    if (size <= REFGC_MEDIUM_MAX)
      return refgc__heap_malloc_small(refgc__tl_heap, lane_base + refgc__size_class(size), size);
    return refgc__large_alloc(size, REFGC_MIN_ALIGN, object);
  }
  if (size <= REFGC_MEDIUM_MAX) {
    int c = aligned_class(size, align);
    if (c >= 0) return refgc__heap_malloc_small(refgc__tl_heap, lane_base + (unsigned)c, size);
  }
  return refgc__large_alloc(size, align, object);
}

static REFGC_NOINLINE void *object_malloc_generic(size_t size) {
  void *p = refgc__opt.debug ? refgc__debug_malloc("refgc_new", size, REFGC_MIN_ALIGN, false, true)
                             : refgc__raw_malloc(size, REFGC_MIN_ALIGN, true);
  refgc__alloc_hook(p, size);
  return p;
}

void *refgc__object_malloc(size_t size) {
  refgc_heap_t *heap = refgc__tl_heap;
  if (refgc_likely(size - 1 < REFGC_SMALL_FAST_MAX && refgc__budget_take(heap, size)))
    return refgc__heap_malloc_small(heap, REFGC_OBJECT_LANE + (unsigned)((size - 1) >> 4), size);
  return object_malloc_generic(size);
}

bool refgc__is_object_block(const void *p) {
  refgc_segment_t *seg = refgc__segment_of(p);
  if (!seg) return false;
  if (seg->kind == REFGC_SEGMENT_LARGE)
    return seg->large_object && (const uint8_t *)p == (uint8_t *)seg + seg->large_offset;
  refgc_page_t *page = page_of(seg, p);
  return page->cls >= REFGC_OBJECT_LANE && refgc__page_block_index(page, p) >= 0;
}

/* Free a valid small block: push it on the page's local list, or its remote list. */
REFGC_INLINE void page_free_block(refgc_page_t *page, void *p) {
  refgc_block_t *b = p;
  refgc_track_free(b, page->block_size);
  if (refgc_likely(page->heap == refgc__tl_heap)) {
    refgc__block_set_next(b, page->local_free);
    page->local_free = b;
    refgc_stat_add(page->heap->cls[page->cls].frees, 1);
    if (refgc_unlikely(--page->used <= page->rebin_at)) refgc__page_rebin(page);
  } else {
    refgc__page_free_remote(page, b);
  }
}

void refgc__raw_free_valid(refgc_segment_t *seg, refgc_page_t *page, void *p) {
  if (page)
    page_free_block(page, p);
  else
    refgc__large_free(seg);
}

/* ---------------------------------------------------------------------------------------------
 * Public API
 * ------------------------------------------------------------------------------------------ */

static REFGC_NOINLINE void *malloc_generic(size_t size) {
  void *p = refgc__opt.debug ? refgc__debug_malloc("refgc_malloc", size, REFGC_MIN_ALIGN, false, false)
                             : refgc__raw_malloc(size, REFGC_MIN_ALIGN, false);
  refgc__alloc_hook(p, size);
  return p;
}

void *refgc_malloc(size_t size) {
  refgc_heap_t *heap = refgc__tl_heap;
  if (refgc_likely(size - 1 < REFGC_SMALL_FAST_MAX && refgc__budget_take(heap, size)))
    return refgc__heap_malloc_small(heap, (unsigned)((size - 1) >> 4), size);
  return malloc_generic(size);
}

void *refgc_calloc(size_t count, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(count, size, &total)) {
    errno = ENOMEM;
    return NULL;
  }
  void *p;
  if (refgc__opt.debug) {
    p = refgc__debug_malloc("refgc_calloc", total, REFGC_MIN_ALIGN, true, false);
  } else {
    p = refgc__raw_malloc(total, REFGC_MIN_ALIGN, false);
    /* large blocks are fresh zero pages from the OS */
    if (p && total <= REFGC_MEDIUM_MAX)
      memset(p, 0, total);
    else if (p)
      refgc_track_open(p, total); /* tell valgrind the zeroes are defined */
  }
  refgc__alloc_hook(p, total);
  return p;
}

void *refgc_aligned_alloc(size_t alignment, size_t size) {
  if (alignment == 0 || (alignment & (alignment - 1)) != 0 || alignment > REFGC_MAX_ALIGN) {
    errno = EINVAL;
    return NULL;
  }
  if (alignment < REFGC_MIN_ALIGN) alignment = REFGC_MIN_ALIGN;
  void *p = refgc__opt.debug
                ? refgc__debug_malloc("refgc_aligned_alloc", size, alignment, false, false)
                : refgc__raw_malloc(size, alignment, false);
  refgc__alloc_hook(p, size);
  return p;
}

/* A valid small block with a trace word (not debug mode): forget the trace, free the block.
 * The fast paths found seg, page and idx already; this spares free_generic finding them again. */
static REFGC_NOINLINE void free_traced(refgc_segment_t *seg, refgc_page_t *page, long idx,
                                       void *p) {
  refgc__trace_free_small(seg, page, idx);
  page_free_block(page, p);
}

/* Everything but a valid small block: NULL, large blocks, debug mode, bad pointers. */
static REFGC_NOINLINE void free_generic(void *p) {
  if (!p) return;
  if (refgc__opt.debug) {
    refgc__trace_free(p);
    refgc__debug_free("refgc_free", p);
    return;
  }
  refgc_segment_t *seg = refgc__segment_of(p);
  refgc_page_t *page;
  if (seg && seg->kind != REFGC_SEGMENT_LARGE) {
    /* the common case here: a valid block of a page that holds traced blocks */
    page = page_of(seg, p);
    long idx = refgc__page_block_index(page, p);
    if (idx >= 0) {
      if (refgc__page_slow_free(page)) refgc__trace_free_small(seg, page, idx);
      page_free_block(page, p);
      return;
    }
  }
  if (!refgc__lookup("refgc_free", p, &seg, &page)) return;
  if (page ? refgc__page_slow_free(page)
           : atomic_load_explicit(&seg->large_trace, memory_order_relaxed) != 0)
    refgc__trace_free(p);
  refgc__raw_free_valid(seg, page, p);
}

/* A block of `page` (index `idx`, -1 if `p` is not a block start) that the fast paths could
 * not free inline: a traced block goes to free_traced, the rest (debug mode, bad pointers) to
 * free_generic. */
REFGC_INLINE void free_not_plain(refgc_segment_t *seg, refgc_page_t *page, long idx, void *p) {
  if (idx >= 0 && !refgc__opt.debug)
    free_traced(seg, page, idx, p);
  else
    free_generic(p);
}

void refgc_free(void *p) {
  /* NULL and large blocks fail the page test (no segment at 0; a large segment's only page
   * descriptor is empty) and, with debug mode, go to free_generic */
  uintptr_t a = (uintptr_t)p;
  uintptr_t idx = a >> REFGC_SEGMENT_SHIFT;
  if (refgc_likely((a >> REFGC_ADDRESS_BITS) == 0 &&
                   ((atomic_load_explicit(&refgc__segmap[idx >> 6], memory_order_relaxed) >>
                     (idx & 63)) & 1))) {
    refgc_segment_t *seg = (refgc_segment_t *)(a & ~(uintptr_t)REFGC_SEGMENT_MASK);
    refgc_page_t *page = page_of(seg, p);
    long block = refgc__page_block_index(page, p);
    if (refgc_likely(block >= 0 && refgc__free_is_plain(seg, page, block))) {
      page_free_block(page, p);
      return;
    }
    free_not_plain(seg, page, block, p);
    return;
  }
  free_generic(p);
}

size_t refgc_usable_size(const void *p) {
  if (!p) return 0;
  if (refgc__opt.debug) return refgc__debug_usable("refgc_usable_size", p);
  refgc_segment_t *seg;
  refgc_page_t *page;
  if (!refgc__lookup("refgc_usable_size", p, &seg, &page)) return 0;
  size_t usable = refgc__raw_usable(seg, page, p);
  refgc_track_usable(p, usable); /* the program may now use all of it */
  return usable;
}

void *refgc_realloc(void *p, size_t size) {
  if (!p) return refgc_malloc(size);
  refgc_segment_t *seg;
  refgc_page_t *page;
  if (!refgc__lookup("refgc_realloc", p, &seg, &page)) {
    errno = EINVAL;
    return NULL;
  }
  size_t old = refgc__opt.debug ? refgc__debug_usable("refgc_realloc", p)
                                : refgc__raw_usable(seg, page, p);
  bool traced = page ? refgc__page_slow_free(page)
                     : atomic_load_explicit(&seg->large_trace, memory_order_relaxed) != 0;
  if (!refgc__opt.debug && !traced && size <= old && size >= old / 2 && size > 0) {
    /* fits, and shrinking would not halve the block: keep it */
    refgc_track_free(p, old);
    refgc_track_malloc(p, size, old);
    refgc_track_open(p, size); /* the kept bytes stay defined for valgrind */
    return p;
  }
  void *q = refgc_malloc(size);
  if (!q) return NULL;
  size_t keep = old < size ? old : size;
  refgc_track_open(p, keep);
  memcpy(q, p, keep);
  refgc_free(p);
  return q;
}

size_t refgc__block_usable(const void *p) {
  refgc_segment_t *seg = refgc__segment_of(p);
  if (!seg) return 0;
  if (seg->kind == REFGC_SEGMENT_LARGE)
    return (const uint8_t *)p == (uint8_t *)seg + seg->large_offset ? seg->large_usable : 0;
  refgc_page_t *page = page_of(seg, p);
  return refgc__page_block_index(page, p) >= 0 ? page->block_size : 0;
}

int refgc_owns(const void *p) {
  size_t usable = refgc__block_usable(p);
  if (!usable) return 0;
  return refgc__opt.debug ? refgc__debug_is_live(p, usable) : 1;
}

void refgc__object_free(void *p) {
  refgc_segment_t *seg = (refgc_segment_t *)((uintptr_t)p & ~(uintptr_t)REFGC_SEGMENT_MASK);
  if (refgc_unlikely(seg->kind == REFGC_SEGMENT_LARGE)) {
    refgc_free(p);
    return;
  }
  refgc_page_t *page = page_of(seg, p);
  if (refgc_unlikely(refgc__page_slow_free(page))) {
    long idx = refgc__page_block_index(page, p);
    if (!refgc__free_is_plain(seg, page, idx)) {
      free_not_plain(seg, page, idx, p);
      return;
    }
  }
  page_free_block(page, p);
}
