/* refgc command — shared helpers (declared and described in tools/cli.h).
 *
 * Option parsing is a small getopt_long of our own (portable, no global state, positionals
 * anywhere); output files are written to a temporary file beside the target and renamed over
 * it when complete; sizes use binary units with one decimal; the progress display redraws one
 * stderr line with "\r" and an erase-to-end-of-line escape; JSON strings are escaped byte by
 * byte with a UTF-8 validator so that any C string becomes valid JSON.
 */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

const char *cli_cmd = "";

/* ---- messages ---------------------------------------------------------------------------- */

static void vmessage(const char *kind, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
static void vmessage(const char *kind, const char *fmt, va_list ap) {
  fflush(stdout);
  if (cli_cmd && *cli_cmd)
    fprintf(stderr, "refgc %s: %s", cli_cmd, kind);
  else
    fprintf(stderr, "refgc: %s", kind);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
}

void cli_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vmessage("", fmt, ap);
  va_end(ap);
}

void cli_note(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vmessage("note: ", fmt, ap);
  va_end(ap);
}

int cli_usage_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vmessage("", fmt, ap);
  va_end(ap);
  if (cli_cmd && *cli_cmd)
    fprintf(stderr, "Try 'refgc %s --help'.\n", cli_cmd);
  else
    fprintf(stderr, "Try 'refgc --help'.\n");
  return CLI_EXIT_USAGE;
}

/* ---- options ----------------------------------------------------------------------------- */

void cli_parser_init(cli_parser_t *p, int argc, char **argv) {
  p->argc = argc;
  p->argv = argv;
  p->i = 1;
  p->only_args = 0;
  p->pending_short = NULL;
}

static int short_option(cli_parser_t *p, const cli_opt_t *opts, const char *s,
                        const char **value) {
  /* s points at the option letter; what follows it is either its value or more flags */
  const cli_opt_t *o;
  for (o = opts; o->long_name; o++)
    if (o->short_name && o->short_name == *s) break;
  if (!o->long_name) {
    cli_usage_error("unknown option '-%c'", *s);
    return CLI_ERROR;
  }
  p->pending_short = NULL;
  if (o->has_arg) {
    if (s[1]) {
      *value = s + 1;
    } else if (p->i < p->argc) {
      *value = p->argv[p->i++];
    } else {
      cli_usage_error("option '-%c' needs a value", *s);
      return CLI_ERROR;
    }
  } else {
    *value = NULL;
    if (s[1]) p->pending_short = s + 1;
  }
  return o->id;
}

int cli_next(cli_parser_t *p, const cli_opt_t *opts, const char **value) {
  *value = NULL;
  if (p->pending_short) return short_option(p, opts, p->pending_short, value);
  for (;;) {
    if (p->i >= p->argc) return CLI_END;
    const char *a = p->argv[p->i++];
    if (p->only_args || a[0] != '-' || a[1] == '\0') {
      *value = a;
      return CLI_ARG;
    }
    if (strcmp(a, "--") == 0) {
      p->only_args = 1;
      continue;
    }
    if (a[1] != '-') return short_option(p, opts, a + 1, value);
    const char *name = a + 2;
    const char *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    const cli_opt_t *o;
    for (o = opts; o->long_name; o++)
      if (strlen(o->long_name) == len && strncmp(o->long_name, name, len) == 0) break;
    if (!o->long_name) {
      cli_usage_error("unknown option '--%.*s'", (int)len, name);
      return CLI_ERROR;
    }
    if (o->has_arg) {
      if (eq) {
        *value = eq + 1;
      } else if (p->i < p->argc) {
        *value = p->argv[p->i++];
      } else {
        cli_usage_error("option '--%s' needs a value", o->long_name);
        return CLI_ERROR;
      }
    } else if (eq) {
      cli_usage_error("option '--%s' takes no value", o->long_name);
      return CLI_ERROR;
    }
    return o->id;
  }
}

