/* refgc — segments: 4 MiB aligned regions cut into page slots, and the segment map.
 *
 * A heap owns its segments for their whole life; a segment is never unmapped (docs/design.md
 * says why: a thread freeing a block into a page of another heap may still be touching the
 * page descriptor after the owner has emptied the page). Free slots are given back to the OS
 * with madvise once they have been free longer than the purge delay, so an idle segment costs
 * only its header page(s) of resident memory.
 *
 * Slot choice (`refgc__segment_take_slot`): among the heap's segments with a free slot, take
 * the one with the most used slots, preferring slots still resident ("dirty") to avoid page
 * faults. Filling the fullest segment first lets nearly empty segments drain, as CPython sorts
 * its arenas by free pools.
 */
#include <string.h>

#include "internal.h"

uintptr_t refgc__cookie;
_Atomic uint64_t refgc__segmap[(size_t)1 << (REFGC_SEGMAP_BITS - 6)];

void refgc__segmap_set(const void *segment, bool on) {
  uintptr_t idx = (uintptr_t)segment >> REFGC_SEGMENT_SHIFT;
  uint64_t bit = (uint64_t)1 << (idx & 63);
  if (on)
    atomic_fetch_or_explicit(&refgc__segmap[idx >> 6], bit, memory_order_release);
  else
    atomic_fetch_and_explicit(&refgc__segmap[idx >> 6], ~bit, memory_order_release);
}

/* ---------------------------------------------------------------------------------------------
 * Slot geometry
 * ------------------------------------------------------------------------------------------ */

uint8_t *refgc__slot_start(const refgc_segment_t *seg, unsigned slot) {
  uint8_t *base = (uint8_t *)seg + ((size_t)slot << seg->page_shift);
  return slot == 0 ? base + seg->header_size : base;
}

size_t refgc__slot_size(const refgc_segment_t *seg, unsigned slot) {
  size_t full = (size_t)1 << seg->page_shift;
  return slot == 0 ? full - seg->header_size : full;
}

static size_t segment_header_size(unsigned slots) {
  size_t h = sizeof(refgc_segment_t) + slots * sizeof(refgc_page_t);
  return (h + REFGC_OS_PAGE_SIZE - 1) & ~(REFGC_OS_PAGE_SIZE - 1);
}

/* ---------------------------------------------------------------------------------------------
 * The heap's list of segments with free slots
 * ------------------------------------------------------------------------------------------ */

static void avail_insert(refgc_heap_t *heap, refgc_segment_t *seg) {
  refgc_segment_t **head = &heap->avail[seg->kind - 1];
  seg->avail_prev = NULL;
  seg->avail_next = *head;
  if (*head) (*head)->avail_prev = seg;
  *head = seg;
  seg->on_avail = true;
}

static void avail_remove(refgc_heap_t *heap, refgc_segment_t *seg) {
  if (seg->avail_prev)
    seg->avail_prev->avail_next = seg->avail_next;
  else
    heap->avail[seg->kind - 1] = seg->avail_next;
  if (seg->avail_next) seg->avail_next->avail_prev = seg->avail_prev;
  seg->avail_next = seg->avail_prev = NULL;
  seg->on_avail = false;
}

/* ---------------------------------------------------------------------------------------------
 * The heap's purge queue: free slots that may be resident, oldest first
 * ------------------------------------------------------------------------------------------ */

static void purge_queue_append(refgc_heap_t *heap, refgc_page_t *page) {
  page->next = NULL;
  page->prev = heap->purge_tail;
  if (heap->purge_tail)
    heap->purge_tail->next = page;
  else
    heap->purge_head = page;
  heap->purge_tail = page;
  page->purge_queued = 1;
}

static void purge_queue_remove(refgc_heap_t *heap, refgc_page_t *page) {
  if (!page->purge_queued) return;
  if (page->prev)
    page->prev->next = page->next;
  else
    heap->purge_head = page->next;
  if (page->next)
    page->next->prev = page->prev;
  else
    heap->purge_tail = page->prev;
  page->next = page->prev = NULL;
  page->purge_queued = 0;
}

/* ---------------------------------------------------------------------------------------------
 * Creating segments, taking and returning slots
 * ------------------------------------------------------------------------------------------ */

refgc_segment_t *refgc__segment_new(refgc_heap_t *heap, refgc_segment_kind_t kind) {
  unsigned shift = kind == REFGC_SEGMENT_SMALL ? REFGC_SMALL_PAGE_SHIFT : REFGC_MEDIUM_PAGE_SHIFT;
  unsigned slots = (unsigned)(REFGC_SEGMENT_SIZE >> shift);
  refgc_segment_t *seg = refgc__os_map(REFGC_SEGMENT_SIZE, REFGC_SEGMENT_SIZE);
  if (!seg) return NULL;
  size_t header = segment_header_size(slots);
  seg->cookie = (uintptr_t)seg ^ refgc__cookie;
  seg->kind = (uint8_t)kind;
  seg->page_shift = (uint8_t)shift;
  seg->slot_count = (uint16_t)slots;
  seg->used_slots = 0;
  seg->free_mask = slots == 64 ? ~(uint64_t)0 : (((uint64_t)1 << slots) - 1);
  seg->dirty_mask = 0;
  seg->header_size = header;
  refgc_track_root(seg, header);
  seg->heap = heap;
  for (unsigned i = 0; i < slots; i++) {
    seg->pages[i].slot = (uint8_t)i;
    seg->pages[i].heap = heap; /* immutable from here on */
  }
  seg->prev = NULL;
  seg->next = heap->segments;
  if (heap->segments) heap->segments->prev = seg;
  /* published with a release store: a snapshot's walk reads the list from another thread
   * (under the trace lock, which the owner does not take here), and finds `next` and the
   * header above written (see refgc_heap_t.segments) */
  __atomic_store_n(&heap->segments, seg, __ATOMIC_RELEASE);
  avail_insert(heap, seg);
  refgc__committed_add(header);
  atomic_fetch_add_explicit(&refgc__gstats.metadata, header, memory_order_relaxed);
  refgc__segmap_set(seg, true);
  return seg;
}

