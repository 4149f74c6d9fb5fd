/* refgc — the in-memory form of a snapshot, shared by snapshot.c (taking, statistics, filters,
 * graph analysis) and snapshot_io.c (the file format, docs/snapshot-format.md).
 *
 * A snapshot is a set of flat arrays that refer to each other by index, never by pointer, so
 * that saving is a copy and loading needs no fix-ups beyond bounds checks. All of its memory
 * comes from the C library's malloc (it is the tracer's memory, not the program's).
 *
 * Invariants (checked by the loader on every file, so that no index read from a file can lead
 * outside an array):
 *   - strings: `strings[i]` is a NUL-terminated string; string 0 is "".
 *   - frames[i].module/function/file are string indexes < nstrings.
 *   - tracebacks: traceback i has `tb_len[i]` frame indexes starting at tb_frames[tb_start[i]];
 *     tb_start[i] + tb_len[i] <= ntb_frames, every frame index < nframes.
 *   - types: type 0 is "" (raw blocks); type_name[i] < nstrings.
 *   - traces: traceback < ntracebacks, type < ntypes, weight >= 1.
 *   - type_counts: type < ntypes.
 *   - graph: node.type < ntypes; node.traceback < ntracebacks or UINT32_MAX; first_edge is
 *     non-decreasing and <= nedges; edge.to < nnodes; root_name < nstrings.
 *   - suspects: node < nnodes; chain indexes (in `chains`, from chain_start) < nnodes and
 *     chain_start + chain_len <= nchains.
 */
#ifndef REFGC_SNAPSHOT_H
#define REFGC_SNAPSHOT_H

#include "internal.h"

/* A frame as stored: the address and, once resolved, its symbol parts as string indexes. */
typedef struct snap_frame_s {
  uint64_t address;
  uint64_t offset;   /* in the module */
  uint32_t module, function, file; /* string indexes */
  int32_t line;
} snap_frame_t;

/* A trace as stored (the public refgc_trace_t is computed from it). */
typedef struct snap_trace_s {
  uint64_t size;      /* requested bytes */
  uint32_t traceback; /* index */
  uint32_t type;      /* type index, 0 raw */
} snap_trace_t;

typedef struct snap_type_count_s {
  uint32_t type;
  uint64_t count, bytes;
} snap_type_count_t;

typedef struct snap_suspect_s {
  uint32_t cls;
  uint32_t node;
  uint64_t unexplained, retained, retained_count;
  uint32_t chain_start, chain_len; /* in `chains` */
} snap_suspect_t;

struct refgc_snapshot_s {
  /* summary (refgc_snapshot_info_t minus the pointers and counts derived from the arrays) */
  uint32_t version;
  double time, uptime;
  uint64_t pid;
  uint32_t program;   /* string index */
  int32_t frames_limit;
  uint64_t sample_bytes;
  uint64_t traced_current, traced_peak;
  uint64_t heap_in_use, heap_committed, rss, tracer_memory;
  uint64_t gc_collections[3], gc_collected[3], gc_uncollectable[3];
  double gc_pause_total, gc_pause_max;
  bool resolved;      /* frames have their symbols (always true for a loaded snapshot) */
  bool local;         /* taken in this process (frames can still be resolved) */

  /* string table */
  char **strings;
  size_t nstrings, strings_cap;
  void *string_index; /* hash from string to index while building (snapshot.c), or NULL */

  snap_frame_t *frames;
  size_t nframes;
  uint32_t *tb_start, *tb_len; /* per traceback */
  size_t ntracebacks;
  uint32_t *tb_frames;
  size_t ntb_frames;

  uint32_t *type_name; /* string index per type; type 0 is "" */
  size_t ntypes;

  snap_trace_t *traces;
  size_t ntraces;

  snap_type_count_t *type_counts;
  size_t ntype_counts;

  refgc_series_point_t *series;
  size_t nseries;

  refgc_node_t *nodes;
  size_t nnodes;
  refgc_edge_t *edges;
  size_t nedges;

  snap_suspect_t *suspects;
  size_t nsuspects;
  uint32_t *chains;
  size_t nchains;

  /* derived on demand by snapshot.c, never saved */
  refgc_trace_t *pub_traces;
  refgc_frame_info_t *pub_frames;
  refgc_type_count_t *pub_type_counts;
  refgc_suspect_t *pub_suspects;
};

/* snapshot.c */
REFGC_INTERNAL refgc_snapshot_t *refgc__snapshot_new(void);
/* Intern a string (copied): its index, or UINT32_MAX when out of memory. */
REFGC_INTERNAL uint32_t refgc__snapshot_intern(refgc_snapshot_t *s, const char *str);
/* Resolve every frame's symbol (no-op when resolved or not local). */
REFGC_INTERNAL void refgc__snapshot_resolve(refgc_snapshot_t *s);
/* Set the thread's snapshot error message (printf-style) and return `code`. */
REFGC_INTERNAL int refgc__snapshot_fail(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* While taking (the opaque `take` context of snapshot.c): the snapshot type index of an
 * object's type, and the snapshot index of a global traceback id. */
REFGC_INTERNAL uint32_t refgc__snapshot_object_type(void *take, const refgc_object_t *o);
REFGC_INTERNAL uint32_t refgc__snapshot_tb(void *take, uint32_t id);

/* introspect.c: record the object graph of the heap into `s`, with the leak analysis.
 * 0 or a REFGC_E* code. */
REFGC_INTERNAL int refgc__graph_build(refgc_snapshot_t *s, void *take);

/* snapshot_io.c */
REFGC_INTERNAL int refgc__snapshot_write(refgc_snapshot_t *s, FILE *f);
REFGC_INTERNAL refgc_snapshot_t *refgc__snapshot_read(const uint8_t *data, size_t len,
                                                      const char *path);

#endif /* REFGC_SNAPSHOT_H */