int cli_parse_count(const char *option, const char *value, long max, long *out) {
  char *end;
  errno = 0;
  long v = (value && *value >= '0' && *value <= '9') ? strtol(value, &end, 10) : -1;
  if (v < 0 || errno || *end || v > max) {
    cli_usage_error("%s: '%s' is not a number from 0 to %ld", option, value ? value : "",
                    max);
    return -1;
  }
  *out = v;
  return 0;
}

static const char *const group_names[] = {"file", "line", "function", "traceback", "type"};
static const char *const group_plurals[] = {"files", "lines", "functions", "tracebacks",
                                            "types"};

int cli_parse_group(const char *value, refgc_group_t *out) {
  for (int g = 0; g < 5; g++) {
    if (strcmp(value, group_names[g]) == 0) {
      *out = (refgc_group_t)g;
      return 0;
    }
  }
  cli_usage_error("--by: unknown grouping '%s' (file, line, function, traceback or type)",
                  value);
  return -1;
}

const char *cli_group_name(refgc_group_t g) {
  return (unsigned)g < 5 ? group_names[g] : "?";
}

const char *cli_group_plural(refgc_group_t g) {
  return (unsigned)g < 5 ? group_plurals[g] : "?";
}

/* ---- snapshots ----------------------------------------------------------------------------- */

refgc_snapshot_t *cli_load(const char *path) {
  refgc_snapshot_t *s = refgc_snapshot_load(path);
  if (s) return s;
  const char *msg = refgc_snapshot_error();
  if (!msg || !*msg) msg = refgc_strerror(refgc_last_error());
  if (strstr(msg, path))
    cli_error("cannot load snapshot: %s", msg);
  else
    cli_error("cannot load snapshot %s: %s", path, msg);
  return NULL;
}

int cli_info(const refgc_snapshot_t *snap, const char *path, refgc_snapshot_info_t *info) {
  memset(info, 0, sizeof *info);
  info->size = (uint32_t)sizeof *info;
  if (refgc_snapshot_info(snap, info) != 0) {
    cli_error("%s: cannot read the snapshot's summary", path);
    return -1;
  }
  return 0;
}

void cli_filters_add(cli_filters_t *fl, int inclusive, const char *pattern) {
  fl->f = cli_xrealloc(fl->f, (fl->n + 1) * sizeof *fl->f);
  memset(&fl->f[fl->n], 0, sizeof fl->f[fl->n]);
  fl->f[fl->n].inclusive = inclusive;
  fl->f[fl->n].file_pattern = pattern;
  fl->n++;
}

int cli_filters_apply(cli_filters_t *fl, refgc_snapshot_t **snap, const char *path) {
  if (fl->n == 0) return 0;
  for (size_t i = 0; i < fl->n; i++) fl->f[i].all_frames = fl->all_frames;
  refgc_snapshot_t *s = refgc_snapshot_filter(*snap, fl->f, fl->n);
  refgc_snapshot_free(*snap);
  *snap = s;
  if (!s) {
    cli_error("%s: cannot filter the traces: %s", path, refgc_strerror(refgc_last_error()));
    return -1;
  }
  return 0;
}

void cli_filters_print(const cli_filters_t *fl, FILE *f) {
  for (size_t i = 0; i < fl->n; i++)
    fprintf(f, "%s--%s '%s'", i ? " " : "", fl->f[i].inclusive ? "include" : "exclude",
            fl->f[i].file_pattern);
  if (fl->all_frames) fprintf(f, " --all-frames");
}

void cli_filters_free(cli_filters_t *fl) {
  free(fl->f);
  fl->f = NULL;
  fl->n = 0;
}

