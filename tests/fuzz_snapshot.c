/* refgc — a fuzz target for the snapshot loader (refgc__snapshot_read, src/snapshot_io.c).
 *
 * LLVMFuzzerTestOneInput() loads the input. A rejected input must leave a message that names
 * the file; an accepted one must satisfy every invariant of src/snapshot.h (checked here
 * independently of the loader), and must write back out and load again into the same bytes.
 * Any violation aborts, which a fuzzer reports as a crash; the sanitizers catch the rest.
 *
 * Built two ways (tests/CMakeLists.txt):
 *   - with clang and -DREFGC_FUZZ=ON, as a libFuzzer binary (fuzz_snapshot_libfuzzer; this file
 *     is compiled with REFGC_LIBFUZZER: no main, and a custom mutator that re-seals the CRCs
 *     of half of its mutations). `fuzz_snapshot --write-seeds DIR`
 *     writes a seed corpus for it.
 *   - always, as a plain program with its own mutator (fuzz_snapshot), which CTest runs briefly
 *     as fuzz_snapshot_brief:
 *
 *       fuzz_snapshot [--iterations N] [--seconds S] [--seed N] [--write-seeds DIR] [FILE ...]
 *
 *     With FILEs, loads each once (to replay a crash) and stops. Otherwise it builds three
 *     valid snapshots (every section populated; empty; graph-heavy) and runs N mutated copies
 *     (default 200000) or for S seconds, whichever ends first, printing the seed to replay.
 *
 * Mutations are bit flips, byte sets (0, 0xff, 0x7f, 0x80, random), truncation, splicing a
 * chunk of another seed, inserting large or overlong varints, deleting and duplicating ranges.
 * Because every section carries a CRC, almost every raw mutation is rejected at the CRC; so
 * each iteration takes one of three modes, to reach the decoders too:
 *   raw         mutate the file as bytes;
 *   crc-fixed   mutate as bytes, then re-seal: walk the section headers and recompute every
 *               CRC that can be (the lengths are left as mutated);
 *   structural  take the file apart into sections, mutate one payload (or drop, repeat, swap
 *               sections, or add an unknown one), and put it back with correct lengths, CRCs
 *               and (usually) END count.
 * The summary counts outcomes per mode, so a run shows how deep the mutations got. In raw mode
 * the CRCs cover every byte after the file header, so a changed file that loads is a failure.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "snapshot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- invariants, checked independently of the loader ------------------------------------- */

