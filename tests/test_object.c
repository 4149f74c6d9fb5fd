/* refgc — objects (include/refgc/object.h): life cycle, type registration, variable-size
 * objects, finalizers and resurrection, the order of a release, weak references and their
 * callbacks, weakly valued maps, free lists, release of deep and wide structures without
 * recursion, immortal objects, count underflow, a randomized acyclic graph against a model, and
 * objects handed between threads.
 *
 * Conventions:
 *   - hooks and weak reference callbacks run inside the library's release loop, so they never
 *     ASSERT (a longjmp out of the loop would leave the library mid-release); they record the
 *     first failed check with HOOK_CHECK and the test asserts ASSERT_HOOKS_OK() afterwards;
 *   - cases that would crash the whole process if the library recursed on the C stack run in a
 *     forked child, on a thread with a 256 KiB stack (RUN_ISOLATED): a crash there fails that
 *     case only;
 *   - leak checks count live heap blocks (alloc_count - free_count, exact on one thread) after
 *     refgc_freelists_clear().
 *
 * Every case stays well under a minute under ASan; --scale=N multiplies the randomized work.
 */
#define _POSIX_C_SOURCE 200809L /* fork, waitpid, clock_gettime, barriers under -std=c11 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "refgc.h"
#include "test.h"

/* ---- helpers ------------------------------------------------------------------------------ */

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static refgc_heap_stats_t heap_stats(void) {
  refgc_heap_stats_t s;
  memset(&s, 0, sizeof s);
  s.size = sizeof s;
  refgc_heap_stats(&s);
  return s;
}
static size_t heap_in_use(void) { return heap_stats().in_use; }
/* Live heap blocks: exact on one thread, insensitive to a table being reallocated. */
static long live_blocks(void) {
  refgc_heap_stats_t s = heap_stats();
  return (long)(s.alloc_count - s.free_count);
}

static refgc_type_stats_t tstats(const refgc_type_t *t) {
  refgc_type_stats_t s;
  memset(&s, 0, sizeof s);
  refgc_type_stats(t, &s);
  return s;
}

/* first failed check inside a hook or callback */
static int hook_fail_line;
static const char *hook_fail_what;
#define HOOK_CHECK(cond)                              \
  do {                                                \
    if (!(cond) && !hook_fail_line) {                 \
      hook_fail_line = __LINE__;                      \
      hook_fail_what = #cond;                         \
    }                                                 \
  } while (0)
#define ASSERT_HOOKS_OK()                                                                  \
  do {                                                                                     \
    if (hook_fail_line)                                                                    \
      TEST_FAIL("check inside a hook failed at line %d: %s", hook_fail_line, hook_fail_what); \
  } while (0)

/* an error handler that records instead of aborting */
static int err_calls, err_code;
static const void *err_ptr;
static char err_msg[4096], err_func[256];
static void record_error(const refgc_error_info_t *info, void *arg) {
  (void)arg;
  err_calls++;
  err_code = info->code;
  err_ptr = info->ptr;
  snprintf(err_msg, sizeof err_msg, "%s", info->message);
  snprintf(err_func, sizeof err_func, "%s", info->func ? info->func : "");
}
static void errors_reset(void) {
  refgc_set_error_handler(record_error, NULL);
  err_calls = err_code = 0;
  err_ptr = NULL;
  err_msg[0] = err_func[0] = 0;
}

/* ---- a node type with hooks that log ------------------------------------------------------ */

typedef struct node_s {
  refgc_object_t ob;
  long id;
  long value;
  refgc_object_t *a, *b; /* owned references, or NULL */
} node;

#define OB(p) (&(p)->ob)
#define NODE(o) ((node *)(o))

typedef struct event_s {
  char kind; /* 'F' finalizer, 'R' release hook, 'C' weakref callback */
  long id;
} event_t;
static event_t events[8192];
static int nevents;
static long fin_calls, rel_calls, cb_calls;
static void (*on_fin)(node *);
static void (*on_rel)(node *);

static void log_event(char kind, long id) {
  if (nevents < (int)(sizeof events / sizeof events[0])) events[nevents++] = (event_t){kind, id};
}
static int event_count(char kind, long id) {
  int n = 0;
  for (int i = 0; i < nevents; i++)
    if (events[i].kind == kind && events[i].id == id) n++;
  return n;
}
static int event_index(char kind, long id) {
  for (int i = 0; i < nevents; i++)
    if (events[i].kind == kind && events[i].id == id) return i;
  return -1;
}

static void hooks_reset(void) {
  on_fin = NULL;
  on_rel = NULL;
  fin_calls = rel_calls = cb_calls = 0;
  nevents = 0;
  hook_fail_line = 0;
  hook_fail_what = NULL;
}

static void node_traverse(refgc_object_t *self, refgc_visit_fn *visit, void *arg) {
  node *n = NODE(self);
  visit(n->a, arg); /* NULL is ignored */
  visit(n->b, arg);
}
static void node_finalize(refgc_object_t *self) {
  node *n = NODE(self);
  fin_calls++;
  log_event('F', n->id);
  HOOK_CHECK(refgc_refcount(self) >= 1); /* a temporary reference while it runs */
  if (on_fin) on_fin(n);
}
static void node_release(refgc_object_t *self) {
  node *n = NODE(self);
  rel_calls++;
  log_event('R', n->id);
  if (on_rel) on_rel(n);
}

/* variable-size: a vector of owned references */
typedef struct refvec_s {
  refgc_object_t ob;
  size_t n;
  refgc_object_t *items[];
} refvec;
static void refvec_traverse(refgc_object_t *self, refgc_visit_fn *visit, void *arg) {
  refvec *v = (refvec *)self;
  for (size_t i = 0; i < v->n; i++) visit(v->items[i], arg);
}

/* variable-size leaf: a vector of numbers */
typedef struct numvec_s {
  refgc_object_t ob;
  uint64_t n;
  uint64_t items[];
} numvec;

static const refgc_type_t *T_plain; /* node, no hooks, no free list */
static const refgc_type_t *T_hooks; /* node, finalizer and release hook */
static const refgc_type_t *T_rel;   /* node, release hook only */
static const refgc_type_t *T_fl;    /* node, free list of 4 */
static const refgc_type_t *T_fl2;   /* node, free list of 8 */
static const refgc_type_t *T_leaf;  /* leaf node (no traverse) */
static const refgc_type_t *T_refvec;
static const refgc_type_t *T_numvec;   /* free list of 8 per count */
static const refgc_type_t *T_numvec0;  /* no free list */
static const refgc_type_t *T_weakref;  /* the built-in type, found through an instance */

static const refgc_type_t *reg(const char *name, uint32_t flags, size_t basic, size_t item,
                               refgc_traverse_fn *trav, refgc_finalize_fn *fin,
                               refgc_release_fn *rel, uint32_t freelist_max) {
  refgc_type_spec_t spec;
  memset(&spec, 0, sizeof spec);
  spec.version = REFGC_TYPE_SPEC_VERSION;
  spec.flags = flags;
  spec.name = name;
  spec.basic_size = basic;
  spec.item_size = item;
  spec.traverse = trav;
  spec.finalize = fin;
  spec.release = rel;
  spec.freelist_max = freelist_max;
  const refgc_type_t *t = refgc_type_register(&spec);
  if (!t) {
    fprintf(stderr, "cannot register type %s\n", name);
    abort();
  }
  return t;
}

static void types_init(void) {
  if (T_plain) return;
  T_plain = reg("node", 0, sizeof(node), 0, node_traverse, NULL, NULL, 0);
  T_hooks = reg("hooked_node", 0, sizeof(node), 0, node_traverse, node_finalize, node_release, 0);
  T_rel = reg("released_node", 0, sizeof(node), 0, node_traverse, NULL, node_release, 0);
  T_fl = reg("fl_node", 0, sizeof(node), 0, node_traverse, NULL, NULL, 4);
  T_fl2 = reg("fl2_node", 0, sizeof(node), 0, node_traverse, NULL, NULL, 8);
  T_leaf = reg("leaf", REFGC_TYPE_LEAF, sizeof(node), 0, NULL, NULL, node_release, 0);
  T_refvec = reg("refvec", 0, sizeof(refvec), sizeof(refgc_object_t *), refvec_traverse, NULL,
                 NULL, 0);
  T_numvec = reg("numvec", REFGC_TYPE_LEAF, sizeof(numvec), sizeof(uint64_t), NULL, NULL, NULL, 8);
  T_numvec0 = reg("numvec0", REFGC_TYPE_LEAF, sizeof(numvec), sizeof(uint64_t), NULL, NULL, NULL, 0);
  refgc_object_t *o = refgc_new(T_plain);
  refgc_object_t *w = refgc_weakref_new(o, NULL, NULL);
  T_weakref = refgc_type_of(w);
  refgc_decref(w);
  refgc_decref(o);
}

static node *new_node(const refgc_type_t *t, long id) {
  node *n = NODE(refgc_new(t));
  if (!n) {
    fprintf(stderr, "refgc_new failed\n");
    abort();
  }
  n->id = id;
  return n;
}

/* Warm the calling thread's lazily allocated state (thread state, release stack, callback
 * queue, weak reference table, per-type tables) so that leak checks compare like with like. */
static int cb_noop_calls;
static void cb_noop(refgc_object_t *wr, void *arg) {
  (void)wr;
  (void)arg;
  cb_noop_calls++;
}
static void warm_up(void) {
  types_init();
  const refgc_type_t *all[] = {T_plain, T_hooks, T_rel, T_fl, T_fl2, T_leaf};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
    node *p = new_node(all[i], -1);
    if (all[i] != T_leaf) p->a = OB(new_node(T_plain, -1));
    refgc_object_t *w = refgc_weakref_new(OB(p), cb_noop, NULL);
    refgc_decref(OB(p));
    refgc_decref(w);
  }
  refgc_decref(refgc_new_var(T_refvec, 1));
  refgc_decref(refgc_new_var(T_numvec, 1));
  refgc_decref(refgc_new_var(T_numvec0, 1));
  refgc_weakmap_t *m = refgc_weakmap_new();
  node *v = new_node(T_plain, -1);
  refgc_weakmap_set(m, "k", 1, OB(v));
  refgc_decref(OB(v));
  refgc_weakmap_free(m);
  refgc_freelists_clear();
}

/* ---- running a body in a forked child, on a thread with a small stack ---------------------- */

