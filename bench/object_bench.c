/* object_bench.c — object benchmarks for refgc against manual malloc/free and Boehm GC.
 *
 * The same source is compiled once per variant; a thin macro layer picks the memory manager:
 *
 *   -DBENCH_REFGC     refgc objects: refgc_new + refgc_decref (types with a traverse hook and a
 *                     per-thread free list of FREELIST instances); the "pair" and "trees-heap"
 *                     subcommands use the plain refgc heap (refgc_malloc / refgc_free)
 *                     (link librefgc.a -lpthread -ldl, -Iinclude)
 *   -DBENCH_MIMALLOC  malloc / free overridden by -lmimalloc
 *   -DBENCH_BOEHM     GC_MALLOC from -lgc (Boehm–Demers–Weiser), never freed: the collector
 *                     finds dead memory (GC_INIT is called first)
 *   (none)            glibc malloc / free
 *
 * Subcommands (one machine-readable "RESULT ..." line on stdout per run):
 *
 *   churn [N [FREELIST [GC]]]     create and drop N (10M) of the smallest object, header + one
 *                                 pointer field (16 bytes), one live at a time. refgc:
 *                                 refgc_new + refgc_decref of a type whose free list keeps up
 *                                 to FREELIST (80) instances (0: no free list). Others: a
 *                                 16-byte malloc + free pair (Boehm: GC_MALLOC only) that
 *                                 writes the same two words refgc_new writes. GC "nogc":
 *                                 refgc only, call refgc_gc_disable() first (a refgc with a
 *                                 cycle collector, refgc/gc.h); "gc" (the default): leave it on.
 *   pair [N]                      N (10M) 16-byte malloc + free pairs that write both words
 *                                 (refgc: refgc_malloc + refgc_free; the heap alone, no
 *                                 object layer).
 *   trees [MAXDEPTH [FREELIST [GC]]]  binary-trees (the Computer Language Benchmarks Game shape,
 *                                 with GCBench's long-lived array): a stretch tree of depth
 *                                 MAXDEPTH+1 (16+1) built, checked and dropped; a long-lived
 *                                 tree of depth MAXDEPTH and an array of 500,000 doubles (4 MB)
 *                                 kept alive throughout; then for d = 4, 6, ..., MAXDEPTH,
 *                                 2^(MAXDEPTH-d+4) short-lived trees of depth d each built,
 *                                 checked and dropped. refgc: refcounted nodes (header + left +
 *                                 right), a tree is dropped with one refgc_decref of its root;
 *                                 malloc variants: nodes {left, right} freed recursively;
 *                                 Boehm: nodes {left, right} from GC_MALLOC, dropped by
 *                                 forgetting the root. GC as for churn.
 *   trees-heap [MAXDEPTH]         refgc only: the malloc/free program of `trees` run on
 *                                 refgc_malloc / refgc_free (to separate heap from object cost).
 *   bytes [N [KIND]]              N (1M) of the smallest objects kept alive at once; reports
 *                                 bytes per object. refgc KIND "tracked": a chain of objects
 *                                 with a traverse hook, each holding one reference to the
 *                                 previous one (header + one pointer, 16 bytes); KIND "leaf": a
 *                                 REFGC_TYPE_LEAF type of header only (8 bytes), held in an
 *                                 array outside the heap. Figures: the growth of the heap's
 *                                 committed bytes and in_use bytes (refgc_heap_stats) and of
 *                                 the process's RSS, divided by N. Malloc variants: a chain of
 *                                 16-byte blocks, RSS growth only.
 *   name                          print the variant's name.
 *
 * Every run reports its peak RSS (VmHWM from /proc/self/status: the peak of this process image;
 * getrusage's ru_maxrss is carried across execve, so it may show the launcher's size) and its
 * CPU time (user + system: Boehm GC may mark on more than one thread).
 *
 * Build: cc -O2 -std=c11 -Wall -Wextra -Wshadow -Wstrict-prototypes object_bench.c
 *        [-DBENCH_... and the variant's library] -lpthread
 */
#define _GNU_SOURCE 1

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* ---------------------------------------------------------------------------------------------
 * The variant layer
 * ------------------------------------------------------------------------------------------ */

