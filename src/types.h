/* refgc — internal types of the heap.
 *
 * Glossary, from the OS down to the block:
 *
 *   segment  A 4 MiB region reserved from the OS and aligned to 4 MiB, so that any interior
 *            address finds its segment by masking. Small segments hold 64 pages of 64 KiB,
 *            medium segments 8 pages of 512 KiB; a large segment holds one large block. The
 *            segment header (this file's `refgc_segment_t`) sits at the start of the segment
 *            and shortens its first page.
 *   segmap   One bit per possible segment address (48-bit address space / 4 MiB = 2^26 bits,
 *            8 MiB of zero-initialised, lazily committed memory). Answers "is this address
 *            ours?" in O(1) without touching the address.
 *   page     A run of blocks of one size class inside a segment slot. Carved lazily: blocks
 *            are handed to the free list a batch at a time.
 *   block    The unit handed to the program. A free block holds the link of its free list in
 *            its first word; a live block has no header at all.
 *   heap     Per-thread state: the current page of each size class, the other pages of each
 *            class binned by how full they are, the thread's segments, the queue of empty
 *            pages waiting to be returned to the OS. A heap is never destroyed: the heap of a
 *            thread that exits is abandoned and adopted whole by the next thread that starts.
 */
#ifndef REFGC_TYPES_H
#define REFGC_TYPES_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "refgc.h"

/* ---------------------------------------------------------------------------------------------
 * Compiler helpers
 * ------------------------------------------------------------------------------------------ */

#if defined(__GNUC__)
#define refgc_likely(x) __builtin_expect(!!(x), 1)
#define refgc_unlikely(x) __builtin_expect(!!(x), 0)
#define REFGC_NOINLINE __attribute__((noinline))
#define REFGC_INLINE static inline __attribute__((always_inline))
#define REFGC_INTERNAL __attribute__((visibility("hidden")))
#define REFGC_TLS_MODEL __attribute__((tls_model("initial-exec")))
#else
#define refgc_likely(x) (x)
#define refgc_unlikely(x) (x)
#define REFGC_NOINLINE
#define REFGC_INLINE static inline
#define REFGC_INTERNAL
#define REFGC_TLS_MODEL
#endif

/* ---------------------------------------------------------------------------------------------
 * Geometry. Tunables are overridable at build time (-DREFGC_...).
 * ------------------------------------------------------------------------------------------ */

#define REFGC_SEGMENT_SHIFT 22 /* 4 MiB: large enough to amortise one header, small enough
                                  that a thread with a small heap does not reserve much */
#define REFGC_SEGMENT_SIZE ((size_t)1 << REFGC_SEGMENT_SHIFT)
#define REFGC_SEGMENT_MASK (REFGC_SEGMENT_SIZE - 1)

#define REFGC_SMALL_PAGE_SHIFT 16  /* 64 KiB pages for blocks up to 8 KiB */
#define REFGC_MEDIUM_PAGE_SHIFT 19 /* 512 KiB pages for blocks up to 128 KiB */
#define REFGC_SMALL_SLOTS (REFGC_SEGMENT_SIZE >> REFGC_SMALL_PAGE_SHIFT)   /* 64 */
#define REFGC_MEDIUM_SLOTS (REFGC_SEGMENT_SIZE >> REFGC_MEDIUM_PAGE_SHIFT) /* 8 */
#define REFGC_MAX_SLOTS REFGC_SMALL_SLOTS

#define REFGC_OS_PAGE_SHIFT 12 /* 4 KiB: the unit of giving memory back */
#define REFGC_OS_PAGE_SIZE ((size_t)1 << REFGC_OS_PAGE_SHIFT)
#define REFGC_HOLE_WORDS 2 /* bit per OS page of a slot: 512 KiB / 4 KiB = 128 bits */

#define REFGC_ADDRESS_BITS 48 /* user-space addresses on x86-64 and AArch64 (4-level) */
#define REFGC_SEGMAP_BITS (REFGC_ADDRESS_BITS - REFGC_SEGMENT_SHIFT)

