/* refgc-demo — the demonstration behind `make run`.
 *
 * A small in-memory document store exercises the heap the way a real program would, under
 * allocation tracing, then shows what the heap did and what the tracer found:
 *   1. load: 200,000 documents, each a record, a title string and a body of 16 B – 64 KiB,
 *      plus a few large attachments (> 128 KiB, straight from the OS);
 *   2. traffic: two writer threads create update messages that a reader thread applies and
 *      frees, so every message is freed by a thread other than the one that allocated it;
 *   3. eviction: the store drops all but 1 document in 1000, and `refgc_heap_collect` gives the
 *      memory back to the OS, down to single 4 KiB pages inside partly used pages;
 *   4. objects: the store's documents become reference-counted objects held by the store's
 *      index (a declared root): paragraphs shared between documents, a cache of documents by
 *      title that holds them only weakly, an observer told through a weak reference callback
 *      when a document dies, a finalizer that writes a document back to its archive once, a
 *      registry of change subscriptions (a declared root) — and one planted leak:
 *      `observers_unsubscribe` takes a subscription out of the registry and forgets to release
 *      it, so the deleted document "Release notes" and its paragraphs stay alive; and a
 *      1,000,000-paragraph document released without recursion;
 *   5. cycles: editors and their sessions refer to each other; dropping them leaves cycles
 *      that only the cycle collector frees; a session's finalizer saves it once to the
 *      "recently closed" list (a declared root): a resurrection, and the collector keeps the
 *      session and all it reaches;
 *   6. misuse: a child process runs with REFGC_DEBUG=1 (and no tracing) and makes classic
 *      mistakes (double free, write past the end, free of a pointer into a block, decref of a
 *      released object); each is caught and explained;
 *   7. the heap report;
 *   8. what the tracer saw: a snapshot with the object graph; collector statistics, the top
 *      allocation sites and types, the leak suspects with their allocation sites and retaining
 *      chains — the planted leak (a lost reference) and the resurrected session — and why the
 *      leaked document is still alive;
 *   9. cleanup: the lost reference released, the roots let go, every object freed.
 * Tracing starts first thing (refgc_trace_start(16)), so the whole run is traced; a snapshot
 * of the traces ends each phase. Writes <out>.txt (the heap report), <out>.json (steps and
 * statistics) and <out>-snapshots/NN-PHASE.rgc (01-load ... 07-final, the last with the object
 * graph), which the `refgc` command turns into an HTML report and viewer exports (`make run`).
 * Exits non-zero when a check fails, including when the leak analysis does not find exactly
 * the planted leak and the resurrection.
 *
 * Usage: refgc-demo [--out PREFIX] [--scale N] [--no-trace]
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "refgc.h"

#if defined(__clang__)
#define REFGC_DEMO_NOINLINE __attribute__((noinline))
#else
#define REFGC_DEMO_NOINLINE __attribute__((noinline, noclone))
#endif

/* ---- helpers --------------------------------------------------------------------------- */

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double rss_mib(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  unsigned long size = 0, res = 0;
  if (f) {
    if (fscanf(f, "%lu %lu", &size, &res) != 2) res = 0;
    fclose(f);
  }
  return (double)res * (double)sysconf(_SC_PAGESIZE) / (1024.0 * 1024.0);
}

