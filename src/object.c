/* refgc — objects: the type table, creation, reference counting slow paths, release without
 * recursion, per-thread free lists per type, immortal objects, debug-mode checks.
 *
 * Release (`refgc__release`), for an object whose count reached zero:
 *   1. finalize: if the type has a finalizer and the object was never finalized, mark it
 *      finalized, give it a temporary count of 1 and call the finalizer; a count above 1 after
 *      the call means the finalizer resurrected the object, which then lives on (PEP 442);
 *   2. clear the weak references to it (their callbacks are queued, not run);
 *   3. drop its references: traverse it with a visitor that decrements each child; a child
 *      whose count reaches zero is pushed on the thread's release stack instead of being
 *      released recursively, so a chain or tree of any depth costs O(1) C stack and time
 *      linear in its size (CPython needs its "trashcan" for this);
 *   4. call its release hook, then put its memory on the type's free list or free it.
 * The loop pops the stack until it is empty; only then do queued weak reference callbacks run,
 * so a callback never sees a half-released structure.
 *
 * Free lists are per thread and per type (per item count for variable-size types): no lock on
 * either path. A freed instance on a free list holds the list link in its first word, which
 * clears its LIVE bit.
 *
 * Debug mode (REFGC_DEBUG=1) sets `refgc__object_checks`: every incref and decref then takes
 * the slow path, which checks that the object is live (a refgc heap block, LIVE, a known type,
 * not DEAD) and changes the count atomically; released objects are kept DEAD in a quarantine
 * for a while so that a late incref or decref is reported with the type and allocation stack;
 * free lists are bypassed.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int refgc__object_checks;

/* ---------------------------------------------------------------------------------------------
 * The type table: chunks of REFGC_TYPE_CHUNK pointers, published with release stores so that
 * readers need no lock.
 * ------------------------------------------------------------------------------------------ */

static pthread_mutex_t types_lock = PTHREAD_MUTEX_INITIALIZER;
_Atomic(refgc_type_t **) refgc__type_chunks[REFGC_MAX_TYPES / REFGC_TYPE_CHUNK];
#define type_chunks refgc__type_chunks
static atomic_size_t types_count;
static REFGC_TLS_MODEL _Thread_local int last_error;

void refgc__set_error(int err) { last_error = err; }
int refgc_last_error(void) { return last_error; }

refgc_type_t *refgc__type_by_id(uint32_t id) {
  if (id >= atomic_load_explicit(&types_count, memory_order_acquire)) return NULL;
  refgc_type_t **chunk =
      atomic_load_explicit(&type_chunks[id / REFGC_TYPE_CHUNK], memory_order_acquire);
  return chunk ? chunk[id % REFGC_TYPE_CHUNK] : NULL;
}

const refgc_type_t *refgc_type_register(const refgc_type_spec_t *spec) {
  refgc__global_init();
  if (!spec || spec->version != REFGC_TYPE_SPEC_VERSION || spec->basic_size < sizeof(refgc_object_t) ||
      (!(spec->flags & REFGC_TYPE_LEAF) && !spec->traverse) ||
      spec->basic_size > PTRDIFF_MAX / 2 || spec->item_size > PTRDIFF_MAX / 2) {
    last_error = REFGC_EINVAL;
    return NULL;
  }
  const char *name = spec->name ? spec->name : "(unnamed)";
  size_t len = strlen(name);
  refgc_type_t *t = refgc_calloc(1, sizeof *t + len + 1);
  if (!t) {
    last_error = REFGC_ENOMEM;
    return NULL;
  }
  char *copy = (char *)(t + 1);
  memcpy(copy, name, len + 1);
  t->spec = *spec;
  t->spec.name = copy;
  t->is_var = spec->item_size != 0;
  pthread_mutex_lock(&types_lock);
  size_t id = atomic_load_explicit(&types_count, memory_order_relaxed);
  refgc_type_t **chunk = NULL;
  if (id < REFGC_MAX_TYPES) {
    chunk = atomic_load_explicit(&type_chunks[id / REFGC_TYPE_CHUNK], memory_order_relaxed);
    if (!chunk) {
      chunk = refgc_calloc(REFGC_TYPE_CHUNK, sizeof *chunk);
      if (chunk)
        atomic_store_explicit(&type_chunks[id / REFGC_TYPE_CHUNK], chunk, memory_order_release);
    }
  }
  if (!chunk) {
    pthread_mutex_unlock(&types_lock);
    refgc_free(t);
    last_error = REFGC_ENOMEM;
    return NULL;
  }
  t->id = (uint32_t)id;
  chunk[id % REFGC_TYPE_CHUNK] = t;
  atomic_store_explicit(&types_count, id + 1, memory_order_release);
  pthread_mutex_unlock(&types_lock);
  return t;
}

