/* refgc — the cycle collector: trial deletion over the closure of candidate roots, by
 * generation, with PEP 442 finalization and the gc module's introspection.
 *
 * Candidate roots: a garbage cycle forms only when a count drops to a non-zero value, so the
 * inline decref (and the release path's decrements) record such tracked objects in per-thread
 * buffers, by generation (Bacon & Rajan 2001). No candidates, no work.
 *
 * The collection set S (objects marked INSET) for generation g is the candidates of
 * generations 0..g that still refer to some tracked object, and everything they reach that is
 * not older than g. An older object the set refers to is the barrier: its references count as
 * external, and it becomes a candidate of its own generation, so the older collection that
 * starts there sees any cycle crossing the barrier. refgc_collect(2) is exhaustive instead:
 * every tracked object, by walking the object pages. Buffers may hold stale entries (objects
 * released since); an entry counts only if it is the start of a block in an object page whose
 * header says LIVE, TRACKED and not DEAD — object pages hold nothing else, so a stale entry is
 * either a free block (skipped) or some live tracked object, which may safely be examined.
 *
 * Trial deletion on S (CPython's gc.c, without its 16-byte links: counts are changed in place
 * and restored, the set is an array):
 *   1. subtract: for each member, traverse it and decrement each child that is in S. A member
 *      whose count stays above zero is referenced from outside S (the program, or an object
 *      outside S): it is a root;
 *   2. mark: from the roots, mark everything reachable within S (explicit stack), adding each
 *      reference back as it is traversed;
 *   3. restore: traverse the unmarked members, adding their references back;
 *   4. what is not marked is unreachable. Survivors are promoted one generation.
 * Then the unreachable set U is handled in PEP 442's order (see refgc/gc.h): weak references,
 * finalizers, a second trial deletion over U to find what finalizers resurrected (only if a
 * finalizer or callback ran), then clear hooks break the cycles and reference counting
 * releases the objects.
 *
 * Memory: S (8 bytes per member) and the mark stack (at most 8 bytes per member), kept
 * across collections; nothing per object outside a collection but the header bits. No
 * recursion: traversals push onto explicit stacks.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

/* ---------------------------------------------------------------------------------------------
 * State. Collections are serialised by `collecting` (a CAS, so a second one is refused, not
 * queued); the rest follows the collector's threading rule (refgc/gc.h).
 * ------------------------------------------------------------------------------------------ */

#define MAX_CALLBACKS 16

static atomic_int collecting;
static atomic_int enabled = 1;
static atomic_int serialized;
static _Atomic size_t threshold[3] = {2000, 10, 10};
static size_t count1, count2; /* young collections since a middle one; middle since an old */
static refgc_gc_gen_stats_t gen_stats[3];
static unsigned debug_flags;
static struct {
  refgc_gc_callback *fn;
  void *arg;
} callbacks[MAX_CALLBACKS];
static int ncallbacks;
static refgc_ptrvec_t garbage;   /* the garbage list: holds references */
static refgc_ptrvec_t set;       /* S */
static refgc_ptrvec_t mark_stack;    /* mark stack */
atomic_size_t refgc__gc_frozen;
#define freeze_count refgc__gc_frozen

/* Tracked objects per generation: the sum of every thread's deltas (exited threads' deltas
 * are folded into the orphan state). Approximate while threads run. */
static void sum_gen(refgc_tstate_t *ts, void *arg) {
  int64_t *sum = arg;
  for (int g = 0; g < 3; g++) sum[g] += ts->gen_delta[g];
}
static size_t gen_objects(int g) {
  int64_t sum[3] = {0, 0, 0};
  refgc__tstates_foreach(sum_gen, sum);
  return sum[g] > 0 ? (size_t)sum[g] : 0;
}

