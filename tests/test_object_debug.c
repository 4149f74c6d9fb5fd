/* refgc — objects in debug mode (run with REFGC_DEBUG=1, set by CTest): every incref and decref
 * checks the object, released objects stay in a quarantine, and each misuse is reported to the
 * error handler with the type's name and, for heap objects, the allocation stack:
 * a decref or incref of a released object, a count dropping below zero, a traverse hook
 * visiting something that is not a live object, a pointer that is not an object. After each
 * case the heap check passes. Also: normal use reports nothing, free lists are bypassed, and
 * count changes are atomic (the header's promise for debug mode).
 *
 * Deliberate misuse goes through volatile pointers so that compilers do not warn about it.
 * In the ASan build, a case that reads freed memory is skipped: ASan stops that read itself.
 */
#define _POSIX_C_SOURCE 200809L /* fork, waitpid under -std=c11 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "refgc.h"
#include "test.h"

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

/* ---- an error handler that records ---------------------------------------------------------- */

static int err_calls, err_code, err_depth;
static const void *err_ptr;
static char err_msg[4096], err_func[256];

static void record_error(const refgc_error_info_t *info, void *arg) {
  (void)arg;
  err_calls++;
  err_code = info->code;
  err_ptr = info->ptr;
  err_depth = info->alloc_stack_depth;
  snprintf(err_msg, sizeof err_msg, "%s", info->message);
  snprintf(err_func, sizeof err_func, "%s", info->func ? info->func : "");
}

static void errors_reset(void) {
  refgc_set_error_handler(record_error, NULL);
  err_calls = err_code = err_depth = 0;
  err_ptr = NULL;
  err_msg[0] = err_func[0] = 0;
}

static void errors_done(void) { refgc_set_error_handler(NULL, NULL); }

/* ---- types ---------------------------------------------------------------------------------- */

typedef struct node_s {
  refgc_object_t ob;
  long id;
  refgc_object_t *a, *b;
} node;

#define OB(p) (&(p)->ob)

static long fin_calls, rel_calls;
static node *resurrect_into_keep;
static node *keep;

static void node_traverse(refgc_object_t *self, refgc_visit_fn *visit, void *arg) {
  node *n = (node *)self;
  visit(n->a, arg);
  visit(n->b, arg);
}
static void node_finalize(refgc_object_t *self) {
  fin_calls++;
  if ((node *)self == resurrect_into_keep) {
    refgc_incref(self);
    keep = (node *)self;
  }
}
static void node_release(refgc_object_t *self) {
  (void)self;
  rel_calls++;
}

static const refgc_type_t *T_node, *T_leaf, *T_filler, *T_fl, *T_vec;

typedef struct vec_s {
  refgc_object_t ob;
  size_t n;
  refgc_object_t *items[];
} vec;
static void vec_traverse(refgc_object_t *self, refgc_visit_fn *visit, void *arg) {
  vec *v = (vec *)self;
  for (size_t i = 0; i < v->n; i++) visit(v->items[i], arg);
}

static const refgc_type_t *reg(const char *name, uint32_t flags, size_t basic, size_t item,
                               refgc_traverse_fn *trav, uint32_t fl) {
  refgc_type_spec_t spec;
  memset(&spec, 0, sizeof spec);
  spec.version = REFGC_TYPE_SPEC_VERSION;
  spec.flags = flags;
  spec.name = name;
  spec.basic_size = basic;
  spec.item_size = item;
  spec.traverse = trav;
  spec.finalize = node_finalize;
  spec.release = node_release;
  spec.freelist_max = fl;
  const refgc_type_t *t = refgc_type_register(&spec);
  if (!t) abort();
  return t;
}

