/* refgc diff — what grew between two snapshots (tracemalloc's Snapshot.compare_to).
 *
 * Loads OLD and NEW, prints each one's traced totals and the change, then the rows of
 * refgc_snapshot_compare (keys of NEW, and keys that exist only in OLD with new size 0) largest
 * absolute size change first: size and count differences (signed) and the new totals. When
 * both snapshots carry live object counts by type (refgc_snapshot_type_counts), it also prints
 * the types whose count or bytes changed. --include/--exclude filter both snapshots' traces as
 * for top (the type counts are not traces and stay whole). No addresses; --no-header-time as for
 * top.
 */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void help(FILE *f) {
  fprintf(f,
          "Usage: refgc diff OLD NEW [--by file|line|function|traceback|type] [--cumulative]\n"
          "                  [-n N] [--depth N] [--strip-path PREFIX] [--no-header-time]\n"
          "\n"
          "What changed from snapshot OLD to snapshot NEW: the keys whose live bytes changed\n"
          "most (largest absolute change first), with the change in bytes and blocks and the\n"
          "new totals; then the live objects by type whose count changed.\n"
          "\n"
          "Options:\n"
          "  --by KEY             file, line (default), function, traceback or type\n"
          "  --cumulative         count each block in every frame of its traceback\n"
          "  -n, --limit N        show the N largest changes (default 10; 0: all)\n"
          CLI_STAT_HELP_SHARED
          "  --no-header-time     leave out when and by which process each snapshot was taken\n"
          "  -h, --help           show this help\n"
          "\n"
          "Exit status: 0 on success, 2 for a wrong argument or an unreadable snapshot.\n");
}

/* A positional argument: OLD, then NEW (ctx: the diff_paths_t). */
typedef struct diff_paths_s {
  const char *paths[2];
  int n;
} diff_paths_t;

static int take_path(void *ctx, const char *arg) {
  diff_paths_t *dp = ctx;
  if (dp->n == 2)
    return cli_usage_error("two snapshots only: OLD and NEW (got a third: '%s')", arg);
  dp->paths[dp->n++] = arg;
  return 0;
}

static void print_snapshot_lines(const char *label, const char *path,
                                 const refgc_snapshot_info_t *in, int no_time) {
  char a[32], b[40], c[40];
  const char *est = in->sample_bytes ? "~" : "";
  printf("%s: %s\n", label, path);
  if (in->frames == 0) {
    printf("  traced: nothing (tracing was off)\n");
  } else {
    printf("  traced: %s%s (%s%s B) %s %s blocks", est, cli_size(in->traced_current, a, sizeof a),
           est, cli_count(in->traced_current, b, sizeof b),
           in->sample_bytes ? "estimated from" : "in", cli_count(in->trace_count, c, sizeof c));
    printf("; ");
    cli_print_sampling(in);
  }
  if (!no_time) {
    char when[64];
    printf("  taken: %s, pid %" PRIu64 ", %s\n", cli_taken_time(in, when, sizeof when), in->pid,
           cli_program_name(in));
  }
}

/* ---- type counts ----------------------------------------------------------------------------- */

typedef struct type_row_s {
  const char *type;
  uint64_t old_count, new_count, old_bytes, new_bytes;
} type_row_t;

static int64_t sdiff(uint64_t a, uint64_t b) { return (int64_t)(a - b); }

static uint64_t mag(int64_t v) { return v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v; }

static int type_row_cmp(const void *pa, const void *pb) {
  const type_row_t *a = pa, *b = pb;
  uint64_t ca = mag(sdiff(a->new_count, a->old_count)), cb = mag(sdiff(b->new_count, b->old_count));
  if (ca != cb) return ca > cb ? -1 : 1;
  uint64_t ba = mag(sdiff(a->new_bytes, a->old_bytes)), bb = mag(sdiff(b->new_bytes, b->old_bytes));
  if (ba != bb) return ba > bb ? -1 : 1;
  return strcmp(a->type, b->type);
}

static void print_type_changes(const refgc_snapshot_t *older, const refgc_snapshot_t *newer,
                               long limit) {
  size_t no = 0, nn = 0;
  const refgc_type_count_t *o = refgc_snapshot_type_counts(older, &no);
  const refgc_type_count_t *n = refgc_snapshot_type_counts(newer, &nn);
  if (!o || !n) return;
  type_row_t *rows = cli_xcalloc(no + nn + 1, sizeof *rows);
  size_t nr = 0;
  for (size_t i = 0; i < nn; i++) {
    rows[nr].type = n[i].type ? n[i].type : "";
    rows[nr].new_count = n[i].count;
    rows[nr].new_bytes = n[i].bytes;
    nr++;
  }
  for (size_t i = 0; i < no; i++) {
    const char *t = o[i].type ? o[i].type : "";
    size_t j;
    for (j = 0; j < nr; j++)
      if (strcmp(rows[j].type, t) == 0) break;
    if (j == nr) rows[nr++].type = t;
    rows[j].old_count += o[i].count;
    rows[j].old_bytes += o[i].bytes;
  }
  size_t changed = 0;
  for (size_t i = 0; i < nr; i++)
    if (rows[i].old_count != rows[i].new_count || rows[i].old_bytes != rows[i].new_bytes)
      rows[changed++] = rows[i];
  qsort(rows, changed, sizeof *rows, type_row_cmp);
  printf("\nLive objects by type (traced or not): ");
  if (changed == 0) {
    printf("no change\n");
    free(rows);
    return;
  }
  size_t shown = cli_rows_shown(limit, changed);
  printf("%zu of %zu types changed\n", changed, nr);
  printf("%11s %11s %11s %11s  %s\n", "count diff", "new count", "bytes diff", "new bytes",
         "type");
  for (size_t i = 0; i < shown; i++) {
    char a[48], b[48], c[40], d[32];
    printf("%11s %11s %11s %11s  %s\n",
           cli_count_signed(sdiff(rows[i].new_count, rows[i].old_count), a, sizeof a),
           cli_count(rows[i].new_count, b, sizeof b),
           cli_size_signed(sdiff(rows[i].new_bytes, rows[i].old_bytes), c, sizeof c),
           cli_size(rows[i].new_bytes, d, sizeof d),
           *rows[i].type ? cli_text(rows[i].type) : "(unnamed)");
  }
  if (shown < changed) printf("%11s ... and %zu more types\n", "", changed - shown);
  free(rows);
}

