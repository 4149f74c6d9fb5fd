/* refgc — snapshots: taking them, statistics, comparisons, filters and accessors
 * (refgc/trace.h). The file format is snapshot_io.c's; the object graph and leak analysis are
 * introspect.c's.
 *
 * Taking a snapshot copies, under the trace lock, every valid trace word (trace.c) into an
 * array of (requested size, traceback, type), renumbering the tracer's global traceback ids
 * densely and keeping each distinct return address once as a frame. Types are read from the
 * object headers of traced object blocks while the walk holds the lock. Symbols are resolved
 * later, once per frame, when something needs them (statistics by file, line or function,
 * saving, refgc_snapshot_frame).
 *
 * Statistics group traces by a key string (file, "file:line", function, type name, or the
 * whole traceback spelled out frame by frame) in a hash table from key to row; keys are
 * interned in the snapshot's own string table, so rows can point at them for as long as the
 * snapshot lives. Comparing two snapshots groups both by the same canonical keys, so snapshots
 * of different processes compare by source location, not address.
 */
#include <errno.h>
#include <fnmatch.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "snapshot.h"

/* ---------------------------------------------------------------------------------------------
 * Errors
 * ------------------------------------------------------------------------------------------ */

static _Thread_local char snap_error[512];

int refgc__snapshot_fail(int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(snap_error, sizeof snap_error, fmt, ap);
  va_end(ap);
  refgc__set_error(code);
  return code;
}

const char *refgc_snapshot_error(void) { return snap_error; }

/* ---------------------------------------------------------------------------------------------
 * A string-keyed hash map (keys owned elsewhere), used for interning and grouping
 * ------------------------------------------------------------------------------------------ */

typedef struct smap_s {
  const char **keys;
  uint32_t *vals;
  size_t cap, n;
} smap_t;

static uint64_t str_hash(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
  return h;
}

static bool smap_grow(smap_t *m) {
  size_t cap = m->cap ? m->cap * 2 : 256;
  const char **keys = calloc(cap, sizeof *keys);
  uint32_t *vals = malloc(cap * sizeof *vals);
  if (!keys || !vals) {
    free(keys);
    free(vals);
    return false;
  }
  for (size_t i = 0; i < m->cap; i++) {
    if (!m->keys[i]) continue;
    size_t j = str_hash(m->keys[i]) & (cap - 1);
    while (keys[j]) j = (j + 1) & (cap - 1);
    keys[j] = m->keys[i];
    vals[j] = m->vals[i];
  }
  free(m->keys);
  free(m->vals);
  m->keys = keys;
  m->vals = vals;
  m->cap = cap;
  return true;
}

/* Find `key`; *slot is where it is or would go. */
static bool smap_find(smap_t *m, const char *key, size_t *slot) {
  size_t j = str_hash(key) & (m->cap - 1);
  while (m->keys[j]) {
    if (strcmp(m->keys[j], key) == 0) {
      *slot = j;
      return true;
    }
    j = (j + 1) & (m->cap - 1);
  }
  *slot = j;
  return false;
}

static uint32_t *smap_get(smap_t *m, const char *key) {
  if (!m->cap) return NULL;
  size_t j;
  return smap_find(m, key, &j) ? &m->vals[j] : NULL;
}

static bool smap_put(smap_t *m, const char *key, uint32_t val) {
  if ((m->n + 1) * 2 > m->cap && !smap_grow(m)) return false;
  size_t j;
  if (!smap_find(m, key, &j)) m->n++;
  m->keys[j] = key;
  m->vals[j] = val;
  return true;
}

static void smap_free(smap_t *m) {
  free(m->keys);
  free(m->vals);
  memset(m, 0, sizeof *m);
}

/* ---------------------------------------------------------------------------------------------
 * Building
 * ------------------------------------------------------------------------------------------ */

refgc_snapshot_t *refgc__snapshot_new(void) {
  refgc_snapshot_t *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->version = 1;
  if (refgc__snapshot_intern(s, "") != 0) {
    refgc_snapshot_free(s);
    return NULL;
  }
  return s;
}

uint32_t refgc__snapshot_intern(refgc_snapshot_t *s, const char *str) {
  if (!str) str = "";
  smap_t *m = s->string_index;
  if (!m) {
    m = calloc(1, sizeof *m);
    if (!m) return UINT32_MAX;
    s->string_index = m;
    for (size_t i = 0; i < s->nstrings; i++)
      if (!smap_put(m, s->strings[i], (uint32_t)i)) return UINT32_MAX;
  }
  uint32_t *v = smap_get(m, str);
  if (v) return *v;
  if (s->nstrings == s->strings_cap) {
    size_t cap = s->strings_cap ? s->strings_cap * 2 : 64;
    char **n = realloc(s->strings, cap * sizeof *n);
    if (!n) return UINT32_MAX;
    s->strings = n;
    s->strings_cap = cap;
  }
  char *copy = strdup(str);
  if (!copy) return UINT32_MAX;
  uint32_t idx = (uint32_t)s->nstrings;
  if (!smap_put(m, copy, idx)) {
    free(copy);
    return UINT32_MAX;
  }
  s->strings[s->nstrings++] = copy;
  return idx;
}

static void free_derived(refgc_snapshot_t *s) {
  free(s->pub_traces);
  free(s->pub_frames);
  free(s->pub_type_counts);
  free(s->pub_suspects);
  s->pub_traces = NULL;
  s->pub_frames = NULL;
  s->pub_type_counts = NULL;
  s->pub_suspects = NULL;
}

void refgc_snapshot_free(refgc_snapshot_t *s) {
  if (!s) return;
  for (size_t i = 0; i < s->nstrings; i++) free(s->strings[i]);
  free(s->strings);
  if (s->string_index) {
    smap_free(s->string_index);
    free(s->string_index);
  }
  free(s->frames);
  free(s->tb_start);
  free(s->tb_len);
  free(s->tb_frames);
  free(s->type_name);
  free(s->traces);
  free(s->type_counts);
  free(s->series);
  free(s->nodes);
  free(s->edges);
  free(s->suspects);
  free(s->chains);
  free_derived(s);
  free(s);
}