static void violated(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void violated(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "fuzz_snapshot: a loaded snapshot breaks an invariant: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  abort();
}

static void check_invariants(const refgc_snapshot_t *s) {
  if (!s->resolved || s->local) violated("resolved %d local %d", s->resolved, s->local);
  if (s->pub_traces || s->pub_frames || s->pub_type_counts || s->pub_suspects)
    violated("derived arrays are set");
  if (s->nstrings == 0 || s->strings[0][0] != 0) violated("string 0 is not \"\"");
  for (size_t i = 0; i < s->nstrings; i++)
    if (!s->strings[i]) violated("string %zu is NULL", i);
  if (s->program >= s->nstrings) violated("program");
  for (size_t i = 0; i < s->nframes; i++) {
    const snap_frame_t *f = &s->frames[i];
    if (f->module >= s->nstrings || f->function >= s->nstrings || f->file >= s->nstrings)
      violated("frame %zu", i);
  }
  for (size_t i = 0; i < s->ntracebacks; i++)
    if ((uint64_t)s->tb_start[i] + s->tb_len[i] > s->ntb_frames) violated("traceback %zu", i);
  for (size_t i = 0; i < s->ntb_frames; i++)
    if (s->tb_frames[i] >= s->nframes) violated("traceback frame %zu", i);
  for (size_t i = 0; i < s->ntypes; i++)
    if (s->type_name[i] >= s->nstrings) violated("type %zu", i);
  if (s->ntypes && s->strings[s->type_name[0]][0] != 0) violated("type 0 is not \"\"");
  for (size_t i = 0; i < s->ntraces; i++)
    if (s->traces[i].traceback >= s->ntracebacks || s->traces[i].type >= s->ntypes)
      violated("trace %zu", i);
  for (size_t i = 0; i < s->ntype_counts; i++)
    if (s->type_counts[i].type >= s->ntypes) violated("type count %zu", i);
  for (size_t i = 0; i < s->nnodes; i++) {
    const refgc_node_t *n = &s->nodes[i];
    if (n->type >= s->ntypes) violated("node %zu type", i);
    if (n->traceback != UINT32_MAX && n->traceback >= s->ntracebacks) violated("node %zu tb", i);
    if (n->first_edge > s->nedges || (i && n->first_edge < s->nodes[i - 1].first_edge))
      violated("node %zu first_edge", i);
    if (n->root_name >= s->nstrings) violated("node %zu root name", i);
  }
  for (size_t i = 0; i < s->nedges; i++)
    if (s->edges[i].to >= s->nnodes) violated("edge %zu", i);
  for (size_t i = 0; i < s->nsuspects; i++) {
    const snap_suspect_t *u = &s->suspects[i];
    if (u->node >= s->nnodes || (uint64_t)u->chain_start + u->chain_len > s->nchains)
      violated("suspect %zu", i);
  }
  for (size_t i = 0; i < s->nchains; i++)
    if (s->chains[i] >= s->nnodes) violated("chain %zu", i);
}

static uint8_t *write_mem(refgc_snapshot_t *s, size_t *len) {
  char *buf = NULL;
  FILE *f = open_memstream(&buf, len);
  if (!f) abort();
  if (refgc__snapshot_write(s, f) != 0) violated("cannot write it back");
  if (fclose(f) != 0) abort();
  return (uint8_t *)buf;
}

/* Last outcome, for the driver's tally: 0 accepted, 1 CRC, 2 truncated, 3 other errors. */
static int last_outcome;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  refgc_snapshot_t *s = refgc__snapshot_read(data, size, "fuzz.rgc");
  if (!s) {
    const char *msg = refgc_snapshot_error();
    if (strncmp(msg, "fuzz.rgc: ", 10) != 0) {
      fprintf(stderr, "fuzz_snapshot: the message does not name the file: \"%s\"\n", msg);
      abort();
    }
    last_outcome = strstr(msg, "CRC mismatch") ? 1 : strstr(msg, "truncated") ? 2 : 3;
    return 0;
  }
  last_outcome = 0;
  check_invariants(s);
  /* what was accepted writes back and loads again, and then writes the same bytes */
  size_t n1, n2;
  uint8_t *f1 = write_mem(s, &n1);
  refgc_snapshot_t *t = refgc__snapshot_read(f1, n1, "fuzz-again.rgc");
  if (!t) violated("its own file does not load: %s", refgc_snapshot_error());
  uint8_t *f2 = write_mem(t, &n2);
  if (n1 != n2 || memcmp(f1, f2, n1) != 0) violated("writing it twice gives different bytes");
  free(f1);
  free(f2);
  refgc_snapshot_free(t);
  refgc_snapshot_free(s);
  return 0;
}

/* ---- CRC-32 (table-driven, independent of the library's) and re-sealing ------------------ */

static uint32_t crc_table[256];
static uint32_t crc32(uint32_t crc, const uint8_t *p, size_t n) {
  if (!crc_table[1])
    for (uint32_t i = 0; i < 256; i++) {
      uint32_t c = i;
      for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320u & (0 - (c & 1)));
      crc_table[i] = c;
    }
  crc = ~crc;
  while (n--) crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
  return ~crc;
}

static uint64_t get64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
  return v;
}
static void put32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* Recompute the CRC of every section whose header and payload are within the file. */
static void fix_crcs(uint8_t *p, size_t n) {
  size_t off = 16;
  while (off <= n && n - off >= 16) {
    uint64_t len = get64(p + off + 4);
    if (len > n - off - 16) break;
    put32(p + off + 12, crc32(crc32(0, p + off, 12), p + off + 16, (size_t)len));
    off += 16 + (size_t)len;
  }
}

#ifdef REFGC_LIBFUZZER
/* libFuzzer: its own mutations, then re-sealed half of the time, so that they get past the
 * CRCs into the decoders. */
size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed) {
  size = LLVMFuzzerMutate(data, size, max_size);
  if (seed & 1) fix_crcs(data, size);
  return size;
}
#else

/* ---- the driver ---------------------------------------------------------------------------- */

static uint64_t rng_state;
static uint64_t rnd(void) { /* splitmix64 */
  uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
static size_t below(size_t n) { return n ? (size_t)(rnd() % n) : 0; }

static void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) abort();
  return p;
}

static uint32_t intern(refgc_snapshot_t *s, const char *str) {
  uint32_t i = refgc__snapshot_intern(s, str);
  if (i == UINT32_MAX) abort();
  return i;
}

