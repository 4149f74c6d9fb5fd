/* refgc — the OS layer: aligned mappings, giving memory back, injected failures.
 *
 * Alignment: the heap finds a segment by masking an address, so segments must be aligned to
 * their size. The OS aligns only to its page, so `refgc__os_map` maps `size + align - page`
 * bytes and unmaps the unaligned head and the tail: three system calls, paid once per 4 MiB.
 *
 * Failure injection (`refgc_test_os_fail_after`): a counter of requests still allowed; every
 * request past it fails as if the OS had refused, so tests can drive every out-of-memory path.
 */
#include <errno.h>

#include "internal.h"
#include "prim/prim.h"

static atomic_long os_fail_after = -1; /* < 0: never fail */

void refgc_test_os_fail_after(long n) { atomic_store(&os_fail_after, n < 0 ? -1 : n); }

/* Consume one allowed request; false when this request must fail. */
static bool os_request_allowed(void) {
  long n = atomic_load_explicit(&os_fail_after, memory_order_relaxed);
  while (n >= 0) {
    if (n == 0) return false;
    if (atomic_compare_exchange_weak(&os_fail_after, &n, n - 1)) return true;
  }
  return true;
}

void *refgc__os_map(size_t size, size_t align) {
  if (!os_request_allowed()) {
    errno = ENOMEM;
    return NULL;
  }
  size_t page = REFGC_OS_PAGE_SIZE;
  if (align <= page) {
    void *p = refgc__prim_map(size);
    if (p) atomic_fetch_add_explicit(&refgc__gstats.reserved, size, memory_order_relaxed);
    return p;
  }
  size_t over = size + align - page;
  if (over < size) return NULL; /* overflow */
  uint8_t *raw = refgc__prim_map(over);
  if (!raw) return NULL;
  uintptr_t a = ((uintptr_t)raw + align - 1) & ~(uintptr_t)(align - 1);
  size_t head = a - (uintptr_t)raw;
  size_t tail = over - head - size;
  if (head) refgc__prim_unmap(raw, head);
  if (tail) refgc__prim_unmap((uint8_t *)a + size, tail);
  atomic_fetch_add_explicit(&refgc__gstats.reserved, size, memory_order_relaxed);
  return (void *)a;
}

void refgc__os_unmap(void *p, size_t size) {
  if (!p || !size) return;
  refgc_track_unmap(p, size);
  refgc__prim_unmap(p, size);
  atomic_fetch_sub_explicit(&refgc__gstats.reserved, size, memory_order_relaxed);
  atomic_fetch_add_explicit(&refgc__gstats.released_total, size, memory_order_relaxed);
  atomic_fetch_add_explicit(&refgc__gstats.release_calls, 1, memory_order_relaxed);
}

void refgc__os_purge(void *p, size_t size) {
  if (!size) return;
  refgc__prim_purge(p, size);
  atomic_fetch_add_explicit(&refgc__gstats.released_total, size, memory_order_relaxed);
  atomic_fetch_add_explicit(&refgc__gstats.release_calls, 1, memory_order_relaxed);
}

uint64_t refgc__os_now_ns(void) { return refgc__prim_now_ns(); }
