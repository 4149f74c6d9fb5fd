/* refgc — debug mode (run with REFGC_DEBUG=1, set by CTest): fill patterns, guard bytes,
 * and a clear report for each misuse: double free, foreign and interior pointers, a write
 * past the end of a block, a write after free. Each report must name the call, the address,
 * the block's sizes, and carry the block's allocation stack.
 *
 * In the ASan build the writes past the end and after free are caught by ASan itself before
 * refgc can see them (the heap poisons those bytes), so those two cases are skipped there;
 * tests/asan_probe.c checks that ASan does catch them.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "refgc.h"
#include "test.h"

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

static int err_calls;
static int err_code;
static int err_depth;
static size_t err_block, err_requested;
static char err_msg[4096];

static void record_error(const refgc_error_info_t *info, void *arg) {
  (void)arg;
  err_calls++;
  err_code = info->code;
  err_depth = info->alloc_stack_depth;
  err_block = info->block_size;
  err_requested = info->requested;
  snprintf(err_msg, sizeof err_msg, "%s", info->message);
}

static void errors_reset(void) {
  refgc_set_error_handler(record_error, NULL);
  err_calls = err_code = err_depth = 0;
  err_block = err_requested = 0;
  err_msg[0] = 0;
}

/* Exported (the tests link with -rdynamic) so that dladdr can name it in the stack. */
__attribute__((noinline)) void *debug_test_allocation_site(size_t n);
__attribute__((noinline)) void *debug_test_allocation_site(size_t n) {
  void *p = refgc_malloc(n);
  __asm__ volatile("" ::: "memory"); /* keep this frame */
  return p;
}

TEST(debug_mode_is_on) { ASSERT_EQ(refgc_debug_mode(), 1); }

TEST(fresh_memory_is_filled_and_usable_size_is_exact) {
  for (size_t n = 1; n < 300000; n = n * 2 + 3) {
    uint8_t *p = refgc_malloc(n);
    ASSERT(p != NULL);
    for (size_t i = 0; i < n; i++)
      if (p[i] != 0xCD) TEST_FAIL("malloc(%zu) byte %zu is 0x%02x", n, i, p[i]);
    ASSERT_EQ(refgc_usable_size(p), n);
    ASSERT(refgc_owns(p));
    refgc_free(p);
    uint8_t *z = refgc_calloc(1, n);
    for (size_t i = 0; i < n; i++)
      if (z[i]) TEST_FAIL("calloc(%zu) byte %zu is 0x%02x", n, i, z[i]);
    refgc_free(z);
  }
}

TEST(realloc_and_aligned_in_debug_mode) {
  uint8_t *p = refgc_malloc(10);
  memcpy(p, "0123456789", 10);
  p = refgc_realloc(p, 5000);
  ASSERT(p && !memcmp(p, "0123456789", 10));
  ASSERT_EQ(refgc_usable_size(p), 5000);
  p = refgc_realloc(p, 3);
  ASSERT(p && !memcmp(p, "012", 3));
  refgc_free(p);
  uint8_t *a = refgc_aligned_alloc(256, 100);
  ASSERT_EQ((uintptr_t)a % 256, 0);
  ASSERT_EQ(refgc_usable_size(a), 100);
  refgc_free(a);
  ASSERT_EQ(refgc_heap_check(), 0);
}

TEST(double_free_is_reported_with_allocation_stack) {
  errors_reset();
  void *p = debug_test_allocation_site(24);
  refgc_free(p);
  ASSERT(!refgc_owns(p));
  refgc_free(p);
  ASSERT_EQ(err_calls, 1);
  ASSERT_EQ(err_code, REFGC_EDOUBLEFREE);
  char addr[32];
  snprintf(addr, sizeof addr, "refgc_free(%p)", p);
  ASSERT_STR_CONTAINS(err_msg, addr);
  ASSERT_STR_CONTAINS(err_msg, "double free");
  ASSERT_STR_CONTAINS(err_msg, "a 24-byte block");
  ASSERT_EQ(err_requested, 24);
  ASSERT_GT(err_depth, 0);
  ASSERT_STR_CONTAINS(err_msg, "block allocated at:");
  ASSERT_STR_CONTAINS(err_msg, "debug_test_allocation_site");
  ASSERT_EQ(refgc_usable_size(p), 0);
  ASSERT_EQ(err_calls, 2);
  refgc_set_error_handler(NULL, NULL);
  ASSERT_EQ(refgc_heap_check(), 0);
}