static void types_init(void) {
  if (T_node) return;
  T_node = reg("dbg_node", 0, sizeof(node), 0, node_traverse, 0);
  T_leaf = reg("dbg_leaf", REFGC_TYPE_LEAF, sizeof(node), 0, NULL, 0);
  T_filler = reg("dbg_filler", REFGC_TYPE_LEAF, 512, 0, NULL, 0);
  T_fl = reg("dbg_fl_node", 0, sizeof(node), 0, node_traverse, 16);
  T_vec = reg("dbg_vec", 0, sizeof(vec), sizeof(refgc_object_t *), vec_traverse, 16);
}

static void counters_reset(void) {
  fin_calls = rel_calls = 0;
  resurrect_into_keep = keep = NULL;
}

/* Exported (the tests link with -rdynamic) so that dladdr can name them in the stack. */
__attribute__((noinline)) node *objdebug_alloc_site(const refgc_type_t *t);
__attribute__((noinline)) node *objdebug_alloc_site(const refgc_type_t *t) {
  node *n = (node *)refgc_new(t);
  __asm__ volatile("" ::: "memory"); /* keep this frame */
  return n;
}
__attribute__((noinline)) void *objdebug_raw_alloc_site(size_t n);
__attribute__((noinline)) void *objdebug_raw_alloc_site(size_t n) {
  void *p = refgc_malloc(n);
  __asm__ volatile("" ::: "memory");
  return p;
}

static refgc_type_stats_t tstats(const refgc_type_t *t) {
  refgc_type_stats_t s;
  memset(&s, 0, sizeof s);
  refgc_type_stats(t, &s);
  return s;
}

/* ============================================================================================ */

TEST(debug_mode_is_on) { ASSERT_EQ(refgc_debug_mode(), 1); }

static int cb_calls;
static void cb_count(refgc_object_t *wr, void *arg) {
  (void)arg;
  if (refgc_weakref_get(wr) == NULL) cb_calls++;
}

TEST(normal_use_reports_nothing) {
  types_init();
  counters_reset();
  errors_reset();
  cb_calls = 0;
  /* a tree with weak references, a resurrection, variable-size objects, immortals */
  node *root = objdebug_alloc_site(T_node);
  node *kid = objdebug_alloc_site(T_node);
  root->a = OB(kid);
  kid->a = OB(objdebug_alloc_site(T_leaf));
  vec *v = (vec *)refgc_new_var(T_vec, 3);
  v->n = 3;
  for (int i = 0; i < 3; i++) v->items[i] = OB(objdebug_alloc_site(T_node));
  root->b = OB(v);
  refgc_object_t *w1 = refgc_weakref_new(OB(kid), cb_count, NULL);
  refgc_object_t *w2 = refgc_weakref_new(OB(root), cb_count, NULL);
  refgc_object_t *g = refgc_weakref_get(w1);
  ASSERT_PTR_EQ(g, OB(kid));
  ASSERT_EQ(refgc_refcount(OB(kid)), 2);
  refgc_decref(g);
  node *imm = objdebug_alloc_site(T_leaf);
  refgc_make_immortal(OB(imm));
  refgc_incref(OB(imm));
  kid->b = OB(imm);
  static node stat;
  refgc_static_init(OB(&stat), T_leaf);
  refgc_incref(OB(&stat));
  resurrect_into_keep = kid;
  refgc_decref(OB(root));
  ASSERT_PTR_EQ(keep, kid);
  ASSERT_EQ(refgc_refcount(OB(kid)), 1);
  ASSERT_EQ(refgc_is_finalized(OB(kid)), 1);
  ASSERT_EQ(cb_calls, 1); /* root's; kid was resurrected */
  keep = NULL;
  refgc_decref(OB(kid));
  ASSERT_EQ(cb_calls, 2);
  refgc_decref(w1);
  refgc_decref(w2);
  refgc_decref(OB(&stat));
  refgc_decref(OB(imm));
  ASSERT(refgc_is_immortal(OB(imm)));
  ASSERT_EQ(err_calls, 0);
  ASSERT_EQ(tstats(T_node).live, 0);
  ASSERT_EQ(tstats(T_vec).live, 0);
  ASSERT_EQ(tstats(T_leaf).live, 1); /* the immortal */
  errors_done();
  ASSERT_EQ(refgc_heap_check(), 0);
}

