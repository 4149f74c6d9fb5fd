/* refgc — tracing and introspection: what tracemalloc, objgraph and mprof give Python users.
 *
 * Included by refgc.h; do not include it alone.
 *
 * Four parts:
 *
 *  1. Allocation tracing (tracemalloc's model). `refgc_trace_start(frames)` records, for every
 *     block allocated from then on (refgc_malloc and friends, and objects), its requested size
 *     and the stack of the call that allocated it, up to `frames` return addresses. Identical
 *     stacks are stored once. Frees drop the block's trace. `refgc_trace_start_sampled` traces
 *     about one allocation per N bytes instead (exponential intervals, as jemalloc and tcmalloc
 *     do) and scales the totals so that every statistic stays an unbiased estimate.
 *     The tracer's own memory comes from the C library's malloc and the OS, never from the refgc
 *     heap: it never shows in the program's statistics. `refgc_trace_memory()` says how much.
 *     While every allocation is traced, objects bypass their types' free lists (refgc/object.h),
 *     so each object carries the trace of its own creation; while sampling, free lists work as
 *     usual and an object taken from one keeps the trace of the allocation that made its block. Blocks the library allocates for
 *     itself through the heap (the collector's buffers, weak-reference tables) are traced too,
 *     as the heap's statistics count them; their innermost frame is a refgc function.
 *
 *  2. Snapshots. `refgc_snapshot_take()` copies the traces (and, with REFGC_SNAPSHOT_GRAPH, the
 *     object graph and the leak analysis) into a value that no longer depends on the heap.
 *     Statistics group a snapshot by file, line, function, full traceback or type; two
 *     snapshots compare into what grew; filters select traces; snapshots save to a file and
 *     load back (format: docs/snapshot-format.md).
 *
 *  3. Symbols. Return addresses become function, file and line when a snapshot is saved or a
 *     statistic asks for them, never on the allocation path, through elfutils' libdw when the
 *     library was built with it (the main program and every shared library, with ASLR), else
 *     through dladdr (function names of exported symbols only).
 *
 *  4. Heap introspection (objgraph for C): live objects counted by type and the growth since the
 *     last call; for any object the shortest chain of references from a root down to it; the
 *     leak classes (a lost reference, a cycle kept alive by a resurrection, growth that never
 *     shrinks).
 *
 * Threads. Tracing covers every thread. `refgc_trace_start` and `refgc_trace_stop` may be
 * called from any thread; a thread that is inside an allocation when tracing starts or stops
 * may record that one allocation either way. Snapshots and introspection walk every heap: other
 * threads may go on allocating and freeing blocks while a snapshot is taken, but the program
 * must not change object references on other threads during introspection calls that follow
 * references (REFGC_SNAPSHOT_GRAPH, `refgc_why_alive`, `refgc_leaks_*`), for the same reason
 * as for the cycle collector (refgc/gc.h). Snapshots are values: any thread may use one, one
 * thread at a time.
 *
 * Environment (read once at start-up, documented in docs/environment.md):
 *   REFGC_TRACE=<frames>          start tracing before main with this many frames (1..64)
 *   REFGC_TRACE_SAMPLE=<bytes>    sample one allocation per <bytes> on average (0: every one)
 *   REFGC_TRACE_SEED=<n>          seed of the sampling intervals (default: from the clock)
 *   REFGC_TRACE_FILE=<path>       write a snapshot with the object graph there at exit
 *   REFGC_TRACE_EVERY_MS=<ms>     also write <path>.1, <path>.2, ... every <ms> milliseconds
 *   REFGC_TRACE_EVERY_BYTES=<n>   ... or when traced memory grew or shrank by <n> bytes (looked at
 *                                 every 64 traced allocations)
 *   REFGC_TRACE_SERIES_MS=<ms>    interval of the memory-over-time series (default 100)
 */
#ifndef REFGC_TRACE_H
#define REFGC_TRACE_H

#ifndef REFGC_H
#error "include refgc.h, not refgc/trace.h"
#endif

/* ---------------------------------------------------------------------------------------------
 * Allocation tracing
 * ------------------------------------------------------------------------------------------ */

/** The deepest traceback the tracer keeps. */
#define REFGC_TRACE_MAX_FRAMES 64

