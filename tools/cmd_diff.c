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
#include <time.h>

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
          "  --depth N            --by traceback: show at most N frames of each (default: all)\n"
          "  --include PATTERN    keep only the blocks allocated in files matching PATTERN\n"
          "                       (fnmatch, e.g. '*/src/*.c'; repeatable)\n"
          "  --exclude PATTERN    leave out the blocks allocated in files matching PATTERN\n"
          "  --all-frames         --include/--exclude look at every frame of the traceback,\n"
          "                       not only the innermost\n"
          "  --strip-path PREFIX  remove PREFIX from the start of file names (repeatable)\n"
          "  --no-header-time     leave out when and by which process each snapshot was taken\n"
          "  -h, --help           show this help\n"
          "\n"
          "Exit status: 0 on success, 2 for a wrong argument or an unreadable snapshot.\n");
}

enum {
  O_HELP = 1, O_BY, O_CUMULATIVE, O_LIMIT, O_DEPTH, O_STRIP, O_NO_TIME, O_INCLUDE, O_EXCLUDE,
  O_ALL_FRAMES
};

static const cli_opt_t options[] = {
    {"help", 'h', 0, O_HELP},          {"by", 0, 1, O_BY},
    {"cumulative", 0, 0, O_CUMULATIVE}, {"limit", 'n', 1, O_LIMIT},
    {"depth", 0, 1, O_DEPTH},          {"strip-path", 0, 1, O_STRIP},
    {"no-header-time", 0, 0, O_NO_TIME}, {"include", 0, 1, O_INCLUDE},
    {"exclude", 0, 1, O_EXCLUDE},      {"all-frames", 0, 0, O_ALL_FRAMES},
    {NULL, 0, 0, 0},
};