/* A valid snapshot: `k` sets the sizes of the trace part, `g` the graph's. */
static refgc_snapshot_t *seed_snapshot(size_t k, size_t g) {
  refgc_snapshot_t *s = refgc__snapshot_new();
  if (!s) abort();
  char buf[64];
  for (size_t i = 0; i < 6 + k; i++) {
    snprintf(buf, sizeof buf, i % 2 ? "fn_%zu" : "src/file%zu.c", i);
    intern(s, buf);
  }
  uint32_t ns = (uint32_t)s->nstrings;
  s->time = 1.7e9;
  s->uptime = 12.5;
  s->pid = 4242;
  s->program = intern(s, "/usr/bin/program");
  ns = (uint32_t)s->nstrings;
  s->frames_limit = 16;
  s->sample_bytes = k ? 0 : 65536;
  s->traced_current = 123456;
  s->traced_peak = UINT64_MAX;
  s->heap_in_use = 1u << 20;
  s->heap_committed = 1u << 22;
  s->rss = 1u << 24;
  s->tracer_memory = 4096;
  for (int i = 0; i < 3; i++) {
    s->gc_collections[i] = 10u >> i;
    s->gc_collected[i] = 100u >> i;
    s->gc_uncollectable[i] = (uint64_t)i;
  }
  s->gc_pause_total = 0.5;
  s->gc_pause_max = 0.01;
  s->resolved = true;

  s->nframes = 2 * k + 1;
  s->frames = xmalloc(s->nframes * sizeof *s->frames);
  for (size_t i = 0; i < s->nframes; i++)
    s->frames[i] = (snap_frame_t){.address = 0x555555554000ull + 64 * i, .offset = 64 * i,
                                  .module = (uint32_t)below(ns), .function = (uint32_t)below(ns),
                                  .file = (uint32_t)below(ns), .line = (int32_t)below(400) - 5};
  s->ntracebacks = k + 1;
  s->ntb_frames = 3 * k;
  s->tb_start = xmalloc(s->ntracebacks * sizeof(uint32_t));
  s->tb_len = xmalloc(s->ntracebacks * sizeof(uint32_t));
  s->tb_frames = xmalloc(s->ntb_frames * sizeof(uint32_t));
  for (size_t i = 0; i < s->ntb_frames; i++) s->tb_frames[i] = (uint32_t)below(s->nframes);
  for (size_t i = 0; i < s->ntracebacks; i++) {
    s->tb_start[i] = (uint32_t)(i < k ? 3 * i : 0);
    s->tb_len[i] = i < k ? 3 : 0;
  }
  s->ntypes = 3;
  s->type_name = xmalloc(s->ntypes * sizeof(uint32_t));
  s->type_name[0] = 0;
  s->type_name[1] = intern(s, "list");
  s->type_name[2] = intern(s, "dict");
  ns = (uint32_t)s->nstrings;
  s->ntraces = 4 * k;
  s->traces = xmalloc(s->ntraces * sizeof *s->traces);
  for (size_t i = 0; i < s->ntraces; i++)
    s->traces[i] = (snap_trace_t){.size = i ? below(5000) : UINT64_MAX,
                                  .traceback = (uint32_t)below(s->ntracebacks),
                                  .type = (uint32_t)below(3)};
  s->ntype_counts = 2;
  s->type_counts = xmalloc(2 * sizeof *s->type_counts);
  s->type_counts[0] = (snap_type_count_t){.type = 1, .count = 10, .bytes = 640};
  s->type_counts[1] = (snap_type_count_t){.type = 2, .count = 3, .bytes = 300};
  s->nseries = k;
  s->series = xmalloc(s->nseries * sizeof *s->series);
  for (size_t i = 0; i < s->nseries; i++)
    s->series[i] = (refgc_series_point_t){.t = 0.1 * (double)i, .rss = 1000 + i,
                                          .traced = 100 * i, .in_use = 200 * i,
                                          .committed = 300 * i};
  s->nnodes = g;
  s->nedges = 2 * g;
  s->nodes = xmalloc(s->nnodes * sizeof *s->nodes);
  s->edges = xmalloc(s->nedges * sizeof *s->edges);
  for (size_t i = 0; i < g; i++)
    s->nodes[i] = (refgc_node_t){.address = 0x7f0000000000ull + 48 * i,
                                 .type = (uint32_t)below(3), .flags = (uint32_t)below(64),
                                 .size = 48, .refcnt = 1 + (uint32_t)below(3),
                                 .traceback = i % 3 ? (uint32_t)below(s->ntracebacks) : UINT32_MAX,
                                 .first_edge = (uint32_t)(2 * i), .root_name = (uint32_t)below(ns),
                                 .retained = 48 * (g - i)};
  for (size_t i = 0; i < 2 * g; i++)
    s->edges[i] = (refgc_edge_t){.to = (uint32_t)below(g), .index = (uint32_t)(i % 2),
                                 .offset = i % 5 ? 8 * (int64_t)(i % 2) : -1};
  s->nsuspects = g ? 2 : 0;
  s->nchains = g ? 3 : 0;
  s->suspects = xmalloc(s->nsuspects * sizeof *s->suspects);
  s->chains = xmalloc(s->nchains * sizeof(uint32_t));
  for (size_t i = 0; i < s->nchains; i++) s->chains[i] = (uint32_t)below(g);
  for (size_t i = 0; i < s->nsuspects; i++)
    s->suspects[i] = (snap_suspect_t){.cls = 1 + (uint32_t)i, .node = (uint32_t)below(g),
                                      .unexplained = 1, .retained = 4096, .retained_count = 7,
                                      .chain_start = (uint32_t)i, .chain_len = 2};
  return s;
}

