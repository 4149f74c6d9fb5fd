/* refgc — the cycle collector: finds and frees groups of objects that refer to each other and
 * that nothing else refers to, which reference counting alone can never free.
 *
 * Included by refgc.h; do not include it alone.
 *
 * Which objects: instances of types that are not REFGC_TYPE_LEAF ("tracked" objects). Leaf
 * objects cost the collector nothing.
 *
 * Exactness: a group is garbage when every reference to its members comes from inside the
 * group. References the program holds (C variables, globals, anything refgc cannot see) are
 * exactly the part of a count that references from tracked objects do not explain, so an
 * object the program holds, and everything it reaches, is never freed.
 *
 * Generations: objects start young (0); survivors of a young collection move to 1, survivors
 * of a collection of generation 1 move to 2 (old). Young and middle collections examine only
 * those generations; references from older objects count as external. Old objects are examined
 * only by an automatic old collection — which starts from *candidate roots*, the tracked objects
 * whose count was decremented to a non-zero value since they were last examined (only those
 * can have become part of a garbage cycle), and examines everything they reach — or by an
 * explicit refgc_collect(2), which examines every tracked object.
 *
 * Memory: candidate roots take 8 bytes each in per-thread buffers until a collection examines
 * them. While no collection runs (automatic collection off or paused), a buffer that reaches
 * 2^20 live candidates is given up, and the next collection examines every tracked object
 * instead, as refgc_collect(2) does.
 *
 * Threads: a collection runs on the thread that starts it (explicitly, or by creating an
 * object when the young generation is full) and examines the objects of all threads. While it
 * runs, no other thread may create objects or change counts or references — the same rule a
 * runtime with a global lock follows. So that programs whose threads use objects concurrently
 * are never corrupted by a collection they did not ask for, automatic collection pauses while
 * more than one thread has used objects, unless the program declares that it serialises all
 * object use (refgc_gc_set_serialized(1)). Such programs call refgc_collect() at points where
 * the other threads are idle.
 *
 * Order of events for the garbage a collection finds (PEP 442, as CPython):
 *   1. weak references to garbage objects are cleared; callbacks run for the weak references
 *      that are not themselves garbage;
 *   2. every finalizer in the garbage runs once (an object finalized earlier is not again);
 *   3. objects a finalizer resurrected, and everything they reach, survive this collection;
 *   4. the rest: each object's clear hook drops its references, which releases the group
 *      through ordinary reference counting. Objects whose type has no clear hook cannot be
 *      broken and are "uncollectable": they are kept on the garbage list (refgc_gc_garbage_*).
 * A collection started from inside a finalizer, a weak reference callback, a clear or release
 * hook or a traverse hook, or while another thread collects, is refused (REFGC_EBUSY).
 */
#ifndef REFGC_GC_H
#define REFGC_GC_H

#ifndef REFGC_H
#error "include refgc.h, not refgc/gc.h"
#endif

/** Number of generations: 0 (young), 1, 2 (old). */
#define REFGC_GC_GENERATIONS 3

/** What one collection did. */
typedef struct refgc_gc_result_s {
  int generation;        /**< the generation collected (2: old/full) */
  size_t examined;       /**< tracked objects examined */
  size_t unreachable;    /**< objects found unreachable */
  size_t collected;      /**< objects freed (or saved with REFGC_GC_DEBUG_SAVEALL) */
  size_t uncollectable;  /**< unreachable objects that could not be freed (no clear hook) */
  size_t resurrected;    /**< unreachable objects a finalizer made reachable again */
  double seconds;        /**< duration */
} refgc_gc_result_t;

/** refgc_collect(): run a collection of `generation` (0, 1 or 2; 2 examines every tracked
 * object) now, on the calling thread. `out` may be NULL. @return the number of unreachable
 * objects found (collected + uncollectable + resurrected: what CPython's gc.collect()
 * returns), or REFGC_EBUSY (a collection is running: from a finalizer, callback or hook, or
 * on another thread), REFGC_EINVAL (bad generation) or REFGC_ENOMEM (the collector's working
 * memory could not be allocated; nothing was changed). */
REFGC_API long refgc_collect(int generation, refgc_gc_result_t *out);

/** Automatic collection (on by default; REFGC_GC=0 in the environment starts it off). */
REFGC_API void refgc_gc_enable(void);
REFGC_API void refgc_gc_disable(void);
REFGC_API int refgc_gc_isenabled(void);

/** refgc_gc_set_serialized(): 1 declares that the program never uses objects from two threads
 * at once (it holds its own global lock around all object use), so automatic collection may
 * run whatever the number of threads; 0 (the default) pauses automatic collection while more
 * than one thread has used objects. */
REFGC_API void refgc_gc_set_serialized(int serialized);

/** Thresholds, as CPython's gc.set_threshold: a young collection runs when more than
 * `threshold0` tracked objects were created (net of releases) since the last one; every
 * `threshold1` young collections, generation 1 is collected too; every `threshold2` of
 * those, an old collection runs if the candidate roots number more than a quarter of the old
 * objects (so that building a large live heap stays linear). Defaults 2000, 10, 10.
 * threshold0 = 0 disables automatic collection. */
