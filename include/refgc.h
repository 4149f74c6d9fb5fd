/* refgc — a memory manager for C programs and language runtimes.
 *
 * This header is the manual. Every declaration says who owns what, what NULL means, from which
 * threads it may be called and how it reports errors.
 *
 * Part 1, the heap: a thread-safe size-class allocator (this file).
 * Part 2, objects: reference counting, finalizers, weak references (refgc/object.h,
 * included at the end of this file).
 * Part 3, the cycle collector (refgc/gc.h, included at the end of this file).
 * Part 4, tracing and introspection (refgc/trace.h, included at the end of this file).
 *
 * The heap:
 *   - Small blocks (up to 128 KiB) come from per-thread heaps with no header in front of the
 *     block; large blocks come straight from the OS.
 *   - Any thread may free any block.
 *   - Empty memory goes back to the OS after a short delay; `refgc_heap_collect()` gives back
 *     everything that can be given back at once, down to single 4 KiB OS pages inside partly
 *     used pages.
 *   - `REFGC_DEBUG=1` in the environment switches on fill patterns, guard bytes and checks for
 *     double, foreign and interior frees, overflows and writes after free (docs/environment.md).
 *
 * Errors: allocation calls return NULL and set `errno` (ENOMEM, EINVAL) exactly as the C
 * library does. Misuse that the heap detects (a foreign pointer passed to `refgc_free`, a double
 * free in debug mode, ...) is reported through the error handler (`refgc_set_error_handler`);
 * the default handler prints the report to stderr and aborts.
 */
#ifndef REFGC_H
#define REFGC_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "refgc/version.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------------
 * Export and attribute macros
 * ------------------------------------------------------------------------------------------ */

#if defined(REFGC_BUILDING_SHARED) && defined(REFGC_USING_SHARED)
#error "define REFGC_BUILDING_SHARED (building librefgc) or REFGC_USING_SHARED, not both"
#endif

#if defined(_WIN32)
#if defined(REFGC_BUILDING_SHARED)
#define REFGC_API __declspec(dllexport)
#elif defined(REFGC_USING_SHARED)
#define REFGC_API __declspec(dllimport)
#else
#define REFGC_API
#endif
#elif defined(__GNUC__)
#define REFGC_API __attribute__((visibility("default")))
#else
#define REFGC_API
#endif

#if defined(__GNUC__)
/* An allocation function returning fresh memory of `n` bytes (argument index). */
#define REFGC_ALLOC_ATTR(n) __attribute__((malloc, warn_unused_result, alloc_size(n)))
#define REFGC_ALLOC_ATTR2(n, m) __attribute__((malloc, warn_unused_result, alloc_size(n, m)))
#define REFGC_NODISCARD __attribute__((warn_unused_result))
#else
#define REFGC_ALLOC_ATTR(n)
#define REFGC_ALLOC_ATTR2(n, m)
#define REFGC_NODISCARD
#endif

/* ---------------------------------------------------------------------------------------------
 * Version
 * ------------------------------------------------------------------------------------------ */

/** refgc_version(): the library's `REFGC_VERSION_HEX` (may differ from the header's). */
REFGC_API unsigned refgc_version(void);

/** refgc_version_string(): the library's version as "MAJOR.MINOR.PATCH"; static storage. */
REFGC_API const char *refgc_version_string(void);

/* ---------------------------------------------------------------------------------------------
 * Errors
 *
 * Codes are negative ints, pinned once released. `REFGC_OK` is 0.
 * ------------------------------------------------------------------------------------------ */

