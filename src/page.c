/* refgc — pages: lazy carving, the three free lists, fullness bins, giving back OS pages.
 *
 * A page serves one size class. Its free blocks are spread over three lists (mimalloc's
 * sharding): `free`, which allocation pops; `local_free`, which the owner's frees push; and
 * `xthread_free`, an atomic stack that other threads push to without a lock. Keeping
 * allocation and local frees on different lists lets the fast paths touch one list each, and
 * the page notices "many blocks came back" at refill time in one pointer swap.
 *
 * Carving is lazy: a fresh page hands out REFGC_CARVE_BYTES of blocks at a time, so a page that
 * serves a handful of blocks touches a few OS pages, not 64 KiB.
 *
 * Bins: a non-current page with free blocks sits in one of REFGC_BINS lists of its class by
 * how full it is. `rebin_at` turns "did this free cross a bin boundary?" into a single compare
 * on the free fast path; crossing it moves the page (or retires it when it empties).
 *
 * Holes: `refgc__page_punch_holes` finds the OS pages of a page that overlap only free blocks,
 * gives them back to the OS, and takes the blocks that overlap them off the free lists (their
 * link words would read back as zero). Those blocks come back, and their OS pages with them,
 * only when the page has no other free block (`page_refill_holes`), so allocation never
 * touches memory that was given back while other free blocks exist.
 */
#include <string.h>

#include "internal.h"

/* The page every class of a new heap starts with: no free block, so the fast path always
 * falls through to the slow path, which finds or makes a real page. Never written. */
refgc_page_t refgc__empty_page;

/* ---------------------------------------------------------------------------------------------
 * Bins
 * ------------------------------------------------------------------------------------------ */

static unsigned bin_for(uint32_t used, uint32_t capacity) {
  unsigned b = (unsigned)(((uint64_t)used * REFGC_BINS) / capacity);
  return b >= REFGC_BINS ? REFGC_BINS - 1 : b;
}

/* Smallest `used` that still belongs in bin `b` (1 for bin 0: an empty page is retired). */
static uint32_t bin_floor(unsigned b, uint32_t capacity) {
  if (b == 0) return 1;
  return (uint32_t)(((uint64_t)b * capacity + REFGC_BINS - 1) / REFGC_BINS);
}

/* Bins are FIFO: pages enter at the tail and allocation takes the head, the page that has
 * been collecting frees the longest within its fullness band, so each switch of the current
 * page brings a useful number of free blocks. */
void refgc__bin_insert(refgc_heap_t *heap, refgc_page_t *page) {
  unsigned b = bin_for(page->used, page->capacity);
  refgc_page_t **tail = &heap->bins_tail[page->cls][b];
  page->bin = (uint8_t)b;
  page->rebin_at = bin_floor(b, page->capacity) - 1;
  page->next = NULL;
  page->prev = *tail;
  if (*tail)
    (*tail)->next = page;
  else
    heap->bins[page->cls][b] = page;
  *tail = page;
  heap->binned[page->cls]++;
}

void refgc__bin_remove(refgc_heap_t *heap, refgc_page_t *page) {
  if (page->prev)
    page->prev->next = page->next;
  else
    heap->bins[page->cls][page->bin] = page->next;
  if (page->next)
    page->next->prev = page->prev;
  else
    heap->bins_tail[page->cls][page->bin] = page->prev;
  page->next = page->prev = NULL;
  heap->binned[page->cls]--;
}

void refgc__page_set_full(refgc_page_t *page) {
  page->bin = REFGC_BIN_FULL;
  page->rebin_at = (uint32_t)page->capacity - 1 - page->capacity / REFGC_FULL_RETURN;
}

/* ---------------------------------------------------------------------------------------------
 * Initialising and carving
 * ------------------------------------------------------------------------------------------ */

static bool hole_test(const refgc_page_t *page, size_t q) {
  return (page->holes[q >> 6] >> (q & 63)) & 1;
}

/* Clear the hole bits of OS pages [q0, q1] and count them as committed again. */
static void holes_clear_range(refgc_page_t *page, size_t q0, size_t q1) {
  size_t cleared = 0;
  for (size_t q = q0; q <= q1; q++) {
    if (hole_test(page, q)) {
      page->holes[q >> 6] &= ~((uint64_t)1 << (q & 63));
      cleared++;
    }
  }
  if (cleared) refgc__committed_add(cleared * REFGC_OS_PAGE_SIZE);
}