typedef int (*child_fn)(void *);
#define CCHECK(cond)                                                                   \
  do {                                                                                 \
    if (!(cond)) {                                                                     \
      fprintf(stderr, "  FAILED (child) at %s:%d: %s\n", __FILE__, __LINE__, #cond);   \
      return 1;                                                                        \
    }                                                                                  \
  } while (0)

typedef struct thr_s {
  child_fn fn;
  void *arg;
  int rc;
} thr_t;
static void *thr_main(void *p) {
  thr_t *t = p;
  t->rc = t->fn(t->arg);
  return NULL;
}
static int run_on_stack(child_fn fn, void *arg, size_t stack) {
  pthread_attr_t at;
  pthread_attr_init(&at);
  pthread_attr_setstacksize(&at, stack);
  thr_t t = {fn, arg, -1};
  pthread_t th;
  if (pthread_create(&th, &at, thr_main, &t)) return -2;
  pthread_join(th, NULL);
  pthread_attr_destroy(&at);
  return t.rc;
}

#define SMALL_STACK ((size_t)256 << 10)

/* Runs fn(arg) in a child process on a thread with a `stack`-byte stack; fails the case if the
 * child crashes (a stack overflow) or reports a failure. */
#define RUN_ISOLATED(fn, arg, stack)                                                         \
  do {                                                                                       \
    fflush(stdout);                                                                          \
    fflush(stderr);                                                                          \
    pid_t pid_ = fork();                                                                     \
    ASSERT(pid_ >= 0);                                                                       \
    if (pid_ == 0) {                                                                         \
      int rc_ = run_on_stack((fn), (arg), (stack));                                          \
      fflush(stdout);                                                                        \
      fflush(stderr);                                                                        \
      _exit(rc_ == 0 ? 0 : 1);                                                               \
    }                                                                                        \
    int st_ = 0;                                                                             \
    ASSERT_EQ(waitpid(pid_, &st_, 0), pid_);                                                 \
    if (WIFSIGNALED(st_))                                                                    \
      TEST_FAIL("child died of signal %d (stack overflow? the release recursed)",            \
                WTERMSIG(st_));                                                              \
    if (WEXITSTATUS(st_) != 0)                                                               \
      TEST_FAIL("child failed (exit status %d: a check failed, or a sanitizer stopped it)", \
                WEXITSTATUS(st_));                                                           \
  } while (0)

/* ============================================================================================
 * Life cycle
 * ========================================================================================== */

TEST(lifecycle_counts_hooks_stats_memory) {
  warm_up();
  hooks_reset();
  size_t base = heap_in_use();
  long base_blocks = live_blocks();
  refgc_type_stats_t s0 = tstats(T_hooks);
  /* dirty a block of the object's size first: a zeroed body then means zeroing */
  unsigned char *junk = refgc_malloc(sizeof(node));
  memset(junk, 0xAB, sizeof(node));
  refgc_free(junk);

  node *n = NODE(refgc_new(T_hooks));
  ASSERT(n != NULL);
  ASSERT_EQ(refgc_refcount(OB(n)), 1);
  ASSERT(!refgc_is_immortal(OB(n)));
  ASSERT(!refgc_is_finalized(OB(n)));
  ASSERT_PTR_EQ(refgc_type_of(OB(n)), T_hooks);
  ASSERT_GE(refgc_object_size(OB(n)), sizeof(node));
  const unsigned char *body = (const unsigned char *)n + sizeof(refgc_object_t);
  for (size_t i = 0; i < sizeof(node) - sizeof(refgc_object_t); i++)
    if (body[i]) TEST_FAIL("body byte %zu is 0x%02x, expected 0", i, body[i]);
  refgc_type_stats_t s1 = tstats(T_hooks);
  ASSERT_EQ(s1.created, s0.created + 1);
  ASSERT_EQ(s1.live, s0.live + 1);
  ASSERT_EQ(s1.released, s0.released);
  ASSERT_STR_CONTAINS(s1.name, "hooked_node");

  n->id = 7;
  refgc_incref(OB(n));
  refgc_incref(OB(n));
  ASSERT_EQ(refgc_refcount(OB(n)), 3);
  refgc_xincref(NULL);
  refgc_xdecref(NULL);
  refgc_xincref(OB(n));
  ASSERT_EQ(refgc_refcount(OB(n)), 4);
  refgc_xdecref(OB(n));
  refgc_decref(OB(n));
  ASSERT_EQ(refgc_refcount(OB(n)), 2);
  refgc_decref(OB(n));
  ASSERT_EQ(refgc_refcount(OB(n)), 1);
  ASSERT_EQ(fin_calls, 0);
  ASSERT_EQ(rel_calls, 0);
  refgc_decref(OB(n)); /* released */
  ASSERT_EQ(fin_calls, 1);
  ASSERT_EQ(rel_calls, 1);
  ASSERT_EQ(nevents, 2);
  ASSERT(events[0].kind == 'F' && events[0].id == 7);
  ASSERT(events[1].kind == 'R' && events[1].id == 7);
  refgc_type_stats_t s2 = tstats(T_hooks);
  ASSERT_EQ(s2.created, s0.created + 1);
  ASSERT_EQ(s2.released, s0.released + 1);
  ASSERT_EQ(s2.live, s0.live);

  /* a parent with children: the whole structure goes, each hook once */
  hooks_reset();
  node *p = new_node(T_hooks, 1);
  p->a = OB(new_node(T_hooks, 2));
  p->b = OB(new_node(T_hooks, 3));
  NODE(p->a)->a = OB(new_node(T_hooks, 4));
  refgc_decref(OB(p));
  ASSERT_EQ(fin_calls, 4);
  ASSERT_EQ(rel_calls, 4);
  for (long id = 1; id <= 4; id++) {
    ASSERT_EQ(event_count('F', id), 1);
    ASSERT_EQ(event_count('R', id), 1);
    ASSERT_LT(event_index('F', id), event_index('R', id));
  }
  ASSERT_EQ(tstats(T_hooks).live, s0.live);
  refgc_freelists_clear();
  ASSERT_EQ(heap_in_use(), base);
  ASSERT_EQ(live_blocks(), base_blocks);
  ASSERT_EQ(refgc_heap_check(), 0);
}

/* ============================================================================================
 * Type registration
 * ========================================================================================== */

static void *last_error_thread(void *arg) {
  *(int *)arg = refgc_last_error();
  return NULL;
}

TEST(type_registration_errors_and_table) {
  types_init();
  size_t c0 = refgc_type_count();
  ASSERT_GT(c0, 0);
  refgc_type_spec_t good;
  memset(&good, 0, sizeof good);
  good.version = REFGC_TYPE_SPEC_VERSION;
  good.name = "reg_ok";
  good.basic_size = sizeof(node);
  good.traverse = node_traverse;

  refgc_type_spec_t bad = good;
  bad.version = 0;
  ASSERT(refgc_type_register(&bad) == NULL);
  ASSERT_EQ(refgc_last_error(), REFGC_EINVAL);
  bad.version = REFGC_TYPE_SPEC_VERSION + 1;
  ASSERT(refgc_type_register(&bad) == NULL);
  ASSERT_EQ(refgc_last_error(), REFGC_EINVAL);
  bad = good;
  bad.traverse = NULL; /* not a leaf: traverse required */
  ASSERT(refgc_type_register(&bad) == NULL);
  ASSERT_EQ(refgc_last_error(), REFGC_EINVAL);
  bad = good;
  bad.basic_size = sizeof(refgc_object_t) - 1;
  ASSERT(refgc_type_register(&bad) == NULL);
  ASSERT_EQ(refgc_last_error(), REFGC_EINVAL);
  bad.basic_size = 0;
  ASSERT(refgc_type_register(&bad) == NULL);
  ASSERT_EQ(refgc_last_error(), REFGC_EINVAL);
  ASSERT(refgc_type_register(NULL) == NULL);
  ASSERT_EQ(refgc_last_error(), REFGC_EINVAL);
  ASSERT_EQ(refgc_type_count(), c0); /* failures register nothing */

  /* the last error is per thread */
  int other = -1;
  pthread_t th;
  ASSERT_EQ(pthread_create(&th, NULL, last_error_thread, &other), 0);
  pthread_join(th, NULL);
  ASSERT_EQ(other, REFGC_OK);

  /* name copied */
  char name[32];
  snprintf(name, sizeof name, "copied_name");
  refgc_type_spec_t s1 = good;
  s1.name = name;
  const refgc_type_t *t1 = refgc_type_register(&s1);
  ASSERT(t1 != NULL);
  name[0] = 'X';
  ASSERT(strcmp(refgc_type_name(t1), "copied_name") == 0);
  /* a leaf needs no traverse; a header-only object is allowed */
  refgc_type_spec_t s2 = good;
  s2.flags = REFGC_TYPE_LEAF;
  s2.traverse = NULL;
  s2.basic_size = sizeof(refgc_object_t);
  s2.name = "header_only";
  const refgc_type_t *t2 = refgc_type_register(&s2);
  ASSERT(t2 != NULL);
  ASSERT_EQ(refgc_type_count(), c0 + 2);
  ASSERT_PTR_EQ(refgc_type_at(c0), t1);
  ASSERT_PTR_EQ(refgc_type_at(c0 + 1), t2);
  ASSERT(refgc_type_at(c0 + 2) == NULL);
  ASSERT(refgc_type_at((size_t)-1) == NULL);
  int found_plain = 0;
  for (size_t i = 0; i < refgc_type_count(); i++) {
    ASSERT(refgc_type_at(i) != NULL);
    if (refgc_type_at(i) == T_plain) found_plain++;
  }
  ASSERT_EQ(found_plain, 1);
  ASSERT(strcmp(refgc_type_name(T_plain), "node") == 0);
  ASSERT(strcmp(refgc_type_name(T_weakref), "weakref") == 0);

  refgc_object_t *h = refgc_new(t2);
  ASSERT(h != NULL);
  ASSERT_EQ(refgc_refcount(h), 1);
  ASSERT_PTR_EQ(refgc_type_of(h), t2);
  ASSERT_GE(refgc_object_size(h), sizeof(refgc_object_t));
  refgc_decref(h);
  refgc_object_t *o1 = refgc_new(t1);
  ASSERT_PTR_EQ(refgc_type_of(o1), t1);
  refgc_decref(o1);

  ASSERT(refgc_new(NULL) == NULL);
  ASSERT_EQ(refgc_last_error(), REFGC_EINVAL);
  refgc_type_stats_t st;
  ASSERT_EQ(refgc_type_stats(NULL, &st), REFGC_EINVAL);
  ASSERT_EQ(refgc_type_stats(t1, NULL), REFGC_EINVAL);
  ASSERT_EQ(refgc_type_stats(t1, &st), 0);
  ASSERT_EQ(st.created, 1);
  ASSERT_EQ(st.released, 1);
  ASSERT_EQ(st.live, 0);
  ASSERT(strcmp(st.name, "copied_name") == 0);
}

/* ============================================================================================
 * Variable-size objects
 * ========================================================================================== */

TEST(var_objects_sizes_zeroing_overflow) {
  types_init();
  hooks_reset();
  static const size_t counts[] = {0, 1, 2, 3, 7, 15, 16, 17, 100, 1000, 4096, 100000, 1u << 20};
  for (size_t k = 0; k < sizeof counts / sizeof counts[0]; k++) {
    size_t n = counts[k];
    /* dirty memory of the size first */
    size_t sz = sizeof(numvec) + n * sizeof(uint64_t);
    unsigned char *junk = refgc_malloc(sz);
    memset(junk, 0x5A, sz);
    refgc_free(junk);
    numvec *v = (numvec *)refgc_new_var(T_numvec, n);
    ASSERT(v != NULL);
    ASSERT_EQ(refgc_refcount(OB(v)), 1);
    ASSERT_PTR_EQ(refgc_type_of(OB(v)), T_numvec);
    ASSERT_GE(refgc_object_size(OB(v)), sz);
    ASSERT_EQ(v->n, 0);
    for (size_t i = 0; i < n; i++)
      if (v->items[i]) TEST_FAIL("count %zu: item %zu not zeroed", n, i);
    v->n = n;
    for (size_t i = 0; i < n; i++) v->items[i] = i * 3 + 1; /* every item writable */
    refgc_decref(OB(v));
  }
  /* an odd item size */
  const refgc_type_t *odd = reg("odd_items", REFGC_TYPE_LEAF, 12, 3, NULL, NULL, NULL, 0);
  for (size_t n = 0; n < 50; n++) {
    refgc_object_t *o = refgc_new_var(odd, n);
    ASSERT(o != NULL);
    ASSERT_GE(refgc_object_size(o), 12 + 3 * n);
    unsigned char *b = (unsigned char *)o;
    for (size_t i = 8; i < 12 + 3 * n; i++) ASSERT_EQ(b[i], 0);
    memset(b + 8, 0xEE, 4 + 3 * n);
    refgc_decref(o);
  }
  /* overflow and impossible sizes: NULL, REFGC_ENOMEM */
  static const size_t huge[] = {SIZE_MAX, SIZE_MAX / 8, SIZE_MAX / 8 + 1, (size_t)PTRDIFF_MAX / 8,
                                (size_t)PTRDIFF_MAX / 8 - 1, (size_t)1 << 44};
  for (size_t k = 0; k < sizeof huge / sizeof huge[0]; k++) {
    ASSERT(refgc_new_var(T_numvec, huge[k]) == NULL);
    ASSERT_EQ(refgc_last_error(), REFGC_ENOMEM);
  }
  const refgc_type_t *big =
      reg("big_items", REFGC_TYPE_LEAF, 16, (size_t)PTRDIFF_MAX / 2, NULL, NULL, NULL, 0);
  ASSERT(refgc_new_var(big, 3) == NULL);
  ASSERT_EQ(refgc_last_error(), REFGC_ENOMEM);
  ASSERT(refgc_new_var(NULL, 1) == NULL);
  ASSERT_EQ(refgc_last_error(), REFGC_EINVAL);
  /* refgc_new is for fixed-size types */
  ASSERT(refgc_new(T_numvec) == NULL);
  ASSERT_EQ(refgc_last_error(), REFGC_EINVAL);

  /* a variable-size object holding references drops them all */
  refvec *rv = (refvec *)refgc_new_var(T_refvec, 5);
  rv->n = 5;
  for (long i = 0; i < 5; i++) rv->items[i] = OB(new_node(T_hooks, 10 + i));
  refgc_decref(OB(rv));
  ASSERT_EQ(rel_calls, 5);
  ASSERT_EQ(refgc_heap_check(), 0);
}

/* The header: refgc_object_size() is "at least what it was created with (its size class may
 * round up)" -- and, being the block's usable bytes, every one of them is writable. */
TEST(object_size_at_least_creation_size) {
  types_init();
  for (size_t basic = 8; basic <= 600; basic += 8) {
    char name[32];
    snprintf(name, sizeof name, "size_%zu", basic);
    const refgc_type_t *t = reg(name, REFGC_TYPE_LEAF, basic, 0, NULL, NULL, NULL, 0);
    refgc_object_t *o = refgc_new(t);
    size_t got = refgc_object_size(o);
    if (got < basic) TEST_FAIL("refgc_object_size of a %zu-byte instance is %zu", basic, got);
    memset((char *)o + basic, 0x77, got - basic); /* the slack is usable */
    refgc_decref(o);
  }
  for (size_t n = 0; n < 40; n++) {
    refgc_object_t *o = refgc_new_var(T_numvec0, n);
    size_t got = refgc_object_size(o);
    if (got < sizeof(numvec) + 8 * n)
      TEST_FAIL("refgc_object_size of refgc_new_var(numvec, %zu) is %zu", n, got);
    refgc_decref(o);
  }
}

/* ============================================================================================
 * Finalizers
 * ========================================================================================== */

static node *keep[256];
static long resurrect_id = -1;
static int resurrect_times = 1;

static void fin_resurrect(node *n) {
  if (n->id != resurrect_id) return;
  for (int i = 0; i < resurrect_times; i++) {
    refgc_incref(OB(n));
    keep[i] = n;
  }
}

static int wr_cb_calls;
static void wr_cb_count(refgc_object_t *wr, void *arg) {
  (void)arg;
  HOOK_CHECK(refgc_weakref_get(wr) == NULL);
  wr_cb_calls++;
}

TEST(finalizer_once_and_resurrection) {
  types_init();
  hooks_reset();
  memset(keep, 0, sizeof keep);
  wr_cb_calls = 0;
  refgc_type_stats_t s0 = tstats(T_hooks);
  on_fin = fin_resurrect;
  resurrect_id = 1;
  resurrect_times = 1;
  node *p = new_node(T_hooks, 1);
  p->value = 42;
  node *c = new_node(T_hooks, 2);
  c->value = 43;
  p->a = OB(c);
  refgc_object_t *w = refgc_weakref_new(OB(p), wr_cb_count, NULL);
  ASSERT(w != NULL);

  refgc_decref(OB(p)); /* the finalizer resurrects it */
  ASSERT_PTR_EQ(keep[0], p);
  ASSERT_EQ(event_count('F', 1), 1);
  ASSERT_EQ(event_count('R', 1), 0);
  ASSERT_EQ(refgc_refcount(OB(p)), 1); /* as the finalizer left it, minus the temporary one */
  ASSERT_EQ(refgc_is_finalized(OB(p)), 1);
  ASSERT_EQ(p->id, 1);
  ASSERT_EQ(p->value, 42);
  ASSERT_PTR_EQ(p->a, OB(c)); /* references kept */
  ASSERT_EQ(refgc_refcount(OB(c)), 1);
  ASSERT_EQ(c->value, 43);
  ASSERT_EQ(refgc_is_finalized(OB(c)), 0);
  ASSERT_EQ(event_count('F', 2), 0);
  ASSERT_EQ(refgc_weakref_alive(w), 1); /* not released: weak references stay */
  refgc_object_t *g = refgc_weakref_get(w);
  ASSERT_PTR_EQ(g, OB(p));
  ASSERT_EQ(refgc_refcount(OB(p)), 2);
  refgc_decref(g);
  ASSERT_EQ(wr_cb_calls, 0);
  ASSERT_EQ(tstats(T_hooks).live, s0.live + 2);

  /* dropping it again releases it, without a second finalizer call (even though the finalizer
   * would resurrect it again) */
  keep[0] = NULL;
  refgc_decref(OB(p));
  ASSERT_EQ(event_count('F', 1), 1);
  ASSERT_EQ(event_count('R', 1), 1);
  ASSERT_EQ(event_count('F', 2), 1);
  ASSERT_EQ(event_count('R', 2), 1);
  ASSERT_EQ(refgc_weakref_alive(w), 0);
  ASSERT_EQ(wr_cb_calls, 1);
  ASSERT_EQ(tstats(T_hooks).live, s0.live);
  refgc_decref(w);

  /* resurrected with two new references: count 2 afterwards; the final drop comes from a
   * parent's release (a cascade), still without a second finalizer call */
  hooks_reset();
  on_fin = fin_resurrect;
  resurrect_id = 5;
  resurrect_times = 2;
  node *q = new_node(T_hooks, 5);
  refgc_decref(OB(q));
  ASSERT_EQ(refgc_refcount(OB(q)), 2);
  ASSERT_EQ(refgc_is_finalized(OB(q)), 1);
  node *holder = new_node(T_hooks, 6);
  holder->a = OB(q); /* takes keep[0]'s reference */
  keep[0] = NULL;
  refgc_decref(OB(keep[1]));
  keep[1] = NULL;
  ASSERT_EQ(refgc_refcount(OB(q)), 1);
  refgc_decref(OB(holder));
  ASSERT_EQ(event_count('F', 5), 1);
  ASSERT_EQ(event_count('R', 5), 1);
  ASSERT_EQ(event_count('R', 6), 1);
  ASSERT_EQ(tstats(T_hooks).live, s0.live);
  ASSERT_HOOKS_OK();
  hooks_reset();
}

/* resurrection inside a cascade: in a chain, every odd node resurrects itself */
static void fin_resurrect_odd(node *n) {
  if (n->id & 1) {
    refgc_incref(OB(n));
    keep[n->id] = n;
  }
}

TEST(finalizer_resurrection_inside_cascade) {
  types_init();
  hooks_reset();
  memset(keep, 0, sizeof keep);
  refgc_type_stats_t s0 = tstats(T_hooks);
  enum { N = 100 };
  node *head = NULL;
  for (long i = N - 1; i >= 0; i--) {
    node *n = new_node(T_hooks, i);
    n->value = i * 10;
    n->a = head ? OB(head) : NULL;
    head = n;
  }
  on_fin = fin_resurrect_odd;
  refgc_decref(OB(head)); /* releases node 0; node 1 resurrects and keeps the rest alive */
  for (long i = 1; i < N; i += 2) {
    node *k = keep[i];
    if (!k) TEST_FAIL("node %ld was not resurrected", i);
    ASSERT_EQ(refgc_refcount(OB(k)), 1);
    ASSERT_EQ(refgc_is_finalized(OB(k)), 1);
    ASSERT_EQ(k->value, i * 10);
    ASSERT_EQ(event_count('R', i - 1), 1); /* its predecessor is gone */
    ASSERT_EQ(event_count('R', i), 0);
    if (i + 1 < N) {
      ASSERT_EQ(event_count('F', i + 1), 0); /* its successor untouched */
      ASSERT_EQ(refgc_refcount(k->a), 1);
      ASSERT_EQ(NODE(k->a)->value, (i + 1) * 10);
    }
    keep[i] = NULL;
    refgc_decref(OB(k)); /* released now; the next odd one resurrects */
    ASSERT_EQ(event_count('F', i), 1);
    ASSERT_EQ(event_count('R', i), 1);
  }
  for (long i = 0; i < N; i++) {
    ASSERT_EQ(event_count('F', i), 1);
    ASSERT_EQ(event_count('R', i), 1);
  }
  ASSERT_EQ(tstats(T_hooks).live, s0.live);
  ASSERT_HOOKS_OK();
  hooks_reset();
}

/* a finalizer that allocates and drops objects and weak references */
static node *kept_by_finalizer;
static void fin_allocates(node *n) {
  if (n->id != 1) return;
  node *x = new_node(T_hooks, 100);
  x->a = OB(new_node(T_hooks, 101));
  NODE(x->a)->a = OB(new_node(T_hooks, 102));
  refgc_object_t *wx = refgc_weakref_new(OB(x), wr_cb_count, NULL);
  HOOK_CHECK(wx != NULL);
  refgc_decref(OB(x)); /* released: not necessarily before this finalizer returns */
  HOOK_CHECK(!refgc_weakref_alive(wx));
  refgc_decref(wx);
  kept_by_finalizer = new_node(T_hooks, 200); /* stays */
  numvec *v = (numvec *)refgc_new_var(T_numvec, 3);
  refgc_decref(OB(v));
  /* the object and its children are intact */
  HOOK_CHECK(n->a && NODE(n->a)->id == 2 && refgc_refcount(n->a) == 1);
}

TEST(finalizer_allocates_and_drops_objects) {
  types_init();
  hooks_reset();
  wr_cb_calls = 0;
  kept_by_finalizer = NULL;
  refgc_type_stats_t s0 = tstats(T_hooks);
  on_fin = fin_allocates;
  node *p = new_node(T_hooks, 1);
  p->a = OB(new_node(T_hooks, 2));
  refgc_decref(OB(p));
  for (long id = 1; id <= 2; id++) ASSERT_EQ(event_count('R', id), 1);
  for (long id = 100; id <= 102; id++) {
    ASSERT_EQ(event_count('F', id), 1);
    ASSERT_EQ(event_count('R', id), 1);
  }
  ASSERT_EQ(wr_cb_calls, 0); /* the weak reference was dropped before its referent died */
  ASSERT(kept_by_finalizer != NULL);
  ASSERT_EQ(refgc_refcount(OB(kept_by_finalizer)), 1);
  ASSERT_EQ(kept_by_finalizer->id, 200);
  ASSERT_EQ(event_count('F', 200), 0);
  refgc_decref(OB(kept_by_finalizer));
  ASSERT_EQ(event_count('R', 200), 1);
  ASSERT_EQ(tstats(T_hooks).live, s0.live);
  ASSERT_HOOKS_OK();
  hooks_reset();
}

/* a finalizer that takes a new reference to a child: the child survives its parent */
static void fin_keep_child(node *n) {
  if (n->id != 1) return;
  refgc_incref(n->a);
  keep[0] = NODE(n->a);
}

TEST(finalizer_resurrects_child) {
  types_init();
  hooks_reset();
  memset(keep, 0, sizeof keep);
  refgc_type_stats_t s0 = tstats(T_hooks);
  on_fin = fin_keep_child;
  node *p = new_node(T_hooks, 1);
  node *c = new_node(T_hooks, 2);
  c->value = 22;
  p->a = OB(c);
  c->a = OB(new_node(T_hooks, 3));
  c->b = OB(new_node(T_hooks, 4));
  refgc_decref(OB(p));
  ASSERT_EQ(event_count('R', 1), 1);
  ASSERT_PTR_EQ(keep[0], c);
  ASSERT_EQ(refgc_refcount(OB(c)), 1);
  ASSERT_EQ(refgc_is_finalized(OB(c)), 0);
  ASSERT_EQ(event_count('F', 2), 0);
  ASSERT_EQ(c->value, 22);
  ASSERT_EQ(refgc_refcount(c->a), 1);
  ASSERT_EQ(NODE(c->a)->id, 3);
  ASSERT_EQ(NODE(c->b)->id, 4);
  keep[0] = NULL;
  refgc_decref(OB(c));
  for (long id = 2; id <= 4; id++) {
    ASSERT_EQ(event_count('F', id), 1);
    ASSERT_EQ(event_count('R', id), 1);
  }
  ASSERT_EQ(tstats(T_hooks).live, s0.live);
  ASSERT_HOOKS_OK();
  hooks_reset();
}

/* ============================================================================================
 * Order within a release
 * ========================================================================================== */

static refgc_object_t *w_p, *w_c1; /* weak references to P and C1 */
static node *shared_child;
static void order_fin(node *n) {
  if (n->id == 1) { /* P: intact, children intact, its own weak references not yet cleared */
    node *c1 = NODE(n->a);
    HOOK_CHECK(n->value == 100);
    HOOK_CHECK(c1 && c1->id == 2 && c1->value == 200 && refgc_refcount(OB(c1)) == 1);
    HOOK_CHECK(!refgc_is_finalized(OB(c1)));
    HOOK_CHECK(c1->a && NODE(c1->a)->value == 300);
    HOOK_CHECK(refgc_refcount(OB(shared_child)) == 2);
    HOOK_CHECK(refgc_weakref_alive(w_p) == 1);
    HOOK_CHECK(refgc_weakref_alive(w_c1) == 1);
    HOOK_CHECK(event_count('R', 2) == 0 && event_count('R', 3) == 0);
  } else if (n->id == 2) {
    /* P's weak references were cleared before P dropped its references */
    HOOK_CHECK(refgc_weakref_alive(w_p) == 0);
    HOOK_CHECK(refgc_weakref_get(w_p) == NULL);
    HOOK_CHECK(n->a && NODE(n->a)->value == 300 && refgc_refcount(n->a) == 1);
  }
}
static void order_rel(node *n) {
  if (n->id == 1) {
    /* references dropped before the release hook; weak references already cleared */
    HOOK_CHECK(refgc_refcount(OB(shared_child)) == 1);
    HOOK_CHECK(refgc_weakref_get(w_p) == NULL);
    HOOK_CHECK(refgc_weakref_alive(w_p) == 0);
    HOOK_CHECK(n->value == 100); /* its own memory is still there */
    HOOK_CHECK(wr_cb_calls == 0); /* callbacks wait for the whole release */
  } else if (n->id == 2) {
    HOOK_CHECK(refgc_weakref_get(w_c1) == NULL);
    HOOK_CHECK(refgc_weakref_alive(w_c1) == 0);
  }
}

TEST(release_order_finalizer_then_weakrefs_then_references_then_hook) {
  types_init();
  hooks_reset();
  wr_cb_calls = 0;
  node *p = new_node(T_hooks, 1);
  p->value = 100;
  node *c1 = new_node(T_hooks, 2);
  c1->value = 200;
  node *c2 = new_node(T_hooks, 3);
  c2->value = 300;
  c1->a = OB(c2);
  p->a = OB(c1);
  shared_child = new_node(T_hooks, 4);
  refgc_incref(OB(shared_child));
  p->b = OB(shared_child);
  w_p = refgc_weakref_new(OB(p), wr_cb_count, NULL);
  w_c1 = refgc_weakref_new(OB(c1), wr_cb_count, NULL);
  on_fin = order_fin;
  on_rel = order_rel;
  refgc_decref(OB(p));
  ASSERT_HOOKS_OK();
  ASSERT_LT(event_index('F', 1), event_index('R', 1));
  ASSERT_LT(event_index('F', 1), event_index('F', 2));
  ASSERT_LT(event_index('F', 2), event_index('F', 3));
  ASSERT_LT(event_index('F', 2), event_index('R', 2));
  ASSERT_LT(event_index('F', 3), event_index('R', 3));
  ASSERT_EQ(event_count('F', 4), 0);
  ASSERT_EQ(refgc_refcount(OB(shared_child)), 1);
  ASSERT_EQ(wr_cb_calls, 2);
  refgc_decref(OB(shared_child));
  refgc_decref(w_p);
  refgc_decref(w_c1);
  ASSERT_HOOKS_OK();
  hooks_reset();
}

/* ============================================================================================
 * Weak references
 * ========================================================================================== */

TEST(weakref_basics) {
  types_init();
  hooks_reset();
  refgc_type_stats_t w0 = tstats(T_weakref);
  node *o = new_node(T_rel, 1);
  o->value = 5;
  ASSERT_EQ(refgc_weakref_count(OB(o)), 0);
  refgc_object_t *w = refgc_weakref_new(OB(o), NULL, NULL);
  ASSERT(w != NULL);
  ASSERT_EQ(refgc_refcount(w), 1);
  ASSERT_PTR_EQ(refgc_type_of(w), T_weakref);
  ASSERT_EQ(refgc_refcount(OB(o)), 1); /* a weak reference does not keep it alive */
  ASSERT_EQ(refgc_weakref_count(OB(o)), 1);
  ASSERT_EQ(refgc_weakref_alive(w), 1);
  refgc_object_t *g = refgc_weakref_get(w);
  ASSERT_PTR_EQ(g, OB(o));
  ASSERT_EQ(refgc_refcount(OB(o)), 2); /* a new strong reference */
  refgc_decref(g);
  refgc_object_t *w2 = refgc_weakref_new(OB(o), NULL, NULL);
  ASSERT_EQ(refgc_weakref_count(OB(o)), 2);
  refgc_decref(OB(o));
  ASSERT_EQ(rel_calls, 1);
  ASSERT(refgc_weakref_get(w) == NULL);
  ASSERT(refgc_weakref_get(w2) == NULL);
  ASSERT_EQ(refgc_weakref_alive(w), 0);
  ASSERT_EQ(refgc_refcount(w), 1); /* the weak reference itself lives on */
  refgc_decref(w);
  refgc_decref(w2);
  refgc_type_stats_t w1 = tstats(T_weakref);
  ASSERT_EQ(w1.live, w0.live);
  ASSERT_EQ(w1.created, w0.created + 2);

  /* misuse */
  ASSERT(refgc_weakref_new(NULL, NULL, NULL) == NULL);
  ASSERT_EQ(refgc_last_error(), REFGC_EINVAL);
  node *x = new_node(T_plain, 2);
  ASSERT(refgc_weakref_get(OB(x)) == NULL); /* not a weak reference */
  ASSERT_EQ(refgc_weakref_alive(OB(x)), 0);
  ASSERT_EQ(refgc_refcount(OB(x)), 1);
  /* a weak reference to a weak reference */
  refgc_object_t *wx = refgc_weakref_new(OB(x), NULL, NULL);
  refgc_object_t *wwx = refgc_weakref_new(wx, wr_cb_count, NULL);
  wr_cb_calls = 0;
  refgc_decref(wx);
  ASSERT_EQ(refgc_weakref_alive(wwx), 0);
  ASSERT_EQ(wr_cb_calls, 1);
  refgc_decref(wwx);
  refgc_decref(OB(x));
  ASSERT_EQ(tstats(T_weakref).live, w0.live);
  ASSERT_HOOKS_OK();
}

/* The header: the target is "finalized (once), its weak references cleared, its references
 * dropped, its release hook run, and its memory freed"; callbacks run after that. So weak
 * references to T read dead in T's release hook and in the finalizers of what T held. */
static refgc_object_t *w_t;
static void cleared_fin(node *n) {
  if (n->id == 1) HOOK_CHECK(refgc_weakref_alive(w_t) == 1); /* T itself, still intact */
  if (n->id == 2 || n->id == 3) {                           /* held by T */
    HOOK_CHECK(refgc_weakref_get(w_t) == NULL);
    HOOK_CHECK(refgc_weakref_alive(w_t) == 0);
    HOOK_CHECK(wr_cb_calls == 0);
  }
}
static void cleared_rel(node *n) {
  if (n->id == 1) {
    HOOK_CHECK(refgc_weakref_get(w_t) == NULL);
    HOOK_CHECK(refgc_weakref_alive(w_t) == 0);
    HOOK_CHECK(wr_cb_calls == 0);
  }
}

TEST(weakrefs_cleared_before_memory_released) {
  types_init();
  hooks_reset();
  wr_cb_calls = 0;
  node *t = new_node(T_hooks, 1);
  t->a = OB(new_node(T_hooks, 2));
  NODE(t->a)->a = OB(new_node(T_hooks, 3));
  w_t = refgc_weakref_new(OB(t), wr_cb_count, NULL);
  on_fin = cleared_fin;
  on_rel = cleared_rel;
  refgc_decref(OB(t));
  ASSERT_EQ(rel_calls, 3);
  ASSERT_EQ(wr_cb_calls, 1);
  ASSERT_HOOKS_OK();
  refgc_decref(w_t);
  hooks_reset();
}

/* Objects released in the same cascade: a weak reference never hands out an object whose
 * release has begun (count 0), whatever the order siblings go in. */
static refgc_object_t *w_sib[2];
static void sibling_fin(node *n) {
  if (n->id != 2 && n->id != 3) return;
  refgc_object_t *other = refgc_weakref_get(w_sib[n->id == 2 ? 1 : 0]);
  if (other) {
    HOOK_CHECK(refgc_refcount(other) >= 2);
    HOOK_CHECK(NODE(other)->value == 77);
    refgc_decref(other);
  }
}

TEST(weakref_never_returns_object_being_released) {
  types_init();
  hooks_reset();
  node *p = new_node(T_hooks, 1);
  node *s1 = new_node(T_hooks, 2), *s2 = new_node(T_hooks, 3);
  s1->value = s2->value = 77;
  p->a = OB(s1);
  p->b = OB(s2);
  w_sib[0] = refgc_weakref_new(OB(s1), NULL, NULL);
  w_sib[1] = refgc_weakref_new(OB(s2), NULL, NULL);
  on_fin = sibling_fin;
  refgc_decref(OB(p));
  ASSERT_EQ(rel_calls, 3);
  ASSERT_EQ(event_count('F', 2), 1);
  ASSERT_EQ(event_count('F', 3), 1);
  ASSERT_HOOKS_OK();
  refgc_decref(w_sib[0]);
  refgc_decref(w_sib[1]);
  hooks_reset();
}

static int order_log[16];
static int norder;
static refgc_object_t *order_wrs[16];
static void cb_order(refgc_object_t *wr, void *arg) {
  int i = (int)(intptr_t)arg;
  HOOK_CHECK(wr == order_wrs[i]); /* the weak reference itself, borrowed */
  HOOK_CHECK(refgc_weakref_get(wr) == NULL);
  HOOK_CHECK(refgc_weakref_alive(wr) == 0);
  HOOK_CHECK(refgc_refcount(wr) >= 1);
  if (norder < 16) order_log[norder++] = i;
}

TEST(weakref_callback_order_most_recent_first) {
  types_init();
  hooks_reset();
  norder = 0;
  node *o = new_node(T_hooks, 1);
  for (int i = 0; i < 5; i++)
    order_wrs[i] = refgc_weakref_new(OB(o), i == 2 ? NULL : cb_order, (void *)(intptr_t)i);
  ASSERT_EQ(refgc_weakref_count(OB(o)), 5);
  refgc_decref(OB(o));
  ASSERT_HOOKS_OK();
  ASSERT_EQ(norder, 4);
  ASSERT_EQ(order_log[0], 4);
  ASSERT_EQ(order_log[1], 3);
  ASSERT_EQ(order_log[2], 1);
  ASSERT_EQ(order_log[3], 0);
  for (int i = 0; i < 5; i++) {
    ASSERT_EQ(refgc_refcount(order_wrs[i]), 1); /* the queue's reference was dropped */
    refgc_decref(order_wrs[i]);
  }
  hooks_reset();
}

/* callbacks run after the whole cascade: a tree, a weak reference with callback per node */
enum { TREE_N = 63 };
static refgc_object_t *tree_wrs[TREE_N];
static int tree_cb_calls;
static void cb_tree(refgc_object_t *wr, void *arg) {
  (void)wr;
  (void)arg;
  tree_cb_calls++;
  HOOK_CHECK(rel_calls == TREE_N); /* every node already released */
  for (int i = 0; i < TREE_N; i++) HOOK_CHECK(refgc_weakref_alive(tree_wrs[i]) == 0);
  for (int i = 0; i < TREE_N; i++) HOOK_CHECK(refgc_weakref_get(tree_wrs[i]) == NULL);
}

TEST(weakref_callbacks_after_whole_cascade) {
  types_init();
  hooks_reset();
  tree_cb_calls = 0;
  node *nodes[TREE_N];
  for (int i = TREE_N - 1; i >= 0; i--) {
    nodes[i] = new_node(T_hooks, i);
    if (2 * i + 1 < TREE_N) nodes[i]->a = OB(nodes[2 * i + 1]);
    if (2 * i + 2 < TREE_N) nodes[i]->b = OB(nodes[2 * i + 2]);
    tree_wrs[i] = refgc_weakref_new(OB(nodes[i]), cb_tree, NULL);
  }
  refgc_decref(OB(nodes[0]));
  ASSERT_EQ(rel_calls, TREE_N);
  ASSERT_EQ(tree_cb_calls, TREE_N); /* all ran before refgc_decref returned */
  ASSERT_HOOKS_OK();
  for (int i = 0; i < TREE_N; i++) refgc_decref(tree_wrs[i]);
  hooks_reset();
}

/* callbacks that allocate, create and drop objects and weak references */
static int cb2_calls;
static refgc_object_t *cb_kept_wr;
static node *cb_long_lived;
static void cb_inner(refgc_object_t *wr, void *arg) {
  (void)arg;
  HOOK_CHECK(refgc_weakref_get(wr) == NULL);
  cb2_calls++;
}
static void cb_busy(refgc_object_t *wr, void *arg) {
  (void)wr;
  (void)arg;
  cb_calls++;
  node *x = new_node(T_hooks, 500);
  x->a = OB(new_node(T_hooks, 501));
  cb_kept_wr = refgc_weakref_new(OB(x), cb_inner, NULL);
  refgc_object_t *tmp = refgc_weakref_new(OB(cb_long_lived), cb_inner, NULL);
  refgc_decref(tmp); /* dropped before its referent: no callback */
  refgc_decref(OB(x)); /* releases x and 501; x's callback runs */
  HOOK_CHECK(refgc_weakref_alive(cb_kept_wr) == 0);
  unsigned char *raw = refgc_malloc(100);
  memset(raw, 1, 100);
  refgc_free(raw);
}

TEST(weakref_callbacks_allocate_and_drop) {
  types_init();
  hooks_reset();
  cb2_calls = 0;
  cb_kept_wr = NULL;
  refgc_type_stats_t w0 = tstats(T_weakref);
  cb_long_lived = new_node(T_plain, 9);
  node *a = new_node(T_hooks, 1);
  refgc_object_t *wa = refgc_weakref_new(OB(a), cb_busy, NULL);
  refgc_decref(OB(a));
  ASSERT_EQ(cb_calls, 1);
  ASSERT_EQ(cb2_calls, 1);
  ASSERT_EQ(event_count('R', 500), 1);
  ASSERT_EQ(event_count('R', 501), 1);
  ASSERT(cb_kept_wr != NULL);
  ASSERT_EQ(refgc_weakref_alive(cb_kept_wr), 0);
  ASSERT_EQ(refgc_weakref_count(OB(cb_long_lived)), 0);
  refgc_decref(cb_kept_wr);
  refgc_decref(wa);

  refgc_decref(OB(cb_long_lived));
  ASSERT_EQ(tstats(T_weakref).live, w0.live);
  ASSERT_HOOKS_OK();
  hooks_reset();
}

/* a weak reference whose callback owns it; arg cannot name the weak reference before it
 * exists, so the callback finds it through a side table */
static refgc_object_t *self_owned[32];
static int nself_owned;
static void cb_drop_from_table(refgc_object_t *wr, void *arg) {
  int i = (int)(intptr_t)arg;
  HOOK_CHECK(self_owned[i] == wr);
  self_owned[i] = NULL;
  cb_calls++;
  refgc_decref(wr); /* the program's reference; the library still holds one */
  HOOK_CHECK(refgc_weakref_alive(wr) == 0);
}

TEST(weakref_callback_drops_its_own_weakref) {
  types_init();
  hooks_reset();
  refgc_freelists_clear();
  refgc_type_stats_t w0 = tstats(T_weakref);
  long blocks0 = live_blocks();
  node *o = new_node(T_hooks, 1);
  nself_owned = 20;
  for (int i = 0; i < nself_owned; i++)
    self_owned[i] = refgc_weakref_new(OB(o), cb_drop_from_table, (void *)(intptr_t)i);
  refgc_decref(OB(o));
  ASSERT_EQ(cb_calls, 20);
  for (int i = 0; i < nself_owned; i++) ASSERT(self_owned[i] == NULL);
  ASSERT_EQ(tstats(T_weakref).live, w0.live);
  refgc_freelists_clear();
  ASSERT_EQ(live_blocks(), blocks0);
  ASSERT_HOOKS_OK();
  hooks_reset();
}

TEST(weakref_dropped_before_target_gets_no_callback) {
  types_init();
  hooks_reset();
  wr_cb_calls = 0;
  refgc_type_stats_t w0 = tstats(T_weakref);
  node *o = new_node(T_hooks, 1);
  refgc_object_t *w1 = refgc_weakref_new(OB(o), wr_cb_count, NULL);
  refgc_object_t *w2 = refgc_weakref_new(OB(o), wr_cb_count, NULL);
  refgc_object_t *w3 = refgc_weakref_new(OB(o), wr_cb_count, NULL);
  ASSERT_EQ(refgc_weakref_count(OB(o)), 3);
  refgc_decref(w2); /* the middle one */
  ASSERT_EQ(refgc_weakref_count(OB(o)), 2);
  refgc_decref(w3); /* the head */
  ASSERT_EQ(refgc_weakref_count(OB(o)), 1);
  refgc_decref(w1);
  ASSERT_EQ(refgc_weakref_count(OB(o)), 0);
  refgc_decref(OB(o));
  ASSERT_EQ(wr_cb_calls, 0);

  /* the weak reference and its target die in the same cascade, in either order */
  for (int order = 0; order < 2; order++) {
    node *p = new_node(T_hooks, 10);
    node *t = new_node(T_hooks, 11);
    refgc_object_t *w = refgc_weakref_new(OB(t), wr_cb_count, NULL);
    p->a = order ? w : OB(t);
    p->b = order ? OB(t) : w;
    refgc_decref(OB(p));
    ASSERT_EQ(wr_cb_calls, 0);
  }
  ASSERT_EQ(tstats(T_weakref).live, w0.live);
  ASSERT_HOOKS_OK();
  hooks_reset();
}

static struct {
  refgc_object_t ob;
  long id, value;
  refgc_object_t *a, *b;
} static_obj;

TEST(weakref_to_immortal_stays_alive) {
  types_init();
  hooks_reset();
  wr_cb_calls = 0;
  node *o = new_node(T_hooks, 1);
  refgc_make_immortal(OB(o));
  refgc_object_t *w = refgc_weakref_new(OB(o), wr_cb_count, NULL);
  for (int i = 0; i < 10; i++) refgc_decref(OB(o));
  ASSERT_EQ(refgc_weakref_alive(w), 1);
  refgc_object_t *g = refgc_weakref_get(w);
  ASSERT_PTR_EQ(g, OB(o));
  refgc_decref(g);
  ASSERT_EQ(refgc_weakref_count(OB(o)), 1);
  refgc_decref(w);
  ASSERT_EQ(refgc_weakref_count(OB(o)), 0);

  refgc_static_init(&static_obj.ob, T_hooks);
  refgc_object_t *ws = refgc_weakref_new(&static_obj.ob, wr_cb_count, NULL);
  ASSERT(ws != NULL);
  refgc_decref(&static_obj.ob);
  ASSERT_EQ(refgc_weakref_alive(ws), 1);
  ASSERT_PTR_EQ(refgc_weakref_get(ws), &static_obj.ob);
  ASSERT_EQ(refgc_weakref_count(&static_obj.ob), 1);
  refgc_decref(ws);
  ASSERT_EQ(wr_cb_calls, 0);
  ASSERT_EQ(fin_calls, 0);
  ASSERT_EQ(rel_calls, 0);
  hooks_reset();
}

/* weak references created from a finalizer (to the object itself) and from a release hook */
static refgc_object_t *w_from_fin, *w_from_rel;
static void fin_make_weakref(node *n) {
  if (n->id == 1) w_from_fin = refgc_weakref_new(OB(n), wr_cb_count, NULL);
}
static void rel_make_weakref(node *n) {
  if (n->id == 1) w_from_rel = refgc_weakref_new(OB(n), NULL, NULL);
}

TEST(weakref_created_by_finalizer_and_release_hook) {
  types_init();
  hooks_reset();
  wr_cb_calls = 0;
  w_from_fin = w_from_rel = NULL;
  on_fin = fin_make_weakref;
  on_rel = rel_make_weakref;
  node *o = new_node(T_hooks, 1);
  refgc_decref(OB(o));
  ASSERT(w_from_fin != NULL);
  ASSERT_EQ(refgc_weakref_alive(w_from_fin), 0);
  ASSERT_EQ(wr_cb_calls, 1); /* not resurrected: its callback fires */
  /* during the release hook the object is dying: the weak reference must not see it */
  if (w_from_rel) {
    ASSERT(refgc_weakref_get(w_from_rel) == NULL);
    ASSERT_EQ(refgc_weakref_alive(w_from_rel), 0);
    refgc_decref(w_from_rel);
  }
  refgc_decref(w_from_fin);
  ASSERT_HOOKS_OK();
  hooks_reset();
}

TEST(weakref_many_random_against_model) {
  types_init();
  hooks_reset();
  test_rng_t rng = {test_seed() ^ 0x5157};
  enum { N = 3000, PER = 4 };
  static node *objs[N];
  static refgc_object_t *wrs[N][PER];
  static int dead[N];
  refgc_type_stats_t w0 = tstats(T_weakref);
  for (int i = 0; i < N; i++) {
    objs[i] = new_node(T_plain, i);
    dead[i] = 0;
    for (int k = 0; k < PER; k++)
      wrs[i][k] = (int)test_below(&rng, 4) ? refgc_weakref_new(OB(objs[i]), NULL, NULL) : NULL;
  }
  for (int round = 0; round < 4; round++) {
    for (int j = 0; j < N / 3; j++) {
      int i = (int)test_below(&rng, N), k = (int)test_below(&rng, PER);
      if (test_below(&rng, 2)) {
        if (wrs[i][k]) {
          refgc_decref(wrs[i][k]);
          wrs[i][k] = NULL;
        } else if (!dead[i]) {
          wrs[i][k] = refgc_weakref_new(OB(objs[i]), NULL, NULL);
        }
      } else if (!dead[i]) {
        refgc_decref(OB(objs[i]));
        dead[i] = 1;
      }
    }
    for (int i = 0; i < N; i++) {
      size_t want = 0;
      for (int k = 0; k < PER; k++) {
        if (!wrs[i][k]) continue;
        want++;
        if (refgc_weakref_alive(wrs[i][k]) != !dead[i])
          TEST_FAIL("seed %" PRIu64 ": object %d (dead %d): weakref alive %d", test_seed(), i,
                    dead[i], refgc_weakref_alive(wrs[i][k]));
        refgc_object_t *g = refgc_weakref_get(wrs[i][k]);
        ASSERT_PTR_EQ(g, dead[i] ? NULL : OB(objs[i]));
        refgc_xdecref(g);
      }
      if (!dead[i]) ASSERT_EQ(refgc_weakref_count(OB(objs[i])), want);
    }
  }
  for (int i = 0; i < N; i++) {
    if (!dead[i]) refgc_decref(OB(objs[i]));
    for (int k = 0; k < PER; k++)
      if (wrs[i][k]) {
        ASSERT_EQ(refgc_weakref_alive(wrs[i][k]), 0);
        refgc_decref(wrs[i][k]);
      }
  }
  ASSERT_EQ(tstats(T_weakref).live, w0.live);
  ASSERT_EQ(refgc_heap_check(), 0);
}

/* ============================================================================================
 * Weakly valued maps
 * ========================================================================================== */

TEST(weakmap_set_get_remove_count) {
  types_init();
  hooks_reset();
  refgc_weakmap_t *m = refgc_weakmap_new();
  ASSERT(m != NULL);
  ASSERT_EQ(refgc_weakmap_count(m), 0);
  node *a = new_node(T_hooks, 1), *b = new_node(T_hooks, 2);
  ASSERT_EQ(refgc_weakmap_set(m, "alpha", 5, OB(a)), 0);
  ASSERT_EQ(refgc_weakmap_set(m, "beta", 4, OB(b)), 0);
  ASSERT_EQ(refgc_weakmap_set(m, "", 0, OB(b)), 0); /* an empty key */
  ASSERT_EQ(refgc_weakmap_set(m, "", 0, OB(a)), 0); /* the same empty key: replaced */
  ASSERT_EQ(refgc_weakmap_count(m), 3);
  ASSERT_EQ(refgc_refcount(OB(a)), 1); /* the map keeps nothing alive */
  refgc_object_t *g = refgc_weakmap_get(m, "alpha", 5);
  ASSERT_PTR_EQ(g, OB(a));
  ASSERT_EQ(refgc_refcount(OB(a)), 2);
  refgc_decref(g);
  g = refgc_weakmap_get(m, "", 0);
  ASSERT_PTR_EQ(g, OB(a));
  refgc_decref(g);
  ASSERT(refgc_weakmap_get(m, "alph", 4) == NULL);
  ASSERT(refgc_weakmap_get(m, "alphaX", 6) == NULL);
  ASSERT_EQ(refgc_weakmap_set(m, "x", 1, NULL), REFGC_EINVAL);
  ASSERT_EQ(refgc_weakmap_set(NULL, "x", 1, OB(a)), REFGC_EINVAL);
  ASSERT_EQ(refgc_weakmap_count(m), 3);
  ASSERT_EQ(refgc_weakmap_remove(m, "beta", 4), 1);
  ASSERT_EQ(refgc_weakmap_remove(m, "beta", 4), 0);
  ASSERT(refgc_weakmap_get(m, "beta", 4) == NULL);
  ASSERT_EQ(refgc_weakmap_count(m), 2);
  ASSERT_EQ(refgc_weakmap_remove(m, "", 0), 1);
  ASSERT_EQ(refgc_weakmap_count(m), 1);
  ASSERT_EQ(refgc_weakmap_count(NULL), 0);
  ASSERT(refgc_weakmap_get(NULL, "x", 1) == NULL);
  ASSERT_EQ(refgc_weakmap_remove(NULL, "x", 1), 0);
  refgc_weakmap_free(NULL);
  /* the entry disappears when its value is released */
  refgc_decref(OB(a));
  ASSERT_EQ(rel_calls, 1);
  ASSERT(refgc_weakmap_get(m, "alpha", 5) == NULL);
  ASSERT_EQ(refgc_weakmap_count(m), 0);
  ASSERT_EQ(refgc_weakmap_remove(m, "alpha", 5), 0);
  refgc_decref(OB(b));
  refgc_weakmap_free(m);
  ASSERT_EQ(refgc_heap_check(), 0);
}

/* an empty key given as (NULL, 0): accepted (only NULL with a length is EINVAL); run in a
 * child so that a sanitizer stopping the process fails this case only */
static int weakmap_null_key_child(void *arg) {
  (void)arg;
  refgc_weakmap_t *m = refgc_weakmap_new();
  node *a = new_node(T_plain, 1), *b = new_node(T_plain, 2);
  CCHECK(refgc_weakmap_set(m, NULL, 0, OB(a)) == 0);
  CCHECK(refgc_weakmap_set(m, NULL, 0, OB(b)) == 0); /* replaces */
  CCHECK(refgc_weakmap_count(m) == 1);
  refgc_object_t *g = refgc_weakmap_get(m, NULL, 0);
  CCHECK(g == OB(b));
  refgc_decref(g);
  g = refgc_weakmap_get(m, "", 0);
  CCHECK(g == OB(b));
  refgc_decref(g);
  CCHECK(refgc_weakmap_set(m, NULL, 1, OB(a)) == REFGC_EINVAL);
  CCHECK(refgc_weakmap_remove(m, NULL, 0) == 1);
  CCHECK(refgc_weakmap_count(m) == 0);
  refgc_weakmap_free(m);
  refgc_decref(OB(a));
  refgc_decref(OB(b));
  return 0;
}

TEST(weakmap_empty_key_as_null) {
  types_init();
  RUN_ISOLATED(weakmap_null_key_child, NULL, (size_t)1 << 20);
}

TEST(weakmap_overwrite) {
  types_init();
  hooks_reset();
  refgc_freelists_clear();
  long blocks0 = live_blocks();
  refgc_weakmap_t *m = refgc_weakmap_new();
  node *a = new_node(T_hooks, 1), *b = new_node(T_hooks, 2);
  ASSERT_EQ(refgc_weakmap_set(m, "k", 1, OB(a)), 0);
  ASSERT_EQ(refgc_weakmap_set(m, "k", 1, OB(b)), 0);
  ASSERT_EQ(refgc_weakmap_count(m), 1);
  refgc_object_t *g = refgc_weakmap_get(m, "k", 1);
  ASSERT_PTR_EQ(g, OB(b));
  refgc_decref(g);
  refgc_decref(OB(a)); /* the old value dies: the entry (now b) stays */
  ASSERT_EQ(refgc_weakmap_count(m), 1);
  g = refgc_weakmap_get(m, "k", 1);
  ASSERT_PTR_EQ(g, OB(b));
  refgc_decref(g);
  ASSERT_EQ(refgc_weakmap_set(m, "k", 1, OB(b)), 0); /* the same value again */
  ASSERT_EQ(refgc_weakmap_count(m), 1);
  refgc_decref(OB(b));
  ASSERT_EQ(refgc_weakmap_count(m), 0);
  ASSERT(refgc_weakmap_get(m, "k", 1) == NULL);
  refgc_weakmap_free(m);
  refgc_freelists_clear();
  ASSERT_EQ(live_blocks(), blocks0);
}

TEST(weakmap_free_while_values_alive) {
  warm_up();
  hooks_reset();
  long blocks0 = live_blocks();
  refgc_weakmap_t *m = refgc_weakmap_new();
  node *vals[100];
  for (int i = 0; i < 100; i++) {
    vals[i] = new_node(T_hooks, i);
    char key[16];
    int len = snprintf(key, sizeof key, "key%d", i);
    ASSERT_EQ(refgc_weakmap_set(m, key, (size_t)len, OB(vals[i])), 0);
  }
  ASSERT_EQ(refgc_weakmap_count(m), 100);
  for (int i = 0; i < 50; i++) refgc_decref(OB(vals[i]));
  ASSERT_EQ(refgc_weakmap_count(m), 50);
  refgc_weakmap_free(m);
  for (int i = 50; i < 100; i++) {
    ASSERT_EQ(refgc_weakref_count(OB(vals[i])), 0);
    ASSERT_EQ(refgc_refcount(OB(vals[i])), 1);
    refgc_decref(OB(vals[i]));
  }
  ASSERT_EQ(rel_calls, 100);
  refgc_freelists_clear();
  ASSERT_EQ(live_blocks(), blocks0);
}

/* Freeing a map from a finalizer during a cascade in which one of its values dies. P holds a
 * value V (an entry of the map) and F, whose finalizer frees the map. */
static refgc_weakmap_t *fin_map;
static size_t count_seen_by_fin;
static void fin_free_map(node *n) {
  if (n->id != 3 || !fin_map) return;
  count_seen_by_fin = refgc_weakmap_count(fin_map);
  HOOK_CHECK(refgc_weakmap_get(fin_map, "v", 1) == NULL);
  refgc_weakmap_free(fin_map);
  fin_map = NULL;
}
static void remove_from_map(node *n) {
  if (n->id != 3 || !fin_map) return;
  HOOK_CHECK(refgc_weakmap_get(fin_map, "v", 1) == NULL);
  refgc_weakmap_remove(fin_map, "v", 1);
}

/* `v_first`: P's references are dropped so that V's release is complete (callback queued)
 * before F's finalizer runs; otherwise F's finalizer runs while V is dropped but not yet
 * released. Returns the leaked blocks per round. */
static long map_free_in_cascade(int v_first, void (*fin)(node *), int rounds) {
  long blocks0 = live_blocks();
  for (int r = 0; r < rounds; r++) {
    fin_map = refgc_weakmap_new();
    node *p = new_node(T_hooks, 1);
    node *v = new_node(T_hooks, 2);
    node *f = new_node(T_hooks, 3);
    refgc_weakmap_set(fin_map, "v", 1, OB(v));
    refgc_weakmap_set(fin_map, "other", 5, OB(p));
    /* the release stack is last in, first out: the child visited last goes first */
    p->a = v_first ? OB(f) : OB(v);
    p->b = v_first ? OB(v) : OB(f);
    on_fin = fin;
    refgc_decref(OB(p));
    on_fin = NULL;
    if (fin_map) { /* remove_from_map leaves the map to us */
      refgc_weakmap_free(fin_map);
      fin_map = NULL;
    }
  }
  refgc_freelists_clear();
  return (live_blocks() - blocks0) / rounds;
}

TEST(weakmap_freed_from_finalizer_after_value_released) {
  warm_up();
  hooks_reset();
  long leaked = map_free_in_cascade(1, fin_free_map, 200);
  ASSERT_EQ(rel_calls, 600);
  ASSERT_EQ(leaked, 0);
  ASSERT_HOOKS_OK();
  ASSERT_EQ(refgc_heap_check(), 0);
  hooks_reset();
}

TEST(weakmap_freed_from_finalizer_while_value_dying) {
  warm_up();
  hooks_reset();
  long leaked = map_free_in_cascade(0, fin_free_map, 200);
  ASSERT_EQ(rel_calls, 600);
  ASSERT_HOOKS_OK();
  if (leaked) TEST_FAIL("%ld heap blocks leaked per map freed while its value was dying", leaked);
  ASSERT_EQ(refgc_heap_check(), 0);
  hooks_reset();
}

TEST(weakmap_remove_while_value_dying) {
  warm_up();
  hooks_reset();
  long leaked = map_free_in_cascade(0, remove_from_map, 200);
  ASSERT_EQ(rel_calls, 600);
  ASSERT_HOOKS_OK();
  if (leaked) TEST_FAIL("%ld heap blocks leaked per entry removed while its value was dying", leaked);
  hooks_reset();
}

/* "refgc_weakmap_count(): entries whose value is alive" — also while a callback is pending */
TEST(weakmap_count_excludes_released_values) {
  warm_up();
  for (int v_first = 0; v_first < 2; v_first++) {
    hooks_reset();
    count_seen_by_fin = 99;
    map_free_in_cascade(v_first, fin_free_map, 1);
    ASSERT_HOOKS_OK();
    /* the map's other entry is P, dying too: no entry has a live value */
    if (count_seen_by_fin != 0)
      TEST_FAIL("(%s) refgc_weakmap_count() is %zu while no value is alive (refgc_weakmap_get "
                "returns NULL for them)",
                v_first ? "values released, callbacks pending" : "values dying",
                count_seen_by_fin);
  }
  hooks_reset();
}

TEST(weakmap_random_against_model) {
  types_init();
  hooks_reset();
  test_rng_t rng = {test_seed() ^ 0xA11CE};
  enum { KEYS = 500, VALS = 300, OPS = 30000 };
  static node *vals[VALS];
  static int val_alive[VALS];
  static int model[KEYS]; /* value index, or -1 */
  refgc_weakmap_t *m = refgc_weakmap_new();
  for (int i = 0; i < VALS; i++) {
    vals[i] = new_node(T_plain, i);
    val_alive[i] = 1;
  }
  for (int k = 0; k < KEYS; k++) model[k] = -1;
  for (int op = 0; op < OPS; op++) {
    int k = (int)test_below(&rng, KEYS);
    char key[24];
    int len = snprintf(key, sizeof key, "key-%d", k * 7919);
    switch (test_below(&rng, 8)) {
      case 0:
      case 1:
      case 2: {
        int v = (int)test_below(&rng, VALS);
        if (!val_alive[v]) {
          vals[v] = new_node(T_plain, v);
          val_alive[v] = 1;
        }
        ASSERT_EQ(refgc_weakmap_set(m, key, (size_t)len, OB(vals[v])), 0);
        model[k] = v;
        break;
      }
      case 3:
        ASSERT_EQ(refgc_weakmap_remove(m, key, (size_t)len), model[k] >= 0);
        model[k] = -1;
        break;
      case 4: {
        int v = (int)test_below(&rng, VALS);
        if (val_alive[v]) {
          refgc_decref(OB(vals[v]));
          val_alive[v] = 0;
          for (int j = 0; j < KEYS; j++)
            if (model[j] == v) model[j] = -1;
        }
        break;
      }
      default: {
        refgc_object_t *g = refgc_weakmap_get(m, key, (size_t)len);
        if (model[k] < 0) {
          if (g) TEST_FAIL("seed %" PRIu64 " op %d: key %d should be absent", test_seed(), op, k);
        } else {
          if (g != OB(vals[model[k]]))
            TEST_FAIL("seed %" PRIu64 " op %d: key %d maps to %p, expected %p", test_seed(), op,
                      k, (void *)g, (void *)vals[model[k]]);
        }
        refgc_xdecref(g);
      }
    }
    if (op % 1000 == 0) {
      size_t want = 0;
      for (int j = 0; j < KEYS; j++) want += model[j] >= 0;
      ASSERT_EQ(refgc_weakmap_count(m), want);
    }
  }
  refgc_weakmap_free(m);
  for (int i = 0; i < VALS; i++)
    if (val_alive[i]) refgc_decref(OB(vals[i]));
  ASSERT_EQ(refgc_heap_check(), 0);
}

/* Many values dying in one cascade: each entry's callback drops the map's weak reference,
 * which releases it. The callbacks must not nest on the C stack, one level per callback. */
static long wide_values_n;
static int weakmap_wide_child(void *arg) {
  (void)arg;
  long n = wide_values_n;
  refvec *p = (refvec *)refgc_new_var(T_refvec, (size_t)n);
  CCHECK(p != NULL);
  p->n = (size_t)n;
  refgc_weakmap_t *m = refgc_weakmap_new();
  for (long i = 0; i < n; i++) {
    p->items[i] = refgc_new(T_plain);
    CCHECK(refgc_weakmap_set(m, &i, sizeof i, p->items[i]) == 0);
  }
  CCHECK(refgc_weakmap_count(m) == (size_t)n);
  refgc_decref(OB(p));
  CCHECK(refgc_weakmap_count(m) == 0);
  refgc_weakmap_free(m);
  CCHECK(refgc_heap_check() == 0);
  return 0;
}

TEST(weakmap_many_values_die_in_one_cascade_small_stack) {
  types_init();
  wide_values_n = 100000;
  RUN_ISOLATED(weakmap_wide_child, NULL, SMALL_STACK);
}

/* the same with plain weak references whose callbacks drop objects */
static void cb_drop_arg(refgc_object_t *wr, void *arg) {
  (void)wr;
  refgc_decref((refgc_object_t *)arg);
}
static int callbacks_drop_child(void *arg) {
  (void)arg;
  long n = wide_values_n;
  refvec *p = (refvec *)refgc_new_var(T_refvec, (size_t)n);
  CCHECK(p != NULL);
  p->n = (size_t)n;
  refgc_object_t **wrs = malloc((size_t)n * sizeof *wrs);
  CCHECK(wrs != NULL);
  refgc_type_stats_t s0 = tstats(T_plain);
  for (long i = 0; i < n; i++) {
    p->items[i] = refgc_new(T_plain);
    /* the callback drops an object that only it holds */
    wrs[i] = refgc_weakref_new(p->items[i], cb_drop_arg, refgc_new(T_plain));
  }
  refgc_decref(OB(p));
  CCHECK(tstats(T_plain).live == s0.live);
  for (long i = 0; i < n; i++) refgc_decref(wrs[i]);
  free(wrs);
  return 0;
}

TEST(weakref_many_callbacks_that_drop_objects_small_stack) {
  types_init();
  wide_values_n = 100000;
  RUN_ISOLATED(callbacks_drop_child, NULL, SMALL_STACK);
}

/* ============================================================================================
 * Free lists
 * ========================================================================================== */

TEST(freelist_reuse_bound_clear) {
  types_init();
  refgc_freelists_clear();
  refgc_type_stats_t s0 = tstats(T_fl);
  ASSERT_EQ(s0.cached, 0);
  ASSERT_EQ(s0.cached_bytes, 0);
  node *a = new_node(T_fl, 1);
  a->value = 99;
  a->b = NULL;
  void *addr = a;
  refgc_decref(OB(a));
  refgc_type_stats_t s1 = tstats(T_fl);
  ASSERT_EQ(s1.cached, 1);
  ASSERT_EQ(s1.cached_bytes, sizeof(node));
  ASSERT_EQ(s1.released, s0.released + 1);
  node *b = new_node(T_fl, 2);
  ASSERT_PTR_EQ(b, addr); /* the same memory comes back */
  ASSERT_EQ(b->value, 0); /* zeroed again */
  ASSERT_EQ(refgc_refcount(OB(b)), 1);
  ASSERT_PTR_EQ(refgc_type_of(OB(b)), T_fl);
  refgc_type_stats_t s2 = tstats(T_fl);
  ASSERT_EQ(s2.reused, s0.reused + 1);
  ASSERT_EQ(s2.cached, 0);
  ASSERT_EQ(s2.created, s0.created + 2);
  refgc_decref(OB(b));

  /* the bound: freelist_max 4 */
  node *many[10];
  for (int i = 0; i < 10; i++) many[i] = new_node(T_fl, i);
  for (int i = 0; i < 10; i++) {
    many[i]->value = i + 1;
    refgc_decref(OB(many[i]));
    ASSERT_LE(tstats(T_fl).cached, 4);
  }
  refgc_type_stats_t s3 = tstats(T_fl);
  ASSERT_EQ(s3.cached, 4);
  ASSERT_EQ(s3.cached_bytes, 4 * sizeof(node));
  ASSERT_EQ(s3.live, s0.live);
  /* reuse drains the list: four come from it, the fifth does not */
  uint64_t reused0 = s3.reused;
  for (int i = 0; i < 5; i++) {
    many[i] = new_node(T_fl, i);
    ASSERT_EQ(many[i]->value, 0);
  }
  ASSERT_EQ(tstats(T_fl).reused, reused0 + 4);
  ASSERT_EQ(tstats(T_fl).cached, 0);
  for (int i = 0; i < 5; i++) refgc_decref(OB(many[i]));
  ASSERT_EQ(tstats(T_fl).cached, 4);

  /* clear: empty, and memory really goes back */
  size_t in_use_cached = heap_in_use();
  refgc_freelists_clear();
  refgc_type_stats_t s4 = tstats(T_fl);
  ASSERT_EQ(s4.cached, 0);
  ASSERT_EQ(s4.cached_bytes, 0);
  ASSERT_LT(heap_in_use(), in_use_cached);
  node *c = new_node(T_fl, 3);
  ASSERT_EQ(tstats(T_fl).reused, s4.reused); /* nothing to reuse */
  refgc_decref(OB(c));

  /* a type without a free list caches nothing */
  node *d = new_node(T_plain, 4);
  refgc_decref(OB(d));
  ASSERT_EQ(tstats(T_plain).cached, 0);
  refgc_freelists_clear();
  ASSERT_EQ(refgc_heap_check(), 0);
}

/* The header: variable-size types keep free lists "per item count, for counts
 * 0..REFGC_FREELIST_ITEMS-1". */
TEST(freelist_variable_size_per_count) {
  types_init();
  refgc_freelists_clear();
  char missed[256] = "";
  size_t nmissed = 0;
  for (size_t n = 0; n < REFGC_FREELIST_ITEMS; n++) {
    refgc_freelists_clear(); /* each count starts with empty lists */
    refgc_type_stats_t s0 = tstats(T_numvec);
    numvec *a = (numvec *)refgc_new_var(T_numvec, n);
    a->n = n;
    for (size_t i = 0; i < n; i++) a->items[i] = 0xFFFF;
    void *addr = a;
    refgc_decref(OB(a));
    int cached_one = tstats(T_numvec).cached == s0.cached + 1;
    numvec *b = (numvec *)refgc_new_var(T_numvec, n);
    int same = (void *)b == addr && cached_one;
    uint64_t reused = tstats(T_numvec).reused - s0.reused;
    ASSERT_EQ(b->n, 0);
    for (size_t i = 0; i < n; i++) ASSERT_EQ(b->items[i], 0);
    refgc_decref(OB(b));
    if (!same || reused != 1) {
      size_t len = strlen(missed);
      snprintf(missed + len, sizeof missed - len, " %zu", n);
      nmissed++;
    }
  }
  refgc_freelists_clear();
  if (nmissed)
    TEST_FAIL("refgc_new_var(numvec, n) right after releasing one with n items did not reuse it "
              "for n =%s (16-byte header, 8-byte items)",
              missed);
}

/* whatever list a block lands on, it is big enough for what it is reused for, zeroed, and the
 * per-count bound holds */
TEST(freelist_variable_size_safe_and_bounded) {
  types_init();
  refgc_freelists_clear();
  test_rng_t rng = {test_seed() ^ 0xF1};
  enum { LIVE = 64 };
  numvec *live[LIVE] = {0};
  for (int op = 0; op < 100000; op++) {
    int i = (int)test_below(&rng, LIVE);
    if (live[i]) {
      for (uint64_t k = 0; k < live[i]->n; k++)
        if (live[i]->items[k] != (uint64_t)i * 1000 + k) TEST_FAIL("item corrupted");
      refgc_decref(OB(live[i]));
      live[i] = NULL;
    } else {
      size_t n = (size_t)test_below(&rng, REFGC_FREELIST_ITEMS + 4);
      numvec *v = (numvec *)refgc_new_var(T_numvec, n);
      ASSERT(v != NULL);
      ASSERT_GE(refgc_object_size(OB(v)), sizeof(numvec) + 8 * n);
      for (size_t k = 0; k < n; k++) {
        if (v->items[k]) TEST_FAIL("op %d: reused object item %zu not zero", op, k);
        v->items[k] = (uint64_t)i * 1000 + k;
      }
      v->n = n;
      live[i] = v;
    }
    if (op % 997 == 0) ASSERT_LE(tstats(T_numvec).cached, 8 * REFGC_FREELIST_ITEMS);
  }
  for (int i = 0; i < LIVE; i++)
    if (live[i]) refgc_decref(OB(live[i]));
  ASSERT_LE(tstats(T_numvec).cached, 8 * REFGC_FREELIST_ITEMS);
  ASSERT_EQ(tstats(T_numvec).live, 0);
  refgc_freelists_clear();
  ASSERT_EQ(tstats(T_numvec).cached, 0);
  ASSERT_EQ(refgc_heap_check(), 0);
}

/* refgc_freelists_clear "asks other threads to release theirs at their next refgc_new", and
 * their free lists keep working afterwards */
static pthread_barrier_t fl_bar;
static uint64_t fl_thread_reused;
static void *fl_other_thread(void *arg) {
  (void)arg;
  /* phase 1: cache three of T_fl; hold one T_fl2 (its list stays empty) */
  node *x[3];
  for (int i = 0; i < 3; i++) x[i] = new_node(T_fl, i);
  for (int i = 0; i < 3; i++) refgc_decref(OB(x[i]));
  node *held = new_node(T_fl2, 9);
  pthread_barrier_wait(&fl_bar); /* main checks, then clears */
  pthread_barrier_wait(&fl_bar);
  /* phase 2: the next refgc_new (of another type) */
  refgc_decref(OB(new_node(T_plain, 1)));
  pthread_barrier_wait(&fl_bar); /* main checks */
  pthread_barrier_wait(&fl_bar);
  /* phase 3: free lists still work */
  uint64_t r0 = tstats(T_fl2).reused;
  refgc_decref(OB(held));
  for (int i = 0; i < 4; i++) refgc_decref(OB(new_node(T_fl2, i)));
  fl_thread_reused = tstats(T_fl2).reused - r0;
  pthread_barrier_wait(&fl_bar);
  return NULL;
}

TEST(freelists_clear_reaches_other_threads) {
  types_init();
  refgc_freelists_clear();
  pthread_barrier_init(&fl_bar, NULL, 2);
  pthread_t th;
  ASSERT_EQ(pthread_create(&th, NULL, fl_other_thread, NULL), 0);
  pthread_barrier_wait(&fl_bar);
  int ok1 = tstats(T_fl).cached == 3;
  refgc_freelists_clear();
  pthread_barrier_wait(&fl_bar);
  pthread_barrier_wait(&fl_bar);
  size_t cached_after = tstats(T_fl).cached;
  pthread_barrier_wait(&fl_bar);
  pthread_barrier_wait(&fl_bar);
  pthread_join(th, NULL);
  pthread_barrier_destroy(&fl_bar);
  ASSERT(ok1);
  if (cached_after != 0 || fl_thread_reused == 0)
    TEST_FAIL("after refgc_freelists_clear() on the main thread: the other thread still caches %zu "
              "objects after its next refgc_new (expected 0), and its free lists then served "
              "%llu of 4 creations (expected >= 3)",
              cached_after, (unsigned long long)fl_thread_reused);
}

/* ============================================================================================
 * Deep and wide structures: no recursion, linear time
 * ========================================================================================== */


static int chain_child(void *arg) {
  long n = *(long *)arg;
  refgc_type_stats_t s0 = tstats(T_plain);
  double t0 = now_s();
  node *head = NULL;
  for (long i = 0; i < n; i++) {
    node *x = NODE(refgc_new(T_plain));
    CCHECK(x != NULL);
    x->a = head ? OB(head) : NULL;
    head = x;
  }
  CCHECK(tstats(T_plain).live == s0.live + (size_t)n);
  double t1 = now_s();
  refgc_decref(OB(head));
  double t2 = now_s();
  refgc_type_stats_t s1 = tstats(T_plain);
  CCHECK(s1.released == s0.released + (uint64_t)n);
  CCHECK(s1.live == s0.live);
  CCHECK(refgc_heap_check() == 0);
  printf("# chain of %ld: built in %.2fs, released in %.2fs on a %zu KiB stack\n", n, t1 - t0,
         t2 - t1, SMALL_STACK >> 10);
  return 0;
}

TEST(release_long_chain_small_stack) {
  types_init();
  long n = 10000000;
  RUN_ISOLATED(chain_child, &n, SMALL_STACK);
}

/* A tree of n nodes in first-child/next-sibling form: node i's parent is one of the three
 * nodes before it, so the tree is both deep (about n/2) and branching. */
static int tree_child(void *arg) {
  long n = *(long *)arg;
  test_rng_t rng = {test_seed() ^ 0x7EE};
  refgc_type_stats_t s0 = tstats(T_plain);
  double t0 = now_s();
  node *recent[4];
  node *root = NODE(refgc_new(T_plain));
  CCHECK(root != NULL);
  recent[0] = root;
  long depth_hint = 0;
  for (long i = 1; i < n; i++) {
    long back = 1 + (long)test_below(&rng, i < 3 ? (uint64_t)i : 3);
    node *parent = recent[(i - back) & 3];
    node *x = NODE(refgc_new(T_plain));
    CCHECK(x != NULL);
    x->id = i;
    x->b = parent->a; /* next sibling: takes the parent's reference */
    parent->a = OB(x);
    recent[i & 3] = x;
    depth_hint += back == 1;
  }
  double t1 = now_s();
  refgc_decref(OB(root));
  double t2 = now_s();
  refgc_type_stats_t s1 = tstats(T_plain);
  CCHECK(s1.released == s0.released + (uint64_t)n);
  CCHECK(s1.live == s0.live);
  CCHECK(refgc_heap_check() == 0);
  printf("# tree of %ld (%ld parent-child steps of 1): built in %.2fs, released in %.2fs\n", n,
         depth_hint, t1 - t0, t2 - t1);
  return 0;
}

TEST(release_big_tree_small_stack) {
  types_init();
  long n = 10000000;
  RUN_ISOLATED(tree_child, &n, SMALL_STACK);
}

static int wide_child(void *arg) {
  long n = *(long *)arg;
  hooks_reset();
  refvec *p = (refvec *)refgc_new_var(T_refvec, (size_t)n);
  CCHECK(p != NULL);
  p->n = (size_t)n;
  for (long i = 0; i < n; i++) p->items[i] = OB(new_node(T_leaf, i));
  double t0 = now_s();
  refgc_decref(OB(p));
  double t1 = now_s();
  CCHECK(rel_calls == n);
  CCHECK(tstats(T_leaf).live == 0);
  CCHECK(refgc_heap_check() == 0);
  printf("# node with %ld children released in %.2fs\n", n, t1 - t0);
  return 0;
}

TEST(release_wide_node_small_stack) {
  types_init();
  long n = 1000000;
  RUN_ISOLATED(wide_child, &n, SMALL_STACK);
}

/* a long chain of nodes with finalizers, release hooks and weak references (no callbacks) */
static int hooked_chain_child(void *arg) {
  long n = *(long *)arg;
  hooks_reset();
  refgc_object_t **wrs = malloc((size_t)n * sizeof *wrs);
  CCHECK(wrs != NULL);
  node *head = NULL;
  for (long i = 0; i < n; i++) {
    node *x = new_node(T_hooks, i);
    x->a = head ? OB(head) : NULL;
    head = x;
    wrs[i] = refgc_weakref_new(OB(x), NULL, NULL);
  }
  refgc_decref(OB(head));
  CCHECK(fin_calls == n);
  CCHECK(rel_calls == n);
  for (long i = 0; i < n; i++) {
    CCHECK(refgc_weakref_alive(wrs[i]) == 0);
    refgc_decref(wrs[i]);
  }
  free(wrs);
  CCHECK(refgc_heap_check() == 0);
  return 0;
}

TEST(release_hooked_chain_with_weakrefs_small_stack) {
  types_init();
  long n = 1000000;
  RUN_ISOLATED(hooked_chain_child, &n, SMALL_STACK);
}

/* ============================================================================================
 * Immortal objects
 * ========================================================================================== */

TEST(immortal_objects) {
  types_init();
  hooks_reset();
  refgc_type_stats_t s0 = tstats(T_hooks);
  node *o = new_node(T_hooks, 1);
  o->value = 11;
  o->a = OB(new_node(T_hooks, 2));
  refgc_make_immortal(OB(o));
  ASSERT(refgc_is_immortal(OB(o)));
  ASSERT_GE(refgc_refcount(OB(o)), REFGC_IMMORTAL_REFCNT);
  uint32_t rc = refgc_refcount(OB(o));
  for (int i = 0; i < 1000; i++) refgc_incref(OB(o));
  ASSERT_EQ(refgc_refcount(OB(o)), rc);
  for (int i = 0; i < 5000; i++) refgc_decref(OB(o));
  ASSERT_EQ(refgc_refcount(OB(o)), rc);
  ASSERT_EQ(fin_calls, 0);
  ASSERT_EQ(rel_calls, 0);
  ASSERT_EQ(o->value, 11);
  ASSERT_EQ(refgc_refcount(o->a), 1); /* its children stay */

  /* a static object, held by heap objects that come and go */
  refgc_static_init(&static_obj.ob, T_hooks);
  static_obj.id = 50;
  ASSERT(refgc_is_immortal(&static_obj.ob));
  ASSERT_GE(refgc_refcount(&static_obj.ob), REFGC_IMMORTAL_REFCNT);
  ASSERT_PTR_EQ(refgc_type_of(&static_obj.ob), T_hooks);
  ASSERT_EQ(refgc_is_finalized(&static_obj.ob), 0);
  refgc_object_t header = static_obj.ob;
  for (int i = 0; i < 100; i++) {
    node *p = new_node(T_hooks, 100 + i);
    refgc_incref(&static_obj.ob);
    p->a = &static_obj.ob;
    refgc_incref(OB(o));
    p->b = OB(o);
    refgc_decref(OB(p)); /* the traverse visits both immortals */
  }
  ASSERT_EQ(rel_calls, 100);
  ASSERT_EQ(static_obj.ob.refcnt, header.refcnt);
  ASSERT_EQ(static_obj.ob.bits, header.bits);
  ASSERT_EQ(refgc_refcount(OB(o)), rc);
  ASSERT_EQ(event_count('F', 50), 0);
  ASSERT_EQ(event_count('F', 1), 0);
  ASSERT_EQ(tstats(T_hooks).live, s0.live + 2); /* o and its child, forever */
  ASSERT_EQ(refgc_heap_check(), 0);
  hooks_reset();
}

/* the cycle collector examines the parent of immortal objects without touching them */
TEST(immortals_survive_collections) {
  types_init();
  hooks_reset();
  refgc_static_init(&static_obj.ob, T_hooks);
  static_obj.id = 60;
  node *imm = new_node(T_hooks, 61);
  refgc_make_immortal(OB(imm));
  node *p = new_node(T_hooks, 62);
  p->a = &static_obj.ob;
  p->b = OB(imm);
  refgc_object_t header = static_obj.ob;
  uint32_t imm_rc = refgc_refcount(OB(imm));
  for (int gen = 0; gen <= 2; gen++) ASSERT_GE(refgc_collect(gen, NULL), 0);
  ASSERT_EQ(refgc_refcount(OB(p)), 1);
  ASSERT_EQ(static_obj.ob.refcnt, header.refcnt);
  ASSERT_EQ(static_obj.ob.bits & 0x000FFFFFu, header.bits & 0x000FFFFFu); /* same type */
  ASSERT_PTR_EQ(refgc_type_of(&static_obj.ob), T_hooks);
  ASSERT_EQ(refgc_refcount(OB(imm)), imm_rc);
  ASSERT_EQ(fin_calls, 0);
  refgc_decref(OB(p));
  ASSERT_EQ(event_count('R', 62), 1);
  ASSERT_EQ(event_count('R', 60) + event_count('R', 61), 0);
  ASSERT_EQ(static_obj.ob.refcnt, header.refcnt);
  ASSERT_EQ(refgc_heap_check(), 0);
  hooks_reset();
}

TEST(refcount_saturates_to_immortal) {
  types_init();
  hooks_reset();
  node *o = new_node(T_hooks, 1);
  o->ob.refcnt = 0x7FFFFFFE; /* white box: as if 2^31 - 2 references */
  refgc_incref(OB(o));
  ASSERT_EQ(refgc_refcount(OB(o)), 0x7FFFFFFFu);
  ASSERT(!refgc_is_immortal(OB(o)));
  refgc_incref(OB(o)); /* reaches 2^31: immortal rather than overflow */
  ASSERT(refgc_is_immortal(OB(o)));
  uint32_t rc = refgc_refcount(OB(o));
  ASSERT_EQ(rc, 0x80000000u); /* "stays there" */
  for (int i = 0; i < 10; i++) refgc_decref(OB(o));
  for (int i = 0; i < 10; i++) refgc_incref(OB(o));
  ASSERT_EQ(refgc_refcount(OB(o)), rc);
  ASSERT(refgc_is_immortal(OB(o)));
  ASSERT_EQ(fin_calls, 0);
  ASSERT_EQ(rel_calls, 0);
  hooks_reset();
}

/* ============================================================================================
 * Count underflow in normal mode
 * ========================================================================================== */

TEST(refcount_underflow_is_reported) {
  types_init();
  hooks_reset();
  errors_reset();
  unsigned long e0 = refgc_error_count();
  node *o = new_node(T_hooks, 1);
  o->ob.refcnt = 0; /* white box: a reference dropped twice */
  refgc_decref(OB(o));
  ASSERT_EQ(err_calls, 1);
  ASSERT_EQ(err_code, REFGC_EREFCOUNT);
  ASSERT_PTR_EQ(err_ptr, o);
  ASSERT_STR_CONTAINS(err_func, "refgc_decref");
  ASSERT_STR_CONTAINS(err_msg, "hooked_node");
  ASSERT_STR_CONTAINS(err_msg, "already 0");
  ASSERT_EQ(refgc_error_count(), e0 + 1);
  ASSERT_EQ(refgc_refcount(OB(o)), 0);
  ASSERT_EQ(fin_calls, 0);
  ASSERT_EQ(rel_calls, 0);
  o->ob.refcnt = 1; /* repair */
  refgc_decref(OB(o));
  ASSERT_EQ(rel_calls, 1);

  /* the same from a traverse hook: a parent releasing a child whose count is already 0 */
  node *p = new_node(T_hooks, 2);
  node *c = new_node(T_hooks, 3);
  p->a = OB(c);
  c->ob.refcnt = 0;
  refgc_decref(OB(p));
  ASSERT_EQ(err_calls, 2);
  ASSERT_EQ(err_code, REFGC_EREFCOUNT);
  ASSERT_PTR_EQ(err_ptr, c);
  ASSERT_STR_CONTAINS(err_msg, "hooked_node");
  ASSERT_EQ(event_count('R', 2), 1);
  ASSERT_EQ(event_count('F', 3), 0);
  c->ob.refcnt = 1;
  refgc_decref(OB(c));
  ASSERT_EQ(event_count('R', 3), 1);
  refgc_set_error_handler(NULL, NULL);
  ASSERT_EQ(refgc_heap_check(), 0);
  hooks_reset();
}

/* ============================================================================================
 * Out of memory
 * ========================================================================================== */

/* With the OS refusing memory, object calls fail cleanly (NULL, REFGC_ENOMEM) once the heap's
 * cached memory is used up; releases still work (a wide structure whose release stack cannot
 * grow included); afterwards everything works again. */
TEST(out_of_memory_object_calls_fail_cleanly) {
  types_init();
  warm_up();
  hooks_reset();
  enum { MAXN = 4000000, WIDE = 200000 };
  node **objs = malloc(MAXN * sizeof *objs);
  ASSERT(objs != NULL);
  /* a wide structure made while memory is plentiful, released while it is not */
  refvec *wide = (refvec *)refgc_new_var(T_refvec, WIDE);
  ASSERT(wide != NULL);
  wide->n = WIDE;
  for (long i = 0; i < WIDE; i++) wide->items[i] = OB(new_node(T_leaf, i));
  refgc_type_stats_t s0 = tstats(T_plain);
  refgc_test_os_fail_after(0);
  ASSERT(refgc_new_var(T_numvec0, (size_t)1 << 20) == NULL); /* a large block: straight to OS */
  ASSERT_EQ(refgc_last_error(), REFGC_ENOMEM);
  long n = 0;
  while (n < MAXN) {
    node *x = NODE(refgc_new(T_plain));
    if (!x) break;
    x->id = n;
    objs[n++] = x;
  }
  int reached = n < MAXN;
  if (reached) {
    ASSERT_EQ(refgc_last_error(), REFGC_ENOMEM);
    ASSERT(refgc_new(T_plain) == NULL); /* still */
    ASSERT_EQ(refgc_last_error(), REFGC_ENOMEM);
    refgc_object_t *w = refgc_weakref_new(OB(objs[0]), NULL, NULL);
    if (!w)
      ASSERT_EQ(refgc_last_error(), REFGC_ENOMEM);
    else
      refgc_decref(w);
    refgc_weakmap_t *m = refgc_weakmap_new();
    if (m) {
      int rc = refgc_weakmap_set(m, "k", 1, OB(objs[0]));
      ASSERT(rc == 0 || rc == REFGC_ENOMEM);
      refgc_weakmap_free(m);
    }
  }
  ASSERT_EQ(tstats(T_plain).live, s0.live + (size_t)n);
  refgc_decref(OB(wide)); /* its release stack may not grow now */
  ASSERT_EQ(rel_calls, WIDE);
  for (long i = 0; i < n; i++) refgc_decref(OB(objs[i]));
  refgc_test_os_fail_after(-1);
  printf("# %ld objects created before the OS refusal showed%s\n", n,
         reached ? "" : " (never reached)");
  free(objs);
  ASSERT_EQ(tstats(T_plain).live, s0.live);
  ASSERT_EQ(tstats(T_leaf).live, 0);
  node *again = NODE(refgc_new_var(T_numvec0, (size_t)1 << 20));
  ASSERT(again != NULL);
  refgc_decref(OB(again));
  ASSERT_EQ(refgc_heap_check(), 0);
  hooks_reset();
}

/* ============================================================================================
 * Randomized acyclic graphs against a model
 * ========================================================================================== */

enum { ST_MAXLINKS = 6 };
typedef struct snode_s {
  refgc_object_t ob;
  uint32_t id;
  uint32_t nlinks;
  refgc_object_t *links[];
} snode;

typedef struct st_model_s {
  uint32_t cap;             /* ids */
  snode **ptr;              /* by id, valid while alive */
  uint32_t *prog, *inc;     /* program references, incoming links */
  int32_t (*links)[ST_MAXLINKS];
  uint8_t *nl, *alive;
  uint8_t *fin, *rel, *cb;  /* observed by hooks */
  refgc_object_t **wr;      /* a weak reference we hold, or NULL */
  uint32_t *live, *pos, nlive;
  uint32_t *work, *released;
  uint32_t nreleased;
  uint64_t rel_total, expect_rel_total;
  uint64_t cb_total;
  int fail_line;
  uint32_t fail_id;
} st_model_t;
static st_model_t st;

#define ST_FAIL(id_)                \
  do {                              \
    if (!st.fail_line) {            \
      st.fail_line = __LINE__;      \
      st.fail_id = (id_);           \
    }                               \
  } while (0)

static void st_traverse(refgc_object_t *self, refgc_visit_fn *visit, void *arg) {
  snode *s = (snode *)self;
  for (uint32_t i = 0; i < s->nlinks; i++) visit(s->links[i], arg);
}
static void st_finalize(refgc_object_t *self) {
  snode *s = (snode *)self;
  if (s->id >= st.cap || st.fin[s->id] || st.rel[s->id]) ST_FAIL(s->id);
  else st.fin[s->id]++;
}
static void st_release(refgc_object_t *self) {
  snode *s = (snode *)self;
  if (s->id >= st.cap || st.fin[s->id] != 1 || st.rel[s->id]) ST_FAIL(s->id);
  else st.rel[s->id]++;
  st.rel_total++;
}
static void st_callback(refgc_object_t *wr, void *arg) {
  uint32_t id = (uint32_t)(uintptr_t)arg;
  if (id >= st.cap || st.cb[id] || st.rel[id] != 1 || refgc_weakref_get(wr) != NULL) ST_FAIL(id);
  /* the whole cascade was released before any callback */
  if (st.rel_total != st.expect_rel_total) ST_FAIL(id);
  st.cb[id]++;
  st.cb_total++;
}

static void st_live_add(uint32_t id) {
  st.pos[id] = st.nlive;
  st.live[st.nlive++] = id;
}
static void st_live_remove(uint32_t id) {
  uint32_t p = st.pos[id], last = st.live[--st.nlive];
  st.live[p] = last;
  st.pos[last] = p;
}

/* The model's side of dropping one reference to `id`: the released ids in st.released. */
static void st_model_drop(uint32_t id) {
  uint32_t nw = 0;
  st.nreleased = 0;
  st.work[nw++] = id;
  while (nw) {
    uint32_t x = st.work[--nw];
    if (st.prog[x] + st.inc[x] != 0) continue;
    st.alive[x] = 0;
    st_live_remove(x);
    st.released[st.nreleased++] = x;
    for (int k = 0; k < st.nl[x]; k++) {
      int32_t t = st.links[x][k];
      if (t < 0) continue;
      st.inc[t]--;
      if (st.prog[t] + st.inc[t] == 0) st.work[nw++] = (uint32_t)t;
    }
  }
}

/* After the real drop: exactly the model's ids were released, each once, with callbacks for
 * those we held weak references to. Returns 0 or the failing line. */
static int st_check_released(void) {
  if (st.fail_line) return st.fail_line;
  if (st.rel_total != st.expect_rel_total) return __LINE__;
  for (uint32_t i = 0; i < st.nreleased; i++) {
    uint32_t x = st.released[i];
    if (st.fin[x] != 1 || st.rel[x] != 1) {
      st.fail_id = x;
      return __LINE__;
    }
    if (st.wr[x]) {
      if (st.cb[x] != 1 || refgc_weakref_alive(st.wr[x])) {
        st.fail_id = x;
        return __LINE__;
      }
      refgc_decref(st.wr[x]);
      st.wr[x] = NULL;
    } else if (st.cb[x]) {
      st.fail_id = x;
      return __LINE__;
    }
  }
  return 0;
}

static void st_check_all_live(const refgc_type_t *type, long op) {
  for (uint32_t j = 0; j < st.nlive; j++) {
    uint32_t x = st.live[j];
    uint32_t want = st.prog[x] + st.inc[x];
    snode *s = st.ptr[x];
    if (refgc_refcount(&s->ob) != want || st.fin[x] || st.rel[x] || s->id != x ||
        refgc_type_of(&s->ob) != type)
      TEST_FAIL("seed %" PRIu64 " op %ld: object %u: count %u, model %u (program %u, links %u), "
                "finalized %u, released %u",
                test_seed(), op, x, refgc_refcount(&s->ob), want, st.prog[x], st.inc[x],
                st.fin[x], st.rel[x]);
    for (int k = 0; k < st.nl[x]; k++) {
      int32_t t = st.links[x][k];
      refgc_object_t *expect = t < 0 ? NULL : &st.ptr[t]->ob;
      if (s->links[k] != expect) TEST_FAIL("op %ld: object %u link %d differs", op, x, k);
    }
    if (st.wr[x] && !refgc_weakref_alive(st.wr[x]))
      TEST_FAIL("op %ld: weak reference to live object %u reads dead", op, x);
  }
}

static void stress_run(const refgc_type_t *type, long ops, uint64_t seed) {
  memset(&st, 0, sizeof st);
  st.cap = (uint32_t)(ops / 3 + 16);
  uint32_t cap = st.cap;
  st.ptr = calloc(cap, sizeof *st.ptr);
  st.prog = calloc(cap, sizeof *st.prog);
  st.inc = calloc(cap, sizeof *st.inc);
  st.links = calloc(cap, sizeof *st.links);
  st.nl = calloc(cap, 1);
  st.alive = calloc(cap, 1);
  st.fin = calloc(cap, 1);
  st.rel = calloc(cap, 1);
  st.cb = calloc(cap, 1);
  st.wr = calloc(cap, sizeof *st.wr);
  st.live = calloc(cap, sizeof *st.live);
  st.pos = calloc(cap, sizeof *st.pos);
  st.work = calloc(cap, sizeof *st.work);
  st.released = calloc(cap, sizeof *st.released);
  ASSERT(st.ptr && st.prog && st.inc && st.links && st.nl && st.alive && st.fin && st.rel &&
         st.cb && st.wr && st.live && st.pos && st.work && st.released);
  printf("# %s: seed %" PRIu64 ", %ld operations\n", refgc_type_name(type), seed, ops);
  test_rng_t rng = {seed};
  refgc_type_stats_t s0 = tstats(type);
  uint32_t next_id = 0;
  const uint32_t live_cap = 4000;
  long counts[9] = {0};
  int line;
  for (long op = 0; op < ops; op++) {
    uint64_t r = test_below(&rng, 100);
    uint32_t x = st.nlive ? st.live[test_below(&rng, st.nlive)] : 0;
    if (r < 22 && st.nlive >= live_cap) r = 40; /* full: drop instead */
    if (!st.nlive || (r < 22 && next_id < cap)) { /* create */
      if (next_id >= cap) break;
      uint32_t id = next_id++;
      uint32_t nl = (uint32_t)test_below(&rng, ST_MAXLINKS + 1);
      snode *s = (snode *)refgc_new_var(type, nl);
      ASSERT(s != NULL);
      for (uint32_t k = 0; k < nl; k++) ASSERT(s->links[k] == NULL);
      s->id = id;
      s->nlinks = nl;
      st.ptr[id] = s;
      st.prog[id] = 1;
      st.nl[id] = (uint8_t)nl;
      for (int k = 0; k < ST_MAXLINKS; k++) st.links[id][k] = -1;
      st.alive[id] = 1;
      st_live_add(id);
      counts[0]++;
    } else if (r < 30) { /* a program reference more */
      refgc_incref(&st.ptr[x]->ob);
      st.prog[x]++;
      counts[1]++;
    } else if (r < 55) { /* drop a program reference */
      if (!st.prog[x]) continue;
      st.prog[x]--;
      st_model_drop(x);
      st.expect_rel_total = st.rel_total + st.nreleased;
      refgc_decref(&st.ptr[x]->ob);
      if ((line = st_check_released()))
        TEST_FAIL("seed %" PRIu64 " op %ld: dropping a reference to %u: check at line %d "
                  "(object %u)",
                  seed, op, x, line, st.fail_id);
      counts[2]++;
    } else if (r < 75) { /* link newer -> older, replacing what the slot held */
      uint32_t y = st.live[test_below(&rng, st.nlive)];
      if (x == y) continue;
      uint32_t src = x > y ? x : y, dst = x > y ? y : x;
      if (!st.nl[src]) continue;
      int k = (int)test_below(&rng, st.nl[src]);
      snode *s = st.ptr[src];
      refgc_object_t *old = s->links[k];
      int32_t old_id = st.links[src][k];
      refgc_incref(&st.ptr[dst]->ob);
      s->links[k] = &st.ptr[dst]->ob;
      st.links[src][k] = (int32_t)dst;
      st.inc[dst]++;
      if (old) {
        st.inc[old_id]--;
        st_model_drop((uint32_t)old_id);
        st.expect_rel_total = st.rel_total + st.nreleased;
        refgc_decref(old);
        if ((line = st_check_released()))
          TEST_FAIL("seed %" PRIu64 " op %ld: relinking: check at line %d (object %u)", seed, op,
                    line, st.fail_id);
      }
      counts[3]++;
    } else if (r < 87) { /* unlink */
      if (!st.nl[x]) continue;
      int k = (int)test_below(&rng, st.nl[x]);
      snode *s = st.ptr[x];
      refgc_object_t *old = s->links[k];
      if (!old) continue;
      int32_t old_id = st.links[x][k];
      s->links[k] = NULL;
      st.links[x][k] = -1;
      st.inc[old_id]--;
      st_model_drop((uint32_t)old_id);
      st.expect_rel_total = st.rel_total + st.nreleased;
      refgc_decref(old);
      if ((line = st_check_released()))
        TEST_FAIL("seed %" PRIu64 " op %ld: unlinking: check at line %d (object %u)", seed, op,
                  line, st.fail_id);
      counts[4]++;
    } else if (r < 95) { /* a weak reference with a callback */
      if (st.wr[x]) continue;
      st.wr[x] = refgc_weakref_new(&st.ptr[x]->ob, st_callback, (void *)(uintptr_t)x);
      ASSERT(st.wr[x] != NULL);
      counts[5]++;
    } else { /* drop a weak reference: no callback later */
      if (!st.wr[x]) continue;
      refgc_decref(st.wr[x]);
      st.wr[x] = NULL;
      counts[6]++;
    }
    if (op % 50000 == 0) st_check_all_live(type, op);
  }
  st_check_all_live(type, ops);
  /* drop every program reference, oldest first: older objects held by links die in the
   * cascades that the newer ones start */
  for (uint32_t x = 0; x < next_id; x++) {
    while (st.alive[x] && st.prog[x]) {
      st.prog[x]--;
      st_model_drop(x);
      st.expect_rel_total = st.rel_total + st.nreleased;
      refgc_decref(&st.ptr[x]->ob);
      if ((line = st_check_released()))
        TEST_FAIL("seed %" PRIu64 " final drop: check at line %d (object %u)", seed, line,
                  st.fail_id);
    }
  }
  ASSERT_EQ(st.nlive, 0);
  for (uint32_t id = 0; id < next_id; id++) {
    if (st.fin[id] != 1 || st.rel[id] != 1) TEST_FAIL("object %u: fin %u rel %u", id, st.fin[id], st.rel[id]);
    ASSERT(st.wr[id] == NULL);
  }
  refgc_type_stats_t s1 = tstats(type);
  ASSERT_EQ(s1.live, s0.live);
  ASSERT_EQ(s1.created - s0.created, next_id);
  printf("# %u objects; creates %ld increfs %ld decrefs %ld links %ld unlinks %ld weakrefs %ld "
         "(dropped %ld), callbacks %" PRIu64 ", reused %" PRIu64 "\n",
         next_id, counts[0], counts[1], counts[2], counts[3], counts[4], counts[5], counts[6],
         st.cb_total, s1.reused - s0.reused);
  free(st.ptr);
  free(st.prog);
  free(st.inc);
  free(st.links);
  free(st.nl);
  free(st.alive);
  free(st.fin);
  free(st.rel);
  free(st.cb);
  free(st.wr);
  free(st.live);
  free(st.pos);
  free(st.work);
  free(st.released);
  ASSERT_EQ(refgc_heap_check(), 0);
}

static long stress_ops(void) { return 1000000L * test_scale(); }

TEST(stress_acyclic_graph_against_model) {
  static const refgc_type_t *t;
  if (!t)
    t = reg("stress_node", 0, sizeof(snode), sizeof(refgc_object_t *), st_traverse, st_finalize,
            st_release, 0);
  stress_run(t, stress_ops(), test_seed());
}

TEST(stress_acyclic_graph_against_model_free_lists) {
  static const refgc_type_t *t;
  if (!t)
    t = reg("stress_node_fl", 0, sizeof(snode), sizeof(refgc_object_t *), st_traverse,
            st_finalize, st_release, 32);
  stress_run(t, stress_ops(), test_seed() + 1);
  refgc_freelists_clear();
}

/* ============================================================================================
 * Threads: objects handed from producers to consumers through a mutex-protected queue
 * ========================================================================================== */

typedef struct qitem_s {
  refgc_object_t *obj;
  refgc_object_t *wr; /* or NULL */
} qitem_t;

enum { Q_CAP = 1024 };
static struct {
  pthread_mutex_t lock;
  pthread_cond_t not_empty, not_full;
  qitem_t items[Q_CAP];
  size_t head, count;
  int producers_left;
} q = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER, {{0, 0}},
       0, 0, 0};

