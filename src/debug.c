/* refgc — debug mode, switched on at run time by REFGC_DEBUG=1 (no rebuild), as CPython's
 * PYTHONMALLOC=debug.
 *
 * Every block gets a tail inside its own size class, so there is still no header in front:
 *
 *     [ user bytes (n) | guard, ≥ 8 bytes of 0xFD | allocation stack, F words | trailer ]
 *                                                                               8 bytes:
 *                                                            requested size << 8 | state
 *
 * Fresh user bytes are 0xCD; a freed block is 0xDD up to its stack, keeps the stack of its
 * allocation (so a later double free can say where the block came from), and its trailer says
 * "freed". Blocks carved but never allocated are filled the same way, so "every free block
 * reads 0xDD" holds for all free blocks, and allocation checks it: a byte that changed means
 * the program wrote to a block after freeing it. Free checks the trailer (double free, or a
 * wild write), then the guard (overflow). Each finding goes to the error handler with the
 * address, the block's sizes and its allocation stack; the bad call then does nothing more.
 */
#include <errno.h>
#include <execinfo.h>
#include <string.h>

#include "internal.h"

#define DEBUG_CLEAN 0xCD /* fresh user bytes */
#define DEBUG_DEAD 0xDD  /* freed bytes */
#define DEBUG_GUARD 0xFD /* guard bytes after the user bytes */
#define TAG_LIVE 0xA1u
#define TAG_FREED 0xF7u
#define MAX_FRAMES 32

static size_t frames(void) { return (size_t)refgc__opt.debug_frames; }
static size_t tail_size(void) { return 8 + 8 * frames() + 8; }
static size_t stack_offset(size_t usable) { return usable - 8 - 8 * frames(); }
static uint64_t *trailer_of(void *p, size_t usable) {
  return (uint64_t *)((uint8_t *)p + usable - 8);
}

void refgc__debug_fill_free(void *block, size_t block_size) {
  if (block_size < tail_size()) {
    memset((uint8_t *)block + 8, DEBUG_DEAD, block_size - 8);
    return;
  }
  size_t so = stack_offset(block_size);
  memset((uint8_t *)block + 8, DEBUG_DEAD, so - 8);
  memset((uint8_t *)block + so, 0, 8 * frames());
  *trailer_of(block, block_size) = TAG_FREED;
}

/* The allocation stack kept in a block, and how many frames of it are set. */
static int block_stack(void *p, size_t usable, void ***stack) {
  *stack = (void **)((uint8_t *)p + stack_offset(usable));
  int n = 0;
  while ((size_t)n < frames() && (*stack)[n]) n++;
  return n;
}

static bool lookup_usable(const char *func, const void *p, refgc_segment_t **seg,
                          refgc_page_t **page, size_t *usable) {
  if (!refgc__lookup(func, p, seg, page)) return false;
  *usable = refgc__raw_usable(*seg, *page, p);
  return true;
}

void *refgc__debug_malloc(const char *func, size_t size, size_t align, bool zero, bool object) {
  if (size > PTRDIFF_MAX - tail_size()) {
    errno = ENOMEM;
    return NULL;
  }
  uint8_t *p = refgc__raw_malloc(size + tail_size(), align, object);
  if (!p) return NULL;
  refgc_segment_t *seg = refgc__segment_of(p);
  refgc_page_t *page =
      seg->kind == REFGC_SEGMENT_LARGE ? NULL
                                       : &seg->pages[((uintptr_t)p - (uintptr_t)seg) >> seg->page_shift];
  size_t usable = refgc__raw_usable(seg, page, p);
  size_t so = stack_offset(usable);
  /* "bytes requested" counts what the program asked for, not the debug tail */
  if (page)
    page->heap->cls[page->cls].requested -= tail_size(); /* our own heap: just allocated */
  else
    atomic_fetch_sub_explicit(&refgc__gstats.large_requested, tail_size(), memory_order_relaxed);
  refgc_track_open(p, usable);
  if (page) {
    /* a reused block must still read as freed: anything else was written after free */
    uint64_t tr = *trailer_of(p, usable);
    size_t bad = 0;
    for (size_t i = 8; i < so; i++) {
      if (p[i] != DEBUG_DEAD) {
        bad = i;
        break;
      }
    }
    if (bad || (tr & 0xFF) != TAG_FREED) {
      void **stack;
      int depth = block_stack(p, usable, &stack);
      if (bad)
        refgc__report(REFGC_EUSEAFTERFREE, func, p, usable, (size_t)(tr >> 8), stack, depth,
                      "%s: the %zu-byte block at %p was written after it was freed: byte at "
                      "offset %zu is 0x%02x, expected 0x%02x (freed memory)",
                      func, usable, (void *)p, bad, p[bad], DEBUG_DEAD);
      else
        refgc__report(REFGC_EUSEAFTERFREE, func, p, usable, 0, stack, depth,
                      "%s: the %zu-byte block at %p was written after it was freed: its "
                      "trailer no longer says \"freed\"",
                      func, usable, (void *)p);
    }
  }
  memset(p, zero ? 0 : DEBUG_CLEAN, size);
  memset(p + size, DEBUG_GUARD, so - size);
  void *frames_buf[MAX_FRAMES + 2];
  int got = frames() ? backtrace(frames_buf, (int)frames() + 1) : 0;
  void **stack = (void **)(p + so);
  for (size_t i = 0; i < frames(); i++)
    stack[i] = (int)(i + 1) < got ? frames_buf[i + 1] : NULL; /* frame 0 is this function */
  *trailer_of(p, usable) = ((uint64_t)size << 8) | TAG_LIVE;
  refgc_track_close(p + size, usable - size);
  return p;
}