/* Note that the slot's bytes [0, end) may now be resident. */
static void page_touch(refgc_page_t *page, size_t end) {
  end = (end + REFGC_OS_PAGE_SIZE - 1) & ~(REFGC_OS_PAGE_SIZE - 1);
  if (end > page->touched) {
    refgc__committed_add(end - page->touched);
    page->touched = (uint32_t)end;
  }
}

void refgc__page_init(refgc_page_t *page, refgc_heap_t *heap, unsigned cls) {
  refgc_segment_t *seg = refgc__page_segment(page);
  const refgc_class_info_t *info = &refgc__classes[REFGC_LANE_CLASS(cls)];
  (void)heap; /* page->heap was set once, when the segment was made, and never changes:
                 a remote freer may read it while the owner re-initialises the slot */
  page->cls = (uint8_t)cls;
  page->block_size = info->block_size;
  page->div_magic = info->div_magic;
  page->start = refgc__slot_start(seg, page->slot);
  page->capacity = (uint16_t)(refgc__slot_size(seg, page->slot) / info->block_size);
  page->carved = 0;
  refgc__set_carved_end(page, page->start);
  page->free = page->local_free = NULL;
  page->used = 0;
  page->bin = REFGC_BIN_FULL;
  page->rebin_at = 0;
  page->next = page->prev = NULL;
  atomic_store_explicit(&page->slow_free, refgc__opt.debug ? 1 : 0, memory_order_relaxed);
  refgc_stat_add(heap->class_pages[cls], 1);
  refgc_stat_add(heap->class_capacity[cls], page->capacity);
}

/* Carve the next batch of blocks onto `page->free` (which is empty). */
static void page_carve(refgc_page_t *page) {
  size_t bsize = page->block_size;
  size_t n = REFGC_CARVE_BYTES / bsize;
  if (n < 1) n = 1;
  size_t left = (size_t)page->capacity - page->carved;
  if (n > left) n = left;
  uint8_t *first = refgc__carved_end(page);
  size_t from = (size_t)(first - page->start);
  size_t to = from + n * bsize;
  /* memory given back in an earlier life of this slot is about to be touched again */
  holes_clear_range(page, from >> REFGC_OS_PAGE_SHIFT, (to - 1) >> REFGC_OS_PAGE_SHIFT);
  page_touch(page, to);
  refgc_track_fresh(first, n * bsize);
  refgc_block_t *next = page->free;
  for (size_t i = n; i-- > 0;) {
    refgc_block_t *b = (refgc_block_t *)(first + i * bsize);
    if (refgc__opt.debug) {
      refgc_track_open(b, bsize);
      refgc__debug_fill_free(b, bsize);
      refgc_track_close(b, bsize);
    }
    refgc__block_set_next(b, next);
    next = b;
  }
  page->free = next;
  page->carved = (uint16_t)(page->carved + n);
  refgc__set_carved_end(page, first + n * bsize);
}

/* Whether block `i` of `page` overlaps an OS page given back. */
static bool block_in_hole(const refgc_page_t *page, size_t i) {
  size_t off = i * page->block_size;
  size_t q0 = off >> REFGC_OS_PAGE_SHIFT;
  size_t q1 = (off + page->block_size - 1) >> REFGC_OS_PAGE_SHIFT;
  for (size_t q = q0; q <= q1; q++)
    if (hole_test(page, q)) return true;
  return false;
}

/* Put back on `page->free` every carved block that overlaps a hole, and clear those holes. */
static void page_refill_holes(refgc_page_t *page) {
  size_t bsize = page->block_size;
  refgc_block_t *next = page->free;
  for (size_t i = page->carved; i-- > 0;) {
    if (!block_in_hole(page, i)) continue;
    refgc_block_t *b = (refgc_block_t *)(page->start + i * bsize);
    if (refgc__opt.debug) {
      refgc_track_open(b, bsize);
      refgc__debug_fill_free(b, bsize);
      refgc_track_close(b, bsize);
    }
    refgc__block_set_next(b, next);
    next = b;
  }
  page->free = next;
  size_t carved_bytes = (size_t)(refgc__carved_end(page) - page->start);
  if (carved_bytes) holes_clear_range(page, 0, (carved_bytes - 1) >> REFGC_OS_PAGE_SHIFT);
}