#define REFGC_NUM_CLASSES 64
/* A lane is a size class for one kind of block: lanes 0..63 hold raw blocks (refgc_malloc),
 * lanes 64..127 hold objects (refgc_new). Objects never share a page with raw blocks, so the
 * cycle collector can walk object pages and tell every block's state from its first word. */
#define REFGC_NUM_LANES (2 * REFGC_NUM_CLASSES)
#define REFGC_OBJECT_LANE REFGC_NUM_CLASSES
#define REFGC_LANE_CLASS(lane) ((lane) & (REFGC_NUM_CLASSES - 1))
#define REFGC_NUM_SMALL_CLASSES 48         /* classes 0..47 live in small pages */
#define REFGC_SMALL_FAST_MAX 512           /* sizes 1..512 map to a class by a shift */
#define REFGC_SMALL_MAX ((size_t)8 << 10)  /* largest block of a small page */
#define REFGC_MEDIUM_MAX ((size_t)128 << 10) /* largest block of a medium page; above: large */
#define REFGC_MIN_ALIGN 16

/* Blocks carved from a fresh page per refill of its free list: enough to amortise the slow
 * path, few enough that a page used for a handful of blocks touches one or two OS pages. */
#ifndef REFGC_CARVE_BYTES
#define REFGC_CARVE_BYTES ((size_t)16 << 10)
#endif

/* Fullness bins: a non-current page with free blocks sits in bin b when
 * floor(b) <= used < floor(b+1), floor(b) = b * capacity / REFGC_BINS (floor(0) = 1).
 * Allocation takes pages from the highest bin first, so nearly empty pages drain. */
#define REFGC_BINS 4
#define REFGC_BIN_FULL 0xFE    /* not in any list: every block is allocated */
/* A full page goes back to the bins once 1/REFGC_FULL_RETURN of its blocks (at least one)
 * have been freed: a page with a single free block is not worth switching to. */
#ifndef REFGC_FULL_RETURN
#define REFGC_FULL_RETURN 8
#endif
#define REFGC_BIN_CURRENT 0xFF /* the heap's current page for its class */

/* ---------------------------------------------------------------------------------------------
 * Blocks
 * ------------------------------------------------------------------------------------------ */

typedef struct refgc_block_s {
  struct refgc_block_s *next;
} refgc_block_t;

/* ---------------------------------------------------------------------------------------------
 * Pages
 *
 * A page descriptor lives in its segment's header, one per slot. Invariants of a page in use
 * (`start != NULL`), checked by `refgc__page_check`:
 *   - `carved <= capacity`; blocks are `start + i * block_size` for i < carved;
 *   - |free| + |local_free| + used + hidden == carved, where `hidden` counts the free blocks
 *     that overlap an OS page given back to the OS (a `holes` bit) and are on no list; `used`
 *     includes blocks freed by other threads that sit in `xthread_free` (whose high 16 bits
 *     count them);
 *   - a block overlapping a hole page is free and on no list; a block on a list overlaps no
 *     hole page (so allocation never touches memory given back);
 *   - `bin` is REFGC_BIN_CURRENT iff the page is its heap's current page for `cls`;
 *     REFGC_BIN_FULL iff the page is on no list and was found with every block allocated;
 *     otherwise the page is on `heap->bins[cls][bin]`;
 *   - `rebin_at` is the `used` value at or below which a local free must take the slow path
 *     (0 for the current page, capacity - 1 - capacity / REFGC_FULL_RETURN for a full page,
 *     floor(bin) - 1 otherwise);
 *   - `heap` and `slot` are set when the segment is made and never change;
 *   - only the owning heap's thread writes the other non-atomic fields; other threads read
 *     the fields that validate a pointer (`start`, `carved_end`, `div_magic`, `block_size`)
 *     and write only `xthread_free`, `queued` and `pending_next` (the latter only while
 *     they hold `queued`).
 * A free slot has `start == NULL`, `carved_end == NULL`, so every pointer into it is invalid.
 * ------------------------------------------------------------------------------------------ */

struct refgc_heap_s;