/* ---- the command -------------------------------------------------------------------------- */

static int diff_main(int argc, char **argv, cli_filters_t *fl) {
  diff_paths_t dp = {{NULL, NULL}, 0};
  cli_stat_opts_t o;
  int rc = cli_stat_parse(argc, argv, help, take_path, &dp, &o, fl);
  if (rc != CLI_CONTINUE) return rc;
  if (dp.n < 2) return cli_usage_error("two snapshots needed: refgc diff OLD NEW");
  if (cli_stat_check(&o) < 0) return CLI_EXIT_USAGE;
  const char *const *paths = dp.paths;
  refgc_group_t group = o.group;
  int cumulative = o.cumulative;

  refgc_snapshot_t *older = cli_load(paths[0]);
  if (!older) return CLI_EXIT_USAGE;
  refgc_snapshot_t *newer = cli_load(paths[1]);
  if (!newer) {
    refgc_snapshot_free(older);
    return CLI_EXIT_USAGE;
  }
  rc = CLI_EXIT_USAGE;
  refgc_snapshot_info_t io, inw;
  if (cli_info(older, paths[0], &io) < 0 || cli_info(newer, paths[1], &inw) < 0) goto out;

  /* The headers first: io and inw point into the unfiltered snapshots (the program's name),
   * which filtering frees; only their numbers are used after it. */
  print_snapshot_lines("Old", paths[0], &io, o.no_time);
  print_snapshot_lines("New", paths[1], &inw, o.no_time);
  io.program = inw.program = NULL;
  if (cli_filters_apply(fl, &older, paths[0]) < 0 || cli_filters_apply(fl, &newer, paths[1]) < 0)
    goto out;
  const char *est = (io.sample_bytes || inw.sample_bytes) ? "~" : "";
  uint64_t ob = io.traced_current, oc = io.trace_count, nb = inw.traced_current,
           nc = inw.trace_count;
  if (fl->n) {
    char x[CLI_TOTALS_SIZE], y[CLI_TOTALS_SIZE];
    cli_trace_totals(older, &ob, &oc);
    cli_trace_totals(newer, &nb, &nc);
    printf("Filtered (");
    cli_filters_print(fl, stdout);
    printf("): old %s, new %s pass\n", cli_totals(est, ob, oc, x, sizeof x),
           cli_totals(est, nb, nc, y, sizeof y));
  }
  {
    char a[CLI_TOTALS_SIZE];
    printf("Change%s: %s\n", fl->n ? " (filtered)" : "",
           cli_totals_signed(est, sdiff(nb, ob), sdiff(nc, oc), a, sizeof a));
  }

  size_t n = 0;
  refgc_stat_t *st = refgc_snapshot_compare(newer, older, group, cumulative, &n);
  if (!st && n == 0 && refgc_last_error() == REFGC_ENOMEM) {
    cli_error("out of memory while comparing the snapshots");
    goto out;
  }
  size_t shown = cli_rows_shown(o.limit, n);
  printf("\n");
  if (n == 0) {
    printf("No traced blocks in either snapshot.\n");
  } else {
    printf("Top %zu of %zu %s by size change%s:\n", shown, n, cli_group_plural(group),
           cumulative ? " (cumulative)" : "");
    printf("%5s %11s %15s %11s %11s %15s %11s  %s\n", "rank", "size diff", "bytes diff",
           "count diff", "new size", "new bytes", "new count", cli_group_name(group));
  }
  for (size_t i = 0; i < shown; i++) {
    const refgc_stat_t *s = &st[i];
    char t[6][56], u[6][64];
    snprintf(u[0], sizeof u[0], "%s%s", est, cli_size_signed(s->size_diff, t[0], sizeof t[0]));
    snprintf(u[1], sizeof u[1], "%s%s", est, cli_count_signed(s->size_diff, t[1], sizeof t[1]));
    snprintf(u[2], sizeof u[2], "%s%s", est, cli_count_signed(s->count_diff, t[2], sizeof t[2]));
    snprintf(u[3], sizeof u[3], "%s%s", est, cli_size(s->size, t[3], sizeof t[3]));
    snprintf(u[4], sizeof u[4], "%s%s", est, cli_count(s->size, t[4], sizeof t[4]));
    snprintf(u[5], sizeof u[5], "%s%s", est, cli_count(s->count, t[5], sizeof t[5]));
    printf("%5zu %11s %15s %11s %11s %15s %11s  %s\n", i + 1, u[0], u[1], u[2], u[3], u[4], u[5],
           cli_stat_key(s, group));
    cli_print_stat_frames(newer, s, group, o.depth);
  }
  if (!cumulative) cli_print_others(st, shown, n, group, est, 1);
  refgc_stats_free(st);
  print_type_changes(older, newer, o.limit);
  rc = cli_flush_stdout() < 0 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
out:
  refgc_snapshot_free(older);
  refgc_snapshot_free(newer);
  return rc;
}

int refgc_cmd_diff(int argc, char **argv) {
  cli_filters_t filters = {NULL, 0, 0};
  int rc = diff_main(argc, argv, &filters);
  cli_filters_free(&filters);
  return rc;
}
