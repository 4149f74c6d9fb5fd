/* refgc — the snapshot file format (src/snapshot_io.c, docs/snapshot-format.md): every saved
 * field round-trips exactly; the loader refuses, with a message naming the file, the section
 * and the offset, every truncation, every flipped byte, forged counts and indexes, bad magic,
 * newer versions, missing, repeated and extra sections; unknown sections are skipped.
 *
 * Snapshots are built in memory with random but valid contents (every section populated, the
 * extreme values of every field), written to a memory buffer and read back. Files are taken
 * apart into sections and put back together here with an independent CRC-32, so that a test
 * can change one payload and still get past the CRC to the check it wants to reach.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "snapshot.h"
#include "test.h"

/* ---- building snapshots ------------------------------------------------------------------- */

__attribute__((noinline)) static void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) abort();
  return p;
}

static uint64_t rand_u64(test_rng_t *r) {
  switch (test_below(r, 5)) {
    case 0: return test_below(r, 128);
    case 1: return test_below(r, 1u << 20);
    case 2: return UINT64_MAX - test_below(r, 3);
    case 3: return (uint64_t)1 << test_below(r, 64);
    default: return test_rand(r);
  }
}
static uint32_t rand_u32(test_rng_t *r) { return (uint32_t)rand_u64(r); }
static double rand_double(test_rng_t *r) {
  static const double special[] = {0.0, -0.0, 1.5, 1e-300, 1.7e9, 3.25e-3, INFINITY};
  if (test_below(r, 3) == 0) return special[test_below(r, sizeof special / sizeof *special)];
  uint64_t u = test_rand(r);
  double d;
  memcpy(&d, &u, sizeof d); /* any bit pattern, NaNs included: compared bit for bit */
  return d;
}

/* A snapshot with every section populated; `k` sets the sizes (0: the smallest that still has
 * one of everything). */
static refgc_snapshot_t *build(test_rng_t *r, size_t k) {
  if (k > (1u << 24)) k = 1u << 24; /* (and tells the compiler the sizes cannot wrap) */
  refgc_snapshot_t *s = refgc__snapshot_new();
  ASSERT(s != NULL);
  ASSERT_EQ(refgc__snapshot_intern(s, ""), 0);
  char buf[400];
  size_t nstr = 8 + k * 4;
  for (size_t i = 0; i < nstr; i++) {
    switch (i % 4) {
      case 0: snprintf(buf, sizeof buf, "/usr/lib/libthing%zu.so.1", i); break;
      case 1: snprintf(buf, sizeof buf, "function_%zu \xc3\xa9\xe2\x82\xac", i); break;
      case 2:
        memset(buf, 'a' + (int)(i % 26), 300);
        buf[300] = 0;
        snprintf(buf + 290, 30, "%zu.c", i);
        break;
      default: snprintf(buf, sizeof buf, "root name %zu", i); break;
    }
    ASSERT_NE(refgc__snapshot_intern(s, buf), UINT32_MAX);
  }
  uint32_t ns = (uint32_t)s->nstrings;

  s->version = 1;
  s->time = 1.7e9 + 0.25;
  s->uptime = rand_double(r);
  s->pid = rand_u64(r);
  s->program = 1 + (uint32_t)test_below(r, ns - 1);
  s->frames_limit = (int32_t)test_below(r, 65);
  s->sample_bytes = rand_u64(r);
  s->traced_current = rand_u64(r);
  s->traced_peak = UINT64_MAX;
  s->heap_in_use = rand_u64(r);
  s->heap_committed = rand_u64(r);
  s->rss = rand_u64(r);
  s->tracer_memory = rand_u64(r);
  for (int g = 0; g < 3; g++) {
    s->gc_collections[g] = rand_u64(r);
    s->gc_collected[g] = rand_u64(r);
    s->gc_uncollectable[g] = rand_u64(r);
  }
  s->gc_pause_total = rand_double(r);
  s->gc_pause_max = rand_double(r);
  s->resolved = true;
  s->local = true;

  s->nframes = 3 + k * 3;
  s->frames = xmalloc(s->nframes * sizeof *s->frames);
  static const int32_t lines[] = {0, 1, -1, INT32_MAX, INT32_MIN, 4242};
  for (size_t i = 0; i < s->nframes; i++) {
    snap_frame_t *f = &s->frames[i];
    f->address = rand_u64(r);
    f->offset = rand_u64(r);
    f->module = (uint32_t)test_below(r, ns);
    f->function = (uint32_t)test_below(r, ns);
    f->file = (uint32_t)test_below(r, ns);
    f->line = i < 6 ? lines[i] : (int32_t)test_rand(r);
  }

  s->ntracebacks = 2 + k * 2;
  s->ntb_frames = 5 + k * 8;
  s->tb_start = xmalloc(s->ntracebacks * sizeof(uint32_t));
  s->tb_len = xmalloc(s->ntracebacks * sizeof(uint32_t));
  s->tb_frames = xmalloc(s->ntb_frames * sizeof(uint32_t));
  for (size_t i = 0; i < s->ntb_frames; i++)
    s->tb_frames[i] = (uint32_t)test_below(r, s->nframes);
  for (size_t i = 0; i < s->ntracebacks; i++) {
    /* any window, overlapping or empty (the last one ends at the end) */
    uint32_t start = (uint32_t)test_below(r, s->ntb_frames + 1);
    uint32_t len = (uint32_t)test_below(r, s->ntb_frames - start + 1);
    if (i == 0) start = 0, len = 0;
    if (i == s->ntracebacks - 1) len = (uint32_t)s->ntb_frames - start;
    s->tb_start[i] = start;
    s->tb_len[i] = len;
  }

  s->ntypes = 2 + k;
  s->type_name = xmalloc(s->ntypes * sizeof(uint32_t));
  s->type_name[0] = 0;
  for (size_t i = 1; i < s->ntypes; i++) s->type_name[i] = (uint32_t)test_below(r, ns);

  s->ntraces = 4 + k * 50;
  s->traces = xmalloc(s->ntraces * sizeof *s->traces);
  for (size_t i = 0; i < s->ntraces; i++) {
    s->traces[i].size = i == 0 ? UINT64_MAX : rand_u64(r);
    s->traces[i].traceback = (uint32_t)test_below(r, s->ntracebacks);
    s->traces[i].type = (uint32_t)test_below(r, s->ntypes);
  }

  s->ntype_counts = s->ntypes;
  s->type_counts = xmalloc(s->ntype_counts * sizeof *s->type_counts);
  memset(s->type_counts, 0xa5, s->ntype_counts * sizeof *s->type_counts); /* padding differs */
  for (size_t i = 0; i < s->ntype_counts; i++) {
    s->type_counts[i].type = (uint32_t)(s->ntypes - 1 - i);
    s->type_counts[i].count = rand_u64(r);
    s->type_counts[i].bytes = rand_u64(r);
  }

  s->nseries = 2 + k * 5;
  s->series = xmalloc(s->nseries * sizeof *s->series);
  for (size_t i = 0; i < s->nseries; i++) {
    s->series[i] = (refgc_series_point_t){
        .t = rand_double(r), .rss = rand_u64(r), .traced = rand_u64(r),
        .in_use = rand_u64(r), .committed = rand_u64(r)};
  }

  s->nnodes = 3 + k * 10;
  s->nedges = 4 + k * 25;
  s->nodes = xmalloc(s->nnodes * sizeof *s->nodes);
  s->edges = xmalloc(s->nedges * sizeof *s->edges);
  uint32_t fe = (uint32_t)test_below(r, 2); /* the first node's edges need not start at 0 */
  uint64_t base = 0x7f0000000000ull;
  for (size_t i = 0; i < s->nnodes; i++) {
    refgc_node_t *n = &s->nodes[i];
    n->address = i == 1 ? 0 : i == 2 ? UINT64_MAX : base + test_below(r, 1u << 24) * 16;
    n->type = (uint32_t)test_below(r, s->ntypes);
    n->flags = i == 0 ? UINT32_MAX : (uint32_t)test_below(r, 64);
    n->size = rand_u64(r);
    n->refcnt = rand_u32(r);
    n->traceback = test_below(r, 3) == 0 ? UINT32_MAX : (uint32_t)test_below(r, s->ntracebacks);
    n->first_edge = fe;
    n->root_name = (uint32_t)test_below(r, ns);
    n->retained = rand_u64(r);
    fe += (uint32_t)test_below(r, s->nedges - fe + 1) / 2;
  }
  static const int64_t offsets[] = {-1, 0, INT64_MIN, INT64_MAX, 8};
  for (size_t i = 0; i < s->nedges; i++) {
    s->edges[i].to = (uint32_t)test_below(r, s->nnodes);
    s->edges[i].index = rand_u32(r);
    s->edges[i].offset = i < 5 ? offsets[i] : (int64_t)test_below(r, 4096) - 1;
  }

  s->nsuspects = 2 + k;
  s->nchains = 3 + k * 4;
  s->suspects = xmalloc(s->nsuspects * sizeof *s->suspects);
  s->chains = xmalloc(s->nchains * sizeof(uint32_t));
  for (size_t i = 0; i < s->nchains; i++) s->chains[i] = (uint32_t)test_below(r, s->nnodes);
  for (size_t i = 0; i < s->nsuspects; i++) {
    snap_suspect_t *u = &s->suspects[i];
    u->cls = 1 + (uint32_t)test_below(r, 3);
    u->node = (uint32_t)test_below(r, s->nnodes);
    u->unexplained = rand_u64(r);
    u->retained = rand_u64(r);
    u->retained_count = rand_u64(r);
    u->chain_start = (uint32_t)test_below(r, s->nchains);
    u->chain_len = (uint32_t)test_below(r, s->nchains - u->chain_start + 1);
  }
  return s;
}

