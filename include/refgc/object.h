/* refgc — objects: type descriptors, reference counting, free lists per type, immortal
 * objects, finalizers, weak references and weakly valued maps.
 *
 * Included by refgc.h; do not include it alone.
 *
 * An object is a block of the refgc heap that starts with a `refgc_object_t` header of 8 bytes:
 *
 *     bits  0..31  refcnt   the reference count; counts with the top bit set are immortal
 *     bits 32..51  type     index of the object's type in the type table (up to 2^20 types)
 *     bits 52..63  flags    live, finalized, has weak references, and the cycle collector's
 *                           bits (docs/design.md, "the object header")
 *
 * That is all an object pays, tracked by the cycle collector or not: the collector keeps no
 * per-object list links (it works from candidate roots and the heap's own pages).
 *
 * Threads. An object belongs to no thread in particular, but its reference count is a plain
 * integer: at any moment only one thread may change it. A program that hands an object to
 * another thread (through a queue or under a mutex) may incref and decref it there, and the
 * last decref may happen on any thread: the object is released there and its memory goes back
 * to the heap that allocated it. Two threads changing the count of the same object without
 * synchronising is a data race (ThreadSanitizer reports it); in debug mode (REFGC_DEBUG=1)
 * count changes are atomic, so such a race cannot corrupt the count. Objects shared freely
 * between threads come in a later release.
 *
 * A weak reference belongs to the thread context of its referent as far as its callback is
 * concerned: when the referent is released, the releasing thread takes a reference to each
 * weak reference that has a callback, runs the callback, and drops that reference. A program
 * whose referent may be released on one thread while another thread increfs or decrefs the
 * weak reference must synchronise the two, as for any shared object.
 */
#ifndef REFGC_OBJECT_H
#define REFGC_OBJECT_H

#ifndef REFGC_H
#error "include refgc.h, not refgc/object.h"
#endif

/* ---------------------------------------------------------------------------------------------
 * The object header
 * ------------------------------------------------------------------------------------------ */

/** The header every object starts with. Embed it as the first member of your struct:
 *
 *     typedef struct node { refgc_object_t ob; struct node *next; } node;
 *
 * `refcnt` is public read-only (prefer `refgc_refcount()`); `bits` is private. */
typedef struct refgc_object_s {
  uint32_t refcnt; /**< read-only: the reference count (≥ 2^31: immortal) */
  uint32_t bits;   /**< private: type index and flags */
} refgc_object_t;

/** The count refgc gives immortal objects. Every count with the top bit set (2^31 or more)
 * is immortal: never changed, never released; a count that reaches 2^31 by increfs stays
 * there rather than overflow. */
#define REFGC_IMMORTAL_REFCNT 0xC0000000u

/* ---------------------------------------------------------------------------------------------
 * Types
 * ------------------------------------------------------------------------------------------ */

/** A registered type (opaque). Types live until the program ends. */
typedef struct refgc_type_s refgc_type_t;

/** A traverse hook calls `visit(child, arg)` once for every object reference `self` holds
 * (NULL references may be skipped or passed: NULL is ignored). It must not change any
 * reference count, allocate, or free. */
typedef void refgc_visit_fn(refgc_object_t *child, void *arg);
typedef void refgc_traverse_fn(refgc_object_t *self, refgc_visit_fn *visit, void *arg);

/** A clear hook drops the references `self` holds: sets each field to NULL and then decrefs
 * the old value (in that order, as Py_CLEAR does). The cycle collector calls it to break
 * cycles; the object stays valid (its other fields intact) until it is released. */
typedef void refgc_clear_fn(refgc_object_t *self);

/** A finalizer runs at most once per object, before its references are dropped, while the
 * object is fully intact (PEP 442). It may use the object and everything it refers to, and it
 * may resurrect the object by storing a new reference to it somewhere (refgc_incref): the
 * object then lives on and is never finalized again. It may allocate and drop objects. */
typedef void refgc_finalize_fn(refgc_object_t *self);