void cli_trace_totals(const refgc_snapshot_t *snap, uint64_t *bytes, uint64_t *count) {
  size_t n = 0;
  const refgc_trace_t *t = refgc_snapshot_traces(snap, &n);
  double b = 0, c = 0;
  for (size_t i = 0; t && i < n; i++) {
    double w = t[i].weight >= 1 ? t[i].weight : 1;
    b += (double)t[i].size * w;
    c += w;
  }
  *bytes = (uint64_t)(b + 0.5);
  *count = (uint64_t)(c + 0.5);
}

/* ---- top and diff ---------------------------------------------------------------------------- */

enum {
  O_HELP = 1, O_BY, O_CUMULATIVE, O_LIMIT, O_DEPTH, O_STRIP, O_NO_TIME, O_INCLUDE, O_EXCLUDE,
  O_ALL_FRAMES
};

static const cli_opt_t stat_options[] = {
    {"help", 'h', 0, O_HELP},          {"by", 0, 1, O_BY},
    {"cumulative", 0, 0, O_CUMULATIVE}, {"limit", 'n', 1, O_LIMIT},
    {"depth", 0, 1, O_DEPTH},          {"strip-path", 0, 1, O_STRIP},
    {"no-header-time", 0, 0, O_NO_TIME}, {"include", 0, 1, O_INCLUDE},
    {"exclude", 0, 1, O_EXCLUDE},      {"all-frames", 0, 0, O_ALL_FRAMES},
    {NULL, 0, 0, 0},
};

int cli_stat_parse(int argc, char **argv, void (*help)(FILE *f),
                   int (*take_arg)(void *ctx, const char *arg), void *ctx, cli_stat_opts_t *o,
                   cli_filters_t *fl) {
  cli_parser_t p;
  const char *v;
  int id, rc;
  o->group = REFGC_GROUP_LINE;
  o->cumulative = 0;
  o->no_time = 0;
  o->limit = 10;
  o->depth = -1;
  cli_parser_init(&p, argc, argv);
  while ((id = cli_next(&p, stat_options, &v)) != CLI_END) {
    switch (id) {
    case CLI_ERROR: return CLI_EXIT_USAGE;
    case O_HELP: help(stdout); return CLI_EXIT_OK;
    case O_BY:
      if (cli_parse_group(v, &o->group) < 0) return CLI_EXIT_USAGE;
      break;
    case O_CUMULATIVE: o->cumulative = 1; break;
    case O_LIMIT:
      if (cli_parse_count("-n", v, 1000000000L, &o->limit) < 0) return CLI_EXIT_USAGE;
      break;
    case O_DEPTH:
      if (cli_parse_count("--depth", v, REFGC_TRACE_MAX_FRAMES, &o->depth) < 0)
        return CLI_EXIT_USAGE;
      break;
    case O_STRIP: cli_strip_path_add(v); break;
    case O_NO_TIME: o->no_time = 1; break;
    case O_INCLUDE: cli_filters_add(fl, 1, v); break;
    case O_EXCLUDE: cli_filters_add(fl, 0, v); break;
    case O_ALL_FRAMES: fl->all_frames = 1; break;
    case CLI_ARG:
      if ((rc = take_arg(ctx, v)) != 0) return rc;
      break;
    }
  }
  return CLI_CONTINUE;
}

int cli_stat_check(const cli_stat_opts_t *o) {
  if (o->cumulative && o->group != REFGC_GROUP_FILE && o->group != REFGC_GROUP_LINE &&
      o->group != REFGC_GROUP_FUNCTION) {
    cli_usage_error("--cumulative works with --by file, line or function");
    return -1;
  }
  return 0;
}

size_t cli_rows_shown(long limit, size_t n) {
  return (limit == 0 || (size_t)limit > n) ? n : (size_t)limit;
}

const char *cli_stat_key(const refgc_stat_t *s, refgc_group_t g) {
  const char *k = s->key ? s->key : "";
  if (g == REFGC_GROUP_TYPE) return *k ? cli_text(k) : "(raw blocks)";
  k = cli_strip_key(k);
  return *k ? cli_text(k) : "(unknown)";
}