/* The smallest valid snapshot: string 0 and nothing else. */
static refgc_snapshot_t *build_empty(void) {
  refgc_snapshot_t *s = refgc__snapshot_new();
  ASSERT(s != NULL);
  ASSERT_EQ(refgc__snapshot_intern(s, ""), 0);
  s->version = 1;
  s->resolved = true;
  return s;
}

/* ---- files in memory ----------------------------------------------------------------------- */

typedef struct file_s {
  uint8_t *p;
  size_t len;
} file_t;

static file_t write_mem(refgc_snapshot_t *s) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  ASSERT(f != NULL);
  ASSERT_EQ(refgc__snapshot_write(s, f), 0);
  ASSERT_EQ(fclose(f), 0);
  return (file_t){(uint8_t *)buf, len};
}

/* An independent CRC-32 (bit by bit) to check the library's and to re-seal edited files. */
static uint32_t crc32_bitwise(uint32_t crc, const uint8_t *p, size_t n) {
  crc = ~crc;
  while (n--) {
    crc ^= *p++;
    for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0xEDB88320u & (0 - (crc & 1)));
  }
  return ~crc;
}

static uint32_t rd32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t rd64(const uint8_t *p) { return rd32(p) | (uint64_t)rd32(p + 4) << 32; }
static void wr32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void wr64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* A file taken apart: its sections' tags and payloads (copies). */
#define MAX_SECTIONS 32
typedef struct parts_s {
  size_t n;
  char tag[MAX_SECTIONS][5];
  uint8_t *payload[MAX_SECTIONS];
  size_t len[MAX_SECTIONS];
} parts_t;

static void split(const file_t *f, parts_t *out) {
  memset(out, 0, sizeof *out);
  size_t off = 16;
  while (off < f->len) {
    ASSERT(off + 16 <= f->len);
    size_t i = out->n++;
    ASSERT(i < MAX_SECTIONS);
    memcpy(out->tag[i], f->p + off, 4);
    uint64_t len = rd64(f->p + off + 4);
    ASSERT(len <= f->len - off - 16);
    /* the library's CRC is the standard one, over tag, length and payload */
    uint32_t crc = crc32_bitwise(crc32_bitwise(0, f->p + off, 12), f->p + off + 16, (size_t)len);
    ASSERT_EQ(rd32(f->p + off + 12), crc);
    out->len[i] = (size_t)len;
    out->payload[i] = xmalloc((size_t)len);
    memcpy(out->payload[i], f->p + off + 16, (size_t)len);
    off += 16 + (size_t)len;
  }
}