REFGC_API void refgc_gc_set_threshold(size_t threshold0, size_t threshold1, size_t threshold2);
REFGC_API void refgc_gc_get_threshold(size_t out[3]);

/** refgc_gc_get_count(): as CPython's gc.get_count(): young objects since the last young
 * collection, young collections since the last collection of generation 1, collections of
 * generation 1 since the last old collection. */
REFGC_API void refgc_gc_get_count(size_t out[3]);

/** Per-generation statistics. */
typedef struct refgc_gc_gen_stats_s {
  uint64_t collections;   /**< collections of this generation */
  uint64_t collected;     /**< objects they freed */
  uint64_t uncollectable; /**< unreachable objects they could not free */
  uint64_t examined;      /**< objects they examined */
  double seconds;         /**< total time */
  double max_pause;       /**< longest single collection */
  size_t objects;         /**< tracked objects now in this generation (approximate) */
} refgc_gc_gen_stats_t;

/** refgc_gc_get_stats(): fill out[0..2]. */
REFGC_API void refgc_gc_get_stats(refgc_gc_gen_stats_t out[3]);

/** Collection callbacks: called with REFGC_GC_START before and REFGC_GC_STOP after every
 * collection (automatic or explicit), on the collecting thread, with the result so far
 * (`generation` set at START; everything set at STOP). They must not create objects or
 * change counts (they run inside the collection). */
enum { REFGC_GC_START = 0, REFGC_GC_STOP = 1 };
typedef void refgc_gc_callback(int phase, const refgc_gc_result_t *info, void *arg);
/** @return 0, REFGC_ENOMEM (at most 16 callbacks) or REFGC_EINVAL (NULL). */
REFGC_API int refgc_gc_callback_add(refgc_gc_callback *fn, void *arg);
/** @return 0, or REFGC_EINVAL if (fn, arg) was not registered. */
REFGC_API int refgc_gc_callback_remove(refgc_gc_callback *fn, void *arg);

/** Debug flags (refgc_gc_set_debug). */
enum {
  REFGC_GC_DEBUG_STATS = 1u << 0,   /**< print a line per collection to stderr */
  REFGC_GC_DEBUG_SAVEALL = 1u << 5, /**< keep garbage on the garbage list instead of freeing */
};
REFGC_API void refgc_gc_set_debug(unsigned flags);
REFGC_API unsigned refgc_gc_get_debug(void);

/** The garbage list (as CPython's gc.garbage): uncollectable objects, and with
 * REFGC_GC_DEBUG_SAVEALL every object a collection found unreachable. The list holds a
 * reference to each. refgc_gc_garbage_at returns a borrowed reference or NULL past the end;
 * refgc_gc_garbage_clear drops the list's references (which may release the objects). */
REFGC_API size_t refgc_gc_garbage_count(void);
REFGC_API refgc_object_t *refgc_gc_garbage_at(size_t index);
REFGC_API void refgc_gc_garbage_clear(void);

/** An object visitor for the introspection calls below: return non-zero to stop. The object is
 * borrowed: incref it to keep it. It must not create objects or change references. */
typedef int refgc_object_visitor(refgc_object_t *obj, void *arg);

/** refgc_gc_get_objects(): visit every tracked object of `generation` (0, 1, 2), or of all
 * generations (-1), frozen objects included only for -1. @return objects visited. */
REFGC_API size_t refgc_gc_get_objects(int generation, refgc_object_visitor *fn, void *arg);

/** refgc_gc_get_referrers(): visit every tracked object that holds a reference to `obj`
 * (found by traversing every tracked object: cost linear in the heap). @return visited. */
REFGC_API size_t refgc_gc_get_referrers(const refgc_object_t *obj, refgc_object_visitor *fn,
                                        void *arg);

/** refgc_gc_get_referents(): visit every object `obj` refers to (its traverse hook).
 * @return visited. */
REFGC_API size_t refgc_gc_get_referents(refgc_object_t *obj, refgc_object_visitor *fn, void *arg);

/** refgc_gc_is_tracked(): 1 if the collector examines `obj` (its type is not a leaf). */
REFGC_API int refgc_gc_is_tracked(const refgc_object_t *obj);

/** refgc_gc_generation(): the generation of a tracked object (0, 1, 2), 3 if frozen, -1 if
 * untracked. */
REFGC_API int refgc_gc_generation(const refgc_object_t *obj);

/** refgc_gc_freeze(): move every tracked object alive now to a permanent generation that
 * collections ignore (as CPython's gc.freeze, for forking servers). Unlike CPython it writes
 * no object's memory — frozen objects are recorded in a side bitmap per segment — so pages
 * stay shared after fork(). @return 0 or REFGC_ENOMEM (nothing frozen). */
REFGC_API int refgc_gc_freeze(void);
/** refgc_gc_unfreeze(): move the frozen objects back to the old generation. */
REFGC_API void refgc_gc_unfreeze(void);
/** refgc_gc_get_freeze_count(): objects frozen now. */
REFGC_API size_t refgc_gc_get_freeze_count(void);

/** refgc_gc_print_stats(): a report of the collector's statistics (NULL: stderr). */
REFGC_API void refgc_gc_print_stats(FILE *out);

#endif /* REFGC_GC_H */