static const char *row_key(const refgc_stat_t *s, refgc_group_t g) {
  const char *k = s->key ? s->key : "";
  if (g == REFGC_GROUP_TYPE) return *k ? cli_text(k) : "(raw blocks)";
  k = cli_strip_key(k);
  return *k ? cli_text(k) : "(unknown)";
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
    if (in->sample_bytes)
      printf("; sampled: one per %s on average (~: estimate)\n",
             cli_size(in->sample_bytes, a, sizeof a));
    else
      printf("; every allocation traced\n");
  }
  if (!no_time) {
    char when[64] = "?";
    time_t t = (time_t)in->time;
    struct tm tm;
    if (in->time > 0 && gmtime_r(&t, &tm))
      strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", &tm);
    printf("  taken: %s, pid %" PRIu64 ", %s\n", when, in->pid,
           in->program && *in->program ? cli_text(in->program) : "(unknown program)");
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
  size_t shown = (limit == 0 || (size_t)limit > changed) ? changed : (size_t)limit;
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
  cli_parser_t p;
  const char *v, *paths[2] = {NULL, NULL};
  refgc_group_t group = REFGC_GROUP_LINE;
  int cumulative = 0, no_time = 0, id, npaths = 0;
  long limit = 10, depth = -1;
  cli_parser_init(&p, argc, argv);
  while ((id = cli_next(&p, options, &v)) != CLI_END) {
    switch (id) {
    case CLI_ERROR: return CLI_EXIT_USAGE;
    case O_HELP: help(stdout); return CLI_EXIT_OK;
    case O_BY:
      if (cli_parse_group(v, &group) < 0) return CLI_EXIT_USAGE;
      break;
    case O_CUMULATIVE: cumulative = 1; break;
    case O_LIMIT:
      if (cli_parse_count("-n", v, 1000000000L, &limit) < 0) return CLI_EXIT_USAGE;
      break;
    case O_DEPTH:
      if (cli_parse_count("--depth", v, REFGC_TRACE_MAX_FRAMES, &depth) < 0)
        return CLI_EXIT_USAGE;
      break;
    case O_STRIP: cli_strip_path_add(v); break;
    case O_NO_TIME: no_time = 1; break;
    case O_INCLUDE: cli_filters_add(fl, 1, v); break;
    case O_EXCLUDE: cli_filters_add(fl, 0, v); break;
    case O_ALL_FRAMES: fl->all_frames = 1; break;
    case CLI_ARG:
      if (npaths == 2)
        return cli_usage_error("two snapshots only: OLD and NEW (got a third: '%s')", v);
      paths[npaths++] = v;
      break;
    }
  }
  if (npaths < 2) return cli_usage_error("two snapshots needed: refgc diff OLD NEW");
  if (cumulative && group != REFGC_GROUP_FILE && group != REFGC_GROUP_LINE &&
      group != REFGC_GROUP_FUNCTION)
    return cli_usage_error("--cumulative works with --by file, line or function");

  refgc_snapshot_t *older = cli_load(paths[0]);
  if (!older) return CLI_EXIT_USAGE;
  refgc_snapshot_t *newer = cli_load(paths[1]);
  if (!newer) {
    refgc_snapshot_free(older);
    return CLI_EXIT_USAGE;
  }
  int rc = CLI_EXIT_USAGE;
  refgc_snapshot_info_t io, inw;
  if (cli_info(older, paths[0], &io) < 0 || cli_info(newer, paths[1], &inw) < 0) goto out;

  if (cli_filters_apply(fl, &older, paths[0]) < 0 || cli_filters_apply(fl, &newer, paths[1]) < 0)
    goto out;

  print_snapshot_lines("Old", paths[0], &io, no_time);
  print_snapshot_lines("New", paths[1], &inw, no_time);
  const char *est = (io.sample_bytes || inw.sample_bytes) ? "~" : "";
  uint64_t ob = io.traced_current, oc = io.trace_count, nb = inw.traced_current,
           nc = inw.trace_count;
  if (fl->n) {
    char x[32], y[40], z[40], x2[32], y2[40], z2[40];
    cli_trace_totals(older, &ob, &oc);
    cli_trace_totals(newer, &nb, &nc);
    printf("Filtered (");
    cli_filters_print(fl, stdout);
    printf("): old %s%s (%s%s B) in %s%s blocks, new %s%s (%s%s B) in %s%s blocks pass\n", est,
           cli_size(ob, x, sizeof x), est, cli_count(ob, y, sizeof y), est,
           cli_count(oc, z, sizeof z), est, cli_size(nb, x2, sizeof x2), est,
           cli_count(nb, y2, sizeof y2), est, cli_count(nc, z2, sizeof z2));
  }
  {
    char a[40], b[56], c[56];
    printf("Change%s: %s%s (%s%s B) in %s%s blocks\n", fl->n ? " (filtered)" : "", est,
           cli_size_signed(sdiff(nb, ob), a, sizeof a), est,
           cli_count_signed(sdiff(nb, ob), b, sizeof b), est,
           cli_count_signed(sdiff(nc, oc), c, sizeof c));
  }

  size_t n = 0;
  refgc_stat_t *st = refgc_snapshot_compare(newer, older, group, cumulative, &n);
  if (!st && n == 0 && refgc_last_error() == REFGC_ENOMEM) {
    cli_error("out of memory while comparing the snapshots");
    goto out;
  }
  size_t shown = (limit == 0 || (size_t)limit > n) ? n : (size_t)limit;
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
           row_key(s, group));
    if (group == REFGC_GROUP_TRACEBACK && s->traceback != UINT32_MAX) {
      const uint32_t *frames = NULL;
      size_t nf = refgc_snapshot_traceback(newer, s->traceback, &frames);
      size_t lim = depth >= 0 && (size_t)depth < nf ? (size_t)depth : nf;
      for (size_t j = 0; j < lim; j++) {
        char lab[1024];
        printf("        %s\n", cli_text(cli_frame_label(refgc_snapshot_frame(newer, frames[j]),
                                                        CLI_FRAME_FULL, lab, sizeof lab)));
      }
      if (lim < nf) printf("        ...\n");
    }
  }
  if (!cumulative && shown < n) {
    int64_t sd = 0, cd = 0;
    for (size_t i = shown; i < n; i++) {
      sd += st[i].size_diff;
      cd += st[i].count_diff;
    }
    char a[40], b[56], c[56];
    printf("%5s %s%s (%s%s B) in %s%s blocks: the other %zu %s\n", "", est,
           cli_size_signed(sd, a, sizeof a), est, cli_count_signed(sd, b, sizeof b), est,
           cli_count_signed(cd, c, sizeof c), n - shown, cli_group_plural(group));
  }
  refgc_stats_free(st);
  print_type_changes(older, newer, limit);
  rc = CLI_EXIT_OK;
  if (fflush(stdout) != 0 || ferror(stdout)) {
    cli_error("cannot write the output");
    rc = CLI_EXIT_USAGE;
  }
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