static _Thread_local int tl_consumer;
static atomic_long th_released_on_producer, th_released, th_callbacks;
static long th_per_producer;
static const refgc_type_t *T_th, *T_th_fl;

static void th_release(refgc_object_t *self) {
  (void)self;
  atomic_fetch_add(&th_released, 1);
  if (!tl_consumer) atomic_fetch_add(&th_released_on_producer, 1);
}
static void th_callback(refgc_object_t *wr, void *arg) {
  (void)wr;
  (void)arg;
  atomic_fetch_add(&th_callbacks, 1);
}

static void q_push(qitem_t it) {
  pthread_mutex_lock(&q.lock);
  while (q.count == Q_CAP) pthread_cond_wait(&q.not_full, &q.lock);
  q.items[(q.head + q.count++) % Q_CAP] = it;
  pthread_cond_signal(&q.not_empty);
  pthread_mutex_unlock(&q.lock);
}
static int q_pop(qitem_t *it) {
  pthread_mutex_lock(&q.lock);
  while (q.count == 0 && q.producers_left) pthread_cond_wait(&q.not_empty, &q.lock);
  if (q.count == 0) {
    pthread_mutex_unlock(&q.lock);
    return 0;
  }
  *it = q.items[q.head];
  q.head = (q.head + 1) % Q_CAP;
  q.count--;
  pthread_cond_signal(&q.not_full);
  pthread_mutex_unlock(&q.lock);
  return 1;
}