const char *refgc_type_name(const refgc_type_t *type) { return type ? type->spec.name : "(null)"; }

const refgc_type_t *refgc_type_of(const refgc_object_t *obj) {
  return refgc__type_by_id(obj->bits & REFGC_OB_TYPE_MASK);
}

size_t refgc_type_count(void) { return atomic_load(&types_count); }

const refgc_type_t *refgc_type_at(size_t index) {
  return index < REFGC_MAX_TYPES ? refgc__type_by_id((uint32_t)index) : NULL;
}

/* ---------------------------------------------------------------------------------------------
 * Per-thread state
 * ------------------------------------------------------------------------------------------ */

static pthread_mutex_t ts_lock = PTHREAD_MUTEX_INITIALIZER;
/* Buffers and counters of exited threads are folded into `ts_orphan`, which is always on the
 * registry (the collector treats it as one more thread) and never destroyed. */
static refgc_tstate_t ts_orphan;
static refgc_tstate_t *ts_all = &ts_orphan;
static pthread_once_t ts_once = PTHREAD_ONCE_INIT;
static pthread_key_t ts_key;
static REFGC_TLS_MODEL _Thread_local refgc_tstate_t *tl_ts;
static atomic_uint fl_epoch; /* bumped by refgc_freelists_clear */
static atomic_int ts_live;   /* threads with object state */

int refgc__tstates_live(void) { return atomic_load_explicit(&ts_live, memory_order_relaxed); }

static void ts_destroy(void *arg);
static void ts_key_init(void) { pthread_key_create(&ts_key, ts_destroy); }

/* The calling thread's state, created on first use; NULL when out of memory. */
static refgc_tstate_t *ts_get(void) {
  refgc_tstate_t *ts = tl_ts;
  if (refgc_likely(ts != NULL)) return ts;
  pthread_once(&ts_once, ts_key_init);
  ts = refgc_calloc(1, sizeof *ts);
  if (!ts) return NULL;
  ts->fl_epoch = atomic_load(&fl_epoch);
  ts->gc_budget = (long)atomic_load_explicit(&refgc__gc_threshold0, memory_order_relaxed);
  ts->cands_compact_at = 65536;
  pthread_mutex_lock(&ts_lock);
  ts->next = ts_all;
  if (ts_all) ts_all->prev = ts;
  ts_all = ts;
  pthread_mutex_unlock(&ts_lock);
  tl_ts = ts;
  pthread_setspecific(ts_key, ts);
  atomic_fetch_add(&ts_live, 1);
  return ts;
}

refgc_tstate_t *refgc__tstate(void) { return ts_get(); }

/* The thread's entry for type `id`, growing the table; NULL when out of memory. */
static REFGC_NOINLINE ts_type_t *ts_type_grow(refgc_tstate_t *ts, uint32_t id);

REFGC_INLINE ts_type_t *ts_type(refgc_tstate_t *ts, uint32_t id) {
  if (refgc_likely(id < ts->ntypes)) return &ts->types[id];
  return ts_type_grow(ts, id);
}

