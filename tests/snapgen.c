/* snapgen — writes deterministic snapshot files for the refgc command's tests (tests/cli/).
 *
 * Usage: snapgen [--sampled MEAN] STAGE1 STAGE2 STAGE3 [NOGRAPH]
 *        snapgen --weird OUT     (a snapshot whose type and root names need escaping)
 *        snapgen --empty OUT     (a snapshot taken with tracing off and no object)
 *
 * A small program with a known allocation pattern. It registers four types, switches the
 * automatic cycle collector off (collections at allocation-count thresholds are deterministic,
 * but the tests should not depend on them), starts tracing with 16 frames (or sampled, with a
 * fixed seed) and allocates from the functions below, each allocation on its own line:
 *
 *   stage 1  make_config: 8 raw blocks of 100 B; build_tree: a tree of 15 Nodes whose 8 leaves
 *            hold a Leaf and a 64-byte Blob each, declared as root "tree"; new_cache: a Cache
 *            declared as root "cache"; an empty Node declared as root "recently closed"
 *                                                                           -> STAGE1
 *   stage 2  cache_add x40: a 200-byte Blob each, in the cache's raw item array (grown with
 *            refgc_realloc by cache_put); make_buffers: 20 raw blocks of 1000 B;
 *            lose_reference: a Node holding a 4096-byte Blob whose only reference the
 *            program drops on the floor (a lost reference); resurrect_session: a Session in
 *            a cycle with a Node, whose finalizer stores it in the Node declared as root
 *            "recently closed" in stage 1, during a collection (a resurrection, with a chain);
 *            make_garbage_cycle: three Nodes in a cycle that nothing refers to (garbage the
 *            collector, switched off, has not freed)                          -> STAGE2
 *   stage 3  free_buffers: the 20 buffers freed; free_config: 4 config blocks freed; cache_add
 *            x40 more                                                         -> STAGE3
 *   NOGRAPH  (optional) a snapshot of stage 3 without REFGC_SNAPSHOT_GRAPH.
 *
 * Sizes, counts, types, functions, files and lines are the same on every run (and in every
 * build, because this file is compiled with -O0 -g: no inlining, no tail calls); addresses
 * and times are not, so the golden outputs never show them. Compiled in C11 with the public
 * API only. Exit status 0, or 1 if anything fails (with a message).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "refgc.h"

#define NOINLINE __attribute__((noinline))

/* ---- types -------------------------------------------------------------------------------- */

typedef struct node_s {
  refgc_object_t ob;
  refgc_object_t *left, *right;
  uint64_t value;
} node_t;

typedef struct blob_s {
  refgc_object_t ob;
  uint64_t len;
  unsigned char data[];
} blob_t;

typedef struct cache_s {
  refgc_object_t ob;
  refgc_object_t **items; /* a raw block: the references are not in the object itself */
  size_t n, cap;
} cache_t;

typedef struct session_s {
  refgc_object_t ob;
  refgc_object_t *doc;
  uint64_t id;
} session_t;

static const refgc_type_t *leaf_type, *node_type, *blob_type, *cache_type, *session_type;

static void node_traverse(refgc_object_t *self, refgc_visit_fn *visit, void *arg) {
  node_t *n = (node_t *)self;
  if (n->left) visit(n->left, arg);
  if (n->right) visit(n->right, arg);
}

static void node_clear(refgc_object_t *self) {
  node_t *n = (node_t *)self;
  refgc_object_t *l = n->left, *r = n->right;
  n->left = n->right = NULL;
  refgc_xdecref(l);
  refgc_xdecref(r);
}

static void cache_traverse(refgc_object_t *self, refgc_visit_fn *visit, void *arg) {
  cache_t *c = (cache_t *)self;
  for (size_t i = 0; i < c->n; i++) visit(c->items[i], arg);
}

static void cache_release(refgc_object_t *self) {
  cache_t *c = (cache_t *)self;
  refgc_free(c->items);
  c->items = NULL;
}

static void session_traverse(refgc_object_t *self, refgc_visit_fn *visit, void *arg) {
  session_t *s = (session_t *)self;
  if (s->doc) visit(s->doc, arg);
}

static void session_clear(refgc_object_t *self) {
  session_t *s = (session_t *)self;
  refgc_object_t *d = s->doc;
  s->doc = NULL;
  refgc_xdecref(d);
}

static refgc_object_t *recent; /* a Node declared as root "recently closed" */

static void session_finalize(refgc_object_t *self) {
  /* "keep the session for later": the root "recently closed" takes a new reference in a
   * field, which resurrects the session and what it refers to: a resurrection with a chain
   * (recently closed -> +8 -> session), not a lost reference */
  node_t *r = (node_t *)recent;
  if (r && !r->left) {
    refgc_incref(self);
    r->left = self;
  }
}

static void fail(const char *what) {
  fprintf(stderr, "snapgen: %s failed (%s)\n", what, refgc_strerror(refgc_last_error()));
  exit(1);
}