TEST(free_lists_bypassed) {
  types_init();
  errors_reset();
  refgc_type_stats_t s0 = tstats(T_fl);
  for (int i = 0; i < 20; i++) refgc_decref(OB(objdebug_alloc_site(T_fl)));
  for (size_t n = 0; n < 5; n++) refgc_decref(refgc_new_var(T_vec, n));
  refgc_type_stats_t s1 = tstats(T_fl);
  ASSERT_EQ(s1.cached, 0);
  ASSERT_EQ(s1.reused, s0.reused);
  ASSERT_EQ(s1.released, s0.released + 20);
  ASSERT_EQ(tstats(T_vec).cached, 0);
  ASSERT_EQ(err_calls, 0);
  errors_done();
  ASSERT_EQ(refgc_heap_check(), 0);
}

TEST(decref_of_released_object) {
  types_init();
  counters_reset();
  errors_reset();
  node *o = objdebug_alloc_site(T_node);
  refgc_object_t *volatile stale = OB(o);
  refgc_decref(stale); /* released */
  ASSERT_EQ(fin_calls, 1);
  ASSERT_EQ(rel_calls, 1);
  ASSERT_EQ(err_calls, 0);
  refgc_decref(stale); /* the bug */
  ASSERT_EQ(err_calls, 1);
  ASSERT_EQ(err_code, REFGC_EBADOBJECT);
  ASSERT_PTR_EQ(err_ptr, o);
  ASSERT_STR_CONTAINS(err_func, "refgc_decref");
  ASSERT_STR_CONTAINS(err_msg, "refgc_decref(");
  ASSERT_STR_CONTAINS(err_msg, "dbg_node");
  ASSERT_STR_CONTAINS(err_msg, "released");
  ASSERT_GT(err_depth, 0);
  ASSERT_STR_CONTAINS(err_msg, "block allocated at:");
  ASSERT_STR_CONTAINS(err_msg, "objdebug_alloc_site");
  /* nothing else happened: no second finalizer or release */
  ASSERT_EQ(fin_calls, 1);
  ASSERT_EQ(rel_calls, 1);
  refgc_decref(stale);
  ASSERT_EQ(err_calls, 2);
  ASSERT_EQ(rel_calls, 1);
  errors_done();
  ASSERT_EQ(refgc_heap_check(), 0);
}

TEST(incref_of_released_object) {
  types_init();
  counters_reset();
  errors_reset();
  node *o = objdebug_alloc_site(T_leaf);
  refgc_object_t *volatile stale = OB(o);
  refgc_decref(stale);
  refgc_incref(stale);
  ASSERT_EQ(err_calls, 1);
  ASSERT_EQ(err_code, REFGC_EBADOBJECT);
  ASSERT_PTR_EQ(err_ptr, o);
  ASSERT_STR_CONTAINS(err_func, "refgc_incref");
  ASSERT_STR_CONTAINS(err_msg, "dbg_leaf");
  ASSERT_STR_CONTAINS(err_msg, "released");
  ASSERT_STR_CONTAINS(err_msg, "block allocated at:");
  ASSERT_STR_CONTAINS(err_msg, "objdebug_alloc_site");
  ASSERT_EQ(refgc_refcount(stale), 0); /* unchanged: still released */
  /* and it does not come back to life through a decref */
  refgc_decref(stale);
  ASSERT_EQ(err_calls, 2);
  ASSERT_EQ(rel_calls, 1);
  /* nor through a new weak reference */
  refgc_object_t *w = refgc_weakref_new(stale, NULL, NULL);
  ASSERT(w == NULL);
  ASSERT_EQ(refgc_last_error(), REFGC_EBADOBJECT);
  ASSERT_EQ(err_calls, 3);
  ASSERT_STR_CONTAINS(err_func, "refgc_weakref_new");
  ASSERT_STR_CONTAINS(err_msg, "dbg_leaf");
  errors_done();
  ASSERT_EQ(refgc_heap_check(), 0);
}