/* Growable arrays while taking */
#define VEC_PUSH(arr, n, cap, val)                                         \
  do {                                                                     \
    if ((n) == (cap)) {                                                    \
      size_t c_ = (cap) ? (cap) * 2 : 256;                                 \
      void *p_ = realloc((arr), c_ * sizeof *(arr));                       \
      if (!p_) goto oom;                                                   \
      (arr) = p_;                                                          \
      (cap) = c_;                                                          \
    }                                                                      \
    (arr)[(n)++] = (val);                                                  \
  } while (0)

/* Pseudo type ids: raw blocks, and blocks of object pages that are not live objects. */
#define PSEUDO_RAW ((uint32_t)REFGC_MAX_TYPES)
#define PSEUDO_FREELIST ((uint32_t)REFGC_MAX_TYPES + 1)
#define PSEUDO_RELEASED ((uint32_t)REFGC_MAX_TYPES + 2)

typedef struct take_s {
  refgc_snapshot_t *s;
  uint32_t *tb_map;      /* global traceback id -> snapshot index (UINT32_MAX: none yet) */
  size_t tb_map_n;
  uint32_t *type_map;    /* refgc type id -> snapshot type index, grown on demand */
  size_t type_map_n;
  size_t traces_cap, types_cap, frames_cap, tbf_cap, tbs_cap;
  void *addr_map;        /* frame address -> frame index (an open-addressing table) */
  uint64_t *addr_keys;
  uint32_t *addr_vals;
  size_t addr_cap, addr_n;
  uint32_t pseudo[3];    /* snapshot type index of the pseudo types, UINT32_MAX: none */
  bool failed;
} take_t;

static uint32_t snap_type(take_t *t, uint32_t type_id, const char *name) {
  refgc_snapshot_t *s = t->s;
  uint32_t *slot;
  if (type_id >= REFGC_MAX_TYPES) { /* pseudo types: raw blocks, free lists, quarantine */
    slot = &t->pseudo[type_id - REFGC_MAX_TYPES];
    if (*slot != UINT32_MAX) return *slot;
    goto add;
  }
  if (type_id >= t->type_map_n) {
    size_t n = t->type_map_n ? t->type_map_n : 64;
    while (n <= type_id) n *= 2;
    uint32_t *m = realloc(t->type_map, n * sizeof *m);
    if (!m) return (t->failed = true), 0;
    for (size_t i = t->type_map_n; i < n; i++) m[i] = UINT32_MAX;
    t->type_map = m;
    t->type_map_n = n;
  }
  slot = &t->type_map[type_id];
  if (*slot != UINT32_MAX) return *slot;
add:;
  uint32_t str = refgc__snapshot_intern(s, name);
  if (str == UINT32_MAX) return (t->failed = true), 0;
  if (s->ntypes == t->types_cap) {
    size_t c = t->types_cap ? t->types_cap * 2 : 64;
    uint32_t *n = realloc(s->type_name, c * sizeof *n);
    if (!n) return (t->failed = true), 0;
    s->type_name = n;
    t->types_cap = c;
  }
  s->type_name[s->ntypes] = str;
  return *slot = (uint32_t)s->ntypes++;
}


uint32_t refgc__snapshot_object_type(void *take, const refgc_object_t *o) {
  take_t *t = take;
  uint32_t bits = o->bits;
  if ((bits & (REFGC_OB_LIVE | REFGC_OB_DEAD)) == REFGC_OB_LIVE) {
    refgc_type_t *type = refgc__type_by_id(bits & REFGC_OB_TYPE_MASK);
    if (type) return snap_type(t, type->id, type->spec.name);
  }
  if (bits & REFGC_OB_DEAD) return snap_type(t, PSEUDO_RELEASED, "(released, in quarantine)");
  return snap_type(t, PSEUDO_FREELIST, "(on a free list)");
}

static uint32_t frame_index(take_t *t, void *addr) {
  refgc_snapshot_t *s = t->s;
  uint64_t a = (uint64_t)(uintptr_t)addr;
  if ((t->addr_n + 1) * 2 > t->addr_cap) {
    size_t cap = t->addr_cap ? t->addr_cap * 2 : 1024;
    uint64_t *k = calloc(cap, sizeof *k);
    uint32_t *v = malloc(cap * sizeof *v);
    if (!k || !v) {
      free(k);
      free(v);
      t->failed = true;
      return 0;
    }
    for (size_t i = 0; i < t->addr_cap; i++) {
      if (!t->addr_keys[i]) continue;
      size_t j = (t->addr_keys[i] * 0x9E3779B97F4A7C15ull >> 20) & (cap - 1);
      while (k[j]) j = (j + 1) & (cap - 1);
      k[j] = t->addr_keys[i];
      v[j] = t->addr_vals[i];
    }
    free(t->addr_keys);
    free(t->addr_vals);
    t->addr_keys = k;
    t->addr_vals = v;
    t->addr_cap = cap;
  }
  uint64_t key = a ? a : 1;
  size_t j = (key * 0x9E3779B97F4A7C15ull >> 20) & (t->addr_cap - 1);
  while (t->addr_keys[j]) {
    if (t->addr_keys[j] == key) return t->addr_vals[j];
    j = (j + 1) & (t->addr_cap - 1);
  }
  snap_frame_t f = {a, 0, 0, 0, 0, 0};
  if (s->nframes == t->frames_cap) {
    size_t c = t->frames_cap ? t->frames_cap * 2 : 256;
    snap_frame_t *n = realloc(s->frames, c * sizeof *n);
    if (!n) return (t->failed = true), 0;
    s->frames = n;
    t->frames_cap = c;
  }
  s->frames[s->nframes] = f;
  t->addr_keys[j] = key;
  t->addr_vals[j] = (uint32_t)s->nframes;
  t->addr_n++;
  return (uint32_t)s->nframes++;
}

