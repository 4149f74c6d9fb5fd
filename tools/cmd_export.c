/* refgc export — convert snapshots into the formats of other tools.
 *
 *   massif        valgrind massif's out-file (ms_print, massif-visualizer): one massif snapshot
 *                 per input snapshot, or a single snapshot's memory-over-time series
 *   heapsnapshot  Chrome DevTools' .heapsnapshot (Memory panel: Load): the object graph with
 *                 retainers, retained sizes and allocation stacks
 *   folded        Brendan Gregg's folded stacks ("main;f;g 1234"), for flamegraph.pl / inferno
 *   speedscope    speedscope's JSON file format (sampled profiles weighted by bytes and blocks)
 *   dot           Graphviz: the reference graph around the leak suspects
 *
 * This file parses the options, loads the input, opens the output (stdout or -o FILE, written
 * to a temporary file and renamed when complete) and calls the exporter (tools/export_*.c).
 * It also holds the helpers the exporters share (tools/export.h): the string table and the
 * per-traceback totals.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "export.h"

static void help(FILE *f) {
  fprintf(f,
          "Usage: refgc export SNAPSHOT... --format FORMAT [-o FILE] [options]\n"
          "\n"
          "Convert snapshots for other tools. Formats:\n"
          "  massif        valgrind massif's output (ms_print FILE, massif-visualizer): each\n"
          "                SNAPSHOT becomes a detailed massif snapshot (a time series when there\n"
          "                are several); a single SNAPSHOT's memory-over-time series becomes the\n"
          "                points of the graph\n"
          "  heapsnapshot  Chrome DevTools heap snapshot (Memory panel, Load): objects by type,\n"
          "                retainers, retained sizes, allocation stacks (needs a snapshot taken\n"
          "                with REFGC_SNAPSHOT_GRAPH)\n"
          "  folded        folded stacks for flame graphs: \"outer;...;inner BYTES\" per line\n"
          "                (flamegraph.pl --countname=bytes, inferno-flamegraph)\n"
          "  speedscope    speedscope's JSON format (https://www.speedscope.app): live bytes\n"
          "                and live blocks by allocation stack\n"
          "  dot           Graphviz (dot -Tsvg): the reference graph around the largest leak\n"
          "                suspects, or the largest retainers when there are none, with the\n"
          "                chain from a root highlighted (needs REFGC_SNAPSHOT_GRAPH)\n"
          "Only massif reads several snapshots; the other formats use the last one.\n"
          "\n"
          "Options:\n"
          "  -f, --format FORMAT  one of the formats above (required)\n"
          "  -o, --output FILE    write FILE (complete or not at all) instead of stdout\n"
          "  --max-nodes N        dot: show at most N objects (default 200)\n"
          "  --threshold PCT      massif: summarise subtrees below PCT%% of the total (default 1)\n"
          "  --strip-path PREFIX  remove PREFIX from the start of file names (repeatable)\n"
          "  -h, --help           show this help\n"
          "\n"
          "Exit status: 0 on success, 2 for a wrong argument, an unreadable snapshot or an\n"
          "output that cannot be written.\n");
}

enum { O_HELP = 1, O_FORMAT, O_OUTPUT, O_MAX_NODES, O_THRESHOLD, O_STRIP };

static const cli_opt_t options[] = {
    {"help", 'h', 0, O_HELP},         {"format", 'f', 1, O_FORMAT},
    {"output", 'o', 1, O_OUTPUT},     {"max-nodes", 0, 1, O_MAX_NODES},
    {"threshold", 0, 1, O_THRESHOLD}, {"strip-path", 0, 1, O_STRIP},
    {NULL, 0, 0, 0},
};

typedef int single_fn(FILE *f, refgc_snapshot_t *s, const char *path, const export_opts_t *o);

static const struct {
  const char *name;
  single_fn *single; /* NULL: massif */
} formats[] = {
    {"massif", NULL},
    {"heapsnapshot", export_heapsnapshot},
    {"folded", export_folded},
    {"speedscope", export_speedscope},
    {"dot", export_dot},
    {NULL, NULL},
};