static void parts_free(parts_t *pt) {
  for (size_t i = 0; i < pt->n; i++) free(pt->payload[i]);
}

static int find(const parts_t *pt, const char *tag) {
  for (size_t i = 0; i < pt->n; i++)
    if (!memcmp(pt->tag[i], tag, 4)) return (int)i;
  TEST_FAIL("no section %s", tag);
}

static void set_payload(parts_t *pt, int i, const uint8_t *p, size_t n) {
  free(pt->payload[i]);
  pt->payload[i] = xmalloc(n);
  if (n) memcpy(pt->payload[i], p, n);
  pt->len[i] = n;
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
static size_t get_varint(const uint8_t *p, uint64_t *v) {
  size_t n = 0;
  *v = 0;
  do *v |= (uint64_t)(p[n] & 0x7f) << (7 * n);
  while (p[n++] & 0x80);
  return n;
}

/* Put a file back together: header (version, flags), sections with fresh lengths and CRCs;
 * `fix_end` rewrites END's count to match. */
static file_t join(const parts_t *pt, uint32_t version, uint32_t flags, int fix_end) {
  size_t total = 16;
  for (size_t i = 0; i < pt->n; i++) total += 16 + pt->len[i] + 10;
  file_t f = {xmalloc(total), 0};
  memcpy(f.p, "RGCSNAP", 8);
  wr32(f.p + 8, version);
  wr32(f.p + 12, flags);
  f.len = 16;
  for (size_t i = 0; i < pt->n; i++) {
    uint8_t endp[10];
    const uint8_t *pl = pt->payload[i];
    size_t len = pt->len[i];
    if (fix_end && !memcmp(pt->tag[i], "END ", 4)) {
      len = put_varint(endp, i);
      pl = endp;
    }
    uint8_t *h = f.p + f.len;
    memcpy(h, pt->tag[i], 4);
    wr64(h + 4, len);
    if (len) memcpy(h + 16, pl, len);
    wr32(h + 12, crc32_bitwise(crc32_bitwise(0, h, 12), h + 16, len));
    f.len += 16 + len;
  }
  return f;
}

/* Replace the varint at the start of section `tag`'s payload (after `skip` varints) by `v`. */
static void set_leading_varint(parts_t *pt, const char *tag, int skip, uint64_t v) {
  int i = find(pt, tag);
  uint8_t *old = pt->payload[i];
  size_t at = 0;
  uint64_t dummy;
  for (int k = 0; k < skip; k++) at += get_varint(old + at, &dummy);
  size_t oldn = get_varint(old + at, &dummy);
  uint8_t *p = xmalloc(pt->len[i] + 10);
  memcpy(p, old, at);
  size_t n = put_varint(p + at, v);
  memcpy(p + at + n, old + at + oldn, pt->len[i] - at - oldn);
  set_payload(pt, i, p, pt->len[i] - oldn + n);
  free(p);
}

/* ---- comparing ----------------------------------------------------------------------------- */

static int same_double(double a, double b) { return !memcmp(&a, &b, sizeof a); }

#define SAME(field) ASSERT_EQ(a->field, b->field)
#define SAMEA(arr, i, field) \
  do { if (a->arr[i].field != b->arr[i].field) TEST_FAIL(#arr "[%zu]." #field " differs", i); } while (0)
#define SAMED(field) ASSERT(same_double(a->field, b->field))

static void compare(const refgc_snapshot_t *a, const refgc_snapshot_t *b) {
  SAME(version);
  SAMED(time);
  SAMED(uptime);
  SAME(pid);
  SAME(program);
  SAME(frames_limit);
  SAME(sample_bytes);
  ASSERT(a->traced_current == b->traced_current && a->traced_peak == b->traced_peak);
  ASSERT(a->heap_in_use == b->heap_in_use && a->heap_committed == b->heap_committed);
  ASSERT(a->rss == b->rss && a->tracer_memory == b->tracer_memory);
  for (int g = 0; g < 3; g++) {
    ASSERT(a->gc_collections[g] == b->gc_collections[g]);
    ASSERT(a->gc_collected[g] == b->gc_collected[g]);
    ASSERT(a->gc_uncollectable[g] == b->gc_uncollectable[g]);
  }
  SAMED(gc_pause_total);
  SAMED(gc_pause_max);
  SAME(nstrings);
  for (size_t i = 0; i < a->nstrings; i++)
    if (strcmp(a->strings[i], b->strings[i])) TEST_FAIL("string %zu differs", i);
  SAME(nframes);
  for (size_t i = 0; i < a->nframes; i++) {
    SAMEA(frames, i, address);
    SAMEA(frames, i, offset);
    SAMEA(frames, i, module);
    SAMEA(frames, i, function);
    SAMEA(frames, i, file);
    SAMEA(frames, i, line);
  }
  SAME(ntracebacks);
  SAME(ntb_frames);
  for (size_t i = 0; i < a->ntracebacks; i++)
    ASSERT(a->tb_start[i] == b->tb_start[i] && a->tb_len[i] == b->tb_len[i]);
  for (size_t i = 0; i < a->ntb_frames; i++) ASSERT(a->tb_frames[i] == b->tb_frames[i]);
  SAME(ntypes);
  for (size_t i = 0; i < a->ntypes; i++) ASSERT(a->type_name[i] == b->type_name[i]);
  SAME(ntraces);
  for (size_t i = 0; i < a->ntraces; i++) {
    SAMEA(traces, i, size);
    SAMEA(traces, i, traceback);
    SAMEA(traces, i, type);
  }
  SAME(ntype_counts);
  for (size_t i = 0; i < a->ntype_counts; i++) {
    SAMEA(type_counts, i, type);
    SAMEA(type_counts, i, count);
    SAMEA(type_counts, i, bytes);
  }
  SAME(nseries);
  for (size_t i = 0; i < a->nseries; i++) {
    ASSERT(same_double(a->series[i].t, b->series[i].t));
    SAMEA(series, i, rss);
    SAMEA(series, i, traced);
    SAMEA(series, i, in_use);
    SAMEA(series, i, committed);
  }
  SAME(nnodes);
  for (size_t i = 0; i < a->nnodes; i++) {
    SAMEA(nodes, i, address);
    SAMEA(nodes, i, type);
    SAMEA(nodes, i, flags);
    SAMEA(nodes, i, size);
    SAMEA(nodes, i, refcnt);
    SAMEA(nodes, i, traceback);
    SAMEA(nodes, i, first_edge);
    SAMEA(nodes, i, root_name);
    SAMEA(nodes, i, retained);
  }
  SAME(nedges);
  for (size_t i = 0; i < a->nedges; i++) {
    SAMEA(edges, i, to);
    SAMEA(edges, i, index);
    SAMEA(edges, i, offset);
  }
  SAME(nsuspects);
  for (size_t i = 0; i < a->nsuspects; i++) {
    SAMEA(suspects, i, cls);
    SAMEA(suspects, i, node);
    SAMEA(suspects, i, unexplained);
    SAMEA(suspects, i, retained);
    SAMEA(suspects, i, retained_count);
    SAMEA(suspects, i, chain_start);
    SAMEA(suspects, i, chain_len);
  }
  SAME(nchains);
  for (size_t i = 0; i < a->nchains; i++) ASSERT(a->chains[i] == b->chains[i]);
}

/* Load `f`; it must fail with a message naming the file that contains `needle`. */
static void expect_fail(const file_t *f, const char *needle) {
  refgc_snapshot_t *s = refgc__snapshot_read(f->p, f->len, "snap.rgc");
  if (s) {
    refgc_snapshot_free(s);
    TEST_FAIL("loaded a bad file (expected \"%s\")", needle);
  }
  ASSERT_EQ(refgc_last_error(), REFGC_EFORMAT);
  ASSERT_STR_CONTAINS(refgc_snapshot_error(), "snap.rgc: ");
  ASSERT_STR_CONTAINS(refgc_snapshot_error(), needle);
}

static refgc_snapshot_t *expect_load(const file_t *f) {
  refgc_snapshot_t *s = refgc__snapshot_read(f->p, f->len, "snap.rgc");
  if (!s) TEST_FAIL("load failed: %s", refgc_snapshot_error());
  return s;
}

/* ---- round trips --------------------------------------------------------------------------- */

TEST(crc32_is_the_standard_one) {
  ASSERT_EQ(crc32_bitwise(0, (const uint8_t *)"123456789", 9), 0xCBF43926u);
  /* and the library's agrees on a real file: split() checks every section's CRC */
  test_rng_t r = {test_seed()};
  refgc_snapshot_t *s = build(&r, 20);
  file_t f = write_mem(s);
  parts_t pt;
  split(&f, &pt);
  ASSERT_EQ(pt.n, 12);
  static const char *order[] = {"STRS", "META", "FRMS", "TBCK", "TYPE", "TRCS",
                                "TCNT", "SERS", "NODE", "EDGE", "SUSP", "END "};
  for (int i = 0; i < 12; i++) ASSERT(!memcmp(pt.tag[i], order[i], 4));
  ASSERT(!memcmp(f.p, "RGCSNAP\0\x01\0\0\0\0\0\0\0", 16));
  parts_free(&pt);
  free(f.p);
  refgc_snapshot_free(s);
}

TEST(roundtrip_every_field) {
  test_rng_t r = {test_seed()};
  for (size_t k = 0; k < 40; k++) {
    refgc_snapshot_t *s = build(&r, k * k);
    file_t f = write_mem(s);
    refgc_snapshot_t *t = expect_load(&f);
    compare(s, t);
    ASSERT(t->resolved);
    ASSERT(!t->local);
    ASSERT(t->pub_traces == NULL && t->pub_frames == NULL);
    ASSERT(t->pub_type_counts == NULL && t->pub_suspects == NULL);
    /* writing what was loaded gives the same bytes */
    file_t g = write_mem(t);
    ASSERT_EQ(g.len, f.len);
    ASSERT(!memcmp(g.p, f.p, f.len));
    free(g.p);
    free(f.p);
    refgc_snapshot_free(t);
    refgc_snapshot_free(s);
  }
}

TEST(roundtrip_empty) {
  refgc_snapshot_t *s = build_empty();
  file_t f = write_mem(s);
  refgc_snapshot_t *t = expect_load(&f);
  compare(s, t);
  ASSERT_EQ(t->nstrings, 1);
  ASSERT_EQ(t->strings[0][0], 0);
  ASSERT(t->traces == NULL && t->nodes == NULL && t->frames == NULL);
  printf("# empty snapshot: %zu bytes\n", f.len);
  free(f.p);
  refgc_snapshot_free(t);
  refgc_snapshot_free(s);
}

TEST(compact) {
  /* a typical trace (a small size, a traceback and a type below 128) takes 4 bytes or less */
  test_rng_t r = {test_seed()};
  refgc_snapshot_t *s = build_empty();
  s->ntypes = 1;
  s->type_name = xmalloc(sizeof(uint32_t));
  s->type_name[0] = 0;
  s->ntracebacks = 100;
  s->tb_start = calloc(100, sizeof(uint32_t));
  s->tb_len = calloc(100, sizeof(uint32_t));
  s->ntraces = 100000;
  s->traces = xmalloc(s->ntraces * sizeof *s->traces);
  for (size_t i = 0; i < s->ntraces; i++)
    s->traces[i] = (snap_trace_t){.size = 1 + test_below(&r, 4000),
                                  .traceback = (uint32_t)test_below(&r, 100), .type = 0};
  file_t f = write_mem(s);
  printf("# 100000 traces: %zu bytes\n", f.len);
  ASSERT_LE(f.len, 100000 * 4 + 1000);
  refgc_snapshot_t *t = expect_load(&f);
  compare(s, t);
  refgc_snapshot_free(t);
  free(f.p);
  refgc_snapshot_free(s);
}

/* ---- damaged files ------------------------------------------------------------------------- */

TEST(truncated_at_every_length) {
  test_rng_t r = {test_seed()};
  refgc_snapshot_t *s = build(&r, 2);
  file_t f = write_mem(s);
  printf("# %zu bytes, every truncation\n", f.len);
  for (size_t len = 0; len < f.len; len++) {
    /* a copy of exactly `len` bytes, so ASan sees any read past the end */
    file_t g = {xmalloc(len), len};
    memcpy(g.p, f.p, len);
    expect_fail(&g, "truncated file");
    free(g.p);
  }
  /* the messages say where */
  file_t g = {f.p, 10};
  expect_fail(&g, "the header needs 16 bytes at offset 0, only 10 left");
  g.len = 16;
  expect_fail(&g, "no END section (the file ends at offset 16, after the header)");
  g.len = 20;
  expect_fail(&g, "a section header needs 16 bytes at offset 16, only 4 left");
  g.len = 40;
  expect_fail(&g, "section STRS needs");
  expect_fail(&g, "at offset 32, only 8 left");
  free(f.p);
  refgc_snapshot_free(s);
}

TEST(every_flipped_byte_is_caught) {
  test_rng_t r = {test_seed()};
  refgc_snapshot_t *s = build(&r, 3);
  file_t f = write_mem(s);
  size_t n = f.len, step = 1;
  if (n > 20000) step = n / 2000; /* large files: a sample */
  printf("# %zu bytes, flipping every %zu-th byte (seed %llu)\n", n, step,
         (unsigned long long)test_seed());
  for (size_t i = 0; i < n; i += step) {
    size_t at = step == 1 ? i : (size_t)test_below(&r, n);
    uint8_t x = (uint8_t)(1 + test_below(&r, 255));
    f.p[at] ^= x;
    refgc_snapshot_t *t = refgc__snapshot_read(f.p, f.len, "snap.rgc");
    if (t) TEST_FAIL("byte %zu ^ 0x%02x was not caught", at, x);
    ASSERT_STR_CONTAINS(refgc_snapshot_error(), "snap.rgc: ");
    f.p[at] ^= x;
  }
  /* every single bit of the headers and the first payload bytes */
  for (size_t i = 0; i < 64 * 8; i++) {
    f.p[i / 8] ^= (uint8_t)(1u << (i % 8));
    refgc_snapshot_t *t = refgc__snapshot_read(f.p, f.len, "snap.rgc");
    if (t) TEST_FAIL("bit %zu was not caught", i);
    f.p[i / 8] ^= (uint8_t)(1u << (i % 8));
  }
  refgc_snapshot_t *t = expect_load(&f);
  refgc_snapshot_free(t);
  f.p[100] ^= 1;
  expect_fail(&f, "CRC mismatch");
  free(f.p);
  refgc_snapshot_free(s);
}

TEST(magic_version_flags) {
  test_rng_t r = {test_seed()};
  refgc_snapshot_t *s = build(&r, 1);
  file_t f = write_mem(s);
  f.p[0] = 'X';
  expect_fail(&f, "snap.rgc: not a refgc snapshot (bad magic at offset 0)");
  f.p[0] = 'R';
  f.p[7] = '!';
  expect_fail(&f, "bad magic");
  f.p[7] = 0;
  file_t g = {(uint8_t *)"GIF89a", 6};
  expect_fail(&g, "bad magic");
  g.len = 0;
  expect_fail(&g, "truncated file");
  expect_fail(&g, "snap.rgc: ");
  wr32(f.p + 8, 2);
  expect_fail(&f, "snap.rgc: written by a newer refgc (format 2, this library reads up to 1)");
  wr32(f.p + 8, 0xffffffffu);
  expect_fail(&f, "written by a newer refgc (format 4294967295, this library reads up to 1)");
  wr32(f.p + 8, 0);
  expect_fail(&f, "format version 0");
  wr32(f.p + 8, 1);
  wr32(f.p + 12, 0x100);
  expect_fail(&f, "unknown header flags 0x00000100");
  wr32(f.p + 12, 0);
  refgc_snapshot_t *t = expect_load(&f);
  refgc_snapshot_free(t);
  ASSERT(refgc__snapshot_read(NULL, 0, NULL) == NULL);
  ASSERT_STR_CONTAINS(refgc_snapshot_error(), "(memory): truncated");
  free(f.p);
  refgc_snapshot_free(s);
}

TEST(sections_unknown_missing_twice_trailing) {
  test_rng_t r = {test_seed()};
  refgc_snapshot_t *s = build(&r, 4);
  file_t f = write_mem(s);
  parts_t pt;
  split(&f, &pt);

  /* an unknown section is skipped, wherever it is */
  for (size_t where = 0; where < pt.n; where++) {
    parts_t q = pt;
    memmove(&q.tag[where + 1], &q.tag[where], (pt.n - where) * sizeof q.tag[0]);
    memmove(&q.payload[where + 1], &q.payload[where], (pt.n - where) * sizeof q.payload[0]);
    memmove(&q.len[where + 1], &q.len[where], (pt.n - where) * sizeof q.len[0]);
    q.n++;
    memcpy(q.tag[where], "XTRA", 5);
    q.payload[where] = (uint8_t *)"\x05\xff\xff garbage, never parsed";
    q.len[where] = 24;
    file_t g = join(&q, 1, 0, 1);
    refgc_snapshot_t *t = expect_load(&g);
    compare(s, t);
    refgc_snapshot_free(t);
    free(g.p);
    /* ... but it counts: END must say so */
    g = join(&q, 1, 0, 0);
    expect_fail(&g, "section END, offset");
    expect_fail(&g, "should hold 11 sections before END, it holds 12");
    free(g.p);
  }

  /* a missing section */
  for (size_t drop = 0; drop + 1 < pt.n; drop++) {
    parts_t q = pt;
    memmove(&q.tag[drop], &q.tag[drop + 1], (pt.n - drop - 1) * sizeof q.tag[0]);
    memmove(&q.payload[drop], &q.payload[drop + 1], (pt.n - drop - 1) * sizeof q.payload[0]);
    memmove(&q.len[drop], &q.len[drop + 1], (pt.n - drop - 1) * sizeof q.len[0]);
    q.n--;
    file_t g = join(&q, 1, 0, 1);
    char want[64];
    snprintf(want, sizeof want, "section %.4s is missing", pt.tag[drop]);
    expect_fail(&g, want);
    free(g.p);
  }

  /* a section twice */
  {
    parts_t q = pt;
    q.n = 13;
    memcpy(q.tag[12], q.tag[11], 5);
    q.payload[12] = q.payload[11];
    q.len[12] = q.len[11];
    memcpy(q.tag[11], q.tag[5], 5);
    q.payload[11] = q.payload[5];
    q.len[11] = q.len[5];
    file_t g = join(&q, 1, 0, 1);
    expect_fail(&g, "section TRCS at offset");
    expect_fail(&g, "comes twice or out of order (after SUSP)");
    free(g.p);
  }

  /* out of order */
  {
    parts_t q = pt;
    memcpy(q.tag[0], pt.tag[1], 5), q.payload[0] = pt.payload[1], q.len[0] = pt.len[1];
    memcpy(q.tag[1], pt.tag[0], 5), q.payload[1] = pt.payload[0], q.len[1] = pt.len[0];
    file_t g = join(&q, 1, 0, 1);
    expect_fail(&g, "section STRS is missing (found META at offset 16 instead)");
    free(g.p);
  }

  /* bytes after END; a section with bytes left over; END not last */
  {
    file_t g = {xmalloc(f.len + 3), f.len + 3};
    memcpy(g.p, f.p, f.len);
    memcpy(g.p + f.len, "abc", 3);
    expect_fail(&g, "3 bytes of unexpected data after the END section");
    free(g.p);
    parts_t q = pt;
    int m = find(&q, "META");
    uint8_t *p = xmalloc(q.len[m] + 1);
    memcpy(p, q.payload[m], q.len[m]);
    p[q.len[m]] = 0;
    q.payload[m] = p;
    q.len[m]++;
    g = join(&q, 1, 0, 1);
    expect_fail(&g, "section META, offset");
    expect_fail(&g, "1 unexpected bytes at the end of the section");
    free(g.p);
    free(p);
  }
  parts_free(&pt);
  free(f.p);
  refgc_snapshot_free(s);
}

TEST(forged_counts) {
  test_rng_t r = {test_seed()};
  refgc_snapshot_t *s = build(&r, 5);
  file_t f = write_mem(s);
  static const struct {
    const char *tag;
    int skip;
    const char *what;
  } counts[] = {
      {"STRS", 0, "string count"},       {"FRMS", 0, "frame count"},
      {"TBCK", 0, "traceback count"},    {"TBCK", 1, "traceback frame count"},
      {"TYPE", 0, "type count"},         {"TRCS", 0, "trace count"},
      {"TCNT", 0, "type count count"},   {"SERS", 0, "series point count"},
      {"NODE", 0, "node count"},         {"EDGE", 0, "edge count"},
      {"SUSP", 0, "suspect count"},      {"SUSP", 1, "chain entry count"},
  };
  static const uint64_t huge[] = {UINT64_MAX, (uint64_t)1 << 60, UINT32_MAX, (uint64_t)1 << 32,
                                  1u << 20};
  for (size_t c = 0; c < sizeof counts / sizeof *counts; c++) {
    for (size_t h = 0; h < sizeof huge / sizeof *huge; h++) {
      parts_t pt;
      split(&f, &pt);
      set_leading_varint(&pt, counts[c].tag, counts[c].skip, huge[h]);
      file_t g = join(&pt, 1, 0, 1);
      char want[64];
      snprintf(want, sizeof want, "section %s, offset", counts[c].tag);
      expect_fail(&g, want);
      expect_fail(&g, counts[c].what);
      free(g.p);
      parts_free(&pt);
    }
  }
  /* the message for the bytes check is precise */
  parts_t pt;
  split(&f, &pt);
  set_leading_varint(&pt, "TRCS", 0, (uint64_t)1 << 40);
  file_t g = join(&pt, 1, 0, 1);
  expect_fail(&g, "trace count 1099511627776 needs at least 3298534883328 bytes, only");
  free(g.p);
  parts_free(&pt);
  free(f.p);
  refgc_snapshot_free(s);
}

TEST(bad_varints_and_strings) {
  test_rng_t r = {test_seed()};
  refgc_snapshot_t *s = build(&r, 1);
  file_t f = write_mem(s);
  parts_t pt;
  split(&f, &pt);
  int m = find(&pt, "EDGE");
  /* an 11-byte varint; a 10-byte one above 2^64; one cut by the section's end */
  static const struct {
    const char *bytes;
    size_t n;
    const char *msg;
  } bad[] = {
      {"\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01", 11, "varint longer than 10 bytes"},
      {"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02", 10, "varint overflows 64 bits"},
      {"\xff\xff\xff", 3, "varint runs past the end of the section"},
      {"", 0, "varint runs past the end of the section"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    parts_t q = pt;
    q.payload[m] = (uint8_t *)bad[i].bytes;
    q.len[m] = bad[i].n;
    file_t g = join(&q, 1, 0, 1);
    expect_fail(&g, bad[i].msg);
    free(g.p);
  }
  /* the largest varint is fine where 64 bits are allowed: 2^64-1 as a node size */
  ASSERT(s->nnodes > 0);
  {
    refgc_snapshot_t *t = expect_load(&f);
    refgc_snapshot_free(t);
  }
  /* strings: embedded NUL, string 0 not empty, no strings, length past the end */
  int st = find(&pt, "STRS");
  static const struct {
    const char *bytes;
    size_t n;
    const char *msg;
  } strs[] = {
      {"\x02\x00\x03\x61\x00\x62", 6, "string 1 contains a NUL byte"},
      {"\x01\x01\x61", 3, "string 0 is not \"\""},
      {"\x00", 1, "no strings"},
      {"\x02\x00\x09\x61", 4, "string 1: length 9, only 1 bytes left in the section"},
  };
  for (size_t i = 0; i < sizeof strs / sizeof *strs; i++) {
    parts_t q = pt;
    q.payload[st] = (uint8_t *)strs[i].bytes;
    q.len[st] = strs[i].n;
    file_t g = join(&q, 1, 0, 1);
    expect_fail(&g, strs[i].msg);
    expect_fail(&g, "section STRS, offset 3");
    free(g.p);
  }
  parts_free(&pt);
  free(f.p);
  refgc_snapshot_free(s);
}

/* Break one invariant of a valid snapshot, write it (the writer does not check), load. */
static void expect_invariant(refgc_snapshot_t *s, const char *msg) {
  file_t f = write_mem(s);
  expect_fail(&f, msg);
  free(f.p);
}

TEST(every_index_is_checked) {
  test_rng_t r = {test_seed()};
  refgc_snapshot_t *s = build(&r, 3);
  uint32_t v;
#define BREAK(lvalue, bad, msg)   \
  do {                            \
    v = (lvalue);                 \
    (lvalue) = (bad);             \
    expect_invariant(s, msg);     \
    (lvalue) = v;                 \
  } while (0)
  uint32_t ns = (uint32_t)s->nstrings;
  BREAK(s->program, ns, "section META");
  BREAK(s->program, ns, "program string");
  BREAK(s->frames[2].module, ns, "frame 2: module string");
  BREAK(s->frames[1].function, UINT32_MAX, "frame 1: function string 4294967295 out of range");
  BREAK(s->frames[0].file, ns + 7, "frame 0: file string");
  BREAK(s->tb_frames[3], (uint32_t)s->nframes, "section TBCK");
  BREAK(s->tb_frames[3], (uint32_t)s->nframes, "traceback frame 3: frame");
  BREAK(s->tb_start[1], (uint32_t)s->ntb_frames + 1, "traceback 1: frames");
  BREAK(s->tb_len[1], (uint32_t)s->ntb_frames + 1, "traceback 1: frames");
  BREAK(s->tb_start[1], UINT32_MAX, "traceback 1: frames");
  BREAK(s->type_name[1], ns, "type 1: name string");
  BREAK(s->type_name[0], 1, "type 0 is named");
  BREAK(s->traces[7].traceback, (uint32_t)s->ntracebacks, "trace 7: traceback");
  BREAK(s->traces[7].type, (uint32_t)s->ntypes, "trace 7: type");
  BREAK(s->type_counts[1].type, (uint32_t)s->ntypes, "type count 1: type");
  BREAK(s->nodes[4].type, (uint32_t)s->ntypes, "node 4: type");
  BREAK(s->nodes[4].traceback, (uint32_t)s->ntracebacks, "node 4: traceback");
  BREAK(s->nodes[4].root_name, ns, "node 4: root name string");
  BREAK(s->nodes[s->nnodes - 1].first_edge, (uint32_t)s->nedges + 1,
        "the last node's edges start at");
  /* a decreasing first_edge is written as a step that wraps to nearly 2^32 */
  BREAK(s->nodes[5].first_edge, s->nodes[6].first_edge + 1, "node 6: first edge");
  BREAK(s->edges[9].to, (uint32_t)s->nnodes, "edge 9: target node");
  BREAK(s->suspects[1].node, (uint32_t)s->nnodes, "suspect 1: node");
  BREAK(s->suspects[1].chain_len, (uint32_t)s->nchains + 1, "suspect 1: chain");
  BREAK(s->suspects[1].chain_start, UINT32_MAX, "suspect 1: chain");
  BREAK(s->chains[2], (uint32_t)s->nnodes, "chain entry 2: node");
#undef BREAK
  file_t f = write_mem(s);
  refgc_snapshot_t *t = expect_load(&f);
  compare(s, t);
  refgc_snapshot_free(t);
  free(f.p);
  refgc_snapshot_free(s);
}

TEST(write_errors) {
  test_rng_t r = {test_seed()};
  refgc_snapshot_t *s = build(&r, 30);
  FILE *f = fopen("/dev/full", "wb");
  if (f) { /* every write fails with ENOSPC */
    errno = 0;
    ASSERT_EQ(refgc__snapshot_write(s, f), REFGC_EIO);
    ASSERT_EQ(errno, ENOSPC);
    fclose(f);
  }
  errno = 0;
  ASSERT_EQ(refgc__snapshot_write(NULL, stdout), REFGC_EIO);
  ASSERT_EQ(errno, EINVAL);
  refgc_snapshot_free(s);
}

/* Through the public calls (snapshot.c), on disk. */
TEST(save_and_load_files) {
  test_rng_t r = {test_seed()};
  refgc_snapshot_t *s = build(&r, 10);
  char path[64];
  snprintf(path, sizeof path, "/tmp/refgc-test-io-%ld.rgc", (long)getpid());
  ASSERT_EQ(refgc_snapshot_save(s, path), 0);
  refgc_snapshot_t *t = refgc_snapshot_load(path);
  if (!t) TEST_FAIL("load: %s", refgc_snapshot_error());
  compare(s, t);
  refgc_snapshot_free(t);
  /* cut the file short on disk: the message names it */
  FILE *f = fopen(path, "r+b");
  ASSERT(f != NULL);
  ASSERT_EQ(ftruncate(fileno(f), 100), 0);
  fclose(f);
  ASSERT(refgc_snapshot_load(path) == NULL);
  ASSERT_EQ(refgc_last_error(), REFGC_EFORMAT);
  ASSERT_STR_CONTAINS(refgc_snapshot_error(), path);
  ASSERT_STR_CONTAINS(refgc_snapshot_error(), "truncated file");
  remove(path);
  refgc_snapshot_free(s);
}

TEST(random_snapshots_roundtrip) {
  test_rng_t r = {test_seed() ^ 0x5eed};
  long rounds = 200 * test_scale();
  for (long i = 0; i < rounds; i++) {
    refgc_snapshot_t *s = build(&r, (size_t)test_below(&r, 30));
    file_t f = write_mem(s);
    refgc_snapshot_t *t = expect_load(&f);
    compare(s, t);
    refgc_snapshot_free(t);
    free(f.p);
    refgc_snapshot_free(s);
  }
}

/* CPU time of the process (user and system, page faults included): steadier than the wall
 * clock on a loaded machine. */
static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* A large snapshot with the values a real program has: small sizes and indexes, nearby
 * addresses (so most varints take one or two bytes: the slowest case per byte). */
static refgc_snapshot_t *build_typical(test_rng_t *r, size_t ntraces) {
  refgc_snapshot_t *s = build_empty();
  char buf[64];
  for (int i = 0; i < 3000; i++) {
    snprintf(buf, sizeof buf, "src/module%d/file%d.c", i % 40, i);
    ASSERT_NE(refgc__snapshot_intern(s, buf), UINT32_MAX);
  }
  uint32_t ns = (uint32_t)s->nstrings;
  s->program = 1;
  s->nframes = 20000;
  s->frames = xmalloc(s->nframes * sizeof *s->frames);
  for (size_t i = 0; i < s->nframes; i++)
    s->frames[i] = (snap_frame_t){.address = 0x555555554000ull + i * 64, .offset = i * 64,
                                  .module = 1 + (uint32_t)test_below(r, 5),
                                  .function = (uint32_t)test_below(r, ns),
                                  .file = (uint32_t)test_below(r, ns),
                                  .line = (int32_t)test_below(r, 3000)};
  s->ntracebacks = ntraces / 40 + 1;
  s->ntb_frames = s->ntracebacks * 16;
  s->tb_start = xmalloc(s->ntracebacks * sizeof(uint32_t));
  s->tb_len = xmalloc(s->ntracebacks * sizeof(uint32_t));
  s->tb_frames = xmalloc(s->ntb_frames * sizeof(uint32_t));
  for (size_t i = 0; i < s->ntracebacks; i++) s->tb_start[i] = (uint32_t)i * 16, s->tb_len[i] = 16;
  for (size_t i = 0; i < s->ntb_frames; i++) s->tb_frames[i] = (uint32_t)test_below(r, s->nframes);
  s->ntypes = 200;
  s->type_name = xmalloc(s->ntypes * sizeof(uint32_t));
  for (size_t i = 0; i < s->ntypes; i++) s->type_name[i] = i ? (uint32_t)test_below(r, ns) : 0;
  s->ntraces = ntraces;
  s->traces = xmalloc(ntraces * sizeof *s->traces);
  for (size_t i = 0; i < ntraces; i++)
    s->traces[i] = (snap_trace_t){.size = 8 + test_below(r, 500),
                                  .traceback = (uint32_t)test_below(r, s->ntracebacks),
                                  .type = (uint32_t)test_below(r, 8) ? 0 : (uint32_t)test_below(r, 200)};
  s->nnodes = ntraces / 4;
  s->nedges = ntraces / 2;
  s->nodes = xmalloc(s->nnodes * sizeof *s->nodes);
  s->edges = xmalloc(s->nedges * sizeof *s->edges);
  uint64_t addr = 0x7f1234560000ull;
  for (size_t i = 0; i < s->nnodes; i++) {
    addr += 16 * (1 + test_below(r, 8));
    s->nodes[i] = (refgc_node_t){.address = addr, .type = (uint32_t)test_below(r, 200),
                                 .flags = 0, .size = 32 + 16 * test_below(r, 8), .refcnt = 1,
                                 .traceback = (uint32_t)test_below(r, s->ntracebacks),
                                 .first_edge = (uint32_t)(i * 2), .root_name = 0,
                                 .retained = 64};
  }
  for (size_t i = 0; i < s->nedges; i++)
    s->edges[i] = (refgc_edge_t){.to = (uint32_t)test_below(r, s->nnodes),
                                 .index = (uint32_t)(i & 1), .offset = 8 * (int64_t)(i & 1)};
  return s;
}

static void measure(refgc_snapshot_t *s, const char *what) {
  double t0 = now_s();
  file_t f = write_mem(s);
  double t1 = now_s();
  int reps = 5;
  double best = 1e9;
  for (int i = 0; i < reps; i++) {
    double a = now_s();
    refgc_snapshot_t *t = expect_load(&f);
    double b = now_s();
    if (b - a < best) best = b - a;
    if (i == 0) compare(s, t);
    refgc_snapshot_free(t);
  }
  printf("# %s: %zu traces, %zu nodes, %zu edges: %.1f MB; write %.0f MB/s, load %.0f MB/s "
         "(%.0f ns per trace-equivalent, best of %d)\n",
         what, s->ntraces, s->nnodes, s->nedges, (double)f.len / 1e6,
         (double)f.len / 1e6 / (t1 - t0), (double)f.len / 1e6 / best,
         best * 1e9 / (double)(s->ntraces + s->nnodes + s->nedges), reps);
  free(f.p);
}

TEST(load_speed) {
  /* large snapshots (scaled down ten times when sanitized): speeds, in CPU time, are printed,
   * not checked */
  size_t k = 40000;
#if defined(__SANITIZE_ADDRESS__)
  k = 4000;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
  k = 4000;
#endif
#endif
  k *= (size_t)test_scale();
  test_rng_t r = {test_seed()};
  refgc_snapshot_t *s = build(&r, k);
  measure(s, "random values");
  refgc_snapshot_free(s);
  s = build_typical(&r, k * 100);
  measure(s, "typical values");
  refgc_snapshot_free(s);
}
