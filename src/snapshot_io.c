/* refgc — the snapshot file format: writing a snapshot and loading one back
 * (docs/snapshot-format.md describes every byte).
 *
 * A file is a 16-byte header (magic "RGCSNAP\0", format version, flags) followed by sections,
 * each a 16-byte header (four-character tag, payload length, CRC-32) and a payload; the last
 * section is END, whose payload counts the sections before it. Inside payloads, integers are
 * LEB128 varints (zigzag for signed ones), doubles are 8 little-endian bytes, strings are a
 * length and their bytes. Everything is written byte by byte in little-endian order, never by
 * copying a struct, so a file reads the same on every host.
 *
 * Writing encodes one section at a time into a growable buffer (its length and CRC go in
 * front of it) and hands the bytes to stdio.
 *
 * Loading trusts nothing. It runs over the whole file once: every section's length is checked
 * against the bytes left and its CRC (which covers the tag and the length too) before its
 * payload is decoded; every count is checked against the bytes left in the payload before
 * anything is allocated for it (each element takes at least one byte per field), so a forged
 * count cannot ask for a huge allocation; every index is checked, as it is decoded, against
 * the invariants of src/snapshot.h. Known sections must come once each, in a fixed order, so
 * that every section only refers to sections already read (unknown tags may appear anywhere
 * and are skipped: newer minor additions). On any failure the partial snapshot is freed and
 * the message names the file, the section, the byte offset and what was wrong.
 *
 * Speed: arrays are allocated once at their final size (the count comes first); varints have
 * a fast path with no per-byte bounds check when ten bytes remain; the CRC is slicing-by-8.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snapshot.h"

/* The format version this library writes, and the newest it reads. */
#define SNAP_FORMAT_VERSION 1u

#define SNAP_MAGIC "RGCSNAP"      /* 7 characters and the terminating NUL: 8 bytes */
#define SNAP_HEADER_BYTES 16u     /* magic, u32 version, u32 flags */
#define SNAP_SECTION_HEADER 16u   /* u32 tag, u64 length, u32 CRC */

#define TAG(a, b, c, d) \
  ((uint32_t)(a) | (uint32_t)(b) << 8 | (uint32_t)(c) << 16 | (uint32_t)(d) << 24)

/* The known sections, in the order they must appear. */
enum {
  SEC_STRS,
  SEC_META,
  SEC_FRMS,
  SEC_TBCK,
  SEC_TYPE,
  SEC_TRCS,
  SEC_TCNT,
  SEC_SERS,
  SEC_NODE,
  SEC_EDGE,
  SEC_SUSP,
  SEC_END,
  SEC_COUNT
};

static const uint32_t sec_tags[SEC_COUNT] = {
    TAG('S', 'T', 'R', 'S'), TAG('M', 'E', 'T', 'A'), TAG('F', 'R', 'M', 'S'),
    TAG('T', 'B', 'C', 'K'), TAG('T', 'Y', 'P', 'E'), TAG('T', 'R', 'C', 'S'),
    TAG('T', 'C', 'N', 'T'), TAG('S', 'E', 'R', 'S'), TAG('N', 'O', 'D', 'E'),
    TAG('E', 'D', 'G', 'E'), TAG('S', 'U', 'S', 'P'), TAG('E', 'N', 'D', ' '),
};
static const char *const sec_names[SEC_COUNT] = {"STRS", "META", "FRMS", "TBCK", "TYPE", "TRCS",
                                                 "TCNT", "SERS", "NODE", "EDGE", "SUSP", "END"};

/* ---------------------------------------------------------------------------------------------
 * CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320, as zlib's crc32): slicing-by-8
 * ------------------------------------------------------------------------------------------ */

static uint32_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    crc_table[0][i] = c;
  }
  for (uint32_t i = 0; i < 256; i++)
    for (int t = 1; t < 8; t++)
      crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 0xff];
}

/* zlib's convention: crc32(crc32(0, a), b) == crc32(0, a followed by b). */
static uint32_t crc32_update(uint32_t crc, const uint8_t *p, size_t n) {
  pthread_once(&crc_once, crc_init);
  uint32_t c = ~crc;
  while (n >= 8) {
    uint32_t lo = c ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                       (uint32_t)p[3] << 24);
    c = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^
        crc_table[5][(lo >> 16) & 0xff] ^ crc_table[4][lo >> 24] ^ crc_table[3][p[4]] ^
        crc_table[2][p[5]] ^ crc_table[1][p[6]] ^ crc_table[0][p[7]];
    p += 8;
    n -= 8;
  }
  while (n--) c = crc_table[0][(c ^ *p++) & 0xff] ^ (c >> 8);
  return ~c;
}

