/* refgc — statistics: summing every heap's counters, the text report and the JSON report.
 *
 * Per-class counters are written by their heap's owner with relaxed stores and read here with
 * relaxed loads, under the heaps lock (which keeps the list of heaps stable, not the heaps).
 * A snapshot taken while other threads allocate is therefore approximate but never torn.
 */
#include <string.h>

#include "internal.h"

typedef struct sum_s {
  refgc_heap_stats_t *out;
  size_t in_use_peak;
} sum_t;

static void sum_heap(refgc_heap_t *heap, void *arg) {
  sum_t *s = arg;
  refgc_heap_stats_t *o = s->out;
  for (unsigned c = 0; c < REFGC_NUM_LANES; c++) {
    uint64_t a = refgc_stat_get(heap->cls[c].allocs);
    uint64_t f = refgc_stat_get(heap->cls[c].frees);
    refgc_class_stats_t *cs = &o->classes[REFGC_LANE_CLASS(c)];
    cs->total_allocs += a;
    cs->blocks_in_use += (size_t)(a - f);
    cs->pages += refgc_stat_get(heap->class_pages[c]);
    cs->blocks_capacity += refgc_stat_get(heap->class_capacity[c]);
    o->alloc_count += a;
    o->free_count += f;
    o->requested_total += refgc_stat_get(heap->cls[c].requested);
  }
  s->in_use_peak += refgc_stat_get(heap->in_use_peak);
}

int refgc_heap_stats(refgc_heap_stats_t *out) {
  if (!out || out->size < offsetof(refgc_heap_stats_t, classes)) return REFGC_EINVAL;
  refgc__global_init();
  refgc_heap_stats_t s;
  memset(&s, 0, sizeof s);
  s.size = (uint32_t)sizeof s;
  s.version = REFGC_HEAP_STATS_VERSION;
  s.num_classes = REFGC_NUM_CLASSES;
  for (unsigned c = 0; c < REFGC_NUM_CLASSES; c++)
    s.classes[c].block_size = refgc__classes[c].block_size;
  sum_t sum = {&s, 0};
  refgc__heaps_foreach(sum_heap, &sum);
  for (unsigned c = 0; c < REFGC_NUM_CLASSES; c++)
    s.in_use += s.classes[c].blocks_in_use * s.classes[c].block_size;
  const refgc_global_stats_t *g = &refgc__gstats;
  s.large_count = atomic_load_explicit(&g->large_count, memory_order_relaxed);
  s.large_bytes = atomic_load_explicit(&g->large_bytes, memory_order_relaxed);
  s.in_use += s.large_bytes;
  s.alloc_count += atomic_load_explicit(&g->large_allocs, memory_order_relaxed);
  s.free_count += atomic_load_explicit(&g->large_frees, memory_order_relaxed);
  s.requested_total += atomic_load_explicit(&g->large_requested, memory_order_relaxed);
  s.in_use_peak = sum.in_use_peak + s.large_bytes;
  if (s.in_use_peak < s.in_use) s.in_use_peak = s.in_use;
  s.committed = atomic_load_explicit(&g->committed, memory_order_relaxed);
  s.committed_peak = atomic_load_explicit(&g->committed_peak, memory_order_relaxed);
  s.reserved = atomic_load_explicit(&g->reserved, memory_order_relaxed);
  s.metadata = atomic_load_explicit(&g->metadata, memory_order_relaxed);
  s.released_total = atomic_load_explicit(&g->released_total, memory_order_relaxed);
  s.release_calls = atomic_load_explicit(&g->release_calls, memory_order_relaxed);
  s.heaps = atomic_load_explicit(&g->heaps, memory_order_relaxed);
  s.heaps_abandoned = atomic_load_explicit(&g->heaps_abandoned, memory_order_relaxed);
  s.fragmentation = s.committed ? (double)s.in_use / (double)s.committed : 1.0;
  size_t n = out->size < sizeof s ? out->size : sizeof s;
  uint32_t caller_size = out->size;
  memcpy(out, &s, n);
  out->size = caller_size;
  return 0;
}

static void fmt_bytes(char *buf, size_t cap, double b) {
  const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) {
    b /= 1024;
    u++;
  }
  snprintf(buf, cap, u ? "%.1f %s" : "%.0f %s", b, unit[u]);
}