typedef struct refgc_page_s {
  /* hot, first cache line: the fast paths of malloc and free read nothing else */
  _Alignas(64) refgc_block_t *free; /* blocks ready to allocate */
  uint32_t used;              /* blocks allocated (see above) */
  uint32_t rebin_at;          /* a local free with --used <= rebin_at goes slow */
  refgc_block_t *local_free;  /* blocks freed by the owning thread */
  struct refgc_heap_s *heap;  /* owner; fixed for the segment's lifetime */
  uint8_t *start;             /* first block, NULL for a free slot */
  _Atomic(uint8_t *) carved_end; /* end of the carved blocks: valid blocks are below it.
                                    Grows while other threads validate remote frees against
                                    it: relaxed atomic (plain moves), see refgc__carved_end */
  uint64_t div_magic;         /* floor(off * div_magic >> 40) == off / block_size */
  uint32_t block_size;
  uint8_t cls;                /* lane: size class, + REFGC_OBJECT_LANE for object pages */
  uint8_t bin;                /* fullness bin, REFGC_BIN_FULL or REFGC_BIN_CURRENT */
  uint8_t slot;               /* index in the segment */
  atomic_uchar slow_free;     /* frees in this page take the generic path: debug mode, or the
                                 page holds traced blocks (trace.c). Owner stores, any thread
                                 loads (relaxed: plain moves) */
  /* cold, second cache line: remote frees, lists, giving back */
  /* blocks freed by other threads: a tagged word, the list head in the low 48 bits and the
   * list's length in the high 16 (≤ 4096 blocks per page), so the owner learns how many
   * blocks came back without walking the list (each block is a cache miss: another core
   * wrote it). Pushes are ABA-safe: the word fully describes the list it replaces. */
  _Atomic uint64_t xthread_free;
  struct refgc_page_s *pending_next;     /* link of the pending stack */
  struct refgc_page_s *next, *prev;      /* bin list, or purge queue for a free slot */
  uint64_t holes[REFGC_HOLE_WORDS];      /* OS pages of the slot given back while in use */
  uint16_t capacity;                     /* blocks the page can hold (≤ 4096) */
  uint16_t carved;                       /* blocks carved so far */
  uint32_t touched;                      /* bytes from the slot start ever handed out
                                            (OS-page rounded): the slot's resident bytes are
                                            at most `touched` minus the hole pages */
  atomic_uchar queued;                   /* on the owner's pending stack */
  uint8_t purge_queued;                  /* free slot waiting on the heap's purge queue */
  uint8_t reserved_[2];
  uint32_t empty_since_ms;               /* free slot: when it became free (wraps: compare
                                            by unsigned difference) */
} refgc_page_t;

_Static_assert(sizeof(refgc_page_t) == 128, "page descriptors are two cache lines");

/* ---------------------------------------------------------------------------------------------
 * Segments
 *
 * Invariants, checked by `refgc__segment_check`:
 *   - the segment is aligned to REFGC_SEGMENT_SIZE and its segmap bit is set while it exists;
 *   - `cookie == ((uintptr_t)segment ^ refgc__cookie)`;
 *   - small and medium: `used_slots` == number of slots whose page is in use; bit i of
 *     `free_mask` is set iff slot i is free; `dirty_mask` ⊆ `free_mask` marks free slots whose
 *     memory may still be resident; the segment is on its heap's `avail` list iff
 *     `free_mask != 0`;
 *   - small and medium segments are never unmapped (see docs/design.md, "why segments are
 *     never unmapped"); their free slots are given back with madvise;
 *   - large: the single block starts at `segment + large_offset` and the mapping is
 *     `large_map_size` bytes; the segment is on the global large list.
 * ------------------------------------------------------------------------------------------ */

typedef enum refgc_segment_kind_e {
  REFGC_SEGMENT_SMALL = 1,
  REFGC_SEGMENT_MEDIUM = 2,
  REFGC_SEGMENT_LARGE = 3
} refgc_segment_kind_t;

/* Allocation tracing (trace.c): one trace word per block of a page, indexed by the block's
 * index; made by the page's owner on the page's first traced block, freed when the page is
 * given back (under the trace lock, which snapshot walks hold). `start`, `block_size` and
 * `capacity` copy the page's, so a walk never reads the page descriptor. */