static bool vec_push(refgc_ptrvec_t *v, refgc_object_t *o) {
  if (v->n == v->cap) {
    size_t cap = v->cap ? v->cap * 2 : 1024;
    refgc_object_t **grown = refgc_realloc(v->v, cap * sizeof *grown);
    if (!grown) return false;
    v->v = grown;
    v->cap = cap;
  }
  v->v[v->n++] = o;
  return true;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void refgc__gc_options_init(void) {
  const char *s = getenv("REFGC_GC");
  if (s && !strcmp(s, "0")) enabled = 0;
}

/* ---------------------------------------------------------------------------------------------
 * Frozen objects: a bitmap per segment (one bit per 16 bytes), so freezing writes no object.
 * ------------------------------------------------------------------------------------------ */

#define FROZEN_WORDS ((REFGC_SEGMENT_SIZE / 16) / 64)

static bool is_frozen(const refgc_object_t *o) {
  refgc_segment_t *seg = refgc__page_segment((const refgc_page_t *)(const void *)o);
  if (!seg->frozen) return false;
  size_t bit = ((uintptr_t)o - (uintptr_t)seg) >> 4;
  return (seg->frozen[bit >> 6] >> (bit & 63)) & 1;
}

static void set_frozen(refgc_object_t *o, bool on) {
  refgc_segment_t *seg = refgc__page_segment((const refgc_page_t *)(const void *)o);
  if (!seg->frozen) return;
  size_t bit = ((uintptr_t)o - (uintptr_t)seg) >> 4;
  if (on)
    seg->frozen[bit >> 6] |= (uint64_t)1 << (bit & 63);
  else
    seg->frozen[bit >> 6] &= ~((uint64_t)1 << (bit & 63));
}

/* ---------------------------------------------------------------------------------------------
 * Tracking hooks called by object.c
 * ------------------------------------------------------------------------------------------ */

_Atomic size_t refgc__gc_threshold0 = 2000;

static bool entry_valid(refgc_object_t *o);

/* Drop the stale entries of a candidate buffer that grew while no collection ran. */
static void cands_compact(refgc_ptrvec_t *v) {
  size_t k = 0;
  for (size_t i = 0; i < v->n; i++)
    if (entry_valid(v->v[i]) && (v->v[i]->bits & REFGC_OB_BUFFERED)) v->v[k++] = v->v[i];
  v->n = k;
}

/* Candidates a buffer may hold while no collection drains it before they are given up. */
#define CANDS_MAX ((size_t)1 << 20)
/* Set when candidates were given up: the next collection examines every object instead. */
static atomic_int cands_lost;

void refgc__gc_candidate(refgc_object_t *o) {
  /* garbage the collector is breaking up is not a root of anything */
  if (o->bits & REFGC_OB_GARBAGE) return;
  refgc_tstate_t *ts = refgc__tstate();
  if (!ts) return;
  if (refgc_unlikely(ts->cands[0].n >= ts->cands_compact_at)) {
    /* no collection emptied the buffer (collection off, or paused): keep it to live entries */
    cands_compact(&ts->cands[0]);
    if (ts->cands[0].n >= CANDS_MAX) {
      /* still too many: give them all up (8 bytes each, without bound otherwise) and let the
       * next collection be exhaustive, which needs no candidates */
      for (size_t i = 0; i < ts->cands[0].n; i++) ts->cands[0].v[i]->bits &= ~REFGC_OB_BUFFERED;
      ts->cands[0].n = 0;
      atomic_store(&cands_lost, 1);
    }
    ts->cands_compact_at = ts->cands[0].n * 2 > 65536 ? ts->cands[0].n * 2 : 65536;
  }
  if (!vec_push(&ts->cands[0], o)) return; /* not buffered: retried at its next decref */
  o->bits |= REFGC_OB_BUFFERED;
  ts->gc_budget--;
}

void refgc__gc_track_new(refgc_tstate_t *ts, refgc_object_t *o) {
  o->bits |= REFGC_OB_TRACKED; /* generation 0 */
  ts->young_count++;
  ts->gc_budget--;
  ts->gen_delta[0]++;
}

void refgc__gc_untrack_frozen(refgc_object_t *o) {
  if (is_frozen(o)) {
    set_frozen(o, false);
    atomic_fetch_sub(&freeze_count, 1);
  }
}

/* A buffer entry that still names a live tracked object (see the file comment). A free block
 * is poisoned in ASan builds: it is skipped without reading it. */
static bool entry_valid(refgc_object_t *o) {
  if (!refgc__is_object_block(o) || refgc_track_is_free(o)) return false;
  uint32_t b = o->bits;
  return (b & (REFGC_OB_LIVE | REFGC_OB_TRACKED | REFGC_OB_DEAD)) ==
             (REFGC_OB_LIVE | REFGC_OB_TRACKED) &&
         o->refcnt != 0 && !refgc_is_immortal(o);
}

/* ---------------------------------------------------------------------------------------------
 * Walking every object (explicit old collections, introspection, freeze)
 * ------------------------------------------------------------------------------------------ */

typedef void walk_fn(refgc_object_t *o, void *arg);
typedef struct walk_ctx_s {
  walk_fn *fn;
  void *arg;
} walk_ctx_t;

static void walk_heap(refgc_heap_t *heap, void *arg) {
  walk_ctx_t *w = arg;
  for (refgc_segment_t *seg = heap->segments; seg; seg = seg->next) {
    for (unsigned i = 0; i < seg->slot_count; i++) {
      refgc_page_t *page = &seg->pages[i];
      if (!page->start || page->cls < REFGC_OBJECT_LANE) continue;
      uint8_t *end = refgc__carved_end(page);
      for (uint8_t *b = page->start; b < end; b += page->block_size) {
        refgc_object_t *o = (refgc_object_t *)b;
        if (refgc_track_is_free(o)) continue;
        uint32_t bits = o->bits, rc = o->refcnt;
        if ((bits & (REFGC_OB_LIVE | REFGC_OB_DEAD)) == REFGC_OB_LIVE && rc != 0) w->fn(o, w->arg);
      }
    }
  }
}

static void walk_large(refgc_segment_t *seg, void *arg) {
  walk_ctx_t *w = arg;
  if (!seg->large_object) return;
  refgc_object_t *o = (refgc_object_t *)((uint8_t *)seg + seg->large_offset);
  if ((o->bits & (REFGC_OB_LIVE | REFGC_OB_DEAD)) == REFGC_OB_LIVE && o->refcnt != 0) w->fn(o, w->arg);
}

/* Visit every live object of every heap. The caller's thread must have a heap (walking holds
 * the heaps lock, under which no heap may be created). */
static void walk_all(walk_fn *fn, void *arg) {
  walk_ctx_t w = {fn, arg};
  refgc__heaps_foreach(walk_heap, &w);
  refgc__large_foreach(walk_large, &w);
}

/* ---------------------------------------------------------------------------------------------
 * Building the collection set
 * ------------------------------------------------------------------------------------------ */

static bool set_oom;

static void set_add(refgc_object_t *o) {
  if (o->bits & REFGC_OB_INSET) return;
  if (!vec_push(&set, o)) {
    set_oom = true;
    return;
  }
  o->bits |= REFGC_OB_INSET;
}

static void add_if_tracked(refgc_object_t *o, void *arg) {
  (void)arg;
  if ((o->bits & REFGC_OB_TRACKED) && !refgc_is_immortal(o) && !is_frozen(o)) set_add(o);
}

static void traverse(refgc_object_t *o, refgc_visit_fn *visit, void *arg);

/* Whether `o` refers to any tracked object: one that refers to none cannot be part of a cycle
 * now (a cycle formed later makes a candidate of its own when it becomes garbage). */
static void probe_tracked(refgc_object_t *child, void *arg) {
  if (child && (child->bits & REFGC_OB_TRACKED) && !refgc_is_immortal(child)) *(bool *)arg = true;
}
static bool has_tracked_child(refgc_object_t *o) {
  bool any = false;
  traverse(o, probe_tracked, &any);
  return any;
}

/* Take the candidates of generations 0..`max` of one thread: stale entries are dropped, as are
 * candidates that refer to no tracked object; a candidate that has since become older than
 * `max` moves to its generation's buffer; the others join S. */
static void take_cands(refgc_tstate_t *ts, void *arg) {
  unsigned max = *(unsigned *)arg;
  for (unsigned k = 0; k <= max; k++) {
    refgc_ptrvec_t *v = &ts->cands[k];
    for (size_t i = 0; i < v->n; i++) {
      refgc_object_t *o = v->v[i];
      if (!entry_valid(o) || !(o->bits & REFGC_OB_BUFFERED)) continue;
      if (is_frozen(o)) continue; /* ignored, and not written: unfreeze re-files it */
      unsigned g = REFGC_OB_GEN(o->bits);
      if (g > max) {
        if (!vec_push(&ts->cands[g], o)) o->bits &= ~REFGC_OB_BUFFERED;
        continue;
      }
      if (!has_tracked_child(o)) {
        o->bits &= ~REFGC_OB_BUFFERED;
        continue;
      }
      set_add(o);
    }
    v->n = 0;
  }
}

/* Forget every candidate (an exhaustive collection examines everything). */
static void drop_cands(refgc_tstate_t *ts, void *arg) {
  (void)arg;
  for (unsigned k = 0; k < 3; k++) {
    refgc_ptrvec_t *v = &ts->cands[k];
    for (size_t i = 0; i < v->n; i++)
      if (entry_valid(v->v[i]) && !is_frozen(v->v[i])) v->v[i]->bits &= ~REFGC_OB_BUFFERED;
    v->n = 0;
  }
}

/* Closure: add every tracked object reachable from the members, except objects older than
 * `closure_max`: those are the barrier (their references count as external). An older object
 * the set refers to becomes a candidate of its own generation: a garbage cycle through the set
 * and older objects must cross the barrier at such a reference, so the older collection that
 * starts from it will see the whole cycle. (Keeping the set's own candidates instead would
 * keep almost all of them: most sets refer to something older.) */
static unsigned closure_max;
static refgc_tstate_t *closure_ts;
static void visit_closure(refgc_object_t *child, void *arg) {
  (void)arg;
  if (!child || (child->bits & REFGC_OB_INSET) || !(child->bits & REFGC_OB_TRACKED) ||
      refgc_is_immortal(child) || !refgc__is_object_block(child) || is_frozen(child))
    return;
  unsigned g = REFGC_OB_GEN(child->bits);
  if (g > closure_max) {
    if (!(child->bits & REFGC_OB_BUFFERED) && vec_push(&closure_ts->cands[g], child))
      child->bits |= REFGC_OB_BUFFERED;
    return;
  }
  set_add(child);
}

/* ---------------------------------------------------------------------------------------------
 * Trial deletion
 * ------------------------------------------------------------------------------------------ */

static void traverse(refgc_object_t *o, refgc_visit_fn *visit, void *arg) {
  refgc_type_t *t = refgc__type_of_id(o->bits & REFGC_OB_TYPE_MASK);
  if (t && t->spec.traverse && !(t->spec.flags & REFGC_TYPE_LEAF)) t->spec.traverse(o, visit, arg);
}

/* Bit that marks membership of the set being computed: INSET for S, GARBAGE for U. */
typedef struct trial_s {
  uint32_t member;
} trial_t;

static void visit_subtract(refgc_object_t *child, void *arg) {
  trial_t *t = arg;
  if (!child || !(child->bits & t->member)) return;
  if (child->refcnt == 0) {
    /* a traverse hook visits more references than the object holds: keep the child alive */
    child->bits |= REFGC_OB_REACH;
    return;
  }
  child->refcnt--;
}

static void visit_restore(refgc_object_t *child, void *arg) {
  trial_t *t = arg;
  if (!child || !(child->bits & t->member)) return;
  child->refcnt++;
}

/* Marking restores the counts as it goes: each reference from a reachable member is added
 * back to its target when the member is traversed (so the reachable part costs two
 * traversals in all, not three). */
static bool stack_oom;
static void visit_mark(refgc_object_t *child, void *arg) {
  trial_t *t = arg;
  if (!child || !(child->bits & t->member)) return;
  child->refcnt++;
  if (child->bits & REFGC_OB_REACH) return;
  child->bits |= REFGC_OB_REACH;
  if (!vec_push(&mark_stack, child)) stack_oom = true;
}

/* Mark REACH on every member of `v[0..n)` (members carry `member`) that is referenced from
 * outside the set, and on everything it reaches within the set; counts are left as they
 * were. `extra` is subtracted from every member's count first (the collector's own
 * references). */
static void trial_deletion(refgc_object_t **v, size_t n, uint32_t member, uint32_t extra) {
  trial_t t = {member};
  if (extra)
    for (size_t i = 0; i < n; i++) v[i]->refcnt -= extra;
  for (size_t i = 0; i < n; i++) traverse(v[i], visit_subtract, &t);
  /* roots first (counts above zero now), before marking adds references back */
  mark_stack.n = 0;
  for (size_t i = 0; i < n; i++) {
    if (v[i]->refcnt > 0 || (v[i]->bits & REFGC_OB_REACH)) {
      v[i]->bits |= REFGC_OB_REACH;
      if (!vec_push(&mark_stack, v[i])) stack_oom = true;
    }
  }
  if (!stack_oom) {
    while (mark_stack.n) traverse(mark_stack.v[--mark_stack.n], visit_mark, &t);
  }
  if (stack_oom) {
    /* the mark stack could not grow: restore every count from scratch and keep everything */
    mark_stack.n = 0;
    for (size_t i = 0; i < n; i++) v[i]->bits &= ~REFGC_OB_REACH;
    for (size_t i = 0; i < n; i++) traverse(v[i], visit_restore, &t);
    for (size_t i = 0; i < n; i++) v[i]->bits |= REFGC_OB_REACH;
    stack_oom = false;
  } else {
    /* references from unreachable members were not added back by marking */
    for (size_t i = 0; i < n; i++)
      if (!(v[i]->bits & REFGC_OB_REACH)) traverse(v[i], visit_restore, &t);
  }
  if (extra)
    for (size_t i = 0; i < n; i++) v[i]->refcnt += extra;
}

/* ---------------------------------------------------------------------------------------------
 * Handling the garbage
 * ------------------------------------------------------------------------------------------ */

static void garbage_keep(refgc_object_t *o) {
  /* takes over the collector's reference; without room the object is leaked, not freed */
  if (!vec_push(&garbage, o)) return;
}

static void handle_unreachable(refgc_object_t **u, size_t n, refgc_gc_result_t *r) {
  /* keep every member alive while callbacks, finalizers and clear hooks run */
  for (size_t i = 0; i < n; i++) {
    u[i]->refcnt++;
    u[i]->bits |= REFGC_OB_GARBAGE;
  }
  /* 1. weak references: cleared; callbacks for those that are not garbage themselves */
  refgc_tstate_t *ts = refgc__tstate();
  bool user_code = false; /* did anything run that could have resurrected a member? */
  for (size_t i = 0; i < n; i++)
    if (u[i]->bits & REFGC_OB_WEAKREFS) refgc__weakrefs_clear(ts, u[i]);
  if (ts->ncbs) {
    user_code = true;
    refgc__run_callbacks(ts);
  }
  /* 2. finalizers, once per object */
  for (size_t i = 0; i < n; i++) {
    refgc_object_t *o = u[i];
    refgc_type_t *t = refgc__type_of_id(o->bits & REFGC_OB_TYPE_MASK);
    if (t && t->spec.finalize && !(o->bits & REFGC_OB_FINALIZED)) {
      o->bits |= REFGC_OB_FINALIZED;
      t->spec.finalize(o);
      user_code = true;
    }
  }
  /* 3. resurrection: a member now referenced from outside U, and all it reaches, survives
   * (nothing can have changed if no finalizer or callback ran) */
  for (size_t i = 0; i < n; i++) u[i]->bits &= ~REFGC_OB_REACH;
  if (user_code) trial_deletion(u, n, REFGC_OB_GARBAGE, 1);
  size_t keep = 0;
  for (size_t i = 0; i < n; i++) {
    refgc_object_t *o = u[i];
    if (o->bits & REFGC_OB_REACH) {
      o->bits &= ~(REFGC_OB_REACH | REFGC_OB_GARBAGE);
      r->resurrected++;
      refgc_decref(o); /* drop the collector's reference: it lives on */
    } else {
      u[keep++] = o;
    }
  }
  n = keep;
  /* 4. break the cycles, then let reference counting release them */
  if (debug_flags & REFGC_GC_DEBUG_SAVEALL) {
    for (size_t i = 0; i < n; i++) {
      u[i]->bits &= ~REFGC_OB_GARBAGE;
      garbage_keep(u[i]);
    }
    r->collected += n;
    return;
  }
  for (size_t i = 0; i < n; i++) {
    refgc_object_t *o = u[i];
    refgc_type_t *t = refgc__type_of_id(o->bits & REFGC_OB_TYPE_MASK);
    if (t && t->spec.clear) {
      t->spec.clear(o);
      r->collected++;
    } else {
      r->uncollectable++;
    }
  }
  for (size_t i = 0; i < n; i++) {
    refgc_object_t *o = u[i];
    refgc_type_t *t = refgc__type_of_id(o->bits & REFGC_OB_TYPE_MASK);
    o->bits &= ~REFGC_OB_GARBAGE;
    if (t && t->spec.clear)
      refgc_decref(o);
    else
      garbage_keep(o); /* uncollectable: the list keeps the collector's reference */
  }
}

/* ---------------------------------------------------------------------------------------------
 * A collection
 * ------------------------------------------------------------------------------------------ */

/* Give back a buffer that grew far beyond what it holds (after a burst). */
static void vec_trim(refgc_ptrvec_t *v, size_t keep_cap) {
  if (v->cap > keep_cap && v->n < v->cap / 4) {
    size_t cap = v->n > keep_cap / 2 ? v->n * 2 : keep_cap / 2;
    if (!cap) {
      refgc_free(v->v);
      v->v = NULL;
      v->cap = 0;
      return;
    }
    refgc_object_t **shrunk = refgc_realloc(v->v, cap * sizeof *shrunk);
    if (shrunk) {
      v->v = shrunk;
      v->cap = cap;
    }
  }
}

static void reset_counts(refgc_tstate_t *ts, void *arg) {
  bool trim = *(bool *)arg;
  ts->young_count = 0;
  if (trim)
    for (int k = 0; k < 3; k++) vec_trim(&ts->cands[k], 65536);
}

/* The working arrays are kept between collections (regrowing them each time cost a quarter of
 * a collection); they are trimmed once eight collections in a row used under 1/8 of them. */
static size_t recent_max;
static unsigned small_runs;
static bool should_trim(size_t used) {
  if (used > recent_max) recent_max = used;
  if (set.cap > 65536 && used < set.cap / 8) {
    if (++small_runs >= 8) {
      small_runs = 0;
      recent_max = used;
      return true;
    }
  } else {
    small_runs = 0;
  }
  return false;
}

static size_t cands_count[3];
static void count_cands(refgc_tstate_t *ts, void *arg) {
  (void)arg;
  for (int k = 0; k < 3; k++) cands_count[k] += ts->cands[k].n;
}

/* generation 0..2 from candidates; 3: exhaustive (every tracked object) */
static long collect(int mode, refgc_gc_result_t *out) {
  refgc_tstate_t *me = refgc__tstate();
  if (me && me->hook_depth) return REFGC_EBUSY; /* from a finalizer, hook or callback */
  int expected = 0;
  if (!atomic_compare_exchange_strong(&collecting, &expected, 1)) return REFGC_EBUSY;
  refgc_gc_result_t r;
  memset(&r, 0, sizeof r);
  if (mode != 3 && atomic_load(&cands_lost)) mode = 3; /* candidates were given up */
  int gen = mode < 3 ? mode : 2;
  r.generation = gen;
  refgc_tstate_t *self = refgc__tstate();
  if (!self || !refgc__heap_get()) {
    atomic_store(&collecting, 0);
    return REFGC_ENOMEM;
  }
  for (int i = 0; i < ncallbacks; i++) callbacks[i].fn(REFGC_GC_START, &r, callbacks[i].arg);
  double t0 = now_s();

  /* build S */
  set.n = 0;
  set_oom = false;
  closure_ts = self;
  if (mode == 3) {
    walk_all(add_if_tracked, NULL);
  } else {
    unsigned max = (unsigned)gen;
    refgc__tstates_foreach(take_cands, &max);
    closure_max = max;
    for (size_t i = 0; i < set.n && !set_oom; i++) traverse(set.v[i], visit_closure, NULL);
  }
  if (set_oom) {
    /* give up, changing nothing: the candidates go back to the young buffer */
    for (size_t i = 0; i < set.n; i++) {
      set.v[i]->bits &= ~REFGC_OB_INSET;
      /* candidate modes took the buffers' entries: put the candidates back */
      if (mode != 3 && (set.v[i]->bits & REFGC_OB_BUFFERED) &&
          !vec_push(&self->cands[0], set.v[i]))
        set.v[i]->bits &= ~REFGC_OB_BUFFERED;
    }
    set.n = 0;
    atomic_store(&collecting, 0);
    return REFGC_ENOMEM;
  }
  if (mode == 3) {
    /* every object is examined: the candidates are consumed (only now that nothing failed) */
    atomic_store(&cands_lost, 0);
    refgc__tstates_foreach(drop_cands, NULL);
  }
  r.examined = set.n;

  /* trial deletion over S */
  trial_deletion(set.v, set.n, REFGC_OB_INSET, 0);

  /* survivors are promoted and stop being candidates (the barrier crossings were recorded
   * as candidates of their generations); the unreachable are gathered at the front of S */
  size_t nu = 0;
  unsigned target = gen == 0 ? 1 : 2;
  for (size_t i = 0; i < set.n; i++) {
    refgc_object_t *o = set.v[i];
    o->bits &= ~REFGC_OB_INSET;
    if (o->bits & REFGC_OB_REACH) {
      o->bits &= ~REFGC_OB_REACH;
      unsigned g = REFGC_OB_GEN(o->bits);
      if (g < target) {
        self->gen_delta[g]--;
        self->gen_delta[target]++;
        o->bits = (o->bits & ~REFGC_OB_GEN_MASK) | (target << REFGC_OB_GEN_SHIFT);
      }
      o->bits &= ~REFGC_OB_BUFFERED;
    } else {
      o->bits &= ~REFGC_OB_BUFFERED; /* garbage: its entry is gone */
      set.v[nu++] = o;
    }
  }
  bool trim = should_trim(set.n);
  refgc__tstates_foreach(reset_counts, &trim);
  r.unreachable = nu;

  if (nu) handle_unreachable(set.v, nu, &r);
  set.n = 0;
  if (trim) {
    vec_trim(&set, 65536);
    vec_trim(&mark_stack, 65536);
  }

  r.seconds = now_s() - t0;
  refgc_gc_gen_stats_t *st = &gen_stats[gen];
  st->collections++;
  st->collected += r.collected;
  st->uncollectable += r.uncollectable;
  st->examined += r.examined;
  st->seconds += r.seconds;
  if (r.seconds > st->max_pause) st->max_pause = r.seconds;
  if (gen == 0) {
    count1++;
  } else if (gen == 1) {
    count1 = 0;
    count2++;
  } else {
    count1 = count2 = 0;
  }
  if (debug_flags & REFGC_GC_DEBUG_STATS)
    fprintf(stderr,
            "refgc gc: generation %d: %zu examined, %zu unreachable, %zu collected, "
            "%zu uncollectable, %zu resurrected, %.3f ms\n",
            gen, r.examined, r.unreachable, r.collected, r.uncollectable, r.resurrected,
            r.seconds * 1e3);
  for (int i = 0; i < ncallbacks; i++) callbacks[i].fn(REFGC_GC_STOP, &r, callbacks[i].arg);
  atomic_store(&collecting, 0);
  if (out) *out = r;
  return (long)r.unreachable;
}

long refgc_collect(int generation, refgc_gc_result_t *out) {
  if (generation < 0 || generation > 2) return REFGC_EINVAL;
  return collect(generation == 2 ? 3 : generation, out);
}

/* Called by refgc_new when this thread's young count (creations plus new candidates) reached
 * threshold 0. */
void refgc__gc_maybe_collect(refgc_tstate_t *ts) {
  /* whatever happens, the next look is threshold 0 creations or candidates away */
  ts->gc_budget = (long)atomic_load_explicit(&refgc__gc_threshold0, memory_order_relaxed);
  if (!enabled || !threshold[0] || ts->hook_depth) return;
  if (atomic_load_explicit(&collecting, memory_order_relaxed)) return;
  /* with several threads using objects, only a program that serialises them may be collected
   * behind its back (refgc/gc.h, "Threads") */
  if (refgc__tstates_live() > 1 && !atomic_load_explicit(&serialized, memory_order_relaxed))
    return;
  memset(cands_count, 0, sizeof cands_count);
  refgc__tstates_foreach(count_cands, NULL);
  int gen = 0;
  if (count1 + 1 >= threshold[1]) {
    gen = 1;
    /* old collections only when the old candidates are many compared with the old objects:
     * building a large live heap then costs linear time (CPython's 25 % rule, counted in
     * candidate roots rather than in promotions) */
    if (count2 + 1 >= threshold[2] && cands_count[2] > gen_objects(2) / 4) gen = 2;
  }
  size_t work = cands_count[0] + (gen >= 1 ? cands_count[1] : 0) + (gen >= 2 ? cands_count[2] : 0);
  if (!work) {
    /* no candidate root: no garbage cycle can have formed (refgc/gc.h); nothing to examine */
    ts->young_count = 0;
    if (gen == 0) count1++;
    else if (gen == 1) { count1 = 0; count2++; }
    return;
  }
  collect(gen, NULL);
}

/* ---------------------------------------------------------------------------------------------
 * Settings and statistics
 * ------------------------------------------------------------------------------------------ */

void refgc_gc_set_serialized(int on) { atomic_store(&serialized, on != 0); }

bool refgc__gc_walk_is_safe(void) {
  if (atomic_load_explicit(&serialized, memory_order_relaxed)) return true;
  size_t heaps = atomic_load_explicit(&refgc__gstats.heaps, memory_order_relaxed);
  size_t abandoned = atomic_load_explicit(&refgc__gstats.heaps_abandoned, memory_order_relaxed);
  return heaps - abandoned <= 1;
}
void refgc_gc_enable(void) { enabled = 1; }
void refgc_gc_disable(void) { enabled = 0; }
int refgc_gc_isenabled(void) { return enabled; }

static void reset_budget(refgc_tstate_t *ts, void *arg) {
  (void)arg;
  ts->gc_budget = (long)atomic_load(&refgc__gc_threshold0);
}

void refgc_gc_set_threshold(size_t t0, size_t t1, size_t t2) {
  threshold[0] = t0;
  atomic_store(&refgc__gc_threshold0, t0 ? (t0 > LONG_MAX ? LONG_MAX : t0) : LONG_MAX);
  refgc__tstates_foreach(reset_budget, NULL);
  threshold[1] = t1 ? t1 : 1;
  threshold[2] = t2 ? t2 : 1;
}

void refgc_gc_get_threshold(size_t out[3]) {
  for (int i = 0; i < 3; i++) out[i] = threshold[i];
}

static size_t young_total;
static void sum_young(refgc_tstate_t *ts, void *arg) {
  (void)arg;
  young_total += ts->young_count;
}

void refgc_gc_get_count(size_t out[3]) {
  young_total = 0;
  refgc__tstates_foreach(sum_young, NULL);
  out[0] = young_total;
  out[1] = count1;
  out[2] = count2;
}

void refgc_gc_get_stats(refgc_gc_gen_stats_t out[3]) {
  for (int g = 0; g < 3; g++) {
    out[g] = gen_stats[g];
    out[g].objects = gen_objects(g);
  }
}

int refgc_gc_callback_add(refgc_gc_callback *fn, void *arg) {
  if (!fn) return REFGC_EINVAL;
  if (ncallbacks == MAX_CALLBACKS) return REFGC_ENOMEM;
  callbacks[ncallbacks].fn = fn;
  callbacks[ncallbacks].arg = arg;
  ncallbacks++;
  return 0;
}

int refgc_gc_callback_remove(refgc_gc_callback *fn, void *arg) {
  for (int i = 0; i < ncallbacks; i++) {
    if (callbacks[i].fn == fn && callbacks[i].arg == arg) {
      memmove(&callbacks[i], &callbacks[i + 1], (size_t)(ncallbacks - i - 1) * sizeof callbacks[0]);
      ncallbacks--;
      return 0;
    }
  }
  return REFGC_EINVAL;
}

void refgc_gc_set_debug(unsigned flags) { debug_flags = flags; }
unsigned refgc_gc_get_debug(void) { return debug_flags; }

size_t refgc_gc_garbage_count(void) { return garbage.n; }
refgc_object_t *refgc_gc_garbage_at(size_t i) { return i < garbage.n ? garbage.v[i] : NULL; }

void refgc_gc_garbage_clear(void) {
  refgc_ptrvec_t g = garbage;
  memset(&garbage, 0, sizeof garbage);
  for (size_t i = 0; i < g.n; i++) refgc_decref(g.v[i]);
  refgc_free(g.v);
}

void refgc_gc_print_stats(FILE *out) {
  if (!out) out = stderr;
  size_t counts[3];
  refgc_gc_get_count(counts);
  fprintf(out, "refgc cycle collector: %s, thresholds %zu/%zu/%zu, counts %zu/%zu/%zu, %zu frozen\n",
          enabled ? "enabled" : "disabled", (size_t)threshold[0], (size_t)threshold[1],
          (size_t)threshold[2], counts[0],
          counts[1], counts[2], (size_t)atomic_load(&freeze_count));
  fprintf(out, "%4s %12s %12s %12s %14s %12s %12s %10s\n", "gen", "objects", "collections",
          "collected", "uncollectable", "examined", "time ms", "max ms");
  for (int g = 0; g < 3; g++)
    fprintf(out, "%4d %12zu %12llu %12llu %14llu %12llu %12.2f %10.2f\n", g, gen_objects(g),
            (unsigned long long)gen_stats[g].collections,
            (unsigned long long)gen_stats[g].collected,
            (unsigned long long)gen_stats[g].uncollectable,
            (unsigned long long)gen_stats[g].examined, gen_stats[g].seconds * 1e3,
            gen_stats[g].max_pause * 1e3);
  fprintf(out, "garbage list: %zu objects\n", garbage.n);
}

/* ---------------------------------------------------------------------------------------------
 * Introspection
 * ------------------------------------------------------------------------------------------ */

typedef struct visit_ctx_s {
  refgc_object_visitor *fn;
  void *arg;
  int generation;
  size_t count;
  bool stopped;
  const refgc_object_t *target;
  bool found;
} visit_ctx_t;

static void objects_visit(refgc_object_t *o, void *arg) {
  visit_ctx_t *c = arg;
  if (c->stopped || !(o->bits & REFGC_OB_TRACKED)) return;
  if (c->generation >= 0 && (is_frozen(o) || (int)REFGC_OB_GEN(o->bits) != c->generation)) return;
  c->count++;
  if (c->fn(o, c->arg)) c->stopped = true;
}

static bool introspect_begin(void) {
  if (!refgc__heap_get()) return false;
  int expected = 0;
  return atomic_compare_exchange_strong(&collecting, &expected, 1);
}

bool refgc__gc_walk_objects(void (*fn)(refgc_object_t *o, void *arg), void *arg) {
  if (!introspect_begin()) return false;
  walk_all(fn, arg);
  atomic_store(&collecting, 0);
  return true;
}

void refgc__gc_traverse(refgc_object_t *o, refgc_visit_fn *visit, void *arg) {
  traverse(o, visit, arg);
}

size_t refgc_gc_get_objects(int generation, refgc_object_visitor *fn, void *arg) {
  if (!fn || generation < -1 || generation > 2 || !introspect_begin()) return 0;
  visit_ctx_t c = {fn, arg, generation, 0, false, NULL, false};
  walk_all(objects_visit, &c);
  atomic_store(&collecting, 0);
  return c.count;
}

static void referrer_probe(refgc_object_t *child, void *arg) {
  visit_ctx_t *c = arg;
  if (child == c->target) c->found = true;
}

static void referrers_visit(refgc_object_t *o, void *arg) {
  visit_ctx_t *c = arg;
  if (c->stopped || !(o->bits & REFGC_OB_TRACKED)) return;
  c->found = false;
  traverse(o, referrer_probe, c);
  if (!c->found) return;
  c->count++;
  if (c->fn(o, c->arg)) c->stopped = true;
}

size_t refgc_gc_get_referrers(const refgc_object_t *obj, refgc_object_visitor *fn, void *arg) {
  if (!obj || !fn || !introspect_begin()) return 0;
  visit_ctx_t c = {fn, arg, -1, 0, false, obj, false};
  walk_all(referrers_visit, &c);
  atomic_store(&collecting, 0);
  return c.count;
}

static void referents_visit(refgc_object_t *child, void *arg) {
  visit_ctx_t *c = arg;
  if (!child || c->stopped) return;
  c->count++;
  if (c->fn(child, c->arg)) c->stopped = true;
}

size_t refgc_gc_get_referents(refgc_object_t *obj, refgc_object_visitor *fn, void *arg) {
  if (!obj || !fn) return 0;
  visit_ctx_t c = {fn, arg, -1, 0, false, NULL, false};
  traverse(obj, referents_visit, &c);
  return c.count;
}

int refgc_gc_is_tracked(const refgc_object_t *obj) {
  return obj && (obj->bits & REFGC_OB_TRACKED) && !refgc_is_immortal(obj);
}

int refgc_gc_generation(const refgc_object_t *obj) {
  if (!refgc_gc_is_tracked(obj)) return -1;
  if (refgc__is_object_block(obj) && is_frozen(obj)) return 3;
  return (int)REFGC_OB_GEN(obj->bits);
}

/* ---------------------------------------------------------------------------------------------
 * Freeze
 * ------------------------------------------------------------------------------------------ */

static bool freeze_oom;
static void freeze_visit(refgc_object_t *o, void *arg) {
  (void)arg;
  if (!(o->bits & REFGC_OB_TRACKED) || refgc_is_immortal(o)) return;
  refgc_segment_t *seg = refgc__page_segment((const refgc_page_t *)(const void *)o);
  if (!seg->frozen) {
    /* the bitmap is metadata, outside the object pages */
    seg->frozen = refgc_calloc(FROZEN_WORDS, sizeof(uint64_t));
    if (!seg->frozen) {
      freeze_oom = true;
      return;
    }
  }
  if (!is_frozen(o)) {
    set_frozen(o, true);
    atomic_fetch_add(&freeze_count, 1);
  }
}


int refgc_gc_freeze(void) {
  if (!introspect_begin()) return REFGC_EBUSY;
  freeze_oom = false;
  walk_all(freeze_visit, NULL);
  atomic_store(&collecting, 0);
  return freeze_oom ? REFGC_ENOMEM : 0;
}

static void unfreeze_visit(refgc_object_t *o, void *arg) {
  if (!(o->bits & REFGC_OB_TRACKED) || !is_frozen(o)) return;
  set_frozen(o, false);
  refgc_tstate_t *self = arg;
  /* a frozen candidate lost its buffer entry but kept its bit (so that no frozen object was
   * written): file it again, as an old candidate */
  if ((o->bits & REFGC_OB_BUFFERED) && !vec_push(&self->cands[2], o))
    o->bits &= ~REFGC_OB_BUFFERED;
  unsigned g = REFGC_OB_GEN(o->bits);
  if (g != 2) {
    self->gen_delta[g]--;
    self->gen_delta[2]++;
    o->bits = (o->bits & ~REFGC_OB_GEN_MASK) | (2u << REFGC_OB_GEN_SHIFT);
  }
}

void refgc_gc_unfreeze(void) {
  if (!introspect_begin()) return;
  walk_all(unfreeze_visit, refgc__tstate());
  atomic_store(&freeze_count, 0);
  atomic_store(&collecting, 0);
}

size_t refgc_gc_get_freeze_count(void) { return atomic_load(&freeze_count); }