/** refgc_trace_start(): trace every allocation from now on, keeping up to `frames` return
 * addresses (1..REFGC_TRACE_MAX_FRAMES) of the allocating call's stack, innermost first, with
 * refgc's own frames left out. Blocks allocated before the call are not traced (as with
 * tracemalloc). Any thread.
 * @return 0; REFGC_EINVAL for a bad `frames`; REFGC_EBUSY if tracing is already on (stop it
 * first to change the settings); REFGC_ENOMEM. */
REFGC_API int refgc_trace_start(int frames);

/** refgc_trace_start_sampled(): trace about one allocation per `mean_bytes` bytes allocated:
 * the byte distance to the next traced allocation is drawn from an exponential distribution of
 * mean `mean_bytes`, so a block of s bytes is traced with probability 1 - exp(-s/mean_bytes)
 * and every traced block stands for 1/p blocks and s/p bytes in totals and statistics
 * (unbiased estimates). `seed` fixes the intervals (0: seeded from the clock). Same returns as
 * refgc_trace_start; `mean_bytes` 0 means "trace everything". */
REFGC_API int refgc_trace_start_sampled(int frames, size_t mean_bytes, uint64_t seed);

/** refgc_trace_stop(): stop tracing and forget every trace (as tracemalloc.stop()). Snapshots
 * already taken stay valid. The memory-over-time series is kept until the next start.
 * @return 0, or REFGC_EINVAL when tracing was not on. Any thread. */
REFGC_API int refgc_trace_stop(void);

/** refgc_trace_is_tracing(): 1 while tracing is on, else 0. */
REFGC_API int refgc_trace_is_tracing(void);

/** refgc_trace_frames(): the frame limit tracing was started with (0 when off). */
REFGC_API int refgc_trace_frames(void);

/** refgc_trace_sample_bytes(): the sampling mean (0 when every allocation is traced). */
REFGC_API size_t refgc_trace_sample_bytes(void);

/** refgc_trace_get_memory(): the traced memory now and its peak since tracing started or
 * since refgc_trace_reset_peak(), in requested bytes (estimated when sampling). Either pointer
 * may be NULL. Both are 0 when tracing is off. Any thread. */
REFGC_API void refgc_trace_get_memory(size_t *current, size_t *peak);

/** refgc_trace_count(): live traced blocks (sampled blocks when sampling). */
REFGC_API size_t refgc_trace_count(void);

/** refgc_trace_reset_peak(): set the peak to the current traced memory. */
REFGC_API void refgc_trace_reset_peak(void);

/** refgc_trace_memory(): bytes the tracer itself holds (traces, tracebacks, tables), from the
 * C library and the OS, outside the refgc heap. */
REFGC_API size_t refgc_trace_memory(void);

/** refgc_trace_traceback(): the allocation stack of the traced block or object at `p` (the
 * pointer refgc returned), innermost frame first: copies up to `max` return addresses into
 * `frames` and returns how many the trace has (which may exceed `max`). Returns 0 when `p` is
 * not a traced live block (not traced, tracing off, not a refgc block). Any thread. */
REFGC_API int refgc_trace_traceback(const void *p, void **frames, int max);

/** refgc_trace_sample_now(): add a point (time, resident set size, traced memory, heap in use
 * and committed) to the memory-over-time series now. The tracer also adds one every
 * REFGC_TRACE_SERIES_MS milliseconds (default 100) from the allocation path while tracing is
 * on. The series holds the most recent 65536 points. Any thread. */
REFGC_API void refgc_trace_sample_now(void);

/* ---------------------------------------------------------------------------------------------
 * Symbols
 * ------------------------------------------------------------------------------------------ */

/** What a return address resolves to. Strings are owned by refgc and live until the program
 * ends (symbolize) or as long as their snapshot (snapshot frames); missing parts are "" and
 * line 0. */
typedef struct refgc_frame_info_s {
  uintptr_t address;    /**< the return address as captured in the process */
  uintptr_t offset;     /**< offset of the address in its module (stable across runs) */
  const char *module;   /**< path of the executable or shared library */
  const char *function; /**< function name ("" unknown) */
  const char *file;     /**< source file ("" unknown) */
  int line;             /**< source line (0 unknown) */
} refgc_frame_info_t;

