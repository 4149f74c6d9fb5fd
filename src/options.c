/* refgc — run-time options from the environment, read once when the library starts (before
 * main() where the platform runs constructors, else at the first allocation).
 *
 * One descriptor table; each entry names the variable, its range and where the value goes.
 * A value that does not parse or is out of range is reported on stderr and ignored. Every
 * variable is documented in docs/environment.md.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"

typedef struct option_desc_s {
  const char *name;
  long min, max;
  void *target;
  bool is_long; /* target is long, else int */
} option_desc_t;

static void print_stats_at_exit(void) { refgc_heap_stats_print(stderr); }

void refgc__options_init(void) {
  const option_desc_t table[] = {
      {"REFGC_DEBUG", 0, 1, &refgc__opt.debug, false},
      {"REFGC_DEBUG_FRAMES", 0, 32, &refgc__opt.debug_frames, false},
      {"REFGC_PURGE_DELAY", -1, 3600000, &refgc__opt.purge_delay_ms, true},
      {"REFGC_VERBOSE", 0, 1, &refgc__opt.verbose, false},
  };
  for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
    const char *s = getenv(table[i].name);
    if (!s || !*s) continue;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < table[i].min || v > table[i].max) {
      fprintf(stderr, "refgc: ignoring %s=%s: expected a whole number from %ld to %ld\n",
              table[i].name, s, table[i].min, table[i].max);
      continue;
    }
    if (table[i].is_long)
      *(long *)table[i].target = v;
    else
      *(int *)table[i].target = (int)v;
  }
  if (refgc__opt.verbose) atexit(print_stats_at_exit);
  refgc__object_checks = refgc__opt.debug;
  refgc__gc_options_init();
  refgc__trace_options_init();
}

int refgc_debug_mode(void) {
  refgc__global_init();
  return refgc__opt.debug;
}
