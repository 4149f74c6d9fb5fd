/* refgc-demo — the demonstration behind `make run`.
 *
 * A small in-memory document store exercises the heap the way a real program would, then shows
 * what the heap did:
 *   1. load: 300,000 documents, each a record, a title string and a body of 16 B – 64 KiB,
 *      plus a few large attachments (> 128 KiB, straight from the OS);
 *   2. traffic: two writer threads create update messages that a reader thread applies and
 *      frees, so every message is freed by a thread other than the one that allocated it;
 *   3. eviction: the store drops all but 1 document in 1000, and `refgc_heap_collect` gives the
 *      memory back to the OS, down to single 4 KiB pages inside partly used pages;
 *   4. objects: the store's documents become reference-counted objects: paragraphs shared
 *      between documents, a cache of documents by title that holds them only weakly, an
 *      observer told through a weak reference callback when a document dies, a finalizer that
 *      writes a document back to its archive once, and a 1,000,000-paragraph document
 *      released without recursion;
 *   5. cycles: editors and their sessions refer to each other; dropping them leaves cycles
 *      that only the cycle collector frees; a session's finalizer saves it once to a
 *      "recently closed" list (resurrection), and the collector keeps it and all it reaches;
 *   6. misuse: a child process runs with REFGC_DEBUG=1 and makes classic mistakes (double
 *      free, write past the end, free of a pointer into a block, decref of a released
 *      object); each is caught and explained.
 * It prints each step, the heap report, and writes <out>.txt (the report) and <out>.json.
 *
 * Usage: refgc-demo [--out PREFIX] [--scale N]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "refgc.h"

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

static void load(size_t n) {
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

static const refgc_type_t *para_type, *doc_type;
static int archived_count, observer_calls;

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

static void doc_observer(refgc_object_t *weakref, void *arg) {
  observer_calls++;
  printf("    observer: \"%s\" is gone (weak reference now reads %s)\n", (const char *)arg,
         refgc_weakref_alive(weakref) ? "alive" : "NULL");
}

static para_t *para_new(const char *text) {
  size_t len = strlen(text);
  para_t *p = (para_t *)refgc_new_var(para_type, len + 1);
  p->len = len;
  memcpy(p->text, text, len + 1);
  return p;
}

static docobj_t *docobj_new(const char *title, size_t n) {
  docobj_t *d = (docobj_t *)refgc_new_var(doc_type, n);
  d->title = title;
  d->n = n;
  return d;
}

static void objects_demo(void) {
  refgc_type_spec_t ps = {.version = REFGC_TYPE_SPEC_VERSION, .flags = REFGC_TYPE_LEAF,
                          .name = "paragraph", .basic_size = sizeof(para_t), .item_size = 1,
                          .freelist_max = 64};
  refgc_type_spec_t ds = {.version = REFGC_TYPE_SPEC_VERSION, .name = "document",
                          .basic_size = sizeof(docobj_t), .item_size = sizeof(para_t *),
                          .traverse = doc_traverse, .finalize = doc_finalize};
  para_type = refgc_type_register(&ps);
  doc_type = refgc_type_register(&ds);

  /* two documents sharing a paragraph */
  para_t *shared = para_new("Memory is managed.");
  docobj_t *a = docobj_new("Guide", 2), *b = docobj_new("Notes", 2);
  a->paras[0] = shared;
  refgc_incref(&shared->ob);
  b->paras[0] = shared;
  a->paras[1] = para_new("Objects are reference counted.");
  b->paras[1] = para_new("Weak references do not keep objects alive.");
  printf("    two documents share a paragraph: its count is %u\n", refgc_refcount(&shared->ob));

  /* a cache that holds documents weakly, and an observer of "Guide" */
  refgc_weakmap_t *cache = refgc_weakmap_new();
  refgc_weakmap_set(cache, "Guide", 5, &a->ob);
  refgc_weakmap_set(cache, "Notes", 5, &b->ob);
  refgc_object_t *watch = refgc_weakref_new(&a->ob, doc_observer, (void *)"Guide");
  printf("    cache holds %zu documents, weakly\n", refgc_weakmap_count(cache));

  refgc_decref(&a->ob); /* the last strong reference to "Guide" */
  printf("    after dropping \"Guide\": archived %d time(s), shared paragraph count %u, "
         "cache holds %zu\n",
         archived_count, refgc_refcount(&shared->ob), refgc_weakmap_count(cache));
  refgc_object_t *hit = refgc_weakmap_get(cache, "Notes", 5);
  printf("    cache lookup \"Notes\": %s; \"Guide\": %s\n", hit ? "found" : "missing",
         refgc_weakmap_get(cache, "Guide", 5) ? "found" : "missing");
  refgc_xdecref(hit);
  refgc_decref(&b->ob);
  refgc_decref(watch);
  refgc_weakmap_free(cache);

  /* a document of a million paragraphs: released by one decref, without recursion */
  size_t big = 1000000;
  docobj_t *d = docobj_new("Encyclopedia", big);
  for (size_t i = 0; i < big; i++) d->paras[i] = para_new("entry");
  double t = now_s();
  refgc_decref(&d->ob);
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

static void cycles_demo(void) {
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
  /* drop the recent list: session 7's cycle becomes garbage again; no second finalizer */
  int before = sessions_finalized;
  refgc_decref(&recent->ob);
  refgc_collect(2, &r);
  printf("    recent list dropped: %zu more freed, finalizers run again: %d\n", r.collected,
         sessions_finalized - before);
  refgc_decref(watch);
  refgc_gc_callback_remove(tally_collection, &tally);
  printf("\n");
  refgc_gc_print_stats(stdout);
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

/* ---- main ------------------------------------------------------------------------------- */

int main(int argc, char **argv) {
  const char *out = "refgc-report";
  long scale = 1;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--debug-child")) return debug_child();
    if (!strcmp(argv[i], "--out") && i + 1 < argc)
      out = argv[++i];
    else if (!strcmp(argv[i], "--scale") && i + 1 < argc)
      scale = strtol(argv[++i], NULL, 10);
    else {
      fprintf(stderr, "usage: %s [--out PREFIX] [--scale N]\n", argv[0]);
      return 2;
    }
  }
  if (scale < 1) scale = 1;
  char path[4096];
  snprintf(path, sizeof path, "%s.json", out);
  json = fopen(path, "w");
  if (!json) {
    fprintf(stderr, "refgc-demo: cannot write %s: %s\n", path, strerror(errno));
    return 2;
  }
  fprintf(json, "{\"refgc\":\"%s\",\"steps\":[", refgc_version_string());

  printf("refgc %s demonstration: an in-memory document store\n\n", refgc_version_string());
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

  printf("\n4. objects: shared paragraphs, a weak cache, an observer, a finalizer\n");
  objects_demo();

  printf("\n5. cycles: editors and sessions, a resurrecting finalizer, the cycle collector\n");
  cycles_demo();

  printf("\n6. misuse in debug mode (a child process with REFGC_DEBUG=1)\n");
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    setenv("REFGC_DEBUG", "1", 1);
    execl("/proc/self/exe", argv[0], "--debug-child", (char *)NULL);
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  int child_ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;

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
  for (size_t i = 0; i < ndocs; i++)
    if (docs[i]) drop_doc(i);
  refgc_free(docs);
  printf("\nwrote %s.txt (heap report) and %s.json (steps and statistics)\n", out, out);
  return child_ok ? 0 : 1;
}