static ts_type_t *ts_type_grow(refgc_tstate_t *ts, uint32_t id) {
  size_t n = atomic_load(&types_count);
  if (n <= id) n = (size_t)id + 1;
  if (n < 2 * ts->ntypes) n = 2 * ts->ntypes;
  /* readers of other threads (refgc_type_stats) walk `types` under ts_lock */
  pthread_mutex_lock(&ts_lock);
  ts_type_t *grown = refgc_realloc(ts->types, n * sizeof *grown);
  if (grown) {
    memset(grown + ts->ntypes, 0, (n - ts->ntypes) * sizeof *grown);
    ts->types = grown;
    ts->ntypes = n;
  }
  pthread_mutex_unlock(&ts_lock);
  return grown ? &ts->types[id] : NULL;
}

static void freelists_flush(refgc_tstate_t *ts) {
  for (size_t i = 0; i < ts->ntypes; i++) {
    ts_type_t *tt = &ts->types[i];
    for (int s = 0; s < REFGC_FREELIST_ITEMS; s++) {
      void *p = tt->fl[s];
      while (p) {
        void *next = *(void **)p;
        refgc_free(p);
        p = next;
      }
      tt->fl[s] = NULL;
      tt->fl_count[s] = 0;
    }
    tt->fl_bytes = 0;
  }
}

/* Thread exit: free the free lists, fold the counters into the types, drop the state. */
static void ts_destroy(void *arg) {
  refgc_tstate_t *ts = arg;
  if (!ts) return;
  freelists_flush(ts);
  if (ts->quarantine) {
    for (size_t i = 0; i < QUARANTINE; i++)
      if (ts->quarantine[i]) refgc_free(ts->quarantine[i]);
    refgc_free(ts->quarantine);
  }
  pthread_mutex_lock(&ts_lock);
  refgc_ptrvec_t *mine[3] = {&ts->cands[0], &ts->cands[1], &ts->cands[2]};
  refgc_ptrvec_t *orph[3] = {&ts_orphan.cands[0], &ts_orphan.cands[1], &ts_orphan.cands[2]};
  for (int k = 0; k < 3; k++) {
    for (size_t i = 0; i < mine[k]->n; i++) {
      if (orph[k]->n == orph[k]->cap) {
        size_t cap = orph[k]->cap ? orph[k]->cap * 2 : 256;
        refgc_object_t **grown = refgc_realloc(orph[k]->v, cap * sizeof *grown);
        if (!grown) break; /* those objects are then found by old collections only */
        orph[k]->v = grown;
        orph[k]->cap = cap;
      }
      orph[k]->v[orph[k]->n++] = mine[k]->v[i];
    }
  }
  ts_orphan.young_count += ts->young_count;
  for (int g = 0; g < 3; g++) ts_orphan.gen_delta[g] += ts->gen_delta[g];
  for (size_t i = 0; i < ts->ntypes; i++) {
    refgc_type_t *t = refgc__type_by_id((uint32_t)i);
    if (!t) continue;
    atomic_fetch_add(&t->created, ts->types[i].created);
    atomic_fetch_add(&t->released, ts->types[i].released);
    atomic_fetch_add(&t->reused, ts->types[i].reused);
  }
  if (ts->prev)
    ts->prev->next = ts->next;
  else
    ts_all = ts->next;
  if (ts->next) ts->next->prev = ts->prev;
  pthread_mutex_unlock(&ts_lock);
  atomic_fetch_sub(&ts_live, 1);
  tl_ts = NULL;
  for (int k = 0; k < 3; k++) refgc_free(ts->cands[k].v);
  refgc_free(ts->types);
  refgc_free(ts->stack);
  refgc_free(ts->cbs);
  refgc_free(ts);
}

void refgc_freelists_clear(void) {
  atomic_fetch_add(&fl_epoch, 1);
  refgc_tstate_t *ts = tl_ts;
  if (ts) {
    freelists_flush(ts);
    ts->fl_epoch = atomic_load(&fl_epoch);
  }
}

/* ---------------------------------------------------------------------------------------------
 * Creating objects
 * ------------------------------------------------------------------------------------------ */