static bool page_has_holes_in_carved(const refgc_page_t *page) {
  if (!(page->holes[0] | page->holes[1])) return false;
  size_t carved_bytes = (size_t)(refgc__carved_end(page) - page->start);
  for (size_t q = 0; q * REFGC_OS_PAGE_SIZE < carved_bytes; q++)
    if (hole_test(page, q)) return true;
  return false;
}

/* ---------------------------------------------------------------------------------------------
 * Collecting free lists
 * ------------------------------------------------------------------------------------------ */

#define XT_SHIFT 48
#define XT_PTR(w) ((refgc_block_t *)(uintptr_t)((w) & (((uint64_t)1 << XT_SHIFT) - 1)))
#define XT_COUNT(w) ((uint32_t)((w) >> XT_SHIFT))

void refgc__page_collect_remote(refgc_page_t *page) {
  if (!atomic_load_explicit(&page->xthread_free, memory_order_relaxed)) return;
  uint64_t w = atomic_exchange_explicit(&page->xthread_free, 0, memory_order_seq_cst);
  refgc_block_t *head = XT_PTR(w);
  if (!head) return;
  uint32_t count = XT_COUNT(w);
  if (page->local_free) {
    /* both lists hold blocks: splice (rare: refill collects only when local_free is empty) */
    refgc_block_t *tail = head;
    for (refgc_block_t *n; (n = refgc__block_next(tail)) != NULL;) tail = n;
    refgc__block_set_next(tail, page->local_free);
  }
  page->local_free = head;
  page->used -= count;
  refgc_stat_add(page->heap->cls[page->cls].frees, count);
}

bool refgc__page_refill(refgc_page_t *page) {
  if (!page->local_free) refgc__page_collect_remote(page);
  if (page->local_free) {
    page->free = page->local_free;
    page->local_free = NULL;
    return true;
  }
  if (page_has_holes_in_carved(page)) {
    page_refill_holes(page);
    if (page->free) return true;
  }
  if (page->carved < page->capacity) {
    page_carve(page);
    return true;
  }
  return false;
}

void refgc__page_rebin(refgc_page_t *page) {
  refgc_heap_t *heap = page->heap;
  if (page->bin == REFGC_BIN_CURRENT) {
    /* The current page emptied. Keep it unless the class has other pages to fill first,
     * so that a loop allocating and freeing one block does not churn pages. */
    if (page->used == 0 && heap->binned[page->cls]) refgc__heap_retire_page(heap, page);
    return;
  }
  if (page->used == 0) {
    refgc__heap_retire_page(heap, page);
    return;
  }
  if (page->bin < REFGC_BINS) {
    if (bin_for(page->used, page->capacity) == page->bin) {
      page->rebin_at = bin_floor(page->bin, page->capacity) - 1;
      return;
    }
    refgc__bin_remove(heap, page);
  }
  refgc__bin_insert(heap, page);
}

void refgc__page_free_remote(refgc_page_t *page, refgc_block_t *block) {
  uint64_t w = atomic_load_explicit(&page->xthread_free, memory_order_relaxed);
  uint64_t nw;
  do {
    refgc__block_set_next(block, XT_PTR(w));
    nw = (uint64_t)(uintptr_t)block | ((uint64_t)(XT_COUNT(w) + 1) << XT_SHIFT);
  } while (!atomic_compare_exchange_weak_explicit(&page->xthread_free, &w, nw,
                                                  memory_order_seq_cst, memory_order_relaxed));
  /* Tell the owner, once per batch: the page goes on its heap's pending stack unless it is
   * already there. See docs/design.md, "remote frees", for why the orderings are seq_cst. */
  if (atomic_load_explicit(&page->queued, memory_order_seq_cst)) return;
  if (atomic_exchange_explicit(&page->queued, 1, memory_order_seq_cst)) return;
  refgc_heap_t *heap = page->heap;
  refgc_page_t *top = atomic_load_explicit(&heap->pending, memory_order_relaxed);
  do {
    page->pending_next = top;
  } while (!atomic_compare_exchange_weak_explicit(&heap->pending, &top, page,
                                                  memory_order_release, memory_order_relaxed));
}

/* ---------------------------------------------------------------------------------------------
 * Giving back OS pages inside a page in use
 * ------------------------------------------------------------------------------------------ */