/* The snapshot index of global traceback `id`, copying it on first use. */
uint32_t refgc__snapshot_tb(void *take, uint32_t id) {
  take_t *t = take;
  refgc_snapshot_t *s = t->s;
  if (id >= t->tb_map_n) {
    size_t n = refgc__trace_tb_count() + 1;
    if (n <= id) n = (size_t)id + 1;
    uint32_t *m = realloc(t->tb_map, n * sizeof *m);
    if (!m) return (t->failed = true), 0;
    for (size_t i = t->tb_map_n; i < n; i++) m[i] = UINT32_MAX;
    t->tb_map = m;
    t->tb_map_n = n;
  }
  if (t->tb_map[id] != UINT32_MAX) return t->tb_map[id];
  void *const *frames = NULL;
  int n = refgc__trace_tb_frames(id, &frames);
  if (n < 0) n = 0;
  if (s->ntracebacks == t->tbs_cap) {
    size_t c = t->tbs_cap ? t->tbs_cap * 2 : 256;
    uint32_t *a = realloc(s->tb_start, c * sizeof *a);
    if (!a) return (t->failed = true), 0;
    s->tb_start = a;
    uint32_t *b = realloc(s->tb_len, c * sizeof *b);
    if (!b) return (t->failed = true), 0;
    s->tb_len = b;
    t->tbs_cap = c;
  }
  uint32_t start = (uint32_t)s->ntb_frames;
  for (int i = 0; i < n; i++) {
    uint32_t fi = frame_index(t, frames[i]);
    if (t->failed) return 0;
    if (s->ntb_frames == t->tbf_cap) {
      size_t c = t->tbf_cap ? t->tbf_cap * 2 : 1024;
      uint32_t *a = realloc(s->tb_frames, c * sizeof *a);
      if (!a) return (t->failed = true), 0;
      s->tb_frames = a;
      t->tbf_cap = c;
    }
    s->tb_frames[s->ntb_frames++] = fi;
  }
  s->tb_start[s->ntracebacks] = start;
  s->tb_len[s->ntracebacks] = (uint32_t)n;
  return t->tb_map[id] = (uint32_t)s->ntracebacks++;
}

static void take_trace(void *block, uint64_t size, uint32_t tb, bool object, void *arg) {
  take_t *t = arg;
  if (t->failed) return;
  refgc_snapshot_t *s = t->s;
  uint32_t type = object ? refgc__snapshot_object_type(t, block) : 0;
  uint32_t idx = refgc__snapshot_tb(t, tb);
  if (t->failed) return;
  snap_trace_t tr = {size, idx, type};
  VEC_PUSH(s->traces, s->ntraces, t->traces_cap, tr);
  return;
oom:
  t->failed = true;
}

/* Object counts by type: every live object. */
typedef struct count_ctx_s {
  take_t *t;
  snap_type_count_t *v;
  size_t n, cap;
  uint32_t *row_of; /* snapshot type -> row + 1 */
  size_t row_of_n;
  bool failed;
} count_ctx_t;

/* Add one object of snapshot type `type` and `bytes` bytes to its row. */
static void count_row(count_ctx_t *c, uint32_t type, uint64_t bytes) {
  if (type >= c->row_of_n) {
    size_t n = c->row_of_n ? c->row_of_n * 2 : 64;
    while (n <= type) n *= 2;
    uint32_t *r = realloc(c->row_of, n * sizeof *r);
    if (!r) return (void)(c->failed = true);
    memset(r + c->row_of_n, 0, (n - c->row_of_n) * sizeof *r);
    c->row_of = r;
    c->row_of_n = n;
  }
  if (!c->row_of[type]) {
    snap_type_count_t row = {type, 0, 0};
    VEC_PUSH(c->v, c->n, c->cap, row);
    c->row_of[type] = (uint32_t)c->n;
  }
  snap_type_count_t *row = &c->v[c->row_of[type] - 1];
  row->count++;
  row->bytes += bytes;
  return;
oom:
  c->failed = true;
}

static void count_object(refgc_object_t *o, void *arg) {
  count_ctx_t *c = arg;
  if (c->failed) return;
  uint32_t type = refgc__snapshot_object_type(c->t, o);
  if (c->t->failed) return (void)(c->failed = true);
  count_row(c, type, refgc__block_usable(o));
}

static int cmp_type_count(const void *a, const void *b) {
  const snap_type_count_t *x = a, *y = b;
  if (x->count != y->count) return x->count < y->count ? 1 : -1;
  if (x->bytes != y->bytes) return x->bytes < y->bytes ? 1 : -1;
  return x->type < y->type ? -1 : x->type > y->type;
}

refgc_snapshot_t *refgc_snapshot_take(unsigned flags) {
  refgc__global_init();
  if (flags & ~(unsigned)REFGC_SNAPSHOT_GRAPH) {
    refgc__set_error(REFGC_EINVAL);
    return NULL;
  }
  refgc_snapshot_t *s = refgc__snapshot_new();
  if (!s) {
    refgc__set_error(REFGC_ENOMEM);
    return NULL;
  }
  take_t t = {0};
  t.s = s;
  s->local = true;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  s->time = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
  s->uptime = refgc__trace_clock();
  s->pid = (uint64_t)getpid();
  char exe[4096];
  ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
  exe[len > 0 ? len : 0] = 0;
  s->program = refgc__snapshot_intern(s, exe);
  s->frames_limit = refgc_trace_frames();
  s->sample_bytes = refgc_trace_sample_bytes();
  size_t cur, peak;
  refgc_trace_get_memory(&cur, &peak);
  s->traced_current = cur;
  s->traced_peak = peak;
  s->tracer_memory = refgc_trace_memory();
  refgc_heap_stats_t hs;
  hs.size = sizeof hs;
  refgc_heap_stats(&hs);
  s->heap_in_use = hs.in_use;
  s->heap_committed = hs.committed;
  s->rss = refgc__rss_bytes();
  refgc_gc_gen_stats_t gs[3];
  refgc_gc_get_stats(gs);
  for (int g = 0; g < 3; g++) {
    s->gc_collections[g] = gs[g].collections;
    s->gc_collected[g] = gs[g].collected;
    s->gc_uncollectable[g] = gs[g].uncollectable;
    s->gc_pause_total += gs[g].seconds;
    if (gs[g].max_pause > s->gc_pause_max) s->gc_pause_max = gs[g].max_pause;
  }
  t.pseudo[0] = t.pseudo[1] = t.pseudo[2] = UINT32_MAX;
  if (snap_type(&t, PSEUDO_RAW, "") != 0) t.failed = true; /* type 0: raw blocks */
  refgc__trace_walk(take_trace, &t);
  if (t.failed) goto oom;
  /* counts by type, and the graph */
  count_ctx_t c = {&t, NULL, 0, 0, NULL, 0, false};
  bool walked = false;
  if ((flags & REFGC_SNAPSHOT_GRAPH) || refgc__gc_walk_is_safe()) {
    walked = refgc__gc_walk_objects(count_object, &c);
  } else {
    /* other threads may be setting up pages: count the traced objects only */
    for (size_t i = 0; i < s->ntraces && !c.failed; i++)
      if (s->traces[i].type) count_row(&c, s->traces[i].type, s->traces[i].size);
    walked = !c.failed;
  }
  free(c.row_of);
  if (c.failed || t.failed) {
    free(c.v);
    goto oom;
  }
  if (walked) {
    if (c.n) qsort(c.v, c.n, sizeof *c.v, cmp_type_count); /* c.v is NULL when no object lives */
    s->type_counts = c.v;
    s->ntype_counts = c.n;
  }
  if (flags & REFGC_SNAPSHOT_GRAPH) {
    int err = refgc__graph_build(s, &t);
    if (err) {
      free(t.tb_map);
      free(t.type_map);
      free(t.addr_keys);
      free(t.addr_vals);
      refgc_snapshot_free(s);
      refgc__set_error(err);
      return NULL;
    }
  }
  s->nseries = refgc__trace_series_copy(&s->series);
  free(t.tb_map);
  free(t.type_map);
  free(t.addr_keys);
  free(t.addr_vals);
  return s;
oom:
  free(t.tb_map);
  free(t.type_map);
  free(t.addr_keys);
  free(t.addr_vals);
  refgc_snapshot_free(s);
  refgc__set_error(REFGC_ENOMEM);
  return NULL;
}

