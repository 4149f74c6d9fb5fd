/* refgc command — shared helpers of the subcommands (tools/cli.c).
 *
 * Every subcommand is `int refgc_cmd_NAME(int argc, char **argv)` with argv[0] the subcommand's
 * name; it returns the process's exit status: 0 on success, 2 (CLI_EXIT_USAGE) for a wrong
 * argument or a file that cannot be read or written. The helpers here give every subcommand the
 * same behaviour:
 *
 *   - options: cli_next() walks argv like getopt_long (`--by line`, `--by=line`, `-n 5`, `-n5`,
 *     `--` ends options, positionals anywhere) against a table of cli_opt_t; every error is
 *     printed as "refgc CMD: ..." and returns CLI_ERROR, and the caller returns 2;
 *   - snapshots: cli_load() loads a file or prints "refgc CMD: FILE: why" (the library's
 *     refgc_snapshot_error()) and returns NULL;
 *   - top and diff: their shared options (cli_stat_parse) and help lines, row keys, traceback
 *     frames, totals ("~1.5 KiB (~1,536 B) in ~3 blocks"), the line for the rows not shown and
 *     header pieces (sampling, when and by which program a snapshot was taken);
 *   - output: cli_output_open()/cli_output_close() write to stdout or, with -o FILE, to a
 *     temporary file renamed over FILE once complete (no half-written file is left behind);
 *   - numbers: sizes human-readable ("1.5 KiB") and exact ("1,536"); signed variants for diffs;
 *   - frames: labels and keys of symbolized frames, with --strip-path prefixes removed from
 *     file names (so that output does not depend on where the sources were built);
 *   - progress: a one-line progress display on stderr, shown only when stderr is a terminal and
 *     the work has already taken more than a second;
 *   - JSON: string escaping (quotes, backslash, control characters, bytes that are not UTF-8);
 *     cli_utf8_put() passes valid UTF-8 through for other escapers (dot labels).
 *
 * Only the public API of include/refgc.h is used.
 */
#ifndef REFGC_CLI_H
#define REFGC_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "refgc.h"

#define CLI_EXIT_OK 0
#define CLI_EXIT_USAGE 2

/* ---- subcommands ----------------------------------------------------------------------- */

int refgc_cmd_top(int argc, char **argv);
int refgc_cmd_diff(int argc, char **argv);
int refgc_cmd_export(int argc, char **argv);
int refgc_cmd_report(int argc, char **argv); /* tools/cmd_report.c */

/* ---- messages ---------------------------------------------------------------------------- */

/** The running subcommand's name for messages ("top"); set by the dispatcher. */
extern const char *cli_cmd;

/** Print "refgc CMD: message\n" on stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/** cli_error(), then "Try 'refgc CMD --help'." Returns CLI_EXIT_USAGE. */
int cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/** A note on stderr ("refgc CMD: note: ...") that does not fail the command. */
void cli_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- options ----------------------------------------------------------------------------- */

typedef struct cli_opt_s {
  const char *long_name; /* without the dashes: "by" */
  char short_name;       /* 'n', or 0 */
  int has_arg;           /* 0: a flag; 1: takes a value */
  int id;                /* returned by cli_next (> 0) */
} cli_opt_t;

/* cli_next() results besides an option id */
#define CLI_END 0      /* no more arguments */
#define CLI_ARG (-1)   /* a positional argument (in *value) */
#define CLI_ERROR (-2) /* a bad option: the message is printed */

typedef struct cli_parser_s {
  int argc;
  char **argv;
  int i;          /* next argument */
  int only_args;  /* after "--" */
  const char *pending_short; /* rest of a group of short flags ("-ab") */
} cli_parser_t;

/** Start parsing argv[1..argc) (argv[0] is the subcommand). */
void cli_parser_init(cli_parser_t *p, int argc, char **argv);

/** The next option (its id, with its value in *value when it takes one), positional argument
 * (CLI_ARG), CLI_END or CLI_ERROR. `opts` ends with an entry whose long_name is NULL. "-h" and
 * "--help" must be in the table if the subcommand wants them (they are not special here). */