/** refgc_symbolize(): resolve a return address of this process (as returned by
 * refgc_trace_traceback) into `*out`. Results are cached. Any thread (serialised inside).
 * @return 0 (even when only the module is known), REFGC_EINVAL for a NULL `out`. */
REFGC_API int refgc_symbolize(uintptr_t address, refgc_frame_info_t *out);

/** refgc_symbolizer(): "libdw" or "dladdr": which resolver this build uses. */
REFGC_API const char *refgc_symbolizer(void);

/* ---------------------------------------------------------------------------------------------
 * Snapshots
 * ------------------------------------------------------------------------------------------ */

/** A snapshot (opaque): traces, tracebacks with their symbols, object counts by type,
 * collector statistics, the memory-over-time series, and optionally the object graph and the
 * leak analysis. Immutable once taken or loaded. */
typedef struct refgc_snapshot_s refgc_snapshot_t;

/** Flags of refgc_snapshot_take. */
enum {
  /** Also record the object graph (every live object with its type, size, count and
   * allocation trace, and every reference with the field offset where it was found) and run
   * the leak analysis (refgc_snapshot_suspects). Follows references: see "Threads" above. */
  REFGC_SNAPSHOT_GRAPH = 1u << 0,
};

/** refgc_snapshot_take(): a snapshot of the traces now. Works with tracing off too (no traces,
 * but type counts, statistics, the series and, with REFGC_SNAPSHOT_GRAPH, the graph). Symbols
 * are resolved lazily (by save, statistics that need them, or refgc_snapshot_frame).
 * @return a snapshot to free with refgc_snapshot_free, or NULL with refgc_last_error() set to
 * REFGC_ENOMEM or REFGC_EBUSY (called from a finalizer or hook during a collection). */
REFGC_API refgc_snapshot_t *refgc_snapshot_take(unsigned flags);

/** refgc_snapshot_free(): free a snapshot. NULL is ignored. */
REFGC_API void refgc_snapshot_free(refgc_snapshot_t *snap);

/** refgc_snapshot_save(): write `snap` to `path` (resolving symbols first), atomically: the
 * file appears complete or not at all. @return 0, REFGC_EINVAL (NULL argument) or REFGC_EIO
 * (with refgc_snapshot_error() naming the file and the system error). */
REFGC_API int refgc_snapshot_save(refgc_snapshot_t *snap, const char *path);

/** refgc_snapshot_load(): read a snapshot file. A missing, truncated, corrupted or
 * newer-version file gives NULL, with refgc_last_error() set to REFGC_EIO or REFGC_EFORMAT and
 * refgc_snapshot_error() saying which file and what was wrong (section, offset). Never crashes
 * on bad input. */
REFGC_API refgc_snapshot_t *refgc_snapshot_load(const char *path);

/** refgc_snapshot_error(): the message of the calling thread's last failed save or load ("" if
 * none). Valid until the thread's next snapshot call. */
REFGC_API const char *refgc_snapshot_error(void);

/** Summary figures of a snapshot. */
typedef struct refgc_snapshot_info_s {
  uint32_t size;            /**< set by the caller: sizeof(refgc_snapshot_info_t) */
  uint32_t version;         /**< file format version it came from (current when taken) */
  double time;              /**< when it was taken: seconds since the Unix epoch */
  double uptime;            /**< seconds since the process started tracing's clock */
  uint64_t pid;             /**< process that took it */
  const char *program;      /**< path of the executable */
  int frames;               /**< frame limit of the tracing (0: tracing was off) */
  uint64_t sample_bytes;    /**< sampling mean (0: every allocation) */
  uint64_t traced_current;  /**< traced bytes (estimated when sampled) */
  uint64_t traced_peak;     /**< peak traced bytes */
  uint64_t trace_count;     /**< traces in the snapshot (sampled blocks when sampled) */
  uint64_t heap_in_use;     /**< refgc_heap_stats in_use at the time */
  uint64_t heap_committed;  /**< refgc_heap_stats committed */
  uint64_t rss;             /**< the process's resident set size (0 unknown) */
  uint64_t tracer_memory;   /**< refgc_trace_memory() */
  uint64_t objects;         /**< live objects counted (all objects, traced or not) */
  uint64_t graph_nodes;     /**< objects in the graph (0 without REFGC_SNAPSHOT_GRAPH) */
  uint64_t graph_edges;     /**< references in the graph */
  uint64_t gc_collections[3]; /**< collector statistics per generation */
  uint64_t gc_collected[3];
  uint64_t gc_uncollectable[3];
  double gc_pause_total;    /**< seconds in the collector */
  double gc_pause_max;      /**< longest collection */
  uint64_t series_points;   /**< memory-over-time points */
} refgc_snapshot_info_t;