/* ---------------------------------------------------------------------------------------------
 * Symbols
 * ------------------------------------------------------------------------------------------ */

void refgc__snapshot_resolve(refgc_snapshot_t *s) {
  if (s->resolved || !s->local) return;
  for (size_t i = 0; i < s->nframes; i++) {
    refgc_frame_info_t fi;
    refgc_symbolize((uintptr_t)s->frames[i].address, &fi);
    s->frames[i].offset = fi.offset;
    s->frames[i].module = refgc__snapshot_intern(s, fi.module);
    s->frames[i].function = refgc__snapshot_intern(s, fi.function);
    s->frames[i].file = refgc__snapshot_intern(s, fi.file);
    s->frames[i].line = fi.line;
    if (s->frames[i].module == UINT32_MAX || s->frames[i].function == UINT32_MAX ||
        s->frames[i].file == UINT32_MAX) {
      s->frames[i].module = s->frames[i].function = s->frames[i].file = 0;
    }
  }
  s->resolved = true;
  free(s->pub_frames);
  s->pub_frames = NULL;
}

/* ---------------------------------------------------------------------------------------------
 * Saving and loading
 * ------------------------------------------------------------------------------------------ */

int refgc_snapshot_save(refgc_snapshot_t *s, const char *path) {
  if (!s || !path) {
    refgc__snapshot_fail(REFGC_EINVAL, "refgc_snapshot_save: NULL %s", s ? "path" : "snapshot");
    return REFGC_EINVAL;
  }
  refgc__snapshot_resolve(s);
  size_t len = strlen(path) + 32;
  char *tmp = malloc(len);
  if (!tmp) return refgc__snapshot_fail(REFGC_ENOMEM, "%s: out of memory", path);
  snprintf(tmp, len, "%s.tmp.%ld", path, (long)getpid());
  FILE *f = fopen(tmp, "wb");
  if (!f) {
    int e = errno;
    refgc__snapshot_fail(REFGC_EIO, "%s: cannot create: %s", tmp, strerror(e));
    free(tmp);
    return REFGC_EIO;
  }
  int err = refgc__snapshot_write(s, f);
  if (fflush(f) != 0 && !err) err = REFGC_EIO;
  if (fclose(f) != 0 && !err) err = REFGC_EIO;
  if (err) {
    int e = errno;
    remove(tmp);
    refgc__snapshot_fail(REFGC_EIO, "%s: cannot write: %s", path, strerror(e));
    free(tmp);
    return REFGC_EIO;
  }
  if (rename(tmp, path) != 0) {
    int e = errno;
    remove(tmp);
    refgc__snapshot_fail(REFGC_EIO, "%s: cannot rename %s into place: %s", path, tmp, strerror(e));
    free(tmp);
    return REFGC_EIO;
  }
  free(tmp);
  return 0;
}

refgc_snapshot_t *refgc_snapshot_load(const char *path) {
  if (!path) {
    refgc__snapshot_fail(REFGC_EINVAL, "refgc_snapshot_load: NULL path");
    return NULL;
  }
  FILE *f = fopen(path, "rb");
  if (!f) {
    refgc__snapshot_fail(REFGC_EIO, "%s: cannot open: %s", path, strerror(errno));
    return NULL;
  }
  struct stat st;
  if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
    fclose(f);
    refgc__snapshot_fail(REFGC_EIO, "%s: not a regular file", path);
    return NULL;
  }
  size_t size = (size_t)st.st_size;
  uint8_t *data = malloc(size ? size : 1);
  if (!data) {
    fclose(f);
    refgc__snapshot_fail(REFGC_ENOMEM, "%s: out of memory reading %zu bytes", path, size);
    return NULL;
  }
  size_t got = fread(data, 1, size, f);
  int rerr = ferror(f);
  fclose(f);
  if (got != size || rerr) {
    free(data);
    refgc__snapshot_fail(REFGC_EIO, "%s: read error", path);
    return NULL;
  }
  refgc_snapshot_t *s = refgc__snapshot_read(data, size, path);
  free(data);
  return s;
}

/* ---------------------------------------------------------------------------------------------
 * Accessors
 * ------------------------------------------------------------------------------------------ */

