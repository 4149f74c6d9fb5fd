/* refgc — telling AddressSanitizer and valgrind which heap bytes are allocated.
 *
 * The heap takes its memory straight from the OS, so neither tool knows where our blocks are
 * unless we say so. With REFGC_ASAN, free blocks are poisoned and a block is unpoisoned for
 * exactly the bytes the program asked for, so use-after-free and overflow into a block's slack
 * are reported by ASan. With REFGC_VALGRIND, blocks are announced to memcheck as malloc-like
 * blocks. Internal reads of a free block's link go through `refgc__block_next` and
 * `refgc__block_set_next`, which open the link word for the duration of the access.
 * A program that asks `refgc_usable_size` may use every byte it was told about, so that call
 * opens the block's slack (`refgc_track_usable`); overflow into the slack of blocks whose
 * size was never asked for is still caught.
 * Without either option every macro here is empty and costs nothing.
 */
#ifndef REFGC_TRACK_H
#define REFGC_TRACK_H

#include <stddef.h>

#if defined(REFGC_ASAN)
#include <sanitizer/asan_interface.h>
#include <sanitizer/lsan_interface.h>
/* Segment headers (mmap'd) hold the only pointers to the tracer's side arrays (C library
 * malloc): LeakSanitizer must scan them */
#define refgc_track_root(p, n) __lsan_register_root_region((p), (n))
#define refgc_track_malloc(p, req, usable) ASAN_UNPOISON_MEMORY_REGION((p), (req))
#define refgc_track_free(p, usable) ASAN_POISON_MEMORY_REGION((p), (usable))
#define refgc_track_open(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#define refgc_track_close(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define refgc_track_fresh(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define refgc_track_usable(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
/* ASan's shadow outlives munmap: clear it, or the next mapping there starts poisoned */
#define refgc_track_unmap(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
/* Whether the byte at `p` is poisoned: a free heap block (the collector's page walks skip it) */
#define refgc_track_is_free(p) (__asan_address_is_poisoned(p) != 0)
#define REFGC_TRACKING 1
#elif defined(REFGC_VALGRIND)
#include <valgrind/memcheck.h>
#include <valgrind/valgrind.h>
#define refgc_track_malloc(p, req, usable) VALGRIND_MALLOCLIKE_BLOCK((p), (req), 0, 0)
#define refgc_track_free(p, usable) VALGRIND_FREELIKE_BLOCK((p), 0)
#define refgc_track_open(p, n) VALGRIND_MAKE_MEM_DEFINED((p), (n))
#define refgc_track_close(p, n) VALGRIND_MAKE_MEM_NOACCESS((p), (n))
#define refgc_track_fresh(p, n) VALGRIND_MAKE_MEM_NOACCESS((p), (n))
#define refgc_track_usable(p, n) VALGRIND_MAKE_MEM_UNDEFINED((p), (n))
#define refgc_track_unmap(p, n) ((void)(p), (void)(n))
#define refgc_track_is_free(p) ((void)(p), 0)
#define refgc_track_root(p, n) ((void)(p), (void)(n))
#define REFGC_TRACKING 1
#else
#define refgc_track_malloc(p, req, usable) ((void)(p), (void)(req), (void)(usable))
#define refgc_track_free(p, usable) ((void)(p), (void)(usable))
#define refgc_track_open(p, n) ((void)(p), (void)(n))
#define refgc_track_close(p, n) ((void)(p), (void)(n))
#define refgc_track_fresh(p, n) ((void)(p), (void)(n))
#define refgc_track_usable(p, n) ((void)(p), (void)(n))
#define refgc_track_unmap(p, n) ((void)(p), (void)(n))
#define refgc_track_is_free(p) ((void)(p), 0)
#define refgc_track_root(p, n) ((void)(p), (void)(n))
#define REFGC_TRACKING 0
#endif

/* A function that peeks at bytes the heap keeps poisoned (a debug block's trailer and stack)
 * without unpoisoning them: toggling the shadow would race with another thread peeking at
 * the same block. */
#if defined(REFGC_ASAN) && defined(__GNUC__)
#define REFGC_NO_ASAN __attribute__((no_sanitize_address))
#else
#define REFGC_NO_ASAN
#endif

#endif /* REFGC_TRACK_H */