static void *producer(void *arg) {
  long seed = (long)(intptr_t)arg;
  test_rng_t rng = {(uint64_t)seed};
  for (long i = 0; i < th_per_producer; i++) {
    /* a small structure: a parent with two children, one from a free-list type */
    node *p = new_node(i & 1 ? T_th_fl : T_th, i);
    p->a = OB(new_node(T_th, i));
    p->b = OB(new_node(T_th_fl, i));
    NODE(p->b)->a = refgc_new_var(T_numvec, (size_t)test_below(&rng, 20));
    qitem_t it = {OB(p), NULL};
    if (i % 16 == 0) it.wr = refgc_weakref_new(OB(p), th_callback, NULL);
    q_push(it);
  }
  pthread_mutex_lock(&q.lock);
  q.producers_left--;
  pthread_cond_broadcast(&q.not_empty);
  pthread_mutex_unlock(&q.lock);
  return NULL;
}

static void *consumer(void *arg) {
  (void)arg;
  tl_consumer = 1;
  qitem_t it;
  while (q_pop(&it)) {
    refgc_decref(it.obj); /* released here, on another thread than its creator */
    if (it.wr) {
      if (refgc_weakref_alive(it.wr)) atomic_fetch_add(&th_callbacks, 1000000); /* wrong */
      refgc_decref(it.wr);
    }
  }
  return NULL;
}