#if defined(BENCH_REFGC)
#include "refgc.h"
#define VARIANT_NAME "refgc"
#define BENCH_MALLOC(n) refgc_malloc(n)
#define BENCH_FREE(p) refgc_free(p)
#define BENCH_HAS_FREE 1
static void variant_init(void) {}
static int bench_owns(void *p) { return refgc_owns(p); }

#elif defined(BENCH_MIMALLOC)
#include <mimalloc.h>
#define VARIANT_NAME "mimalloc"
#define BENCH_MALLOC(n) malloc(n)
#define BENCH_FREE(p) free(p)
#define BENCH_HAS_FREE 1
static void variant_init(void) {}
static int bench_owns(void *p) { return mi_is_in_heap_region(p) ? 1 : 0; }

#elif defined(BENCH_BOEHM)
#define GC_THREADS 1 /* the documented way to include gc.h with a threaded libgc */
#include <gc.h>
#define VARIANT_NAME "boehm"
#define BENCH_MALLOC(n) GC_MALLOC(n)
#define BENCH_FREE(p) ((void)(p)) /* the collector finds it */
#define BENCH_HAS_FREE 0
static void variant_init(void) { GC_INIT(); }
static int bench_owns(void *p) { return GC_base(p) == p ? 1 : 0; }

#else
#define VARIANT_NAME "glibc"
#define BENCH_MALLOC(n) malloc(n)
#define BENCH_FREE(p) free(p)
#define BENCH_HAS_FREE 1
static void variant_init(void) {}
static int bench_owns(void *p) {
  (void)p;
  return -1; /* glibc has no ownership query; it is the default anyway */
}
#endif

/* Keep the compiler from proving a block unused (GCC removes malloc/free pairs it can see
 * through): the block's address escapes into an empty asm that may read memory. */
#define ESCAPE(p) __asm__ volatile("" : : "r"(p) : "memory")

#define BENCH_PROG "object_bench"
#define BENCH_NAME VARIANT_NAME
#include "bench_common.h"

/* ---------------------------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------------------------ */

/* Abort if the allocator under test does not own the blocks it hands out (a peer library
 * that failed to override malloc would otherwise silently benchmark glibc). */
static void check_owner(void) {
  void *p = xmalloc(64);
  memset(p, 0, 64);
  ESCAPE(p);
  int owns = bench_owns(p);
  BENCH_FREE(p);
  if (owns == 0) die("the allocator under test does not own its blocks");
}

/* ---------------------------------------------------------------------------------------------
 * Object shapes
 * ------------------------------------------------------------------------------------------ */

/* The smallest object: a header word and one pointer field, 16 bytes. For malloc variants the
 * header word is written as refgc_new writes its header (a count of 1 and a type word). */
typedef struct small_s {
#if defined(BENCH_REFGC)
  refgc_object_t ob;
#else
  uint64_t header;
#endif
  struct small_s *field;
} small_t;

typedef char small_is_16_bytes[sizeof(small_t) == 16 ? 1 : -1];

#if defined(BENCH_REFGC)
static void small_traverse(refgc_object_t *self, refgc_visit_fn *visit, void *arg) {
  small_t *s = (small_t *)self;
  if (s->field) visit(&s->field->ob, arg);
}

static const refgc_type_t *register_type(const char *name, size_t size, refgc_traverse_fn *trav,
                                         uint32_t flags, long freelist_max) {
  refgc_type_spec_t spec;
  memset(&spec, 0, sizeof spec);
  spec.version = REFGC_TYPE_SPEC_VERSION;
  spec.flags = flags;
  spec.name = name;
  spec.basic_size = size;
  spec.traverse = trav;
  spec.freelist_max = (uint32_t)freelist_max;
  const refgc_type_t *t = refgc_type_register(&spec);
  if (t == NULL) die("refgc_type_register failed");
  return t;
}

/* "gc" leaves the cycle collector as it is; "nogc" switches it off (when there is one). */
static void set_gc(const char *gc) {
  if (strcmp(gc, "gc") == 0) return;
  if (strcmp(gc, "nogc") != 0) die("GC is gc or nogc");
#if defined(REFGC_GC_H)
  refgc_gc_disable();
#else
  die("this refgc has no cycle collector to switch off");
#endif
}