void refgc_heap_stats_print(FILE *out) {
  if (!out) out = stderr;
  refgc_heap_stats_t s;
  s.size = sizeof s;
  refgc_heap_stats(&s);
  fprintf(out, "refgc %s heap: %zu thread heap(s), %zu abandoned\n", refgc_version_string(),
          s.heaps, s.heaps_abandoned);
  fprintf(out, "%5s %8s %8s %12s %12s %7s %14s\n", "class", "size", "pages", "in use",
          "capacity", "util", "allocs");
  for (unsigned c = 0; c < s.num_classes; c++) {
    const refgc_class_stats_t *cs = &s.classes[c];
    if (!cs->pages && !cs->blocks_in_use && !cs->total_allocs) continue;
    double util = cs->blocks_capacity ? 100.0 * (double)cs->blocks_in_use / (double)cs->blocks_capacity : 0;
    fprintf(out, "%5u %8zu %8zu %12zu %12zu %6.1f%% %14llu\n", c, cs->block_size, cs->pages,
            cs->blocks_in_use, cs->blocks_capacity, util, (unsigned long long)cs->total_allocs);
  }
  char a[32], b[32], c[32], d[32], e[32], f[32], g[32];
  fmt_bytes(a, sizeof a, (double)s.in_use);
  fmt_bytes(b, sizeof b, (double)s.in_use_peak);
  fmt_bytes(c, sizeof c, (double)s.committed);
  fmt_bytes(d, sizeof d, (double)s.committed_peak);
  fmt_bytes(e, sizeof e, (double)s.reserved);
  fmt_bytes(f, sizeof f, (double)s.metadata);
  fmt_bytes(g, sizeof g, (double)s.released_total);
  fprintf(out, "in use      %12s   (peak %s)\n", a, b);
  fprintf(out, "committed   %12s   (peak %s)\n", c, d);
  fprintf(out, "reserved    %12s\n", e);
  fprintf(out, "metadata    %12s   (%.2f%% of in use)\n", f,
          s.in_use ? 100.0 * (double)s.metadata / (double)s.in_use : 0.0);
  fmt_bytes(a, sizeof a, (double)s.large_bytes);
  fprintf(out, "large       %12zu blocks, %s\n", s.large_count, a);
  fprintf(out, "given back  %12s   in %llu calls\n", g, (unsigned long long)s.release_calls);
  fprintf(out, "allocs %llu, frees %llu, requested %llu bytes\n",
          (unsigned long long)s.alloc_count, (unsigned long long)s.free_count,
          (unsigned long long)s.requested_total);
  fprintf(out, "fragmentation (in use / committed): %.3f\n", s.fragmentation);
}

int refgc_heap_stats_print_json(FILE *out) {
  if (!out) out = stdout;
  refgc_heap_stats_t s;
  s.size = sizeof s;
  refgc_heap_stats(&s);
  int r = fprintf(out,
                  "{\"version\":%u,\"requested_total\":%llu,\"alloc_count\":%llu,"
                  "\"free_count\":%llu,\"in_use\":%zu,\"in_use_peak\":%zu,\"committed\":%zu,"
                  "\"committed_peak\":%zu,\"reserved\":%zu,\"metadata\":%zu,"
                  "\"large_count\":%zu,\"large_bytes\":%zu,\"released_total\":%llu,"
                  "\"release_calls\":%llu,\"heaps\":%zu,\"heaps_abandoned\":%zu,"
                  "\"fragmentation\":%.6f,\"classes\":[",
                  s.version, (unsigned long long)s.requested_total,
                  (unsigned long long)s.alloc_count, (unsigned long long)s.free_count, s.in_use,
                  s.in_use_peak, s.committed, s.committed_peak, s.reserved, s.metadata,
                  s.large_count, s.large_bytes, (unsigned long long)s.released_total,
                  (unsigned long long)s.release_calls, s.heaps, s.heaps_abandoned,
                  s.fragmentation);
  for (unsigned c = 0; c < s.num_classes && r >= 0; c++) {
    const refgc_class_stats_t *cs = &s.classes[c];
    r = fprintf(out,
                "%s{\"class\":%u,\"block_size\":%zu,\"blocks_in_use\":%zu,"
                "\"blocks_capacity\":%zu,\"pages\":%zu,\"total_allocs\":%llu}",
                c ? "," : "", c, cs->block_size, cs->blocks_in_use, cs->blocks_capacity,
                cs->pages, (unsigned long long)cs->total_allocs);
  }
  if (r >= 0) r = fprintf(out, "]}\n");
  return r < 0 || ferror(out) ? REFGC_EINVAL : 0;
}