/** refgc_snapshot_info(): fill `*out` (whose `size` the caller sets).
 * @return 0, or REFGC_EINVAL (NULL, or `out->size` too small). */
REFGC_API int refgc_snapshot_info(const refgc_snapshot_t *snap, refgc_snapshot_info_t *out);

/** One trace: a live block at the time of the snapshot. */
typedef struct refgc_trace_s {
  uint64_t size;       /**< requested bytes */
  uint32_t traceback;  /**< index for refgc_snapshot_traceback */
  uint32_t type;       /**< index for refgc_snapshot_type_name; 0: not an object */
  double weight;       /**< blocks this trace stands for (1 unless sampled) */
} refgc_trace_t;

/** refgc_snapshot_traces(): the snapshot's traces (`*n` of them), valid as long as `snap`. */
REFGC_API const refgc_trace_t *refgc_snapshot_traces(const refgc_snapshot_t *snap, size_t *n);

/** refgc_snapshot_traceback(): the frames of traceback `index`, innermost first: returns the
 * frame count and sets `*frames` to frame indexes for refgc_snapshot_frame (valid as long as
 * `snap`); 0 for a bad index. */
REFGC_API size_t refgc_snapshot_traceback(const refgc_snapshot_t *snap, uint32_t index,
                                          const uint32_t **frames);

/** refgc_snapshot_tracebacks(): how many tracebacks the snapshot holds. */
REFGC_API size_t refgc_snapshot_tracebacks(const refgc_snapshot_t *snap);

/** refgc_snapshot_frame(): the symbolized frame `index` (resolving it if the snapshot was taken
 * in this process and not yet resolved). NULL for a bad index. Valid as long as `snap`. */
REFGC_API const refgc_frame_info_t *refgc_snapshot_frame(refgc_snapshot_t *snap, uint32_t index);

/** refgc_snapshot_type_name(): the name of type `index` ("" for 0, the raw blocks of
 * refgc_malloc). NULL for a bad index. */
REFGC_API const char *refgc_snapshot_type_name(const refgc_snapshot_t *snap, uint32_t index);

/** How statistics group traces. */
typedef enum refgc_group_e {
  REFGC_GROUP_FILE = 0,      /**< source file of the innermost frame (cumulative: any frame) */
  REFGC_GROUP_LINE = 1,      /**< file and line */
  REFGC_GROUP_FUNCTION = 2,  /**< function */
  REFGC_GROUP_TRACEBACK = 3, /**< the whole traceback */
  REFGC_GROUP_TYPE = 4,      /**< object type ("" for raw blocks) */
} refgc_group_t;

/** One row of statistics. */
typedef struct refgc_stat_s {
  const char *key;      /**< "file", "file:line", "function", or the type name; for
                             REFGC_GROUP_TRACEBACK the innermost frame's "file:line" */
  uint32_t traceback;   /**< REFGC_GROUP_TRACEBACK: traceback index (in the newer snapshot of
                             a compare); else UINT32_MAX */
  uint64_t size;        /**< requested bytes (estimated when sampled) */
  uint64_t count;       /**< blocks (estimated when sampled) */
  int64_t size_diff;    /**< compare: size - size in the older snapshot; else 0 */
  int64_t count_diff;   /**< compare: count - count in the older snapshot; else 0 */
} refgc_stat_t;