typedef struct refgc_trace_page_s {
  uint8_t *start;
  uint32_t block_size;
  uint32_t capacity;
  bool object;                /* an object page */
  /* Non-zero words = recorded - remote. `recorded` counts words set minus words cleared by the
   * page's owner (owner loads and stores only: no read-modify-write on the allocation path);
   * `remote` counts words cleared by other threads (atomic increments, rare). When an owner's
   * free brings the difference to 0, the page's frees go fast again: slow_free is cleared and
   * both counts restart at 0 (no traced block is left, so no other thread can be counting).
   * Only the owner sets or clears slow_free. */
  _Atomic uint32_t recorded;
  _Atomic uint32_t remote;
  _Atomic uint64_t slot[];    /* size << 32 | traceback id << 8 | epoch; 0: none */
} refgc_trace_page_t;

typedef struct refgc_segment_s {
  uintptr_t cookie;
  uint8_t kind;
  uint8_t page_shift;
  uint16_t slot_count;
  uint32_t used_slots;
  uint64_t free_mask;
  uint64_t dirty_mask;
  size_t header_size;                        /* bytes before slot 0's first block */
  struct refgc_heap_s *heap;                 /* owner (small, medium) */
  struct refgc_segment_s *next, *prev;       /* heap's list of all its segments / large list */
  struct refgc_segment_s *avail_next, *avail_prev; /* heap's list of segments with free slots */
  bool on_avail;
  bool large_object;         /* large: the block is an object (refgc_new) */
  uint64_t *frozen;          /* cycle collector: bit per 16 bytes, objects frozen (gc.c) */
  _Atomic(refgc_trace_page_t *) *_Atomic trace_pages; /* tracing: per slot, NULL when none */
  _Atomic uint64_t large_trace;   /* large: the block's trace word (trace.c) */
  size_t large_requested;         /* large: bytes requested, while traced */
  /* large */
  size_t large_map_size;     /* bytes mapped */
  size_t large_offset;       /* user block offset from the segment start */
  size_t large_usable;       /* bytes usable at the block */
  refgc_page_t pages[];      /* slot_count descriptors (small, medium) */
} refgc_segment_t;

/* ---------------------------------------------------------------------------------------------
 * Heaps
 *
 * Invariants, checked by `refgc__heap_check`:
 *   - `cls[c].current` is never NULL: a page of class c with bin REFGC_BIN_CURRENT, or the
 *     shared empty page (whose free list is always NULL, so the fast path falls through);
 *   - every page on `bins[c][b]` belongs to this heap, has class c and bin b, and
 *     `binned[c]` counts the pages on lane c's bins;
 *   - `purge` lists the free slots of this heap's segments that may be resident, oldest first;
 *   - the stat counters are written only by the owning thread (read racily by `stats.c`).
 * ------------------------------------------------------------------------------------------ */

/* The statistics counters here and in the heap are plain integers that only the owning thread
 * writes; `stats.c` reads them from other threads through `refgc__stat_read`, a racy but
 * word-sized, aligned read (the figures are approximate while threads run, never torn on the
 * platforms we support). Plain `+=` keeps the fast paths at one instruction per counter. */
typedef struct refgc_heap_class_s {
  refgc_page_t *current;
  uint64_t allocs;     /* blocks allocated */
  uint64_t frees;      /* blocks freed (local, and remote once collected) */
  uint64_t requested;  /* bytes asked for */
} refgc_heap_class_t;