refgc_page_t *refgc__segment_take_slot(refgc_heap_t *heap, refgc_segment_kind_t kind) {
  refgc_segment_t *best = NULL;
  bool best_dirty = false;
  for (refgc_segment_t *s = heap->avail[kind - 1]; s; s = s->avail_next) {
    bool dirty = (s->free_mask & s->dirty_mask) != 0;
    if (!best || (dirty && !best_dirty) ||
        (dirty == best_dirty && s->used_slots > best->used_slots)) {
      best = s;
      best_dirty = dirty;
    }
  }
  if (!best) {
    best = refgc__segment_new(heap, kind);
    if (!best) return NULL;
  }
  uint64_t pick = best->free_mask & best->dirty_mask;
  if (!pick) pick = best->free_mask;
  unsigned slot = (unsigned)__builtin_ctzll(pick);
  uint64_t bit = (uint64_t)1 << slot;
  best->free_mask &= ~bit;
  best->dirty_mask &= ~bit;
  best->used_slots++;
  if (!best->free_mask) avail_remove(heap, best);
  refgc_page_t *page = &best->pages[slot];
  purge_queue_remove(heap, page);
  return page;
}

void refgc__segment_release_slot(refgc_page_t *page) {
  refgc_segment_t *seg = refgc__page_segment(page);
  refgc_heap_t *heap = seg->heap;
  uint64_t bit = (uint64_t)1 << page->slot;
  seg->free_mask |= bit;
  seg->used_slots--;
  page->empty_since_ms = refgc__os_now_ms();
  if (page->touched) {
    seg->dirty_mask |= bit;
    purge_queue_append(heap, page);
  }
  if (!seg->on_avail) avail_insert(heap, seg);
}

void refgc__segment_purge_slot(refgc_page_t *page) {
  refgc_segment_t *seg = refgc__page_segment(page);
  purge_queue_remove(seg->heap, page);
  size_t holes = 0;
  for (int w = 0; w < REFGC_HOLE_WORDS; w++) holes += (size_t)__builtin_popcountll(page->holes[w]);
  size_t resident = page->touched - holes * REFGC_OS_PAGE_SIZE;
  refgc__os_purge(refgc__slot_start(seg, page->slot), page->touched);
  refgc__committed_sub(resident);
  memset(page->holes, 0, sizeof page->holes);
  page->touched = 0;
  seg->dirty_mask &= ~((uint64_t)1 << page->slot);
}

/* ---------------------------------------------------------------------------------------------
 * Checking
 * ------------------------------------------------------------------------------------------ */

int refgc__segment_check(refgc_segment_t *seg) {
  int bad = 0;
  if (seg->cookie != ((uintptr_t)seg ^ refgc__cookie)) {
    refgc__report(REFGC_ECORRUPT, "refgc_heap_check", seg, 0, 0, NULL, 0,
                  "segment %p: bad cookie (header overwritten)", (void *)seg);
    return 1;
  }
  if (refgc__segment_of(seg) != seg) {
    refgc__report(REFGC_ECORRUPT, "refgc_heap_check", seg, 0, 0, NULL, 0,
                  "segment %p: not in the segment map", (void *)seg);
    bad++;
  }
  unsigned used = 0;
  for (unsigned i = 0; i < seg->slot_count; i++) {
    refgc_page_t *page = &seg->pages[i];
    bool is_free = (seg->free_mask >> i) & 1;
    if (is_free != (page->start == NULL)) {
      refgc__report(REFGC_ECORRUPT, "refgc_heap_check", page, 0, 0, NULL, 0,
                    "segment %p slot %u: free mask says %s but the page is %s", (void *)seg, i,
                    is_free ? "free" : "used", page->start ? "in use" : "free");
      bad++;
      continue;
    }
    if (!is_free) {
      used++;
      bad += refgc__page_check(page);
    } else if (((seg->dirty_mask >> i) & 1) != (page->purge_queued != 0)) {
      refgc__report(REFGC_ECORRUPT, "refgc_heap_check", page, 0, 0, NULL, 0,
                    "segment %p slot %u: dirty mask and purge queue disagree", (void *)seg, i);
      bad++;
    }
  }
  if (used != seg->used_slots) {
    refgc__report(REFGC_ECORRUPT, "refgc_heap_check", seg, 0, 0, NULL, 0,
                  "segment %p: used_slots is %u but %u slots are in use", (void *)seg,
                  seg->used_slots, used);
    bad++;
  }
  if ((seg->free_mask != 0) != seg->on_avail) {
    refgc__report(REFGC_ECORRUPT, "refgc_heap_check", seg, 0, 0, NULL, 0,
                  "segment %p: on the available list is %d with free mask %#llx", (void *)seg,
                  (int)seg->on_avail, (unsigned long long)seg->free_mask);
    bad++;
  }
  return bad;
}