/** refgc_snapshot_statistics(): group the traces of `snap`, largest size first (ties: larger
 * count, then key).
 * With `cumulative`, each trace counts once for every distinct key of its traceback's frames
 * (FILE, LINE, FUNCTION), as tracemalloc's cumulative mode. Sets `*n` and returns an array to
 * free with refgc_stats_free; keys are valid as long as `snap`. NULL with `*n` = 0 when empty
 * or out of memory (refgc_last_error() says which). */
REFGC_API refgc_stat_t *refgc_snapshot_statistics(refgc_snapshot_t *snap, refgc_group_t group,
                                                  int cumulative, size_t *n);

/** refgc_snapshot_compare(): statistics of `newer` with the differences from `older`, sorted
 * by the absolute size difference, largest first (as Snapshot.compare_to). Rows of keys that
 * exist only in `older` appear with size 0. Keys are valid as long as both snapshots. */
REFGC_API refgc_stat_t *refgc_snapshot_compare(refgc_snapshot_t *newer, refgc_snapshot_t *older,
                                               refgc_group_t group, int cumulative, size_t *n);

/** refgc_stats_free(): free an array from refgc_snapshot_statistics or _compare. */
REFGC_API void refgc_stats_free(refgc_stat_t *stats);

/** A filter on traces (as tracemalloc.Filter, plus type and size). Fields left 0/NULL match
 * everything. */
typedef struct refgc_filter_s {
  int inclusive;            /**< 1: keep only matching traces; 0: drop matching traces */
  const char *file_pattern; /**< fnmatch(3) pattern on the frame's file (NULL: any) */
  int line;                 /**< line of that frame (0: any) */
  int all_frames;           /**< match against any frame, not only the innermost */
  const char *type_pattern; /**< fnmatch(3) pattern on the type name ("" raw blocks) */
  uint64_t min_size;        /**< requested size at least this */
  uint64_t max_size;        /**< and at most this (0: no limit) */
} refgc_filter_t;

/** refgc_snapshot_filter(): a new snapshot with the traces that pass: a trace passes when it
 * matches at least one inclusive filter (if there are any) and no exclusive filter. The graph,
 * series and statistics other than traces are copied. NULL with refgc_last_error() on
 * REFGC_EINVAL or REFGC_ENOMEM. */
REFGC_API refgc_snapshot_t *refgc_snapshot_filter(refgc_snapshot_t *snap,
                                                  const refgc_filter_t *filters, size_t n);

/** Live objects of one type. */
typedef struct refgc_type_count_s {
  const char *type; /**< type name */
  uint64_t count;   /**< live objects */
  uint64_t bytes;   /**< their block bytes */
  int64_t delta;    /**< refgc_objects_growth: change in count since the last call */
} refgc_type_count_t;

/** refgc_snapshot_type_counts(): live objects by type when the snapshot was taken, most
 * numerous first. Every object, traced or not, when the snapshot could walk the heap: with
 * REFGC_SNAPSHOT_GRAPH, with refgc_gc_set_serialized(1), or when at most one thread has a heap
 * (walking pages while other threads set up theirs would race). Otherwise the traced objects
 * only (sampled ones, when sampling). Valid as long as `snap`. */
REFGC_API const refgc_type_count_t *refgc_snapshot_type_counts(const refgc_snapshot_t *snap,
                                                               size_t *n);

/** A point of the memory-over-time series. */
typedef struct refgc_series_point_s {
  double t;          /**< seconds since tracing's clock started */
  uint64_t rss;      /**< resident set size (0 unknown) */
  uint64_t traced;   /**< traced bytes */
  uint64_t in_use;   /**< heap bytes in use */
  uint64_t committed;/**< heap bytes committed */
} refgc_series_point_t;

/** refgc_snapshot_series(): the memory-over-time series up to the snapshot. */
REFGC_API const refgc_series_point_t *refgc_snapshot_series(const refgc_snapshot_t *snap,
                                                            size_t *n);

/* --- the object graph of a snapshot (REFGC_SNAPSHOT_GRAPH) ----------------------------------- */

/** Node flags. */
enum {
  REFGC_NODE_ROOT = 1u << 0,        /**< held from outside the graph (count > references) */
  REFGC_NODE_DECLARED = 1u << 1,    /**< declared with refgc_root_add */
  REFGC_NODE_FINALIZED = 1u << 2,   /**< its finalizer ran (alive: it was resurrected) */
  REFGC_NODE_IMMORTAL = 1u << 3,
  REFGC_NODE_GARBAGE = 1u << 4,     /**< on the collector's garbage list (SAVEALL) */
  REFGC_NODE_FROZEN = 1u << 5,      /**< refgc_gc_freeze */
};