static refgc_object_t *object_new(const refgc_type_t *type, size_t size, size_t nitems) {
  refgc_tstate_t *ts = ts_get();
  bool tracked = !(type->spec.flags & REFGC_TYPE_LEAF);
  if (tracked && ts && refgc_unlikely(ts->gc_budget <= 0)) refgc__gc_maybe_collect(ts);
  ts_type_t *tt = ts ? ts_type(ts, type->id) : NULL;
  size_t slot = type->is_var ? nitems : 0;
  refgc_object_t *o = NULL;
  if (ts && refgc_unlikely(ts->fl_epoch != atomic_load_explicit(&fl_epoch, memory_order_relaxed))) {
    freelists_flush(ts); /* refgc_freelists_clear was called, maybe on another thread */
    ts->fl_epoch = atomic_load(&fl_epoch);
  }
  if (tt && slot < REFGC_FREELIST_ITEMS && !refgc__trace_all_is_on()) {
    /* a freed instance sits on the list of the item count its block can hold (its size class
     * may round up): take the first list at or above the count asked for */
    size_t s = slot;
    while (!tt->fl[s] && type->is_var && s + 1 < REFGC_FREELIST_ITEMS && s < slot + 4) s++;
    if (tt->fl[s]) {
      o = tt->fl[s];
      tt->fl[s] = *(void **)o;
      tt->fl_count[s]--;
      tt->fl_bytes -= type->spec.basic_size + s * type->spec.item_size;
      tt->reused++;
    }
  }
  if (!o) {
    o = refgc__object_malloc(size);
    if (!o) {
      last_error = REFGC_ENOMEM;
      return NULL;
    }
  }
  memset((uint8_t *)o + sizeof *o, 0, size - sizeof *o);
  o->refcnt = 1;
  o->bits = REFGC_OB_LIVE | type->id;
  if (tracked && ts) refgc__gc_track_new(ts, o);
  if (tt) tt->created++;
  return o;
}

/* Zero an object's body: the bytes after the header up to `size` (a small block, so the
 * stores may run up to the next 8-byte boundary, inside the block's size class). */
REFGC_INLINE void zero_body(refgc_object_t *o, size_t size) {
#if REFGC_TRACKING
  memset(o + 1, 0, size - sizeof *o); /* ASan/valgrind: exactly the bytes asked for */
#else
  uint64_t *w = (uint64_t *)(void *)(o + 1);
  switch ((size - sizeof *o + 7) / 8) {
    case 7: w[6] = 0; /* fall through */
    case 6: w[5] = 0; /* fall through */
    case 5: w[4] = 0; /* fall through */
    case 4: w[3] = 0; /* fall through */
    case 3: w[2] = 0; /* fall through */
    case 2: w[1] = 0; /* fall through */
    case 1: w[0] = 0; /* fall through */
    case 0: break;
    default: memset(o + 1, 0, size - sizeof *o);
  }
#endif
}

/* refgc_new's fast path: a fixed-size type of at most 512 bytes, a thread with state, no
 * debug mode, no pending free-list clear and no collection due. Everything else goes
 * through object_new. */
refgc_object_t *refgc_new(const refgc_type_t *type) {
  refgc_tstate_t *ts = tl_ts;
  if (refgc_unlikely(!type || type->is_var)) {
    last_error = REFGC_EINVAL;
    return NULL;
  }
  size_t size = type->spec.basic_size;
  uint32_t id = type->id;
  bool tracked = !(type->spec.flags & REFGC_TYPE_LEAF);
  if (refgc_unlikely(!ts || id >= ts->ntypes || refgc__object_checks || size > REFGC_SMALL_FAST_MAX ||
                     refgc__trace_all_is_on() ||
                     ts->fl_epoch != atomic_load_explicit(&fl_epoch, memory_order_relaxed) ||
                     (tracked && ts->gc_budget <= 0)))
    return object_new(type, size, 0);
  ts_type_t *tt = &ts->types[id];
  refgc_object_t *o = tt->fl[0];
  if (o) {
    tt->fl[0] = *(void **)o;
    tt->fl_count[0]--;
    tt->fl_bytes -= size;
    tt->reused++;
  } else {
    refgc_heap_t *heap = refgc__tl_heap;
    if (refgc_unlikely(!refgc__budget_take(heap, size))) return object_new(type, size, 0);
    o = refgc__heap_malloc_small(heap, REFGC_OBJECT_LANE + (unsigned)((size - 1) >> 4), size);
    if (refgc_unlikely(!o)) {
      last_error = REFGC_ENOMEM;
      return NULL;
    }
  }
  zero_body(o, size);
  o->refcnt = 1;
  o->bits = REFGC_OB_LIVE | id;
  if (tracked) {
    o->bits |= REFGC_OB_TRACKED; /* generation 0 */
    ts->young_count++;
    ts->gc_budget--;
    ts->gen_delta[0]++;
  }
  tt->created++;
  return o;
}