typedef struct refgc_heap_s {
  /* Bytes the fast paths may still allocate before taking the generic path once: that path
   * decides what happens next (trace.c, refgc__trace_budget): 0 in debug mode and while every
   * allocation is traced, the distance to the next sample while sampling, else a refill of
   * 256 KiB (so a thread notices tracing starting within that much allocation). Owner loads
   * and stores; refgc_trace_start/stop store 0 from any thread (relaxed: plain moves; a lost
   * update only delays the owner's next generic call). The shared empty heap keeps 0. */
  _Atomic int64_t budget;
  refgc_heap_class_t cls[REFGC_NUM_LANES];             /* per lane */
  refgc_page_t *bins[REFGC_NUM_LANES][REFGC_BINS];      /* FIFO lists: heads */
  refgc_page_t *bins_tail[REFGC_NUM_LANES][REFGC_BINS]; /* and tails */
  uint32_t binned[REFGC_NUM_LANES];                     /* pages on the lane's bins */
  _Atomic(refgc_page_t *) pending;     /* pages with remote frees (Treiber stack, pop-all) */
  refgc_segment_t *segments;           /* all small and medium segments of this heap: grows
                                          at its head only (release store), never shrinks,
                                          so other threads may walk it (acquire load) */
  refgc_segment_t *avail[2];           /* segments with free slots: [0] small, [1] medium */
  refgc_page_t *purge_head, *purge_tail; /* free resident slots, oldest first */
  unsigned collect_epoch;              /* last global collect request honoured */
  bool abandoned;
  struct refgc_heap_s *all_next;       /* global list of every heap (under the heaps lock) */
  struct refgc_heap_s *abandoned_next; /* global list of abandoned heaps */
  /* per-class page counts, owner-written (see refgc_heap_class_t) */
  size_t class_pages[REFGC_NUM_LANES];
  size_t class_capacity[REFGC_NUM_LANES];
  size_t in_use_peak;
  size_t map_size;                     /* bytes mapped for this struct */
} refgc_heap_t;

/* ---------------------------------------------------------------------------------------------
 * Size classes
 * ------------------------------------------------------------------------------------------ */

typedef struct refgc_class_info_s {
  uint32_t block_size;
  uint32_t page_shift; /* REFGC_SMALL_PAGE_SHIFT or REFGC_MEDIUM_PAGE_SHIFT */
  uint64_t div_magic;  /* ceil(2^40 / block_size) */
} refgc_class_info_t;

/* ---------------------------------------------------------------------------------------------
 * Options and global counters
 * ------------------------------------------------------------------------------------------ */

typedef struct refgc_options_s {
  int debug;           /* REFGC_DEBUG: 0 off, 1 fill/guards/checks */
  int debug_frames;    /* REFGC_DEBUG_FRAMES: allocation stack depth kept in debug mode */
  long purge_delay_ms; /* REFGC_PURGE_DELAY: ms an empty page stays resident; <0 never */
  int verbose;         /* REFGC_VERBOSE: print the heap report at exit */
} refgc_options_t;

typedef struct refgc_global_stats_s {
  _Atomic size_t committed;
  _Atomic size_t committed_peak;
  _Atomic size_t reserved;
  _Atomic size_t metadata;
  _Atomic size_t large_count;
  _Atomic size_t large_bytes;
  _Atomic uint64_t large_allocs;
  _Atomic uint64_t large_frees;
  _Atomic uint64_t large_requested;
  _Atomic uint64_t released_total;
  _Atomic uint64_t release_calls;
  _Atomic size_t heaps;
  _Atomic size_t heaps_abandoned;
} refgc_global_stats_t;

/* ---------------------------------------------------------------------------------------------
 * Objects
 *
 * Header word `bits` (the high half of the 8-byte header):
 *   bits 0..19   type index into the type table
 *   bit  31      LIVE: set in every live object. A free heap block holds a free-list link in
 *                its first word, whose high half is the top of a user-space address (< 2^16),
 *                so LIVE is never set there: walking pages can tell objects from free blocks.
 *   bit  30      FINALIZED: the finalizer ran (it never runs again)
 *   bit  29      WEAKREFS: the weak-reference table has an entry for this object
 *   bit  28      DEAD: released, kept in debug mode's quarantine to catch late uses
 *   bits 20..26  the cycle collector's (below): TRACKED, BUFFERED, generation (2 bits),
 *                INSET, REACH, GARBAGE; bit 27 is free
 * Invariants: a live object has LIVE set, DEAD clear, a registered type index, and a count in
 * 1..2^31-1 or an immortal count (top bit set); an object being released has count 0.
 * ------------------------------------------------------------------------------------------ */