static refgc_object_t *xnew(const refgc_type_t *t) {
  refgc_object_t *o = refgc_new(t);
  if (o == NULL) die("refgc_new failed");
  return o;
}
#endif

/* ---------------------------------------------------------------------------------------------
 * churn and pair
 * ------------------------------------------------------------------------------------------ */

#define WARMUP 100000L

/* A 16-byte malloc + free pair that writes what refgc_new writes. */
static inline void raw_pair(void) {
  small_t *s = xmalloc(sizeof *s);
#if defined(BENCH_REFGC)
  s->ob.refcnt = 1;
  s->ob.bits = 1;
#else
  s->header = 1;
#endif
  s->field = NULL;
  ESCAPE(s);
  BENCH_FREE(s);
}

static void report_run(const char *bench, long n, double secs, double cpu, const char *extra) {
  printf("RESULT variant=%s bench=%s n=%ld seconds=%.5f cpu_seconds=%.4f ns_per_object=%.3f "
         "peak_rss_mb=%.1f ru_maxrss_mb=%.1f%s\n",
         VARIANT_NAME, bench, n, secs, cpu, secs * 1e9 / (double)n, peak_rss_mb(), ru_maxrss_mb(),
         extra);
}

static int bench_pair(long n) {
  for (long i = 0; i < WARMUP; i++) raw_pair();
  double c0 = cpu_sec();
  double t0 = now_sec();
  for (long i = 0; i < n; i++) raw_pair();
  double t1 = now_sec();
  double c1 = cpu_sec();
  report_run("pair", n, t1 - t0, c1 - c0, "");
  return 0;
}

static int bench_churn(long n, long freelist_max, const char *gc) {
#if defined(BENCH_REFGC)
  set_gc(gc);
  const refgc_type_t *t =
      register_type("small", sizeof(small_t), small_traverse, 0, freelist_max);
  for (long i = 0; i < WARMUP; i++) {
    refgc_object_t *o = xnew(t);
    ESCAPE(o);
    refgc_decref(o);
  }
  double c0 = cpu_sec();
  double t0 = now_sec();
  for (long i = 0; i < n; i++) {
    refgc_object_t *o = xnew(t);
    ESCAPE(o);
    refgc_decref(o);
  }
  double t1 = now_sec();
  double c1 = cpu_sec();
  refgc_type_stats_t ts;
  if (refgc_type_stats(t, &ts) != 0) die("refgc_type_stats failed");
  if (ts.live != 0) die("churn: objects still live");
  char extra[160];
  snprintf(extra, sizeof extra, " freelist_max=%ld gc=%s created=%llu reused=%llu",
           freelist_max, gc, (unsigned long long)ts.created, (unsigned long long)ts.reused);
  report_run("churn", n, t1 - t0, c1 - c0, extra);
#else
  (void)freelist_max;
  if (strcmp(gc, "gc") != 0) die("GC nogc is for refgc only");
  for (long i = 0; i < WARMUP; i++) raw_pair();
  double c0 = cpu_sec();
  double t0 = now_sec();
  for (long i = 0; i < n; i++) raw_pair();
  double t1 = now_sec();
  double c1 = cpu_sec();
#if defined(BENCH_BOEHM)
  char extra[160];
  snprintf(extra, sizeof extra, " gc_count=%lu gc_heap_mb=%.1f gc_parallel=%d",
           (unsigned long)GC_get_gc_no(), mb((double)GC_get_heap_size()), GC_get_parallel());
  report_run("churn", n, t1 - t0, c1 - c0, extra);
#else
  report_run("churn", n, t1 - t0, c1 - c0, "");
#endif
#endif
  return 0;
}

/* ---------------------------------------------------------------------------------------------
 * trees: binary-trees with GCBench's long-lived array
 * ------------------------------------------------------------------------------------------ */

#define MIN_DEPTH 4
#define ARRAY_LEN 500000

/* The malloc/free program (and Boehm's): nodes {left, right}, freed recursively. */
typedef struct mnode_s {
  struct mnode_s *left, *right;
} mnode_t;

static mnode_t *mtree_new(int depth) {
  mnode_t *n = xmalloc(sizeof *n);
  if (depth > 0) {
    n->left = mtree_new(depth - 1);
    n->right = mtree_new(depth - 1);
  } else {
    n->left = n->right = NULL;
  }
  return n;
}