static const refgc_type_t *reg(const char *name, uint32_t flags, size_t basic, size_t item,
                               refgc_traverse_fn *traverse, refgc_clear_fn *clear,
                               refgc_finalize_fn *finalize, refgc_release_fn *release) {
  refgc_type_spec_t spec;
  memset(&spec, 0, sizeof spec);
  spec.version = REFGC_TYPE_SPEC_VERSION;
  spec.flags = flags;
  spec.name = name;
  spec.basic_size = basic;
  spec.item_size = item;
  spec.traverse = traverse;
  spec.clear = clear;
  spec.finalize = finalize;
  spec.release = release;
  const refgc_type_t *t = refgc_type_register(&spec);
  if (!t) fail("refgc_type_register");
  return t;
}

/* ---- the allocation pattern (one allocation per line) -------------------------------------- */

void *config[8];
void *buffers[20];
refgc_object_t *tree, *cache;

NOINLINE refgc_object_t *new_leaf(uint64_t v);
NOINLINE refgc_object_t *new_blob(size_t len);
NOINLINE refgc_object_t *new_node(refgc_object_t *left, refgc_object_t *right);
NOINLINE refgc_object_t *build_tree(int depth);
NOINLINE void make_config(void);
NOINLINE void free_config(void);
NOINLINE void new_cache(void);
NOINLINE void cache_add(size_t len);
NOINLINE void make_buffers(void);
NOINLINE void free_buffers(void);
NOINLINE void lose_reference(void);
NOINLINE void resurrect_session(void);
NOINLINE void make_garbage_cycle(void);

NOINLINE refgc_object_t *new_leaf(uint64_t v) {
  refgc_object_t *o = refgc_new(leaf_type);
  if (!o) fail("refgc_new(Leaf)");
  ((node_t *)o)->value = v;
  return o;
}

NOINLINE refgc_object_t *new_blob(size_t len) {
  refgc_object_t *o = refgc_new_var(blob_type, len);
  if (!o) fail("refgc_new_var(Blob)");
  ((blob_t *)o)->len = len;
  return o;
}

NOINLINE refgc_object_t *new_node(refgc_object_t *left, refgc_object_t *right) {
  node_t *n = (node_t *)refgc_new(node_type);
  if (!n) fail("refgc_new(Node)");
  n->left = left;
  n->right = right;
  return &n->ob;
}

NOINLINE refgc_object_t *build_tree(int depth) {
  if (depth == 0) return new_node(new_leaf(7), new_blob(64));
  return new_node(build_tree(depth - 1), build_tree(depth - 1));
}

NOINLINE void make_config(void) {
  for (int i = 0; i < 8; i++) {
    config[i] = refgc_malloc(100);
    if (!config[i]) fail("refgc_malloc");
  }
}

NOINLINE void free_config(void) {
  for (int i = 0; i < 4; i++) {
    refgc_free(config[i]);
    config[i] = NULL;
  }
}

NOINLINE void new_cache(void) {
  cache = refgc_new(cache_type);
  if (!cache) fail("refgc_new(Cache)");
}

NOINLINE void cache_put(refgc_object_t *o) {
  cache_t *c = (cache_t *)cache;
  if (c->n == c->cap) {
    size_t cap = c->cap ? c->cap * 2 : 8;
    refgc_object_t **items = refgc_realloc(c->items, cap * sizeof *items);
    if (!items) fail("refgc_realloc");
    c->items = items;
    c->cap = cap;
  }
  c->items[c->n++] = o;
}

NOINLINE void cache_add(size_t len) { cache_put(new_blob(len)); }

NOINLINE void make_buffers(void) {
  for (int i = 0; i < 20; i++) {
    buffers[i] = refgc_malloc(1000);
    if (!buffers[i]) fail("refgc_malloc");
  }
}

NOINLINE void free_buffers(void) {
  for (int i = 0; i < 20; i++) {
    refgc_free(buffers[i]);
    buffers[i] = NULL;
  }
}

NOINLINE void lose_reference(void) {
  refgc_object_t *n = new_node(new_blob(4096), NULL);
  (void)n; /* the only reference is dropped on the floor */
}

NOINLINE void resurrect_session(void) {
  session_t *s = (session_t *)refgc_new(session_type);
  if (!s) fail("refgc_new(Session)");
  s->doc = new_node(&s->ob, new_blob(512)); /* session <-> node: a cycle */
  refgc_incref(&s->ob);                    /* the node's reference to the session */
  refgc_decref(&s->ob);                    /* the program drops the session */
  if (refgc_collect(2, NULL) < 0) fail("refgc_collect");
}

NOINLINE void make_garbage_cycle(void) {
  refgc_object_t *a = new_node(NULL, NULL);
  refgc_object_t *b = new_node(a, NULL);
  refgc_object_t *c = new_node(b, NULL);
  ((node_t *)a)->left = c; /* a -> c -> b -> a; each holds its one reference */
}

/* ---- main ----------------------------------------------------------------------------------- */