TEST(threads_objects_released_on_another_thread) {
  types_init();
  if (!T_th) {
    T_th = reg("thread_node", 0, sizeof(node), 0, node_traverse, NULL, th_release, 0);
    T_th_fl = reg("thread_node_fl", 0, sizeof(node), 0, node_traverse, NULL, th_release, 16);
  }
  refgc_freelists_clear();
  refgc_heap_collect();
  size_t in_use0 = heap_in_use();
  enum { P = 3, C = 3 };
  th_per_producer = 150000 * test_scale();
  atomic_store(&th_released, 0);
  atomic_store(&th_released_on_producer, 0);
  atomic_store(&th_callbacks, 0);
  q.head = q.count = 0;
  q.producers_left = P;
  refgc_type_stats_t a0 = tstats(T_th), b0 = tstats(T_th_fl), v0 = tstats(T_numvec);
  pthread_t pt[P], ct[C];
  for (int i = 0; i < C; i++) ASSERT_EQ(pthread_create(&ct[i], NULL, consumer, NULL), 0);
  for (int i = 0; i < P; i++)
    ASSERT_EQ(pthread_create(&pt[i], NULL, producer, (void *)(intptr_t)(test_seed() + (uint64_t)i)), 0);
  for (int i = 0; i < P; i++) pthread_join(pt[i], NULL);
  for (int i = 0; i < C; i++) pthread_join(ct[i], NULL);
  long total = P * th_per_producer;
  ASSERT_EQ(atomic_load(&th_released), 3 * total);
  ASSERT_EQ(atomic_load(&th_released_on_producer), 0);
  ASSERT_EQ(atomic_load(&th_callbacks), P * ((th_per_producer + 15) / 16));
  refgc_type_stats_t a1 = tstats(T_th), b1 = tstats(T_th_fl), v1 = tstats(T_numvec);
  ASSERT_EQ(a1.live, a0.live);
  ASSERT_EQ(b1.live, b0.live);
  ASSERT_EQ(v1.live, v0.live);
  ASSERT_EQ(a1.created - a0.created, a1.released - a0.released);
  ASSERT_EQ(b1.cached, 0); /* the consumers' free lists went with them */
  /* the memory went back to the producers' heaps (adopted, collected): what is left in use
   * is bookkeeping, not the ~100 MB of objects that went through */
  refgc_freelists_clear();
  refgc_heap_collect();
  size_t in_use1 = heap_in_use();
  printf("# %ld structures handed over; bytes in use before %zu, after %zu\n", total, in_use0,
         in_use1);
  if (in_use1 > in_use0 + ((size_t)1 << 20))
    TEST_FAIL("in use grew from %zu to %zu bytes", in_use0, in_use1);
  ASSERT_EQ(refgc_heap_check(), 0);
}