void refgc__debug_free(const char *func, void *ptr) {
  refgc_segment_t *seg;
  refgc_page_t *page;
  size_t usable;
  if (!lookup_usable(func, ptr, &seg, &page, &usable)) return;
  uint8_t *p = ptr;
  refgc_track_open(p, usable);
  uint64_t tr = *trailer_of(p, usable);
  size_t so = stack_offset(usable);
  size_t n = (size_t)(tr >> 8);
  void **stack;
  int depth = block_stack(p, usable, &stack);
  if ((tr & 0xFF) == TAG_FREED) {
    refgc__report(REFGC_EDOUBLEFREE, func, p, usable, n, stack, depth,
                  "%s(%p): block is already free (double free) — a %zu-byte block in the "
                  "%zu-byte size class",
                  func, ptr, n, usable);
    refgc_track_close(p, usable);
    return;
  }
  if ((tr & 0xFF) != TAG_LIVE || n > so) {
    refgc__report(REFGC_EOVERFLOW, func, p, usable, 0, NULL, 0,
                  "%s(%p): the trailer of this %zu-byte block is overwritten (0x%016llx): a "
                  "write far past the end of the block, or a pointer refgc did not return",
                  func, ptr, usable, (unsigned long long)tr);
    refgc_track_close(p, usable);
    return;
  }
  for (size_t i = n; i < so; i++) {
    if (p[i] != DEBUG_GUARD) {
      refgc__report(REFGC_EOVERFLOW, func, p, usable, n, stack, depth,
                    "%s(%p): write past the end of a %zu-byte block: guard byte at offset %zu "
                    "(%zu bytes past the end) is 0x%02x, expected 0x%02x",
                    func, ptr, n, i, i - n, p[i], DEBUG_GUARD);
      refgc_track_close(p, usable);
      return;
    }
  }
  memset(p, DEBUG_DEAD, so);
  *trailer_of(p, usable) = ((uint64_t)n << 8) | TAG_FREED;
  refgc__raw_free_valid(seg, page, p);
}

REFGC_NO_ASAN static uint64_t peek_trailer(const void *ptr, size_t usable) {
  return *(const volatile uint64_t *)trailer_of((void *)(uintptr_t)ptr, usable);
}

size_t refgc__debug_usable(const char *func, const void *ptr) {
  refgc_segment_t *seg;
  refgc_page_t *page;
  size_t usable;
  if (!lookup_usable(func, ptr, &seg, &page, &usable)) return 0;
  uint64_t t = peek_trailer(ptr, usable);
  if ((t & 0xFF) == TAG_LIVE) return (size_t)(t >> 8);
  refgc__report((t & 0xFF) == TAG_FREED ? REFGC_EDOUBLEFREE : REFGC_EOVERFLOW, func, ptr, usable,
                0, NULL, 0, "%s(%p): block is %s", func, ptr,
                (t & 0xFF) == TAG_FREED ? "free (used after free)" : "not live (trailer overwritten)");
  return 0;
}

REFGC_NO_ASAN int refgc__debug_stack(const void *ptr, void **out, int max) {
  if (!refgc__opt.debug || !frames()) return 0;
  size_t usable = refgc__block_usable(ptr);
  if (usable < tail_size()) return 0;
  uint8_t *p = (uint8_t *)(uintptr_t)ptr;
  void *const volatile *stack = (void *const volatile *)(p + stack_offset(usable));
  int n = 0;
  while (n < max && (size_t)n < frames() && stack[n]) {
    out[n] = stack[n];
    n++;
  }
  return n;
}

bool refgc__debug_is_live(const void *ptr, size_t usable) {
  return (peek_trailer(ptr, usable) & 0xFF) == TAG_LIVE;
}