/* ---- byte buffers and file surgery --------------------------------------------------------- */

typedef struct buf_s {
  uint8_t *p;
  size_t len, cap;
} buf_t;

static void buf_need(buf_t *b, size_t more) {
  if (b->cap - b->len >= more) return;
  size_t cap = b->cap ? b->cap : 256;
  while (cap - b->len < more) cap *= 2;
  b->p = realloc(b->p, cap);
  if (!b->p) abort();
  b->cap = cap;
}
static void buf_put(buf_t *b, const void *p, size_t n) {
  buf_need(b, n);
  if (n) memcpy(b->p + b->len, p, n);
  b->len += n;
}

static void put64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static size_t put_varint(uint8_t *p, uint64_t v) {
  size_t n = 0;
  while (v >= 0x80) {
    p[n++] = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  p[n++] = (uint8_t)v;
  return n;
}

/* One section of a seed. */
typedef struct sect_s {
  uint8_t tag[4];
  const uint8_t *payload;
  size_t len;
} sect_t;

typedef struct seed_s {
  uint8_t *p;
  size_t len;
  sect_t sect[16];
  size_t nsect;
} seed_t;

static void add_section(buf_t *b, const uint8_t tag[4], const uint8_t *payload, size_t len) {
  uint8_t h[16];
  memcpy(h, tag, 4);
  put64(h + 4, len);
  put32(h + 12, crc32(crc32(0, h, 12), payload, len));
  buf_put(b, h, 16);
  buf_put(b, payload, len);
}

/* ---- mutations ----------------------------------------------------------------------------- */

static const seed_t *seeds;
static size_t nseeds;

static void insert_at(buf_t *b, size_t at, const uint8_t *p, size_t n) {
  buf_need(b, n);
  memmove(b->p + at + n, b->p + at, b->len - at);
  memcpy(b->p + at, p, n);
  b->len += n;
}

static void mutate(buf_t *b) {
  size_t at = below(b->len + 1);
  switch (below(9)) {
    case 0: /* flip a bit */
      if (b->len) b->p[below(b->len)] ^= (uint8_t)(1u << below(8));
      break;
    case 1: { /* set a byte */
      static const uint8_t interesting[] = {0, 0xff, 0x7f, 0x80, 1, 0xfe};
      if (b->len)
        b->p[below(b->len)] = below(2) ? interesting[below(sizeof interesting)] : (uint8_t)rnd();
      break;
    }
    case 2: /* truncate */
      b->len = below(b->len + 1);
      break;
    case 3: { /* splice a chunk of a seed over the buffer */
      const seed_t *sd = &seeds[below(nseeds)];
      size_t from = below(sd->len), n = below(sd->len - from + 1);
      if (n > 64 && below(2)) n = below(64);
      if (at + n > b->len) buf_need(b, at + n - b->len), b->len = at + n;
      memmove(b->p + at, sd->p + from, n);
      break;
    }
    case 4: { /* insert a large varint */
      uint8_t v[16];
      size_t n;
      switch (below(4)) {
        case 0: n = put_varint(v, rnd()); break;
        case 1: n = put_varint(v, (uint64_t)1 << (32 + below(32))); break;
        case 2: memset(v, 0xff, 10), n = 10; break; /* past 64 bits */
        default: memset(v, 0x80, 11), v[10] = 1, n = 11; break; /* overlong */
      }
      insert_at(b, at, v, n);
      break;
    }
    case 5: { /* overwrite with a large varint */
      uint8_t v[10];
      size_t n = put_varint(v, below(2) ? UINT32_MAX + (uint64_t)below(3) : rnd() >> below(64));
      if (at + n > b->len) buf_need(b, at + n - b->len), b->len = at + n;
      memcpy(b->p + at, v, n);
      break;
    }
    case 6: { /* delete a range */
      size_t n = below(b->len - at + 1);
      if (n > 16 && below(2)) n = below(16);
      memmove(b->p + at, b->p + at + n, b->len - at - n);
      b->len -= n;
      break;
    }
    case 7: { /* duplicate a range */
      size_t from = below(b->len + 1), n = below(b->len - from + 1);
      if (n > 32) n = below(32);
      uint8_t tmp[32];
      memcpy(tmp, b->p + from, n);
      insert_at(b, at, tmp, n);
      break;
    }
    default: /* a small value where a count or index was */
      if (b->len) b->p[below(b->len)] = (uint8_t)below(4);
      break;
  }
}

enum { MODE_RAW, MODE_CRC, MODE_STRUCT, NMODES };
static const char *const mode_names[NMODES] = {"raw", "crc-fixed", "structural"};

/* Build the input of one iteration into `out`. */
static void make_input(buf_t *out, int mode) {
  const seed_t *sd = &seeds[below(nseeds)];
  out->len = 0;
  int nmut = 1 + (int)below(4);
  if (mode != MODE_STRUCT) {
    buf_put(out, sd->p, sd->len);
    for (int i = 0; i < nmut; i++) mutate(out);
    if (mode == MODE_CRC) fix_crcs(out->p, out->len);
    return;
  }
  /* structural: sections with fresh lengths and CRCs */
  sect_t sect[20];
  size_t n = sd->nsect;
  memcpy(sect, sd->sect, n * sizeof *sect);
  buf_t payload = {0};
  size_t victim = below(n);
  int fix_end = below(8) != 0;
  switch (below(8)) {
    case 0: /* drop a section */
      memmove(&sect[victim], &sect[victim + 1], (n - victim - 1) * sizeof *sect);
      n--;
      break;
    case 1: /* repeat one */
      memmove(&sect[victim + 1], &sect[victim], (n - victim) * sizeof *sect);
      n++;
      break;
    case 2: { /* swap two */
      size_t other = below(n);
      sect_t t = sect[victim];
      sect[victim] = sect[other];
      sect[other] = t;
      break;
    }
    case 3: /* an unknown section somewhere */
      memmove(&sect[victim + 1], &sect[victim], (n - victim) * sizeof *sect);
      n++;
      memcpy(sect[victim].tag, below(2) ? "XTRA" : "\0\x01\x02\x03", 4);
      sect[victim].payload = sd->p;
      sect[victim].len = below(40);
      break;
    default: /* mutate one payload */
      buf_put(&payload, sect[victim].payload, sect[victim].len);
      for (int i = 0; i < nmut; i++) mutate(&payload);
      sect[victim].payload = payload.p;
      sect[victim].len = payload.len;
      if (!memcmp(sect[victim].tag, "END ", 4)) fix_end = 0;
      break;
  }
  buf_put(out, sd->p, 16);
  for (size_t i = 0; i < n; i++) {
    uint8_t endp[10];
    if (fix_end && !memcmp(sect[i].tag, "END ", 4)) {
      add_section(out, sect[i].tag, endp, put_varint(endp, i));
      continue;
    }
    add_section(out, sect[i].tag, sect[i].payload, sect[i].len);
  }
  free(payload.p);
}

static void make_seed(seed_t *sd, refgc_snapshot_t *s) {
  sd->p = write_mem(s, &sd->len);
  refgc_snapshot_free(s);
  size_t off = 16;
  sd->nsect = 0;
  while (off < sd->len && sd->nsect < 16) {
    sect_t *x = &sd->sect[sd->nsect++];
    memcpy(x->tag, sd->p + off, 4);
    x->len = (size_t)get64(sd->p + off + 4);
    x->payload = sd->p + off + 16;
    off += 16 + x->len;
  }
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int run_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    perror(path);
    return 1;
  }
  buf_t b = {0};
  uint8_t chunk[65536];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) buf_put(&b, chunk, n);
  fclose(f);
  LLVMFuzzerTestOneInput(b.p, b.len);
  printf("%s: %zu bytes: %s\n", path, b.len,
         last_outcome ? refgc_snapshot_error() : "loaded, invariants hold, round-trips");
  free(b.p);
  return 0;
}