static long mtree_check(const mnode_t *n) {
  if (n->left == NULL) return 1;
  return 1 + mtree_check(n->left) + mtree_check(n->right);
}

static void mtree_free(mnode_t *n) {
#if BENCH_HAS_FREE
  if (n->left != NULL) {
    mtree_free(n->left);
    mtree_free(n->right);
  }
  BENCH_FREE(n);
#else
  (void)n; /* Boehm: forgetting the root is all it takes */
#endif
}

#if defined(BENCH_REFGC)
/* The refgc program: refcounted nodes {header, left, right}; each node owns its children. */
typedef struct onode_s {
  refgc_object_t ob;
  struct onode_s *left, *right;
} onode_t;

static const refgc_type_t *onode_type;

static void onode_traverse(refgc_object_t *self, refgc_visit_fn *visit, void *arg) {
  onode_t *n = (onode_t *)self;
  if (n->left) visit(&n->left->ob, arg);
  if (n->right) visit(&n->right->ob, arg);
}

static onode_t *otree_new(int depth) {
  onode_t *n = (onode_t *)xnew(onode_type); /* fields are zeroed */
  if (depth > 0) {
    n->left = otree_new(depth - 1);
    n->right = otree_new(depth - 1);
  }
  return n;
}

static long otree_check(const onode_t *n) {
  if (n->left == NULL) return 1;
  return 1 + otree_check(n->left) + otree_check(n->right);
}

#define TREE_T onode_t
#define TREE_NEW otree_new
#define TREE_CHECK otree_check
#define TREE_DROP(n) refgc_decref(&(n)->ob)
#else
#define TREE_T mnode_t
#define TREE_NEW mtree_new
#define TREE_CHECK mtree_check
#define TREE_DROP(n) mtree_free(n)
#endif

static double *array_new(void) {
#if defined(BENCH_BOEHM)
  double *a = GC_MALLOC_ATOMIC(ARRAY_LEN * sizeof *a);
  if (a == NULL) die("allocation failed");
#else
  double *a = xmalloc(ARRAY_LEN * sizeof *a);
#endif
  for (long i = 0; i < ARRAY_LEN / 2; i++) a[i] = 1.0 / (double)(i + 1);
  return a;
}

static void array_free(double *a) { BENCH_FREE(a); }

#define TREES_EXTRA_LEN 256

static void trees_extra(char *extra) {
#if defined(BENCH_BOEHM)
  snprintf(extra, TREES_EXTRA_LEN, " gc_count=%lu gc_heap_mb=%.1f gc_parallel=%d",
           (unsigned long)GC_get_gc_no(), mb((double)GC_get_heap_size()), GC_get_parallel());
#elif defined(BENCH_REFGC)
  refgc_heap_stats_t hs;
  memset(&hs, 0, sizeof hs);
  hs.size = sizeof hs;
  if (refgc_heap_stats(&hs) != 0) die("refgc_heap_stats failed");
  snprintf(extra, TREES_EXTRA_LEN, " committed_peak_mb=%.1f in_use_peak_mb=%.1f",
           mb((double)hs.committed_peak), mb((double)hs.in_use_peak));
#else
  extra[0] = '\0';
#endif
}

/* Both programs share this body through the TREE_* macros (or the m* functions). */
#define TREES_BODY(T, NEW, CHECK, DROP)                                                        \
  do {                                                                                         \
    T *stretch = NEW(max_depth + 1);                                                           \
    check += CHECK(stretch);                                                                   \
    DROP(stretch);                                                                             \
    T *long_lived = NEW(max_depth);                                                            \
    double *array = array_new();                                                               \
    for (int d = MIN_DEPTH; d <= max_depth; d += 2) {                                          \
      long iters = 1L << (max_depth - d + MIN_DEPTH);                                          \
      for (long i = 0; i < iters; i++) {                                                       \
        T *t = NEW(d);                                                                         \
        check += CHECK(t);                                                                     \
        DROP(t);                                                                               \
      }                                                                                        \
      nodes += iters * ((2L << d) - 1);                                                        \
    }                                                                                          \
    check += CHECK(long_lived);                                                                \
    if (array[1000] != 1.0 / 1001.0) die("trees: the long-lived array was overwritten");      \
    DROP(long_lived);                                                                          \
    array_free(array);                                                                         \
    nodes += (2L << (max_depth + 1)) - 1 + (2L << max_depth) - 1;                              \
  } while (0)