int cli_next(cli_parser_t *p, const cli_opt_t *opts, const char **value);

/** Parse a non-negative integer option value ("10"); prints an error naming `option` and
 * returns -1 when it is not one (or exceeds `max`). */
int cli_parse_count(const char *option, const char *value, long max, long *out);

/** Parse a --by value: file, line, function, traceback, type. Prints an error and returns -1
 * when unknown. */
int cli_parse_group(const char *value, refgc_group_t *out);

/** "file", "line", "function", "traceback", "type". */
const char *cli_group_name(refgc_group_t g);
/** Plural for headings: "files", "lines", "functions", "tracebacks", "types". */
const char *cli_group_plural(refgc_group_t g);

/* ---- snapshots ----------------------------------------------------------------------------- */

/** Load `path`: the snapshot, or NULL after printing "refgc CMD: PATH: what was wrong". */
refgc_snapshot_t *cli_load(const char *path);

/** Summary of a snapshot (info->size set by the helper). Returns 0, or -1 (message printed). */
int cli_info(const refgc_snapshot_t *snap, const char *path, refgc_snapshot_info_t *info);

/** Trace filters from --include / --exclude (fnmatch patterns on a frame's file name) and
 * --all-frames (match any frame of the traceback, not only the innermost). */
typedef struct cli_filters_s {
  refgc_filter_t *f;
  size_t n;
  int all_frames;
} cli_filters_t;

/** Add an inclusive (--include) or exclusive (--exclude) file pattern. */
void cli_filters_add(cli_filters_t *fl, int inclusive, const char *pattern);
/** Replace *snap by the snapshot of its traces that pass the filters (no-op without any).
 * Returns 0, or -1 with a message naming `path` (the snapshot is then freed and NULL). */
int cli_filters_apply(cli_filters_t *fl, refgc_snapshot_t **snap, const char *path);
/** Print the filters as they would be typed ("--include '*.c' --exclude 'x.c'"), to `f`. */
void cli_filters_print(const cli_filters_t *fl, FILE *f);
void cli_filters_free(cli_filters_t *fl);

/** Sum the traces of a snapshot: bytes and blocks (estimated with the trace weights when
 * sampled). */
void cli_trace_totals(const refgc_snapshot_t *snap, uint64_t *bytes, uint64_t *count);

/* ---- top and diff ---------------------------------------------------------------------------- */

/** The options that top and diff share: -h/--help, --by, --cumulative, -n/--limit, --depth,
 * --strip-path, --no-header-time, --include, --exclude, --all-frames. */
typedef struct cli_stat_opts_s {
  refgc_group_t group; /* --by (default: line) */
  int cumulative;      /* --cumulative */
  int no_time;         /* --no-header-time */
  long limit;          /* -n (default 10; 0: all) */
  long depth;          /* --depth (default -1: all frames) */
} cli_stat_opts_t;

/** The help lines of the options that top and diff describe in the same words, from --depth
 * to --strip-path (to put in the middle of their help texts). */
#define CLI_STAT_HELP_SHARED                                                                   \
  "  --depth N            --by traceback: show at most N frames of each (default: all)\n"      \
  "  --include PATTERN    keep only the blocks allocated in files matching PATTERN\n"          \
  "                       (fnmatch, e.g. '*/src/*.c'; repeatable)\n"                           \
  "  --exclude PATTERN    leave out the blocks allocated in files matching PATTERN\n"          \
  "  --all-frames         --include/--exclude look at every frame of the traceback,\n"         \
  "                       not only the innermost\n"                                            \
  "  --strip-path PREFIX  remove PREFIX from the start of file names (repeatable)\n"

/** cli_stat_parse(): the command goes on (no exit status yet). */
#define CLI_CONTINUE (-1)

/** Parse the options of top or diff into *o (defaults first), the filters into *fl and
 * --strip-path with cli_strip_path_add(). --help prints help(stdout). Each positional argument
 * goes to take_arg(ctx, arg), which returns 0, or an exit status after printing why the
 * argument is not wanted. Returns CLI_CONTINUE, or the exit status the command returns now. */
