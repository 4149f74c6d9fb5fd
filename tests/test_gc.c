/* refgc — the cycle collector (refgc/gc.h).
 *
 * model_random_ops is the main piece: random programs (create, link any object to any object,
 * unlink, drop and take program references, weak references with and without callbacks that
 * may themselves be owned by garbage, finalizers that resurrect their object or another one,
 * freezing and unfreezing, explicit collections of every generation and automatic ones with
 * small thresholds) run against an independent model: the graph with edge multiplicity, the
 * program's references and the resurrection list. The model predicts every reference-counting
 * release exactly (finalizers, resurrections, weak reference clearing and callbacks), and after
 * every collection it checks what the collector did against reachability in the model:
 *   - soundness (every collection): nothing the program can reach was finalized, cleared,
 *     released or had its weak references cleared, and nothing a frozen object reaches was
 *     cleared; every surviving object is intact (magic, id, fields, generation) and its count is
 *     exactly program references + references from live objects; introspection agrees (tracked
 *     objects, referrers, referents, the frozen count);
 *   - completeness (explicit refgc_collect(2)): everything unreachable from the program and
 *     from frozen objects is gone, except what a finalizer resurrected and what that reaches,
 *     which survives intact; every finalizer of the garbage ran once; weak references to the
 *     garbage read NULL; weak references that were garbage themselves got no callback; the
 *     PEP 442 order (callbacks, finalizers, clear hooks, releases) holds; the result's figures
 *     match the model.
 * Young and middle collections (explicit or automatic) only need to be sound: what they found
 * is inferred from the hooks' logs and checked for consistency. 2,000,000 operations by default
 * (times --scale), in rounds of different thresholds and population sizes; the seed is printed.
 *
 * The other cases each check one documented behaviour: resurrection; finalizers in cycles;
 * automatic collection while a reference-counting release runs; weak reference callbacks that
 * allocate; garbage weak references; reentrancy (from every hook and another thread, inside a
 * collection and outside one); callback order when a callback allocates; freeze; DEBUG_SAVEALL
 * and uncollectable objects; 10-million-object rings on a 256 KiB stack (1 million under
 * ASan); introspection; candidate roots and generations; the threading rule; large objects;
 * other threads' garbage; the candidate-root cases again in a REFGC_DEBUG=1 child process; a
 * collection that runs out of memory; thresholds; DEBUG_STATS; weak references made by
 * finalizers; immortal and static objects.
 *
 * Checks that fail inside a hook (which must not longjmp out of the library) are recorded and
 * reported by the case when the library returns.
 */
#define _POSIX_C_SOURCE 200809L /* pthread_attr_setstacksize, clock_gettime under -std=c11 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sys/wait.h>
#include <unistd.h>

#include "refgc.h"
#include "test.h"

extern char **environ;

/* ---- build flavour ------------------------------------------------------------------------ */

#if defined(REFGC_ASAN) || defined(__SANITIZE_ADDRESS__)
#define GC_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GC_ASAN 1
#endif
#endif
#ifndef GC_ASAN
#define GC_ASAN 0
#endif

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- checks inside hooks ------------------------------------------------------------------- */

static int hook_failures;
static char hook_first[512];