/** A release hook frees what is not memory (closes a file, a socket) just before the
 * object's memory is released. The object's references have already been dropped: it must
 * not follow them. It must not resurrect the object. */
typedef void refgc_release_fn(refgc_object_t *self);

/** Type flags. */
enum {
  /** Instances hold no references: no traverse needed, never tracked by the collector
   * (numbers, strings, byte buffers). */
  REFGC_TYPE_LEAF = 1u << 0,
};

/** refgc_type_spec_t version understood by this library. */
#define REFGC_TYPE_SPEC_VERSION 1

/** What a program says about a type. */
typedef struct refgc_type_spec_s {
  uint32_t version;            /**< REFGC_TYPE_SPEC_VERSION */
  uint32_t flags;              /**< REFGC_TYPE_* */
  const char *name;            /**< for reports; copied */
  size_t basic_size;           /**< bytes of a fixed-size instance, header included (≥ 8) */
  size_t item_size;            /**< bytes per item of a variable-size instance, else 0 */
  refgc_traverse_fn *traverse; /**< required unless REFGC_TYPE_LEAF */
  refgc_clear_fn *clear;       /**< optional (the collector needs it to break cycles) */
  refgc_finalize_fn *finalize; /**< optional */
  refgc_release_fn *release;   /**< optional */
  /** Freed instances each thread keeps for reuse (fixed-size types: of this type;
   * variable-size types: per item count, for counts 0..REFGC_FREELIST_ITEMS-1). 0: none. */
  uint32_t freelist_max;
} refgc_type_spec_t;

/** Variable-size instances with fewer items than this are kept on per-count free lists. */
#define REFGC_FREELIST_ITEMS 16

/** refgc_type_register(): register a type. `spec` is copied; its name is copied. Any thread.
 * @return the type (valid until the program ends), or NULL with refgc_last_error() set to
 * REFGC_EINVAL (a missing traverse hook, a size below the header, a bad version) or
 * REFGC_ENOMEM (too many types: 2^20). */
REFGC_API const refgc_type_t *refgc_type_register(const refgc_type_spec_t *spec);

/** refgc_type_name(): the name given at registration. */
REFGC_API const char *refgc_type_name(const refgc_type_t *type);

/** refgc_type_of(): the type of a live object. */
REFGC_API const refgc_type_t *refgc_type_of(const refgc_object_t *obj);

/** refgc_last_error(): the error of the calling thread's last failed object call (REFGC_OK
 * when none). */
REFGC_API int refgc_last_error(void);

/* ---------------------------------------------------------------------------------------------
 * Creating objects
 * ------------------------------------------------------------------------------------------ */

/** refgc_new(): a new instance of a fixed-size type with one reference, owned by the
 * caller. Bytes after the header are zeroed. Reuses a freed instance from the calling
 * thread's free list when it has one. @return the object, or NULL (refgc_last_error():
 * REFGC_ENOMEM, or REFGC_EINVAL for a variable-size type). */
REFGC_API refgc_object_t *refgc_new(const refgc_type_t *type);

/** refgc_new_var(): a new instance of a variable-size type with room for `nitems` items
 * (`basic_size + nitems * item_size` bytes, zeroed after the header). @return the object, or
 * NULL (REFGC_ENOMEM, also when the size overflows). */
REFGC_API refgc_object_t *refgc_new_var(const refgc_type_t *type, size_t nitems);

/** refgc_object_size(): bytes usable in the object's block, header included: at least what it
 * was created with (its size class may round up; in debug mode it is exactly that). */
REFGC_API size_t refgc_object_size(const refgc_object_t *obj);

/** refgc_make_immortal(): make `obj` immortal: increfs and decrefs no longer change it and it
 * is never released. For shared constants. Cannot be undone. */
REFGC_API void refgc_make_immortal(refgc_object_t *obj);

/** refgc_static_init(): initialise a statically allocated object (not from the refgc heap,
 * e.g. a global `struct { refgc_object_t ob; ... }`) of `type`, as immortal. Its traverse hook
 * may be called; it is never released. */