#define PAGE_MAX_BLOCKS ((1u << REFGC_SMALL_PAGE_SHIFT) / 16)

static void bitmap_set(uint64_t *bm, size_t i) { bm[i >> 6] |= (uint64_t)1 << (i & 63); }
static bool bitmap_test(const uint64_t *bm, size_t i) { return (bm[i >> 6] >> (i & 63)) & 1; }

void refgc__purge_add(refgc_purge_acc_t *acc, uint8_t *p, size_t n) {
  if (acc->len && acc->start + acc->len == p) {
    acc->len += n;
    return;
  }
  refgc__purge_flush(acc);
  acc->start = p;
  acc->len = n;
}

void refgc__purge_flush(refgc_purge_acc_t *acc) {
  if (acc->len) refgc__os_purge(acc->start, acc->len);
  acc->len = 0;
}

size_t refgc__page_punch_holes(refgc_page_t *page, refgc_purge_acc_t *acc) {
  refgc__page_collect_remote(page);
  size_t bsize = page->block_size;
  size_t carved = page->carved;
  uint64_t free_bm[PAGE_MAX_BLOCKS / 64];
  memset(free_bm, 0, sizeof free_bm);
  /* mark every free block: on the two lists, or hidden behind an existing hole */
  refgc_block_t *lists[2] = {page->free, page->local_free};
  for (int l = 0; l < 2; l++) {
    for (refgc_block_t *b = lists[l]; b; b = refgc__block_next(b)) {
      long i = refgc__page_block_index(page, b);
      if (i < 0) return 0; /* corrupted list: leave it to refgc_heap_check */
      bitmap_set(free_bm, (size_t)i);
    }
  }
  for (size_t i = 0; i < carved; i++)
    if (block_in_hole(page, i)) bitmap_set(free_bm, i);

  /* an OS page can go when every carved block overlapping it is free */
  size_t nq = page->touched >> REFGC_OS_PAGE_SHIFT;
  uint64_t fresh[REFGC_HOLE_WORDS] = {0};
  size_t released = 0;
  for (size_t q = 0; q < nq; q++) {
    if (hole_test(page, q)) continue;
    size_t qs = q << REFGC_OS_PAGE_SHIFT;
    size_t qe = qs + REFGC_OS_PAGE_SIZE;
    bool all_free = true;
    if (qs < carved * bsize) {
      size_t last = (qe - 1) / bsize;
      if (last >= carved) last = carved - 1;
      for (size_t i = qs / bsize; i <= last; i++) {
        if (!bitmap_test(free_bm, i)) {
          all_free = false;
          break;
        }
      }
    }
    if (all_free) {
      fresh[q >> 6] |= (uint64_t)1 << (q & 63);
      released++;
    }
  }
  if (!released) return 0;
  for (int w = 0; w < REFGC_HOLE_WORDS; w++) page->holes[w] |= fresh[w];

  /* rebuild the free list in address order, leaving out blocks that overlap a hole */
  refgc_block_t *next = NULL;
  for (size_t i = carved; i-- > 0;) {
    if (!bitmap_test(free_bm, i) || block_in_hole(page, i)) continue;
    refgc_block_t *b = (refgc_block_t *)(page->start + i * bsize);
    refgc__block_set_next(b, next);
    next = b;
  }
  page->free = next;
  page->local_free = NULL;

  /* give back runs of newly released OS pages */
  for (size_t q = 0; q < nq;) {
    if (!((fresh[q >> 6] >> (q & 63)) & 1)) {
      q++;
      continue;
    }
    size_t r = q;
    while (r < nq && ((fresh[r >> 6] >> (r & 63)) & 1)) r++;
    refgc__purge_add(acc, page->start + (q << REFGC_OS_PAGE_SHIFT), (r - q) << REFGC_OS_PAGE_SHIFT);
    q = r;
  }
  refgc__committed_sub(released * REFGC_OS_PAGE_SIZE);
  return released * REFGC_OS_PAGE_SIZE;
}

/* ---------------------------------------------------------------------------------------------
 * Checking
 * ------------------------------------------------------------------------------------------ */

#define PAGE_BAD(...)                                                                \
  do {                                                                               \
    refgc__report(REFGC_ECORRUPT, "refgc_heap_check", page, page->block_size, 0, NULL, 0, \
                  __VA_ARGS__);                                                      \
    return 1;                                                                        \
  } while (0)

