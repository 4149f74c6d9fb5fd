/* refgc — large blocks (above 128 KiB): one OS mapping each, aligned to the segment size so
 * that the free path finds the block's header by masking, as for small blocks.
 *
 * Layout: [segment header][padding to the requested alignment][block ...][slack to the OS
 * page]. The header costs one OS page at most; the mapping is returned to the OS by munmap as
 * soon as the block is freed, from whichever thread frees it. Live large blocks sit on one
 * global list (under a mutex: a large allocation already costs system calls) so that the heap
 * check and the statistics can see them.
 */
#include <errno.h>
#include <pthread.h>

#include "internal.h"

static pthread_mutex_t large_lock = PTHREAD_MUTEX_INITIALIZER;
static refgc_segment_t *large_list;

void refgc__large_lock(bool lock) {
  if (lock)
    pthread_mutex_lock(&large_lock);
  else
    pthread_mutex_unlock(&large_lock);
}

void *refgc__large_alloc(size_t size, size_t align, bool object) {
  /* the header carries one zeroed page descriptor, so that the small-block free path, which
   * indexes `pages[]`, sees "no block here" and hands large blocks to the slow path */
  size_t header = (sizeof(refgc_segment_t) + sizeof(refgc_page_t) + 63) & ~(size_t)63;
  size_t offset = align > header ? align : ((header + align - 1) & ~(align - 1));
  size_t page = REFGC_OS_PAGE_SIZE;
  if (size > PTRDIFF_MAX - offset - page) {
    errno = ENOMEM;
    return NULL;
  }
  /* at least one usable byte, so that a block of size 0 is still a block (refgc_owns) */
  size_t map = (offset + (size ? size : 1) + page - 1) & ~(page - 1);
  refgc_segment_t *seg = refgc__os_map(map, REFGC_SEGMENT_SIZE);
  if (!seg) {
    errno = ENOMEM;
    return NULL;
  }
  seg->cookie = (uintptr_t)seg ^ refgc__cookie;
  seg->kind = REFGC_SEGMENT_LARGE;
  seg->large_object = object;
  seg->page_shift = REFGC_SEGMENT_SHIFT;
  seg->slot_count = 1; /* pages[0] stays zero: start == carved_end == NULL */
  seg->large_map_size = map;
  seg->large_offset = offset;
  seg->large_usable = map - offset;
  refgc__segmap_set(seg, true); /* before the list: refgc__large_check sees both or neither */
  pthread_mutex_lock(&large_lock);
  seg->prev = NULL;
  seg->next = large_list;
  if (large_list) large_list->prev = seg;
  large_list = seg;
  atomic_fetch_add_explicit(&refgc__gstats.large_count, 1, memory_order_relaxed);
  pthread_mutex_unlock(&large_lock);
  atomic_fetch_add_explicit(&refgc__gstats.large_bytes, map, memory_order_relaxed);
  atomic_fetch_add_explicit(&refgc__gstats.large_allocs, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&refgc__gstats.large_requested, size, memory_order_relaxed);
  refgc__committed_add(map);
  void *p = (uint8_t *)seg + offset;
  refgc_track_malloc(p, size, seg->large_usable);
  return p;
}

void refgc__large_free(refgc_segment_t *seg) {
  size_t map = seg->large_map_size;
  refgc_track_free((uint8_t *)seg + seg->large_offset, seg->large_usable);
  pthread_mutex_lock(&large_lock);
  if (seg->prev)
    seg->prev->next = seg->next;
  else
    large_list = seg->next;
  if (seg->next) seg->next->prev = seg->prev;
  atomic_fetch_sub_explicit(&refgc__gstats.large_count, 1, memory_order_relaxed);
  pthread_mutex_unlock(&large_lock);
  refgc__segmap_set(seg, false);
  atomic_fetch_sub_explicit(&refgc__gstats.large_bytes, map, memory_order_relaxed);
  atomic_fetch_add_explicit(&refgc__gstats.large_frees, 1, memory_order_relaxed);
  refgc__committed_sub(map);
  refgc__os_unmap(seg, map);
}

void refgc__large_foreach(void (*fn)(refgc_segment_t *, void *), void *arg) {
  pthread_mutex_lock(&large_lock);
  for (refgc_segment_t *seg = large_list; seg; seg = seg->next) fn(seg, arg);
  pthread_mutex_unlock(&large_lock);
}

int refgc__large_check(void) {
  int bad = 0;
  size_t count = 0;
  pthread_mutex_lock(&large_lock);
  for (refgc_segment_t *seg = large_list; seg; seg = seg->next) {
    count++;
    if (seg->cookie != ((uintptr_t)seg ^ refgc__cookie) || seg->kind != REFGC_SEGMENT_LARGE ||
        refgc__segment_of(seg) != seg || seg->large_offset + seg->large_usable != seg->large_map_size) {
      refgc__report(REFGC_ECORRUPT, "refgc_heap_check", seg, 0, 0, NULL, 0,
                    "large block segment %p: header corrupted or not in the segment map",
                    (void *)seg);
      bad++;
    }
  }
  size_t counted = atomic_load(&refgc__gstats.large_count);
  pthread_mutex_unlock(&large_lock);
  if (count != counted) {
    refgc__report(REFGC_ECORRUPT, "refgc_heap_check", NULL, 0, 0, NULL, 0,
                  "large blocks: %zu on the list but the count says %zu", count, counted);
    bad++;
  }
  return bad;
}