#define REFGC_ERRNO_MAP(XX)                                              \
  XX(ENOMEM, -1, "out of memory")                                       \
  XX(EINVAL, -2, "invalid argument")                                    \
  XX(EFOREIGN, -3, "pointer was not allocated by refgc")                \
  XX(EINTERIOR, -4, "pointer into the middle of a block")               \
  XX(EDOUBLEFREE, -5, "block is already free")                          \
  XX(EOVERFLOW, -6, "write past the end of a block")                    \
  XX(EUSEAFTERFREE, -7, "write to a block after it was freed")          \
  XX(ECORRUPT, -8, "heap metadata is corrupted")                       \
  XX(EBADOBJECT, -9, "not a live object")                               \
  XX(EREFCOUNT, -10, "reference count would drop below zero")           \
  XX(EBUSY, -11, "a collection is already running")                   \
  XX(EIO, -12, "a file could not be read or written")                  \
  XX(EFORMAT, -13, "not a valid refgc snapshot file")

/** Error codes. */
typedef enum refgc_err {
  REFGC_OK = 0,
#define REFGC_ERR_ENUM_(name, value, text) REFGC_##name = (value),
  REFGC_ERRNO_MAP(REFGC_ERR_ENUM_)
#undef REFGC_ERR_ENUM_
} refgc_err;

/** refgc_strerror(): a sentence for `err` ("out of memory"); "unknown error" for other values.
 * Static storage; any thread. */
REFGC_API const char *refgc_strerror(int err);

/** refgc_err_name(): the code's name ("REFGC_ENOMEM"); "REFGC_UNKNOWN" for other values. */
REFGC_API const char *refgc_err_name(int err);

/** What the heap reports to the error handler.
 * All pointers are valid only during the handler call. */
typedef struct refgc_error_info_s {
  int code;                /**< a `REFGC_E*` code */
  const char *func;        /**< the API call that detected it, e.g. "refgc_free" */
  const void *ptr;         /**< the address passed to that call */
  size_t block_size;       /**< size of the block `ptr` falls in, 0 if none */
  size_t requested;        /**< size the program asked for (debug mode), 0 if unknown */
  const char *message;     /**< the whole report, one or more lines, ready to print */
  void *const *alloc_stack; /**< return addresses of the block's allocation (debug mode) */
  int alloc_stack_depth;   /**< number of entries in `alloc_stack`, 0 if unknown */
} refgc_error_info_t;

/** An error handler. It may return (the offending call then does nothing more: a bad free
 * leaves the block alone, so memory may leak but is never corrupted) or not return (abort,
 * longjmp). It must not call refgc allocation functions. It runs on the thread that made the
 * bad call. */
typedef void refgc_error_fn(const refgc_error_info_t *info, void *arg);

/** refgc_set_error_handler(): route heap error reports to `fn(info, arg)`. NULL restores the
 * default handler, which prints `info->message` to stderr and calls abort(). Any thread; takes
 * effect for reports that start after it returns. */
REFGC_API void refgc_set_error_handler(refgc_error_fn *fn, void *arg);

/** refgc_error_count(): number of errors reported since the program started; any thread. */
REFGC_API unsigned long refgc_error_count(void);

/* ---------------------------------------------------------------------------------------------
 * Allocation
 *
 * Thread context for every call in this section: any thread, no lock needed, and any thread may
 * free or reallocate a block that another thread allocated. Each thread allocates from its own
 * heap; the heap of a thread that exits is adopted by the next thread that starts, and its
 * empty pages are returned to the OS by `refgc_heap_collect()`.
 *
 * Every returned block is aligned to 16 bytes (`alignof(max_align_t)`), and to the largest
 * power of two that divides its size class when that is smaller than 4 KiB.
 * ------------------------------------------------------------------------------------------ */

/** refgc_malloc(): a block of at least `size` bytes, uninitialised (filled with 0xCD in debug
 * mode). `size` 0 returns a unique minimum-size block. @return the block, owned by the caller
 * (release with `refgc_free`), or NULL with errno = ENOMEM. */
REFGC_API void *refgc_malloc(size_t size) REFGC_ALLOC_ATTR(1);

/** refgc_calloc(): `count * size` bytes, zeroed. @return the block, or NULL with errno =
 * ENOMEM when out of memory or when `count * size` overflows. */
