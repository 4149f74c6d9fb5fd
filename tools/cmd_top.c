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
#include <time.h>

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
          "  --depth N            --by traceback: show at most N frames of each (default: all)\n"
          "  --include PATTERN    keep only the blocks allocated in files matching PATTERN\n"
          "                       (fnmatch, e.g. '*/src/*.c'; repeatable)\n"
          "  --exclude PATTERN    leave out the blocks allocated in files matching PATTERN\n"
          "  --all-frames         --include/--exclude look at every frame of the traceback,\n"
          "                       not only the innermost\n"
          "  --strip-path PREFIX  remove PREFIX from the start of file names (repeatable)\n"
          "  --no-header-time     leave out when, by which process and program the snapshot\n"
          "                       was taken (for output that is the same on every run)\n"
          "  -h, --help           show this help\n"
          "\n"
          "Figures of a sampled snapshot (REFGC_TRACE_SAMPLE) are estimates, marked \"~\".\n"
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

/* The displayed key of a row. */
static const char *row_key(const refgc_stat_t *s, refgc_group_t g) {
  const char *k = s->key ? s->key : "";
  if (g == REFGC_GROUP_TYPE) return *k ? cli_text(k) : "(raw blocks)";
  k = cli_strip_key(k);
  return *k ? cli_text(k) : "(unknown)";
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
  if (in->sample_bytes)
    printf("sampled: one per %s on average (~: estimate)\n",
           cli_size(in->sample_bytes, a, sizeof a));
  else
    printf("every allocation traced\n");
}

static void print_taken_line(const refgc_snapshot_info_t *in) {
  char when[64] = "?";
  time_t t = (time_t)in->time;
  struct tm tm;
  if (in->time > 0 && gmtime_r(&t, &tm)) strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", &tm);
  printf("Taken: %s, %.3f s after tracing's clock started, pid %" PRIu64 ", %s\n", when,
         in->uptime, in->pid,
         in->program && *in->program ? cli_text(in->program) : "(unknown program)");
}

static int top_main(int argc, char **argv, cli_filters_t *fl) {
  cli_parser_t p;
  const char *v, *path = NULL;
  refgc_group_t group = REFGC_GROUP_LINE;
  int cumulative = 0, no_time = 0, id;
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
      if (path) return cli_usage_error("one snapshot only (got '%s' and '%s')", path, v);
      path = v;
      break;
    }
  }
  if (!path) return cli_usage_error("which snapshot? (refgc top SNAPSHOT)");
  if (cumulative && group != REFGC_GROUP_FILE && group != REFGC_GROUP_LINE &&
      group != REFGC_GROUP_FUNCTION)
    return cli_usage_error("--cumulative works with --by file, line or function");

  refgc_snapshot_t *snap = cli_load(path);
  if (!snap) return CLI_EXIT_USAGE;
  refgc_snapshot_info_t in;
  if (cli_info(snap, path, &in) < 0) {
    refgc_snapshot_free(snap);
    return CLI_EXIT_USAGE;
  }
  const char *est = in.sample_bytes ? "~" : "";
  if (cli_filters_apply(fl, &snap, path) < 0) return CLI_EXIT_USAGE;

  printf("Snapshot: %s\n", path);
  print_traced_line(&in, est);
  if (!no_time) print_taken_line(&in);
  if (fl->n) {
    uint64_t b, c;
    char x[32], y[40], z[40];
    cli_trace_totals(snap, &b, &c);
    printf("Filtered (");
    cli_filters_print(fl, stdout);
    printf("): %s%s (%s%s B) in %s%s blocks pass\n", est, cli_size(b, x, sizeof x), est,
           cli_count(b, y, sizeof y), est, cli_count(c, z, sizeof z));
  }

  size_t n = 0;
  refgc_stat_t *st = refgc_snapshot_statistics(snap, group, cumulative, &n);
  if (!st && n == 0 && refgc_last_error() == REFGC_ENOMEM) {
    cli_error("%s: out of memory while grouping the traces", path);
    refgc_snapshot_free(snap);
    return CLI_EXIT_USAGE;
  }
  size_t shown = (limit == 0 || (size_t)limit > n) ? n : (size_t)limit;
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
    printf("%5zu %11s %15s %11s %11s  %s\n", i + 1, szs, bys, cts, avs, row_key(s, group));
    if (group == REFGC_GROUP_TRACEBACK && s->traceback != UINT32_MAX) {
      const uint32_t *frames = NULL;
      size_t nf = refgc_snapshot_traceback(snap, s->traceback, &frames);
      size_t lim = depth >= 0 && (size_t)depth < nf ? (size_t)depth : nf;
      for (size_t j = 0; j < lim; j++) {
        char lab[1024];
        printf("        %s\n",
               cli_text(cli_frame_label(refgc_snapshot_frame(snap, frames[j]), CLI_FRAME_FULL,
                                        lab, sizeof lab)));
      }
      if (lim < nf) printf("        ...\n");
    }
  }
  if (!cumulative && shown < n) {
    uint64_t size = 0, count = 0;
    for (size_t i = shown; i < n; i++) {
      size += st[i].size;
      count += st[i].count;
    }
    char a[32], b[48], c[48];
    printf("%5s %s%s (%s%s B) in %s%s blocks: the other %zu %s\n", "", est,
           cli_size(size, a, sizeof a), est, cli_count(size, b, sizeof b), est,
           cli_count(count, c, sizeof c), n - shown, cli_group_plural(group));
  }
  refgc_stats_free(st);
  refgc_snapshot_free(snap);
  if (fflush(stdout) != 0 || ferror(stdout)) {
    cli_error("cannot write the output");
    return CLI_EXIT_USAGE;
  }
  return CLI_EXIT_OK;
}

int refgc_cmd_top(int argc, char **argv) {
  cli_filters_t filters = {NULL, 0, 0};
  int rc = top_main(argc, argv, &filters);
  cli_filters_free(&filters);
  return rc;
}