TEST(foreign_and_interior_pointers_are_reported) {
  errors_reset();
  long local;
  refgc_free(&local);
  ASSERT_EQ(err_code, REFGC_EFOREIGN);
  ASSERT_STR_CONTAINS(err_msg, "not allocated by refgc");
  uint8_t *p = refgc_malloc(100);
  refgc_free(p + 16);
  ASSERT_EQ(err_code, REFGC_EINTERIOR);
  ASSERT_STR_CONTAINS(err_msg, "16 bytes into the");
  ASSERT_EQ(err_calls, 2);
  refgc_free(p);
  ASSERT_EQ(err_calls, 2);
  refgc_set_error_handler(NULL, NULL);
}

/* volatile: the overflows below are deliberate; keep the compiler from flagging them */
static volatile size_t at24 = 24, at1003 = 1003;

TEST(write_past_end_is_reported) {
  if (UNDER_ASAN) return; /* ASan stops the write itself: see asan_probe */
  errors_reset();
  uint8_t *p = debug_test_allocation_site(24);
  p[at24] = 'A'; /* one byte past the end, inside the guard */
  refgc_free(p);
  ASSERT_EQ(err_calls, 1);
  ASSERT_EQ(err_code, REFGC_EOVERFLOW);
  ASSERT_STR_CONTAINS(err_msg, "write past the end of a 24-byte block");
  ASSERT_STR_CONTAINS(err_msg, "guard byte at offset 24 (0 bytes past the end) is 0x41");
  ASSERT_STR_CONTAINS(err_msg, "debug_test_allocation_site");
  /* the block was left alone: repair and free it for real */
  p[at24] = 0xFD;
  refgc_free(p);
  ASSERT_EQ(err_calls, 1);
  uint8_t *q = refgc_malloc(1000);
  q[at1003] = 0; /* further in */
  refgc_free(q);
  ASSERT_EQ(err_code, REFGC_EOVERFLOW);
  ASSERT_STR_CONTAINS(err_msg, "(3 bytes past the end)");
  q[at1003] = 0xFD;
  refgc_free(q);
  refgc_set_error_handler(NULL, NULL);
  ASSERT_EQ(refgc_heap_check(), 0);
}

TEST(write_after_free_is_reported_on_reuse) {
  if (UNDER_ASAN) return; /* ASan stops the write itself: see asan_probe */
  errors_reset();
  uint8_t *p = debug_test_allocation_site(40);
  refgc_free(p);
  /* freed memory reads 0xDD */
  ASSERT_EQ(p[8], 0xDD);
  ASSERT_EQ(p[39], 0xDD);
  p[20] = 0x42; /* the bug */
  /* allocate blocks of the same class until the heap hands `p` out again */
  void *got[20000];
  int n = 0;
  while (n < 20000 && err_calls == 0) {
    got[n] = refgc_malloc(40);
    if (got[n++] == p) break;
  }
  ASSERT_EQ(err_calls, 1);
  ASSERT_EQ(err_code, REFGC_EUSEAFTERFREE);
  ASSERT_STR_CONTAINS(err_msg, "written after it was freed");
  ASSERT_STR_CONTAINS(err_msg, "byte at offset 20 is 0x42");
  ASSERT_STR_CONTAINS(err_msg, "debug_test_allocation_site");
  for (int i = 0; i < n; i++) refgc_free(got[i]);
  refgc_set_error_handler(NULL, NULL);
  ASSERT_EQ(refgc_heap_check(), 0);
}

TEST(collect_keeps_debug_patterns) {
  /* given-back OS pages read as zero; blocks taken from them must be refilled with the
   * freed pattern, or the next allocation would report a false write-after-free */
  errors_reset();
  enum { N = 20000 };
  static void *ptrs[N];
  for (int i = 0; i < N; i++) ptrs[i] = refgc_malloc(100);
  for (int i = 0; i < N; i++)
    if (i % 512) refgc_free(ptrs[i]);
  refgc_heap_collect();
  for (int i = 0; i < N; i++)
    if (i % 512) ptrs[i] = refgc_malloc(100);
  ASSERT_EQ(err_calls, 0);
  for (int i = 0; i < N; i++) refgc_free(ptrs[i]);
  ASSERT_EQ(err_calls, 0);
  refgc_set_error_handler(NULL, NULL);
  ASSERT_EQ(refgc_heap_check(), 0);
}