TEST(refcount_underflow) {
  types_init();
  counters_reset();
  errors_reset();
  node *o = objdebug_alloc_site(T_node);
  o->ob.refcnt = 0; /* white box: as if a reference had been dropped twice */
  refgc_decref(OB(o));
  ASSERT_EQ(err_calls, 1);
  ASSERT_EQ(err_code, REFGC_EREFCOUNT);
  ASSERT_PTR_EQ(err_ptr, o);
  ASSERT_STR_CONTAINS(err_func, "refgc_decref");
  ASSERT_STR_CONTAINS(err_msg, "dbg_node");
  ASSERT_STR_CONTAINS(err_msg, "already 0");
  ASSERT_STR_CONTAINS(err_msg, "block allocated at:");
  ASSERT_STR_CONTAINS(err_msg, "objdebug_alloc_site");
  ASSERT_EQ(refgc_refcount(OB(o)), 0);
  ASSERT_EQ(rel_calls, 0);
  o->ob.refcnt = 1; /* repair */
  refgc_decref(OB(o));
  ASSERT_EQ(rel_calls, 1);
  ASSERT_EQ(err_calls, 1);

  /* from a traverse hook: a parent dropping a child whose count is already 0 */
  node *p = objdebug_alloc_site(T_node);
  node *c = objdebug_alloc_site(T_leaf);
  p->a = OB(c);
  c->ob.refcnt = 0;
  refgc_decref(OB(p));
  ASSERT_EQ(err_calls, 2);
  ASSERT_EQ(err_code, REFGC_EREFCOUNT);
  ASSERT_PTR_EQ(err_ptr, c);
  ASSERT_STR_CONTAINS(err_msg, "dbg_leaf");
  ASSERT_STR_CONTAINS(err_msg, "traverse");
  ASSERT_EQ(rel_calls, 2); /* the parent */
  c->ob.refcnt = 1;
  refgc_decref(OB(c));
  ASSERT_EQ(rel_calls, 3);
  ASSERT_EQ(err_calls, 2);
  errors_done();
  ASSERT_EQ(refgc_heap_check(), 0);
}

TEST(traverse_visits_stack_variable) {
  types_init();
  counters_reset();
  errors_reset();
  refgc_object_t fake = {5, 0};
  refgc_object_t *volatile bad = &fake;
  node *p = objdebug_alloc_site(T_node);
  p->a = bad; /* the bug: not an object */
  p->b = OB(objdebug_alloc_site(T_leaf));
  refgc_decref(OB(p));
  ASSERT_EQ(err_calls, 1);
  ASSERT_EQ(err_code, REFGC_EBADOBJECT);
  ASSERT_PTR_EQ(err_ptr, &fake);
  ASSERT_STR_CONTAINS(err_func, "traverse");
  ASSERT_STR_CONTAINS(err_msg, "traverse");
  ASSERT_STR_CONTAINS(err_msg, "not an object");
  ASSERT_EQ(fake.refcnt, 5); /* untouched */
  ASSERT_EQ(fake.bits, 0);
  ASSERT_EQ(rel_calls, 2); /* the parent and its real child went normally */
  errors_done();
  ASSERT_EQ(refgc_heap_check(), 0);
}