refgc_object_t *refgc_new_var(const refgc_type_t *type, size_t nitems) {
  if (!type) {
    last_error = REFGC_EINVAL;
    return NULL;
  }
  size_t size;
  if (__builtin_mul_overflow(nitems, type->spec.item_size, &size) ||
      __builtin_add_overflow(size, type->spec.basic_size, &size) || size > PTRDIFF_MAX) {
    last_error = REFGC_ENOMEM;
    errno = ENOMEM;
    return NULL;
  }
  return object_new(type, size, nitems);
}

size_t refgc_object_size(const refgc_object_t *obj) { return refgc_usable_size(obj); }

void refgc_make_immortal(refgc_object_t *obj) { obj->refcnt = REFGC_IMMORTAL_REFCNT; }

void refgc_static_init(refgc_object_t *obj, const refgc_type_t *type) {
  obj->refcnt = REFGC_IMMORTAL_REFCNT;
  obj->bits = REFGC_OB_LIVE | type->id;
}

int refgc_is_finalized(const refgc_object_t *obj) { return (obj->bits & REFGC_OB_FINALIZED) != 0; }

/* ---------------------------------------------------------------------------------------------
 * Debug-mode checks
 * ------------------------------------------------------------------------------------------ */

/* Whether `o` is a live object; reports to the error handler (naming `func`) when not. */
bool refgc__object_check(const char *func, const refgc_object_t *o) {
  if (!o) {
    refgc__report(REFGC_EBADOBJECT, func, o, 0, 0, NULL, 0, "%s(NULL): not an object", func);
    return false;
  }
  bool on_heap = refgc__segment_of(o) != NULL;
  if (!on_heap && !refgc_is_immortal(o)) {
    refgc__report(REFGC_EBADOBJECT, func, o, 0, 0, NULL, 0,
                  "%s(%p): not an object (not in the refgc heap, and not a static object)", func,
                  (const void *)o);
    return false;
  }
  if (on_heap && !refgc__is_object_block(o)) {
    refgc__report(REFGC_EBADOBJECT, func, o, 0, 0, NULL, 0,
                  "%s(%p): not an object: the address is not the start of an object's block "
                  "(a pointer into the middle of an object, or into memory from refgc_malloc)",
                  func, (const void *)o);
    return false;
  }
  bool freed = on_heap && refgc__opt.debug && !refgc_owns(o);
  uint32_t bits = freed ? 0 : o->bits;
  refgc_type_t *t = freed ? NULL : refgc__type_by_id(bits & REFGC_OB_TYPE_MASK);
  if (!freed && !(bits & REFGC_OB_DEAD) && (bits & REFGC_OB_LIVE) && t) return true;
  /* a report: only now is the allocation stack fetched */
  void *stack[32];
  int depth = on_heap ? refgc__debug_stack(o, stack, 32) : 0;
  if (freed) {
    refgc__report(REFGC_EBADOBJECT, func, o, 0, 0, stack, depth,
                  "%s(%p): not a live object: its memory was freed (an object released earlier)",
                  func, (const void *)o);
  } else if (bits & REFGC_OB_DEAD) {
    refgc__report(REFGC_EBADOBJECT, func, o, 0, 0, stack, depth,
                  "%s(%p): use of a released object: this %s was released earlier (its count "
                  "reached zero)",
                  func, (const void *)o, t ? t->spec.name : "object");
  } else {
    refgc__report(REFGC_EBADOBJECT, func, o, 0, 0, stack, depth,
                  "%s(%p): not a live object (header %08x %08x: no object type there)", func,
                  (const void *)o, (unsigned)o->refcnt, (unsigned)bits);
  }
  return false;
}