/* Threads that come and go, each leaving objects cached on its free lists, weak references,
 * and objects it created for the next thread to release: nothing is lost when they exit. */
static refgc_object_t *churn_handoff; /* under churn_lock */
static pthread_mutex_t churn_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_long churn_callbacks;
static void churn_cb(refgc_object_t *wr, void *arg) {
  (void)wr;
  (void)arg;
  atomic_fetch_add(&churn_callbacks, 1);
}
static void *churn_thread(void *arg) {
  long k = (long)(intptr_t)arg;
  node *keep_alive[8];
  for (int i = 0; i < 8; i++) {
    keep_alive[i] = new_node(i & 1 ? T_th_fl : T_fl2, k);
    keep_alive[i]->a = refgc_new_var(T_numvec, (size_t)i);
  }
  refgc_object_t *w = refgc_weakref_new(OB(keep_alive[0]), churn_cb, NULL);
  for (int i = 1; i < 8; i++) refgc_decref(OB(keep_alive[i])); /* onto this thread's lists */
  /* Dropped before its referent, so no callback. This must come before the hand-over: once the
   * referent is published, the next thread may release it while we still hold the weak
   * reference, and weak references are not shared between threads (see refgc/object.h). */
  refgc_decref(w);
  /* take what the previous thread left, leave ours */
  pthread_mutex_lock(&churn_lock);
  refgc_object_t *prev = churn_handoff;
  churn_handoff = OB(keep_alive[0]);
  pthread_mutex_unlock(&churn_lock);
  refgc_xdecref(prev); /* created by another thread, released here */
  return NULL;
}

