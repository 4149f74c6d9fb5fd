/* refgc export --format folded | speedscope — live memory by allocation stack, for flame graphs.
 *
 * Both start from the snapshot's traces summed per traceback (export_traceback_totals: bytes
 * and blocks, scaled by the trace weights when sampled) and print each traceback outermost
 * frame first. A frame is named by its function, else "file:line", else "module+0xOFFSET".
 *
 * folded: Brendan Gregg's collapsed-stack format, one line per distinct stack,
 *   "main;load_documents;parse_body 123456"   (bytes; the lines sorted, equal stacks merged)
 * which flamegraph.pl (--countname=bytes) and inferno-flamegraph read. ';' inside a name
 * becomes ':' and line breaks become spaces, so every line is "frame(;frame)* COUNT".
 *
 * speedscope: the JSON file format of https://www.speedscope.app (schema:
 * file-format-schema.json in the speedscope npm package): shared.frames (name, file, line),
 * and two "sampled" profiles over the same stacks: live bytes (unit "bytes") and live blocks
 * (unit "none"); samples are frame index lists, outermost first.
 */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "export.h"

/* ---- folded --------------------------------------------------------------------------------- */

typedef struct folded_line_s {
  char *stack;
  uint64_t bytes;
} folded_line_t;

static int folded_cmp(const void *pa, const void *pb) {
  return strcmp(((const folded_line_t *)pa)->stack, ((const folded_line_t *)pb)->stack);
}

/* The folded stack of traceback `tb`: a malloc'd string. */
static char *folded_stack(refgc_snapshot_t *s, uint32_t tb) {
  const uint32_t *fr = NULL;
  size_t nf = refgc_snapshot_traceback(s, tb, &fr);
  size_t cap = 256, len = 0;
  char *out = cli_xmalloc(cap);
  out[0] = '\0';
  if (nf == 0) {
    snprintf(out, cap, "[unknown]");
    return out;
  }
  for (size_t j = nf; j-- > 0;) {
    char name[1024];
    export_frame_name(refgc_snapshot_frame(s, fr[j]), name, sizeof name);
    size_t nl = strlen(name);
    if (len + nl + 2 > cap) {
      while (len + nl + 2 > cap) cap *= 2;
      out = cli_xrealloc(out, cap);
    }
    if (len) out[len++] = ';';
    memcpy(out + len, name, nl + 1);
    len += nl;
  }
  return out;
}

int export_folded(FILE *f, refgc_snapshot_t *s, const char *path, const export_opts_t *o) {
  (void)o;
  size_t n = 0;
  uint64_t total = 0;
  tb_total_t *t = export_traceback_totals(s, &n, &total);
  if (n == 0) cli_note("%s has no traces: the output is empty", path);
  folded_line_t *lines = cli_xcalloc(n ? n : 1, sizeof *lines);
  size_t nl = 0;
  cli_progress_t pr;
  cli_progress_begin(&pr, "folding stacks");
  for (size_t i = 0; i < n; i++) {
    cli_progress_update(&pr, i, n);
    if (t[i].bytes == 0) continue;
    lines[nl].stack = folded_stack(s, t[i].traceback);
    lines[nl].bytes = t[i].bytes;
    nl++;
  }
  cli_progress_end(&pr);
  qsort(lines, nl, sizeof *lines, folded_cmp);
  for (size_t i = 0; i < nl;) {
    uint64_t b = lines[i].bytes;
    size_t j = i + 1;
    while (j < nl && strcmp(lines[j].stack, lines[i].stack) == 0) b += lines[j++].bytes;
    fprintf(f, "%s %" PRIu64 "\n", lines[i].stack, b);
    i = j;
  }
  for (size_t i = 0; i < nl; i++) free(lines[i].stack);
  free(lines);
  free(t);
  return 0;
}

/* ---- speedscope ----------------------------------------------------------------------------- */