static uint64_t rng_state = 0x1234567;
static uint64_t rnd(void) {
  uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static refgc_heap_stats_t stats_now(void) {
  refgc_heap_stats_t s;
  s.size = sizeof s;
  refgc_heap_stats(&s);
  return s;
}

static double mib(size_t b) { return (double)b / (1024.0 * 1024.0); }

static FILE *json;
static void json_step(const char *name, double seconds) {
  refgc_heap_stats_t s = stats_now();
  fprintf(json,
          "%s{\"step\":\"%s\",\"seconds\":%.4f,\"rss_mib\":%.2f,\"in_use\":%zu,"
          "\"committed\":%zu,\"reserved\":%zu,\"released_total\":%llu,\"fragmentation\":%.4f}",
          strcmp(name, "load") ? "," : "", name, seconds, rss_mib(), s.in_use, s.committed,
          s.reserved, (unsigned long long)s.released_total, s.fragmentation);
}

static void print_line(const char *what) {
  refgc_heap_stats_t s = stats_now();
  printf("    %-34s RSS %7.1f MiB | in use %7.1f MiB | committed %7.1f MiB | given back %7.1f MiB\n",
         what, rss_mib(), mib(s.in_use), mib(s.committed), mib((size_t)s.released_total));
}

/* ---- 1. the document store ------------------------------------------------------------- */

typedef struct doc_s {
  uint64_t id;
  char *title;
  uint8_t *body;
  size_t body_len;
} doc_t;

static doc_t **docs;
static size_t ndocs;

static size_t body_size(void) {
  /* mostly small, a long tail: 60 % ≤ 256 B, 30 % ≤ 4 KiB, 10 % ≤ 64 KiB */
  uint64_t r = rnd() % 100;
  if (r < 60) return 16 + rnd() % 241;
  if (r < 90) return 257 + rnd() % 3840;
  return 4097 + rnd() % 61440;
}

/* Not inlined (here and below): allocation sites then name the function that allocates. */
static REFGC_DEMO_NOINLINE void load(size_t n) {
  docs = refgc_calloc(n, sizeof *docs);
  for (size_t i = 0; i < n; i++) {
    doc_t *d = refgc_malloc(sizeof *d);
    d->id = i;
    char tmp[64];
    int len = snprintf(tmp, sizeof tmp, "document %zu: a title of some length", i);
    d->title = refgc_malloc((size_t)len + 1);
    memcpy(d->title, tmp, (size_t)len + 1);
    d->body_len = body_size();
    d->body = refgc_malloc(d->body_len);
    memset(d->body, (int)(i & 0xFF), d->body_len);
    docs[i] = d;
  }
  ndocs = n;
}

static void drop_doc(size_t i) {
  refgc_free(docs[i]->title);
  refgc_free(docs[i]->body);
  refgc_free(docs[i]);
  docs[i] = NULL;
}

/* ---- 2. cross-thread traffic ------------------------------------------------------------ */

#define QCAP 4096
typedef struct queue_s {
  void *items[QCAP];
  size_t head, tail;
  int writers_done;
  pthread_mutex_t mu;
  pthread_cond_t not_empty, not_full;
} queue_t;

static queue_t q = {.mu = PTHREAD_MUTEX_INITIALIZER,
                    .not_empty = PTHREAD_COND_INITIALIZER,
                    .not_full = PTHREAD_COND_INITIALIZER};
static size_t messages_per_writer;

static void *writer(void *arg) {
  uint64_t seed = (uint64_t)(uintptr_t)arg;
  for (size_t i = 0; i < messages_per_writer; i++) {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    size_t n = 32 + (size_t)((seed >> 33) % 480);
    uint8_t *m = refgc_malloc(n);
    m[0] = (uint8_t)n;
    memset(m + 1, 0xAB, n - 1);
    pthread_mutex_lock(&q.mu);
    while (q.tail - q.head == QCAP) pthread_cond_wait(&q.not_full, &q.mu);
    q.items[q.tail++ % QCAP] = m;
    pthread_cond_signal(&q.not_empty);
    pthread_mutex_unlock(&q.mu);
  }
  pthread_mutex_lock(&q.mu);
  q.writers_done++;
  pthread_cond_broadcast(&q.not_empty);
  pthread_mutex_unlock(&q.mu);
  return NULL;
}

static void *reader(void *arg) {
  size_t *applied = arg;
  for (;;) {
    pthread_mutex_lock(&q.mu);
    while (q.tail == q.head && q.writers_done < 2) pthread_cond_wait(&q.not_empty, &q.mu);
    if (q.tail == q.head) {
      pthread_mutex_unlock(&q.mu);
      return NULL;
    }
    uint8_t *m = q.items[q.head++ % QCAP];
    pthread_cond_signal(&q.not_full);
    pthread_mutex_unlock(&q.mu);
    (*applied)++;
    refgc_free(m); /* freed by a thread that did not allocate it */
  }
}

/* ---- 4. objects -------------------------------------------------------------------------- */

/* A paragraph: a leaf object (holds no references) with its text inline. */
typedef struct para_s {
  refgc_object_t ob;
  size_t len;
  char text[];
} para_t;

/* A document: a variable-size object holding references to its paragraphs. */
typedef struct docobj_s {
  refgc_object_t ob;
  const char *title;
  int archived;
  size_t n;
  para_t *paras[];
} docobj_t;

/* The store's index: the documents of the store (a declared root). */
typedef struct index_s {
  refgc_object_t ob;
  size_t n, cap;
  docobj_t *docs[];
} index_t;

/* A change subscription: an editor wants to hear about edits to a document. */
typedef struct subscription_s {
  refgc_object_t ob;
  docobj_t *doc;
  int editor;
} subscription_t;

/* The registry of subscriptions (a declared root): it owns one reference to each. */
#define MAX_SUBS 16
typedef struct observers_s {
  refgc_object_t ob;
  size_t n;
  subscription_t *subs[MAX_SUBS];
} observers_t;

#define LEAK_PARAS 400 /* paragraphs of the leaked document */

static const refgc_type_t *para_type, *doc_type, *index_type, *subscription_type,
    *observers_type;
static int archived_count, observer_calls;
static index_t *store;            /* declared root "store.index" */
static observers_t *observers;    /* declared root "store.observers" */
static docobj_t *leaked_doc;      /* borrowed: the document the planted leak keeps alive */
static subscription_t *lost_sub;  /* borrowed: the subscription whose reference was lost */
static int leak_found;            /* step 8 found it: both are alive (else leave them alone) */

static void doc_traverse(refgc_object_t *self, refgc_visit_fn *visit, void *arg) {
  docobj_t *d = (docobj_t *)self;
  for (size_t i = 0; i < d->n; i++) visit(&d->paras[i]->ob, arg);
}

/* The finalizer runs once, with the document intact: "archive" it. */
static void doc_finalize(refgc_object_t *self) {
  docobj_t *d = (docobj_t *)self;
  d->archived = 1;
  archived_count++;
}

static void index_traverse(refgc_object_t *self, refgc_visit_fn *visit, void *arg) {
  index_t *ix = (index_t *)self;
  for (size_t i = 0; i < ix->n; i++) visit(&ix->docs[i]->ob, arg);
}

static void subscription_traverse(refgc_object_t *self, refgc_visit_fn *visit, void *arg) {
  visit(&((subscription_t *)self)->doc->ob, arg);
}

static void observers_traverse(refgc_object_t *self, refgc_visit_fn *visit, void *arg) {
  observers_t *o = (observers_t *)self;
  for (size_t i = 0; i < o->n; i++) visit(&o->subs[i]->ob, arg);
}

static void doc_observer(refgc_object_t *weakref, void *arg) {
  observer_calls++;
  printf("    observer: \"%s\" is gone (weak reference now reads %s)\n", (const char *)arg,
         refgc_weakref_alive(weakref) ? "alive" : "NULL");
}

static REFGC_DEMO_NOINLINE para_t *para_new(const char *text) {
  size_t len = strlen(text);
  para_t *p = (para_t *)refgc_new_var(para_type, len + 1);
  p->len = len;
  memcpy(p->text, text, len + 1);
  return p;
}

static REFGC_DEMO_NOINLINE docobj_t *docobj_new(const char *title, size_t n) {
  docobj_t *d = (docobj_t *)refgc_new_var(doc_type, n);
  d->title = title;
  d->n = n;
  return d;
}

/* The index takes the caller's reference to `d`. */
static void index_add(index_t *ix, docobj_t *d) {
  if (ix->n == ix->cap) {
    fprintf(stderr, "refgc-demo: the index is full\n");
    exit(1);
  }
  ix->docs[ix->n++] = d;
}

/* The index lets go of `d` (its reference is released). */
static void index_remove(index_t *ix, docobj_t *d) {
  for (size_t i = 0; i < ix->n; i++)
    if (ix->docs[i] == d) {
      memmove(&ix->docs[i], &ix->docs[i + 1], (ix->n - i - 1) * sizeof *ix->docs);
      ix->docs[--ix->n] = NULL;
      refgc_decref(&d->ob);
      return;
    }
}

/* Not static, not inlined, and the demo links with -rdynamic: allocation sites name them. */
__attribute__((noinline)) subscription_t *observers_subscribe(observers_t *reg, docobj_t *doc,
                                                              int editor);
__attribute__((noinline)) void observers_unsubscribe(observers_t *reg, subscription_t *s);

/* Editor `editor` subscribes to changes of `doc`. The subscription holds the document; the
 * registry owns the subscription. Returns the subscription (borrowed) as the editor's handle. */
__attribute__((noinline)) subscription_t *observers_subscribe(observers_t *reg, docobj_t *doc,
                                                              int editor) {
  if (reg->n == MAX_SUBS) return NULL;
  subscription_t *s = (subscription_t *)refgc_new(subscription_type);
  refgc_incref(&doc->ob);
  s->doc = doc;
  s->editor = editor;
  reg->subs[reg->n++] = s;
  return s;
}

/* The planted leak: the subscription leaves the registry, but the registry's reference to it
 * is never released (the missing line is marked). Nothing refers to it any more, so nothing
 * will ever release it, nor the document it holds. */
__attribute__((noinline)) void observers_unsubscribe(observers_t *reg, subscription_t *s) {
  for (size_t i = 0; i < reg->n; i++)
    if (reg->subs[i] == s) {
      reg->subs[i] = reg->subs[--reg->n];
      reg->subs[reg->n] = NULL;
      /* refgc_decref(&s->ob);   <- forgotten */
      return;
    }
}

/* An edit of `doc`: tells every subscriber; returns how many were told. */
static int observers_notify(const observers_t *reg, const docobj_t *doc) {
  int told = 0;
  for (size_t i = 0; i < reg->n; i++) told += reg->subs[i]->doc == doc;
  return told;
}

static REFGC_DEMO_NOINLINE void objects_demo(void) {
  refgc_type_spec_t ps = {.version = REFGC_TYPE_SPEC_VERSION, .flags = REFGC_TYPE_LEAF,
                          .name = "paragraph", .basic_size = sizeof(para_t), .item_size = 1,
                          .freelist_max = 64};
  refgc_type_spec_t ds = {.version = REFGC_TYPE_SPEC_VERSION, .name = "document",
                          .basic_size = sizeof(docobj_t), .item_size = sizeof(para_t *),
                          .traverse = doc_traverse, .finalize = doc_finalize};
  refgc_type_spec_t is = {.version = REFGC_TYPE_SPEC_VERSION, .name = "index",
                          .basic_size = sizeof(index_t), .item_size = sizeof(docobj_t *),
                          .traverse = index_traverse};
  refgc_type_spec_t ss = {.version = REFGC_TYPE_SPEC_VERSION, .name = "subscription",
                          .basic_size = sizeof(subscription_t),
                          .traverse = subscription_traverse};
  refgc_type_spec_t os = {.version = REFGC_TYPE_SPEC_VERSION, .name = "observers",
                          .basic_size = sizeof(observers_t), .traverse = observers_traverse};
  para_type = refgc_type_register(&ps);
  doc_type = refgc_type_register(&ds);
  index_type = refgc_type_register(&is);
  subscription_type = refgc_type_register(&ss);
  observers_type = refgc_type_register(&os);

  /* the program's roots: the index and the subscription registry */
  store = (index_t *)refgc_new_var(index_type, 16);
  store->cap = 16;
  observers = (observers_t *)refgc_new(observers_type);
  refgc_root_add(&store->ob, "store.index");
  refgc_root_add(&observers->ob, "store.observers");
  printf("    the store's index and its subscription registry are declared roots "
         "(refgc_root_add)\n");

  /* two documents sharing a paragraph, held by the index */
  para_t *shared = para_new("Memory is managed.");
  docobj_t *a = docobj_new("Guide", 2), *b = docobj_new("Notes", 2);
  a->paras[0] = shared;
  refgc_incref(&shared->ob);
  b->paras[0] = shared;
  a->paras[1] = para_new("Objects are reference counted.");
  b->paras[1] = para_new("Weak references do not keep objects alive.");
  index_add(store, a);
  index_add(store, b);
  printf("    two documents share a paragraph: its count is %u\n", refgc_refcount(&shared->ob));

  /* a cache that holds documents weakly, and an observer of "Guide" */
  refgc_weakmap_t *cache = refgc_weakmap_new();
  refgc_weakmap_set(cache, "Guide", 5, &a->ob);
  refgc_weakmap_set(cache, "Notes", 5, &b->ob);
  refgc_object_t *watch = refgc_weakref_new(&a->ob, doc_observer, (void *)"Guide");
  printf("    cache holds %zu documents, weakly\n", refgc_weakmap_count(cache));

  /* "Release notes": editors subscribe to changes, edit, and one closes */
  docobj_t *rn = docobj_new("Release notes", LEAK_PARAS);
  for (size_t i = 0; i < LEAK_PARAS; i++) {
    char text[96];
    snprintf(text, sizeof text, "change %zu: the allocator gives memory back page by page", i);
    rn->paras[i] = para_new(text);
  }
  index_add(store, rn);
  subscription_t *sub = observers_subscribe(observers, rn, 1);
  observers_subscribe(observers, b, 2);
  printf("    editor 1 subscribes to \"Release notes\" (%d paragraphs), editor 2 to \"Notes\": "
         "%zu subscriptions\n", LEAK_PARAS, observers->n);
  printf("    an edit of \"Release notes\" notifies %d subscriber(s)\n",
         observers_notify(observers, rn));
  observers_unsubscribe(observers, sub);
  printf("    editor 1 closes and unsubscribes: %zu subscription(s) left\n", observers->n);

  index_remove(store, a); /* the last strong reference to "Guide" */
  printf("    after deleting \"Guide\": archived %d time(s), shared paragraph count %u, "
         "cache holds %zu\n",
         archived_count, refgc_refcount(&shared->ob), refgc_weakmap_count(cache));
  refgc_object_t *hit = refgc_weakmap_get(cache, "Notes", 5);
  printf("    cache lookup \"Notes\": %s; \"Guide\": %s\n", hit ? "found" : "missing",
         refgc_weakmap_get(cache, "Guide", 5) ? "found" : "missing");
  refgc_xdecref(hit);
  refgc_decref(watch);
  refgc_weakmap_free(cache);

  /* deleting "Release notes" should free it and its paragraphs: it does not */
  int archived_before = archived_count;
  leaked_doc = rn;
  lost_sub = sub;
  index_remove(store, rn);
  printf("    after deleting \"Release notes\": archived %s, still alive with a count of %u "
         "(a planted leak: step 8 finds it)\n",
         archived_count > archived_before ? "yes" : "no", refgc_refcount(&rn->ob));

  /* a document of a million paragraphs: released by one decref, without recursion */
  size_t big = 1000000;
  docobj_t *d = docobj_new("Encyclopedia", big);
  for (size_t i = 0; i < big; i++) d->paras[i] = para_new("entry");
  index_add(store, d);
  double t = now_s();
  index_remove(store, d);
  printf("    a %zu-paragraph document released in %.1f ms (one decref, no recursion)\n", big,
         (now_s() - t) * 1e3);

  const refgc_type_t *types[] = {doc_type, para_type};
  for (int i = 0; i < 2; i++) {
    refgc_type_stats_t s;
    refgc_type_stats(types[i], &s);
    printf("    type %-10s created %8llu  released %8llu  live %zu  reused from free list "
           "%llu  cached %zu\n",
           s.name, (unsigned long long)s.created, (unsigned long long)s.released, s.live,
           (unsigned long long)s.reused, s.cached);
  }
}

/* ---- 5. cycles ---------------------------------------------------------------------------- */

/* An editor holds its session; the session points back to its editor: a cycle. */
typedef struct session_s session_t;
typedef struct editor_s {
  refgc_object_t ob;
  session_t *session;
  int id;
} editor_t;
struct session_s {
  refgc_object_t ob;
  editor_t *editor;
  int id;
};
/* The "recently closed" list: a program-held object holding saved sessions. */
typedef struct recent_s {
  refgc_object_t ob;
  size_t n;
  session_t *items[8];
} recent_t;

static const refgc_type_t *editor_type, *session_type, *recent_type;
static recent_t *recent;
static int sessions_finalized;

static void editor_traverse(refgc_object_t *self, refgc_visit_fn *visit, void *arg) {
  visit((refgc_object_t *)((editor_t *)self)->session, arg);
}
static void editor_clear(refgc_object_t *self) {
  editor_t *e = (editor_t *)self;
  refgc_object_t *s = (refgc_object_t *)e->session;
  e->session = NULL;
  refgc_xdecref(s);
}
static void session_traverse(refgc_object_t *self, refgc_visit_fn *visit, void *arg) {
  visit((refgc_object_t *)((session_t *)self)->editor, arg);
}
static void session_clear(refgc_object_t *self) {
  session_t *s = (session_t *)self;
  refgc_object_t *e = (refgc_object_t *)s->editor;
  s->editor = NULL;
  refgc_xdecref(e);
}
/* Runs once per session. Session 7 is saved to the recent list: resurrected, with its editor. */
static void session_finalize(refgc_object_t *self) {
  session_t *s = (session_t *)self;
  sessions_finalized++;
  if (s->id == 7 && recent->n < 8) {
    refgc_incref(self);
    recent->items[recent->n++] = s;
  }
}
static void recent_traverse(refgc_object_t *self, refgc_visit_fn *visit, void *arg) {
  recent_t *r = (recent_t *)self;
  for (size_t i = 0; i < r->n; i++) visit(&r->items[i]->ob, arg);
}

/* A collection callback: counts what automatic collections did while the program ran. */
typedef struct auto_tally_s {
  size_t collections, freed, resurrected;
  double seconds, worst;
} auto_tally_t;

static void tally_collection(int phase, const refgc_gc_result_t *info, void *arg) {
  auto_tally_t *t = arg;
  if (phase != REFGC_GC_STOP) return;
  t->collections++;
  t->freed += info->collected;
  t->resurrected += info->resurrected;
  t->seconds += info->seconds;
  if (info->seconds > t->worst) t->worst = info->seconds;
}

static REFGC_DEMO_NOINLINE void cycles_demo(void) {
  refgc_type_spec_t es = {.version = REFGC_TYPE_SPEC_VERSION, .name = "editor",
                          .basic_size = sizeof(editor_t), .traverse = editor_traverse,
                          .clear = editor_clear};
  refgc_type_spec_t ss = {.version = REFGC_TYPE_SPEC_VERSION, .name = "session",
                          .basic_size = sizeof(session_t), .traverse = session_traverse,
                          .clear = session_clear, .finalize = session_finalize};
  refgc_type_spec_t rs = {.version = REFGC_TYPE_SPEC_VERSION, .name = "recent",
                          .basic_size = sizeof(recent_t), .traverse = recent_traverse};
  editor_type = refgc_type_register(&es);
  session_type = refgc_type_register(&ss);
  recent_type = refgc_type_register(&rs);
  recent = (recent_t *)refgc_new(recent_type);
  refgc_root_add(&recent->ob, "recently closed");
  auto_tally_t tally = {0, 0, 0, 0, 0};
  refgc_gc_callback_add(tally_collection, &tally);

  /* 100,000 editors, each with a session pointing back */
  size_t n = 100000;
  refgc_object_t *watch = NULL;
  double t0 = now_s();
  for (size_t i = 0; i < n; i++) {
    editor_t *e = (editor_t *)refgc_new(editor_type);
    session_t *s = (session_t *)refgc_new(session_type);
    e->id = s->id = (int)i;
    e->session = s;       /* the editor owns the session's first reference */
    s->editor = e;        /* the back reference */
    refgc_incref(&e->ob); /* ... counted */
    if (i == 7) watch = refgc_weakref_new(&e->ob, NULL, NULL);
    refgc_decref(&e->ob); /* the program lets go: a cycle nobody else refers to */
  }
  double dt = now_s() - t0;
  printf("    %zu editor<->session cycles made and dropped in %.0f ms: reference counting alone "
         "frees none of them\n", n, dt * 1e3);
  printf("    automatic collections while that ran: %zu, freeing %zu objects, %zu resurrected; "
         "%.1f ms in all (%.1f%% of the time), worst pause %.2f ms\n",
         tally.collections, tally.freed, tally.resurrected, tally.seconds * 1e3,
         100.0 * tally.seconds / dt, tally.worst * 1e3);
  refgc_gc_result_t r;
  refgc_collect(2, &r);
  printf("    refgc_collect(2) for the rest: %zu unreachable, %zu freed\n", r.unreachable,
         r.collected);
  printf("    finalizers: %d ran, one per session; session 7's saved itself to the recent "
         "list (resurrection)\n", sessions_finalized);
  session_t *s7 = recent->n ? recent->items[0] : NULL;
  printf("    session 7 is %s, and so is its editor (%s): everything a resurrected object "
         "reaches survives\n",
         s7 ? "alive" : "gone", s7 && s7->editor && s7->editor->id == 7 ? "intact" : "lost");
  printf("    the weak reference to editor 7 reads %s: weak references to garbage are cleared "
         "before finalizers run (PEP 442)\n",
         refgc_weakref_alive(watch) ? "alive" : "NULL");
  /* the recent list (a declared root) keeps session 7 until the cleanup (step 9) */
  refgc_decref(watch);
  refgc_gc_callback_remove(tally_collection, &tally);
}

/* ---- 6. misuse, caught in debug mode (child process) ------------------------------------ */

static void print_report(const refgc_error_info_t *info, void *arg) {
  (void)arg;
  printf("    caught %s:\n      ", refgc_err_name(info->code));
  for (const char *c = info->message; *c; c++) {
    putchar(*c);
    if (*c == '\n') fputs("    ", stdout); /* indent the stack under the message */
  }
  putchar('\n');
  fflush(stdout);
}

/* Not static, and the demo links with -rdynamic, so that the allocation stacks name it. */
__attribute__((noinline)) char *make_name(const char *s);
__attribute__((noinline)) char *make_name(const char *s) {
  char *p = refgc_malloc(strlen(s) + 1);
  strcpy(p, s);
  return p;
}

static int debug_child(void) {
  refgc_set_error_handler(print_report, NULL);
  printf("    debug mode: %s\n", refgc_debug_mode() ? "on (REFGC_DEBUG=1)" : "off");
  char *a = make_name("a name of 24 bytes......");
  refgc_free(a);
  refgc_free(a); /* 1: double free */
  char *b = make_name("short");
  b[6] = '!'; /* 2: one byte past the end */
  refgc_free(b);
  char *c = make_name("another name");
  refgc_free(c + 8); /* 3: a pointer into the middle of a block */
  refgc_free(c);
  refgc_type_spec_t ps = {.version = REFGC_TYPE_SPEC_VERSION, .flags = REFGC_TYPE_LEAF,
                          .name = "paragraph", .basic_size = sizeof(para_t), .item_size = 1};
  para_type = refgc_type_register(&ps);
  para_t *p = para_new("released too early");
  refgc_decref(&p->ob);
  refgc_decref(&p->ob); /* 4: decref of a released object */
  printf("    %lu errors reported; the program went on\n", refgc_error_count());
  return refgc_error_count() == 4 ? 0 : 1;
}

/* ---- snapshots and what the tracer saw --------------------------------------------------- */

static char snapdir[4096];
static int snap_seq;
static int snap_failures;

/* Make <out>-snapshots/ and remove the NN-*.rgc files of an earlier run. */
static int snapshots_dir(const char *out) {
  snprintf(snapdir, sizeof snapdir, "%s-snapshots", out);
  if (mkdir(snapdir, 0777) != 0 && errno != EEXIST) {
    fprintf(stderr, "refgc-demo: cannot make %s: %s\n", snapdir, strerror(errno));
    return -1;
  }
  DIR *d = opendir(snapdir);
  if (!d) {
    fprintf(stderr, "refgc-demo: cannot read %s: %s\n", snapdir, strerror(errno));
    return -1;
  }
  struct dirent *e;
  char path[4096 + 256];
  while ((e = readdir(d)) != NULL)
    if (fnmatch("[0-9][0-9]-*.rgc", e->d_name, 0) == 0) {
      snprintf(path, sizeof path, "%s/%s", snapdir, e->d_name);
      unlink(path);
    }
  closedir(d);
  return 0;
}

/* End of a phase: a point of the memory series, then a snapshot saved as NN-name.rgc. Returns
 * the snapshot when `keep`, else frees it. */
static refgc_snapshot_t *phase_snapshot(const char *name, unsigned flags, int keep) {
  refgc_trace_sample_now();
  double t = now_s();
  refgc_snapshot_t *s = refgc_snapshot_take(flags);
  if (!s) {
    printf("    snapshot %s: %s\n", name, refgc_strerror(refgc_last_error()));
    snap_failures++;
    return NULL;
  }
  char path[4096 + 64];
  snprintf(path, sizeof path, "%s/%02d-%s.rgc", snapdir, ++snap_seq, name);
  if (refgc_snapshot_save(s, path) != 0) {
    printf("    snapshot %s: %s\n", path, refgc_snapshot_error());
    snap_failures++;
  } else {
    refgc_snapshot_info_t info = {.size = sizeof info};
    refgc_snapshot_info(s, &info);
    struct stat st;
    if (stat(path, &st) != 0) st.st_size = 0;
    printf("    snapshot %s: %llu traces, %.1f MiB traced (peak %.1f MiB), %llu objects; "
           "%.0f KiB, %.0f ms\n",
           path, (unsigned long long)info.trace_count, mib((size_t)info.traced_current),
           mib((size_t)info.traced_peak), (unsigned long long)info.objects,
           (double)st.st_size / 1024.0, (now_s() - t) * 1e3);
  }
  if (!keep) {
    refgc_snapshot_free(s);
    return NULL;
  }
  return s;
}

static const char *base_name(const char *p) {
  const char *s = strrchr(p, '/');
  return s ? s + 1 : p;
}

/* "function (file:line)" of frame `fi`. */
static void frame_text(refgc_snapshot_t *s, uint32_t fi, char *buf, size_t n) {
  const refgc_frame_info_t *f = refgc_snapshot_frame(s, fi);
  if (!f) {
    snprintf(buf, n, "?");
    return;
  }
  const char *fn = *f->function ? f->function : "?";
  if (*f->file)
    snprintf(buf, n, "%s (%s:%d)", fn, base_name(f->file), f->line);
  else
    snprintf(buf, n, "%s (%s+0x%llx)", fn, *f->module ? base_name(f->module) : "?",
             (unsigned long long)f->offset);
}

/* The allocation site of a graph node: up to `depth` frames, innermost first. */
static void node_site(refgc_snapshot_t *s, const refgc_node_t *nd, int depth, char *buf,
                      size_t n) {
  const uint32_t *frames;
  size_t nf = nd->traceback == UINT32_MAX ? 0 : refgc_snapshot_traceback(s, nd->traceback, &frames);
  if (!nf) {
    snprintf(buf, n, "(not traced)");
    return;
  }
  size_t len = 0;
  buf[0] = 0;
  for (size_t k = 0; k < nf && k < (size_t)depth && len + 4 < n; k++) {
    char one[512];
    frame_text(s, frames[k], one, sizeof one);
    len += (size_t)snprintf(buf + len, n - len, "%s%s", k ? " <- " : "", one);
  }
}

/* The innermost frame of a node's allocation. */
static const refgc_frame_info_t *node_frame(refgc_snapshot_t *s, const refgc_node_t *nd) {
  const uint32_t *frames;
  if (nd->traceback == UINT32_MAX || !refgc_snapshot_traceback(s, nd->traceback, &frames))
    return NULL;
  return refgc_snapshot_frame(s, frames[0]);
}

/* The demo's own field names for a reference found at `off` in an object of `type`. */
static void field_text(const char *type, const refgc_edge_t *e, char *buf, size_t n) {
  static const struct {
    const char *type, *field;
    size_t at, item;
  } fields[] = {
      {"index", "docs", offsetof(index_t, docs), sizeof(docobj_t *)},
      {"observers", "subs", offsetof(observers_t, subs), sizeof(subscription_t *)},
      {"subscription", "doc", offsetof(subscription_t, doc), 0},
      {"document", "paras", offsetof(docobj_t, paras), sizeof(para_t *)},
      {"recent", "items", offsetof(recent_t, items), sizeof(session_t *)},
      {"session", "editor", offsetof(session_t, editor), 0},
      {"editor", "session", offsetof(editor_t, session), 0},
  };
  if (!e || e->offset < 0) {
    snprintf(buf, n, "reference #%u", e ? e->index : 0u);
    return;
  }
  size_t off = (size_t)e->offset;
  for (size_t i = 0; i < sizeof fields / sizeof *fields; i++) {
    if (strcmp(type, fields[i].type) != 0 || off < fields[i].at) continue;
    if (!fields[i].item && off == fields[i].at) {
      snprintf(buf, n, ".%s (+%zu)", fields[i].field, off);
      return;
    }
    if (fields[i].item && (off - fields[i].at) % fields[i].item == 0) {
      snprintf(buf, n, ".%s[%zu] (+%zu)", fields[i].field, (off - fields[i].at) / fields[i].item,
               off);
      return;
    }
  }
  snprintf(buf, n, "+%zu", off);
}

/* The edge from node `from` to node `to`. */
static const refgc_edge_t *edge_between(const refgc_node_t *nodes, size_t nn,
                                        const refgc_edge_t *edges, size_t ne, uint32_t from,
                                        uint32_t to) {
  uint32_t end = from + 1 < nn ? nodes[from + 1].first_edge : (uint32_t)ne;
  for (uint32_t e = nodes[from].first_edge; e < end; e++)
    if (edges[e].to == to) return &edges[e];
  return NULL;
}

/* One line: root "name" .field (+off) -> type .field (+off) -> ... -> suspect type. */
static void print_chain(refgc_snapshot_t *s, const uint32_t *chain, uint32_t len) {
  size_t nn, ne;
  const refgc_edge_t *edges;
  const refgc_node_t *nodes = refgc_snapshot_graph(s, &nn, &edges, &ne);
  printf("       chain from root: ");
  for (uint32_t k = 0; k < len; k++) {
    const refgc_node_t *h = &nodes[chain[k]];
    const char *tn = refgc_snapshot_type_name(s, h->type);
    printf("%s%s", k ? " -> " : "", tn);
    if (k == 0) {
      if (h->flags & REFGC_NODE_DECLARED)
        printf(" \"%s\"", refgc_snapshot_string(s, h->root_name));
      else
        printf(" (held from outside the object graph%s)",
               len == 1 ? ", by no declared root" : "");
    }
    if (k + 1 < len) {
      char f[128];
      field_text(tn, edge_between(nodes, nn, edges, ne, chain[k], chain[k + 1]), f, sizeof f);
      printf(" %s", f);
    }
  }
  printf("\n");
}

static void size_text(uint64_t b, char *buf, size_t n) {
  if (b >= 1u << 20)
    snprintf(buf, n, "%.1f MiB", (double)b / (1024.0 * 1024.0));
  else if (b >= 10u << 10)
    snprintf(buf, n, "%.1f KiB", (double)b / 1024.0);
  else
    snprintf(buf, n, "%llu B", (unsigned long long)b);
}

/* The function of the first traceback whose innermost frame is at "file:line" `key`. */
static const char *line_function(refgc_snapshot_t *s, const char *key) {
  size_t ntb = refgc_snapshot_tracebacks(s);
  for (size_t i = 0; i < ntb; i++) {
    const uint32_t *frames;
    if (!refgc_snapshot_traceback(s, (uint32_t)i, &frames)) continue;
    const refgc_frame_info_t *f = refgc_snapshot_frame(s, frames[0]);
    if (!f || !*f->file) continue;
    char k[4200];
    snprintf(k, sizeof k, "%s:%d", f->file, f->line);
    if (!strcmp(k, key)) return *f->function ? f->function : "?";
  }
  return "";
}

/* Step 8. Returns the number of failed checks (the planted leak and the resurrection must be
 * found, and nothing else). */
static int tracer_report(refgc_snapshot_t *s, int traced) {
  int failures = 0;
  refgc_snapshot_info_t info = {.size = sizeof info};
  refgc_snapshot_info(s, &info);
  char b1[32], b2[32], b3[32];

  printf("\n  collector statistics (refgc_gc_print_stats)\n\n");
  refgc_gc_print_stats(stdout);

  if (traced) {
    size_text(info.traced_current, b1, sizeof b1);
    size_text(info.traced_peak, b2, sizeof b2);
    size_text(info.tracer_memory, b3, sizeof b3);
    printf("\n  tracer: %d frames, symbols by %s; %llu live traced blocks, %s traced now, peak "
           "%s; the tracer's own memory %s (outside the refgc heap)\n",
           info.frames, refgc_symbolizer(), (unsigned long long)info.trace_count, b1, b2, b3);
    size_t n = 0;
    refgc_stat_t *st = refgc_snapshot_statistics(s, REFGC_GROUP_LINE, 0, &n);
    printf("\n  top %zu allocation sites by line, live now (refgc_snapshot_statistics, "
           "REFGC_GROUP_LINE)\n", n < 10 ? n : 10);
    printf("    %10s %9s %10s  %s\n", "size", "blocks", "average", "site");
    for (size_t i = 0; i < n && i < 10; i++) {
      size_text(st[i].size, b1, sizeof b1);
      size_text(st[i].count ? st[i].size / st[i].count : 0, b2, sizeof b2);
      const char *fn = line_function(s, st[i].key);
      printf("    %10s %9llu %10s  %s%s%s\n", b1, (unsigned long long)st[i].count, b2,
             base_name(st[i].key), *fn ? " in " : "", fn);
    }
    refgc_stats_free(st);
  }

  size_t nt = 0;
  const refgc_type_count_t *tc = refgc_snapshot_type_counts(s, &nt);
  printf("\n  live objects by type (refgc_snapshot_type_counts)\n");
  for (size_t i = 0; i < nt && i < 10; i++) {
    size_text(tc[i].bytes, b1, sizeof b1);
    printf("    %-14s %8llu objects %10s\n", tc[i].type, (unsigned long long)tc[i].count, b1);
  }

  size_t ns = 0;
  const refgc_suspect_t *sus = refgc_snapshot_suspects(s, &ns);
  size_t nn, ne;
  const refgc_edge_t *edges;
  const refgc_node_t *nodes = refgc_snapshot_graph(s, &nn, &edges, &ne);
  printf("\n  leak suspects (refgc_snapshot_suspects): %zu, among %zu objects and %zu "
         "references\n", ns, nn, ne);
  int lost = 0, resurrected = 0;
  const refgc_suspect_t *planted = NULL, *saved = NULL;
  for (size_t i = 0; i < ns; i++) {
    const refgc_suspect_t *x = &sus[i];
    const refgc_node_t *nd = &nodes[x->node];
    const char *tn = refgc_snapshot_type_name(s, nd->type);
    size_text(x->retained, b1, sizeof b1);
    if (x->cls == REFGC_LEAK_LOST_REFERENCE) {
      lost++;
      printf("    %zu. LOST REFERENCE: a %s with %llu reference%s that nothing accounts for; it "
             "keeps %llu objects (%s) alive\n",
             i + 1, tn, (unsigned long long)x->unexplained, x->unexplained == 1 ? "" : "s",
             (unsigned long long)x->retained_count, b1);
      if (nd->address == (uint64_t)(uintptr_t)lost_sub) planted = x;
    } else {
      resurrected++;
      printf("    %zu. RESURRECTED: a %s finalized by the collector as garbage and alive "
             "again; it keeps %llu objects (%s) alive\n",
             i + 1, tn, (unsigned long long)x->retained_count, b1);
      if (x->cls == REFGC_LEAK_RESURRECTED && !strcmp(tn, "session")) saved = x;
    }
    char site[2048];
    node_site(s, nd, 3, site, sizeof site);
    printf("       allocated at %s\n", site);
    print_chain(s, x->chain, x->chain_len);
  }

  printf("\n");
  if (planted) leak_found = 1; /* lost_sub and leaked_doc are alive: safe to use below */
  if (planted && lost == 1) {
    const refgc_node_t *nd = &nodes[planted->node];
    const refgc_frame_info_t *f = node_frame(s, nd);
    char where[1024];
    if (f && *f->file)
      snprintf(where, sizeof where, "%s (%s:%d)", *f->function ? f->function : "?",
               base_name(f->file), f->line);
    else if (f)
      snprintf(where, sizeof where, "%s (%s)", *f->function ? f->function : "?",
               *f->module ? base_name(f->module) : "?");
    else
      snprintf(where, sizeof where, "an unknown site (tracing was off)");
    size_text(planted->retained, b1, sizeof b1);
    printf("  planted leak found: subscription allocated at %s, keeping \"%s\" and its %zu "
           "paragraphs alive (%llu objects, %s)\n",
           where, leaked_doc->title, leaked_doc->n, (unsigned long long)planted->retained_count,
           b1);
    if (traced && (!f || strcmp(f->function, "observers_subscribe") != 0)) {
      printf("  CHECK FAILED: the leak's allocation site should be observers_subscribe\n");
      failures++;
    }
    if (planted->retained_count != 2 + LEAK_PARAS) {
      printf("  CHECK FAILED: the lost subscription should keep %d objects alive\n",
             2 + LEAK_PARAS);
      failures++;
    }
  } else {
    printf("  CHECK FAILED: planted leak not found (%d lost-reference suspect(s))\n", lost);
    failures++;
  }
  if (saved && resurrected == 1 && saved->chain_len >= 2 &&
      (nodes[saved->chain[0]].flags & REFGC_NODE_DECLARED)) {
    printf("  resurrection found: session 7, finalized and saved by its finalizer to \"%s\"\n",
           refgc_snapshot_string(s, nodes[saved->chain[0]].root_name));
  } else {
    printf("  CHECK FAILED: the resurrected session was not found as expected (%d "
           "resurrected suspect(s))\n", resurrected);
    failures++;
  }

  if (!leak_found) return failures;
  printf("\n  why is \"%s\" still alive? (refgc_why_alive_print, on the live heap)\n",
         leaked_doc->title);
  size_t len = refgc_why_alive_print(&leaked_doc->ob, stdout);
  if (len < 2) {
    printf("  CHECK FAILED: no chain to the leaked document\n");
    failures++;
  }
  return failures;
}

/* ---- 9. cleanup ------------------------------------------------------------------------- */

/* Fix the leak, let go of the roots: every object is freed. Returns the failed checks. */
static int cleanup(void) {
  int failures = 0;
  if (leak_found) {
    refgc_object_t *w = refgc_weakref_new(&leaked_doc->ob, NULL, NULL);
    int archived_before = archived_count;
    refgc_decref(&lost_sub->ob); /* the missing decref of observers_unsubscribe */
    printf("    the lost subscription released: \"Release notes\" is %s, archived %s\n",
           refgc_weakref_alive(w) ? "STILL ALIVE" : "freed with its paragraphs",
           archived_count > archived_before ? "once" : "never");
    if (refgc_weakref_alive(w)) failures++;
    refgc_decref(w);
  }
  leaked_doc = NULL;
  lost_sub = NULL;

  int before = sessions_finalized;
  refgc_gc_result_t r;
  refgc_root_remove(&recent->ob);
  refgc_decref(&recent->ob);
  refgc_collect(2, &r);
  printf("    recent list dropped: %zu more freed (session 7 and its editor), finalizers run "
         "again: %d\n", r.collected, sessions_finalized - before);
  if (sessions_finalized != before) failures++;

  refgc_root_remove(&observers->ob);
  refgc_root_remove(&store->ob);
  for (size_t i = 0; i < observers->n; i++) refgc_decref(&observers->subs[i]->ob);
  observers->n = 0;
  refgc_decref(&observers->ob);
  refgc_decref(&store->ob);
  size_t nt = 0, live = 0;
  refgc_type_count_t *tc = refgc_objects_by_type(&nt);
  for (size_t i = 0; i < nt; i++) live += tc[i].count;
  refgc_type_counts_free(tc);
  printf("    index and registry released: %zu live objects left\n", live);
  if (live && leak_found) failures++;
  return failures;
}

/* ---- main ------------------------------------------------------------------------------- */

int main(int argc, char **argv) {
  const char *out = "refgc-report";
  long scale = 1;
  int trace = 1;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--debug-child")) return debug_child();
    if (!strcmp(argv[i], "--out") && i + 1 < argc)
      out = argv[++i];
    else if (!strcmp(argv[i], "--scale") && i + 1 < argc)
      scale = strtol(argv[++i], NULL, 10);
    else if (!strcmp(argv[i], "--no-trace"))
      trace = 0;
    else {
      fprintf(stderr, "usage: %s [--out PREFIX] [--scale N] [--no-trace]\n", argv[0]);
      return 2;
    }
  }
  if (scale < 1) scale = 1;
  /* first thing: trace every allocation of the run, 16 frames deep */
  if (trace) {
    int rc = refgc_trace_start(16);
    if (rc != 0 && rc != REFGC_EBUSY) { /* EBUSY: REFGC_TRACE started it already */
      fprintf(stderr, "refgc-demo: refgc_trace_start: %s\n", refgc_strerror(rc));
      return 2;
    }
  }
  int traced = refgc_trace_is_tracing();
  if (snapshots_dir(out) != 0) return 2;
  char path[4096];
  snprintf(path, sizeof path, "%s.json", out);
  json = fopen(path, "w");
  if (!json) {
    fprintf(stderr, "refgc-demo: cannot write %s: %s\n", path, strerror(errno));
    return 2;
  }
  fprintf(json, "{\"refgc\":\"%s\",\"steps\":[", refgc_version_string());

  printf("refgc %s demonstration: an in-memory document store\n", refgc_version_string());
  if (traced)
    printf("tracing every allocation (refgc_trace_start, %d frames; symbols by %s); a snapshot "
           "ends each step, in %s/\n\n",
           refgc_trace_frames(), refgc_symbolizer(), snapdir);
  else
    printf("tracing off (--no-trace): snapshots hold no allocation sites, in %s/\n\n", snapdir);
  print_line("start");

  printf("\n1. load %ld documents (record + title + body of 16 B..64 KiB) and 8 attachments\n",
         200000 * scale);
  double t = now_s();
  load((size_t)(200000 * scale));
  void *attach[8];
  for (int i = 0; i < 8; i++) {
    attach[i] = refgc_malloc((size_t)(1 + i) << 20);
    memset(attach[i], i, (size_t)(1 + i) << 20);
  }
  double dt = now_s() - t;
  printf("    %.0f ms\n", dt * 1e3);
  print_line("after load");
  json_step("load", dt);
  phase_snapshot("load", 0, 0);

  printf("\n2. traffic: 2 writer threads, 1 reader thread frees every message (cross-thread)\n");
  messages_per_writer = (size_t)(1000000 * scale);
  size_t applied = 0;
  pthread_t w1, w2, r;
  t = now_s();
  pthread_create(&r, NULL, reader, &applied);
  pthread_create(&w1, NULL, writer, (void *)(uintptr_t)1);
  pthread_create(&w2, NULL, writer, (void *)(uintptr_t)2);
  pthread_join(w1, NULL);
  pthread_join(w2, NULL);
  pthread_join(r, NULL);
  dt = now_s() - t;
  printf("    %zu messages in %.0f ms (%.0f ns per message, queue included)\n", applied, dt * 1e3,
         dt * 1e9 / (double)applied);
  print_line("after traffic");
  json_step("traffic", dt);
  phase_snapshot("traffic", 0, 0);

  printf("\n3. eviction: keep 1 document in 1000, drop the attachments, give memory back\n");
  t = now_s();
  for (size_t i = 0; i < ndocs; i++)
    if (i % 1000) drop_doc(i);
  for (int i = 0; i < 8; i++) refgc_free(attach[i]);
  print_line("after eviction");
  refgc_heap_collect();
  dt = now_s() - t;
  print_line("after refgc_heap_collect()");
  json_step("eviction", dt);
  size_t kept = 0;
  for (size_t i = 0; i < ndocs; i++) {
    if (!docs[i]) continue;
    kept++;
    if (docs[i]->body[docs[i]->body_len - 1] != (uint8_t)(i & 0xFF)) {
      fprintf(stderr, "refgc-demo: document %zu was corrupted\n", i);
      return 1;
    }
  }
  printf("    %zu surviving documents checked intact\n", kept);
  if (refgc_heap_check() != 0) {
    fprintf(stderr, "refgc-demo: heap check failed\n");
    return 1;
  }
  printf("    refgc_heap_check(): consistent\n");
  phase_snapshot("eviction", 0, 0);

  printf("\n4. objects: an index, shared paragraphs, a weak cache, an observer, a finalizer, "
         "subscriptions\n");
  objects_demo();
  phase_snapshot("objects", 0, 0);

  printf("\n5. cycles: editors and sessions, a resurrecting finalizer, the cycle collector\n");
  cycles_demo();
  phase_snapshot("cycles", 0, 0);

  printf("\n6. misuse in debug mode (a child process with REFGC_DEBUG=1, not traced)\n");
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    setenv("REFGC_DEBUG", "1", 1);
    unsetenv("REFGC_TRACE");
    unsetenv("REFGC_TRACE_FILE");
    execl("/proc/self/exe", argv[0], "--debug-child", "--no-trace", (char *)NULL);
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  int child_ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  phase_snapshot("misuse", 0, 0);

  printf("\n7. the heap report (refgc_heap_stats_print)\n\n");
  refgc_heap_stats_print(stdout);
  fprintf(json, "],\"heap\":");
  refgc_heap_stats_print_json(json);
  fprintf(json, "}\n");
  fclose(json);
  snprintf(path, sizeof path, "%s.txt", out);
  FILE *txt = fopen(path, "w");
  if (!txt) {
    fprintf(stderr, "refgc-demo: cannot write %s: %s\n", path, strerror(errno));
    return 2;
  }
  refgc_heap_stats_print(txt);
  fclose(txt);

  printf("\n8. what the tracer saw: a snapshot with the object graph and the leak analysis\n");
  refgc_snapshot_t *final = phase_snapshot("final", REFGC_SNAPSHOT_GRAPH, 1);
  int failures = final ? tracer_report(final, traced) : 1;
  refgc_snapshot_free(final);

  printf("\n9. cleanup: release the lost reference, let go of the roots\n");
  failures += cleanup();
  for (size_t i = 0; i < ndocs; i++)
    if (docs[i]) drop_doc(i);
  refgc_free(docs);
  if (traced) refgc_trace_stop();

  printf("\nwrote %s.txt (heap report), %s.json (steps and statistics) and %d snapshots in "
         "%s/\n", out, out, snap_seq - snap_failures, snapdir);
  if (!child_ok) printf("CHECK FAILED: the debug-mode child\n");
  if (snap_failures) printf("CHECK FAILED: %d snapshot(s) not written\n", snap_failures);
  return child_ok && !failures && !snap_failures ? 0 : 1;
}
