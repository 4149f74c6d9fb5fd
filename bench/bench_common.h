/* bench_common.h — helpers shared by heap_bench.c, object_bench.c and gc_bench.c.
 *
 * Include it after the variant layer, with _GNU_SOURCE defined first and these macros set:
 *
 *   BENCH_PROG     the program's name, for messages ("heap_bench")
 *   BENCH_NAME     the variant's name, for messages ("refgc", "glibc", ...)
 *   BENCH_MALLOC   (optional) the allocator under test; defines xmalloc()
 *
 * Everything here is static inline, so that a program that does not use a helper gets no
 * unused-function warning for it.
 */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#if !defined(BENCH_PROG) || !defined(BENCH_NAME)
#error "define BENCH_PROG and BENCH_NAME before including bench_common.h"
#endif

static inline void die(const char *what) {
  fprintf(stderr, BENCH_PROG "(%s): %s\n", BENCH_NAME, what);
  exit(2);
}

#if defined(BENCH_MALLOC)
static inline void *xmalloc(size_t n) {
  void *p = BENCH_MALLOC(n);
  if (p == NULL) die("allocation failed");
  return p;
}
#endif

/* Anonymous memory outside the allocator under test (the benchmarks' own arrays). */
static inline void *xmmap(size_t len) {
  void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) die("mmap failed");
  return p;
}

/* A decimal argument of at least `min`; exits with a message otherwise. */
static inline long parse_long(const char *s, const char *what, long min) {
  char *end = NULL;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0' || v < min) {
    fprintf(stderr, BENCH_PROG ": bad %s: %s\n", what, s);
    exit(2);
  }
  return v;
}

/* ---------------------------------------------------------------------------------------------
 * Time
 * ------------------------------------------------------------------------------------------ */

static inline double now_sec(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* CPU seconds of the whole process (every thread), user + system. */
static inline double cpu_sec(void) {
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) != 0) return -1.0;
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

/* ---------------------------------------------------------------------------------------------
 * Memory
 * ------------------------------------------------------------------------------------------ */

static inline double mb(double bytes) { return bytes / (1024.0 * 1024.0); }

/* Resident bytes of the whole process, from /proc/self/statm. */
static inline double rss_bytes(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  unsigned long size = 0, resident = 0;
  if (f == NULL) return -1.0;
  if (fscanf(f, "%lu %lu", &size, &resident) != 2) resident = 0;
  fclose(f);
  return (double)resident * (double)sysconf(_SC_PAGESIZE);
}

/* Peak resident memory of this process image: VmHWM from /proc/self/status. getrusage's
 * ru_maxrss is kept across execve, so in a child of a big parent (the Python driver) it
 * reports the parent's size when that is larger; VmHWM starts afresh at exec. */
static inline double peak_rss_mb(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  unsigned long kb = 0;
  if (f == NULL) return -1.0;
  while (fgets(line, sizeof line, f) != NULL) {
    if (sscanf(line, "VmHWM: %lu kB", &kb) == 1) break;
  }
  fclose(f);
  return (double)kb / 1024.0;
}

/* getrusage ru_maxrss (KiB on Linux), reported alongside for reference. */
static inline double ru_maxrss_mb(void) {
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) != 0) return -1.0;
  return (double)ru.ru_maxrss / 1024.0;
}

#endif /* BENCH_COMMON_H */
