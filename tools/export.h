/* refgc export — what the exporters share (tools/export_*.c, driven by tools/cmd_export.c).
 *
 * Each exporter writes one format to an open FILE and returns 0, or -1 after printing a message
 * (cli_error) that names the input file and what was wrong. The driver opens the output (stdout
 * or -o FILE, replaced atomically) and turns -1 into exit status 2.
 *
 * Helpers here:
 *   - strtab: strings interned to dense indexes (the string tables of .heapsnapshot and
 *     speedscope's shared frames) with an open-addressing hash;
 *   - traceback totals: the traces of a snapshot summed per traceback (bytes and blocks, scaled
 *     by each trace's weight when sampled), the input of massif trees, folded stacks and
 *     speedscope samples.
 */
#ifndef REFGC_EXPORT_H
#define REFGC_EXPORT_H

#include "cli.h"

typedef struct export_opts_s {
  size_t max_nodes;   /* dot: nodes at most (default 200) */
  double threshold;   /* massif: percentage below which subtrees are summarised (default 1) */
  const char *title;  /* a name for the output (the input's base name when NULL) */
} export_opts_t;

/* Formats. massif takes every input (a time series); the others take one snapshot. */
int export_massif(FILE *f, char **paths, size_t npaths, const export_opts_t *o);
int export_heapsnapshot(FILE *f, refgc_snapshot_t *s, const char *path, const export_opts_t *o);
int export_folded(FILE *f, refgc_snapshot_t *s, const char *path, const export_opts_t *o);
int export_speedscope(FILE *f, refgc_snapshot_t *s, const char *path, const export_opts_t *o);
int export_dot(FILE *f, refgc_snapshot_t *s, const char *path, const export_opts_t *o);

/* ---- string table ----------------------------------------------------------------------- */

typedef struct strtab_s {
  char **strs;      /* owned copies, in index order */
  size_t n, cap;
  uint32_t *slots;  /* hash slots: index + 1, 0 empty */
  size_t nslots;
} strtab_t;

void strtab_init(strtab_t *t);
/** The index of `s` (interned on first use). */
uint32_t strtab_intern(strtab_t *t, const char *s);
void strtab_free(strtab_t *t);

/* ---- traceback totals ------------------------------------------------------------------- */

typedef struct tb_total_s {
  uint32_t traceback;
  uint64_t bytes;  /* requested bytes (estimated when sampled) */
  uint64_t count;  /* blocks (estimated when sampled) */
} tb_total_t;

/** Sum the traces of `s` per traceback; largest bytes first (ties: traceback index). Sets *n;
 * the array is to free(); NULL with *n = 0 when there are no traces. *total gets the sum. */
tb_total_t *export_traceback_totals(refgc_snapshot_t *s, size_t *n, uint64_t *total);

/** A frame's text for flame graphs (folded, speedscope names): cli_frame_label SHORT with
 * characters that would break the folded grammar (';', newlines) replaced. */
char *export_frame_name(const refgc_frame_info_t *f, char *buf, size_t n);

#endif /* REFGC_EXPORT_H */