/* ---------------------------------------------------------------------------------------------
 * Reference counting slow paths
 * ------------------------------------------------------------------------------------------ */

static void report_underflow(const char *func, refgc_object_t *o) {
  void *stack[32];
  int depth = refgc__segment_of(o) ? refgc__debug_stack(o, stack, 32) : 0;
  refgc_type_t *t = refgc__type_by_id(o->bits & REFGC_OB_TYPE_MASK);
  refgc__report(REFGC_EREFCOUNT, func, o, 0, 0, stack, depth,
                "%s(%p): the reference count of this %s is already 0 (more decrefs than "
                "references: it is being released, or a reference was dropped twice)",
                func, (void *)o, t ? t->spec.name : "object");
}

void refgc__incref_slow(refgc_object_t *o) {
  if (!refgc__object_checks) return; /* immortal */
  if (!refgc__object_check("refgc_incref", o)) return;
  _Atomic uint32_t *rc = (_Atomic uint32_t *)&o->refcnt;
  uint32_t c = atomic_load(rc);
  do {
    if ((int32_t)c < 0) return;
  } while (!atomic_compare_exchange_weak(rc, &c, c + 1));
}

/* A count dropped but not to zero: the object may now be the root of a garbage cycle. */
REFGC_INLINE void note_nonzero_decrement(refgc_object_t *o) {
  if ((o->bits & (REFGC_OB_TRACKED | REFGC_OB_BUFFERED)) == REFGC_OB_TRACKED)
    refgc__gc_candidate(o);
}

/* Debug mode's decrement: atomic, and a count already at 0 is reported (naming `func`).
 * @return the count before the decrement, or 0 when nothing was decremented (immortal object,
 * or an underflow reported). */
static uint32_t debug_decrement(refgc_object_t *o, const char *func) {
  _Atomic uint32_t *rc = (_Atomic uint32_t *)&o->refcnt;
  uint32_t c = atomic_load(rc);
  do {
    if ((int32_t)c < 0) return 0;
    if (c == 0) {
      report_underflow(func, o);
      return 0;
    }
  } while (!atomic_compare_exchange_weak(rc, &c, c - 1));
  return c;
}

void refgc__decref_slow(refgc_object_t *o) {
  if (!refgc__object_checks) {
    if (o->refcnt == 0) report_underflow("refgc_decref", o);
    return; /* immortal */
  }
  if (!refgc__object_check("refgc_decref", o)) return;
  uint32_t c = debug_decrement(o, "refgc_decref");
  if (c == 1)
    refgc__release(o);
  else if (c > 1)
    note_nonzero_decrement(o); /* as the inline path does */
}

/* ---------------------------------------------------------------------------------------------
 * Release
 * ------------------------------------------------------------------------------------------ */

static void release_one(refgc_tstate_t *ts, refgc_object_t *o);

/* Queue `o` (count now 0) for release; without room on the stack, release it right here. */
static void release_push(refgc_tstate_t *ts, refgc_object_t *o) {
  if (ts->top == ts->stack_cap) {
    size_t cap = ts->stack_cap ? ts->stack_cap * 2 : 256;
    refgc_object_t **grown = refgc_realloc(ts->stack, cap * sizeof *grown);
    if (!grown) {
      release_one(ts, o); /* out of memory: recursion is the only way left */
      return;
    }
    ts->stack = grown;
    ts->stack_cap = cap;
  }
  ts->stack[ts->top++] = o;
}

/* The visitor that drops each reference of an object being released. */
static void release_visit(refgc_object_t *child, void *arg) {
  static const char who[] = "refgc_decref (from a traverse hook during release)";
  if (!child) return;
  refgc_tstate_t *ts = arg;
  uint32_t old;
  if (refgc__object_checks) {
    /* debug mode: the child is checked, and every count change is atomic, this one too */
    if (!refgc__object_check("traverse", child)) return;
    old = debug_decrement(child, who);
  } else {
    old = child->refcnt;
    if ((int32_t)old < 0) return;
    if (old == 0) {
      report_underflow(who, child);
      return;
    }
    child->refcnt = old - 1;
  }
  if (old == 1)
    release_push(ts, child); /* count 0: released by the loop, not recursively */
  else if (old > 1)
    note_nonzero_decrement(child);
}