static int bench_trees(int max_depth, long freelist_max, int heap_only, const char *gc) {
  long check = 0, nodes = 0;
  const char *bench = heap_only ? "trees-heap" : "trees";
#if defined(BENCH_REFGC)
  set_gc(gc);
  onode_type = register_type("tree_node", sizeof(onode_t), onode_traverse, 0, freelist_max);
#else
  (void)freelist_max;
  if (strcmp(gc, "gc") != 0) die("GC nogc is for refgc only");
#endif
  double c0 = cpu_sec();
  double t0 = now_sec();
  if (heap_only) {
    TREES_BODY(mnode_t, mtree_new, mtree_check, mtree_free);
  } else {
    TREES_BODY(TREE_T, TREE_NEW, TREE_CHECK, TREE_DROP);
  }
  double t1 = now_sec();
  double c1 = cpu_sec();
  if (check != nodes) die("trees: node count mismatch");
  char extra[TREES_EXTRA_LEN + 64];
  char vx[TREES_EXTRA_LEN];
  trees_extra(vx);
  snprintf(extra, sizeof extra, " max_depth=%d freelist_max=%ld gc=%s check=%ld%s", max_depth,
           freelist_max, gc, check, vx);
  report_run(bench, nodes, t1 - t0, c1 - c0, extra);
  return 0;
}

/* ---------------------------------------------------------------------------------------------
 * bytes: bytes per live object
 * ------------------------------------------------------------------------------------------ */

#if defined(BENCH_REFGC)
static void heap_stats(refgc_heap_stats_t *hs) {
  memset(hs, 0, sizeof *hs);
  hs->size = sizeof *hs;
  if (refgc_heap_stats(hs) != 0) die("refgc_heap_stats failed");
}
#endif

static int bench_bytes(long n, const char *kind) {
#if defined(BENCH_REFGC)
  int leaf = strcmp(kind, "leaf") == 0;
  if (!leaf && strcmp(kind, "tracked") != 0) die("bytes: KIND is tracked or leaf");
  const refgc_type_t *t =
      leaf ? register_type("leaf", sizeof(refgc_object_t), NULL, REFGC_TYPE_LEAF, 0)
           : register_type("small", sizeof(small_t), small_traverse, 0, 0);
  /* the leaf objects' array lives outside the heap, resident before the first figure */
  size_t arr_len = leaf ? (size_t)n * sizeof(refgc_object_t *) : 0;
  refgc_object_t **arr = leaf ? xmmap(arr_len) : NULL;
  if (arr) memset(arr, 0, arr_len);
  refgc_decref(xnew(t)); /* the thread's object state exists before the first figure */
  refgc_heap_stats_t h0, h1;
  heap_stats(&h0);
  double rss0 = rss_bytes();
  double t0 = now_sec();
  small_t *head = NULL;
  for (long i = 0; i < n; i++) {
    if (leaf) {
      arr[i] = xnew(t);
    } else {
      small_t *s = (small_t *)xnew(t);
      s->field = head; /* the new object takes over the reference to the previous head */
      head = s;
    }
  }
  double t1 = now_sec();
  double rss1 = rss_bytes();
  heap_stats(&h1);
  double r0 = now_sec();
  if (leaf) {
    for (long i = 0; i < n; i++) refgc_decref(arr[i]);
  } else {
    refgc_decref(&head->ob); /* releases the whole chain, without recursion */
  }
  double r1 = now_sec();
  refgc_type_stats_t ts;
  if (refgc_type_stats(t, &ts) != 0 || ts.live != 0) die("bytes: objects still live");
  if (arr) munmap(arr, arr_len);
  double dn = (double)n;
  printf("RESULT variant=%s bench=bytes kind=%s n=%ld object_size=%zu "
         "committed_per_object=%.3f in_use_per_object=%.3f rss_per_object=%.3f "
         "committed_total_per_object=%.3f metadata_delta=%.0f build_ns_per_object=%.2f "
         "release_ns_per_object=%.2f peak_rss_mb=%.1f ru_maxrss_mb=%.1f\n",
         VARIANT_NAME, kind, n, leaf ? sizeof(refgc_object_t) : sizeof(small_t),
         ((double)h1.committed - (double)h0.committed) / dn,
         ((double)h1.in_use - (double)h0.in_use) / dn, (rss1 - rss0) / dn,
         (double)h1.committed / dn, (double)h1.metadata - (double)h0.metadata,
         (t1 - t0) * 1e9 / dn, (r1 - r0) * 1e9 / dn, peak_rss_mb(), ru_maxrss_mb());
#else
  (void)kind;
  small_t *head = NULL;
  double rss0 = rss_bytes();
  double t0 = now_sec();
  for (long i = 0; i < n; i++) {
    small_t *s = xmalloc(sizeof *s);
    s->header = 1;
    s->field = head;
    head = s;
  }
  double t1 = now_sec();
  double rss1 = rss_bytes();
  double r0 = now_sec();
#if BENCH_HAS_FREE
  while (head != NULL) {
    small_t *next = head->field;
    BENCH_FREE(head);
    head = next;
  }
#endif
  ESCAPE(head);
  double r1 = now_sec();
  double dn = (double)n;
  printf("RESULT variant=%s bench=bytes kind=malloc16 n=%ld object_size=%zu "
         "rss_per_object=%.3f build_ns_per_object=%.2f release_ns_per_object=%.2f "
         "peak_rss_mb=%.1f ru_maxrss_mb=%.1f\n",
         VARIANT_NAME, n, sizeof(small_t), (rss1 - rss0) / dn, (t1 - t0) * 1e9 / dn,
         (r1 - r0) * 1e9 / dn, peak_rss_mb(), ru_maxrss_mb());
#endif
  return 0;
}