TEST(traverse_visits_released_object) {
  types_init();
  counters_reset();
  errors_reset();
  node *c = objdebug_alloc_site(T_leaf);
  node *p = objdebug_alloc_site(T_node);
  refgc_object_t *volatile borrowed = OB(c);
  p->a = borrowed; /* the bug: stored without a reference of its own */
  refgc_decref(OB(c)); /* released while p still points at it */
  ASSERT_EQ(rel_calls, 1);
  refgc_decref(OB(p));
  ASSERT_EQ(err_calls, 1);
  ASSERT_EQ(err_code, REFGC_EBADOBJECT);
  ASSERT_PTR_EQ(err_ptr, c);
  ASSERT_STR_CONTAINS(err_func, "traverse");
  ASSERT_STR_CONTAINS(err_msg, "traverse");
  ASSERT_STR_CONTAINS(err_msg, "dbg_leaf");
  ASSERT_STR_CONTAINS(err_msg, "released");
  ASSERT_STR_CONTAINS(err_msg, "block allocated at:");
  ASSERT_STR_CONTAINS(err_msg, "objdebug_alloc_site");
  ASSERT_EQ(rel_calls, 2); /* p; c not a second time */
  ASSERT_EQ(fin_calls, 2);
  errors_done();
  ASSERT_EQ(refgc_heap_check(), 0);
}

/* beyond the quarantine, the released object's memory is freed: still reported. In the ASan
 * build the freed block is poisoned and ASan stops the read of its header itself (as for the
 * writes after free in test_debug.c), so the case is skipped there. */
TEST(traverse_visits_freed_object) {
  if (UNDER_ASAN) return;
  types_init();
  counters_reset();
  errors_reset();
  node *c = objdebug_alloc_site(T_leaf);
  node *p = objdebug_alloc_site(T_node);
  refgc_object_t *volatile borrowed = OB(c);
  p->a = borrowed;
  refgc_decref(OB(c));
  ASSERT_EQ(rel_calls, 1);
  /* push it out of the quarantine with objects of another size */
  for (int i = 0; i < 6000; i++) refgc_decref(refgc_new(T_filler));
  counters_reset();
  ASSERT(!refgc_owns(borrowed)); /* its memory went back to the heap */
  ASSERT_EQ(err_calls, 0);
  refgc_decref(OB(p));
  ASSERT_EQ(err_calls, 1);
  ASSERT_EQ(err_code, REFGC_EBADOBJECT);
  ASSERT_PTR_EQ(err_ptr, c);
  ASSERT_STR_CONTAINS(err_msg, "traverse");
  ASSERT_STR_CONTAINS(err_msg, "freed");
  ASSERT_EQ(rel_calls, 1); /* p only */
  errors_done();
  ASSERT_EQ(refgc_heap_check(), 0);
}

TEST(incref_of_pointer_that_is_not_an_object) {
  types_init();
  counters_reset();
  errors_reset();
  /* a heap block that is not an object (fresh debug fill) */
  void *raw = objdebug_raw_alloc_site(64);
  refgc_object_t *volatile bad = raw;
  refgc_incref(bad);
  ASSERT_EQ(err_calls, 1);
  ASSERT_EQ(err_code, REFGC_EBADOBJECT);
  ASSERT_PTR_EQ(err_ptr, raw);
  ASSERT_STR_CONTAINS(err_func, "refgc_incref");
  ASSERT_STR_CONTAINS(err_msg, "refgc_incref(");
  ASSERT_STR_CONTAINS(err_msg, "not an object");
  refgc_decref(bad);
  ASSERT_EQ(err_calls, 2);
  ASSERT_EQ(err_code, REFGC_EBADOBJECT);
  refgc_free(raw); /* unchanged by the bad calls: frees cleanly */
  /* a zeroed heap block */
  void *z = refgc_calloc(1, 48);
  bad = z;
  refgc_incref(bad);
  ASSERT_EQ(err_calls, 3);
  ASSERT_EQ(err_code, REFGC_EBADOBJECT);
  ASSERT_STR_CONTAINS(err_msg, "not an object");
  refgc_free(z);
  /* a stack variable */
  refgc_object_t fake = {1, 0};
  bad = &fake;
  refgc_incref(bad);
  ASSERT_EQ(err_calls, 4);
  ASSERT_EQ(err_code, REFGC_EBADOBJECT);
  ASSERT_PTR_EQ(err_ptr, &fake);
  ASSERT_STR_CONTAINS(err_msg, "not an object");
  ASSERT_EQ(fake.refcnt, 1);
  refgc_decref(bad);
  ASSERT_EQ(err_calls, 5);
  ASSERT_EQ(fake.refcnt, 1);
  /* a weak reference call on something that is not a weak reference */
  ASSERT(refgc_weakref_get(bad) == NULL);
  errors_done();
  ASSERT_EQ(refgc_heap_check(), 0);
}