void cli_print_stat_frames(refgc_snapshot_t *snap, const refgc_stat_t *s, refgc_group_t g,
                           long depth) {
  if (g != REFGC_GROUP_TRACEBACK || s->traceback == UINT32_MAX) return;
  const uint32_t *frames = NULL;
  size_t nf = refgc_snapshot_traceback(snap, s->traceback, &frames);
  size_t lim = depth >= 0 && (size_t)depth < nf ? (size_t)depth : nf;
  for (size_t j = 0; j < lim; j++) {
    char lab[1024];
    printf("        %s\n", cli_text(cli_frame_label(refgc_snapshot_frame(snap, frames[j]),
                                                    CLI_FRAME_FULL, lab, sizeof lab)));
  }
  if (lim < nf) printf("        ...\n");
}

static char *totals(const char *est, const char *size, const char *bytes, const char *count,
                    char *buf, size_t n) {
  snprintf(buf, n, "%s%s (%s%s B) in %s%s blocks", est, size, est, bytes, est, count);
  return buf;
}

char *cli_totals(const char *est, uint64_t bytes, uint64_t count, char *buf, size_t n) {
  char a[32], b[40], c[40];
  return totals(est, cli_size(bytes, a, sizeof a), cli_count(bytes, b, sizeof b),
                cli_count(count, c, sizeof c), buf, n);
}

char *cli_totals_signed(const char *est, int64_t bytes, int64_t count, char *buf, size_t n) {
  char a[48], b[56], c[56];
  return totals(est, cli_size_signed(bytes, a, sizeof a), cli_count_signed(bytes, b, sizeof b),
                cli_count_signed(count, c, sizeof c), buf, n);
}

void cli_print_others(const refgc_stat_t *st, size_t shown, size_t n, refgc_group_t g,
                      const char *est, int diff) {
  if (shown >= n) return;
  uint64_t size = 0, count = 0, size_diff = 0, count_diff = 0; /* diffs: two's complement */
  for (size_t i = shown; i < n; i++) {
    size += st[i].size;
    count += st[i].count;
    size_diff += (uint64_t)st[i].size_diff;
    count_diff += (uint64_t)st[i].count_diff;
  }
  char a[CLI_TOTALS_SIZE];
  printf("%5s %s: the other %zu %s\n", "",
         diff ? cli_totals_signed(est, (int64_t)size_diff, (int64_t)count_diff, a, sizeof a)
              : cli_totals(est, size, count, a, sizeof a),
         n - shown, cli_group_plural(g));
}

void cli_print_sampling(const refgc_snapshot_info_t *in) {
  char a[32];
  if (in->sample_bytes)
    printf("sampled: one per %s on average (~: estimate)\n",
           cli_size(in->sample_bytes, a, sizeof a));
  else
    printf("every allocation traced\n");
}