static void hook_fail(int line, const char *cond) {
  if (hook_failures++ == 0) snprintf(hook_first, sizeof hook_first, "line %d: %s", line, cond);
}
#define HOOK_CHECK(c)                    \
  do {                                   \
    if (!(c)) hook_fail(__LINE__, #c);   \
  } while (0)
#define ASSERT_HOOKS_OK()                                                                   \
  do {                                                                                      \
    if (hook_failures)                                                                      \
      TEST_FAIL("%d check(s) failed inside hooks; first at %s", hook_failures, hook_first); \
  } while (0)

/* ---- collector state between cases --------------------------------------------------------- */

static refgc_gc_callback count_gc_cb;
static refgc_gc_callback m_gc_cb;
static refgc_gc_callback reenter_gc_cb;

static int gc_starts, gc_stops;
static int gc_last_gen;
static refgc_gc_result_t gc_last_stop;

static void count_gc_cb(int phase, const refgc_gc_result_t *info, void *arg) {
  (void)arg;
  if (phase == REFGC_GC_START) {
    gc_starts++;
    gc_last_gen = info->generation;
  } else {
    gc_stops++;
    gc_last_stop = *info;
  }
}

/* Default settings, no callbacks, empty garbage list, nothing frozen, no garbage left by an
 * earlier case; automatic collection off (cases that want it turn it on). */
static void gc_reset(void) {
  refgc_gc_callback_remove(count_gc_cb, NULL);
  refgc_gc_callback_remove(m_gc_cb, NULL);
  refgc_gc_callback_remove(reenter_gc_cb, NULL);
  refgc_gc_set_debug(0);
  refgc_gc_set_threshold(2000, 10, 10);
  refgc_gc_set_serialized(0);
  refgc_gc_unfreeze();
  refgc_gc_garbage_clear();
  refgc_gc_disable();
  refgc_collect(2, NULL);
  refgc_gc_garbage_clear();
  refgc_collect(2, NULL);
  hook_failures = 0;
  hook_first[0] = 0;
}

static void gc_restore(void) {
  refgc_gc_set_debug(0);
  refgc_gc_set_threshold(2000, 10, 10);
  refgc_gc_set_serialized(0);
  refgc_gc_enable();
}

static size_t type_live(const refgc_type_t *t) {
  refgc_type_stats_t s;
  if (refgc_type_stats(t, &s)) return 0;
  return s.live;
}

static const refgc_type_t *weakref_type(void) {
  static const refgc_type_t *t;
  if (!t) {
    static refgc_type_spec_t spec = {.version = REFGC_TYPE_SPEC_VERSION,
                                     .flags = REFGC_TYPE_LEAF,
                                     .name = "gc.probe",
                                     .basic_size = 16};
    const refgc_type_t *leaf = refgc_type_register(&spec);
    refgc_object_t *o = refgc_new(leaf);
    refgc_object_t *w = refgc_weakref_new(o, NULL, NULL);
    t = refgc_type_of(w);
    refgc_decref(w);
    refgc_decref(o);
  }
  return t;
}

/* ---- growable arrays ----------------------------------------------------------------------- */

typedef struct ivec_s {
  int32_t *v;
  size_t n, cap;
} ivec;

static void ivec_push(ivec *a, int32_t x) {
  if (a->n == a->cap) {
    size_t cap = a->cap ? a->cap * 2 : 256;
    int32_t *g = realloc(a->v, cap * sizeof *g);
    if (!g) abort();
    a->v = g;
    a->cap = cap;
  }
  a->v[a->n++] = x;
}

static int cmp_i32(const void *a, const void *b) {
  int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
  return (x > y) - (x < y);
}

/* ============================================================================================
 * The model-based test
 * ========================================================================================== */

#define MK 3 /* reference slots per node */
#define M_MAGIC 0x4D4F44454C4E4F44ull
#define M_DEAD 0xDEADBEEFDEADBEEFull

typedef struct mnode_s {
  refgc_object_t ob;
  uint64_t magic;
  uint32_t id;
  uint32_t resurrect; /* the finalizer stores in the resurrection list: 1 the object itself,
                         2 what its first slot refers to */
  refgc_object_t *slot[MK];
} mnode;

/* The resurrection list: an object the program holds, whose items are owned references. */
typedef struct mres_s {
  refgc_object_t ob;
  uint64_t magic;
  uint32_t id, pad;
  size_t n, cap;
  refgc_object_t **v;
} mres;

/* Throwaway cycles that callbacks and finalizers make during collections. */
typedef struct junk_s {
  refgc_object_t ob;
  refgc_object_t *a, *b;
} junk;

enum { K_PLAIN, K_FIN, K_WEAK, K_RES };

typedef struct mobj_s {
  refgc_object_t *p;
  uint8_t kind;
  uint8_t alive;      /* exists (the model's view) */
  uint8_t resurrect;  /* K_FIN: its finalizer resurrects it (1) or its first referent (2) */
  uint8_t has_cb;     /* K_WEAK */
  uint8_t fin_model;  /* K_FIN: its finalizer has run (the model's view) */
  uint8_t cleared_now, cb_now; /* scratch during a reconciliation */
  uint8_t frozen;     /* frozen by refgc_gc_freeze (the model's view) */
  uint8_t cb_expect;  /* scratch: a callback may run in this refcount step */
  uint32_t prog;      /* program references */
  uint32_t mcount;    /* expected count: prog + references from live objects */
  int32_t slot[MK];   /* nodes: ids, -1 for NULL */
  int32_t target;     /* K_WEAK: the referent, -1 once cleared */
  int32_t wr_first;   /* first live weak reference whose target this is */
  int32_t wr_next;    /* K_WEAK: next in its target's list */
  int32_t live_idx;
  uint32_t r0, r1, rx; /* reachability marks */
  int32_t t0;           /* K_WEAK: the target before the collection being reconciled */
  /* what the hooks saw */
  uint32_t fin_runs, rel_runs, cb_runs, clr_runs;
} mobj;

static struct {
  mobj *o;
  size_t n, cap;
  ivec live;  /* ids of live objects */
  ivec roots; /* one entry per program reference (the resurrection list's is apart) */
  ivec res;   /* model of the resurrection list's items */
  int32_t res_id;
  mres *res_p; /* the library object; NULL once released */
  uint32_t epoch;
  /* logs written by hooks: ids and sequence numbers */
  ivec fin, fin_seq, rel, rel_seq, cb, cb_seq, clr, clr_seq, resl;
  uint32_t seq;
  /* model scratch */
  ivec work, exp_fin, exp_rel, exp_cb, exp_res, g0, tmp, tmp2, bfs;
  /* collections seen by the gc callback */
  int in_gc, ngc, gc_gen, explicit_now;
  refgc_gc_result_t gc_res;
  test_rng_t hrng; /* hooks' random numbers */
  long junk_made, junk_freed, junk_made_in_gc;
  size_t weak_base; /* weak references alive before the round */
  int frozen_active;
  long frozen_junk;    /* junk alive when frozen (garbage that stays while frozen) */
  size_t frozen_other; /* tracked objects frozen that are not the model's */
  size_t tracked_other; /* tracked objects alive that are not the model's */
  /* statistics */
  long n_collect[3], n_auto, n_fin, n_res, n_rel, n_cb, n_weak, n_created, n_freeze;
  size_t max_live;
  double sum_live;
} M;

static const refgc_type_t *T_mplain, *T_mfin, *T_mres, *T_junk;

static mobj *MO(int32_t id) { return &M.o[id]; }

static int is_mnode(const refgc_object_t *o) {
  const refgc_type_t *t = refgc_type_of(o);
  return t == T_mplain || t == T_mfin;
}

static void log_ev(ivec *ids, ivec *seqs, int32_t id) {
  ivec_push(ids, id);
  ivec_push(seqs, (int32_t)M.seq++);
}

/* -- hooks ----------------------------------------------------------------------------------- */

static void junk_traverse(refgc_object_t *self, refgc_visit_fn *visit, void *arg) {
  junk *j = (junk *)self;
  visit(j->a, arg);
  visit(j->b, arg);
}
static void junk_clear(refgc_object_t *self) {
  junk *j = (junk *)self;
  refgc_object_t *a = j->a, *b = j->b;
  j->a = j->b = NULL;
  refgc_xdecref(a);
  refgc_xdecref(b);
}
static void junk_release(refgc_object_t *self) {
  (void)self;
  M.junk_freed++;
}

/* A garbage cycle of two (sometimes three) objects, made while a collection runs. */
static void make_junk(void) {
  junk *a = (junk *)refgc_new(T_junk), *b = (junk *)refgc_new(T_junk);
  HOOK_CHECK(a && b);
  if (!a || !b) return;
  M.junk_made += 2;
  if (M.in_gc) M.junk_made_in_gc += 2;
  a->a = &b->ob; /* owns b */
  b->a = &a->ob;
  refgc_incref(&a->ob);
  if (test_below(&M.hrng, 2)) {
    junk *c = (junk *)refgc_new(T_junk);
    HOOK_CHECK(c != NULL);
    if (c) {
      M.junk_made++;
      if (M.in_gc) M.junk_made_in_gc++;
      b->b = &c->ob;
      c->a = &b->ob;
      refgc_incref(&b->ob);
    }
  }
  refgc_decref(&a->ob);
}

static void mnode_traverse(refgc_object_t *self, refgc_visit_fn *visit, void *arg) {
  mnode *n = (mnode *)self;
  for (int k = 0; k < MK; k++) visit(n->slot[k], arg); /* NULL passed on purpose: ignored */
}

static void mnode_clear(refgc_object_t *self) {
  mnode *n = (mnode *)self;
  HOOK_CHECK(n->magic == M_MAGIC && n->id < M.n);
  if (n->id < M.n) {
    mobj *o = MO((int32_t)n->id);
    HOOK_CHECK(o->p == self && o->clr_runs == 0 && o->rel_runs == 0);
    o->clr_runs++;
    log_ev(&M.clr, &M.clr_seq, (int32_t)n->id);
  }
  for (int k = 0; k < MK; k++) {
    refgc_object_t *c = n->slot[k];
    n->slot[k] = NULL;
    refgc_xdecref(c);
  }
}

static void res_append(refgc_object_t *obj) {
  mres *r = M.res_p;
  HOOK_CHECK(r != NULL && r->magic == M_MAGIC);
  if (!r) return;
  if (r->n == r->cap) {
    size_t cap = r->cap ? r->cap * 2 : 16;
    refgc_object_t **g = refgc_realloc(r->v, cap * sizeof *g);
    HOOK_CHECK(g != NULL);
    if (!g) return;
    r->v = g;
    r->cap = cap;
  }
  refgc_incref(obj);
  r->v[r->n++] = obj;
}

static void mnode_finalize(refgc_object_t *self) {
  mnode *n = (mnode *)self;
  HOOK_CHECK(n->magic == M_MAGIC && n->id < M.n);
  if (n->magic != M_MAGIC || n->id >= M.n) return;
  mobj *o = MO((int32_t)n->id);
  HOOK_CHECK(o->p == self && o->kind == K_FIN);
  HOOK_CHECK(o->fin_runs == 0 && o->clr_runs == 0 && o->rel_runs == 0);
  HOOK_CHECK(refgc_refcount(self) >= 1);
  /* intact: its fields are what the model says, and what they point to is alive */
  for (int k = 0; k < MK; k++) {
    refgc_object_t *c = n->slot[k];
    HOOK_CHECK(c == (o->slot[k] >= 0 ? MO(o->slot[k])->p : NULL));
    if (c && is_mnode(c)) {
      mnode *cn = (mnode *)c;
      HOOK_CHECK(cn->magic == M_MAGIC && cn->id < M.n && MO((int32_t)cn->id)->rel_runs == 0);
    }
    if (c) HOOK_CHECK(refgc_refcount(c) >= 1);
  }
  o->fin_runs++;
  log_ev(&M.fin, &M.fin_seq, (int32_t)n->id);
  if (n->resurrect == 1) {
    res_append(self);
    ivec_push(&M.resl, (int32_t)n->id);
  } else if (n->resurrect == 2 && n->slot[0]) {
    res_append(n->slot[0]); /* resurrects another object (and what it reaches) */
    ivec_push(&M.resl, o->slot[0]);
  }
  if (M.in_gc && test_below(&M.hrng, 4) == 0) make_junk();
}

static void mnode_release(refgc_object_t *self) {
  mnode *n = (mnode *)self;
  HOOK_CHECK(n->magic == M_MAGIC && n->id < M.n);
  if (n->magic != M_MAGIC || n->id >= M.n) return;
  mobj *o = MO((int32_t)n->id);
  HOOK_CHECK(o->p == self && o->rel_runs == 0);
  /* an object that died with a finalizer had it run exactly once */
  if (o->kind == K_FIN) HOOK_CHECK(o->fin_runs == 1);
  o->rel_runs++;
  log_ev(&M.rel, &M.rel_seq, (int32_t)n->id);
  n->magic = M_DEAD;
}

static void mres_traverse(refgc_object_t *self, refgc_visit_fn *visit, void *arg) {
  mres *r = (mres *)self;
  for (size_t i = 0; i < r->n; i++) visit(r->v[i], arg);
}

static void mres_clear(refgc_object_t *self) {
  mres *r = (mres *)self;
  HOOK_CHECK(r->magic == M_MAGIC);
  MO(M.res_id)->clr_runs++;
  log_ev(&M.clr, &M.clr_seq, M.res_id);
  refgc_object_t **v = r->v;
  size_t n = r->n;
  r->v = NULL;
  r->n = r->cap = 0;
  for (size_t i = 0; i < n; i++) refgc_decref(v[i]);
  refgc_free(v);
}

static void mres_release(refgc_object_t *self) {
  mres *r = (mres *)self;
  HOOK_CHECK(r->magic == M_MAGIC);
  MO(M.res_id)->rel_runs++;
  log_ev(&M.rel, &M.rel_seq, M.res_id);
  refgc_free(r->v);
  r->v = NULL;
  r->n = r->cap = 0;
  r->magic = M_DEAD;
  M.res_p = NULL;
}

static void m_weak_cb(refgc_object_t *w, void *arg) {
  int32_t id = (int32_t)(intptr_t)arg;
  HOOK_CHECK(id >= 0 && (size_t)id < M.n);
  if (id < 0 || (size_t)id >= M.n) return;
  mobj *o = MO(id);
  HOOK_CHECK(o->p == w && o->kind == K_WEAK && o->has_cb);
  HOOK_CHECK(o->cb_runs == 0); /* once */
  refgc_object_t *t = refgc_weakref_get(w);
  HOOK_CHECK(t == NULL); /* a callback never sees the referent */
  if (t) refgc_decref(t);
  HOOK_CHECK(refgc_refcount(w) >= 1);
  o->cb_runs++;
  log_ev(&M.cb, &M.cb_seq, id);
  if (M.in_gc && test_below(&M.hrng, 3) == 0) make_junk();
}

static void m_gc_cb(int phase, const refgc_gc_result_t *info, void *arg) {
  (void)arg;
  if (phase == REFGC_GC_START) {
    HOOK_CHECK(!M.in_gc);
    M.in_gc = 1;
    M.ngc++;
    M.gc_gen = info->generation;
    HOOK_CHECK(info->generation >= 0 && info->generation <= 2);
  } else {
    HOOK_CHECK(M.in_gc);
    M.in_gc = 0;
    M.gc_res = *info;
    HOOK_CHECK(info->generation == M.gc_gen);
    HOOK_CHECK(info->unreachable == info->collected + info->uncollectable + info->resurrected);
  }
}

static void m_types_init(void) {
  if (T_mplain) return;
  refgc_type_spec_t s = {.version = REFGC_TYPE_SPEC_VERSION,
                         .name = "gc.model.plain",
                         .basic_size = sizeof(mnode),
                         .traverse = mnode_traverse,
                         .clear = mnode_clear,
                         .release = mnode_release,
                         .freelist_max = 32};
  T_mplain = refgc_type_register(&s);
  s.name = "gc.model.fin";
  s.finalize = mnode_finalize;
  s.freelist_max = 0;
  T_mfin = refgc_type_register(&s);
  refgc_type_spec_t r = {.version = REFGC_TYPE_SPEC_VERSION,
                         .name = "gc.model.reslist",
                         .basic_size = sizeof(mres),
                         .traverse = mres_traverse,
                         .clear = mres_clear,
                         .release = mres_release};
  T_mres = refgc_type_register(&r);
  refgc_type_spec_t j = {.version = REFGC_TYPE_SPEC_VERSION,
                         .name = "gc.model.junk",
                         .basic_size = sizeof(junk),
                         .traverse = junk_traverse,
                         .clear = junk_clear,
                         .release = junk_release,
                         .freelist_max = 16};
  T_junk = refgc_type_register(&j);
}

/* -- the model's own operations --------------------------------------------------------------- */

static int32_t m_add(int kind, refgc_object_t *p) {
  if (M.n == M.cap) {
    size_t cap = M.cap ? M.cap * 2 : 4096;
    mobj *g = realloc(M.o, cap * sizeof *g);
    if (!g) abort();
    M.o = g;
    M.cap = cap;
  }
  int32_t id = (int32_t)M.n++;
  mobj *o = MO(id);
  memset(o, 0, sizeof *o);
  o->p = p;
  o->kind = (uint8_t)kind;
  o->alive = 1;
  for (int k = 0; k < MK; k++) o->slot[k] = -1;
  o->target = -1;
  o->wr_first = -1;
  o->wr_next = -1;
  o->live_idx = (int32_t)M.live.n;
  ivec_push(&M.live, id);
  return id;
}

static void m_live_remove(int32_t id) {
  mobj *o = MO(id);
  int32_t i = o->live_idx;
  int32_t last = M.live.v[--M.live.n];
  M.live.v[i] = last;
  MO(last)->live_idx = i;
  o->live_idx = -1;
}

static void m_dec(int32_t id) {
  mobj *o = MO(id);
  if (o->mcount == 0) {
    fprintf(stderr, "model: count of %d underflows\n", id);
    abort();
  }
  if (--o->mcount == 0) ivec_push(&M.work, id);
}

/* Weak reference `w` no longer on its target's list. */
static void m_weak_unlink(int32_t w) {
  mobj *wo = MO(w);
  if (wo->target < 0) return;
  int32_t *pp = &MO(wo->target)->wr_first;
  while (*pp != w) pp = &MO(*pp)->wr_next;
  *pp = wo->wr_next;
  wo->wr_next = -1;
  wo->target = -1;
}

/* The model releases `id`: its references go (counts only: the caller decides about
 * cascades through M.work), its weak references are cleared. `refcount_path`: expected
 * callbacks are noted for the refcount step's check. */
static void m_free(int32_t id, int refcount_path) {
  mobj *o = MO(id);
  o->alive = 0;
  m_live_remove(id);
  if (o->kind == K_PLAIN || o->kind == K_FIN) {
    for (int k = 0; k < MK; k++)
      if (o->slot[k] >= 0) m_dec(o->slot[k]);
    if (refcount_path) ivec_push(&M.exp_rel, id);
  } else if (o->kind == K_RES) {
    for (size_t i = 0; i < M.res.n; i++) m_dec(M.res.v[i]);
    M.res.n = 0;
    if (refcount_path) ivec_push(&M.exp_rel, id);
  } else {
    m_weak_unlink(id);
  }
  /* weak references to it read NULL from now on */
  for (int32_t w = o->wr_first; w >= 0;) {
    mobj *wo = MO(w);
    int32_t next = wo->wr_next;
    wo->target = -1;
    wo->wr_next = -1;
    if (!refcount_path) wo->cleared_now = 1;
    if (refcount_path && wo->has_cb) {
      wo->cb_expect = 1;
      ivec_push(&M.exp_cb, w);
    }
    w = next;
  }
  o->wr_first = -1;
}

/* refgc__release, in the model: everything on M.work whose count is zero is finalized (once)
 * and, unless the finalizer resurrected it, released; what it held follows. */
static void m_cascade(void) {
  while (M.work.n) {
    int32_t id = M.work.v[--M.work.n];
    mobj *o = MO(id);
    if (!o->alive || o->mcount != 0) continue;
    if (o->kind == K_FIN && !o->fin_model) {
      o->fin_model = 1;
      ivec_push(&M.exp_fin, id);
      /* the list's new reference; the item is appended in the order the log shows */
      if (o->resurrect == 1 && M.res_p) {
        o->mcount = 1;
        ivec_push(&M.exp_res, id);
        continue;
      }
      if (o->resurrect == 2 && M.res_p && o->slot[0] >= 0) {
        MO(o->slot[0])->mcount++;
        ivec_push(&M.exp_res, o->slot[0]);
      }
    }
    m_free(id, 1);
  }
}

/* Reachability from the program's references (and, `with_frozen`, from every frozen object:
 * what no collection may free), marks in field r0, r1 or rx (`which` 0, 1, 2). */
static uint32_t *m_mark(mobj *o, int which) { return which == 0 ? &o->r0 : which == 1 ? &o->r1 : &o->rx; }

static uint32_t m_reach(int which, int with_frozen) {
  uint32_t e = ++M.epoch;
  M.bfs.n = 0;
  for (size_t i = 0; i < M.live.n; i++) {
    int32_t id = M.live.v[i];
    mobj *o = MO(id);
    if (o->prog || (with_frozen && o->frozen)) {
      *m_mark(o, which) = e;
      ivec_push(&M.bfs, id);
    }
  }
  while (M.bfs.n) {
    int32_t id = M.bfs.v[--M.bfs.n];
    mobj *o = MO(id);
    int32_t kids[MK];
    size_t nk = 0;
    const int32_t *list = kids;
    if (o->kind == K_PLAIN || o->kind == K_FIN) {
      for (int k = 0; k < MK; k++)
        if (o->slot[k] >= 0) kids[nk++] = o->slot[k];
    } else if (o->kind == K_RES) {
      list = M.res.v;
      nk = M.res.n;
    }
    for (size_t i = 0; i < nk; i++) {
      uint32_t *mark = m_mark(MO(list[i]), which);
      if (*mark != e) {
        *mark = e;
        ivec_push(&M.bfs, list[i]);
      }
    }
  }
  return e;
}

/* -- checks ---------------------------------------------------------------------------------- */

/* Two id lists equal as sets (each id at most once in either). */
static void m_same_set(const ivec *got, const ivec *want, const char *what) {
  M.tmp.n = M.tmp2.n = 0;
  for (size_t i = 0; i < got->n; i++) ivec_push(&M.tmp, got->v[i]);
  for (size_t i = 0; i < want->n; i++) ivec_push(&M.tmp2, want->v[i]);
  if (M.tmp.n) qsort(M.tmp.v, M.tmp.n, sizeof *M.tmp.v, cmp_i32);
  if (M.tmp2.n) qsort(M.tmp2.v, M.tmp2.n, sizeof *M.tmp2.v, cmp_i32);
  size_t i = 0, j = 0;
  while (i < M.tmp.n || j < M.tmp2.n) {
    if (i < M.tmp.n && j < M.tmp2.n && M.tmp.v[i] == M.tmp2.v[j]) {
      i++;
      j++;
    } else if (j == M.tmp2.n || (i < M.tmp.n && M.tmp.v[i] < M.tmp2.v[j])) {
      TEST_FAIL("%s: object %d (kind %d) unexpected (%zu seen, %zu expected)", what, M.tmp.v[i],
                M.tmp.v[i] >= 0 ? MO(M.tmp.v[i])->kind : -1, M.tmp.n, M.tmp2.n);
    } else {
      TEST_FAIL("%s: object %d (kind %d) expected but not seen (%zu seen, %zu expected)", what,
                M.tmp2.v[j], MO(M.tmp2.v[j])->kind, M.tmp.n, M.tmp2.n);
    }
  }
}

static void m_check_reslist(void) {
  mres *r = M.res_p;
  if (!r) return;
  ASSERT_EQ(r->magic, M_MAGIC);
  ASSERT_EQ(r->n, M.res.n);
  for (size_t i = 0; i < r->n; i++) {
    mobj *o = MO(M.res.v[i]);
    ASSERT(o->alive);
    ASSERT_PTR_EQ(r->v[i], o->p);
  }
}

static void m_check_object(int32_t id) {
  mobj *o = MO(id);
  ASSERT(o->alive);
  if (o->mcount == 0) TEST_FAIL("object %d (kind %d) has no reference left but was not released", id, o->kind);
  if (refgc_refcount(o->p) != o->mcount)
    TEST_FAIL("object %d (kind %d): count %u, expected %u (program %u)", id, o->kind,
              (unsigned)refgc_refcount(o->p), (unsigned)o->mcount, (unsigned)o->prog);
  if (o->kind == K_PLAIN || o->kind == K_FIN) {
    mnode *n = (mnode *)o->p;
    if (n->magic != M_MAGIC || n->id != (uint32_t)id)
      TEST_FAIL("object %d is not intact (magic %llx, id %u)", id, (unsigned long long)n->magic,
                (unsigned)n->id);
    ASSERT_EQ(n->resurrect, o->resurrect);
    for (int k = 0; k < MK; k++) {
      refgc_object_t *want = NULL;
      if (o->slot[k] >= 0) {
        mobj *c = MO(o->slot[k]);
        if (!c->alive)
          TEST_FAIL("object %d slot %d refers to %d, which was released (freed while reachable "
                    "from a live object)", id, k, o->slot[k]);
        want = c->p;
      }
      if (n->slot[k] != want)
        TEST_FAIL("object %d slot %d: %p, expected %p (id %d)", id, k, (void *)n->slot[k],
                  (void *)want, o->slot[k]);
    }
    if (o->kind == K_FIN) ASSERT_EQ(refgc_is_finalized(o->p), o->fin_model);
    int g = refgc_gc_generation(o->p);
    if (o->frozen ? g != 3 : (g < 0 || g > 2))
      TEST_FAIL("object %d: generation %d (%s)", id, g, o->frozen ? "frozen" : "not frozen");
    ASSERT_EQ(o->fin_runs, o->fin_model);
    ASSERT_EQ(o->rel_runs, 0);
    ASSERT_EQ(o->clr_runs, 0);
    ASSERT(refgc_gc_is_tracked(o->p));
  } else if (o->kind == K_WEAK) {
    refgc_object_t *got = refgc_weakref_get(o->p);
    refgc_object_t *want = o->target >= 0 ? MO(o->target)->p : NULL;
    if (got != want)
      TEST_FAIL("weak reference %d reads %p, expected %p (target %d)", id, (void *)got,
                (void *)want, o->target);
    if (got) refgc_decref(got);
    ASSERT(o->cb_runs <= 1);
  }
}

static int m_count_visitor(refgc_object_t *o, void *arg) {
  (void)o;
  (*(size_t *)arg)++;
  return 0;
}

/* The id of a model object that can hold references, from its address. */
static int32_t m_id_of_holder(refgc_object_t *p) {
  if (M.res_p && p == &M.res_p->ob) return M.res_id;
  if (!is_mnode(p)) return -1;
  mnode *n = (mnode *)p;
  if (n->magic != M_MAGIC || n->id >= M.n || MO((int32_t)n->id)->p != p) return -1;
  return (int32_t)n->id;
}

static int m_referrer_visitor(refgc_object_t *o, void *arg) {
  ivec *v = arg;
  ivec_push(v, m_id_of_holder(o));
  return 0;
}

/* refgc_gc_get_referrers and refgc_gc_get_referents of `id` against the model. */
static void m_check_referrers(int32_t id) {
  mobj *x = MO(id);
  ivec want = {0, 0, 0}, got = {0, 0, 0};
  for (size_t i = 0; i < M.live.n; i++) {
    int32_t h = M.live.v[i];
    mobj *o = MO(h);
    int refers = 0;
    if (o->kind == K_PLAIN || o->kind == K_FIN) {
      for (int k = 0; k < MK; k++) refers |= o->slot[k] == id;
    } else if (o->kind == K_RES) {
      for (size_t j = 0; j < M.res.n; j++) refers |= M.res.v[j] == id;
    }
    if (refers) ivec_push(&want, h);
  }
  size_t n = refgc_gc_get_referrers(x->p, m_referrer_visitor, &got);
  ASSERT_EQ(n, got.n);
  ivec sg = got, sw = want;
  m_same_set(&sg, &sw, "refgc_gc_get_referrers");
  free(got.v);
  free(want.v);
  size_t kids = 0;
  if (x->kind == K_PLAIN || x->kind == K_FIN) {
    for (int k = 0; k < MK; k++) kids += x->slot[k] >= 0;
  } else if (x->kind == K_RES) {
    kids = M.res.n;
  }
  size_t visited = 0;
  ASSERT_EQ(refgc_gc_get_referents(x->p, m_count_visitor, &visited), kids);
  ASSERT_EQ(visited, kids);
}

static size_t m_tracked_objects(void) {
  size_t n = 0;
  refgc_gc_get_objects(-1, m_count_visitor, &n);
  return n;
}

static void m_check_all(int introspect) {
  size_t nplain = 0, nfin = 0, nweak = 0, nfrozen = 0;
  for (size_t i = 0; i < M.live.n; i++) {
    int32_t id = M.live.v[i];
    m_check_object(id);
    nfrozen += MO(id)->frozen;
    switch (MO(id)->kind) {
      case K_PLAIN: nplain++; break;
      case K_FIN: nfin++; break;
      case K_WEAK: nweak++; break;
      default: break;
    }
  }
  m_check_reslist();
  ASSERT_EQ(type_live(T_mplain), nplain);
  ASSERT_EQ(type_live(T_mfin), nfin);
  ASSERT_EQ(type_live(weakref_type()), M.weak_base + nweak);
  ASSERT_EQ(type_live(T_mres), M.res_p ? 1 : 0);
  ASSERT_EQ(type_live(T_junk), (size_t)(M.junk_made - M.junk_freed));
  ASSERT_EQ(refgc_gc_garbage_count(), 0);
  ASSERT_EQ(refgc_gc_get_freeze_count(),
            M.frozen_active ? nfrozen + (size_t)M.frozen_junk + M.frozen_other : 0);
  if (introspect)
    ASSERT_EQ(m_tracked_objects(), M.tracked_other + M.live.n + (size_t)(M.junk_made - M.junk_freed));
  ASSERT_HOOKS_OK();
}

static void m_logs_clear(void) {
  M.fin.n = M.fin_seq.n = M.rel.n = M.rel_seq.n = M.cb.n = M.cb_seq.n = M.clr.n = M.clr_seq.n = 0;
  M.resl.n = 0;
  M.exp_fin.n = M.exp_rel.n = M.exp_cb.n = M.exp_res.n = 0;
}

/* After a step in which no collection ran: the model's prediction of reference counting,
 * exactly. */
static void m_reconcile_refcount(void) {
  ASSERT_HOOKS_OK();
  m_cascade();
  m_same_set(&M.fin, &M.exp_fin, "finalizers run by reference counting");
  m_same_set(&M.rel, &M.exp_rel, "objects released by reference counting");
  ASSERT_EQ(M.clr.n, 0); /* clear hooks are the collector's */
  for (size_t i = 0; i < M.fin.n; i++) ASSERT_EQ(MO(M.fin.v[i])->fin_runs, 1);
  m_same_set(&M.resl, &M.exp_res, "objects stored by finalizers");
  for (size_t i = 0; i < M.resl.n; i++) {
    ASSERT(MO(M.resl.v[i])->alive);
    ivec_push(&M.res, M.resl.v[i]);
  }
  M.n_res += (long)M.resl.n;
  M.n_fin += (long)M.fin.n;
  M.n_rel += (long)M.rel.n;
  /* callbacks: exactly once for weak references that outlive the step, at most once for
   * those released in it too (whether the referent or the weak reference went first) */
  for (size_t i = 0; i < M.cb.n; i++) {
    mobj *w = MO(M.cb.v[i]);
    if (!w->cb_expect) TEST_FAIL("callback of weak reference %d ran unexpectedly", M.cb.v[i]);
    w->cb_now = 1;
  }
  for (size_t i = 0; i < M.exp_cb.n; i++) {
    mobj *w = MO(M.exp_cb.v[i]);
    if (w->alive && !w->cb_now)
      TEST_FAIL("callback of weak reference %d did not run (its referent was released)",
                M.exp_cb.v[i]);
    w->cb_expect = w->cb_now = w->cleared_now = 0;
  }
  for (size_t i = 0; i < M.cb.n; i++) MO(M.cb.v[i])->cb_now = 0;
  M.n_cb += (long)M.cb.n;
  m_logs_clear();
  m_check_reslist();
}

/* After a step in which one or more collections ran (the model still shows the state before
 * them). `explicit2`: an explicit refgc_collect(2), which must be complete; `res`: its
 * result; `junk_before`: junk alive before it (all garbage).
 *
 * G0: what the program cannot reach. U (explicit2): G0 less what a frozen object reaches,
 * exactly what refgc_collect(2) must find. Any collection finds a part of U only: an object a
 * frozen object or the program reaches is never cleared, and its weak references stay. */
static void m_reconcile_collection(int explicit2, const refgc_gc_result_t *res,
                                   long junk_before) {
  ASSERT_HOOKS_OK();
  ASSERT(!M.in_gc);
  ASSERT(M.work.n == 0);
  uint32_t e0 = m_reach(0, 0);
  uint32_t ex = m_reach(2, 1);
#define IN_U(o) ((o)->rx != ex)
  M.g0.n = 0;
  size_t nu = 0;
  for (size_t i = 0; i < M.live.n; i++) {
    mobj *o = MO(M.live.v[i]);
    if (o->r0 != e0) ivec_push(&M.g0, M.live.v[i]);
    nu += IN_U(o);
    if (o->kind == K_WEAK) o->t0 = o->target;
  }

  /* finalizers: only garbage, once each */
  for (size_t i = 0; i < M.fin.n; i++) {
    int32_t id = M.fin.v[i];
    mobj *o = MO(id);
    if (!o->alive || o->kind != K_FIN) TEST_FAIL("finalizer ran on object %d (not a live finalizable object)", id);
    if (o->r0 == e0) TEST_FAIL("finalizer ran on object %d, which the program can reach", id);
    if (o->fin_model || o->fin_runs != 1) TEST_FAIL("finalizer of object %d ran twice", id);
    o->fin_model = 1;
  }
  /* what they stored in the resurrection list, in the order they ran */
  for (size_t i = 0; i < M.resl.n; i++) {
    int32_t id = M.resl.v[i];
    if (!MO(id)->alive) TEST_FAIL("a finalizer stored released object %d", id);
    ivec_push(&M.res, id);
    MO(id)->mcount++;
  }
  M.n_res += (long)M.resl.n;
  /* clear hooks: only the collector's garbage, and a cleared object is released */
  for (size_t i = 0; i < M.clr.n; i++) {
    int32_t id = M.clr.v[i];
    mobj *o = MO(id);
    if (!o->alive) TEST_FAIL("clear hook ran on released object %d", id);
    if (o->r0 == e0) TEST_FAIL("clear hook ran on object %d, which the program can reach", id);
    if (!IN_U(o))
      TEST_FAIL("clear hook ran on object %d, which is %s", id,
                o->frozen ? "frozen" : "reachable from a frozen object");
    if (o->rel_runs != 1) TEST_FAIL("object %d was cleared but not released", id);
  }
  /* releases: only garbage */
  for (size_t i = 0; i < M.rel.n; i++) {
    int32_t id = M.rel.v[i];
    mobj *o = MO(id);
    if (!o->alive) TEST_FAIL("object %d released twice", id);
    if (o->r0 == e0) TEST_FAIL("object %d released although the program can reach it", id);
  }
  /* callbacks: only for weak references whose referent was garbage */
  M.tmp.n = 0; /* sequence numbers of callbacks for referents in U */
  for (size_t i = 0; i < M.cb.n; i++) {
    int32_t id = M.cb.v[i];
    mobj *w = MO(id);
    if (!w->alive || w->kind != K_WEAK || !w->has_cb || w->cb_runs != 1)
      TEST_FAIL("unexpected callback for object %d", id);
    if (w->target < 0) TEST_FAIL("callback of weak reference %d, already cleared before", id);
    if (MO(w->target)->r0 == e0)
      TEST_FAIL("callback of weak reference %d ran while its referent %d is reachable", id, w->target);
    if (IN_U(MO(w->target))) ivec_push(&M.tmp, M.cb_seq.v[i]);
    w->cb_now = 1;
  }
  /* apply the releases */
  for (size_t i = 0; i < M.rel.n; i++) m_free(M.rel.v[i], 0);
  M.work.n = 0; /* counts that reached zero are checked below */
  if (refgc_gc_garbage_count())
    TEST_FAIL("%zu object(s) on the garbage list after a collection (the first a %s); every "
              "type here has a clear hook", refgc_gc_garbage_count(),
              refgc_type_name(refgc_type_of(refgc_gc_garbage_at(0))));
  /* weak references whose last reference went with the garbage were released too */
  size_t survivors = 0;
  for (size_t i = 0; i < M.g0.n; i++) {
    int32_t id = M.g0.v[i];
    mobj *o = MO(id);
    if (!o->alive) continue;
    if (o->mcount == 0) {
      if (o->kind != K_WEAK)
        TEST_FAIL("object %d (kind %d) lost every reference in a collection but was not released", id, o->kind);
      if (explicit2 && IN_U(o) && o->cb_now)
        TEST_FAIL("weak reference %d was garbage but its callback ran", id);
      o->cb_now = o->cleared_now = 0;
      m_free(id, 0);
      continue;
    }
    survivors += IN_U(o);
  }
  /* every live weak reference: NULL exactly when the collection cleared it */
  for (size_t i = 0; i < M.live.n; i++) {
    int32_t id = M.live.v[i];
    mobj *w = MO(id);
    if (w->kind != K_WEAK) continue;
    refgc_object_t *got = refgc_weakref_get(w->p);
    if (w->target >= 0) {
      mobj *t = MO(w->target);
      if (!got) {
        if (t->r0 == e0)
          TEST_FAIL("weak reference %d to reachable object %d was cleared", id, w->target);
        if (!IN_U(t))
          TEST_FAIL("weak reference %d to object %d (%s, alive) was cleared", id, w->target,
                    t->frozen ? "frozen" : "reachable from a frozen object");
        m_weak_unlink(id);
        w->cleared_now = 1;
      } else {
        if (got != t->p) TEST_FAIL("weak reference %d reads %p, not its referent %p", id, (void *)got, (void *)t->p);
        refgc_decref(got);
        if (explicit2 && IN_U(t))
          TEST_FAIL("weak reference %d to garbage object %d (resurrected) was not cleared", id,
                    w->target);
      }
    } else if (got) {
      TEST_FAIL("weak reference %d reads %p after it was cleared", id, (void *)got);
    }
    if (w->cb_now && !w->cleared_now)
      TEST_FAIL("callback of weak reference %d ran but it was not cleared", id);
    if (w->cleared_now && w->has_cb) {
      /* a weak reference the program reaches gets its callback; in a complete collection,
       * one that is garbage gets none for a referent that was garbage with it */
      int must = w->r0 == e0, mustnt = 0;
      if (explicit2) {
        if (IN_U(MO(w->t0)))
          must = !IN_U(w), mustnt = IN_U(w);
        else
          must = 1; /* the referent went with what the collector freed: w is not garbage now */
      }
      if (must && !w->cb_now)
        TEST_FAIL("weak reference %d (%s) was cleared without its callback", id,
                  w->r0 == e0 ? "reachable" : "not garbage");
      if (mustnt && w->cb_now) TEST_FAIL("weak reference %d was garbage but its callback ran", id);
    }
    w->cb_now = w->cleared_now = 0;
  }
  for (size_t i = 0; i < M.rel.n; i++) MO(M.rel.v[i])->cb_now = MO(M.rel.v[i])->cleared_now = 0;

  if (explicit2) {
    /* complete: of the garbage, only the resurrected and what they reach survive. (What a
     * frozen object reached was not garbage for this collection, even if that frozen object
     * went with the garbage, by reference counting.) */
    uint32_t e1 = m_reach(1, 0);
    for (size_t i = 0; i < M.live.n; i++) {
      mobj *o = MO(M.live.v[i]);
      if (IN_U(o) && o->r1 != e1)
        TEST_FAIL("object %d (kind %d) is unreachable but survived refgc_collect(2)", M.live.v[i], o->kind);
    }
    for (size_t i = 0; i < M.g0.n; i++) {
      mobj *o = MO(M.g0.v[i]);
      if (o->kind == K_FIN && IN_U(o) && !o->fin_model)
        TEST_FAIL("garbage object %d's finalizer did not run in refgc_collect(2)", M.g0.v[i]);
    }
    /* PEP 442, for the garbage: callbacks, then finalizers, then clear hooks, then releases */
    int32_t max_cb = -1, min_fin = INT32_MAX, max_fin = -1, min_clr = INT32_MAX, max_clr = -1,
            min_rel = INT32_MAX;
    for (size_t i = 0; i < M.tmp.n; i++) max_cb = M.tmp.v[i] > max_cb ? M.tmp.v[i] : max_cb;
    for (size_t i = 0; i < M.fin.n; i++) {
      if (!IN_U(MO(M.fin.v[i]))) continue;
      if (M.fin_seq.v[i] < min_fin) min_fin = M.fin_seq.v[i];
      if (M.fin_seq.v[i] > max_fin) max_fin = M.fin_seq.v[i];
    }
    for (size_t i = 0; i < M.clr_seq.n; i++) {
      if (M.clr_seq.v[i] < min_clr) min_clr = M.clr_seq.v[i];
      if (M.clr_seq.v[i] > max_clr) max_clr = M.clr_seq.v[i];
    }
    for (size_t i = 0; i < M.rel.n; i++)
      if (IN_U(MO(M.rel.v[i])) && M.rel_seq.v[i] < min_rel) min_rel = M.rel_seq.v[i];
    if (max_cb >= min_fin) TEST_FAIL("a weak reference callback ran after a finalizer");
    if (max_fin >= min_clr) TEST_FAIL("a finalizer ran after a clear hook");
    if (max_clr >= min_rel) TEST_FAIL("a clear hook ran after a release");
    long junk_u = junk_before - (M.frozen_active ? M.frozen_junk : 0);
    if (res) {
      ASSERT_EQ(res->generation, 2);
      ASSERT_EQ(res->unreachable, nu + (size_t)junk_u);
      ASSERT_EQ(res->resurrected, survivors);
      ASSERT_EQ(res->uncollectable, 0);
      ASSERT_EQ(res->collected, nu + (size_t)junk_u - survivors);
    }
    /* the junk alive before was garbage: all of it went, unless frozen */
    ASSERT_EQ(M.junk_made - M.junk_freed,
              M.junk_made_in_gc + (M.frozen_active ? M.frozen_junk : 0));
  }
#undef IN_U
  if (res) ASSERT_EQ(res->unreachable, res->collected + res->uncollectable + res->resurrected);
  M.n_fin += (long)M.fin.n;
  M.n_rel += (long)M.rel.n;
  M.n_cb += (long)M.cb.n;
  m_logs_clear();
  M.junk_made_in_gc = 0;
}

/* Reconcile whatever the last library call did. */
static void m_step_end(int explicit2, const refgc_gc_result_t *res, long junk_before) {
  if (M.ngc) {
    if (!M.explicit_now) M.n_auto += M.ngc;
    if (M.exp_fin.n || M.exp_rel.n || M.exp_cb.n || M.exp_res.n) TEST_FAIL("model: refcount step mixed with a collection");
    m_reconcile_collection(explicit2, res, junk_before);
    M.ngc = 0;
  } else {
    m_reconcile_refcount();
  }
}

static long junk_live(void) { return M.junk_made - M.junk_freed; }

/* -- random choices --------------------------------------------------------------------------- */

static int32_t pick_live(test_rng_t *rng) {
  if (!M.live.n) return -1;
  /* half the time among the most recently created: young objects, young cycles */
  if (test_below(rng, 2) && M.live.n > 8) {
    size_t w = M.live.n < 32 ? M.live.n : 32;
    return M.live.v[M.live.n - 1 - test_below(rng, w)];
  }
  return M.live.v[test_below(rng, M.live.n)];
}

static int32_t pick_node(test_rng_t *rng, int only_fin) {
  for (int t = 0; t < 12; t++) {
    int32_t id = pick_live(rng);
    if (id < 0) return -1;
    int k = MO(id)->kind;
    if (only_fin ? k == K_FIN : (k == K_PLAIN || k == K_FIN)) return id;
  }
  return -1;
}

/* -- operations -------------------------------------------------------------------------------- */

static void op_create(test_rng_t *rng) {
  int kind = test_below(rng, 3) ? K_FIN : K_PLAIN;
  refgc_object_t *p = refgc_new(kind == K_FIN ? T_mfin : T_mplain);
  ASSERT(p != NULL);
  m_step_end(0, NULL, 0); /* an automatic collection may have run before the creation */
  int32_t id = m_add(kind, p);
  mnode *n = (mnode *)p;
  n->magic = M_MAGIC;
  n->id = (uint32_t)id;
  MO(id)->prog = 1;
  MO(id)->mcount = 1;
  ivec_push(&M.roots, id);
  M.n_created++;
  ASSERT_EQ(refgc_refcount(p), 1);
}

static void set_slot(int32_t a, int k, int32_t b) {
  mobj *ao = MO(a);
  mnode *n = (mnode *)ao->p;
  refgc_object_t *old = n->slot[k];
  int32_t oldid = ao->slot[k];
  if (b >= 0) {
    refgc_incref(MO(b)->p);
    MO(b)->mcount++;
  }
  n->slot[k] = b >= 0 ? MO(b)->p : NULL;
  ao->slot[k] = b;
  if (old) {
    refgc_decref(old);
    m_dec(oldid);
  }
  m_step_end(0, NULL, 0);
}

static void op_link(test_rng_t *rng) {
  int32_t a = pick_node(rng, 0), b = pick_live(rng);
  if (a < 0 || b < 0) return;
  set_slot(a, (int)test_below(rng, MK), b);
}

static void op_unlink(test_rng_t *rng) {
  int32_t a = pick_node(rng, 0);
  if (a < 0) return;
  int k = (int)test_below(rng, MK);
  if (MO(a)->slot[k] < 0) return;
  set_slot(a, k, -1);
}

static void drop_root_at(size_t i) {
  int32_t id = M.roots.v[i];
  M.roots.v[i] = M.roots.v[--M.roots.n];
  mobj *o = MO(id);
  o->prog--;
  refgc_decref(o->p);
  m_dec(id);
  m_step_end(0, NULL, 0);
}

static void op_drop(test_rng_t *rng) {
  if (M.roots.n) drop_root_at(test_below(rng, M.roots.n));
}

static void op_take(test_rng_t *rng) {
  int32_t id = pick_live(rng);
  if (id < 0) return;
  refgc_incref(MO(id)->p);
  MO(id)->prog++;
  MO(id)->mcount++;
  ivec_push(&M.roots, id);
}

static void op_weakref(test_rng_t *rng) {
  int32_t t = pick_live(rng);
  if (t < 0) return;
  /* hold the referent while the weak reference is made (creating it may collect) */
  refgc_incref(MO(t)->p);
  MO(t)->prog++;
  MO(t)->mcount++;
  ivec_push(&M.roots, t);
  size_t tmp_root = M.roots.n - 1;
  int cb = (int)test_below(rng, 2);
  int32_t wid = (int32_t)M.n;
  refgc_object_t *w =
      refgc_weakref_new(MO(t)->p, cb ? m_weak_cb : NULL, (void *)(intptr_t)wid);
  ASSERT(w != NULL);
  m_step_end(0, NULL, 0);
  int32_t id = m_add(K_WEAK, w);
  ASSERT_EQ(id, wid);
  mobj *wo = MO(id);
  wo->has_cb = (uint8_t)cb;
  wo->prog = 1;
  wo->mcount = 1;
  wo->target = t;
  wo->wr_next = MO(t)->wr_first;
  MO(t)->wr_first = id;
  ivec_push(&M.roots, id);
  M.n_weak++;
  if (test_below(rng, 4)) drop_root_at(tmp_root);
}

static void op_resurrect(test_rng_t *rng) {
  int32_t id = pick_node(rng, 1);
  if (id < 0) return;
  uint32_t mode = 1 + (uint32_t)test_below(rng, 2);
  ((mnode *)MO(id)->p)->resurrect = mode;
  MO(id)->resurrect = (uint8_t)mode;
}

static void res_remove_at(size_t i) {
  mres *r = M.res_p;
  refgc_object_t *p = r->v[i];
  r->v[i] = r->v[--r->n];
  int32_t id = M.res.v[i];
  M.res.v[i] = M.res.v[--M.res.n];
  ASSERT_PTR_EQ(p, MO(id)->p);
  refgc_decref(p);
  m_dec(id);
  m_step_end(0, NULL, 0);
}

static void op_res_drop(test_rng_t *rng) {
  if (M.res.n) res_remove_at(test_below(rng, M.res.n));
}

static void op_collect(test_rng_t *rng) {
  int gen = (int)test_below(rng, 3);
  long jb = junk_live();
  refgc_gc_result_t r;
  memset(&r, 0xA5, sizeof r);
  long n = refgc_collect(gen, &r);
  ASSERT(n >= 0);
  ASSERT_EQ(M.ngc, 1);
  ASSERT_EQ(r.generation, gen);
  ASSERT_EQ((size_t)n, r.unreachable);
  M.n_collect[gen]++;
  M.explicit_now = 1;
  m_step_end(gen == 2, &r, jb);
  M.explicit_now = 0;
  m_check_all(0);
}

static void op_freeze(void) {
  if (!M.frozen_active) {
    ASSERT_EQ(refgc_gc_get_freeze_count(), 0);
    ASSERT_EQ(refgc_gc_freeze(), 0);
    for (size_t i = 0; i < M.live.n; i++) MO(M.live.v[i])->frozen = 1;
    M.frozen_junk = junk_live();
    M.frozen_active = 1;
    size_t fc = refgc_gc_get_freeze_count();
    ASSERT_GE(fc, M.live.n + (size_t)M.frozen_junk);
    M.frozen_other = fc - M.live.n - (size_t)M.frozen_junk;
    M.n_freeze++;
  } else {
    refgc_gc_unfreeze();
    for (size_t i = 0; i < M.live.n; i++) MO(M.live.v[i])->frozen = 0;
    M.frozen_active = 0;
    M.frozen_junk = 0;
    M.frozen_other = 0;
    ASSERT_EQ(refgc_gc_get_freeze_count(), 0);
  }
}

/* -- a round ------------------------------------------------------------------------------------ */

typedef struct mcfg_s {
  int auto_gc;
  size_t t0, t1, t2;
  size_t population;
} mcfg;

static void model_round(test_rng_t *rng, long ops, const mcfg *cfg) {
  /* a fresh model */
  M.n = 0;
  M.live.n = M.roots.n = M.res.n = 0;
  m_logs_clear();
  M.work.n = 0;
  M.ngc = 0;
  M.in_gc = 0;
  M.junk_made_in_gc = 0;
  ASSERT_EQ(junk_live(), 0);
  M.weak_base = type_live(weakref_type());
  M.frozen_active = 0;
  M.frozen_junk = 0;
  M.frozen_other = 0;
  ASSERT_EQ(refgc_gc_get_freeze_count(), 0);

  /* the resurrection list, held by the program for the whole round */
  mres *r = (mres *)refgc_new(T_mres);
  ASSERT(r != NULL);
  r->magic = M_MAGIC;
  M.res_id = m_add(K_RES, &r->ob);
  r->id = (uint32_t)M.res_id;
  M.res_p = r;
  MO(M.res_id)->prog = 1;
  MO(M.res_id)->mcount = 1;
  size_t tracked = m_tracked_objects();
  ASSERT_GE(tracked, 1);
  M.tracked_other = tracked - 1;

  if (cfg->auto_gc) {
    refgc_gc_set_threshold(cfg->t0, cfg->t1, cfg->t2);
    refgc_gc_enable();
  } else {
    refgc_gc_disable();
  }

  for (long i = 0; i < ops; i++) {
    unsigned x = (unsigned)test_below(rng, 1000);
    int over = M.live.n > cfg->population;
    if (x < (over ? 60u : 200u))
      op_create(rng);
    else if (x < 450)
      op_link(rng);
    else if (x < 530)
      op_unlink(rng);
    else if (x < (over ? 800u : 700u))
      op_drop(rng);
    else if (x < 830)
      op_take(rng);
    else if (x < 900)
      op_weakref(rng);
    else if (x < 940)
      op_resurrect(rng);
    else if (x < 970)
      op_res_drop(rng);
    else if (x < 972)
      op_freeze();
    else if (x < 990 - (cfg->auto_gc ? 10u : 0u))
      continue;
    else
      op_collect(rng);
    ASSERT_HOOKS_OK();
    if (M.live.n > M.max_live) M.max_live = M.live.n;
    M.sum_live += (double)M.live.n;
    if ((i & 1023) == 0) {
      m_check_all(1);
      if (M.live.n) m_check_referrers(pick_live(rng));
    }
  }
  m_check_all(1);
  if (M.frozen_active) op_freeze(); /* unfreeze */

  /* the end: no more resurrection, empty the list, drop every program reference */
  refgc_gc_disable();
  for (size_t i = 0; i < M.live.n; i++) {
    mobj *o = MO(M.live.v[i]);
    if (o->kind == K_FIN) {
      o->resurrect = 0;
      ((mnode *)o->p)->resurrect = 0;
    }
  }
  while (M.res.n) res_remove_at(M.res.n - 1);
  while (M.roots.n) drop_root_at(M.roots.n - 1);
  MO(M.res_id)->prog = 0;
  refgc_decref(&M.res_p->ob);
  m_dec(M.res_id);
  m_step_end(0, NULL, 0);
  long jb = junk_live();
  refgc_gc_result_t res;
  long n = refgc_collect(2, &res);
  ASSERT(n >= 0);
  m_step_end(1, &res, jb);
  ASSERT_EQ(M.live.n, 0);
  ASSERT(M.res_p == NULL);
  /* what finalizers made during the last collection */
  refgc_collect(2, NULL);
  M.ngc = 0;
  ASSERT_EQ(junk_live(), 0);
  ASSERT_EQ(type_live(T_mplain), 0);
  ASSERT_EQ(type_live(T_mfin), 0);
  ASSERT_EQ(type_live(T_mres), 0);
  ASSERT_EQ(type_live(weakref_type()), M.weak_base);
  ASSERT_HOOKS_OK();
}

TEST(model_random_ops) {
  gc_reset();
  m_types_init();
  ASSERT_EQ(refgc_gc_callback_add(m_gc_cb, NULL), 0);
  uint64_t seed = test_seed();
  test_rng_t rng = {seed ^ 0x6763u};
  M.hrng.s = seed * 31 + 7;
  long total = 2000000L * test_scale();
  static const mcfg cfgs[] = {
      {0, 0, 0, 0, 40},        {1, 50, 3, 3, 200},   {1, 10, 2, 2, 60},
      {0, 0, 0, 0, 400},       {1, 50, 3, 3, 1000},  {1, 200, 1, 1, 300},
      {1, 3, 1, 1, 30},        {1, 2000, 10, 10, 600},
  };
  size_t ncfg = sizeof cfgs / sizeof cfgs[0];
  double t0 = now_s();
  long done = 0;
  memset(M.n_collect, 0, sizeof M.n_collect);
  M.n_auto = M.n_fin = M.n_res = M.n_rel = M.n_cb = M.n_weak = M.n_created = M.n_freeze = 0;
  M.max_live = 0;
  M.sum_live = 0;
  for (size_t round = 0; done < total; round++) {
    mcfg c = cfgs[round % ncfg];
    long ops = total / (long)ncfg;
    if (ops > total - done) ops = total - done;
    /* the population varies within a round's configuration */
    c.population = c.population / 2 + (size_t)test_below(&rng, c.population);
    model_round(&rng, ops, &c);
    done += ops;
  }
  refgc_gc_callback_remove(m_gc_cb, NULL);
  printf("# model: %ld ops in %.1f s (seed %" PRIu64 "): collections %ld/%ld/%ld explicit, %ld "
         "automatic; %ld finalizers, %ld resurrections, %ld releases, %ld weakrefs, %ld "
         "callbacks, %ld freezes\n",
         done, now_s() - t0, seed, M.n_collect[0], M.n_collect[1], M.n_collect[2], M.n_auto,
         M.n_fin, M.n_res, M.n_rel, M.n_weak, M.n_cb, M.n_freeze);
  printf("# model: %ld nodes created, live objects %.0f on average, %zu at most\n", M.n_created,
         M.sum_live / (double)(done ? done : 1), M.max_live);
  gc_restore();
}

/* ============================================================================================
 * Small graphs for the other cases
 * ========================================================================================== */

#define G_MAX 8192
#define G_MAGIC 0x474E4F4445474E4Full
#define G_REFS 4
enum { G_RESURRECT = 1 };

typedef struct gnode_s {
  refgc_object_t ob;
  uint64_t magic;
  uint32_t id;
  uint32_t flags;
  int64_t payload;
  refgc_object_t *ref[G_REFS];
} gnode;

static struct {
  uint32_t next_id;
  int fin[G_MAX], rel[G_MAX], clr[G_MAX];
  uint32_t fin_seq[G_MAX], rel_seq[G_MAX], clr_seq[G_MAX];
  uint32_t seq;
  refgc_object_t *held[64];
  size_t nheld;
  void (*on_fin)(gnode *);
  void (*on_clear)(gnode *);
  void (*on_release)(gnode *);
  void (*on_traverse)(gnode *);
} G;

static const refgc_type_t *T_g;     /* every hook */
static const refgc_type_t *T_gnf;   /* no finalizer */
static const refgc_type_t *T_gnc;   /* no clear hook: uncollectable in a cycle */
static const refgc_type_t *T_gleaf; /* leaf */

static void g_traverse(refgc_object_t *self, refgc_visit_fn *visit, void *arg) {
  gnode *n = (gnode *)self;
  if (G.on_traverse) G.on_traverse(n);
  for (int k = 0; k < G_REFS; k++)
    if (n->ref[k]) visit(n->ref[k], arg);
}

static void g_clear(refgc_object_t *self) {
  gnode *n = (gnode *)self;
  HOOK_CHECK(n->magic == G_MAGIC);
  if (n->id < G_MAX) {
    G.clr[n->id]++;
    G.clr_seq[n->id] = G.seq++;
  }
  if (G.on_clear) G.on_clear(n);
  for (int k = 0; k < G_REFS; k++) {
    refgc_object_t *x = n->ref[k];
    n->ref[k] = NULL;
    refgc_xdecref(x);
  }
}

static void g_finalize(refgc_object_t *self) {
  gnode *n = (gnode *)self;
  HOOK_CHECK(n->magic == G_MAGIC);
  HOOK_CHECK(refgc_refcount(self) >= 1);
  if (n->id < G_MAX) {
    HOOK_CHECK(G.fin[n->id] == 0 && G.rel[n->id] == 0);
    G.fin[n->id]++;
    G.fin_seq[n->id] = G.seq++;
  }
  if (G.on_fin) G.on_fin(n);
  if ((n->flags & G_RESURRECT) && G.nheld < 64) {
    refgc_incref(self);
    G.held[G.nheld++] = self;
  }
}

static void g_release(refgc_object_t *self) {
  gnode *n = (gnode *)self;
  HOOK_CHECK(n->magic == G_MAGIC);
  if (n->id < G_MAX) {
    HOOK_CHECK(G.rel[n->id] == 0);
    G.rel[n->id]++;
    G.rel_seq[n->id] = G.seq++;
  }
  if (G.on_release) G.on_release(n);
  n->magic = M_DEAD;
}

static void g_types_init(void) {
  if (T_g) return;
  refgc_type_spec_t s = {.version = REFGC_TYPE_SPEC_VERSION,
                         .name = "gc.g",
                         .basic_size = sizeof(gnode),
                         .traverse = g_traverse,
                         .clear = g_clear,
                         .finalize = g_finalize,
                         .release = g_release};
  T_g = refgc_type_register(&s);
  s.name = "gc.g.nofinalizer";
  s.finalize = NULL;
  s.freelist_max = 8;
  T_gnf = refgc_type_register(&s);
  s.name = "gc.g.noclear";
  s.finalize = g_finalize;
  s.clear = NULL;
  s.freelist_max = 0;
  T_gnc = refgc_type_register(&s);
  refgc_type_spec_t l = {.version = REFGC_TYPE_SPEC_VERSION,
                         .flags = REFGC_TYPE_LEAF,
                         .name = "gc.g.leaf",
                         .basic_size = 24};
  T_gleaf = refgc_type_register(&l);
}

static void g_reset(void) {
  g_types_init();
  memset(&G, 0, sizeof G);
}

static gnode *g_new(const refgc_type_t *t) {
  gnode *n = (gnode *)refgc_new(t);
  if (!n) abort();
  n->magic = G_MAGIC;
  n->id = G.next_id < G_MAX ? G.next_id++ : G_MAX;
  n->payload = (int64_t)n->id * 7 + 3;
  return n;
}

/* a->ref[k] = b, a new reference */
static void g_ref(gnode *a, int k, gnode *b) {
  refgc_incref(&b->ob);
  a->ref[k] = &b->ob;
}

/* a->ref[k] = b, taking over the caller's reference */
static void g_own(gnode *a, int k, refgc_object_t *b) { a->ref[k] = b; }

static void g_held_drop(void) {
  while (G.nheld) refgc_decref(G.held[--G.nheld]);
}

/* ---- resurrection -------------------------------------------------------------------------- */

static void resurrection_case(int gen) {
  g_reset();
  gnode *a = g_new(T_g), *b = g_new(T_g), *c = g_new(T_g), *d = g_new(T_gnf);
  g_ref(a, 0, b);
  g_ref(b, 0, c);
  g_ref(c, 0, a);
  g_ref(a, 1, d);
  b->flags = G_RESURRECT;
  refgc_object_t *wa = refgc_weakref_new(&a->ob, NULL, NULL);
  refgc_object_t *wd = refgc_weakref_new(&d->ob, NULL, NULL);
  refgc_decref(&a->ob);
  refgc_decref(&b->ob);
  refgc_decref(&c->ob);
  refgc_decref(&d->ob);

  refgc_gc_result_t r;
  long n = refgc_collect(gen, &r);
  ASSERT_HOOKS_OK();
  ASSERT_EQ(n, 4);
  ASSERT_EQ(r.resurrected, 4); /* b, and everything b reaches: c, a, d */
  ASSERT_EQ(r.collected, 0);
  ASSERT_EQ(r.uncollectable, 0);
  for (int i = 0; i < 3; i++) ASSERT_EQ(G.fin[i], 1);
  for (int i = 0; i < 4; i++) {
    ASSERT_EQ(G.rel[i], 0);
    ASSERT_EQ(G.clr[i], 0);
  }
  ASSERT_EQ(G.nheld, 1);
  ASSERT_PTR_EQ(G.held[0], &b->ob);
  /* intact, with the counts of a live structure */
  ASSERT_EQ(a->magic, G_MAGIC);
  ASSERT_EQ(b->magic, G_MAGIC);
  ASSERT_EQ(c->magic, G_MAGIC);
  ASSERT_EQ(d->magic, G_MAGIC);
  ASSERT_PTR_EQ(a->ref[0], &b->ob);
  ASSERT_PTR_EQ(a->ref[1], &d->ob);
  ASSERT_PTR_EQ(b->ref[0], &c->ob);
  ASSERT_PTR_EQ(c->ref[0], &a->ob);
  ASSERT_EQ(a->payload, 3);
  ASSERT_EQ(refgc_refcount(&a->ob), 1);
  ASSERT_EQ(refgc_refcount(&b->ob), 2);
  ASSERT_EQ(refgc_refcount(&c->ob), 1);
  ASSERT_EQ(refgc_refcount(&d->ob), 1);
  ASSERT(refgc_is_finalized(&a->ob) && refgc_is_finalized(&b->ob) && refgc_is_finalized(&c->ob));
  /* weak references to the garbage were cleared before the finalizers ran (PEP 442), even
   * for the objects that then survived */
  ASSERT(refgc_weakref_get(wa) == NULL);
  ASSERT(refgc_weakref_get(wd) == NULL);

  /* held: nothing to find; the survivors (candidates again, since the collector's
   * references to them were dropped) are promoted */
  n = refgc_collect(gen, &r);
  ASSERT_EQ(n, 0);
  ASSERT_EQ(G.rel[0], 0);
  int older = gen < 2 ? gen + 1 : 2;
  ASSERT_EQ(refgc_gc_generation(&b->ob), older);

  /* dropped: freed, without running the finalizers again */
  g_held_drop();
  n = refgc_collect(older, &r);
  ASSERT_HOOKS_OK();
  ASSERT_EQ(n, 4);
  ASSERT_EQ(r.collected, 4);
  ASSERT_EQ(r.resurrected, 0);
  for (int i = 0; i < 3; i++) ASSERT_EQ(G.fin[i], 1);
  for (int i = 0; i < 4; i++) ASSERT_EQ(G.rel[i], 1);
  ASSERT_EQ(G.nheld, 0);
  refgc_decref(wa);
  refgc_decref(wd);
}

TEST(resurrection_keeps_the_member_and_what_it_reaches) {
  gc_reset();
  resurrection_case(2);
  resurrection_case(0);
  resurrection_case(1);
  gc_restore();
}

/* ---- finalizers inside cycles -------------------------------------------------------------- */

#define RING 64
static int ring_fin_calls;
static int ring_cb_calls;

static void ring_fin(gnode *n) {
  /* every member is intact while any finalizer runs: walk the whole ring */
  gnode *x = n;
  for (int i = 0; i < RING && x; i++) {
    HOOK_CHECK(x->magic == G_MAGIC);
    HOOK_CHECK(x->id < RING);
    HOOK_CHECK(x->payload == (int64_t)x->id * 7 + 3);
    HOOK_CHECK(x->id < G_MAX && G.rel[x->id] == 0 && G.clr[x->id] == 0);
    HOOK_CHECK(refgc_refcount(&x->ob) >= 1);
    for (int k = 1; k < G_REFS; k++)
      if (x->ref[k]) HOOK_CHECK(((gnode *)x->ref[k])->magic == G_MAGIC);
    x = (gnode *)x->ref[0];
  }
  HOOK_CHECK(x == n);
  /* finalizers may allocate and drop objects: a temporary, and a new garbage cycle */
  gnode *t = g_new(T_gnf);
  refgc_decref(&t->ob);
  gnode *p = g_new(T_gnf), *q = g_new(T_gnf);
  g_own(p, 0, &q->ob);
  g_ref(q, 0, p);
  refgc_decref(&p->ob);
  ring_fin_calls++;
}

static void ring_cb(refgc_object_t *w, void *arg) {
  (void)arg;
  HOOK_CHECK(refgc_weakref_get(w) == NULL);
  /* callbacks run before any finalizer of the same garbage */
  for (int i = 0; i < RING; i++) HOOK_CHECK(G.fin[i] == 0);
  ring_cb_calls++;
}

TEST(finalizers_in_cycles_run_once_and_see_every_member_intact) {
  gc_reset();
  g_reset();
  test_rng_t rng = {test_seed() ^ 0x3333u};
  gnode *ring[RING];
  for (int i = 0; i < RING; i++) ring[i] = g_new(T_g);
  for (int i = 0; i < RING; i++) {
    g_ref(ring[i], 0, ring[(i + 1) % RING]);
    for (int k = 1; k < G_REFS; k++)
      if (test_below(&rng, 2)) g_ref(ring[i], k, ring[test_below(&rng, RING)]);
  }
  refgc_object_t *w = refgc_weakref_new(&ring[5]->ob, ring_cb, NULL);
  G.on_fin = ring_fin;
  ring_fin_calls = ring_cb_calls = 0;
  for (int i = 0; i < RING; i++) refgc_decref(&ring[i]->ob);
  /* automatic collection on, with a tiny threshold: the finalizers' allocations must not
   * start a collection inside this one */
  ASSERT_EQ(refgc_gc_callback_add(count_gc_cb, NULL), 0);
  refgc_gc_set_threshold(3, 1, 1);
  refgc_gc_enable();
  int starts = gc_starts;
  refgc_gc_result_t r;
  long n = refgc_collect(2, &r);
  refgc_gc_disable();
  ASSERT_EQ(gc_starts, starts + 1);
  ASSERT_HOOKS_OK();
  ASSERT_EQ(n, RING);
  ASSERT_EQ(r.collected, RING);
  ASSERT_EQ(ring_fin_calls, RING);
  ASSERT_EQ(ring_cb_calls, 1);
  uint32_t max_fin = 0, min_clr = UINT32_MAX, max_clr = 0, min_rel = UINT32_MAX;
  for (int i = 0; i < RING; i++) {
    ASSERT_EQ(G.fin[i], 1);
    ASSERT_EQ(G.clr[i], 1);
    ASSERT_EQ(G.rel[i], 1);
    if (G.fin_seq[i] > max_fin) max_fin = G.fin_seq[i];
    if (G.clr_seq[i] < min_clr) min_clr = G.clr_seq[i];
    if (G.clr_seq[i] > max_clr) max_clr = G.clr_seq[i];
    if (G.rel_seq[i] < min_rel) min_rel = G.rel_seq[i];
  }
  ASSERT_LT(max_fin, min_clr); /* every finalizer before any clear hook */
  ASSERT_LT(max_clr, min_rel); /* every clear hook before any release */
  ASSERT(refgc_weakref_get(w) == NULL);
  refgc_decref(w);
  /* the cycles the finalizers made are garbage for the next collection */
  G.on_fin = NULL;
  n = refgc_collect(2, &r);
  ASSERT_EQ(n, 2 * RING);
  ASSERT_EQ(r.collected, 2 * RING);

  /* a single object that refers to itself, found from its candidate root by a young
   * collection */
  gnode *s = g_new(T_g);
  uint32_t sid = s->id;
  g_ref(s, 0, s);
  refgc_decref(&s->ob);
  n = refgc_collect(0, &r);
  ASSERT_EQ(n, 1);
  ASSERT_EQ(G.fin[sid], 1);
  ASSERT_EQ(G.rel[sid], 1);
  ASSERT_HOOKS_OK();
  refgc_gc_callback_remove(count_gc_cb, NULL);
  gc_restore();
}

/* ---- automatic collection in the middle of a reference-counting release ---------------------- */

static int cascade_allocs;

static void cascade_alloc(gnode *n) {
  (void)n;
  /* objects and garbage cycles made while a chain is being released: enough to start
   * automatic collections in the middle of the release */
  for (int i = 0; i < 3; i++) {
    gnode *p = g_new(T_gnf), *q = g_new(T_gnf);
    g_own(p, 0, &q->ob);
    g_ref(q, 0, p);
    refgc_decref(&p->ob);
    cascade_allocs += 2;
  }
}

TEST(automatic_collection_inside_a_refcount_release) {
  gc_reset();
  g_reset();
  ASSERT_EQ(refgc_gc_callback_add(count_gc_cb, NULL), 0);
  enum { CHAIN = 300 };
  gnode *head = g_new(T_g), *prev = head;
  uint32_t chain_ids[CHAIN];
  chain_ids[0] = head->id;
  for (int i = 1; i < CHAIN; i++) {
    gnode *x = g_new(T_g);
    chain_ids[i] = x->id;
    g_own(prev, 0, &x->ob);
    /* a cycle hanging off each member (y <-> z): garbage once the member is released */
    gnode *y = g_new(T_gnf), *z = g_new(T_gnf);
    g_own(y, 0, &z->ob);
    g_ref(z, 0, y);
    g_own(x, 1, &y->ob);
    prev = x;
  }
  refgc_gc_set_threshold(4, 1, 1);
  refgc_gc_enable();
  G.on_fin = cascade_alloc;
  G.on_release = NULL;
  int starts = gc_starts;
  cascade_allocs = 0;
  refgc_decref(&head->ob); /* the chain's finalizers run during this release */
  refgc_gc_disable();
  G.on_fin = NULL;
  ASSERT_HOOKS_OK();
  /* whether those allocations may start collections is the subject of
   * collection_from_hooks_outside_a_collection_is_refused; either way nothing may break */
  int inside = gc_starts - starts;
  /* the chain went by reference counting during that decref: each member once, after its
   * finalizer ran once, and no clear hook touched it */
  for (int i = 0; i < CHAIN; i++) {
    ASSERT_EQ(G.fin[chain_ids[i]], 1);
    ASSERT_EQ(G.rel[chain_ids[i]], 1);
    ASSERT_EQ(G.clr[chain_ids[i]], 0);
  }
  ASSERT_GT(cascade_allocs, 0);
  refgc_gc_result_t r;
  refgc_collect(2, &r);
  ASSERT_HOOKS_OK();
  if (inside) printf("# %d automatic collection(s) ran inside the release\n", inside);
  for (uint32_t id = 0; id < G.next_id && id < G_MAX; id++) ASSERT_LE(G.fin[id], 1);
  ASSERT_EQ(G.next_id < G_MAX, 1);
  for (uint32_t id = 0; id < G.next_id; id++) ASSERT_EQ(G.rel[id], 1);
  refgc_gc_callback_remove(count_gc_cb, NULL);
  gc_restore();
}

/* ---- weak reference callbacks that allocate --------------------------------------------------- */

static int wcb_calls[8];
static refgc_object_t *wcb_made_weak;
static uint32_t wcb_a_id, wcb_b_id;

static void record_cb(refgc_object_t *w, void *arg) {
  HOOK_CHECK(refgc_weakref_get(w) == NULL);
  wcb_calls[(intptr_t)arg & 7]++;
}

static void alloc_cb(refgc_object_t *w, void *arg) {
  HOOK_CHECK(refgc_weakref_get(w) == NULL);
  /* before the finalizers of the garbage */
  HOOK_CHECK(G.fin[wcb_a_id] == 0 && G.fin[wcb_b_id] == 0);
  wcb_calls[(intptr_t)arg & 7]++;
  /* many objects (far past the threshold), dropped; a cycle left as garbage; a weak
   * reference to it with its own callback, kept */
  for (int i = 0; i < 100; i++) {
    gnode *t = g_new(T_gnf);
    refgc_decref(&t->ob);
  }
  gnode *x = g_new(T_gnf), *y = g_new(T_gnf);
  g_own(x, 0, &y->ob);
  g_ref(y, 0, x);
  gnode *z = g_new(T_gnf); /* a third object hanging off the cycle */
  g_own(y, 1, &z->ob);
  if (!wcb_made_weak) wcb_made_weak = refgc_weakref_new(&x->ob, record_cb, (void *)5);
  refgc_decref(&x->ob);
}

TEST(weakref_callbacks_allocate_during_a_collection) {
  gc_reset();
  g_reset();
  memset(wcb_calls, 0, sizeof wcb_calls);
  wcb_made_weak = NULL;
  ASSERT_EQ(refgc_gc_callback_add(count_gc_cb, NULL), 0);
  gnode *a = g_new(T_g), *b = g_new(T_g);
  wcb_a_id = a->id;
  wcb_b_id = b->id;
  g_ref(a, 0, b);
  g_ref(b, 0, a);
  refgc_object_t *w1 = refgc_weakref_new(&a->ob, alloc_cb, (void *)0); /* held */
  refgc_object_t *w4 = refgc_weakref_new(&b->ob, alloc_cb, (void *)1); /* held */
  refgc_object_t *w3 = refgc_weakref_new(&a->ob, NULL, NULL);          /* held, no callback */
  /* owned by the garbage: itself garbage, so no callback */
  g_own(a, 1, refgc_weakref_new(&b->ob, record_cb, (void *)2));
  refgc_decref(&a->ob);
  refgc_decref(&b->ob);
  refgc_gc_set_threshold(10, 1, 1);
  refgc_gc_enable();
  int starts = gc_starts;
  refgc_gc_result_t r;
  long n = refgc_collect(2, &r);
  refgc_gc_disable();
  ASSERT_HOOKS_OK();
  ASSERT_EQ(gc_starts, starts + 1); /* the callbacks' allocations started no other collection */
  ASSERT_EQ(n, 3);                  /* a, b and the weak reference a owned */
  ASSERT_EQ(wcb_calls[0], 1);
  ASSERT_EQ(wcb_calls[1], 1);
  ASSERT_EQ(wcb_calls[2], 0);
  ASSERT_EQ(G.fin[wcb_a_id], 1);
  ASSERT_EQ(G.fin[wcb_b_id], 1);
  ASSERT_EQ(G.rel[wcb_a_id], 1);
  ASSERT_EQ(G.rel[wcb_b_id], 1);
  ASSERT(refgc_weakref_get(w1) == NULL);
  ASSERT(refgc_weakref_get(w3) == NULL);
  ASSERT(refgc_weakref_get(w4) == NULL);
  ASSERT(wcb_made_weak != NULL);
  ASSERT(refgc_weakref_alive(wcb_made_weak));
  refgc_gc_garbage_clear(); /* see weakref_owned_by_garbage_is_freed */
  /* the cycles made by the two callbacks: garbage for the next collection */
  n = refgc_collect(2, &r);
  ASSERT_HOOKS_OK();
  ASSERT_EQ(n, 6);
  ASSERT_EQ(r.collected, 6);
  ASSERT_EQ(wcb_calls[5], 1);
  ASSERT(refgc_weakref_get(wcb_made_weak) == NULL);
  refgc_decref(wcb_made_weak);
  refgc_decref(w1);
  refgc_decref(w3);
  refgc_decref(w4);
  for (uint32_t id = 0; id < G.next_id; id++) ASSERT_EQ(G.rel[id], 1);
  refgc_gc_callback_remove(count_gc_cb, NULL);
  gc_restore();
}

/* A weak reference owned by a garbage cycle is garbage too: no callback, and it is freed with
 * the cycle (it holds no reference, so it needs no clear hook to be freed). */
TEST(weakref_owned_by_garbage_is_freed) {
  gc_reset();
  g_reset();
  gnode *t = g_new(T_gnf); /* held target */
  gnode *a = g_new(T_gnf), *b = g_new(T_gnf);
  g_ref(a, 0, b);
  g_ref(b, 0, a);
  size_t weak_before = type_live(weakref_type());
  g_own(a, 1, refgc_weakref_new(&t->ob, record_cb, (void *)3));
  ASSERT_EQ(type_live(weakref_type()), weak_before + 1);
  memset(wcb_calls, 0, sizeof wcb_calls);
  refgc_decref(&a->ob);
  refgc_decref(&b->ob);
  refgc_gc_result_t r;
  long n = refgc_collect(2, &r);
  size_t garbage = refgc_gc_garbage_count();
  size_t weak_after = type_live(weakref_type());
  refgc_gc_garbage_clear();
  ASSERT_EQ(n, 3);
  ASSERT_EQ(G.rel[1], 1); /* a */
  ASSERT_EQ(G.rel[2], 1); /* b */
  ASSERT_EQ(wcb_calls[3], 0);
  ASSERT_EQ(r.uncollectable, 0);
  ASSERT_EQ(garbage, 0);
  ASSERT_EQ(r.collected, 3);
  ASSERT_EQ(weak_after, weak_before);
  refgc_decref(&t->ob);
  gc_restore();
}

/* ---- reentrancy ------------------------------------------------------------------------------- */

static struct {
  int in_gc;
  long fin_rc[3], cb_rc, clear_rc, trav_rc, rel_rc, thread_rc;
  int fin_calls, cb_calls, clear_calls, trav_calls, rel_calls, thread_runs;
} RE;

static void reenter_gc_cb(int phase, const refgc_gc_result_t *info, void *arg) {
  (void)info;
  (void)arg;
  RE.in_gc = phase == REFGC_GC_START;
}

static void *reenter_thread(void *arg) {
  (void)arg;
  RE.thread_rc = refgc_collect(2, NULL); /* another thread, while this one collects */
  RE.thread_runs++;
  return NULL;
}

static void reenter_fin(gnode *n) {
  (void)n;
  for (int g = 0; g < 3; g++) {
    long rc = refgc_collect(g, NULL);
    if (RE.fin_calls == 0 || rc != REFGC_EBUSY) RE.fin_rc[g] = rc;
  }
  if (RE.fin_calls++ == 0) {
    pthread_t t;
    HOOK_CHECK(pthread_create(&t, NULL, reenter_thread, NULL) == 0);
    pthread_join(t, NULL);
  }
}

static void reenter_clear(gnode *n) {
  (void)n;
  long rc = refgc_collect(2, NULL);
  if (RE.clear_calls++ == 0 || rc != REFGC_EBUSY) RE.clear_rc = rc;
}

static void reenter_traverse(gnode *n) {
  (void)n;
  if (!RE.in_gc) return; /* only from inside a collection (traverse runs elsewhere too) */
  long rc = refgc_collect(0, NULL);
  if (RE.trav_calls++ == 0 || rc != REFGC_EBUSY) RE.trav_rc = rc;
}

static void reenter_release(gnode *n) {
  (void)n;
  if (!RE.in_gc) return;
  long rc = refgc_collect(1, NULL);
  if (RE.rel_calls++ == 0 || rc != REFGC_EBUSY) RE.rel_rc = rc;
}

static void reenter_cb(refgc_object_t *w, void *arg) {
  (void)w;
  (void)arg;
  long rc = refgc_collect(2, NULL);
  if (RE.cb_calls++ == 0 || rc != REFGC_EBUSY) RE.cb_rc = rc;
}

TEST(reentrant_collection_is_refused) {
  gc_reset();
  g_reset();
  memset(&RE, 0, sizeof RE);
  ASSERT_EQ(refgc_gc_callback_add(reenter_gc_cb, NULL), 0);
  gnode *a = g_new(T_g), *b = g_new(T_g), *c = g_new(T_g);
  g_ref(a, 0, b);
  g_ref(b, 0, c);
  g_ref(c, 0, a);
  refgc_object_t *w = refgc_weakref_new(&b->ob, reenter_cb, NULL);
  gnode *held = g_new(T_g); /* reachable: must come through untouched */
  g_ref(a, 1, held);
  refgc_decref(&a->ob);
  refgc_decref(&b->ob);
  refgc_decref(&c->ob);
  G.on_fin = reenter_fin;
  G.on_clear = reenter_clear;
  G.on_traverse = reenter_traverse;
  G.on_release = reenter_release;
  refgc_gc_gen_stats_t before[3], after[3];
  refgc_gc_get_stats(before);
  refgc_gc_result_t r;
  long n = refgc_collect(2, &r);
  G.on_fin = NULL;
  G.on_clear = NULL;
  G.on_traverse = NULL;
  G.on_release = NULL;
  refgc_gc_get_stats(after);
  refgc_gc_callback_remove(reenter_gc_cb, NULL);
  ASSERT_HOOKS_OK();
  ASSERT_EQ(n, 3);
  ASSERT_EQ(r.collected, 3);
  ASSERT_EQ(RE.fin_calls, 3);
  ASSERT_EQ(RE.clear_calls, 3);
  ASSERT_EQ(RE.cb_calls, 1);
  ASSERT_GT(RE.trav_calls, 0);
  ASSERT_EQ(RE.rel_calls, 3);
  ASSERT_EQ(RE.thread_runs, 1);
  for (int g = 0; g < 3; g++) ASSERT_EQ(RE.fin_rc[g], REFGC_EBUSY);
  ASSERT_EQ(RE.clear_rc, REFGC_EBUSY);
  ASSERT_EQ(RE.trav_rc, REFGC_EBUSY);
  ASSERT_EQ(RE.rel_rc, REFGC_EBUSY);
  ASSERT_EQ(RE.cb_rc, REFGC_EBUSY);
  ASSERT_EQ(RE.thread_rc, REFGC_EBUSY);
  /* the outer collection completed: one collection counted, the garbage freed once, the
   * reachable object intact */
  for (int g = 0; g < 3; g++)
    ASSERT_EQ(after[g].collections, before[g].collections + (g == 2 ? 1 : 0));
  for (int i = 0; i < 3; i++) {
    ASSERT_EQ(G.fin[i], 1);
    ASSERT_EQ(G.clr[i], 1);
    ASSERT_EQ(G.rel[i], 1);
  }
  ASSERT_EQ(held->magic, G_MAGIC);
  ASSERT_EQ(refgc_refcount(&held->ob), 1);
  ASSERT_EQ(G.fin[held->id], 0);
  ASSERT(refgc_weakref_get(w) == NULL);
  /* and collections work again afterwards */
  ASSERT_EQ(refgc_collect(2, NULL), 0);
  refgc_decref(w);
  refgc_decref(&held->ob);
  ASSERT_EQ(G.rel[3], 1);
  gc_restore();
}

/* ---- freeze ----------------------------------------------------------------------------------- */

static int count_visitor(refgc_object_t *o, void *arg) {
  (void)o;
  (*(size_t *)arg)++;
  return 0;
}

typedef struct find_ctx_s {
  refgc_object_t *want[16];
  int seen[16];
  int n;
  size_t others;
} find_ctx;

static int find_visitor(refgc_object_t *o, void *arg) {
  find_ctx *c = arg;
  for (int i = 0; i < c->n; i++) {
    if (c->want[i] == o) {
      c->seen[i]++;
      return 0;
    }
  }
  c->others++;
  return 0;
}

static void find_init(find_ctx *c, refgc_object_t **objs, int n) {
  memset(c, 0, sizeof *c);
  for (int i = 0; i < n; i++) c->want[i] = objs[i];
  c->n = n;
}

static int find_count(const find_ctx *c) {
  int k = 0;
  for (int i = 0; i < c->n; i++) k += c->seen[i];
  return k;
}

TEST(freeze_keeps_frozen_garbage_and_writes_no_object) {
  gc_reset();
  g_reset();
  enum { NC = 9 };
  gnode *c[NC];
  refgc_object_t *objs[NC + 1];
  for (int i = 0; i < NC; i++) c[i] = g_new(T_g);
  for (int i = 0; i < NC; i++) g_ref(c[i], 0, c[i % 3 == 2 ? i - 2 : i + 1]); /* 3 rings of 3 */
  gnode *h = g_new(T_gnf); /* held */
  for (int i = 0; i < NC; i++) {
    refgc_decref(&c[i]->ob);
    objs[i] = &c[i]->ob;
  }
  objs[NC] = &h->ob;
  /* the objects' bytes before freezing */
  static unsigned char snap[NC + 1][sizeof(gnode)];
  for (int i = 0; i <= NC; i++) memcpy(snap[i], objs[i], sizeof(gnode));
  size_t tracked = 0;
  refgc_gc_get_objects(-1, count_visitor, &tracked);
  ASSERT_GE(tracked, NC + 1);

  ASSERT_EQ(refgc_gc_freeze(), 0);
  for (int i = 0; i <= NC; i++)
    if (memcmp(snap[i], objs[i], sizeof(gnode)) != 0)
      TEST_FAIL("refgc_gc_freeze() wrote object %d's memory", i);
  ASSERT_EQ(refgc_gc_get_freeze_count(), tracked);
  for (int i = 0; i <= NC; i++) ASSERT_EQ(refgc_gc_generation(objs[i]), 3);
  find_ctx fc;
  for (int g = 0; g < 3; g++) {
    find_init(&fc, objs, NC + 1);
    refgc_gc_get_objects(g, find_visitor, &fc);
    ASSERT_EQ(find_count(&fc), 0); /* frozen objects are in no generation */
  }
  find_init(&fc, objs, NC + 1);
  refgc_gc_get_objects(-1, find_visitor, &fc);
  ASSERT_EQ(find_count(&fc), NC + 1);

  /* collections ignore them */
  refgc_gc_result_t r;
  for (int g = 0; g < 3; g++) {
    long n = refgc_collect(g, &r);
    ASSERT_EQ(n, 0);
  }
  for (int i = 0; i < NC; i++) {
    ASSERT_EQ(G.fin[i], 0);
    ASSERT_EQ(G.rel[i], 0);
    ASSERT_EQ(c[i]->magic, G_MAGIC);
  }
  ASSERT_EQ(refgc_gc_get_freeze_count(), tracked);
  int touched = 0;
  for (int i = 0; i <= NC; i++) touched += memcmp(snap[i], objs[i], sizeof(gnode)) != 0;
  if (touched)
    printf("# note: collections after the freeze wrote the header of %d frozen object(s)\n", touched);

  /* objects made after the freeze are not frozen */
  gnode *y = g_new(T_gnf);
  ASSERT_EQ(refgc_gc_generation(&y->ob), 0);
  ASSERT_EQ(refgc_gc_get_freeze_count(), tracked);
  refgc_decref(&y->ob);
  /* a frozen object that dies leaves the frozen count */
  refgc_decref(&h->ob);
  ASSERT_EQ(G.rel[NC], 1);
  ASSERT_EQ(refgc_gc_get_freeze_count(), tracked - 1);

  refgc_gc_unfreeze();
  ASSERT_EQ(refgc_gc_get_freeze_count(), 0);
  for (int i = 0; i < NC; i++) ASSERT_EQ(refgc_gc_generation(objs[i]), 2);
  long n = refgc_collect(2, &r);
  ASSERT_HOOKS_OK();
  ASSERT_EQ(n, NC);
  ASSERT_EQ(r.collected, NC);
  for (int i = 0; i < NC; i++) {
    ASSERT_EQ(G.fin[i], 1);
    ASSERT_EQ(G.rel[i], 1);
  }
  gc_restore();
}

/* ---- DEBUG_SAVEALL and uncollectable objects -------------------------------------------------- */

static int garbage_index(refgc_object_t *o) {
  for (size_t i = 0; i < refgc_gc_garbage_count(); i++)
    if (refgc_gc_garbage_at(i) == o) return (int)i;
  return -1;
}

TEST(debug_saveall_and_uncollectable_objects_on_the_garbage_list) {
  gc_reset();
  g_reset();
  memset(wcb_calls, 0, sizeof wcb_calls);
  /* SAVEALL: the garbage is kept, intact, on the list */
  refgc_gc_set_debug(REFGC_GC_DEBUG_SAVEALL);
  ASSERT_EQ(refgc_gc_get_debug(), REFGC_GC_DEBUG_SAVEALL);
  gnode *a = g_new(T_g), *b = g_new(T_g), *c = g_new(T_g);
  g_ref(a, 0, b);
  g_ref(b, 0, c);
  g_ref(c, 0, a);
  refgc_object_t *w = refgc_weakref_new(&a->ob, record_cb, (void *)4);
  refgc_decref(&a->ob);
  refgc_decref(&b->ob);
  refgc_decref(&c->ob);
  refgc_gc_result_t r;
  long n = refgc_collect(2, &r);
  ASSERT_HOOKS_OK();
  ASSERT_EQ(n, 3);
  ASSERT_EQ(r.collected, 3);
  ASSERT_EQ(refgc_gc_garbage_count(), 3);
  ASSERT(refgc_gc_garbage_at(3) == NULL);
  gnode *abc[3] = {a, b, c};
  for (int i = 0; i < 3; i++) {
    ASSERT_GE(garbage_index(&abc[i]->ob), 0);
    ASSERT_EQ(abc[i]->magic, G_MAGIC);
    ASSERT_EQ(abc[i]->payload, (int64_t)abc[i]->id * 7 + 3);
    ASSERT_EQ(G.fin[i], 1); /* finalized (PEP 442), not cleared, not released */
    ASSERT_EQ(G.clr[i], 0);
    ASSERT_EQ(G.rel[i], 0);
    ASSERT_EQ(refgc_refcount(&abc[i]->ob), 2); /* the list's and the previous member's */
  }
  ASSERT_PTR_EQ(a->ref[0], &b->ob);
  ASSERT_PTR_EQ(b->ref[0], &c->ob);
  ASSERT_PTR_EQ(c->ref[0], &a->ob);
  ASSERT_EQ(wcb_calls[4], 1);
  ASSERT(refgc_weakref_get(w) == NULL);
  refgc_decref(w);
  /* collections leave the saved objects alone (the list holds them) */
  ASSERT_EQ(refgc_collect(2, NULL), 0);
  refgc_gc_set_debug(0);
  /* clearing the list drops its references: the cycle is garbage again, and the next
   * collection frees it without finalizing it again */
  refgc_gc_garbage_clear();
  ASSERT_EQ(refgc_gc_garbage_count(), 0);
  for (int i = 0; i < 3; i++) ASSERT_EQ(refgc_refcount(&abc[i]->ob), 1);
  n = refgc_collect(2, &r);
  ASSERT_EQ(n, 3);
  ASSERT_EQ(r.collected, 3);
  for (int i = 0; i < 3; i++) {
    ASSERT_EQ(G.fin[i], 1);
    ASSERT_EQ(G.rel[i], 1);
  }

  /* uncollectable: a cycle of objects without a clear hook */
  gnode *x = g_new(T_gnc), *y = g_new(T_gnc);
  uint32_t xid = x->id, yid = y->id;
  g_ref(x, 0, y);
  g_ref(y, 0, x);
  refgc_decref(&x->ob);
  refgc_decref(&y->ob);
  n = refgc_collect(2, &r);
  ASSERT_HOOKS_OK();
  ASSERT_EQ(n, 2);
  ASSERT_EQ(r.uncollectable, 2);
  ASSERT_EQ(r.collected, 0);
  ASSERT_EQ(refgc_gc_garbage_count(), 2);
  ASSERT_GE(garbage_index(&x->ob), 0);
  ASSERT_GE(garbage_index(&y->ob), 0);
  ASSERT_EQ(G.fin[xid], 1);
  ASSERT_EQ(G.fin[yid], 1);
  ASSERT_EQ(G.rel[xid], 0);
  ASSERT_PTR_EQ(x->ref[0], &y->ob);
  ASSERT_PTR_EQ(y->ref[0], &x->ob);
  ASSERT_EQ(x->magic, G_MAGIC);
  ASSERT_EQ(refgc_collect(2, NULL), 0); /* held by the list now */
  ASSERT_EQ(refgc_gc_garbage_count(), 2);
  /* the program breaks the cycle by hand; clearing the list then frees both */
  refgc_object_t *t = x->ref[0];
  x->ref[0] = NULL;
  refgc_decref(t);
  refgc_gc_garbage_clear();
  ASSERT_EQ(G.rel[xid], 1);
  ASSERT_EQ(G.rel[yid], 1);
  ASSERT_EQ(G.fin[xid], 1);

  /* mixed: the uncollectable member is kept, the other is cleared; clearing the list frees
   * both */
  gnode *m = g_new(T_gnc), *k = g_new(T_gnf);
  uint32_t mid = m->id, kid = k->id;
  g_ref(m, 0, k);
  g_ref(k, 0, m);
  refgc_decref(&m->ob);
  refgc_decref(&k->ob);
  n = refgc_collect(2, &r);
  ASSERT_EQ(n, 2);
  ASSERT_EQ(r.uncollectable, 1);
  ASSERT_EQ(r.collected, 1);
  ASSERT_EQ(refgc_gc_garbage_count(), 1);
  ASSERT_PTR_EQ(refgc_gc_garbage_at(0), &m->ob);
  ASSERT_EQ(G.clr[kid], 1);
  ASSERT_EQ(G.rel[kid], 0); /* the uncollectable member still refers to it */
  ASSERT_EQ(refgc_refcount(&m->ob), 1);
  refgc_gc_garbage_clear();
  ASSERT_EQ(G.rel[mid], 1);
  ASSERT_EQ(G.rel[kid], 1);
  ASSERT_HOOKS_OK();
  gc_restore();
}

/* ---- 10-million-object rings on a small stack ------------------------------------------------- */

typedef struct ringn_s {
  refgc_object_t ob;
  refgc_object_t *next;
} ringn;

static const refgc_type_t *T_ring;
static atomic_long ring_released;

static void ring_traverse(refgc_object_t *self, refgc_visit_fn *visit, void *arg) {
  visit(((ringn *)self)->next, arg);
}
static void ring_clear(refgc_object_t *self) {
  ringn *r = (ringn *)self;
  refgc_object_t *n = r->next;
  r->next = NULL;
  refgc_xdecref(n);
}
static void ring_release(refgc_object_t *self) {
  (void)self;
  atomic_fetch_add_explicit(&ring_released, 1, memory_order_relaxed);
}

/* A ring of n objects; the caller holds one reference to the first. Every `cand_every`
 * objects (0: never) the newest becomes a candidate root. */
static refgc_object_t *ring_build(size_t n, size_t cand_every) {
  refgc_object_t *first = refgc_new(T_ring);
  if (!first) return NULL;
  ringn *prev = (ringn *)first;
  for (size_t i = 1; i < n; i++) {
    ringn *x = (ringn *)refgc_new(T_ring);
    if (!x) return NULL;
    prev->next = &x->ob; /* owns x */
    prev = x;
    if (cand_every && i % cand_every == 0) {
      refgc_incref(&x->ob);
      refgc_decref(&x->ob);
    }
  }
  prev->next = first;
  refgc_incref(first);
  return first;
}

typedef struct deep_s {
  size_t n;
  int failed;
  char msg[256];
  double t[4];
  int autos;
} deep_t;

#define DEEP_CHECK(d, c)                                                                   \
  do {                                                                                     \
    if (!(c) && !(d)->failed) {                                                            \
      (d)->failed = 1;                                                                     \
      snprintf((d)->msg, sizeof (d)->msg, "line %d: %s", __LINE__, #c);                    \
    }                                                                                      \
  } while (0)

static void *deep_thread(void *arg) {
  deep_t *d = arg;
  size_t n = d->n;
  refgc_gc_result_t r;
  /* 1. explicit old collection (every tracked object) */
  double t0 = now_s();
  atomic_store(&ring_released, 0);
  refgc_object_t *first = ring_build(n, 0);
  DEEP_CHECK(d, first != NULL);
  if (!first) return NULL;
  refgc_decref(first);
  long k = refgc_collect(2, &r);
  DEEP_CHECK(d, k == (long)n);
  DEEP_CHECK(d, r.collected == n);
  DEEP_CHECK(d, atomic_load(&ring_released) == (long)n);
  d->t[0] = now_s() - t0;

  /* 2. the candidate path: a young collection over the whole held ring (from one candidate),
   * then the ring, dropped, found from its candidate root by a middle collection */
  t0 = now_s();
  atomic_store(&ring_released, 0);
  first = ring_build(n, 0);
  DEEP_CHECK(d, first != NULL);
  if (!first) return NULL;
  refgc_incref(first);
  refgc_decref(first); /* a candidate */
  k = refgc_collect(0, &r);
  DEEP_CHECK(d, k == 0);
  DEEP_CHECK(d, r.examined >= n);
  DEEP_CHECK(d, refgc_gc_generation(first) == 1);
  refgc_decref(first); /* the last program reference: a candidate of generation 1 */
  k = refgc_collect(0, &r); /* young: the candidate is older, nothing examined */
  DEEP_CHECK(d, k == 0);
  DEEP_CHECK(d, atomic_load(&ring_released) == 0);
  k = refgc_collect(1, &r);
  DEEP_CHECK(d, k == (long)n);
  DEEP_CHECK(d, atomic_load(&ring_released) == (long)n);
  d->t[1] = now_s() - t0;

  /* 3. automatic collections while a ring is built (candidates along the way: collections
   * over large parts of it, promotions), then the ring dropped and found (a middle collection
   * may stop at parts already old; the old collection does not) */
  t0 = now_s();
  atomic_store(&ring_released, 0);
  int starts = gc_starts;
  refgc_gc_set_threshold(20000, 2, 2);
  refgc_gc_enable();
  first = ring_build(n, 10007);
  refgc_gc_disable();
  d->autos = gc_starts - starts;
  DEEP_CHECK(d, first != NULL);
  if (!first) return NULL;
  DEEP_CHECK(d, atomic_load(&ring_released) == 0);
  refgc_decref(first);
  k = refgc_collect(1, &r);
  if (k != (long)n) k = refgc_collect(2, &r); /* parts promoted to the old generation */
  DEEP_CHECK(d, atomic_load(&ring_released) == (long)n);
  d->t[2] = now_s() - t0;
  return NULL;
}

static void ring_type_init(void) {
  if (T_ring) return;
  refgc_type_spec_t s = {.version = REFGC_TYPE_SPEC_VERSION,
                         .name = "gc.ring",
                         .basic_size = sizeof(ringn),
                         .traverse = ring_traverse,
                         .clear = ring_clear,
                         .release = ring_release};
  T_ring = refgc_type_register(&s);
}

TEST(deep_rings_collected_on_a_small_stack) {
  gc_reset();
  ring_type_init();
  ASSERT_EQ(refgc_gc_callback_add(count_gc_cb, NULL), 0);
  refgc_gc_set_serialized(1); /* the collecting thread is not the only one that used objects */
  deep_t d;
  memset(&d, 0, sizeof d);
  d.n = (GC_ASAN ? 1000000u : 10000000u) * (size_t)test_scale();
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  ASSERT_EQ(pthread_attr_setstacksize(&attr, 256 * 1024), 0);
  pthread_t t;
  ASSERT_EQ(pthread_create(&t, &attr, deep_thread, &d), 0);
  pthread_join(t, NULL);
  pthread_attr_destroy(&attr);
  refgc_gc_callback_remove(count_gc_cb, NULL);
  printf("# deep: %zu-object rings: exhaustive %.1f s, candidates %.1f s, automatic %.1f s "
         "(%d automatic collections)\n",
         d.n, d.t[0], d.t[1], d.t[2], d.autos);
  if (d.failed) TEST_FAIL("%s", d.msg);
  ASSERT_EQ(type_live(T_ring), 0);
  gc_restore();
}

/* ---- introspection ---------------------------------------------------------------------------- */

static int stop_visitor(refgc_object_t *o, void *arg) {
  (void)o;
  (*(size_t *)arg)++;
  return 1;
}

static void sample_cb(int phase, const refgc_gc_result_t *info, void *arg) {
  (void)phase;
  (void)info;
  (void)arg;
}

TEST(introspection) {
  gc_reset();
  g_reset();
  /* tracked or not */
  refgc_object_t *leaf = refgc_new(T_gleaf);
  ASSERT(!refgc_gc_is_tracked(leaf));
  ASSERT_EQ(refgc_gc_generation(leaf), -1);
  gnode *a = g_new(T_gnf), *b = g_new(T_gnf), *c = g_new(T_gnf);
  ASSERT(refgc_gc_is_tracked(&a->ob));
  ASSERT_EQ(refgc_gc_generation(&a->ob), 0);
  /* a -> b, a -> c, c -> b, b -> leaf */
  g_ref(a, 0, b);
  g_ref(a, 1, c);
  g_ref(c, 0, b);
  refgc_incref(leaf);
  b->ref[0] = leaf;
  refgc_object_t *objs[4] = {&a->ob, &b->ob, &c->ob, leaf};
  find_ctx fc;
  find_init(&fc, objs, 4);
  ASSERT_EQ(refgc_gc_get_referrers(&b->ob, find_visitor, &fc), 2);
  ASSERT_EQ(fc.seen[0], 1);
  ASSERT_EQ(fc.seen[2], 1);
  ASSERT_EQ(fc.others, 0);
  find_init(&fc, objs, 4);
  ASSERT_EQ(refgc_gc_get_referrers(&a->ob, find_visitor, &fc), 0);
  find_init(&fc, objs, 4);
  ASSERT_EQ(refgc_gc_get_referrers(leaf, find_visitor, &fc), 1);
  ASSERT_EQ(fc.seen[1], 1);
  find_init(&fc, objs, 4);
  ASSERT_EQ(refgc_gc_get_referents(&a->ob, find_visitor, &fc), 2);
  ASSERT_EQ(fc.seen[1], 1);
  ASSERT_EQ(fc.seen[2], 1);
  ASSERT_EQ(fc.others, 0);
  find_init(&fc, objs, 4);
  ASSERT_EQ(refgc_gc_get_referents(&b->ob, find_visitor, &fc), 1);
  ASSERT_EQ(fc.seen[3], 1);
  find_init(&fc, objs, 4);
  ASSERT_EQ(refgc_gc_get_referents(leaf, find_visitor, &fc), 0);
  size_t stops = 0;
  ASSERT_EQ(refgc_gc_get_referents(&a->ob, stop_visitor, &stops), 1);
  ASSERT_EQ(stops, 1);
  /* objects per generation */
  find_init(&fc, objs, 4);
  refgc_gc_get_objects(0, find_visitor, &fc);
  ASSERT_EQ(fc.seen[0] + fc.seen[1] + fc.seen[2], 3);
  ASSERT_EQ(fc.seen[3], 0); /* leaves are not tracked */
  for (int g = 1; g <= 2; g++) {
    find_init(&fc, objs, 4);
    refgc_gc_get_objects(g, find_visitor, &fc);
    ASSERT_EQ(find_count(&fc), 0);
  }
  find_init(&fc, objs, 4);
  refgc_gc_get_objects(-1, find_visitor, &fc);
  ASSERT_EQ(find_count(&fc), 3);
  stops = 0;
  ASSERT_EQ(refgc_gc_get_objects(-1, stop_visitor, &stops), 1);
  ASSERT_EQ(refgc_gc_get_objects(3, count_visitor, &stops), 0);
  ASSERT_EQ(refgc_gc_get_objects(-2, count_visitor, &stops), 0);
  ASSERT_EQ(refgc_gc_get_objects(0, NULL, NULL), 0);
  /* an explicit old collection promotes every survivor to generation 2 */
  ASSERT_EQ(refgc_collect(2, NULL), 0);
  for (int i = 0; i < 3; i++) ASSERT_EQ(refgc_gc_generation(objs[i]), 2);
  find_init(&fc, objs, 4);
  refgc_gc_get_objects(2, find_visitor, &fc);
  ASSERT_EQ(find_count(&fc), 3);
  find_init(&fc, objs, 4);
  refgc_gc_get_objects(0, find_visitor, &fc);
  ASSERT_EQ(find_count(&fc), 0);
  /* a young candidate that survives a young collection moves to generation 1 (a candidate
   * must refer to a tracked object to be examined: one that refers to none cannot be part of
   * a cycle, and is dropped unexamined) */
  gnode *d = g_new(T_gnf);
  g_own(d, 0, &g_new(T_gnf)->ob);
  refgc_incref(&d->ob);
  refgc_decref(&d->ob);
  ASSERT_EQ(refgc_collect(0, NULL), 0);
  ASSERT_EQ(refgc_gc_generation(&d->ob), 1);
  refgc_object_t *dd = &d->ob;
  find_init(&fc, &dd, 1);
  refgc_gc_get_objects(1, find_visitor, &fc);
  ASSERT_EQ(fc.seen[0], 1);

  /* counts */
  size_t cnt[3], cnt2[3];
  refgc_collect(0, NULL);
  refgc_gc_get_count(cnt);
  ASSERT_EQ(cnt[0], 0);
  gnode *five[5];
  for (int i = 0; i < 5; i++) five[i] = g_new(T_gnf);
  refgc_object_t *leaf2 = refgc_new(T_gleaf);
  refgc_gc_get_count(cnt2);
  ASSERT_EQ(cnt2[0], 5); /* tracked objects only */
  refgc_decref(&five[4]->ob);
  refgc_gc_get_count(cnt2);
  ASSERT_EQ(cnt2[0], 4); /* net of releases */
  refgc_decref(leaf2);
  refgc_collect(0, NULL);
  refgc_gc_get_count(cnt2);
  ASSERT_EQ(cnt2[0], 0);
  ASSERT_EQ(cnt2[1], cnt[1] + 1);
  refgc_collect(1, NULL);
  refgc_gc_get_count(cnt);
  ASSERT_EQ(cnt[1], 0);
  ASSERT_EQ(cnt[2], cnt2[2] + 1);
  refgc_collect(2, NULL);
  refgc_gc_get_count(cnt);
  ASSERT_EQ(cnt[1], 0);
  ASSERT_EQ(cnt[2], 0);
  for (int i = 0; i < 4; i++) refgc_decref(&five[i]->ob);

  /* thresholds */
  size_t th[3];
  refgc_gc_get_threshold(th);
  ASSERT_EQ(th[0], 2000);
  ASSERT_EQ(th[1], 10);
  ASSERT_EQ(th[2], 10);
  refgc_gc_set_threshold(123, 4, 5);
  refgc_gc_get_threshold(th);
  ASSERT_EQ(th[0], 123);
  ASSERT_EQ(th[1], 4);
  ASSERT_EQ(th[2], 5);
  refgc_gc_set_threshold(2000, 10, 10);

  /* statistics and callbacks */
  ASSERT_EQ(refgc_gc_callback_add(count_gc_cb, NULL), 0);
  for (int g = 0; g < 3; g++) {
    refgc_gc_gen_stats_t before[3], after[3];
    gnode *p = g_new(T_gnf), *q = g_new(T_gnf);
    g_ref(p, 0, q);
    g_ref(q, 0, p);
    refgc_decref(&p->ob);
    refgc_decref(&q->ob);
    refgc_gc_get_stats(before);
    int starts = gc_starts, stops0 = gc_stops;
    refgc_gc_result_t r;
    long n = refgc_collect(g, &r);
    refgc_gc_get_stats(after);
    ASSERT_EQ(n, 2);
    ASSERT_EQ(r.generation, g);
    ASSERT_EQ(r.collected, 2);
    ASSERT_GE(r.examined, 2);
    ASSERT(r.seconds >= 0);
    ASSERT_EQ(gc_starts, starts + 1);
    ASSERT_EQ(gc_stops, stops0 + 1);
    ASSERT_EQ(gc_last_gen, g);
    ASSERT_EQ(gc_last_stop.generation, r.generation);
    ASSERT_EQ(gc_last_stop.examined, r.examined);
    ASSERT_EQ(gc_last_stop.unreachable, r.unreachable);
    ASSERT_EQ(gc_last_stop.collected, r.collected);
    ASSERT_EQ(gc_last_stop.uncollectable, r.uncollectable);
    ASSERT_EQ(gc_last_stop.resurrected, r.resurrected);
    for (int h = 0; h < 3; h++) {
      ASSERT_EQ(after[h].collections, before[h].collections + (h == g));
      ASSERT_EQ(after[h].collected, before[h].collected + (h == g ? 2 : 0));
      ASSERT_EQ(after[h].examined, before[h].examined + (h == g ? r.examined : 0));
      ASSERT(after[h].max_pause >= before[h].max_pause);
      ASSERT(after[h].seconds >= before[h].seconds);
    }
  }
  refgc_gc_gen_stats_t st[3];
  refgc_gc_get_stats(st);
  ASSERT_GE(st[2].objects, 4); /* a, b, c, d */
  refgc_gc_callback_remove(count_gc_cb, NULL);
  ASSERT_EQ(refgc_gc_callback_add(NULL, NULL), REFGC_EINVAL);
  ASSERT_EQ(refgc_gc_callback_remove(sample_cb, NULL), REFGC_EINVAL);
  int added = 0;
  for (intptr_t i = 0; i < 32; i++) {
    int rc = refgc_gc_callback_add(sample_cb, (void *)i);
    if (rc != 0) {
      ASSERT_EQ(rc, REFGC_ENOMEM);
      break;
    }
    added++;
  }
  ASSERT_EQ(added, 16);
  for (intptr_t i = 0; i < added; i++) ASSERT_EQ(refgc_gc_callback_remove(sample_cb, (void *)i), 0);

  /* enable / disable */
  refgc_gc_enable();
  ASSERT(refgc_gc_isenabled());
  refgc_gc_disable();
  ASSERT(!refgc_gc_isenabled());

  /* bad generations */
  ASSERT_EQ(refgc_collect(-1, NULL), REFGC_EINVAL);
  ASSERT_EQ(refgc_collect(3, NULL), REFGC_EINVAL);

  /* debug flags */
  refgc_gc_set_debug(REFGC_GC_DEBUG_STATS);
  ASSERT_EQ(refgc_gc_get_debug(), REFGC_GC_DEBUG_STATS);
  refgc_gc_set_debug(0);

  /* the report */
  FILE *f = tmpfile();
  ASSERT(f != NULL);
  refgc_gc_print_stats(f);
  long len = ftell(f);
  ASSERT_GT(len, 0);
  rewind(f);
  char text[4096];
  size_t got = fread(text, 1, sizeof text - 1, f);
  text[got] = 0;
  fclose(f);
  ASSERT_STR_CONTAINS(text, "refgc cycle collector");
  ASSERT_STR_CONTAINS(text, "disabled");
  ASSERT_STR_CONTAINS(text, "collections");
  ASSERT_STR_CONTAINS(text, "garbage list");

  for (int i = 0; i < 3; i++) refgc_decref(objs[i]);
  refgc_decref(&d->ob);
  refgc_decref(leaf);
  ASSERT_EQ(G.rel[0], 1);
  ASSERT_EQ(G.rel[1], 1);
  ASSERT_EQ(G.rel[2], 1);
  gc_restore();
}

/* ---- candidate roots and generations ---------------------------------------------------------- */

TEST(candidate_roots_and_generations) {
  gc_reset();
  g_reset();
  refgc_gc_result_t r;
  /* a cycle built by ownership transfer, then a decref to non-zero: a young collection
   * finds it at once */
  gnode *a = g_new(T_gnf), *b = g_new(T_gnf);
  uint32_t aid = a->id, bid = b->id;
  g_own(a, 0, &b->ob);
  g_ref(b, 0, a);
  refgc_decref(&a->ob);
  long n = refgc_collect(0, &r);
  ASSERT_EQ(n, 2);
  ASSERT_EQ(G.rel[aid], 1);
  ASSERT_EQ(G.rel[bid], 1);

  /* a cycle through an old object and a young one */
  gnode *o = g_new(T_gnf);
  uint32_t oid = o->id;
  ASSERT_EQ(refgc_collect(2, NULL), 0);
  ASSERT_EQ(refgc_gc_generation(&o->ob), 2);
  gnode *y = g_new(T_gnf);
  uint32_t yid = y->id;
  g_own(o, 0, &y->ob);
  g_ref(y, 0, o);
  refgc_decref(&o->ob); /* the program lets go: the old member is a candidate */
  refgc_incref(&y->ob);
  refgc_decref(&y->ob); /* and the young one too */
  /* young and middle collections see the old object's reference as external */
  n = refgc_collect(0, &r);
  ASSERT_EQ(n, 0);
  ASSERT_EQ(G.rel[yid], 0);
  ASSERT_EQ(refgc_gc_generation(&y->ob), 1);
  n = refgc_collect(1, &r);
  ASSERT_EQ(n, 0);
  ASSERT_EQ(G.rel[yid], 0);
  ASSERT_EQ(G.rel[oid], 0);
  ASSERT_EQ(o->magic, G_MAGIC);
  ASSERT_PTR_EQ(o->ref[0], &y->ob);
  ASSERT_EQ(refgc_refcount(&o->ob), 1);
  ASSERT_EQ(refgc_refcount(&y->ob), 1);
  /* the old collection finds it */
  n = refgc_collect(2, &r);
  ASSERT_EQ(n, 2);
  ASSERT_EQ(G.rel[yid], 1);
  ASSERT_EQ(G.rel[oid], 1);

  /* an automatic old collection works from candidate roots: many old cycles dropped */
  enum { K = 64 };
  gnode *cyc[K];
  for (int i = 0; i < K; i++) {
    gnode *p = g_new(T_gnf), *q = g_new(T_gnf);
    g_own(p, 0, &q->ob);
    g_ref(q, 0, p);
    cyc[i] = p;
  }
  uint32_t first_cyc = cyc[0]->id;
  ASSERT_EQ(refgc_collect(2, NULL), 0);
  for (int i = 0; i < K; i++) ASSERT_EQ(refgc_gc_generation(&cyc[i]->ob), 2);
  for (int i = 0; i < K; i++) refgc_decref(&cyc[i]->ob);
  ASSERT_EQ(refgc_gc_callback_add(count_gc_cb, NULL), 0);
  refgc_gc_set_threshold(8, 1, 1);
  refgc_gc_enable();
  int saw_old = 0, made = 0;
  gnode *keep[2000];
  while (made < 2000) {
    keep[made++] = g_new(T_gnf);
    if (gc_stops && gc_last_stop.generation == 2 && gc_last_stop.collected >= 2 * K) {
      saw_old = 1;
      break;
    }
  }
  refgc_gc_disable();
  refgc_gc_callback_remove(count_gc_cb, NULL);
  ASSERT(saw_old);
  for (uint32_t id = first_cyc; id < first_cyc + 2 * K; id++) ASSERT_EQ(G.rel[id], 1);
  for (int i = 0; i < made; i++) refgc_decref(&keep[i]->ob);
  ASSERT_HOOKS_OK();
  gc_restore();
}

/* ---- the threading rule ----------------------------------------------------------------------- */

static pthread_mutex_t th_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t th_cv = PTHREAD_COND_INITIALIZER;
static int th_state;

static void th_wait_for(int state) {
  pthread_mutex_lock(&th_mu);
  while (th_state < state) pthread_cond_wait(&th_cv, &th_mu);
  pthread_mutex_unlock(&th_mu);
}

static void th_set(int state) {
  pthread_mutex_lock(&th_mu);
  th_state = state;
  pthread_cond_broadcast(&th_cv);
  pthread_mutex_unlock(&th_mu);
}

static void *user_thread(void *arg) {
  const refgc_type_t *t = arg;
  refgc_object_t *o = refgc_new(t); /* this thread has used objects */
  refgc_decref(o);
  th_set(1);
  th_wait_for(2);
  return NULL;
}

static void make_garbage_pairs(int pairs) {
  for (int i = 0; i < pairs; i++) {
    gnode *p = g_new(T_gnf), *q = g_new(T_gnf);
    g_own(p, 0, &q->ob);
    g_ref(q, 0, p);
    refgc_decref(&p->ob);
  }
}

TEST(threading_rule_pauses_automatic_collection) {
  gc_reset();
  g_reset();
  ASSERT_EQ(refgc_gc_callback_add(count_gc_cb, NULL), 0);
  refgc_object_t *mine = refgc_new(T_gleaf); /* the main thread has used objects */
  refgc_decref(mine);
  th_state = 0;
  pthread_t t;
  ASSERT_EQ(pthread_create(&t, NULL, user_thread, (void *)T_gleaf), 0);
  th_wait_for(1);
  refgc_gc_set_threshold(5, 1, 1);
  refgc_gc_enable();
  refgc_gc_gen_stats_t before[3], after[3];
  refgc_gc_get_stats(before);
  int starts = gc_starts;
  make_garbage_pairs(1000);
  refgc_gc_get_stats(after);
  for (int g = 0; g < 3; g++) ASSERT_EQ(after[g].collections, before[g].collections);
  ASSERT_EQ(gc_starts, starts);
  for (uint32_t id = 0; id < G.next_id; id++) ASSERT_EQ(G.rel[id], 0);
  /* a program that serialises its object use may be collected behind its back */
  refgc_gc_set_serialized(1);
  make_garbage_pairs(10);
  ASSERT_GT(gc_starts, starts);
  refgc_gc_set_serialized(0);
  starts = gc_starts;
  make_garbage_pairs(10);
  ASSERT_EQ(gc_starts, starts);
  /* an explicit collection is the program's own call: it runs */
  refgc_gc_disable();
  ASSERT_GE(refgc_collect(2, NULL), 0);
  for (uint32_t id = 0; id < G.next_id; id++) ASSERT_EQ(G.rel[id], 1);
  /* once the other thread is gone, automatic collection resumes */
  th_set(2);
  pthread_join(t, NULL);
  refgc_gc_enable();
  starts = gc_starts;
  make_garbage_pairs(10);
  ASSERT_GT(gc_starts, starts);
  refgc_gc_disable();
  refgc_collect(2, NULL);
  for (uint32_t id = 0; id < G.next_id; id++) ASSERT_EQ(G.rel[id], 1);
  refgc_gc_callback_remove(count_gc_cb, NULL);
  ASSERT_HOOKS_OK();
  gc_restore();
}

/* ---- hooks that run outside a collection ------------------------------------------------------ */

/* refgc/gc.h: "A collection started from inside a finalizer, a weak reference callback, a clear
 * or release hook or a traverse hook ... is refused (REFGC_EBUSY)." Here the hooks run in a
 * plain reference-counting release, with no collection running. */
static long outside_rc[4];
static int outside_armed;

static void outside_fin(gnode *n) {
  (void)n;
  if (outside_armed) outside_rc[0] = refgc_collect(2, NULL);
}
static void outside_release(gnode *n) {
  (void)n;
  if (outside_armed) outside_rc[1] = refgc_collect(1, NULL);
}
static void outside_traverse(gnode *n) {
  (void)n;
  if (outside_armed == 2) outside_rc[2] = refgc_collect(0, NULL);
}
static void outside_cb(refgc_object_t *w, void *arg) {
  (void)w;
  (void)arg;
  outside_rc[3] = refgc_collect(2, NULL);
}

TEST(collection_from_hooks_outside_a_collection_is_refused) {
  gc_reset();
  g_reset();
  for (int i = 0; i < 4; i++) outside_rc[i] = 1;
  gnode *a = g_new(T_g);
  refgc_object_t *w = refgc_weakref_new(&a->ob, outside_cb, NULL);
  G.on_fin = outside_fin;
  G.on_release = outside_release;
  outside_armed = 1;
  refgc_decref(&a->ob); /* finalizer, release hook and weak reference callback run here */
  gnode *b = g_new(T_gnf);
  G.on_traverse = outside_traverse;
  outside_armed = 2;
  refgc_decref(&b->ob); /* its traverse hook runs to drop its references */
  outside_armed = 0;
  G.on_fin = NULL;
  G.on_release = NULL;
  G.on_traverse = NULL;
  refgc_decref(w);
  ASSERT_HOOKS_OK();
  ASSERT_EQ(G.rel[0], 1);
  ASSERT_EQ(G.rel[1], 1);
  ASSERT_EQ(outside_rc[0], REFGC_EBUSY); /* from a finalizer */
  ASSERT_EQ(outside_rc[1], REFGC_EBUSY); /* from a release hook */
  ASSERT_EQ(outside_rc[2], REFGC_EBUSY); /* from a traverse hook */
  ASSERT_EQ(outside_rc[3], REFGC_EBUSY); /* from a weak reference callback */
  gc_restore();
}

/* PEP 442 order, step 1 before step 2, also for a collection that starts while a weak
 * reference callback runs (an allocation in the callback reaching the threshold). */
static uint32_t order_seq, order_cb_seq, order_fin_seq, order_rel_seq;
static int order_nested;

static void order_inner_cb(refgc_object_t *w, void *arg) {
  (void)w;
  (void)arg;
  order_cb_seq = ++order_seq;
}
static void order_fin(gnode *n) {
  if (n->id == 0) order_fin_seq = ++order_seq;
}
static void order_rel(gnode *n) {
  if (n->id == 0) order_rel_seq = ++order_seq;
}
static void order_outer_cb(refgc_object_t *w, void *arg) {
  (void)w;
  (void)arg;
  int starts = gc_starts;
  for (int i = 0; i < 50 && gc_starts == starts; i++) {
    gnode *t = g_new(T_gnf);
    refgc_incref(&t->ob);
    refgc_decref(&t->ob); /* a candidate: gives the automatic collection work */
    refgc_decref(&t->ob);
  }
  order_nested = gc_starts - starts;
}

TEST(weakref_callbacks_run_before_finalizers_in_a_nested_collection) {
  gc_reset();
  g_reset();
  order_seq = order_cb_seq = order_fin_seq = order_rel_seq = 0;
  order_nested = 0;
  ASSERT_EQ(refgc_gc_callback_add(count_gc_cb, NULL), 0);
  /* a garbage cycle (ids 0, 1) with a held weak reference that has a callback */
  gnode *a = g_new(T_g), *b = g_new(T_g);
  g_ref(a, 0, b);
  g_ref(b, 0, a);
  refgc_object_t *w1 = refgc_weakref_new(&a->ob, order_inner_cb, NULL);
  refgc_decref(&a->ob);
  refgc_decref(&b->ob);
  /* an object whose weak reference callback allocates */
  gnode *t = g_new(T_gnf);
  refgc_object_t *w2 = refgc_weakref_new(&t->ob, order_outer_cb, NULL);
  G.on_fin = order_fin;
  G.on_release = order_rel;
  refgc_gc_set_threshold(5, 1, 1);
  refgc_gc_enable();
  refgc_decref(&t->ob);
  refgc_gc_disable();
  G.on_fin = NULL;
  G.on_release = NULL;
  if (!order_nested) {
    /* the library refused to collect inside the callback: the cycle is still there */
    ASSERT_EQ(G.fin[0], 0);
    ASSERT_EQ(refgc_collect(2, NULL), 2);
  } else {
    ASSERT_EQ(G.fin[0], 1);
    ASSERT_GT(order_cb_seq, 0);
    if (order_cb_seq > order_fin_seq)
      TEST_FAIL("the callback of a weak reference to garbage ran after the garbage's finalizer "
                "(callback #%u, finalizer #%u, release #%u): a collection that starts inside "
                "a weak reference callback defers the callbacks of step 1",
                (unsigned)order_cb_seq, (unsigned)order_fin_seq, (unsigned)order_rel_seq);
  }
  ASSERT(refgc_weakref_get(w1) == NULL);
  refgc_decref(w1);
  refgc_decref(w2);
  refgc_gc_callback_remove(count_gc_cb, NULL);
  ASSERT_HOOKS_OK();
  gc_restore();
}

/* ---- large objects ---------------------------------------------------------------------------- */

typedef struct gvec_s {
  refgc_object_t ob;
  uint64_t magic;
  size_t n;
  refgc_object_t *items[];
} gvec;

static const refgc_type_t *T_vec;
static int vec_released;

static void vec_traverse(refgc_object_t *self, refgc_visit_fn *visit, void *arg) {
  gvec *v = (gvec *)self;
  for (size_t i = 0; i < v->n; i++) visit(v->items[i], arg);
}
static void vec_clear(refgc_object_t *self) {
  gvec *v = (gvec *)self;
  for (size_t i = 0; i < v->n; i++) {
    refgc_object_t *x = v->items[i];
    v->items[i] = NULL;
    refgc_xdecref(x);
  }
}
static void vec_release(refgc_object_t *self) {
  HOOK_CHECK(((gvec *)self)->magic == G_MAGIC);
  vec_released++;
}

static gvec *vec_new(size_t n) {
  gvec *v = (gvec *)refgc_new_var(T_vec, n);
  if (!v) abort();
  v->magic = G_MAGIC;
  v->n = n;
  return v;
}

/* big1 -> big2 -> big1, big1 -> g -> big2; the caller holds big1. */
static gvec *large_cycle(gvec **big2_out, gnode **g_out) {
  enum { N = 40000 }; /* 320 KB of items: a large block */
  gvec *big1 = vec_new(N), *big2 = vec_new(N);
  gnode *g = g_new(T_gnf);
  big1->items[0] = &big2->ob;
  big2->items[N - 1] = &big1->ob;
  refgc_incref(&big1->ob);
  big1->items[N / 2] = &g->ob;
  g_ref(g, 0, (gnode *)(void *)big2);
  *big2_out = big2;
  *g_out = g;
  return big1;
}

TEST(large_objects_in_cycles) {
  gc_reset();
  g_reset();
  if (!T_vec) {
    refgc_type_spec_t s = {.version = REFGC_TYPE_SPEC_VERSION,
                           .name = "gc.vec",
                           .basic_size = sizeof(gvec),
                           .item_size = sizeof(refgc_object_t *),
                           .traverse = vec_traverse,
                           .clear = vec_clear,
                           .release = vec_release};
    T_vec = refgc_type_register(&s);
  }
  vec_released = 0;
  gvec *big2;
  gnode *g;
  refgc_gc_result_t r;
  /* found from a candidate root by a young collection */
  gvec *big1 = large_cycle(&big2, &g);
  ASSERT_GE(refgc_object_size(&big1->ob), 40000 * sizeof(void *));
  ASSERT(refgc_gc_is_tracked(&big1->ob));
  ASSERT_EQ(refgc_gc_generation(&big1->ob), 0);
  refgc_object_t *w = refgc_weakref_new(&big2->ob, NULL, NULL);
  refgc_object_t *objs[3] = {&big1->ob, &big2->ob, &g->ob};
  find_ctx fc;
  find_init(&fc, objs, 3);
  ASSERT_EQ(refgc_gc_get_referrers(&big2->ob, find_visitor, &fc), 2);
  ASSERT_EQ(fc.seen[0] + fc.seen[2], 2);
  find_init(&fc, objs, 3);
  refgc_gc_get_objects(0, find_visitor, &fc);
  ASSERT_EQ(find_count(&fc), 3);
  refgc_decref(&big1->ob);
  long n = refgc_collect(0, &r);
  ASSERT_EQ(n, 3);
  ASSERT_EQ(vec_released, 2);
  ASSERT(refgc_weakref_get(w) == NULL);
  refgc_decref(w);

  /* old: promoted, then dropped: only the old collection finds it (by walking the heap,
   * large blocks included) */
  big1 = large_cycle(&big2, &g);
  ASSERT_EQ(refgc_collect(2, NULL), 0);
  ASSERT_EQ(refgc_gc_generation(&big1->ob), 2);
  ASSERT_EQ(refgc_gc_generation(&big2->ob), 2);
  refgc_decref(&big1->ob);
  ASSERT_EQ(refgc_collect(0, NULL), 0);
  ASSERT_EQ(refgc_collect(1, NULL), 0);
  ASSERT_EQ(vec_released, 2);
  n = refgc_collect(2, &r);
  ASSERT_EQ(n, 3);
  ASSERT_EQ(vec_released, 4);

  /* frozen, then unfrozen */
  big1 = large_cycle(&big2, &g);
  refgc_decref(&big1->ob);
  ASSERT_EQ(refgc_gc_freeze(), 0);
  ASSERT_EQ(refgc_gc_generation(&big1->ob), 3);
  ASSERT_EQ(refgc_gc_generation(&big2->ob), 3);
  ASSERT_EQ(refgc_collect(2, NULL), 0);
  ASSERT_EQ(vec_released, 4);
  refgc_gc_unfreeze();
  ASSERT_EQ(refgc_gc_generation(&big1->ob), 2);
  n = refgc_collect(2, &r);
  ASSERT_EQ(n, 3);
  ASSERT_EQ(vec_released, 6);
  ASSERT_EQ(type_live(T_vec), 0);
  ASSERT_HOOKS_OK();
  gc_restore();
}

/* ---- garbage made by other threads ------------------------------------------------------------ */

typedef struct gthread_s {
  int pairs;
  int wait;         /* stay alive (idle) until told to go */
  gnode *handed;    /* a cycle member handed to the main thread (one reference) */
} gthread_t;

static void *garbage_thread(void *arg) {
  gthread_t *a = arg;
  make_garbage_pairs(a->pairs);
  if (a->handed == NULL) {
    gnode *p = g_new(T_gnf), *q = g_new(T_gnf);
    g_ref(p, 0, q);
    g_ref(q, 0, p);
    refgc_decref(&q->ob);
    a->handed = p; /* p <-> q, the main thread holds p */
  }
  if (a->wait) {
    th_set(1);
    th_wait_for(2);
  }
  return NULL;
}

TEST(garbage_made_by_other_threads) {
  gc_reset();
  g_reset();
  refgc_gc_result_t r;
  /* a thread that made garbage and exited: its candidates are not lost */
  gthread_t a = {100, 0, NULL};
  pthread_t t;
  ASSERT_EQ(pthread_create(&t, NULL, garbage_thread, &a), 0);
  pthread_join(t, NULL);
  uint32_t made = G.next_id;
  long n = refgc_collect(0, &r);
  ASSERT_EQ(n, 200);
  for (uint32_t id = 0; id < made; id++) ASSERT_EQ(G.rel[id], id < 200 ? 1 : 0);
  /* the cycle it handed over survived that collection (promoted to generation 1); dropped
   * here, it is a candidate of this thread */
  ASSERT_EQ(refgc_gc_generation(&a.handed->ob), 1);
  refgc_decref(&a.handed->ob);
  n = refgc_collect(1, &r);
  ASSERT_EQ(n, 2);
  for (uint32_t id = 0; id < made; id++) ASSERT_EQ(G.rel[id], 1);

  /* a live, idle thread's garbage: examined by a collection on this thread */
  g_reset();
  gthread_t b = {100, 1, NULL};
  th_state = 0;
  ASSERT_EQ(pthread_create(&t, NULL, garbage_thread, &b), 0);
  th_wait_for(1);
  made = G.next_id;
  n = refgc_collect(1, &r);
  ASSERT_EQ(n, 200);
  ASSERT_EQ(refgc_gc_generation(&b.handed->ob), 2); /* survivors promoted */
  refgc_decref(&b.handed->ob);
  n = refgc_collect(2, &r);
  ASSERT_EQ(n, 2);
  for (uint32_t id = 0; id < made; id++) ASSERT_EQ(G.rel[id], 1);
  th_set(2);
  pthread_join(t, NULL);
  ASSERT_HOOKS_OK();
  gc_restore();
}

/* ---- cases in a child process ----------------------------------------------------------------- */

/* Run this executable again with `cases` (NULL-terminated), the same seed and scale, and
 * `setenv` ("NAME=value") added to the environment. @return the child's exit status. */
static int run_child(const char *setenv_kv, const char *const *cases) {
  size_t n = 0, ncases = 0;
  while (environ[n]) n++;
  while (cases[ncases]) ncases++;
  char **env = calloc(n + 2, sizeof *env);
  char **argv = calloc(ncases + 4, sizeof *argv);
  if (!env || !argv) abort();
  size_t namelen = strcspn(setenv_kv, "=") + 1;
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (strncmp(environ[i], setenv_kv, namelen) != 0) env[k++] = environ[i];
  env[k++] = (char *)setenv_kv;
  env[k] = NULL;
  char seed[64], scale[64];
  snprintf(seed, sizeof seed, "--seed=%" PRIu64, test_seed());
  snprintf(scale, sizeof scale, "--scale=%ld", test_scale());
  argv[0] = "test_gc";
  argv[1] = seed;
  argv[2] = scale;
  for (size_t i = 0; i < ncases; i++) argv[3 + i] = (char *)cases[i];
  argv[3 + ncases] = NULL;
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid == 0) {
    execve("/proc/self/exe", argv, env);
    _exit(127);
  }
  int status = 0;
  int waited = pid > 0 && waitpid(pid, &status, 0) == pid;
  free(env);
  free(argv);
  if (!waited || !WIFEXITED(status)) return -1;
  return WEXITSTATUS(status);
}

/* REFGC_DEBUG=1 (checked counts, quarantine) is chosen when the process starts: the cases that
 * depend on candidate roots run again in a child process in debug mode. */
TEST(collector_cases_in_debug_mode) {
  const char *dbg = getenv("REFGC_DEBUG");
  if (dbg && strcmp(dbg, "0") != 0) return; /* this process is the debug-mode run */
  static const char *const cases[] = {
      "resurrection_keeps_the_member_and_what_it_reaches",
      "finalizers_in_cycles_run_once_and_see_every_member_intact",
      "candidate_roots_and_generations",
      "introspection",
      "large_objects_in_cycles",
      "garbage_made_by_other_threads",
      "threading_rule_pauses_automatic_collection",
      "model_random_ops",
      NULL};
  int rc = run_child("REFGC_DEBUG=1", cases);
  if (rc != 0)
    TEST_FAIL("the cases above failed with REFGC_DEBUG=1 (exit status %d; see the child's "
              "output)", rc);
}

/* ---- a collection that runs out of memory ----------------------------------------------------- */

/* refgc_collect(): "REFGC_ENOMEM (the collector's working memory could not be allocated;
 * nothing was changed)". The set of a collection over many objects needs a large block, which
 * only the OS can give: refgc_test_os_fail_after(0) makes that fail. The collector keeps its
 * working arrays between collections, so this runs in a fresh child process, first an
 * exhaustive collection over N objects, then a young one over 4N. */
static void oom_round(int gen, int n_objects) {
  refgc_object_t **keep = malloc((size_t)n_objects * sizeof *keep);
  ASSERT(keep != NULL);
  /* a young garbage cycle, known by its candidate root */
  gnode *a = g_new(T_gnf), *b = g_new(T_gnf);
  uint32_t aid = a->id, bid = b->id;
  g_own(a, 0, &b->ob);
  g_ref(b, 0, a);
  refgc_decref(&a->ob);
  /* many live objects: a chain from keep[0] (young collections reach all of it from its
   * candidate root), each also held by the program */
  for (int i = 0; i < n_objects; i++) {
    keep[i] = refgc_new(T_ring);
    ASSERT(keep[i] != NULL);
    if (i) {
      ((ringn *)keep[i - 1])->next = keep[i];
      refgc_incref(keep[i]);
    }
  }
  refgc_incref(keep[0]);
  refgc_decref(keep[0]);
  refgc_test_os_fail_after(0);
  long rc = refgc_collect(gen, NULL);
  refgc_test_os_fail_after(-1);
  if (rc != REFGC_ENOMEM) {
    printf("# note: refgc_collect(%d) over %d objects did not run out of memory (%ld)\n", gen,
           n_objects, rc);
  } else {
    ASSERT_EQ(G.rel[aid], 0);
    ASSERT_EQ(refgc_refcount(keep[1]), 2);
    ASSERT_EQ(refgc_gc_generation(keep[0]), 0);
    /* nothing changed: the cycle's candidate root is still there for a young collection */
    long n = refgc_collect(0, NULL);
    if (n != 2)
      TEST_FAIL("after refgc_collect(%d) returned REFGC_ENOMEM, refgc_collect(0) found %ld "
                "objects, not the young cycle (2): the failed collection lost the candidate "
                "roots", gen, n);
    ASSERT_EQ(G.rel[aid], 1);
    ASSERT_EQ(G.rel[bid], 1);
  }
  for (int i = 0; i < n_objects; i++) refgc_decref(keep[i]);
  refgc_collect(2, NULL);
  free(keep);
  ASSERT_EQ(G.rel[aid], 1);
  ASSERT_EQ(type_live(T_ring), 0);
}

TEST(collection_out_of_memory_changes_nothing) {
  const char *child = getenv("REFGC_TEST_GC_CHILD");
  if (!child || strcmp(child, "oom") != 0) {
    static const char *const cases[] = {"collection_out_of_memory_changes_nothing", NULL};
    int rc = run_child("REFGC_TEST_GC_CHILD=oom", cases);
    if (rc != 0) TEST_FAIL("the case failed in its child process (exit status %d)", rc);
    return;
  }
  gc_reset();
  g_reset();
  ring_type_init();
  oom_round(2, 300000);
  oom_round(0, 1200000);
  ASSERT_HOOKS_OK();
  gc_restore();
}

/* ---- automatic collection: thresholds and the generations they pick --------------------------- */

TEST(automatic_collection_thresholds) {
  gc_reset();
  g_reset();
  ASSERT_EQ(refgc_gc_callback_add(count_gc_cb, NULL), 0);
  /* threshold 0: no automatic collection at all */
  refgc_gc_set_threshold(0, 1, 1);
  size_t th[3];
  refgc_gc_get_threshold(th);
  ASSERT_EQ(th[0], 0);
  refgc_gc_enable();
  int starts = gc_starts;
  make_garbage_pairs(3000);
  ASSERT_EQ(gc_starts, starts);
  refgc_gc_disable();
  ASSERT_EQ(refgc_collect(2, NULL), 6000);
  /* "every threshold1 young collections, generation 1 is collected too" (threshold2 large
   * enough that no old collection comes in): 0, 0, 1, 0, 0, 1, ... */
  refgc_gc_set_threshold(6, 3, 1000);
  int gens[12], ngens = 0;
  refgc_gc_enable();
  int last = gc_starts;
  for (int i = 0; i < 2000 && ngens < 12; i++) {
    make_garbage_pairs(1); /* every creation comes with a candidate: every trigger has work */
    if (gc_starts != last) {
      ASSERT_EQ(gc_starts, last + 1);
      last = gc_starts;
      gens[ngens++] = gc_last_gen;
    }
  }
  refgc_gc_disable();
  ASSERT_EQ(ngens, 12);
  for (int i = 0; i < 12; i++)
    if (gens[i] != (i % 3 == 2 ? 1 : 0))
      TEST_FAIL("automatic collection %d was of generation %d, expected %d", i, gens[i],
                i % 3 == 2 ? 1 : 0);
  refgc_collect(2, NULL);
  for (uint32_t id = 0; id < G.next_id; id++) ASSERT_EQ(G.rel[id], 1);
  refgc_gc_callback_remove(count_gc_cb, NULL);
  ASSERT_HOOKS_OK();
  gc_restore();
}

/* ---- REFGC_GC_DEBUG_STATS ---------------------------------------------------------------------- */

TEST(debug_stats_prints_a_line_per_collection) {
  gc_reset();
  g_reset();
  fflush(stderr);
  FILE *f = tmpfile();
  ASSERT(f != NULL);
  int saved = dup(2);
  ASSERT(saved >= 0);
  ASSERT(dup2(fileno(f), 2) >= 0);
  refgc_gc_set_debug(REFGC_GC_DEBUG_STATS);
  make_garbage_pairs(2);
  long n = refgc_collect(0, NULL);
  refgc_gc_set_debug(0);
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  ASSERT_EQ(n, 4);
  rewind(f);
  char text[1024];
  size_t got = fread(text, 1, sizeof text - 1, f);
  text[got] = 0;
  fclose(f);
  ASSERT_STR_CONTAINS(text, "generation 0");
  ASSERT_STR_CONTAINS(text, "4 unreachable");
  gc_restore();
}

/* ---- weak references made by finalizers ------------------------------------------------------- */

static refgc_object_t *finw[8];
static int finw_n, finw_cb_calls;

static void finw_cb(refgc_object_t *w, void *arg) {
  (void)arg;
  HOOK_CHECK(refgc_weakref_get(w) == NULL);
  finw_cb_calls++;
}

static void finw_fin(gnode *n) {
  /* a new weak reference to the object being finalized, with a callback, kept */
  if (finw_n < 8) finw[finw_n++] = refgc_weakref_new(&n->ob, finw_cb, NULL);
}

TEST(weakrefs_made_by_finalizers_during_a_collection) {
  gc_reset();
  g_reset();
  finw_n = finw_cb_calls = 0;
  gnode *a = g_new(T_g), *b = g_new(T_g);
  g_ref(a, 0, b);
  g_ref(b, 0, a);
  refgc_decref(&a->ob);
  refgc_decref(&b->ob);
  G.on_fin = finw_fin;
  refgc_gc_result_t r;
  long n = refgc_collect(2, &r);
  G.on_fin = NULL;
  ASSERT_HOOKS_OK();
  ASSERT_EQ(n, 2);
  ASSERT_EQ(r.collected, 2);
  ASSERT_EQ(G.rel[0], 1);
  ASSERT_EQ(G.rel[1], 1);
  ASSERT_EQ(finw_n, 2);
  /* the objects were released after those weak references were made: they read NULL and
   * their callbacks ran, once each */
  ASSERT_EQ(finw_cb_calls, 2);
  for (int i = 0; i < finw_n; i++) {
    ASSERT(finw[i] != NULL);
    ASSERT(refgc_weakref_get(finw[i]) == NULL);
    refgc_decref(finw[i]);
  }
  gc_restore();
}

/* ---- immortal and static objects -------------------------------------------------------------- */

static gnode static_node;

TEST(immortal_and_static_objects) {
  gc_reset();
  g_reset();
  /* an immortal object referred to by a garbage cycle: the cycle goes, it stays */
  gnode *imm = g_new(T_g);
  refgc_make_immortal(&imm->ob);
  ASSERT(!refgc_gc_is_tracked(&imm->ob));
  ASSERT_EQ(refgc_gc_generation(&imm->ob), -1);
  gnode *x = g_new(T_gnf), *y = g_new(T_gnf);
  g_ref(x, 0, y);
  g_ref(y, 0, x);
  g_ref(x, 1, imm);
  refgc_decref(&x->ob);
  refgc_decref(&y->ob);
  long n = refgc_collect(0, NULL);
  ASSERT_EQ(n, 2);
  ASSERT_EQ(G.rel[1], 1); /* x */
  ASSERT_EQ(G.rel[2], 1); /* y */
  ASSERT(refgc_is_immortal(&imm->ob));
  ASSERT_EQ(imm->magic, G_MAGIC);
  ASSERT_EQ(G.fin[0], 0);
  ASSERT_EQ(G.clr[0], 0);
  ASSERT_EQ(refgc_collect(2, NULL), 0);
  ASSERT_EQ(G.fin[0], 0);

  /* an immortal object in a cycle: what it refers to is kept (its references are outside the
   * collector's reach), for good */
  gnode *i2 = g_new(T_g), *z = g_new(T_gnf);
  uint32_t zid = z->id;
  g_ref(i2, 0, z);
  g_ref(z, 0, i2);
  refgc_make_immortal(&i2->ob);
  refgc_decref(&z->ob);
  ASSERT_EQ(refgc_collect(2, NULL), 0);
  ASSERT_EQ(G.rel[zid], 0);
  ASSERT_EQ(z->magic, G_MAGIC);

  /* a static object (not from the heap) referring to a young object, and in a cycle with
   * another: both kept */
  refgc_static_init(&static_node.ob, T_gnf);
  static_node.magic = G_MAGIC;
  static_node.id = G_MAX;
  gnode *h = g_new(T_gnf), *k = g_new(T_gnf);
  uint32_t hid = h->id, kid = k->id;
  static_node.ref[0] = &h->ob; /* takes the program's reference */
  g_ref(k, 0, &static_node);
  static_node.ref[1] = &k->ob;
  refgc_incref(&h->ob);
  refgc_decref(&h->ob); /* a candidate, referred to only by the static object */
  ASSERT_EQ(refgc_collect(0, NULL), 0);
  ASSERT_EQ(refgc_collect(1, NULL), 0);
  ASSERT_EQ(refgc_collect(2, NULL), 0);
  ASSERT_EQ(G.rel[hid], 0);
  ASSERT_EQ(G.rel[kid], 0);
  ASSERT_EQ(refgc_refcount(&h->ob), 1);
  ASSERT_EQ(refgc_refcount(&k->ob), 1);
  ASSERT(!refgc_gc_is_tracked(&static_node.ob));
  /* let go of them */
  static_node.ref[0] = static_node.ref[1] = NULL;
  refgc_decref(&h->ob);
  refgc_decref(&k->ob);
  ASSERT_EQ(G.rel[hid], 1);
  ASSERT_EQ(G.rel[kid], 1);
  ASSERT_HOOKS_OK();
  gc_restore();
}