/* an interior pointer is reported (and not counted) */
TEST(incref_of_interior_pointer) {
  types_init();
  counters_reset();
  errors_reset();
  node *o = objdebug_alloc_site(T_node);
  o->id = 0x1234;
  refgc_object_t *volatile inner = (refgc_object_t *)((char *)o + 16);
  refgc_incref(inner);
  ASSERT_EQ(err_calls, 1);
  ASSERT_EQ(err_code, REFGC_EBADOBJECT);
  ASSERT_PTR_EQ(err_ptr, (char *)o + 16);
  ASSERT_EQ(refgc_refcount(OB(o)), 1);
  ASSERT(o->a == NULL && o->b == NULL); /* nothing written */
  refgc_decref(OB(o));
  ASSERT_EQ(err_calls, 1);
  errors_done();
  ASSERT_EQ(refgc_heap_check(), 0);
}

/* the report for an interior pointer should say so, not that the memory was freed */
TEST(interior_pointer_report_is_accurate) {
  types_init();
  counters_reset();
  errors_reset();
  node *o = objdebug_alloc_site(T_node);
  refgc_object_t *volatile inner = (refgc_object_t *)((char *)o + 16);
  refgc_incref(inner);
  char msg[4096];
  snprintf(msg, sizeof msg, "%s", err_msg);
  refgc_decref(OB(o));
  errors_done();
  ASSERT_EQ(err_calls, 1);
  if (strstr(msg, "freed") || strstr(msg, "released earlier"))
    TEST_FAIL("an interior pointer into a live object is reported as freed memory: \"%s\"", msg);
}

/* the header: in debug mode refgc_object_size() is exactly what the object was created with */
TEST(object_size_exact_in_debug_mode) {
  types_init();
  node *o = objdebug_alloc_site(T_leaf);
  ASSERT_EQ(refgc_object_size(OB(o)), sizeof(node));
  refgc_decref(OB(o));
  for (size_t n = 0; n < 40; n++) {
    refgc_object_t *v = refgc_new_var(T_vec, n);
    ASSERT_EQ(refgc_object_size(v), sizeof(vec) + n * sizeof(refgc_object_t *));
    refgc_decref(v);
  }
  ASSERT_EQ(refgc_heap_check(), 0);
}

/* many releases, through and beyond the quarantine: no false reports */
TEST(quarantine_churn_reports_nothing) {
  types_init();
  counters_reset();
  errors_reset();
  test_rng_t rng = {test_seed()};
  enum { LIVE = 256 };
  node *live[LIVE] = {0};
  for (int op = 0; op < 40000; op++) {
    int i = (int)test_below(&rng, LIVE);
    if (live[i]) {
      refgc_decref(OB(live[i]));
      live[i] = NULL;
    } else {
      live[i] = objdebug_alloc_site(test_below(&rng, 2) ? T_node : T_fl);
      int j = (int)test_below(&rng, LIVE);
      if (live[j] && j != i) {
        refgc_incref(OB(live[j]));
        live[i]->a = OB(live[j]);
      }
    }
  }
  for (int i = 0; i < LIVE; i++)
    if (live[i]) refgc_decref(OB(live[i]));
  ASSERT_EQ(err_calls, 0);
  ASSERT_EQ(tstats(T_node).live, 0);
  ASSERT_EQ(tstats(T_fl).live, 0);
  errors_done();
  ASSERT_EQ(refgc_heap_check(), 0);
}