/* Count a free list into `seen`, checking each block. -1 when the list is corrupt. */
static long page_check_list(refgc_page_t *page, refgc_block_t *b, uint64_t *seen, const char *name) {
  long n = 0;
  for (; b; b = refgc__block_next(b)) {
    long i = refgc__page_block_index(page, b);
    if (i < 0) {
      refgc__report(REFGC_ECORRUPT, "refgc_heap_check", b, page->block_size, 0, NULL, 0,
                    "page %p (%u-byte blocks): %s list holds %p, not a block of the page",
                    (void *)page->start, page->block_size, name, (void *)b);
      return -1;
    }
    if (bitmap_test(seen, (size_t)i)) {
      refgc__report(REFGC_ECORRUPT, "refgc_heap_check", b, page->block_size, 0, NULL, 0,
                    "page %p (%u-byte blocks): block %p is on the free lists twice (double "
                    "free, or a cycle in the %s list)",
                    (void *)page->start, page->block_size, (void *)b, name);
      return -1;
    }
    if (block_in_hole(page, (size_t)i)) {
      refgc__report(REFGC_ECORRUPT, "refgc_heap_check", b, page->block_size, 0, NULL, 0,
                    "page %p: block %p on the %s list overlaps memory given back to the OS",
                    (void *)page->start, (void *)b, name);
      return -1;
    }
    bitmap_set(seen, (size_t)i);
    n++;
  }
  return n;
}

int refgc__page_check(refgc_page_t *page) {
  refgc_segment_t *seg = refgc__page_segment(page);
  if (page->heap != seg->heap) PAGE_BAD("page %p: owner differs from its segment's", (void *)page);
  if (page->cls >= REFGC_NUM_LANES) PAGE_BAD("page %p: bad lane %u", (void *)page, page->cls);
  const refgc_class_info_t *info = &refgc__classes[REFGC_LANE_CLASS(page->cls)];
  if (page->block_size != info->block_size || page->div_magic != info->div_magic)
    PAGE_BAD("page %p: block size %u does not match class %u", (void *)page, page->block_size,
             page->cls);
  if (page->start != refgc__slot_start(seg, page->slot))
    PAGE_BAD("page %p: start %p is not its slot's", (void *)page, (void *)page->start);
  if (page->capacity != refgc__slot_size(seg, page->slot) / page->block_size)
    PAGE_BAD("page %p: capacity %u is wrong", (void *)page, page->capacity);
  if (page->carved > page->capacity ||
      refgc__carved_end(page) != page->start + (size_t)page->carved * page->block_size)
    PAGE_BAD("page %p: carved %u of %u, end %p inconsistent", (void *)page, page->carved,
             page->capacity, (void *)refgc__carved_end(page));
  uint64_t seen[PAGE_MAX_BLOCKS / 64];
  memset(seen, 0, sizeof seen);
  long nfree = page_check_list(page, page->free, seen, "free");
  if (nfree < 0) return 1;
  long nlocal = page_check_list(page, page->local_free, seen, "local free");
  if (nlocal < 0) return 1;
  long hidden = 0;
  for (size_t i = 0; i < page->carved; i++)
    if (block_in_hole(page, i)) hidden++;
  if ((long)page->used + nfree + nlocal + hidden != (long)page->carved)
    PAGE_BAD("page %p (%u-byte blocks): %u used + %ld free + %ld local + %ld hidden != %u carved",
             (void *)page->start, page->block_size, page->used, nfree, nlocal, hidden,
             page->carved);
  if (page->bin == REFGC_BIN_CURRENT) {
    if (page->heap->cls[page->cls].current != page)
      PAGE_BAD("page %p: marked current but the heap's current page is another", (void *)page);
  } else if (page->bin == REFGC_BIN_FULL) {
    if (page->rebin_at != (uint32_t)page->capacity - 1 - page->capacity / REFGC_FULL_RETURN)
      PAGE_BAD("page %p: full page with rebin_at %u", (void *)page, page->rebin_at);
  } else if (page->bin >= REFGC_BINS) {
    PAGE_BAD("page %p: bad bin %u", (void *)page, page->bin);
  } else if (page->used < page->rebin_at + 1 && page->used != 0) {
    PAGE_BAD("page %p: %u used is below its bin's floor %u", (void *)page, page->used,
             page->rebin_at + 1);
  }
  return 0;
}