int refgc_snapshot_info(const refgc_snapshot_t *s, refgc_snapshot_info_t *out) {
  if (!s || !out || out->size < sizeof *out) return REFGC_EINVAL;
  memset(out, 0, sizeof *out);
  out->size = sizeof *out;
  out->version = s->version;
  out->time = s->time;
  out->uptime = s->uptime;
  out->pid = s->pid;
  out->program = s->program < s->nstrings ? s->strings[s->program] : "";
  out->frames = s->frames_limit;
  out->sample_bytes = s->sample_bytes;
  out->traced_current = s->traced_current;
  out->traced_peak = s->traced_peak;
  out->trace_count = s->ntraces;
  out->heap_in_use = s->heap_in_use;
  out->heap_committed = s->heap_committed;
  out->rss = s->rss;
  out->tracer_memory = s->tracer_memory;
  uint64_t objects = 0;
  for (size_t i = 0; i < s->ntype_counts; i++) objects += s->type_counts[i].count;
  out->objects = objects;
  out->graph_nodes = s->nnodes;
  out->graph_edges = s->nedges;
  for (int g = 0; g < 3; g++) {
    out->gc_collections[g] = s->gc_collections[g];
    out->gc_collected[g] = s->gc_collected[g];
    out->gc_uncollectable[g] = s->gc_uncollectable[g];
  }
  out->gc_pause_total = s->gc_pause_total;
  out->gc_pause_max = s->gc_pause_max;
  out->series_points = s->nseries;
  return 0;
}

static double trace_weight(const refgc_snapshot_t *s, uint64_t size) {
  if (!s->sample_bytes) return 1.0;
  double p = -expm1(-(double)size / (double)s->sample_bytes);
  return p > 0 ? 1.0 / p : 1.0;
}

const refgc_trace_t *refgc_snapshot_traces(const refgc_snapshot_t *cs, size_t *n) {
  refgc_snapshot_t *s = (refgc_snapshot_t *)(uintptr_t)cs;
  if (n) *n = 0;
  if (!s || !s->ntraces) return NULL;
  if (!s->pub_traces) {
    s->pub_traces = malloc(s->ntraces * sizeof *s->pub_traces);
    if (!s->pub_traces) return NULL;
    for (size_t i = 0; i < s->ntraces; i++) {
      s->pub_traces[i].size = s->traces[i].size;
      s->pub_traces[i].traceback = s->traces[i].traceback;
      s->pub_traces[i].type = s->traces[i].type;
      s->pub_traces[i].weight = trace_weight(s, s->traces[i].size);
    }
  }
  if (n) *n = s->ntraces;
  return s->pub_traces;
}

size_t refgc_snapshot_traceback(const refgc_snapshot_t *s, uint32_t index, const uint32_t **frames) {
  if (!s || index >= s->ntracebacks) {
    if (frames) *frames = NULL;
    return 0;
  }
  if (frames) *frames = s->tb_frames + s->tb_start[index];
  return s->tb_len[index];
}

size_t refgc_snapshot_tracebacks(const refgc_snapshot_t *s) { return s ? s->ntracebacks : 0; }

const refgc_frame_info_t *refgc_snapshot_frame(refgc_snapshot_t *s, uint32_t index) {
  if (!s || index >= s->nframes) return NULL;
  refgc__snapshot_resolve(s);
  if (!s->pub_frames) {
    s->pub_frames = malloc(s->nframes * sizeof *s->pub_frames);
    if (!s->pub_frames) return NULL;
    for (size_t i = 0; i < s->nframes; i++) {
      const snap_frame_t *f = &s->frames[i];
      s->pub_frames[i] = (refgc_frame_info_t){(uintptr_t)f->address, (uintptr_t)f->offset,
                                              s->strings[f->module], s->strings[f->function],
                                              s->strings[f->file], f->line};
    }
  }
  return &s->pub_frames[index];
}

const char *refgc_snapshot_type_name(const refgc_snapshot_t *s, uint32_t index) {
  if (!s || index >= s->ntypes) return NULL;
  return s->strings[s->type_name[index]];
}

const char *refgc_snapshot_string(const refgc_snapshot_t *s, uint32_t index) {
  if (!s || index >= s->nstrings) return NULL;
  return s->strings[index];
}

const refgc_type_count_t *refgc_snapshot_type_counts(const refgc_snapshot_t *cs, size_t *n) {
  refgc_snapshot_t *s = (refgc_snapshot_t *)(uintptr_t)cs;
  if (n) *n = 0;
  if (!s || !s->ntype_counts) return NULL;
  if (!s->pub_type_counts) {
    s->pub_type_counts = malloc(s->ntype_counts * sizeof *s->pub_type_counts);
    if (!s->pub_type_counts) return NULL;
    for (size_t i = 0; i < s->ntype_counts; i++) {
      const snap_type_count_t *c = &s->type_counts[i];
      s->pub_type_counts[i] = (refgc_type_count_t){refgc_snapshot_type_name(s, c->type), c->count,
                                                   c->bytes, 0};
    }
  }
  if (n) *n = s->ntype_counts;
  return s->pub_type_counts;
}

const refgc_series_point_t *refgc_snapshot_series(const refgc_snapshot_t *s, size_t *n) {
  if (n) *n = s ? s->nseries : 0;
  return s && s->nseries ? s->series : NULL;
}

const refgc_node_t *refgc_snapshot_graph(const refgc_snapshot_t *s, size_t *nnodes,
                                         const refgc_edge_t **edges, size_t *nedges) {
  if (nnodes) *nnodes = s ? s->nnodes : 0;
  if (nedges) *nedges = s ? s->nedges : 0;
  if (edges) *edges = s && s->nedges ? s->edges : NULL;
  return s && s->nnodes ? s->nodes : NULL;
}

const refgc_suspect_t *refgc_snapshot_suspects(const refgc_snapshot_t *cs, size_t *n) {
  refgc_snapshot_t *s = (refgc_snapshot_t *)(uintptr_t)cs;
  if (n) *n = 0;
  if (!s || !s->nsuspects) return NULL;
  if (!s->pub_suspects) {
    s->pub_suspects = malloc(s->nsuspects * sizeof *s->pub_suspects);
    if (!s->pub_suspects) return NULL;
    for (size_t i = 0; i < s->nsuspects; i++) {
      const snap_suspect_t *x = &s->suspects[i];
      s->pub_suspects[i] = (refgc_suspect_t){(refgc_leak_class_t)x->cls, x->node, x->unexplained,
                                             x->retained, x->retained_count, x->chain_len,
                                             s->chains + x->chain_start};
    }
  }
  if (n) *n = s->nsuspects;
  return s->pub_suspects;
}