REFGC_API void refgc_static_init(refgc_object_t *obj, const refgc_type_t *type);

/** refgc_is_immortal(): 1 if increfs and decrefs do not change `obj`. */
static inline int refgc_is_immortal(const refgc_object_t *obj) {
  return (int32_t)obj->refcnt < 0;
}

/** refgc_refcount(): the current count (REFGC_IMMORTAL_REFCNT or more for immortals). */
static inline uint32_t refgc_refcount(const refgc_object_t *obj) { return obj->refcnt; }

/* ---------------------------------------------------------------------------------------------
 * Reference counting: inline, a load, a compare and a store on the common path
 * ------------------------------------------------------------------------------------------ */

/** Private header bits the inline decref tests: the object is seen by the cycle collector, and
 * is already a candidate root. */
#define REFGC__OB_TRACKED 0x00100000u
#define REFGC__OB_BUFFERED 0x00200000u
/** Private: record `obj` as a possible root of a garbage cycle (its count dropped, not to 0). */
REFGC_API void refgc__gc_candidate(refgc_object_t *obj);

/** Private: non-zero when debug mode checks every count change (REFGC_DEBUG=1). */
REFGC_API extern int refgc__object_checks;
/** Private: the slow paths of the inline functions below. */
REFGC_API void refgc__incref_slow(refgc_object_t *obj);
REFGC_API void refgc__decref_slow(refgc_object_t *obj);
REFGC_API void refgc__release(refgc_object_t *obj);

/** refgc_incref(): add a reference to `obj` (not NULL). Immortal objects are unchanged; a
 * count reaching 2^31 makes the object immortal rather than overflow. */
static inline void refgc_incref(refgc_object_t *obj) {
  uint32_t c = obj->refcnt;
  if (__builtin_expect((int32_t)c < 0 || refgc__object_checks, 0)) {
    refgc__incref_slow(obj);
    return;
  }
  obj->refcnt = c + 1;
}

/** refgc_decref(): drop a reference to `obj` (not NULL). When the count reaches zero the
 * object is released at once: finalized (once), its weak references cleared, its references
 * dropped (without recursion on the C stack, however deep the structure: objects waiting to
 * be released go on a per-thread stack in the heap; only if that stack cannot grow for want
 * of memory does the release recurse), its release hook run, and its memory freed or kept on
 * its type's free list. Weak reference callbacks run after that. */
static inline void refgc_decref(refgc_object_t *obj) {
  uint32_t c = obj->refcnt;
  if (__builtin_expect((int32_t)c <= 1 || refgc__object_checks, 0)) {
    if (c == 1 && !refgc__object_checks)
      refgc__release(obj);
    else
      refgc__decref_slow(obj); /* immortal, underflow, or debug mode */
    return;
  }
  obj->refcnt = c - 1;
  /* a count that drops but not to zero may have left a garbage cycle behind */
  if (__builtin_expect((obj->bits & (REFGC__OB_TRACKED | REFGC__OB_BUFFERED)) == REFGC__OB_TRACKED, 0))
    refgc__gc_candidate(obj);
}

/** refgc_xincref(), refgc_xdecref(): the same, doing nothing for NULL. */
static inline void refgc_xincref(refgc_object_t *obj) {
  if (obj) refgc_incref(obj);
}
static inline void refgc_xdecref(refgc_object_t *obj) {
  if (obj) refgc_decref(obj);
}

/** refgc_is_finalized(): 1 if the object's finalizer has run (it was resurrected). */
REFGC_API int refgc_is_finalized(const refgc_object_t *obj);

/* ---------------------------------------------------------------------------------------------
 * Free lists
 * ------------------------------------------------------------------------------------------ */

/** refgc_freelists_clear(): release every instance kept on the calling thread's free lists
 * now, and ask other threads to release theirs at their next refgc_new. */
REFGC_API void refgc_freelists_clear(void);