TEST(threads_come_and_go) {
  types_init();
  if (!T_th) {
    T_th = reg("thread_node", 0, sizeof(node), 0, node_traverse, NULL, th_release, 0);
    T_th_fl = reg("thread_node_fl", 0, sizeof(node), 0, node_traverse, NULL, th_release, 16);
  }
  refgc_freelists_clear();
  atomic_store(&churn_callbacks, 0);
  churn_handoff = NULL;
  refgc_type_stats_t f0 = tstats(T_fl2), t0 = tstats(T_th_fl), v0 = tstats(T_numvec);
  for (int round = 0; round < 40; round++) {
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
      ASSERT_EQ(pthread_create(&th[i], NULL, churn_thread, (void *)(intptr_t)(round * 4 + i)), 0);
    for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
  }
  /* exited threads keep nothing cached (this thread cached nothing) */
  ASSERT_EQ(tstats(T_fl2).cached + tstats(T_th_fl).cached + tstats(T_numvec).cached, 0);
  refgc_xdecref(churn_handoff);
  churn_handoff = NULL;
  ASSERT_EQ(atomic_load(&churn_callbacks), 0);
  refgc_type_stats_t f1 = tstats(T_fl2), t1 = tstats(T_th_fl), v1 = tstats(T_numvec);
  ASSERT_EQ(f1.live, f0.live);
  ASSERT_EQ(t1.live, t0.live);
  ASSERT_EQ(v1.live, v0.live);
  ASSERT_EQ(f1.created - f0.created, 40 * 4 * 4);
  refgc_freelists_clear();
  refgc_heap_collect();
  ASSERT_EQ(refgc_heap_check(), 0);
}