int cli_stat_parse(int argc, char **argv, void (*help)(FILE *f),
                   int (*take_arg)(void *ctx, const char *arg), void *ctx, cli_stat_opts_t *o,
                   cli_filters_t *fl);

/** --cumulative works with --by file, line or function only: returns 0, or -1 after printing
 * so (a usage error). */
int cli_stat_check(const cli_stat_opts_t *o);

/** How many of `n` rows -n LIMIT shows: all with 0, else at most LIMIT. */
size_t cli_rows_shown(long limit, size_t n);

/** The displayed key of a statistics row: "(raw blocks)" for untyped blocks (--by type),
 * "(unknown)" for an empty key, else the key with --strip-path applied, made safe (cli_text). */
const char *cli_stat_key(const refgc_stat_t *s, refgc_group_t g);

/** With --by traceback, print the frames of row `s`'s traceback in `snap` below the row,
 * innermost first, one an indented line (at most `depth` of them, and then "...", when
 * depth >= 0); nothing for the other groupings. */
void cli_print_stat_frames(refgc_snapshot_t *snap, const refgc_stat_t *s, refgc_group_t g,
                           long depth);

/** The line below a table that shows `shown` of the `n` rows of `st`: the rows not shown,
 * summed ("the other 12 lines"): their size and count, or with `diff` their size and count
 * changes (signed). Nothing when every row is shown. */
void cli_print_others(const refgc_stat_t *st, size_t shown, size_t n, refgc_group_t g,
                      const char *est, int diff);

/** A total as top and diff print it: "~1.5 KiB (~1,536 B) in ~3 blocks" (`est`: "~" for an
 * estimate, else ""). Returns `buf` (CLI_TOTALS_SIZE bytes are enough). */
char *cli_totals(const char *est, uint64_t bytes, uint64_t count, char *buf, size_t n);
/** The same for a change: "+1.5 KiB (+1,536 B) in -3 blocks", "0 B (0 B) in 0 blocks". */
char *cli_totals_signed(const char *est, int64_t bytes, int64_t count, char *buf, size_t n);
#define CLI_TOTALS_SIZE 192

/** The end of a header's traced line: "sampled: one per SIZE on average (~: estimate)" or
 * "every allocation traced", and the newline. */
void cli_print_sampling(const refgc_snapshot_info_t *in);

/** When the snapshot was taken ("2024-05-01 12:00:00 UTC", "?" when unknown). Returns `buf`. */
char *cli_taken_time(const refgc_snapshot_info_t *in, char *buf, size_t n);
/** The program that took the snapshot, made safe (cli_text), or "(unknown program)". */
const char *cli_program_name(const refgc_snapshot_info_t *in);

/** Flush stdout: 0, or -1 after printing "cannot write the output". */
int cli_flush_stdout(void);

/* ---- output -------------------------------------------------------------------------------- */

typedef struct cli_output_s {
  FILE *f;
  const char *path; /* NULL: stdout */
  char *tmp;        /* the temporary file being written, renamed to path at close */
} cli_output_t;

/** Open the output: stdout when `path` is NULL or "-", else a temporary file beside `path`.
 * Returns 0, or -1 with a message. */
int cli_output_open(cli_output_t *out, const char *path);
/** Finish: flush, check for write errors, rename into place. `ok` 0 discards the output (the
 * command failed). Returns 0, or -1 with a message (e.g. disk full). */
int cli_output_close(cli_output_t *out, int ok);

/* ---- numbers ------------------------------------------------------------------------------- */

/** Human-readable bytes: "512 B", "1.5 KiB", "12.0 MiB", "3.2 GiB". Returns `buf`. */
char *cli_size(uint64_t bytes, char *buf, size_t n);
/** Signed human-readable bytes: "+1.5 KiB", "-512 B", "0 B". */
char *cli_size_signed(int64_t bytes, char *buf, size_t n);
/** Exact integer with thousands separators: "46,280". */
char *cli_count(uint64_t v, char *buf, size_t n);
/** Signed exact integer: "+46,280", "-3", "0". */
char *cli_count_signed(int64_t v, char *buf, size_t n);