/* ---------------------------------------------------------------------------------------------
 * Statistics
 * ------------------------------------------------------------------------------------------ */

/* The key of frame `fi` for `group` (FILE, LINE, FUNCTION) as an interned string index. */
static uint32_t frame_key(refgc_snapshot_t *s, uint32_t fi, refgc_group_t group) {
  const snap_frame_t *f = &s->frames[fi];
  const char *file = s->strings[f->file], *fn = s->strings[f->function];
  const char *mod = s->strings[f->module];
  const char *base = strrchr(mod, '/');
  base = base ? base + 1 : mod;
  char buf[1024];
  switch (group) {
    case REFGC_GROUP_FILE:
      if (*file) return f->file;
      snprintf(buf, sizeof buf, "%s", *base ? base : "<unknown>");
      break;
    case REFGC_GROUP_FUNCTION:
      if (*fn) return f->function;
      snprintf(buf, sizeof buf, "%s+0x%llx", *base ? base : "<unknown>",
               (unsigned long long)f->offset);
      break;
    default:
      if (*file)
        snprintf(buf, sizeof buf, "%s:%d", file, f->line);
      else if (*fn)
        snprintf(buf, sizeof buf, "%s (%s)", fn, *base ? base : "?");
      else
        snprintf(buf, sizeof buf, "%s+0x%llx", *base ? base : "<unknown>",
                 (unsigned long long)f->offset);
      break;
  }
  return refgc__snapshot_intern(s, buf);
}

/* The canonical key of a whole traceback (every frame's line key, joined). */
static uint32_t traceback_key(refgc_snapshot_t *s, uint32_t tb) {
  size_t cap = 256, len = 0;
  char *buf = malloc(cap);
  if (!buf) return UINT32_MAX;
  buf[0] = 0;
  for (uint32_t i = 0; i < s->tb_len[tb]; i++) {
    uint32_t k = frame_key(s, s->tb_frames[s->tb_start[tb] + i], REFGC_GROUP_LINE);
    if (k == UINT32_MAX) {
      free(buf);
      return UINT32_MAX;
    }
    size_t kl = strlen(s->strings[k]);
    if (len + kl + 2 > cap) {
      while (len + kl + 2 > cap) cap *= 2;
      char *n = realloc(buf, cap);
      if (!n) {
        free(buf);
        return UINT32_MAX;
      }
      buf = n;
    }
    if (i) buf[len++] = '\n';
    memcpy(buf + len, s->strings[k], kl + 1);
    len += kl;
  }
  uint32_t r = refgc__snapshot_intern(s, s->tb_len[tb] ? buf : "<no frames>");
  free(buf);
  return r;
}

typedef struct group_s {
  smap_t map;          /* canonical key -> row */
  refgc_stat_t *rows;
  const char **canon;  /* per row: canonical key (for compare) */
  size_t n, cap;
  double *fsize, *fcount; /* exact (weighted) sums per row */
} group_t;

static int group_add(group_t *g, const char *canon, const char *display, uint32_t tb,
                     double size, double count) {
  uint32_t *row = smap_get(&g->map, canon);
  if (!row) {
    if (g->n == g->cap) {
      size_t c = g->cap ? g->cap * 2 : 64;
      refgc_stat_t *r = realloc(g->rows, c * sizeof *r);
      if (!r) return -1;
      g->rows = r;
      const char **k = realloc(g->canon, c * sizeof *k);
      if (!k) return -1;
      g->canon = k;
      double *a = realloc(g->fsize, c * sizeof *a);
      if (!a) return -1;
      g->fsize = a;
      double *b = realloc(g->fcount, c * sizeof *b);
      if (!b) return -1;
      g->fcount = b;
      g->cap = c;
    }
    g->rows[g->n] = (refgc_stat_t){display, tb, 0, 0, 0, 0};
    g->canon[g->n] = canon;
    g->fsize[g->n] = g->fcount[g->n] = 0;
    if (!smap_put(&g->map, canon, (uint32_t)g->n)) return -1;
    row = smap_get(&g->map, canon);
    g->n++;
  }
  g->fsize[*row] += size;
  g->fcount[*row] += count;
  return 0;
}

static void group_free(group_t *g) {
  smap_free(&g->map);
  free(g->rows);
  free(g->canon);
  free(g->fsize);
  free(g->fcount);
}

/* Group every trace of `s`. Canonical keys and display keys are interned in `s`. */
static int group_snapshot(refgc_snapshot_t *s, refgc_group_t group, int cumulative, group_t *g) {
  if (group != REFGC_GROUP_TYPE) refgc__snapshot_resolve(s);
  uint32_t *tb_key = NULL, *tb_disp = NULL;
  uint32_t unknown = refgc__snapshot_intern(s, "<no frames>");
  if (unknown == UINT32_MAX) return -1;
  if (group == REFGC_GROUP_TRACEBACK && s->ntracebacks) {
    tb_key = malloc(s->ntracebacks * sizeof *tb_key);
    tb_disp = malloc(s->ntracebacks * sizeof *tb_disp);
    if (!tb_key || !tb_disp) goto fail;
    for (size_t i = 0; i < s->ntracebacks; i++) {
      tb_key[i] = traceback_key(s, (uint32_t)i);
      tb_disp[i] = s->tb_len[i] ? frame_key(s, s->tb_frames[s->tb_start[i]], REFGC_GROUP_LINE)
                                : unknown;
      if (tb_key[i] == UINT32_MAX || tb_disp[i] == UINT32_MAX) goto fail;
    }
  }
  for (size_t i = 0; i < s->ntraces; i++) {
    const snap_trace_t *t = &s->traces[i];
    double w = trace_weight(s, t->size);
    double size = (double)t->size * w;
    uint32_t tb = t->traceback;
    if (group == REFGC_GROUP_TYPE) {
      uint32_t k = s->type_name[t->type];
      if (group_add(g, s->strings[k], s->strings[k], UINT32_MAX, size, w)) goto fail;
    } else if (group == REFGC_GROUP_TRACEBACK) {
      if (group_add(g, s->strings[tb_key[tb]], s->strings[tb_disp[tb]], tb, size, w)) goto fail;
    } else {
      uint32_t n = s->tb_len[tb];
      if (n == 0) {
        if (group_add(g, s->strings[unknown], s->strings[unknown], UINT32_MAX, size, w)) goto fail;
        continue;
      }
      uint32_t seen[REFGC_TRACE_MAX_FRAMES * 2];
      uint32_t nseen = 0;
      for (uint32_t f = 0; f < (cumulative ? n : 1); f++) {
        uint32_t k = frame_key(s, s->tb_frames[s->tb_start[tb] + f], group);
        if (k == UINT32_MAX) goto fail;
        bool dup = false;
        for (uint32_t j = 0; j < nseen; j++) dup |= seen[j] == k;
        if (dup) continue;
        if (nseen < sizeof seen / sizeof *seen) seen[nseen++] = k;
        if (group_add(g, s->strings[k], s->strings[k], UINT32_MAX, size, w)) goto fail;
      }
    }
  }
  for (size_t r = 0; r < g->n; r++) {
    g->rows[r].size = (uint64_t)llround(g->fsize[r]);
    g->rows[r].count = (uint64_t)llround(g->fcount[r]);
  }
  free(tb_key);
  free(tb_disp);
  return 0;
fail:
  free(tb_key);
  free(tb_disp);
  return -1;
}

