/* refgc top — the largest allocation sites of a snapshot (tracemalloc's Snapshot.statistics).
 *
 * Loads the snapshot, groups its traces with refgc_snapshot_statistics (by file, line,
 * function, whole traceback or object type; --cumulative counts a block in every frame of its
 * traceback) and prints a header (traced total, trace count, sampling) and a table: rank,
 * size human-readable and in exact bytes, block count, average block size, key. With
 * --by traceback each row is followed by its frames, innermost first. Figures estimated from a
 * sampled trace are marked with "~". --include/--exclude keep or drop the blocks allocated in
 * files matching a pattern (refgc_snapshot_filter, as tracemalloc's filters) and the header then
 * also gives the totals that pass. Addresses are never printed, names are printed with control
 * characters and invalid UTF-8 escaped (cli_text); --no-header-time leaves out the line that
 * says when, by which process and program the snapshot was taken, so that the output of a
 * deterministic program is the same on every run (the golden files in tests/cli/).
 */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void help(FILE *f) {
  fprintf(f,
          "Usage: refgc top SNAPSHOT [--by file|line|function|traceback|type] [--cumulative]\n"
          "                 [-n N] [--depth N] [--strip-path PREFIX] [--no-header-time]\n"
          "\n"
          "The largest allocation sites of a snapshot: for each key, the bytes of its live\n"
          "blocks (human-readable and exact), their count and average size.\n"
          "\n"
          "Options:\n"
          "  --by KEY             group by the innermost frame's file, its file and line (the\n"
          "                       default), its function, the whole traceback, or the object\n"
          "                       type (raw blocks of refgc_malloc are \"(raw blocks)\")\n"
          "  --cumulative         count each block once in every file, line or function of its\n"
          "                       traceback, not only the innermost (--by file|line|function)\n"
          "  -n, --limit N        show the N largest rows (default 10; 0: all)\n"
          CLI_STAT_HELP_SHARED
          "  --no-header-time     leave out when, by which process and program the snapshot\n"
          "                       was taken (for output that is the same on every run)\n"
          "  -h, --help           show this help\n"
          "\n"
          "Figures of a sampled snapshot (REFGC_TRACE_SAMPLE) are estimates, marked \"~\".\n"
          "Exit status: 0 on success, 2 for a wrong argument or an unreadable snapshot.\n");
}

/* A positional argument: the snapshot (ctx: where its path goes). */
static int take_path(void *ctx, const char *arg) {
  const char **path = ctx;
  if (*path) return cli_usage_error("one snapshot only (got '%s' and '%s')", *path, arg);
  *path = arg;
  return 0;
}

/* The "Traced:" line of the header. */
static void print_traced_line(const refgc_snapshot_info_t *in, const char *est) {
  char a[32], b[40], c[40], d[32], e[40];
  if (in->frames == 0) {
    printf("Traced: nothing (tracing was off when the snapshot was taken)\n");
    return;
  }
  /* when sampled, trace_count is the number of sampled blocks, not an estimate */
  printf("Traced: %s%s (%s%s B) %s %s blocks; peak %s%s (%s%s B); %d frames; ", est,
         cli_size(in->traced_current, a, sizeof a), est,
         cli_count(in->traced_current, b, sizeof b), in->sample_bytes ? "estimated from" : "in",
         cli_count(in->trace_count, c, sizeof c), est, cli_size(in->traced_peak, d, sizeof d), est,
         cli_count(in->traced_peak, e, sizeof e), in->frames);
  cli_print_sampling(in);
}

static void print_taken_line(const refgc_snapshot_info_t *in) {
  char when[64];
  printf("Taken: %s, %.3f s after tracing's clock started, pid %" PRIu64 ", %s\n",
         cli_taken_time(in, when, sizeof when), in->uptime, in->pid, cli_program_name(in));
}

static int top_main(int argc, char **argv, cli_filters_t *fl) {
  const char *path = NULL;
  cli_stat_opts_t o;
  int rc = cli_stat_parse(argc, argv, help, take_path, &path, &o, fl);
  if (rc != CLI_CONTINUE) return rc;
  if (!path) return cli_usage_error("which snapshot? (refgc top SNAPSHOT)");
  if (cli_stat_check(&o) < 0) return CLI_EXIT_USAGE;
  refgc_group_t group = o.group;
  int cumulative = o.cumulative;

  refgc_snapshot_t *snap = cli_load(path);
  if (!snap) return CLI_EXIT_USAGE;
  refgc_snapshot_info_t in;
  if (cli_info(snap, path, &in) < 0) {
    refgc_snapshot_free(snap);
    return CLI_EXIT_USAGE;
  }
  const char *est = in.sample_bytes ? "~" : "";

  /* The header first: `in` points into the unfiltered snapshot, which filtering frees. */
  printf("Snapshot: %s\n", path);
  print_traced_line(&in, est);
  if (!o.no_time) print_taken_line(&in);
  memset(&in, 0, sizeof in);
  if (cli_filters_apply(fl, &snap, path) < 0) return CLI_EXIT_USAGE;
  if (fl->n) {
    uint64_t b, c;
    char x[CLI_TOTALS_SIZE];
    cli_trace_totals(snap, &b, &c);
    printf("Filtered (");
    cli_filters_print(fl, stdout);
    printf("): %s pass\n", cli_totals(est, b, c, x, sizeof x));
  }

  size_t n = 0;
  refgc_stat_t *st = refgc_snapshot_statistics(snap, group, cumulative, &n);
  if (!st && n == 0 && refgc_last_error() == REFGC_ENOMEM) {
    cli_error("%s: out of memory while grouping the traces", path);
    refgc_snapshot_free(snap);
    return CLI_EXIT_USAGE;
  }
  size_t shown = cli_rows_shown(o.limit, n);
  printf("\n");
  if (n == 0) {
    printf("No traced blocks.\n");
  } else {
    printf("Top %zu of %zu %s%s:\n", shown, n, cli_group_plural(group),
           cumulative ? " (cumulative: a block counts in every frame of its traceback)" : "");
    printf("%5s %11s %15s %11s %11s  %s\n", "rank", "size", "bytes", "count", "average",
           cli_group_name(group));
  }
  for (size_t i = 0; i < shown; i++) {
    char sz[32], by[48], ct[48], av[32];
    const refgc_stat_t *s = &st[i];
    char szs[40], bys[56], cts[56], avs[40];
    snprintf(szs, sizeof szs, "%s%s", est, cli_size(s->size, sz, sizeof sz));
    snprintf(bys, sizeof bys, "%s%s", est, cli_count(s->size, by, sizeof by));
    snprintf(cts, sizeof cts, "%s%s", est, cli_count(s->count, ct, sizeof ct));
    snprintf(avs, sizeof avs, "%s%s", est,
             cli_size(s->count ? (s->size + s->count / 2) / s->count : 0, av, sizeof av));
    printf("%5zu %11s %15s %11s %11s  %s\n", i + 1, szs, bys, cts, avs, cli_stat_key(s, group));
    cli_print_stat_frames(snap, s, group, o.depth);
  }
  if (!cumulative) cli_print_others(st, shown, n, group, est, 0);
  refgc_stats_free(st);
  refgc_snapshot_free(snap);
  return cli_flush_stdout() < 0 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
}

int refgc_cmd_top(int argc, char **argv) {
  cli_filters_t filters = {NULL, 0, 0};
  int rc = top_main(argc, argv, &filters);
  cli_filters_free(&filters);
  return rc;
}