char *cli_taken_time(const refgc_snapshot_info_t *in, char *buf, size_t n) {
  time_t t = (time_t)in->time;
  struct tm tm;
  snprintf(buf, n, "?");
  if (in->time > 0 && gmtime_r(&t, &tm)) strftime(buf, n, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buf;
}

const char *cli_program_name(const refgc_snapshot_info_t *in) {
  return in->program && *in->program ? cli_text(in->program) : "(unknown program)";
}

int cli_flush_stdout(void) {
  if (fflush(stdout) != 0 || ferror(stdout)) {
    cli_error("cannot write the output");
    return -1;
  }
  return 0;
}

/* ---- output -------------------------------------------------------------------------------- */

int cli_output_open(cli_output_t *out, const char *path) {
  out->f = NULL;
  out->path = NULL;
  out->tmp = NULL;
  if (!path || strcmp(path, "-") == 0) {
    out->f = stdout;
    return 0;
  }
  size_t n = strlen(path) + 16;
  out->tmp = cli_xmalloc(n);
  snprintf(out->tmp, n, "%s.tmp.XXXXXX", path);
  int fd = mkstemp(out->tmp);
  if (fd < 0) {
    cli_error("cannot write %s: %s", path, strerror(errno));
    free(out->tmp);
    out->tmp = NULL;
    return -1;
  }
  mode_t mask = umask(0);
  umask(mask);
  (void)fchmod(fd, 0666 & ~mask);
  out->f = fdopen(fd, "w");
  if (!out->f) {
    cli_error("cannot write %s: %s", path, strerror(errno));
    close(fd);
    unlink(out->tmp);
    free(out->tmp);
    out->tmp = NULL;
    return -1;
  }
  out->path = path;
  return 0;
}

int cli_output_close(cli_output_t *out, int ok) {
  int rc = 0;
  if (!out->f) return -1;
  if (!out->tmp) { /* stdout */
    if (fflush(stdout) != 0 || ferror(stdout)) {
      if (ok) cli_error("cannot write the output: %s", strerror(errno));
      rc = -1;
    }
    out->f = NULL;
    return rc;
  }
  int werr = fflush(out->f) != 0 || ferror(out->f);
  int saved = errno;
  if (fclose(out->f) != 0 && !werr) {
    werr = 1;
    saved = errno;
  }
  out->f = NULL;
  if (ok && werr) cli_error("cannot write %s: %s", out->path, strerror(saved));
  if (!ok || werr) {
    unlink(out->tmp);
    rc = -1;
  } else if (rename(out->tmp, out->path) != 0) {
    cli_error("cannot write %s: %s", out->path, strerror(errno));
    unlink(out->tmp);
    rc = -1;
  }
  free(out->tmp);
  out->tmp = NULL;
  return rc;
}

/* ---- numbers ------------------------------------------------------------------------------- */

char *cli_size(uint64_t bytes, char *buf, size_t n) {
  static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  if (bytes < 1024) {
    snprintf(buf, n, "%" PRIu64 " B", bytes);
    return buf;
  }
  double v = (double)bytes / 1024.0;
  int u = 0;
  while (v >= 1023.95 && u < 5) {
    v /= 1024.0;
    u++;
  }
  snprintf(buf, n, "%.1f %s", v, units[u]);
  return buf;
}

/* `v` with its sign ("+" or "-") and its magnitude formatted by `fmt`; `zero` when v is 0. */
static char *with_sign(int64_t v, char *(*fmt)(uint64_t, char *, size_t), const char *zero,
                       char *buf, size_t n) {
  if (v == 0) {
    snprintf(buf, n, "%s", zero);
    return buf;
  }
  uint64_t mag = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
  char tmp[40];
  fmt(mag, tmp, sizeof tmp);
  snprintf(buf, n, "%c%s", v < 0 ? '-' : '+', tmp);
  return buf;
}

char *cli_size_signed(int64_t bytes, char *buf, size_t n) {
  return with_sign(bytes, cli_size, "0 B", buf, n);
}

char *cli_count(uint64_t v, char *buf, size_t n) {
  char digits[32];
  int len = snprintf(digits, sizeof digits, "%" PRIu64, v);
  char tmp[40];
  size_t o = 0;
  for (int i = 0; i < len; i++) {
    if (i > 0 && (len - i) % 3 == 0) tmp[o++] = ',';
    tmp[o++] = digits[i];
  }
  tmp[o] = '\0';
  snprintf(buf, n, "%s", tmp);
  return buf;
}

char *cli_count_signed(int64_t v, char *buf, size_t n) {
  return with_sign(v, cli_count, "0", buf, n);
}

/* ---- frames -------------------------------------------------------------------------------- */

static char **strip_prefixes;
static size_t nstrip;

void cli_strip_path_add(const char *prefix) {
  if (!prefix || !*prefix) return;
  strip_prefixes = cli_xrealloc(strip_prefixes, (nstrip + 1) * sizeof *strip_prefixes);
  strip_prefixes[nstrip++] = cli_xstrdup(prefix);
}

const char *cli_strip_path(const char *path) {
  if (!path) return "";
  for (size_t i = 0; i < nstrip; i++) {
    size_t len = strlen(strip_prefixes[i]);
    if (strncmp(path, strip_prefixes[i], len) == 0) {
      path += len;
      break;
    }
  }
  return path;
}

const char *cli_strip_key(const char *key) { return cli_strip_path(key); }

const char *cli_basename(const char *path) {
  if (!path) return "";
  const char *s = strrchr(path, '/');
  return s ? s + 1 : path;
}

char *cli_frame_label(const refgc_frame_info_t *f, int kind, char *buf, size_t n) {
  const char *fn = f && f->function ? f->function : "";
  const char *file = f && f->file ? cli_strip_path(f->file) : "";
  const char *mod = f && f->module ? cli_basename(f->module) : "";
  int line = f ? f->line : 0;
  if (*fn && kind == CLI_FRAME_SHORT) {
    snprintf(buf, n, "%s", fn);
  } else if (*fn && *file) {
    if (line > 0)
      snprintf(buf, n, "%s (%s:%d)", fn, file, line);
    else
      snprintf(buf, n, "%s (%s)", fn, file);
  } else if (*fn && *mod) {
    snprintf(buf, n, "%s (%s)", fn, mod);
  } else if (*fn) {
    snprintf(buf, n, "%s", fn);
  } else if (*file) {
    if (line > 0)
      snprintf(buf, n, "%s:%d", file, line);
    else
      snprintf(buf, n, "%s", file);
  } else if (*mod) {
    snprintf(buf, n, "%s+0x%" PRIxPTR, mod, f->offset);
  } else {
    snprintf(buf, n, "???");
  }
  return buf;
}

/* ---- progress ------------------------------------------------------------------------------ */

double cli_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void cli_progress_begin(cli_progress_t *p, const char *what) {
  const char *env = getenv("REFGC_PROGRESS");
  p->what = what;
  p->start = cli_now();
  p->last = 0;
  p->shown = 0;
  if (env && strcmp(env, "0") == 0)
    p->enabled = 0;
  else if (env && strcmp(env, "1") == 0)
    p->enabled = 1;
  else
    p->enabled = isatty(STDERR_FILENO);
}

void cli_progress_update(cli_progress_t *p, uint64_t done, uint64_t total) {
  if (!p->enabled) return;
  double t = cli_now();
  if (t - p->start < 1.0 || t - p->last < 0.1) return;
  p->last = t;
  char d[40], tot[40];
  cli_count(done, d, sizeof d);
  if (total) {
    cli_count(total, tot, sizeof tot);
    fprintf(stderr, "\rrefgc %s: %s %3d%% (%s/%s)\033[K", cli_cmd, p->what,
            (int)(done >= total ? 100 : done * 100 / total), d, tot);
  } else {
    fprintf(stderr, "\rrefgc %s: %s %s\033[K", cli_cmd, p->what, d);
  }
  fflush(stderr);
  p->shown = 1;
}

void cli_progress_end(cli_progress_t *p) {
  if (p->shown) {
    fprintf(stderr, "\r\033[K");
    fflush(stderr);
  }
  p->shown = 0;
}

/* ---- JSON ---------------------------------------------------------------------------------- */

size_t cli_utf8_len(const unsigned char *s, size_t avail) {
  unsigned c = s[0];
  if (c < 0x80) return 1;
  size_t need;
  unsigned lo = 0x80, hi = 0xBF; /* range of the second byte */
  if (c >= 0xC2 && c <= 0xDF) {
    need = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    need = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F; /* no UTF-16 surrogates */
  } else if (c >= 0xF0 && c <= 0xF4) {
    need = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (avail < need) return 0;
  if (s[1] < lo || s[1] > hi) return 0;
  for (size_t i = 2; i < need; i++)
    if (s[i] < 0x80 || s[i] > 0xBF) return 0;
  return need;
}

size_t cli_utf8_put(FILE *f, const unsigned char *s, size_t avail) {
  size_t n = cli_utf8_len(s, avail);
  if (n) fwrite(s, 1, n, f);
  return n;
}

void cli_json_string_n(FILE *f, const char *str, size_t len) {
  const unsigned char *s = (const unsigned char *)str;
  fputc('"', f);
  size_t i = 0;
  while (i < len) {
    unsigned c = s[i];
    switch (c) {
    case '"': fputs("\\\"", f); i++; continue;
    case '\\': fputs("\\\\", f); i++; continue;
    case '\n': fputs("\\n", f); i++; continue;
    case '\r': fputs("\\r", f); i++; continue;
    case '\t': fputs("\\t", f); i++; continue;
    case '\b': fputs("\\b", f); i++; continue;
    case '\f': fputs("\\f", f); i++; continue;
    default: break;
    }
    size_t n;
    if (c < 0x20 || c == 0x7F) {
      fprintf(f, "\\u%04x", c);
      i++;
    } else if (c == '/' && i > 0 && s[i - 1] == '<') {
      fputs("\\/", f); /* "</script>" stays harmless inside HTML */
      i++;
    } else if (c == 0xE2 && i + 2 < len && s[i + 1] == 0x80 &&
               (s[i + 2] == 0xA8 || s[i + 2] == 0xA9)) {
      fprintf(f, "\\u%04x", 0x2000u + (s[i + 2] - 0x80u)); /* U+2028, U+2029 */
      i += 3;
    } else if ((n = cli_utf8_put(f, s + i, len - i)) > 0) {
      i += n;
    } else {
      fprintf(f, "\\u%04x", c); /* not UTF-8: the byte as U+00XX */
      i++;
    }
  }
  fputc('"', f);
}

void cli_json_string(FILE *f, const char *s) {
  if (!s) s = "";
  cli_json_string_n(f, s, strlen(s));
}

/* ---- text for terminals ------------------------------------------------------------------- */

const char *cli_text(const char *str) {
  static char bufs[8][4096];
  static unsigned next;
  char *out = bufs[next++ % 8];
  const unsigned char *s = (const unsigned char *)(str ? str : "");
  size_t len = strlen((const char *)s), o = 0, cap = sizeof bufs[0];
  for (size_t i = 0; i < len && o + 5 < cap;) {
    unsigned c = s[i];
    size_t n = c < 0x80 ? 1 : cli_utf8_len(s + i, len - i);
    if (c == '\n' || c == '\t' || c == '\r') {
      out[o++] = '\\';
      out[o++] = c == '\n' ? 'n' : c == '\t' ? 't' : 'r';
      i++;
    } else if (c < 0x20 || c == 0x7F || n == 0) {
      o += (size_t)snprintf(out + o, cap - o, "\\x%02x", c);
      i++;
    } else {
      if (o + n >= cap) break;
      memcpy(out + o, s + i, n);
      o += n;
      i += n;
    }
  }
  out[o] = '\0';
  return out;
}

/* ---- small utilities ----------------------------------------------------------------------- */

static void out_of_memory(void) {
  cli_error("out of memory");
  exit(CLI_EXIT_USAGE);
}

void *cli_xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) out_of_memory();
  return p;
}

void *cli_xcalloc(size_t count, size_t size) {
  void *p = calloc(count ? count : 1, size ? size : 1);
  if (!p) out_of_memory();
  return p;
}

void *cli_xrealloc(void *p, size_t n) {
  void *q = realloc(p, n ? n : 1);
  if (!q) out_of_memory();
  return q;
}

char *cli_xstrdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *p = cli_xmalloc(n);
  memcpy(p, s, n);
  return p;
}