/* ---------------------------------------------------------------------------------------------
 * main
 * ------------------------------------------------------------------------------------------ */

static void usage(void) {
  fprintf(stderr,
          "usage: object_bench churn [N [FREELIST [gc|nogc]]]\n"
          "       object_bench pair [N]\n"
          "       object_bench trees [MAXDEPTH [FREELIST [gc|nogc]]]\n"
          "       object_bench trees-heap [MAXDEPTH]      (refgc only)\n"
          "       object_bench bytes [N [tracked|leaf]]\n"
          "       object_bench name\n");
  exit(2);
}

int main(int argc, char **argv) {
  if (argc < 2) usage();
  const char *cmd = argv[1];
  if (strcmp(cmd, "name") == 0) {
    printf("%s\n", VARIANT_NAME);
    return 0;
  }
  variant_init();
  check_owner();
  if (strcmp(cmd, "churn") == 0) {
    long n = argc > 2 ? parse_long(argv[2], "N", 1) : 10000000L;
    long fl = argc > 3 ? parse_long(argv[3], "FREELIST", 0) : 80;
    const char *gc = argc > 4 ? argv[4] : "gc";
    if (fl > 0x7fffffffL) usage();
    return bench_churn(n, fl, gc);
  }
  if (strcmp(cmd, "pair") == 0) {
    long n = argc > 2 ? parse_long(argv[2], "N", 1) : 10000000L;
    return bench_pair(n);
  }
  if (strcmp(cmd, "trees") == 0 || strcmp(cmd, "trees-heap") == 0) {
    int heap_only = strcmp(cmd, "trees-heap") == 0;
#if !defined(BENCH_REFGC)
    if (heap_only) usage();
#endif
    long depth = argc > 2 ? parse_long(argv[2], "MAXDEPTH", MIN_DEPTH) : 16;
    long fl = argc > 3 ? parse_long(argv[3], "FREELIST", 0) : 0;
    const char *gc = argc > 4 ? argv[4] : "gc";
    if (depth > 24 || fl > 0x7fffffffL) usage();
    return bench_trees((int)depth, fl, heap_only, gc);
  }
  if (strcmp(cmd, "bytes") == 0) {
    long n = argc > 2 ? parse_long(argv[2], "N", 1) : 1000000L;
    const char *kind = argc > 3 ? argv[3] : "tracked";
    return bench_bytes(n, kind);
  }
  usage();
  return 2;
}
