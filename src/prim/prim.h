/* refgc — the OS primitives the heap stands on. One implementation per OS under
 * src/prim/<os>/; the core files contain no OS #ifdefs.
 *
 * Pre/postconditions:
 *   refgc__prim_map(size): size > 0, a multiple of refgc__prim_page_size(). Returns zero-filled,
 *     readable and writable memory aligned to the OS page, or NULL (errno untouched by us).
 *   refgc__prim_unmap(p, size): p and size on OS page boundaries, inside one earlier mapping.
 *   refgc__prim_purge(p, size): as unmap, but the range stays mapped and reads back as zero
 *     (Linux MADV_DONTNEED on private anonymous memory); resident memory drops at once.
 *   refgc__prim_now_ns(): a monotonic clock, cheap (vDSO), resolution of a few ms at worst.
 */
#ifndef REFGC_PRIM_H
#define REFGC_PRIM_H

#include <stddef.h>
#include <stdint.h>

#include "../types.h"

REFGC_INTERNAL void *refgc__prim_map(size_t size);
REFGC_INTERNAL int refgc__prim_unmap(void *p, size_t size);
REFGC_INTERNAL int refgc__prim_purge(void *p, size_t size);
REFGC_INTERNAL uint64_t refgc__prim_now_ns(void);
REFGC_INTERNAL size_t refgc__prim_page_size(void);
/* Resident set size of the process in bytes, 0 if unknown. */
REFGC_INTERNAL size_t refgc__prim_rss(void);

#endif /* REFGC_PRIM_H */