/* A pause between stages, so that the snapshots' times differ (massif's time axis). */
static void pause_ms(long ms) {
  struct timespec ts = {0, ms * 1000000L};
  nanosleep(&ts, NULL);
}

static void save(unsigned flags, const char *path) {
  refgc_snapshot_t *s = refgc_snapshot_take(flags);
  if (!s) fail("refgc_snapshot_take");
  if (refgc_snapshot_save(s, path) != 0) {
    fprintf(stderr, "snapgen: %s\n", refgc_snapshot_error());
    exit(1);
  }
  refgc_snapshot_free(s);
}

static void save(unsigned flags, const char *path);

/* --weird OUT: names that every output format must escape: a type and a root name with
 * quotes, a backslash, control characters, a byte that is not UTF-8, characters that end an
 * HTML script element or a massif comment, ';' and newlines (folded stacks). */
static int weird(const char *path) {
  static const char type_name[] = "We\"ird\\ </script> #1;2\n\t\x01\xff \xe2\x80\xa8 caf\xc3\xa9";
  static const char root_name[] = "root \"\\\n\xc3\x28 </style>";
  const refgc_type_t *t =
      reg(type_name, 0, sizeof(node_t), 0, node_traverse, node_clear, NULL, NULL);
  if (refgc_trace_start(16) != 0) fail("refgc_trace_start");
  node_t *a = (node_t *)refgc_new(t);
  node_t *b = (node_t *)refgc_new(t);
  if (!a || !b) fail("refgc_new");
  a->left = &b->ob;
  if (refgc_root_add(&a->ob, root_name) != 0) fail("refgc_root_add");
  save(REFGC_SNAPSHOT_GRAPH, path);
  return 0;
}

/* The stages (each allocation then has at least three frames of this file: the allocating
 * function, its caller or the stage, and main). */
NOINLINE void stage1(const char *path);
NOINLINE void stage2(const char *path);
NOINLINE void stage3(const char *path);

NOINLINE void stage1(const char *path) {
  make_config();
  tree = build_tree(3);
  if (refgc_root_add(tree, "tree") != 0) fail("refgc_root_add");
  new_cache();
  if (refgc_root_add(cache, "cache") != 0) fail("refgc_root_add");
  recent = new_node(NULL, NULL);
  if (refgc_root_add(recent, "recently closed") != 0) fail("refgc_root_add");
  refgc_trace_sample_now();
  save(REFGC_SNAPSHOT_GRAPH, path);
}

NOINLINE void stage2(const char *path) {
  pause_ms(20);
  for (int i = 0; i < 40; i++) cache_add(200);
  make_buffers();
  lose_reference();
  resurrect_session();
  make_garbage_cycle();
  refgc_trace_sample_now();
  save(REFGC_SNAPSHOT_GRAPH, path);
}

NOINLINE void stage3(const char *path) {
  pause_ms(20);
  free_buffers();
  free_config();
  for (int i = 0; i < 40; i++) cache_add(200);
  refgc_trace_sample_now();
  save(REFGC_SNAPSHOT_GRAPH, path);
}

int main(int argc, char **argv) {
  size_t sampled = 0;
  int a = 1;
  if (argc == 3 && strcmp(argv[1], "--weird") == 0) return weird(argv[2]);
  if (argc == 3 && strcmp(argv[1], "--empty") == 0) { /* tracing off, no object */
    save(REFGC_SNAPSHOT_GRAPH, argv[2]);
    return 0;
  }
  if (argc > 2 && strcmp(argv[1], "--sampled") == 0) {
    sampled = (size_t)strtoul(argv[2], NULL, 10);
    a = 3;
  }
  if (argc - a < 3 || argc - a > 4) {
    fprintf(stderr, "usage: snapgen [--sampled MEAN] STAGE1 STAGE2 STAGE3 [NOGRAPH]\n");
    return 2;
  }
  refgc_gc_disable();
  leaf_type = reg("Leaf", REFGC_TYPE_LEAF, sizeof(node_t), 0, NULL, NULL, NULL, NULL);
  node_type = reg("Node", 0, sizeof(node_t), 0, node_traverse, node_clear, NULL, NULL);
  blob_type = reg("Blob", REFGC_TYPE_LEAF, sizeof(blob_t), 1, NULL, NULL, NULL, NULL);
  cache_type = reg("Cache", 0, sizeof(cache_t), 0, cache_traverse, NULL, NULL, cache_release);
  session_type = reg("Session", 0, sizeof(session_t), 0, session_traverse, session_clear,
                     session_finalize, NULL);

  int rc = sampled ? refgc_trace_start_sampled(16, sampled, 42) : refgc_trace_start(16);
  if (rc != 0) fail("refgc_trace_start");

  stage1(argv[a]);
  stage2(argv[a + 1]);
  stage3(argv[a + 2]);
  if (argc - a == 4) save(0, argv[a + 3]);

  refgc_trace_stop();
  return 0;
}