/** Per-type figures, summed over threads. */
typedef struct refgc_type_stats_s {
  const char *name;
  uint64_t created;     /**< instances created (refgc_new, refgc_new_var) */
  uint64_t released;    /**< instances released */
  uint64_t reused;      /**< creations served from a free list */
  size_t live;          /**< created - released */
  size_t cached;        /**< instances on free lists now */
  size_t cached_bytes;  /**< their bytes */
} refgc_type_stats_t;

/** refgc_type_stats(): fill `*out` for `type`. Counters of other threads are read while they
 * run (approximate). @return 0 or REFGC_EINVAL. */
REFGC_API int refgc_type_stats(const refgc_type_t *type, refgc_type_stats_t *out);

/** refgc_type_count(): number of registered types; `refgc_type_at(i)` for i below it. */
REFGC_API size_t refgc_type_count(void);
REFGC_API const refgc_type_t *refgc_type_at(size_t index);

/* ---------------------------------------------------------------------------------------------
 * Weak references
 * ------------------------------------------------------------------------------------------ */

/** A weak reference callback: called once, after the referent was released (`weakref` reads
 * NULL by then), with the weak reference itself (borrowed: incref it to keep it) and `arg`.
 * It never sees the referent. It may create and drop objects and weak references. */
typedef void refgc_weakref_callback(refgc_object_t *weakref, void *arg);

/** refgc_weakref_new(): a new weak reference to `target` (one reference, owned by the
 * caller; itself an object of the built-in type "weakref"). `callback` may be NULL. A weak
 * reference does not keep `target` alive. Immortal targets never die. @return the weak
 * reference or NULL (refgc_last_error(): REFGC_ENOMEM, REFGC_EINVAL for NULL target). */
REFGC_API refgc_object_t *refgc_weakref_new(refgc_object_t *target,
                                             refgc_weakref_callback *callback, void *arg);

/** refgc_weakref_get(): a new strong reference to the referent (release it with
 * refgc_decref), or NULL once the referent has been released. */
REFGC_API refgc_object_t *refgc_weakref_get(refgc_object_t *weakref);

/** refgc_weakref_alive(): 1 while the referent lives. */
REFGC_API int refgc_weakref_alive(refgc_object_t *weakref);

/** refgc_weakref_count(): number of live weak references to `target`. */
REFGC_API size_t refgc_weakref_count(const refgc_object_t *target);

/* ---------------------------------------------------------------------------------------------
 * Weakly valued maps: key bytes → object, an entry disappears when its object is released
 * ------------------------------------------------------------------------------------------ */

/** A weakly valued map (opaque). Thread context: one thread at a time (no internal lock). */
typedef struct refgc_weakmap_s refgc_weakmap_t;

/** refgc_weakmap_new(): an empty map; NULL when out of memory. Free with refgc_weakmap_free. */
REFGC_API refgc_weakmap_t *refgc_weakmap_new(void);
/** refgc_weakmap_free(): free the map (not its values). NULL does nothing. */
REFGC_API void refgc_weakmap_free(refgc_weakmap_t *map);
/** refgc_weakmap_set(): map `key` (`len` bytes, copied) to `value` without keeping `value`
 * alive; replaces an existing entry. @return 0, REFGC_ENOMEM or REFGC_EINVAL (NULL value). */
REFGC_API int refgc_weakmap_set(refgc_weakmap_t *map, const void *key, size_t len,
                                refgc_object_t *value);
/** refgc_weakmap_get(): a new strong reference to the value of `key`, or NULL when there is
 * none or it was released. */
REFGC_API refgc_object_t *refgc_weakmap_get(refgc_weakmap_t *map, const void *key, size_t len);
/** refgc_weakmap_remove(): remove `key`. @return 1 if it was there, else 0. */
REFGC_API int refgc_weakmap_remove(refgc_weakmap_t *map, const void *key, size_t len);
/** refgc_weakmap_count(): entries whose value is alive. */
REFGC_API size_t refgc_weakmap_count(refgc_weakmap_t *map);

#endif /* REFGC_OBJECT_H */
