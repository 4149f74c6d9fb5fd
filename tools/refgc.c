/* refgc — the command that reads snapshot files written by programs using refgc
 * (refgc_snapshot_save, or REFGC_TRACE_FILE at exit) and shows or converts them.
 *
 *   refgc top SNAPSHOT          the largest allocation sites
 *   refgc diff OLD NEW          what grew
 *   refgc export SNAPSHOT...    massif, Chrome heap snapshot, folded stacks, speedscope, dot
 *   refgc report SNAPSHOT...    an HTML report (tools/cmd_report.c)
 *   refgc help [COMMAND]        help
 *
 * This file only dispatches: it finds the subcommand in a table and calls its
 * `refgc_cmd_NAME(argc, argv)` with argv[0] the subcommand's name, which returns the exit
 * status (0, or 2 for a wrong argument or a file that cannot be read or written).
 *
 * The command links the refgc library like any program, so REFGC_TRACE_FILE and friends in
 * the environment would make it trace itself and write its own snapshot at exit, over the
 * file the user is looking at. It therefore runs itself again without those variables first.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#ifndef REFGC_HAVE_REPORT
/* tools/cmd_report.c is not in this build */
int refgc_cmd_report(int argc, char **argv) {
  (void)argc;
  (void)argv;
  cli_error("the report subcommand is not part of this build");
  return CLI_EXIT_USAGE;
}
#endif

typedef struct command_s {
  const char *name;
  int (*run)(int argc, char **argv);
  const char *summary;
} command_t;

static const command_t commands[] = {
    {"top", refgc_cmd_top, "the largest allocation sites of a snapshot"},
    {"diff", refgc_cmd_diff, "what grew between two snapshots"},
    {"export", refgc_cmd_export,
     "convert snapshots: massif, heapsnapshot (Chrome DevTools), folded, speedscope, dot"},
    {"report", refgc_cmd_report, "an HTML report of snapshots"},
    {NULL, NULL, NULL},
};

static void usage(FILE *f) {
  fprintf(f,
          "Usage: refgc COMMAND [ARGUMENTS...]\n"
          "\n"
          "Reads the snapshot files that programs using refgc write (refgc_snapshot_save(), or\n"
          "REFGC_TRACE_FILE=PATH in their environment) and shows or converts them.\n"
          "\n"
          "Commands:\n");
  for (const command_t *c = commands; c->name; c++) fprintf(f, "  %-8s %s\n", c->name, c->summary);
  fprintf(f,
          "  %-8s %s\n"
          "\n"
          "Options:\n"
          "  -h, --help     show this help\n"
          "  -V, --version  show the version of the command, the library and its symbol resolver\n"
          "\n"
          "'refgc COMMAND --help' (or 'refgc help COMMAND') describes a command.\n"
          "Exit status: 0 on success, 2 for a wrong argument or a file that cannot be read or\n"
          "written (the message names the file and what was wrong).\n",
          "help", "help on a command");
}

static const command_t *find(const char *name) {
  for (const command_t *c = commands; c->name; c++)
    if (strcmp(c->name, name) == 0) return c;
  return NULL;
}

/* Run again without the variables that would make this process trace itself (see above). */
static void drop_trace_environment(char **argv) {
  static const char *const vars[] = {"REFGC_TRACE",          "REFGC_TRACE_SAMPLE",
                                     "REFGC_TRACE_SEED",     "REFGC_TRACE_FILE",
                                     "REFGC_TRACE_EVERY_MS", "REFGC_TRACE_EVERY_BYTES",
                                     "REFGC_TRACE_SERIES_MS", NULL};
  int found = 0;
  for (int i = 0; vars[i]; i++) {
    if (getenv(vars[i])) {
      unsetenv(vars[i]);
      found = 1;
    }
  }
  if (!found || getenv("REFGC_CLI_REEXEC")) return;
  setenv("REFGC_CLI_REEXEC", "1", 1);
  execv("/proc/self/exe", argv);
  /* no /proc: carry on, with tracing stopped (nothing is written at exit without traces) */
  if (refgc_trace_is_tracing()) refgc_trace_stop();
}

int main(int argc, char **argv) {
  drop_trace_environment(argv);
  unsetenv("REFGC_CLI_REEXEC");
  cli_cmd = "";
  if (argc < 2) {
    usage(stderr);
    return CLI_EXIT_USAGE;
  }
  const char *name = argv[1];
  if (strcmp(name, "-h") == 0 || strcmp(name, "--help") == 0) {
    usage(stdout);
    return CLI_EXIT_OK;
  }
  if (strcmp(name, "-V") == 0 || strcmp(name, "--version") == 0) {
    printf("refgc %s (library %s, symbols: %s)\n", REFGC_VERSION_STRING, refgc_version_string(),
           refgc_symbolizer());
    return CLI_EXIT_OK;
  }
  if (strcmp(name, "help") == 0) {
    if (argc < 3) {
      usage(stdout);
      return CLI_EXIT_OK;
    }
    const command_t *c = find(argv[2]);
    if (!c) return cli_usage_error("unknown command '%s'", argv[2]);
    cli_cmd = c->name;
    char *args[] = {argv[2], (char *)"--help", NULL};
    return c->run(2, args);
  }
  const command_t *c = find(name);
  if (!c) {
    if (name[0] == '-') return cli_usage_error("unknown option '%s'", name);
    return cli_usage_error("unknown command '%s' (top, diff, export, report, help)", name);
  }
  cli_cmd = c->name;
  return c->run(argc - 1, argv + 1);
}