int export_speedscope(FILE *f, refgc_snapshot_t *s, const char *path, const export_opts_t *o) {
  size_t n = 0;
  uint64_t total = 0, total_count = 0;
  tb_total_t *t = export_traceback_totals(s, &n, &total);
  if (n == 0) cli_note("%s has no traces: the profiles are empty", path);
  for (size_t i = 0; i < n; i++) total_count += t[i].count;

  /* speedscope frame per distinct (name, file, line); map snapshot frames to them lazily */
  strtab_t keys;
  strtab_init(&keys);
  size_t nsframes = 0;
  /* frame index lists per stack, outermost first */
  uint32_t **stacks = cli_xcalloc(n ? n : 1, sizeof *stacks);
  size_t *depth = cli_xcalloc(n ? n : 1, sizeof *depth);
  typedef struct { char *name, *file; int line; } sframe_t;
  sframe_t *sframes = NULL;
  size_t sframes_cap = 0;
  cli_progress_t pr;
  cli_progress_begin(&pr, "collecting stacks");
  for (size_t i = 0; i < n; i++) {
    cli_progress_update(&pr, i, n);
    const uint32_t *fr = NULL;
    size_t nf = refgc_snapshot_traceback(s, t[i].traceback, &fr);
    depth[i] = nf ? nf : 1;
    stacks[i] = cli_xcalloc(depth[i], sizeof **stacks);
    for (size_t j = 0; j < depth[i]; j++) {
      const refgc_frame_info_t *fi = nf ? refgc_snapshot_frame(s, fr[nf - 1 - j]) : NULL;
      char name[1024], key[2200];
      if (fi)
        export_frame_name(fi, name, sizeof name);
      else
        snprintf(name, sizeof name, "[unknown]");
      const char *file = fi && fi->file && *fi->file ? cli_strip_path(fi->file) : "";
      int line = fi ? fi->line : 0;
      snprintf(key, sizeof key, "%s\x1f%s\x1f%d", name, file, line);
      uint32_t k = strtab_intern(&keys, key);
      if (k == nsframes) { /* a new speedscope frame */
        if (nsframes == sframes_cap) {
          sframes_cap = sframes_cap ? sframes_cap * 2 : 256;
          sframes = cli_xrealloc(sframes, sframes_cap * sizeof *sframes);
        }
        sframes[nsframes].name = cli_xstrdup(name);
        sframes[nsframes].file = cli_xstrdup(file);
        sframes[nsframes].line = line;
        nsframes++;
      }
      stacks[i][j] = k;
    }
  }
  cli_progress_end(&pr);

  const char *title = o->title ? o->title : cli_basename(path);
  fprintf(f, "{\"$schema\":\"https://www.speedscope.app/file-format-schema.json\",\n");
  fprintf(f, "\"name\":");
  cli_json_string(f, title);
  fprintf(f, ",\n\"exporter\":\"refgc %s\",\n\"activeProfileIndex\":0,\n", refgc_version_string());
  fprintf(f, "\"shared\":{\"frames\":[");
  for (size_t i = 0; i < nsframes; i++) {
    fprintf(f, "%s\n{\"name\":", i ? "," : "");
    cli_json_string(f, sframes[i].name);
    if (*sframes[i].file) {
      fprintf(f, ",\"file\":");
      cli_json_string(f, sframes[i].file);
      if (sframes[i].line > 0) fprintf(f, ",\"line\":%d", sframes[i].line);
    }
    fputc('}', f);
  }
  fprintf(f, "]},\n\"profiles\":[");
  for (int prof = 0; prof < 2; prof++) {
    fprintf(f, "%s\n{\"type\":\"sampled\",\"name\":", prof ? "," : "");
    char name[1100];
    snprintf(name, sizeof name, "%s: %s", prof ? "live blocks" : "live bytes", title);
    cli_json_string(f, name);
    fprintf(f, ",\"unit\":\"%s\",\"startValue\":0,\"endValue\":%" PRIu64 ",\n\"samples\":[",
            prof ? "none" : "bytes", prof ? total_count : total);
    for (size_t i = 0; i < n; i++) {
      fprintf(f, "%s[", i ? "," : "");
      for (size_t j = 0; j < depth[i]; j++) fprintf(f, "%s%" PRIu32, j ? "," : "", stacks[i][j]);
      fputc(']', f);
    }
    fprintf(f, "],\n\"weights\":[");
    for (size_t i = 0; i < n; i++)
      fprintf(f, "%s%" PRIu64, i ? "," : "", prof ? t[i].count : t[i].bytes);
    fprintf(f, "]}");
  }
  fprintf(f, "]}\n");

  for (size_t i = 0; i < n; i++) free(stacks[i]);
  free(stacks);
  free(depth);
  for (size_t i = 0; i < nsframes; i++) {
    free(sframes[i].name);
    free(sframes[i].file);
  }
  free(sframes);
  strtab_free(&keys);
  free(t);
  return 0;
}
