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

char *cli_size_signed(int64_t bytes, char *buf, size_t n) {
  if (bytes == 0) {
    snprintf(buf, n, "0 B");
    return buf;
  }
  uint64_t mag = bytes < 0 ? (uint64_t)0 - (uint64_t)bytes : (uint64_t)bytes;
  char tmp[32];
  cli_size(mag, tmp, sizeof tmp);
  snprintf(buf, n, "%c%s", bytes < 0 ? '-' : '+', tmp);
  return buf;
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
  if (v == 0) {
    snprintf(buf, n, "0");
    return buf;
  }
  uint64_t mag = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
  char tmp[40];
  cli_count(mag, tmp, sizeof tmp);
  snprintf(buf, n, "%c%s", v < 0 ? '-' : '+', tmp);
  return buf;
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
    if (c < 0x20 || c == 0x7F) {
      fprintf(f, "\\u%04x", c);
      i++;
    } else if (c == '/' && i > 0 && s[i - 1] == '<') {
      fputs("\\/", f); /* "</script>" stays harmless inside HTML */
      i++;
    } else if (c < 0x80) {
      fputc((int)c, f);
      i++;
    } else {
      size_t n = cli_utf8_len(s + i, len - i);
      if (n == 0) {
        fprintf(f, "\\u%04x", c); /* not UTF-8: the byte as U+00XX */
        i++;
      } else if (n == 3 && c == 0xE2 && s[i + 1] == 0x80 &&
                 (s[i + 2] == 0xA8 || s[i + 2] == 0xA9)) {
        fprintf(f, "\\u%04x", 0x2000u + (s[i + 2] - 0x80u)); /* U+2028, U+2029 */
        i += 3;
      } else {
        fwrite(s + i, 1, n, f);
        i += n;
      }
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