void refgc__queue_callback(refgc_tstate_t *ts, refgc_object_t *weakref,
                           refgc_weakref_callback *cb, void *arg) {
  if (ts->ncbs == ts->cbs_cap) {
    size_t cap = ts->cbs_cap ? ts->cbs_cap * 2 : 16;
    pending_cb_t *grown = refgc_realloc(ts->cbs, cap * sizeof *grown);
    if (!grown) {
      /* out of memory: run it now (the referent is already unreachable through weakrefs) */
      cb(weakref, arg);
      refgc_decref(weakref);
      return;
    }
    ts->cbs = grown;
    ts->cbs_cap = cap;
  }
  ts->cbs[ts->ncbs++] = (pending_cb_t){weakref, cb, arg};
}

static void free_object(refgc_tstate_t *ts, refgc_type_t *t, refgc_object_t *o) {
  if (refgc__object_checks) {
    /* keep it DEAD for a while so that late increfs and decrefs are caught */
    o->bits |= REFGC_OB_DEAD;
    o->refcnt = 0;
    refgc__trace_free(o); /* released, as far as tracing is concerned */
    if (!ts->quarantine) ts->quarantine = refgc_calloc(QUARANTINE, sizeof *ts->quarantine);
    if (ts->quarantine) {
      refgc_object_t *old = ts->quarantine[ts->qpos];
      ts->quarantine[ts->qpos] = o;
      ts->qpos = (ts->qpos + 1) % QUARANTINE;
      if (old) refgc_free(old);
      return;
    }
    refgc_free(o);
    return;
  }
  ts_type_t *tt = ts_type(ts, t->id);
  if (tt && t->spec.freelist_max && !refgc__trace_all_is_on()) {
    size_t slot = 0;
    if (t->is_var) {
      /* the count this block can hold; a block made for a count below the lists' limit may
       * hold more than the limit (size classes round up): it serves the last list */
      size_t usable = refgc_usable_size(o);
      size_t made = (usable - t->spec.basic_size) / t->spec.item_size;
      slot = made >= REFGC_FREELIST_ITEMS && usable <= t->spec.basic_size +
                                                           (REFGC_FREELIST_ITEMS + 16) *
                                                               t->spec.item_size
                 ? REFGC_FREELIST_ITEMS - 1
                 : made;
    }
    if (slot < REFGC_FREELIST_ITEMS && tt->fl_count[slot] < t->spec.freelist_max &&
        ts->fl_epoch == atomic_load_explicit(&fl_epoch, memory_order_relaxed)) {
      size_t want = t->spec.basic_size + slot * t->spec.item_size;
      *(void **)o = tt->fl[slot]; /* clears LIVE: the word is now a list link */
      tt->fl[slot] = o;
      tt->fl_count[slot]++;
      tt->fl_bytes += want;
      return;
    }
  }
  o->bits = 0;
  refgc__object_free(o);
}

static void release_one(refgc_tstate_t *ts, refgc_object_t *o) {
  refgc_type_t *t = refgc__type_of_id(o->bits & REFGC_OB_TYPE_MASK);
  if (refgc_unlikely(!t)) {
    refgc__object_check("refgc_decref", o);
    return;
  }
  if (t->spec.finalize && !(o->bits & REFGC_OB_FINALIZED)) {
    o->bits |= REFGC_OB_FINALIZED;
    o->refcnt = 1;
    ts->hook_depth++;
    t->spec.finalize(o);
    ts->hook_depth--;
    if (o->refcnt != 1) {
      /* resurrected: the finalizer stored new references; drop the temporary one */
      o->refcnt--;
      return;
    }
    o->refcnt = 0;
  }
  if (o->bits & REFGC_OB_WEAKREFS) refgc__weakrefs_clear(ts, o);
  ts->hook_depth++;
  if (t->spec.traverse && !(t->spec.flags & REFGC_TYPE_LEAF)) t->spec.traverse(o, release_visit, ts);
  if (t->spec.release) t->spec.release(o);
  ts->hook_depth--;
  if (o->bits & REFGC_OB_TRACKED) {
    unsigned g = REFGC_OB_GEN(o->bits);
    if (g == 0 && ts->young_count) ts->young_count--;
    ts->gen_delta[g]--;
    if (refgc_unlikely(atomic_load_explicit(&refgc__gc_frozen, memory_order_relaxed)))
      refgc__gc_untrack_frozen(o);
  }
  ts_type_t *tt = ts_type(ts, t->id);
  if (tt) tt->released++;
  free_object(ts, t, o);
}