/* ---- frames -------------------------------------------------------------------------------- */

/** Add a prefix to strip from file names (--strip-path); kept for the whole run. */
void cli_strip_path_add(const char *prefix);
/** `path` without the first matching --strip-path prefix. */
const char *cli_strip_path(const char *path);
/** Apply cli_strip_path to a statistics key ("file", "file:line" or a traceback's innermost
 * "file:line"): returns a pointer into `key`. */
const char *cli_strip_key(const char *key);

/** Kinds of frame label. */
enum {
  /** "function (file:line)", "function (module)", "file:line", "module+0x1a2b", "???" */
  CLI_FRAME_FULL = 0,
  /** "function", else "file:line", else "module+0x1a2b", else "???" (flame graph frames) */
  CLI_FRAME_SHORT = 1,
};
/** Format a frame. Modules appear by their base name. Never prints the process address (only
 * the module offset when nothing else is known). Returns `buf`. */
char *cli_frame_label(const refgc_frame_info_t *f, int kind, char *buf, size_t n);

/* ---- progress ------------------------------------------------------------------------------ */

typedef struct cli_progress_s {
  const char *what;   /* "reading", "writing heap snapshot" */
  double start;       /* monotonic seconds */
  double last;        /* last redraw */
  int enabled;        /* stderr is a terminal (or REFGC_PROGRESS=1) */
  int shown;          /* something is on the line */
} cli_progress_t;

/** Start timing `what`. Nothing is drawn during the first second. REFGC_PROGRESS=0 disables
 * the display, REFGC_PROGRESS=1 forces it even when stderr is not a terminal (for tests). */
void cli_progress_begin(cli_progress_t *p, const char *what);
/** Report `done` of `total` units (total 0: unknown). Cheap: redraws at most 10 times a
 * second. */
void cli_progress_update(cli_progress_t *p, uint64_t done, uint64_t total);
/** Clear the line if anything was drawn. */
void cli_progress_end(cli_progress_t *p);

/** Monotonic seconds. */
double cli_now(void);

/* ---- JSON ---------------------------------------------------------------------------------- */

/** Write `s` as a JSON string literal with its quotes: ", \ and control characters escaped,
 * valid UTF-8 passed through, each byte that is not part of valid UTF-8 written as the
 * character U+00XX of the same value (so nothing is lost and the output is valid JSON). */
void cli_json_string(FILE *f, const char *s);
/** The same for `len` bytes. */
void cli_json_string_n(FILE *f, const char *s, size_t len);

/** Length of the valid UTF-8 sequence at `s` (1..4), or 0 if the byte at `s` does not start
 * one (so that other writers, HTML for instance, can make the same choice). */
size_t cli_utf8_len(const unsigned char *s, size_t avail);
/** Write the character at `s` as it is when it is ASCII or a valid UTF-8 sequence and return
 * its length (1..4); return 0, writing nothing, when `s` does not start one (the caller then
 * writes its own replacement for the byte). */
size_t cli_utf8_put(FILE *f, const unsigned char *s, size_t avail);

/* ---- text for terminals ------------------------------------------------------------------- */

/** `s` made safe to print as one line of text: control characters as \n, \t, \r or \xHH,
 * bytes that are not valid UTF-8 as \xHH. Returns one of 8 rotating static buffers (so that a
 * printf may use several), truncated to 4 KiB. */
const char *cli_text(const char *s);

/* ---- small utilities ----------------------------------------------------------------------- */

/** malloc/calloc/realloc that print "out of memory" and exit(2) on failure. */
void *cli_xmalloc(size_t n);
void *cli_xcalloc(size_t count, size_t size);
void *cli_xrealloc(void *p, size_t n);
char *cli_xstrdup(const char *s);

/** Base name of a path (pointer into `path`). */
const char *cli_basename(const char *path);

#endif /* REFGC_CLI_H */