REFGC_API void *refgc_calloc(size_t count, size_t size) REFGC_ALLOC_ATTR2(1, 2);

/** refgc_realloc(): resize `p` to `size` bytes, keeping the first min(old, new) bytes.
 * `p` NULL behaves as `refgc_malloc(size)`. `size` 0 frees `p` and returns a unique
 * minimum-size block (as `refgc_malloc(0)`), so NULL always means failure.
 * @return the block (possibly `p` itself), or NULL with errno = ENOMEM, in which case `p` is
 * untouched and still owned by the caller. A `p` that refgc did not allocate is reported to
 * the error handler and NULL is returned with errno = EINVAL. */
REFGC_API void *refgc_realloc(void *p, size_t size) REFGC_ALLOC_ATTR(2);

/** refgc_free(): release `p`. NULL does nothing. `p` must be a block returned by this heap and
 * not yet freed; a pointer refgc did not allocate, or one into the middle of a block, is
 * always reported to the error handler and the call does nothing else. A double free is
 * reported in debug mode (in normal mode it is detected only when cheap). */
REFGC_API void refgc_free(void *p);

/** refgc_usable_size(): bytes usable at `p` (≥ what was asked for; exactly what was asked for
 * in debug mode, so that the guard bytes stay intact). NULL returns 0. A pointer refgc did
 * not allocate is reported to the error handler and 0 is returned. */
REFGC_API size_t refgc_usable_size(const void *p);

/** refgc_aligned_alloc(): a block of `size` bytes aligned to `alignment`, which must be a
 * power of two no larger than `REFGC_MAX_ALIGN`. Release with `refgc_free`.
 * @return the block, or NULL with errno = EINVAL (bad alignment) or ENOMEM. */
REFGC_API void *refgc_aligned_alloc(size_t alignment, size_t size) REFGC_ALLOC_ATTR(2);

/** Largest alignment `refgc_aligned_alloc` accepts: 2 MiB. */
#define REFGC_MAX_ALIGN ((size_t)2 << 20)

/** refgc_owns(): 1 if `p` is the start of a block in refgc's heap, else 0: a pointer into
 * the middle of a block, into an unused page or outside the heap gives 0. Without a header,
 * a small block that was freed but whose page is still in use cannot be told from a live one
 * in O(1): it gives 1 in normal mode; in debug mode (and for large blocks, which go back to
 * the OS) a freed block gives 0. O(1); never reports an error; any thread. */
REFGC_API int refgc_owns(const void *p);

/* ---------------------------------------------------------------------------------------------
 * Giving memory back, checking the heap
 * ------------------------------------------------------------------------------------------ */

/** refgc_heap_collect(): give back to the OS, now, everything that can be given back: the
 * calling thread's empty pages, the OS pages inside its partly used pages that hold only free
 * blocks, and the same for the heaps of threads that have exited. Other running threads are
 * asked to do the same at their next allocation that takes the slow path. Any thread; takes a
 * global lock only to visit exited threads' heaps. */
REFGC_API void refgc_heap_collect(void);

/** refgc_heap_check(): verify the invariants of the calling thread's heap and of every exited
 * thread's heap (page lists, free lists, block counts, the segment map). Every violation is
 * reported to the error handler with code REFGC_ECORRUPT. Cost: linear in the heap.
 * @return 0 if the heap is consistent, else the number of problems found. */
REFGC_API int refgc_heap_check(void);

/* ---------------------------------------------------------------------------------------------
 * Statistics
 * ------------------------------------------------------------------------------------------ */

/** Number of size classes, an upper bound for `refgc_heap_stats_t.classes`. */
#define REFGC_MAX_CLASSES 64

/** Per size class figures. */
typedef struct refgc_class_stats_s {
  size_t block_size;      /**< bytes per block in this class */
  size_t blocks_in_use;   /**< live blocks */
  size_t blocks_capacity; /**< blocks the class's pages can hold */
  size_t pages;           /**< pages owned by this class */
  uint64_t total_allocs;  /**< allocations ever made in this class */
} refgc_class_stats_t;