#define REFGC_OB_TYPE_MASK 0x000FFFFFu
#define REFGC_OB_LIVE 0x80000000u
#define REFGC_OB_FINALIZED 0x40000000u
#define REFGC_OB_WEAKREFS 0x20000000u
#define REFGC_OB_DEAD 0x10000000u
#define REFGC_MAX_TYPES ((size_t)1 << 20)
#define REFGC_TYPE_CHUNK 1024 /* the type table grows in chunks of this many entries */

struct refgc_type_s {
  refgc_type_spec_t spec;   /* as registered, `name` pointing at our copy */
  uint32_t id;              /* index in the type table */
  bool is_var;              /* item_size != 0 */
  /* counters of threads that have exited (live threads keep their own; see object.c) */
  _Atomic uint64_t created, released, reused;
};

/* Bits of `bits` the cycle collector uses (REFGC__OB_TRACKED and REFGC__OB_BUFFERED are
 * also tested by the inline refgc_decref, in refgc/object.h). */
#define REFGC_OB_TRACKED REFGC__OB_TRACKED   /* type is not a leaf: the collector sees it */
#define REFGC_OB_BUFFERED REFGC__OB_BUFFERED /* in a candidate buffer */
#define REFGC_OB_GEN_SHIFT 22                /* bits 22-23: generation 0, 1, 2 */
#define REFGC_OB_GEN_MASK (3u << REFGC_OB_GEN_SHIFT)
#define REFGC_OB_INSET 0x01000000u   /* member of the running collection's set */
#define REFGC_OB_REACH 0x02000000u   /* found reachable by the running collection */
#define REFGC_OB_GARBAGE 0x04000000u /* found unreachable, being finalized and cleared */
#define REFGC_OB_GEN(bits) (((bits) & REFGC_OB_GEN_MASK) >> REFGC_OB_GEN_SHIFT)

/* A growable array of object pointers. */
typedef struct refgc_ptrvec_s {
  refgc_object_t **v;
  size_t n, cap;
} refgc_ptrvec_t;


/* Per thread and per type: counters and free lists. Written by the owning thread only. */
typedef struct ts_type_s {
  uint64_t created, released, reused;
  void *fl[REFGC_FREELIST_ITEMS];
  uint32_t fl_count[REFGC_FREELIST_ITEMS];
  size_t fl_bytes;
} ts_type_t;

typedef struct pending_cb_s {
  refgc_object_t *weakref; /* holds a reference until the callback ran */
  refgc_weakref_callback *cb;
  void *arg;
} pending_cb_t;

#define QUARANTINE 4096 /* released objects kept DEAD in debug mode, per thread */

struct refgc_tstate_s {
  ts_type_t *types; /* indexed by type id, `ntypes` entries */
  size_t ntypes;
  refgc_object_t **stack; /* objects waiting to be released */
  size_t top, stack_cap;
  int releasing;
  int in_callbacks; /* running weak reference callbacks: nested releases leave theirs queued */
  int hook_depth;   /* inside a finalizer, release or traverse hook or a callback: no
                       collection may start on this thread */
  pending_cb_t *cbs; /* weak reference callbacks waiting for the release to finish */
  size_t ncbs, cbs_cap;
  unsigned fl_epoch;
  refgc_object_t **quarantine; /* debug mode: ring of DEAD objects */
  size_t qpos;
  struct refgc_tstate_s *next, *prev; /* registry, under ts_lock */
  /* cycle collector (gc.c): tracked objects created since the last young collection,
   * survivors of young collections, and candidate roots (objects decremented to non-zero) */
  refgc_ptrvec_t cands[3]; /* candidate roots (objects decremented to a non-zero count), by
                              the generation they were last examined at */
  size_t young_count;      /* tracked objects created on this thread since the last
                              collection (net of releases of generation-0 objects) */
  size_t cands_compact_at; /* candidates[0] size at which stale entries are dropped */
  long gc_budget;          /* tracked creations and candidates left before this thread next
                              considers a collection (reset to threshold 0 every time) */
  int64_t gen_delta[3];   /* this thread's changes to the per-generation object counts */
};


#endif /* REFGC_TYPES_H */