static int cmp_stat_size(const void *a, const void *b) {
  const refgc_stat_t *x = a, *y = b;
  if (x->size != y->size) return x->size < y->size ? 1 : -1;
  if (x->count != y->count) return x->count < y->count ? 1 : -1;
  return strcmp(x->key, y->key);
}

static int cmp_stat_diff(const void *a, const void *b) {
  const refgc_stat_t *x = a, *y = b;
  uint64_t ax = (uint64_t)(x->size_diff < 0 ? -x->size_diff : x->size_diff);
  uint64_t ay = (uint64_t)(y->size_diff < 0 ? -y->size_diff : y->size_diff);
  if (ax != ay) return ax < ay ? 1 : -1;
  return cmp_stat_size(a, b);
}

static bool group_ok(refgc_group_t group) {
  return group >= REFGC_GROUP_FILE && group <= REFGC_GROUP_TYPE;
}

refgc_stat_t *refgc_snapshot_statistics(refgc_snapshot_t *s, refgc_group_t group, int cumulative,
                                        size_t *n) {
  if (n) *n = 0;
  if (!s || !n || !group_ok(group)) {
    refgc__set_error(REFGC_EINVAL);
    return NULL;
  }
  group_t g = {0};
  if (group_snapshot(s, group, cumulative, &g)) {
    group_free(&g);
    refgc__set_error(REFGC_ENOMEM);
    return NULL;
  }
  refgc_stat_t *rows = g.rows;
  g.rows = NULL;
  *n = g.n;
  group_free(&g);
  if (rows) qsort(rows, *n, sizeof *rows, cmp_stat_size);
  refgc__set_error(0);
  return rows;
}

refgc_stat_t *refgc_snapshot_compare(refgc_snapshot_t *newer, refgc_snapshot_t *older,
                                     refgc_group_t group, int cumulative, size_t *n) {
  if (n) *n = 0;
  if (!newer || !older || !n || !group_ok(group)) {
    refgc__set_error(REFGC_EINVAL);
    return NULL;
  }
  group_t gn = {0}, go = {0};
  refgc_stat_t *rows = NULL;
  if (group_snapshot(newer, group, cumulative, &gn) || group_snapshot(older, group, cumulative, &go))
    goto oom;
  size_t cap = gn.n + go.n;
  rows = malloc((cap ? cap : 1) * sizeof *rows);
  if (!rows) goto oom;
  size_t k = 0;
  for (size_t i = 0; i < gn.n; i++) {
    rows[k] = gn.rows[i];
    uint32_t *o = smap_get(&go.map, gn.canon[i]);
    uint64_t os = o ? go.rows[*o].size : 0, oc = o ? go.rows[*o].count : 0;
    rows[k].size_diff = (int64_t)rows[k].size - (int64_t)os;
    rows[k].count_diff = (int64_t)rows[k].count - (int64_t)oc;
    k++;
  }
  for (size_t i = 0; i < go.n; i++) {
    if (smap_get(&gn.map, go.canon[i])) continue;
    rows[k] = go.rows[i];
    rows[k].traceback = UINT32_MAX;
    rows[k].size_diff = -(int64_t)go.rows[i].size;
    rows[k].count_diff = -(int64_t)go.rows[i].count;
    rows[k].size = rows[k].count = 0;
    k++;
  }
  group_free(&gn);
  group_free(&go);
  qsort(rows, k, sizeof *rows, cmp_stat_diff);
  *n = k;
  refgc__set_error(0);
  return rows;
oom:
  free(rows);
  group_free(&gn);
  group_free(&go);
  refgc__set_error(REFGC_ENOMEM);
  return NULL;
}

void refgc_stats_free(refgc_stat_t *stats) { free(stats); }

/* ---------------------------------------------------------------------------------------------
 * Growth across a series of snapshots
 * ------------------------------------------------------------------------------------------ */

static int cmp_growth(const void *a, const void *b) {
  const refgc_growth_t *x = a, *y = b;
  uint64_t gx = x->last_size - x->first_size, gy = y->last_size - y->first_size;
  if (gx != gy) return gx < gy ? 1 : -1;
  return strcmp(x->key, y->key);
}