/** An object of the graph. */
typedef struct refgc_node_s {
  uint64_t address;     /**< where it was (identity only) */
  uint32_t type;        /**< type index (refgc_snapshot_type_name) */
  uint32_t flags;       /**< REFGC_NODE_* */
  uint64_t size;        /**< block bytes */
  uint32_t refcnt;      /**< reference count */
  uint32_t traceback;   /**< allocation traceback index, UINT32_MAX when untraced */
  uint32_t first_edge;  /**< its outgoing references are edges [first_edge, next node's) */
  uint32_t root_name;   /**< REFGC_NODE_DECLARED: string index for refgc_snapshot_string */
  uint64_t retained;    /**< bytes only reachable through it (dominator tree) */
} refgc_node_t;

/** A reference from one node to another. */
typedef struct refgc_edge_s {
  uint32_t to;      /**< target node index */
  uint32_t index;   /**< position among the holder's references, in traverse order */
  int64_t offset;   /**< byte offset of the field in the holder, -1 when not found */
} refgc_edge_t;

/** refgc_snapshot_graph(): the nodes and edges. Node i's edges are
 * edges[nodes[i].first_edge .. nodes[i+1].first_edge) (the last node: to `*nedges`). NULL and
 * zero counts without a graph. */
REFGC_API const refgc_node_t *refgc_snapshot_graph(const refgc_snapshot_t *snap, size_t *nnodes,
                                                   const refgc_edge_t **edges, size_t *nedges);

/** refgc_snapshot_string(): string `index` of the snapshot's string table (NULL if bad). */
REFGC_API const char *refgc_snapshot_string(const refgc_snapshot_t *snap, uint32_t index);

/** Leak classes. */
typedef enum refgc_leak_class_e {
  /** An object whose count exceeds the references the graph and the declared roots explain,
   * while roots are declared: someone took a reference and lost it. */
  REFGC_LEAK_LOST_REFERENCE = 1,
  /** A live object whose finalizer already ran: it was found garbage and resurrected, and
   * whatever it reaches lives on with it (or it is on the collector's garbage list). */
  REFGC_LEAK_RESURRECTED = 2,
  /** A site or type that grew across a series of snapshots and never shrank (a stale cache):
   * found by refgc_snapshots_growth across several snapshots. */
  REFGC_LEAK_GROWTH = 3,
} refgc_leak_class_t;

/** A leak suspect found in a snapshot's graph. */
typedef struct refgc_suspect_s {
  refgc_leak_class_t cls;
  uint32_t node;          /**< the suspect object */
  uint64_t unexplained;   /**< LOST_REFERENCE: references nothing accounts for */
  uint64_t retained;      /**< bytes kept alive by it (its dominator subtree) */
  uint64_t retained_count;/**< objects kept alive by it */
  uint32_t chain_len;     /**< the shortest chain from a root to the node: */
  const uint32_t *chain;  /**< node indexes, root first, the suspect last */
} refgc_suspect_t;

/** refgc_snapshot_suspects(): the leak suspects of a graph snapshot, largest retained first. */
REFGC_API const refgc_suspect_t *refgc_snapshot_suspects(const refgc_snapshot_t *snap, size_t *n);

/** refgc_snapshot_chain(): the shortest chain of references from a root to node `node`
 * (breadth-first over the graph's references, backwards): writes up to `max` node indexes,
 * root first, and returns the chain's length (0: `node` is bad; 1: it is itself a root). */
REFGC_API size_t refgc_snapshot_chain(const refgc_snapshot_t *snap, uint32_t node, uint32_t *out,
                                      size_t max);

/** A site or type that grew in every interval of a series of snapshots. */
typedef struct refgc_growth_s {
  const char *key;       /**< as refgc_stat_t's key for the group (valid with the last snapshot) */
  uint32_t traceback;    /**< REFGC_GROUP_TRACEBACK: index in the last snapshot */
  uint64_t first_size, last_size;   /**< bytes in the first and the last snapshot */
  uint64_t first_count, last_count; /**< blocks in the first and the last snapshot */
} refgc_growth_t;