void refgc__release(refgc_object_t *o) {
  refgc_tstate_t *ts = ts_get();
  o->refcnt = 0;
  if (refgc_unlikely(!ts)) {
    /* no thread state (out of memory): release without free lists or callbacks queue */
    refgc__report(REFGC_ENOMEM, "refgc_decref", o, 0, 0, NULL, 0,
                  "refgc_decref(%p): out of memory for the release state; object leaked",
                  (void *)o);
    return;
  }
  if (ts->releasing) {
    release_push(ts, o); /* an outer release loop on this thread will get to it */
    return;
  }
  ts->releasing = 1;
  release_one(ts, o);
  while (ts->top) release_one(ts, ts->stack[--ts->top]);
  ts->releasing = 0;
  if (refgc_unlikely(ts->stack_cap > 65536)) {
    /* a wide structure grew the stack: give it back */
    refgc_free(ts->stack);
    ts->stack = NULL;
    ts->stack_cap = 0;
  }
  /* weak reference callbacks, after the whole structure is gone; each may release more */
  if (ts->ncbs) refgc__run_callbacks(ts);
}

/* Callbacks may release objects whose weak references queue more callbacks: those run in
 * this same loop, not in a nested one, so a chain of callbacks costs no C stack. */
void refgc__run_callbacks(refgc_tstate_t *ts) {
  if (ts->in_callbacks) return;
  ts->in_callbacks = 1;
  while (ts->ncbs) {
    pending_cb_t cb = ts->cbs[--ts->ncbs];
    ts->hook_depth++;
    cb.cb(cb.weakref, cb.arg);
    ts->hook_depth--;
    refgc_decref(cb.weakref);
  }
  ts->in_callbacks = 0;
}

void refgc__tstates_foreach(void (*fn)(refgc_tstate_t *, void *), void *arg) {
  pthread_mutex_lock(&ts_lock);
  for (refgc_tstate_t *ts = ts_all; ts; ts = ts->next) fn(ts, arg);
  pthread_mutex_unlock(&ts_lock);
}

/* ---------------------------------------------------------------------------------------------
 * Statistics
 * ------------------------------------------------------------------------------------------ */

int refgc_type_stats(const refgc_type_t *type, refgc_type_stats_t *out) {
  if (!type || !out) return REFGC_EINVAL;
  memset(out, 0, sizeof *out);
  out->name = type->spec.name;
  out->created = atomic_load(&((refgc_type_t *)(uintptr_t)type)->created);
  out->released = atomic_load(&((refgc_type_t *)(uintptr_t)type)->released);
  out->reused = atomic_load(&((refgc_type_t *)(uintptr_t)type)->reused);
  pthread_mutex_lock(&ts_lock);
  for (refgc_tstate_t *ts = ts_all; ts; ts = ts->next) {
    if (type->id >= ts->ntypes) continue;
    ts_type_t *tt = &ts->types[type->id];
    out->created += refgc_stat_get(tt->created);
    out->released += refgc_stat_get(tt->released);
    out->reused += refgc_stat_get(tt->reused);
    for (int s = 0; s < REFGC_FREELIST_ITEMS; s++) out->cached += refgc_stat_get(tt->fl_count[s]);
    out->cached_bytes += refgc_stat_get(tt->fl_bytes);
  }
  pthread_mutex_unlock(&ts_lock);
  out->live = (size_t)(out->created - out->released);
  return 0;
}