/** refgc_heap_stats_t version filled in by this library. */
#define REFGC_HEAP_STATS_VERSION 1

/** Heap figures, summed over every thread's heap. Counters that the owning thread updates
 * without locks are read without stopping it, so a concurrent snapshot is approximate; a block
 * freed by a thread other than its owner counts as in use until the owner next collects its
 * remote frees. */
typedef struct refgc_heap_stats_s {
  uint32_t size;            /**< set by the caller: sizeof(refgc_heap_stats_t) */
  uint32_t version;         /**< set by the library: REFGC_HEAP_STATS_VERSION */
  uint64_t requested_total; /**< bytes asked for by every allocation so far */
  uint64_t alloc_count;     /**< allocations so far (small and large) */
  uint64_t free_count;      /**< frees so far */
  size_t in_use;            /**< bytes in live blocks (block sizes, not requested sizes) */
  size_t in_use_peak;       /**< highest `in_use` seen (sampled when the heap grows) */
  size_t committed;         /**< bytes that may be resident: used pages, not-yet-returned
                                 empty pages, metadata, large blocks */
  size_t committed_peak;    /**< highest `committed` */
  size_t reserved;          /**< address space held from the OS */
  size_t metadata;          /**< bytes of heap bookkeeping (segment headers, heap structs) */
  size_t large_count;       /**< live large blocks */
  size_t large_bytes;       /**< bytes mapped for live large blocks */
  uint64_t released_total;  /**< bytes given back to the OS so far (madvise and munmap) */
  uint64_t release_calls;   /**< calls made to give memory back */
  size_t heaps;             /**< thread heaps in existence */
  size_t heaps_abandoned;   /**< heaps of exited threads waiting for adoption */
  double fragmentation;     /**< in_use / committed (1.0 is perfect, small is bad) */
  uint32_t num_classes;     /**< entries used in `classes` */
  uint32_t reserved_u32;
  refgc_class_stats_t classes[REFGC_MAX_CLASSES];
  uint64_t reserved_for_future[8];
} refgc_heap_stats_t;

/** refgc_heap_stats(): fill `*out` (whose `size` field the caller sets to sizeof(*out)).
 * @return 0, or REFGC_EINVAL if `out` is NULL or `out->size` is too small. Any thread. */
REFGC_API int refgc_heap_stats(refgc_heap_stats_t *out);

/** refgc_heap_stats_print(): a text report in the spirit of `sys._debugmallocstats()`: one row
 * per size class in use, then the totals. `out` NULL means stderr. Any thread. */
REFGC_API void refgc_heap_stats_print(FILE *out);

/** refgc_heap_stats_print_json(): the same figures as one JSON object followed by a newline.
 * `out` NULL means stdout. @return 0, or REFGC_EINVAL when writing failed. */
REFGC_API int refgc_heap_stats_print_json(FILE *out);

/* ---------------------------------------------------------------------------------------------
 * Options
 * ------------------------------------------------------------------------------------------ */

/** refgc_debug_mode(): 1 if debug mode is on (REFGC_DEBUG was set when the heap started). */
REFGC_API int refgc_debug_mode(void);

/* ---------------------------------------------------------------------------------------------
 * Testing hooks. Not for production; excluded from the ABI promise.
 * ------------------------------------------------------------------------------------------ */

/** refgc_test_os_fail_after(): make the OS layer refuse every request for memory after the
 * next `n` succeed (n = 0: refuse from now on); a negative `n` turns refusals off. Refused
 * requests make allocation calls return NULL with errno = ENOMEM. Any thread. */
REFGC_API void refgc_test_os_fail_after(long n);

#include "refgc/object.h"
#include "refgc/gc.h"
#include "refgc/trace.h"

#ifdef __cplusplus
}
#endif

#endif /* REFGC_H */