static void le32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void le64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get_le32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get_le64(const uint8_t *p) {
  return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

/* Zigzag on the two's complement bits, in unsigned arithmetic (no signed overflow). */
static uint64_t zigzag_bits(uint64_t u) { return (u << 1) ^ (0 - (u >> 63)); }
static uint64_t unzigzag_bits(uint64_t z) { return (z >> 1) ^ (0 - (z & 1)); }
static uint64_t zigzag(int64_t v) { return zigzag_bits((uint64_t)v); }
static int64_t unzigzag(uint64_t z) {
  uint64_t u = unzigzag_bits(z);
  int64_t v;
  memcpy(&v, &u, sizeof v); /* the same bits: no implementation-defined conversion */
  return v;
}

/* ---------------------------------------------------------------------------------------------
 * Writing
 * ------------------------------------------------------------------------------------------ */

typedef struct wbuf_s {
  uint8_t *p;
  size_t len, cap;
  bool oom;
} wbuf_t;

/* Make room for `n` more bytes; false (and `oom` set) when out of memory. */
static bool wb_reserve(wbuf_t *b, size_t n) {
  if (b->oom) return false;
  if (b->cap - b->len >= n) return true;
  size_t cap = b->cap ? b->cap : 4096;
  while (cap - b->len < n) {
    if (cap > SIZE_MAX / 2) {
      b->oom = true;
      return false;
    }
    cap *= 2;
  }
  uint8_t *p = realloc(b->p, cap);
  if (!p) {
    b->oom = true;
    return false;
  }
  b->p = p;
  b->cap = cap;
  return true;
}

/* Grow ahead of a loop, for `n` bytes or more; failing here is not an error yet. */
static void wb_hint(wbuf_t *b, size_t n, size_t per) {
  if (n > SIZE_MAX / 16 / per || b->cap - b->len >= n * per) return;
  wbuf_t t = *b;
  if (wb_reserve(&t, n * per)) *b = t;
}

static void wb_varint(wbuf_t *b, uint64_t v) {
  if (!wb_reserve(b, 10)) return;
  uint8_t *p = b->p + b->len;
  while (v >= 0x80) {
    *p++ = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  *p++ = (uint8_t)v;
  b->len = (size_t)(p - b->p);
}

static void wb_double(wbuf_t *b, double d) {
  if (!wb_reserve(b, 8)) return;
  uint64_t u;
  memcpy(&u, &d, sizeof u);
  le64(b->p + b->len, u);
  b->len += 8;
}

static void wb_bytes(wbuf_t *b, const void *p, size_t n) {
  if (!wb_reserve(b, n)) return;
  if (n) memcpy(b->p + b->len, p, n);
  b->len += n;
}

/* A node's traceback is stored plus one, so that "untraced" (UINT32_MAX) is 0. */
static uint64_t tb_code(uint32_t tb) { return tb == UINT32_MAX ? 0 : (uint64_t)tb + 1; }

/* Encode section `sec`'s payload into `b` (from empty). */
static void encode_section(wbuf_t *b, const refgc_snapshot_t *s, int sec, uint64_t nsections) {
  switch (sec) {
    case SEC_STRS:
      wb_varint(b, s->nstrings);
      for (size_t i = 0; i < s->nstrings; i++) {
        size_t n = strlen(s->strings[i]);
        wb_varint(b, n);
        wb_bytes(b, s->strings[i], n);
      }
      break;
    case SEC_META:
      wb_double(b, s->time);
      wb_double(b, s->uptime);
      wb_varint(b, s->pid);
      wb_varint(b, s->program);
      wb_varint(b, zigzag(s->frames_limit));
      wb_varint(b, s->sample_bytes);
      wb_varint(b, s->traced_current);
      wb_varint(b, s->traced_peak);
      wb_varint(b, s->heap_in_use);
      wb_varint(b, s->heap_committed);
      wb_varint(b, s->rss);
      wb_varint(b, s->tracer_memory);
      for (int g = 0; g < 3; g++) wb_varint(b, s->gc_collections[g]);
      for (int g = 0; g < 3; g++) wb_varint(b, s->gc_collected[g]);
      for (int g = 0; g < 3; g++) wb_varint(b, s->gc_uncollectable[g]);
      wb_double(b, s->gc_pause_total);
      wb_double(b, s->gc_pause_max);
      break;
    case SEC_FRMS:
      wb_varint(b, s->nframes);
      wb_hint(b, s->nframes, 30);
      for (size_t i = 0; i < s->nframes; i++) {
        const snap_frame_t *f = &s->frames[i];
        wb_varint(b, f->address);
        wb_varint(b, f->offset);
        wb_varint(b, f->module);
        wb_varint(b, f->function);
        wb_varint(b, f->file);
        wb_varint(b, zigzag(f->line));
      }
      break;
    case SEC_TBCK:
      wb_varint(b, s->ntracebacks);
      wb_varint(b, s->ntb_frames);
      wb_hint(b, s->ntracebacks + s->ntb_frames, 6);
      for (size_t i = 0; i < s->ntracebacks; i++) wb_varint(b, s->tb_start[i]);
      for (size_t i = 0; i < s->ntracebacks; i++) wb_varint(b, s->tb_len[i]);
      for (size_t i = 0; i < s->ntb_frames; i++) wb_varint(b, s->tb_frames[i]);
      break;
    case SEC_TYPE:
      wb_varint(b, s->ntypes);
      for (size_t i = 0; i < s->ntypes; i++) wb_varint(b, s->type_name[i]);
      break;
    case SEC_TRCS: /* three columns: sizes, tracebacks, types */
      wb_varint(b, s->ntraces);
      wb_hint(b, s->ntraces, 8);
      for (size_t i = 0; i < s->ntraces; i++) wb_varint(b, s->traces[i].size);
      for (size_t i = 0; i < s->ntraces; i++) wb_varint(b, s->traces[i].traceback);
      for (size_t i = 0; i < s->ntraces; i++) wb_varint(b, s->traces[i].type);
      break;
    case SEC_TCNT:
      wb_varint(b, s->ntype_counts);
      for (size_t i = 0; i < s->ntype_counts; i++) {
        wb_varint(b, s->type_counts[i].type);
        wb_varint(b, s->type_counts[i].count);
        wb_varint(b, s->type_counts[i].bytes);
      }
      break;
    case SEC_SERS:
      wb_varint(b, s->nseries);
      wb_hint(b, s->nseries, 30);
      for (size_t i = 0; i < s->nseries; i++) {
        const refgc_series_point_t *pt = &s->series[i];
        wb_double(b, pt->t);
        wb_varint(b, pt->rss);
        wb_varint(b, pt->traced);
        wb_varint(b, pt->in_use);
        wb_varint(b, pt->committed);
      }
      break;
    case SEC_NODE: {
      wb_varint(b, s->nnodes);
      wb_hint(b, s->nnodes, 16);
      uint64_t prev_addr = 0;
      uint32_t prev_edge = 0;
      for (size_t i = 0; i < s->nnodes; i++) {
        const refgc_node_t *n = &s->nodes[i];
        wb_varint(b, zigzag_bits(n->address - prev_addr));
        prev_addr = n->address;
        wb_varint(b, n->type);
        wb_varint(b, n->flags);
        wb_varint(b, n->size);
        wb_varint(b, n->refcnt);
        wb_varint(b, tb_code(n->traceback));
        /* first_edge is non-decreasing (an invariant): stored as the step from the last one */
        wb_varint(b, (uint32_t)(n->first_edge - prev_edge));
        prev_edge = n->first_edge;
        wb_varint(b, n->root_name);
        wb_varint(b, n->retained);
      }
      break;
    }
    case SEC_EDGE:
      wb_varint(b, s->nedges);
      wb_hint(b, s->nedges, 6);
      for (size_t i = 0; i < s->nedges; i++) {
        wb_varint(b, s->edges[i].to);
        wb_varint(b, s->edges[i].index);
        wb_varint(b, zigzag(s->edges[i].offset));
      }
      break;
    case SEC_SUSP:
      wb_varint(b, s->nsuspects);
      wb_varint(b, s->nchains);
      for (size_t i = 0; i < s->nsuspects; i++) {
        const snap_suspect_t *u = &s->suspects[i];
        wb_varint(b, u->cls);
        wb_varint(b, u->node);
        wb_varint(b, u->unexplained);
        wb_varint(b, u->retained);
        wb_varint(b, u->retained_count);
        wb_varint(b, u->chain_start);
        wb_varint(b, u->chain_len);
      }
      for (size_t i = 0; i < s->nchains; i++) wb_varint(b, s->chains[i]);
      break;
    case SEC_END:
      wb_varint(b, nsections);
      break;
  }
}

/* Write `s` to `f` in the current format. Returns 0, or REFGC_EIO with errno saying why
 * (ENOMEM when a section could not be encoded); the caller names the file. Does not resolve
 * symbols: refgc_snapshot_save does that first. */
int refgc__snapshot_write(refgc_snapshot_t *s, FILE *f) {
  if (!s || !f) {
    errno = EINVAL;
    return REFGC_EIO;
  }
  uint8_t head[SNAP_HEADER_BYTES];
  memcpy(head, SNAP_MAGIC, 8); /* with its NUL */
  le32(head + 8, SNAP_FORMAT_VERSION);
  le32(head + 12, 0); /* flags: none defined */
  if (fwrite(head, 1, sizeof head, f) != sizeof head) return REFGC_EIO;

  wbuf_t b = {0};
  int rc = 0;
  for (int sec = 0; sec < SEC_COUNT; sec++) {
    b.len = 0;
    encode_section(&b, s, sec, (uint64_t)sec);
    if (b.oom) {
      errno = ENOMEM;
      rc = REFGC_EIO;
      break;
    }
    uint8_t sh[SNAP_SECTION_HEADER];
    le32(sh, sec_tags[sec]);
    le64(sh + 4, b.len);
    uint32_t crc = crc32_update(0, sh, 12);
    le32(sh + 12, crc32_update(crc, b.p, b.len));
    if (fwrite(sh, 1, sizeof sh, f) != sizeof sh ||
        (b.len && fwrite(b.p, 1, b.len, f) != b.len)) {
      rc = REFGC_EIO;
      break;
    }
  }
  free(b.p);
  if (rc == 0 && (fflush(f) != 0 || ferror(f))) rc = REFGC_EIO;
  if (rc && errno == 0) errno = EIO;
  return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Reading
 * ------------------------------------------------------------------------------------------ */

typedef struct rd_s {
  const uint8_t *p, *end; /* the rest of the current section's payload */
  const uint8_t *base;    /* the file's first byte: offsets in messages are from it */
  const char *path;
  const char *sec;        /* name of the section being read */
  int code;               /* 0, or the error: REFGC_EFORMAT or REFGC_ENOMEM */
  char msg[256];
} rd_t;

static size_t rd_left(const rd_t *r) { return (size_t)(r->end - r->p); }

/* Record the first error, at byte `at` of the file; always returns -1. */
__attribute__((format(printf, 3, 4))) static int rd_fail(rd_t *r, const uint8_t *at,
                                                         const char *fmt, ...) {
  if (r->code) return -1;
  r->code = REFGC_EFORMAT;
  char what[200];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  snprintf(r->msg, sizeof r->msg, "section %s, offset %zu: %s", r->sec, (size_t)(at - r->base),
           what);
  r->p = r->end; /* nothing more is read from this section */
  return -1;
}

REFGC_NOINLINE static uint64_t rd_varint_slow(rd_t *r) {
  const uint8_t *at = r->p;
  uint64_t v = 0;
  for (unsigned i = 0; i < 10; i++) {
    if (r->p >= r->end) {
      rd_fail(r, at, "varint runs past the end of the section");
      return 0;
    }
    uint8_t byte = *r->p++;
    if (i == 9 && byte > 1) {
      rd_fail(r, at, byte & 0x80 ? "varint longer than 10 bytes" : "varint overflows 64 bits");
      return 0;
    }
    v |= (uint64_t)(byte & 0x7f) << (7 * i);
    if (byte < 0x80) break;
  }
  return v;
}

/* An unsigned LEB128 varint; 0 with the error set when it is malformed or truncated. */
static inline uint64_t rd_varint(rd_t *r) {
  const uint8_t *p = r->p;
  if (refgc_likely(r->end - p >= 10)) {
    uint64_t v = p[0];
    if (refgc_likely(v < 0x80)) {
      r->p = p + 1;
      return v;
    }
    v &= 0x7f;
    for (unsigned i = 1; i < 10; i++) {
      uint8_t byte = p[i];
      v |= (uint64_t)(byte & 0x7f) << (7 * i);
      if (byte < 0x80) {
        if (i == 9 && byte > 1) break;
        r->p = p + i + 1;
        return v;
      }
    }
  }
  return rd_varint_slow(r);
}

/* A varint that must fit in 32 bits. */
static inline uint32_t rd_u32(rd_t *r, const char *what) {
  const uint8_t *at = r->p;
  uint64_t v = rd_varint(r);
  if (refgc_unlikely(v > UINT32_MAX)) {
    rd_fail(r, at, "%s %llu does not fit in 32 bits", what, (unsigned long long)v);
    return 0;
  }
  return (uint32_t)v;
}

REFGC_NOINLINE static void rd_index_fail(rd_t *r, const uint8_t *at, uint64_t v, size_t n,
                                         const char *what, const char *field, size_t i) {
  if (what)
    rd_fail(r, at, "%s %zu: %s %llu out of range (%zu of them)", what, i, field,
            (unsigned long long)v, n);
  else
    rd_fail(r, at, "%s %llu out of range (%zu of them)", field, (unsigned long long)v, n);
}

/* An index that must be < n; `what` and `i` name the element for the message (what NULL: a
 * lone field). */
static inline uint32_t rd_index(rd_t *r, size_t n, const char *what, const char *field,
                                size_t i) {
  const uint8_t *at = r->p;
  uint64_t v = rd_varint(r);
  if (refgc_unlikely(v >= n)) {
    rd_index_fail(r, at, v, n, what, field, i);
    return 0;
  }
  return (uint32_t)v;
}

static double rd_double(rd_t *r) {
  if (rd_left(r) < 8) {
    rd_fail(r, r->p, "double runs past the end of the section");
    return 0;
  }
  uint64_t u = get_le64(r->p);
  r->p += 8;
  double d;
  memcpy(&d, &u, sizeof d);
  return d;
}

/* A count of elements that take at least `min_bytes` each: checked against what is left of
 * the payload (so nothing huge is allocated for a forged count) and against `max`. */
static size_t rd_count(rd_t *r, unsigned min_bytes, uint64_t max, const char *what) {
  const uint8_t *at = r->p;
  uint64_t n = rd_varint(r);
  if (r->code) return 0;
  if (n > max) {
    rd_fail(r, at, "%s count %llu exceeds the limit %llu", what, (unsigned long long)n,
            (unsigned long long)max);
    return 0;
  }
  if (n > rd_left(r) / min_bytes) {
    rd_fail(r, at, "%s count %llu needs at least %llu bytes, only %zu left in the section", what,
            (unsigned long long)n, (unsigned long long)n * min_bytes, rd_left(r));
    return 0;
  }
  return (size_t)n;
}

/* An array of `n` elements of `size` bytes (NULL for none); NULL with REFGC_ENOMEM set. */
static void *rd_alloc(rd_t *r, size_t n, size_t size) {
  if (n == 0) return NULL;
  void *p = n <= SIZE_MAX / size ? malloc(n * size) : NULL;
  if (!p && !r->code) {
    r->code = REFGC_ENOMEM;
    snprintf(r->msg, sizeof r->msg, "section %s: out of memory for %zu elements of %zu bytes",
             r->sec, n, size);
    r->p = r->end;
  }
  return p;
}

/* The limit on counts of things referred to by 32-bit indexes. */
#define MAX32 ((uint64_t)UINT32_MAX)

static int read_strs(rd_t *r, refgc_snapshot_t *s) {
  const uint8_t *at = r->p;
  size_t n = rd_count(r, 1, MAX32, "string");
  if (r->code) return -1;
  if (n == 0) return rd_fail(r, at, "no strings (string 0 must be \"\")");
  s->strings = rd_alloc(r, n, sizeof *s->strings);
  if (!s->strings) return -1;
  s->strings_cap = n;
  for (size_t i = 0; i < n; i++) {
    const uint8_t *sat = r->p;
    uint64_t len = rd_varint(r);
    if (r->code) return -1;
    if (len > rd_left(r))
      return rd_fail(r, sat, "string %zu: length %llu, only %zu bytes left in the section", i,
                     (unsigned long long)len, rd_left(r));
    if (i == 0 && len != 0) return rd_fail(r, sat, "string 0 is not \"\"");
    if (memchr(r->p, 0, (size_t)len))
      return rd_fail(r, sat, "string %zu contains a NUL byte", i);
    char *str = rd_alloc(r, (size_t)len + 1, 1);
    if (!str) return -1;
    memcpy(str, r->p, (size_t)len);
    str[len] = 0;
    r->p += len;
    s->strings[i] = str;
    s->nstrings = i + 1;
  }
  return 0;
}

static int read_meta(rd_t *r, refgc_snapshot_t *s) {
  s->time = rd_double(r);
  s->uptime = rd_double(r);
  s->pid = rd_varint(r);
  s->program = rd_index(r, s->nstrings, NULL, "program string", 0);
  const uint8_t *at = r->p;
  int64_t fl = unzigzag(rd_varint(r));
  if (fl < INT32_MIN || fl > INT32_MAX)
    return rd_fail(r, at, "frame limit %lld does not fit in 32 bits", (long long)fl);
  s->frames_limit = (int32_t)fl;
  s->sample_bytes = rd_varint(r);
  s->traced_current = rd_varint(r);
  s->traced_peak = rd_varint(r);
  s->heap_in_use = rd_varint(r);
  s->heap_committed = rd_varint(r);
  s->rss = rd_varint(r);
  s->tracer_memory = rd_varint(r);
  for (int g = 0; g < 3; g++) s->gc_collections[g] = rd_varint(r);
  for (int g = 0; g < 3; g++) s->gc_collected[g] = rd_varint(r);
  for (int g = 0; g < 3; g++) s->gc_uncollectable[g] = rd_varint(r);
  s->gc_pause_total = rd_double(r);
  s->gc_pause_max = rd_double(r);
  return r->code ? -1 : 0;
}

static int read_frms(rd_t *r, refgc_snapshot_t *s) {
  size_t n = rd_count(r, 6, MAX32, "frame");
  if (r->code) return -1;
  s->frames = rd_alloc(r, n, sizeof *s->frames);
  if (r->code) return -1;
  size_t ns = s->nstrings;
  for (size_t i = 0; i < n; i++) {
    snap_frame_t *f = &s->frames[i];
    f->address = rd_varint(r);
    f->offset = rd_varint(r);
    f->module = rd_index(r, ns, "frame", "module string", i);
    f->function = rd_index(r, ns, "frame", "function string", i);
    f->file = rd_index(r, ns, "frame", "file string", i);
    const uint8_t *at = r->p;
    int64_t line = unzigzag(rd_varint(r));
    if (r->code) return -1;
    if (line < INT32_MIN || line > INT32_MAX)
      return rd_fail(r, at, "frame %zu: line %lld does not fit in 32 bits", i, (long long)line);
    f->line = (int32_t)line;
  }
  s->nframes = n;
  return 0;
}

static int read_tbck(rd_t *r, refgc_snapshot_t *s) {
  size_t ntb = rd_count(r, 2, MAX32, "traceback");
  size_t nfr = rd_count(r, 1, MAX32, "traceback frame");
  if (r->code) return -1;
  if (ntb > (rd_left(r) - nfr) / 2)
    return rd_fail(r, r->p, "%zu tracebacks and %zu frames need more than the %zu bytes left",
                   ntb, nfr, rd_left(r));
  s->tb_start = rd_alloc(r, ntb, sizeof *s->tb_start);
  s->tb_len = rd_alloc(r, ntb, sizeof *s->tb_len);
  s->tb_frames = rd_alloc(r, nfr, sizeof *s->tb_frames);
  if (r->code) return -1;
  for (size_t i = 0; i < ntb; i++) s->tb_start[i] = rd_u32(r, "traceback start");
  for (size_t i = 0; i < ntb; i++) {
    const uint8_t *at = r->p;
    s->tb_len[i] = rd_u32(r, "traceback length");
    if (r->code) return -1;
    if ((uint64_t)s->tb_start[i] + s->tb_len[i] > nfr)
      return rd_fail(r, at, "traceback %zu: frames [%u, +%u) past the %zu stored", i,
                     s->tb_start[i], s->tb_len[i], nfr);
  }
  for (size_t i = 0; i < nfr; i++) {
    s->tb_frames[i] = rd_index(r, s->nframes, "traceback frame", "frame", i);
    if (r->code) return -1;
  }
  s->ntracebacks = ntb;
  s->ntb_frames = nfr;
  return r->code ? -1 : 0;
}

static int read_type(rd_t *r, refgc_snapshot_t *s) {
  size_t n = rd_count(r, 1, MAX32, "type");
  if (r->code) return -1;
  s->type_name = rd_alloc(r, n, sizeof *s->type_name);
  if (r->code) return -1;
  for (size_t i = 0; i < n; i++) {
    const uint8_t *at = r->p;
    s->type_name[i] = rd_index(r, s->nstrings, "type", "name string", i);
    if (r->code) return -1;
    if (i == 0 && s->strings[s->type_name[0]][0] != 0)
      return rd_fail(r, at, "type 0 is named \"%.40s\", not \"\"", s->strings[s->type_name[0]]);
  }
  s->ntypes = n;
  return 0;
}

static int read_trcs(rd_t *r, refgc_snapshot_t *s) {
  size_t n = rd_count(r, 3, UINT64_MAX, "trace");
  if (r->code) return -1;
  snap_trace_t *t = s->traces = rd_alloc(r, n, sizeof *s->traces);
  if (r->code) return -1;
  for (size_t i = 0; i < n; i++) t[i].size = rd_varint(r);
  size_t ntb = s->ntracebacks, nty = s->ntypes;
  for (size_t i = 0; i < n; i++) t[i].traceback = rd_index(r, ntb, "trace", "traceback", i);
  for (size_t i = 0; i < n; i++) t[i].type = rd_index(r, nty, "trace", "type", i);
  if (r->code) return -1;
  s->ntraces = n;
  return 0;
}

static int read_tcnt(rd_t *r, refgc_snapshot_t *s) {
  size_t n = rd_count(r, 3, UINT64_MAX, "type count");
  if (r->code) return -1;
  s->type_counts = rd_alloc(r, n, sizeof *s->type_counts);
  if (r->code) return -1;
  for (size_t i = 0; i < n; i++) {
    snap_type_count_t *c = &s->type_counts[i];
    c->type = rd_index(r, s->ntypes, "type count", "type", i);
    c->count = rd_varint(r);
    c->bytes = rd_varint(r);
  }
  if (r->code) return -1;
  s->ntype_counts = n;
  return 0;
}

static int read_sers(rd_t *r, refgc_snapshot_t *s) {
  size_t n = rd_count(r, 12, UINT64_MAX, "series point");
  if (r->code) return -1;
  s->series = rd_alloc(r, n, sizeof *s->series);
  if (r->code) return -1;
  for (size_t i = 0; i < n; i++) {
    refgc_series_point_t *pt = &s->series[i];
    pt->t = rd_double(r);
    pt->rss = rd_varint(r);
    pt->traced = rd_varint(r);
    pt->in_use = rd_varint(r);
    pt->committed = rd_varint(r);
  }
  if (r->code) return -1;
  s->nseries = n;
  return 0;
}

static int read_node(rd_t *r, refgc_snapshot_t *s) {
  size_t n = rd_count(r, 9, MAX32, "node");
  if (r->code) return -1;
  refgc_node_t *nodes = s->nodes = rd_alloc(r, n, sizeof *s->nodes);
  if (r->code) return -1;
  uint64_t addr = 0, edge = 0;
  size_t ntb = s->ntracebacks;
  for (size_t i = 0; i < n; i++) {
    refgc_node_t *x = &nodes[i];
    addr += unzigzag_bits(rd_varint(r)); /* modulo 2^64 */
    x->address = addr;
    x->type = rd_index(r, s->ntypes, "node", "type", i);
    x->flags = rd_u32(r, "node flags");
    x->size = rd_varint(r);
    x->refcnt = rd_u32(r, "node reference count");
    const uint8_t *at = r->p;
    uint64_t tb = rd_varint(r);
    if (tb > ntb) {
      if (!r->code)
        rd_fail(r, at, "node %zu: traceback %llu out of range (%zu of them)", i,
                (unsigned long long)tb - 1, ntb);
      return -1;
    }
    x->traceback = tb == 0 ? UINT32_MAX : (uint32_t)(tb - 1);
    at = r->p;
    uint64_t step = rd_varint(r); /* first_edge never decreases: stored as steps */
    if (step > UINT32_MAX - edge) {
      if (!r->code)
        rd_fail(r, at, "node %zu: first edge %llu + %llu does not fit in 32 bits", i,
                (unsigned long long)edge, (unsigned long long)step);
      return -1;
    }
    edge += step;
    x->first_edge = (uint32_t)edge;
    x->root_name = rd_index(r, s->nstrings, "node", "root name string", i);
    x->retained = rd_varint(r);
    if (r->code) return -1;
  }
  s->nnodes = n;
  return 0;
}

static int read_edge(rd_t *r, refgc_snapshot_t *s) {
  const uint8_t *at = r->p;
  size_t n = rd_count(r, 3, MAX32, "edge");
  if (r->code) return -1;
  /* NODE came first: its first_edge sequence is non-decreasing by construction, and must end
   * within the edges */
  if (s->nnodes && s->nodes[s->nnodes - 1].first_edge > n)
    return rd_fail(r, at, "the last node's edges start at %u, past the %zu edges",
                   s->nodes[s->nnodes - 1].first_edge, n);
  refgc_edge_t *e = s->edges = rd_alloc(r, n, sizeof *s->edges);
  if (r->code) return -1;
  size_t nn = s->nnodes;
  for (size_t i = 0; i < n; i++) {
    e[i].to = rd_index(r, nn, "edge", "target node", i);
    e[i].index = rd_u32(r, "edge index");
    e[i].offset = unzigzag(rd_varint(r));
  }
  if (r->code) return -1;
  s->nedges = n;
  return 0;
}

static int read_susp(rd_t *r, refgc_snapshot_t *s) {
  size_t n = rd_count(r, 7, UINT64_MAX, "suspect");
  size_t nch = rd_count(r, 1, MAX32, "chain entry");
  if (r->code) return -1;
  if (n > (rd_left(r) - nch) / 7)
    return rd_fail(r, r->p, "%zu suspects and %zu chain entries need more than the %zu bytes left",
                   n, nch, rd_left(r));
  s->suspects = rd_alloc(r, n, sizeof *s->suspects);
  s->chains = rd_alloc(r, nch, sizeof *s->chains);
  if (r->code) return -1;
  for (size_t i = 0; i < n; i++) {
    snap_suspect_t *u = &s->suspects[i];
    u->cls = rd_u32(r, "suspect class");
    u->node = rd_index(r, s->nnodes, "suspect", "node", i);
    u->unexplained = rd_varint(r);
    u->retained = rd_varint(r);
    u->retained_count = rd_varint(r);
    u->chain_start = rd_u32(r, "suspect chain start");
    const uint8_t *at = r->p;
    u->chain_len = rd_u32(r, "suspect chain length");
    if (r->code) return -1;
    if ((uint64_t)u->chain_start + u->chain_len > nch)
      return rd_fail(r, at, "suspect %zu: chain [%u, +%u) past the %zu chain entries", i,
                     u->chain_start, u->chain_len, nch);
  }
  for (size_t i = 0; i < nch; i++) s->chains[i] = rd_index(r, s->nnodes, "chain entry", "node", i);
  if (r->code) return -1;
  s->nsuspects = n;
  s->nchains = nch;
  return 0;
}

typedef int (*read_fn)(rd_t *, refgc_snapshot_t *);
static const read_fn sec_readers[SEC_COUNT] = {
    read_strs, read_meta, read_frms, read_tbck, read_type, read_trcs,
    read_tcnt, read_sers, read_node, read_edge, read_susp, NULL /* END: below */};

/* A tag as text for messages: its four characters when printable, else hex. */
static const char *tag_text(uint32_t tag, char buf[16]) {
  for (int i = 0; i < 4; i++) {
    uint8_t c = (uint8_t)(tag >> (8 * i));
    if (c < 0x20 || c > 0x7e) {
      snprintf(buf, 16, "0x%08x", tag);
      return buf;
    }
    buf[i] = (char)c;
  }
  buf[4] = 0;
  if (buf[3] == ' ') buf[3] = 0; /* "END " is called END */
  return buf;
}

refgc_snapshot_t *refgc__snapshot_read(const uint8_t *data, size_t len, const char *path) {
  if (!path) path = "(memory)";
  if (!data) len = 0;
  bool magic = true;
  for (size_t i = 0; i < 8 && i < len; i++) magic &= data[i] == (uint8_t)SNAP_MAGIC[i];
  if (!magic) {
    refgc__snapshot_fail(REFGC_EFORMAT, "%s: not a refgc snapshot (bad magic at offset 0)", path);
    return NULL;
  }
  if (len < SNAP_HEADER_BYTES) {
    refgc__snapshot_fail(REFGC_EFORMAT,
                         "%s: truncated file: the header needs %u bytes at offset 0, only %zu "
                         "left",
                         path, SNAP_HEADER_BYTES, len);
    return NULL;
  }
  uint32_t version = get_le32(data + 8), flags = get_le32(data + 12);
  if (version > SNAP_FORMAT_VERSION) {
    refgc__snapshot_fail(REFGC_EFORMAT,
                         "%s: written by a newer refgc (format %u, this library reads up to %u)",
                         path, version, SNAP_FORMAT_VERSION);
    return NULL;
  }
  if (version == 0) {
    refgc__snapshot_fail(REFGC_EFORMAT, "%s: format version 0 at offset 8 is not valid", path);
    return NULL;
  }
  if (flags != 0) {
    refgc__snapshot_fail(REFGC_EFORMAT,
                         "%s: unknown header flags 0x%08x at offset 12 (format %u defines none)",
                         path, flags, version);
    return NULL;
  }

  /* Not refgc__snapshot_new(): that interns "" into a string index, and the file's strings
   * replace the table. A loaded snapshot has no index; snapshot.c's intern builds one from the
   * table when it first needs it. */
  refgc_snapshot_t *s = calloc(1, sizeof *s);
  if (!s) {
    refgc__snapshot_fail(REFGC_ENOMEM, "%s: out of memory", path);
    return NULL;
  }
  s->version = version;

  rd_t r = {.base = data, .path = path};
  char tbuf[16];
  size_t off = SNAP_HEADER_BYTES;
  uint64_t nsections = 0;
  int next = 0; /* the known section expected next */
  const char *last = "the header";
  for (;;) {
    if (off == len) {
      snprintf(r.msg, sizeof r.msg, "truncated file: no END section (the file ends at offset %zu, "
               "after %s)", off, last);
      r.code = REFGC_EFORMAT;
      break;
    }
    if (len - off < SNAP_SECTION_HEADER) {
      snprintf(r.msg, sizeof r.msg, "truncated file: a section header needs %u bytes at offset "
               "%zu, only %zu left", SNAP_SECTION_HEADER, off, len - off);
      r.code = REFGC_EFORMAT;
      break;
    }
    const uint8_t *h = data + off;
    uint32_t tag = get_le32(h), crc = get_le32(h + 12);
    uint64_t plen = get_le64(h + 4);
    const char *name = tag_text(tag, tbuf);
    size_t poff = off + SNAP_SECTION_HEADER;
    if (plen > len - poff) {
      snprintf(r.msg, sizeof r.msg, "truncated file: section %s needs %llu bytes at offset %zu, "
               "only %zu left", name, (unsigned long long)plen, poff, len - poff);
      r.code = REFGC_EFORMAT;
      break;
    }
    uint32_t got = crc32_update(crc32_update(0, h, 12), data + poff, (size_t)plen);
    if (got != crc) {
      snprintf(r.msg, sizeof r.msg, "section %s at offset %zu: CRC mismatch (stored 0x%08x, "
               "computed 0x%08x): the file is corrupted", name, off, crc, got);
      r.code = REFGC_EFORMAT;
      break;
    }
    int k = 0;
    while (k < SEC_COUNT && sec_tags[k] != tag) k++;
    if (k < SEC_COUNT) {
      if (k != next) {
        if (k < next)
          snprintf(r.msg, sizeof r.msg, "section %s at offset %zu comes twice or out of order "
                   "(after %s)", name, off, last);
        else
          snprintf(r.msg, sizeof r.msg, "section %s is missing (found %s at offset %zu instead)",
                   sec_names[next], name, off);
        r.code = REFGC_EFORMAT;
        break;
      }
      r.p = data + poff;
      r.end = r.p + plen;
      r.sec = sec_names[k];
      if (k == SEC_END) {
        const uint8_t *at = r.p;
        uint64_t count = rd_varint(&r);
        if (!r.code && count != nsections)
          rd_fail(&r, at, "the file should hold %llu sections before END, it holds %llu",
                  (unsigned long long)count, (unsigned long long)nsections);
      } else {
        sec_readers[k](&r, s);
      }
      if (!r.code && r.p != r.end)
        rd_fail(&r, r.p, "%zu unexpected bytes at the end of the section", rd_left(&r));
      if (r.code) break;
      next++;
    }
    /* unknown sections (added by a later minor revision) are skipped */
    nsections++;
    off = poff + (size_t)plen;
    last = k < SEC_COUNT ? sec_names[k] : "an unknown section";
    if (k == SEC_END) {
      if (off != len) {
        snprintf(r.msg, sizeof r.msg, "%zu bytes of unexpected data after the END section, at "
                 "offset %zu", len - off, off);
        r.code = REFGC_EFORMAT;
      }
      break;
    }
  }
  if (r.code) {
    refgc_snapshot_free(s);
    refgc__snapshot_fail(r.code, "%s: %s", path, r.msg);
    return NULL;
  }
  s->resolved = true;
  s->local = false;
  return s;
}