refgc_growth_t *refgc_snapshots_growth(refgc_snapshot_t *const *snaps, size_t n,
                                       refgc_group_t group, uint64_t min_growth, size_t *out_n) {
  if (out_n) *out_n = 0;
  if (!snaps || n < 3 || !out_n || !group_ok(group)) {
    refgc__set_error(REFGC_EINVAL);
    return NULL;
  }
  for (size_t i = 0; i < n; i++)
    if (!snaps[i]) {
      refgc__set_error(REFGC_EINVAL);
      return NULL;
    }
  group_t *g = calloc(n, sizeof *g);
  refgc_growth_t *out = NULL;
  if (!g) goto oom;
  for (size_t i = 0; i < n; i++)
    if (group_snapshot(snaps[i], group, 0, &g[i])) goto oom;
  group_t *last = &g[n - 1];
  out = malloc((last->n ? last->n : 1) * sizeof *out);
  if (!out) goto oom;
  size_t k = 0;
  for (size_t r = 0; r < last->n; r++) {
    const char *canon = last->canon[r];
    uint64_t prev = 0, first = 0, first_count = 0;
    bool mono = true;
    for (size_t i = 0; i < n && mono; i++) {
      uint32_t *row = smap_get(&g[i].map, canon);
      uint64_t sz = row ? g[i].rows[*row].size : 0;
      if (i == 0) {
        first = sz;
        first_count = row ? g[i].rows[*row].count : 0;
      } else if (sz < prev) {
        mono = false;
      }
      prev = sz;
    }
    if (!mono || last->rows[r].size < first + min_growth || last->rows[r].size == first) continue;
    out[k++] = (refgc_growth_t){last->rows[r].key, last->rows[r].traceback, first,
                                last->rows[r].size, first_count, last->rows[r].count};
  }
  for (size_t i = 0; i < n; i++) group_free(&g[i]);
  free(g);
  qsort(out, k, sizeof *out, cmp_growth);
  *out_n = k;
  refgc__set_error(0);
  return out;
oom:
  if (g)
    for (size_t i = 0; i < n; i++) group_free(&g[i]);
  free(g);
  free(out);
  refgc__set_error(REFGC_ENOMEM);
  return NULL;
}

void refgc_growth_free(refgc_growth_t *g) { free(g); }

/* ---------------------------------------------------------------------------------------------
 * Filters
 * ------------------------------------------------------------------------------------------ */

static bool frame_matches(const refgc_snapshot_t *s, uint32_t fi, const refgc_filter_t *f) {
  const snap_frame_t *fr = &s->frames[fi];
  if (f->file_pattern && fnmatch(f->file_pattern, s->strings[fr->file], 0) != 0) return false;
  if (f->line && fr->line != f->line) return false;
  return true;
}

static bool filter_matches(const refgc_snapshot_t *s, const snap_trace_t *t, const refgc_filter_t *f) {
  if (t->size < f->min_size) return false;
  if (f->max_size && t->size > f->max_size) return false;
  if (f->type_pattern && fnmatch(f->type_pattern, s->strings[s->type_name[t->type]], 0) != 0)
    return false;
  if (!f->file_pattern && !f->line) return true;
  uint32_t n = s->tb_len[t->traceback], start = s->tb_start[t->traceback];
  if (n == 0) return f->file_pattern && fnmatch(f->file_pattern, "<unknown>", 0) == 0 && !f->line;
  for (uint32_t i = 0; i < (f->all_frames ? n : 1); i++)
    if (frame_matches(s, s->tb_frames[start + i], f)) return true;
  return false;
}

#define DUP_ARRAY(dst, src, n)                               \
  do {                                                       \
    (dst) = NULL;                                            \
    if ((n) > 0) {                                           \
      (dst) = malloc((n) * sizeof *(src));                   \
      if (!(dst)) goto oom;                                  \
      memcpy((dst), (src), (n) * sizeof *(src));             \
    }                                                        \
  } while (0)

refgc_snapshot_t *refgc_snapshot_filter(refgc_snapshot_t *s, const refgc_filter_t *filters,
                                        size_t nf) {
  if (!s || (nf && !filters)) {
    refgc__set_error(REFGC_EINVAL);
    return NULL;
  }
  refgc__snapshot_resolve(s);
  refgc_snapshot_t *d = calloc(1, sizeof *d);
  if (!d) goto oom;
  *d = *s;
  d->strings = NULL;
  d->nstrings = d->strings_cap = 0;
  d->string_index = NULL;
  d->frames = NULL;
  d->tb_start = d->tb_len = d->tb_frames = d->type_name = d->chains = NULL;
  d->traces = NULL;
  d->type_counts = NULL;
  d->series = NULL;
  d->nodes = NULL;
  d->edges = NULL;
  d->suspects = NULL;
  d->pub_traces = NULL;
  d->pub_frames = NULL;
  d->pub_type_counts = NULL;
  d->pub_suspects = NULL;
  d->strings = calloc(s->nstrings ? s->nstrings : 1, sizeof *d->strings);
  if (!d->strings) goto oom;
  d->strings_cap = s->nstrings;
  for (size_t i = 0; i < s->nstrings; i++) {
    d->strings[i] = strdup(s->strings[i]);
    if (!d->strings[i]) goto oom;
    d->nstrings++;
  }
  DUP_ARRAY(d->frames, s->frames, s->nframes);
  DUP_ARRAY(d->tb_start, s->tb_start, s->ntracebacks);
  DUP_ARRAY(d->tb_len, s->tb_len, s->ntracebacks);
  DUP_ARRAY(d->tb_frames, s->tb_frames, s->ntb_frames);
  DUP_ARRAY(d->type_name, s->type_name, s->ntypes);
  DUP_ARRAY(d->type_counts, s->type_counts, s->ntype_counts);
  DUP_ARRAY(d->series, s->series, s->nseries);
  DUP_ARRAY(d->nodes, s->nodes, s->nnodes);
  DUP_ARRAY(d->edges, s->edges, s->nedges);
  DUP_ARRAY(d->suspects, s->suspects, s->nsuspects);
  DUP_ARRAY(d->chains, s->chains, s->nchains);
  d->traces = malloc((s->ntraces ? s->ntraces : 1) * sizeof *d->traces);
  if (!d->traces) goto oom;
  bool any_inclusive = false;
  for (size_t j = 0; j < nf; j++) any_inclusive |= filters[j].inclusive != 0;
  size_t k = 0;
  double cur = 0;
  for (size_t i = 0; i < s->ntraces; i++) {
    const snap_trace_t *t = &s->traces[i];
    bool keep = !any_inclusive;
    for (size_t j = 0; j < nf; j++)
      if (filters[j].inclusive && filter_matches(s, t, &filters[j])) keep = true;
    for (size_t j = 0; j < nf && keep; j++)
      if (!filters[j].inclusive && filter_matches(s, t, &filters[j])) keep = false;
    if (keep) {
      d->traces[k++] = *t;
      cur += (double)t->size * trace_weight(s, t->size);
    }
  }
  d->ntraces = k;
  d->traced_current = (uint64_t)llround(cur);
  return d;
oom:
  refgc_snapshot_free(d);
  refgc__set_error(REFGC_ENOMEM);
  return NULL;
}