/* ---- "in debug mode count changes are atomic, so such a race cannot corrupt the count" ------
 *
 * One thread increfs and decrefs a shared object while another changes its count: with plain
 * increfs and decrefs, and through parents that hold it and are released (the release's
 * traverse drops the reference). A lost update makes the count wrong or releases the object
 * while it is in use. Probabilistic: with a non-atomic decrement in the release path
 * (commit 313f263) the second case failed in every run at this size on 2 cores. Each runs in a
 * child process, since a corrupted count can crash it. */

static atomic_int race_errors;
static void count_error(const refgc_error_info_t *info, void *arg) {
  (void)info;
  (void)arg;
  atomic_fetch_add(&race_errors, 1);
}

static refgc_object_t *race_obj;
static long race_iters;
static atomic_int race_stop;
static atomic_long race_done_iters;
/* both sides stop at the first report (a corrupted count) or when the other side is done */
static int race_inc_dec_until_stopped; /* else race_iters */
static void *race_inc_dec(void *arg) {
  (void)arg;
  long i;
  for (i = 0; (race_inc_dec_until_stopped || i < race_iters) &&
              !atomic_load_explicit(&race_stop, memory_order_relaxed);
       i++) {
    refgc_incref(race_obj);
    refgc_decref(race_obj);
    if (atomic_load_explicit(&race_errors, memory_order_relaxed)) break;
  }
  atomic_store(&race_stop, 1);
  atomic_fetch_add(&race_done_iters, i);
  return NULL;
}
/* the other side of the race: parents holding the shared object, released here */
static void *race_parents(void *arg) {
  (void)arg;
  long i;
  for (i = 0; i < race_iters && !atomic_load_explicit(&race_stop, memory_order_relaxed); i++) {
    node *p = (node *)refgc_new(T_node);
    refgc_incref(race_obj);
    p->a = race_obj;
    refgc_decref(OB(p)); /* its traverse drops the reference to race_obj */
    if (atomic_load_explicit(&race_errors, memory_order_relaxed)) break;
  }
  atomic_store(&race_stop, 1);
  atomic_fetch_add(&race_done_iters, i);
  return NULL;
}

static int race_child(void *(*other)(void *)) {
  refgc_set_error_handler(count_error, NULL);
  race_inc_dec_until_stopped = other != race_inc_dec;
  race_obj = refgc_new(T_leaf);
  pthread_t a, b;
  pthread_create(&a, NULL, race_inc_dec, NULL);
  pthread_create(&b, NULL, other, NULL);
  pthread_join(a, NULL);
  pthread_join(b, NULL);
  uint32_t rc = refgc_refcount(race_obj);
  int errs = atomic_load(&race_errors);
  if (rc != 1 || errs)
    fprintf(stderr, "  count after the race: %u (expected 1), %d errors reported, after %ld "
            "iterations in all\n", rc, errs, atomic_load(&race_done_iters));
  return rc == 1 && errs == 0 ? 0 : 1;
}

/* in a child process: a corrupted count may release an object still in use */
#define RUN_CHILD(expr)                                                         \
  do {                                                                          \
    fflush(stdout);                                                             \
    fflush(stderr);                                                             \
    pid_t pid_ = fork();                                                        \
    ASSERT(pid_ >= 0);                                                          \
    if (pid_ == 0) _exit((expr));                                               \
    int st_ = 0;                                                                \
    ASSERT_EQ(waitpid(pid_, &st_, 0), pid_);                                    \
    if (WIFSIGNALED(st_)) TEST_FAIL("child died of signal %d", WTERMSIG(st_));  \
    if (WEXITSTATUS(st_)) TEST_FAIL("the count was corrupted (see above)");     \
  } while (0)

TEST(counts_are_atomic_increfs_and_decrefs) {
  types_init();
  race_iters = 1000000 * test_scale();
  RUN_CHILD(race_child(race_inc_dec));
}

TEST(counts_are_atomic_when_a_parent_releases_the_object) {
  types_init();
  race_iters = 1500000 * test_scale(); /* a lost update shows up well within this on 2 cores */
  RUN_CHILD(race_child(race_parents));
}
