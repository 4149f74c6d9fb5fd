/* refgc — OS primitives for Linux and other Unix systems: mmap, munmap, madvise, clock.
 * See src/prim/prim.h for the contract.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "../prim.h"

#ifndef MAP_NORESERVE
#define MAP_NORESERVE 0
#endif

void *refgc__prim_map(size_t size) {
  void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                 -1, 0);
  return p == MAP_FAILED ? NULL : p;
}

int refgc__prim_unmap(void *p, size_t size) { return munmap(p, size); }

int refgc__prim_purge(void *p, size_t size) {
#if defined(MADV_DONTNEED)
  return madvise(p, size, MADV_DONTNEED);
#else
  (void)p;
  (void)size;
  return 0;
#endif
}

uint64_t refgc__prim_now_ns(void) {
  struct timespec ts;
#if defined(CLOCK_MONOTONIC_COARSE)
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
#else
  clock_gettime(CLOCK_MONOTONIC, &ts);
#endif
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

size_t refgc__prim_page_size(void) {
  long n = sysconf(_SC_PAGESIZE);
  return n > 0 ? (size_t)n : 4096;
}

size_t refgc__prim_rss(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  if (!f) return 0;
  unsigned long size = 0, resident = 0;
  int n = fscanf(f, "%lu %lu", &size, &resident);
  fclose(f);
  return n == 2 ? (size_t)resident * refgc__prim_page_size() : 0;
}