/** refgc_snapshots_growth(): keys of `group` whose size never shrank between consecutive
 * snapshots of `snaps` (oldest first, n ≥ 3) and grew from the first to the last by at least
 * `min_growth` bytes: REFGC_LEAK_GROWTH suspects, largest growth first. Returns an array (count
 * in `*out_n`) to free with refgc_growth_free; NULL with refgc_last_error() REFGC_EINVAL (bad
 * arguments, fewer than 3 snapshots) or REFGC_ENOMEM, or NULL and 0 when nothing grew. */
REFGC_API refgc_growth_t *refgc_snapshots_growth(refgc_snapshot_t *const *snaps, size_t n,
                                                 refgc_group_t group, uint64_t min_growth,
                                                 size_t *out_n);
REFGC_API void refgc_growth_free(refgc_growth_t *g);

/* ---------------------------------------------------------------------------------------------
 * Live introspection (objgraph)
 * ------------------------------------------------------------------------------------------ */

/** refgc_objects_by_type(): live objects counted by type now, most numerous first; `*n` rows.
 * Free with refgc_type_counts_free. Any thread with the caveat above. NULL on REFGC_ENOMEM. */
REFGC_API refgc_type_count_t *refgc_objects_by_type(size_t *n);

/** refgc_objects_growth(): types whose count grew since the previous call (the first call
 * compares with nothing), largest growth first, with `delta` set (objgraph.show_growth). */
REFGC_API refgc_type_count_t *refgc_objects_growth(size_t *n);

REFGC_API void refgc_type_counts_free(refgc_type_count_t *counts);

/** refgc_root_add(): declare `obj` a root held by the program under `name` (copied): "why is it
 * alive" chains start from declared roots when they can, and the lost-reference analysis
 * counts one reference per declaration. Declaring the same object twice counts twice.
 * @return 0, REFGC_EINVAL (NULL), REFGC_ENOMEM. Any thread (a lock inside). */
REFGC_API int refgc_root_add(refgc_object_t *obj, const char *name);

/** refgc_root_remove(): undo one refgc_root_add of `obj`. @return 0 or REFGC_EINVAL (not
 * declared). */
REFGC_API int refgc_root_remove(refgc_object_t *obj);

/** One hop of a retaining chain. */
typedef struct refgc_chain_link_s {
  refgc_object_t *object; /**< the holder (for the last link: the object asked about) */
  const char *type;       /**< its type name */
  const char *root_name;  /**< first link: the declared root's name, else NULL */
  int64_t offset;         /**< byte offset in this object of the reference to the next link,
                               -1 when not found in its memory (last link: -1) */
  int32_t index;          /**< position of that reference in traverse order (last: -1) */
} refgc_chain_link_t;

/** refgc_why_alive(): the shortest chain of references from a root (a declared root, else an
 * object held from outside the object graph) down to `obj`: writes up to `max` links, root
 * first, `obj` last, and returns the chain length (1: `obj` is itself a root). 0 with
 * refgc_last_error() REFGC_OK when no root reaches `obj` (garbage waiting for the collector);
 * 0 with REFGC_EINVAL (NULL), REFGC_EBADOBJECT (not a live heap object), REFGC_ENOMEM or
 * REFGC_EBUSY otherwise. Follows references: see "Threads". */
REFGC_API size_t refgc_why_alive(const refgc_object_t *obj, refgc_chain_link_t *out, size_t max);

/** refgc_why_alive_print(): refgc_why_alive as text on `out` (NULL: stderr), each hop with its
 * type, field and allocation site (when traced). @return the chain length. */
REFGC_API size_t refgc_why_alive_print(const refgc_object_t *obj, FILE *out);

/** refgc_leaks_print(): take a graph snapshot and print its leak suspects, each with its chain
 * and allocation sites, on `out` (NULL: stderr). @return the number of suspects, or a negative
 * REFGC_E* code. */
REFGC_API long refgc_leaks_print(FILE *out);

#endif /* REFGC_TRACE_H */