int main(int argc, char **argv) {
  long iterations = 200000;
  double seconds = 0;
  uint64_t seed = (uint64_t)time(NULL) ^ ((uint64_t)clock() << 20);
  const char *seeds_dir = NULL;
  int files = 0, rc = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--iterations") && i + 1 < argc)
      iterations = strtol(argv[++i], NULL, 0);
    else if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
      seconds = strtod(argv[++i], NULL);
    else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
      seed = strtoull(argv[++i], NULL, 0);
    else if (!strcmp(argv[i], "--write-seeds") && i + 1 < argc)
      seeds_dir = argv[++i];
    else if (argv[i][0] == '-') {
      fprintf(stderr, "usage: %s [--iterations N] [--seconds S] [--seed N] [--write-seeds DIR] "
              "[FILE ...]\n", argv[0]);
      return 2;
    } else {
      rc |= run_file(argv[i]);
      files++;
    }
  }
  if (files) return rc;

  rng_state = 12345; /* the seeds are the same on every run */
  static seed_t seed_store[3];
  make_seed(&seed_store[0], seed_snapshot(6, 5));
  make_seed(&seed_store[1], seed_snapshot(0, 0));
  make_seed(&seed_store[2], seed_snapshot(1, 40));
  seeds = seed_store;
  nseeds = 3;
  for (size_t i = 0; i < nseeds; i++) { /* the seeds themselves load */
    LLVMFuzzerTestOneInput(seeds[i].p, seeds[i].len);
    if (last_outcome) {
      fprintf(stderr, "seed %zu does not load: %s\n", i, refgc_snapshot_error());
      return 1;
    }
  }
  if (seeds_dir) {
    for (size_t i = 0; i < nseeds; i++) {
      char path[4096];
      snprintf(path, sizeof path, "%s/seed%zu.rgc", seeds_dir, i);
      FILE *f = fopen(path, "wb");
      if (!f || fwrite(seeds[i].p, 1, seeds[i].len, f) != seeds[i].len || fclose(f) != 0) {
        perror(path);
        return 1;
      }
    }
    printf("wrote %zu seeds to %s\n", nseeds, seeds_dir);
    return 0;
  }

  printf("fuzz_snapshot: seed %llu (replay with --seed %llu), %ld iterations%s\n",
         (unsigned long long)seed, (unsigned long long)seed, iterations,
         seconds > 0 ? " or the time limit" : "");
  fflush(stdout);
  rng_state = seed;
  long tally[NMODES][4] = {{0}};
  buf_t in = {0};
  double start = now_s();
  long done = 0;
  for (; done < iterations; done++) {
    if (seconds > 0 && (done & 255) == 0 && now_s() - start > seconds) break;
    int mode = (int)(done % NMODES);
    make_input(&in, mode);
    /* an exact-size copy, so that a read past the end is caught by ASan */
    uint8_t *exact = xmalloc(in.len);
    if (in.len) memcpy(exact, in.p, in.len);
    LLVMFuzzerTestOneInput(exact, in.len);
    free(exact);
    tally[mode][last_outcome]++;
    if (mode == MODE_RAW && last_outcome == 0) { /* the CRCs cover every byte after the
                                                     header: only an unchanged seed loads */
      int same = 0;
      for (size_t i = 0; i < nseeds; i++)
        same |= in.len == seeds[i].len && !memcmp(in.p, seeds[i].p, in.len);
      if (!same) {
        fprintf(stderr, "fuzz_snapshot: a changed file loaded without re-sealing (iteration %ld)\n",
                done);
        abort();
      }
    }
  }
  free(in.p);
  printf("%ld inputs in %.1f s\n", done, now_s() - start);
  for (int m = 0; m < NMODES; m++)
    printf("  %-10s  loaded %7ld  CRC mismatch %7ld  truncated %7ld  other errors %7ld\n",
           mode_names[m], tally[m][0], tally[m][1], tally[m][2], tally[m][3]);
  for (size_t i = 0; i < nseeds; i++) free(seed_store[i].p);
  return 0;
}

#endif /* REFGC_LIBFUZZER */
