/* refgc — `refgc_heap_check`: verify every invariant stated in types.h for the calling
 * thread's heap, the abandoned heaps and the large blocks. Linear in the heap; for tests and
 * for debugging a corrupted heap, never called on a hot path.
 */
#include "internal.h"

typedef struct check_ctx_s {
  refgc_heap_t *self;
  int bad;
} check_ctx_t;

static int heap_check(refgc_heap_t *heap) {
  int bad = 0;
  size_t binned = 0, binned_seen = 0;
  for (unsigned c = 0; c < REFGC_NUM_LANES; c++) {
    refgc_page_t *cur = heap->cls[c].current;
    if (!cur) {
      refgc__report(REFGC_ECORRUPT, "refgc_heap_check", heap, 0, 0, NULL, 0,
                    "heap %p: class %u has no current page", (void *)heap, c);
      bad++;
    } else if (cur != &refgc__empty_page && (cur->heap != heap || cur->cls != c ||
                                             cur->bin != REFGC_BIN_CURRENT)) {
      refgc__report(REFGC_ECORRUPT, "refgc_heap_check", cur, 0, 0, NULL, 0,
                    "heap %p: current page of class %u is not a current page of that class",
                    (void *)heap, c);
      bad++;
    }
    size_t lane_seen = 0;
    for (unsigned b = 0; b < REFGC_BINS; b++) {
      size_t guard = 0;
      for (refgc_page_t *p = heap->bins[c][b]; p; p = p->next) {
        if (p->heap != heap || p->cls != c || p->bin != b || !p->start || ++guard > (1u << 26)) {
          refgc__report(REFGC_ECORRUPT, "refgc_heap_check", p, 0, 0, NULL, 0,
                        "heap %p: bin %u of class %u holds page %p of class %u, bin %u",
                        (void *)heap, b, c, (void *)p, p->cls, p->bin);
          bad++;
          break;
        }
        binned_seen++;
        lane_seen++;
      }
    }
    if (lane_seen != heap->binned[c]) {
      refgc__report(REFGC_ECORRUPT, "refgc_heap_check", heap, 0, 0, NULL, 0,
                    "heap %p: lane %u counts %u binned pages but its bins hold %zu", (void *)heap,
                    c, heap->binned[c], lane_seen);
      bad++;
    }
  }
  for (refgc_segment_t *seg = heap->segments; seg; seg = seg->next) {
    if (seg->heap != heap) {
      refgc__report(REFGC_ECORRUPT, "refgc_heap_check", seg, 0, 0, NULL, 0,
                    "heap %p: segment %p belongs to heap %p", (void *)heap, (void *)seg,
                    (void *)seg->heap);
      bad++;
      continue;
    }
    bad += refgc__segment_check(seg);
    for (unsigned i = 0; i < seg->slot_count; i++)
      if (seg->pages[i].start && seg->pages[i].bin < REFGC_BINS) binned++;
  }
  if (binned != binned_seen) {
    refgc__report(REFGC_ECORRUPT, "refgc_heap_check", heap, 0, 0, NULL, 0,
                  "heap %p: %zu pages say they are binned but the bins hold %zu", (void *)heap,
                  binned, binned_seen);
    bad++;
  }
  return bad;
}

static void check_abandoned(refgc_heap_t *heap, void *arg) {
  check_ctx_t *ctx = arg;
  if (heap == ctx->self || !heap->abandoned) return;
  ctx->bad += heap_check(heap);
}

int refgc_heap_check(void) {
  refgc__global_init();
  check_ctx_t ctx = {refgc__tl_heap, 0};
  if (ctx.self != &refgc__empty_heap) ctx.bad += heap_check(ctx.self);
  refgc__heaps_foreach(check_abandoned, &ctx);
  ctx.bad += refgc__large_check();
  return ctx.bad;
}