int refgc_cmd_export(int argc, char **argv) {
  cli_parser_t p;
  const char *v, *format = NULL, *output = NULL;
  char **paths = cli_xcalloc((size_t)argc + 1, sizeof *paths);
  size_t npaths = 0;
  export_opts_t o = {200, 1.0, NULL};
  int id, rc = CLI_EXIT_USAGE;
  long lv;
  cli_parser_init(&p, argc, argv);
  while ((id = cli_next(&p, options, &v)) != CLI_END) {
    switch (id) {
    case CLI_ERROR: goto out;
    case O_HELP:
      help(stdout);
      rc = CLI_EXIT_OK;
      goto out;
    case O_FORMAT: format = v; break;
    case O_OUTPUT: output = v; break;
    case O_MAX_NODES:
      if (cli_parse_count("--max-nodes", v, 100000, &lv) < 0) goto out;
      if (lv < 1) {
        cli_usage_error("--max-nodes: at least 1");
        goto out;
      }
      o.max_nodes = (size_t)lv;
      break;
    case O_THRESHOLD: {
      char *end;
      double t = strtod(v, &end);
      if (end == v || *end || !(t >= 0 && t <= 100)) {
        cli_usage_error("--threshold: '%s' is not a percentage from 0 to 100", v);
        goto out;
      }
      o.threshold = t;
      break;
    }
    case O_STRIP: cli_strip_path_add(v); break;
    case CLI_ARG: paths[npaths++] = (char *)v; break;
    }
  }
  if (!format) {
    cli_usage_error("which format? --format massif|heapsnapshot|folded|speedscope|dot");
    goto out;
  }
  size_t fi;
  for (fi = 0; formats[fi].name; fi++)
    if (strcmp(formats[fi].name, format) == 0) break;
  if (!formats[fi].name) {
    cli_usage_error("unknown format '%s' (massif, heapsnapshot, folded, speedscope or dot)",
                    format);
    goto out;
  }
  if (npaths == 0) {
    cli_usage_error("which snapshot? (refgc export SNAPSHOT... --format %s)", format);
    goto out;
  }

  cli_output_t out;
  if (!formats[fi].single) {
    /* massif reads its inputs one at a time */
    if (cli_output_open(&out, output) < 0) goto out;
    int r = export_massif(out.f, paths, npaths, &o);
    if (cli_output_close(&out, r == 0) == 0 && r == 0) rc = CLI_EXIT_OK;
    goto out;
  }
  const char *path = paths[npaths - 1];
  if (npaths > 1)
    cli_note("the %s format takes one snapshot: using the last one, %s", format, path);
  refgc_snapshot_t *s = cli_load(path);
  if (!s) goto out;
  if (cli_output_open(&out, output) == 0) {
    int r = formats[fi].single(out.f, s, path, &o);
    if (cli_output_close(&out, r == 0) == 0 && r == 0) rc = CLI_EXIT_OK;
  }
  refgc_snapshot_free(s);
out:
  free(paths);
  return rc;
}

/* ---- string table ----------------------------------------------------------------------- */

static uint64_t hash_str(const char *s) {
  uint64_t h = 1469598103934665603ull; /* FNV-1a */
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

void strtab_init(strtab_t *t) { memset(t, 0, sizeof *t); }

static void strtab_rehash(strtab_t *t, size_t nslots) {
  free(t->slots);
  t->slots = cli_xcalloc(nslots, sizeof *t->slots);
  t->nslots = nslots;
  for (size_t i = 0; i < t->n; i++) {
    size_t h = (size_t)hash_str(t->strs[i]) & (nslots - 1);
    while (t->slots[h]) h = (h + 1) & (nslots - 1);
    t->slots[h] = (uint32_t)(i + 1);
  }
}

uint32_t strtab_intern(strtab_t *t, const char *s) {
  if (!s) s = "";
  if ((t->n + 1) * 2 > t->nslots) strtab_rehash(t, t->nslots ? t->nslots * 2 : 1024);
  size_t h = (size_t)hash_str(s) & (t->nslots - 1);
  while (t->slots[h]) {
    uint32_t i = t->slots[h] - 1;
    if (strcmp(t->strs[i], s) == 0) return i;
    h = (h + 1) & (t->nslots - 1);
  }
  if (t->n == t->cap) {
    t->cap = t->cap ? t->cap * 2 : 256;
    t->strs = cli_xrealloc(t->strs, t->cap * sizeof *t->strs);
  }
  t->strs[t->n] = cli_xstrdup(s);
  t->slots[h] = (uint32_t)(t->n + 1);
  return (uint32_t)t->n++;
}

void strtab_free(strtab_t *t) {
  for (size_t i = 0; i < t->n; i++) free(t->strs[i]);
  free(t->strs);
  free(t->slots);
  memset(t, 0, sizeof *t);
}

/* ---- traceback totals ------------------------------------------------------------------- */

static int tb_total_cmp(const void *pa, const void *pb) {
  const tb_total_t *a = pa, *b = pb;
  if (a->bytes != b->bytes) return a->bytes > b->bytes ? -1 : 1;
  return a->traceback < b->traceback ? -1 : a->traceback > b->traceback;
}

tb_total_t *export_traceback_totals(refgc_snapshot_t *s, size_t *n, uint64_t *total) {
  size_t nt = 0, ntb = refgc_snapshot_tracebacks(s);
  const refgc_trace_t *tr = refgc_snapshot_traces(s, &nt);
  *n = 0;
  *total = 0;
  if (!tr || nt == 0 || ntb == 0) return NULL;
  double *bytes = cli_xcalloc(ntb, sizeof *bytes);
  double *count = cli_xcalloc(ntb, sizeof *count);
  for (size_t i = 0; i < nt; i++) {
    if (tr[i].traceback >= ntb) continue;
    double w = tr[i].weight >= 1 ? tr[i].weight : 1;
    bytes[tr[i].traceback] += (double)tr[i].size * w;
    count[tr[i].traceback] += w;
  }
  size_t used = 0;
  for (size_t i = 0; i < ntb; i++)
    if (count[i] > 0) used++;
  tb_total_t *out = cli_xcalloc(used ? used : 1, sizeof *out);
  size_t k = 0;
  for (size_t i = 0; i < ntb; i++) {
    if (count[i] <= 0) continue;
    out[k].traceback = (uint32_t)i;
    out[k].bytes = (uint64_t)llround(bytes[i]);
    out[k].count = (uint64_t)llround(count[i]);
    *total += out[k].bytes;
    k++;
  }
  free(bytes);
  free(count);
  qsort(out, k, sizeof *out, tb_total_cmp);
  *n = k;
  return out;
}

char *export_frame_name(const refgc_frame_info_t *f, char *buf, size_t n) {
  cli_frame_label(f, CLI_FRAME_SHORT, buf, n);
  for (char *c = buf; *c; c++)
    if (*c == ';' || *c == '\n' || *c == '\r') *c = (*c == ';') ? ':' : ' ';
  return buf;
}
