/* refgc — heap API semantics: malloc/calloc/realloc/aligned/free/usable_size, alignment of
 * every size, size classes, large blocks, error reports for bad pointers, statistics, giving
 * memory back to the OS, the heap check.
 */
#include <errno.h>
#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>

#include "internal.h"
#include "refgc.h"
#include "test.h"

/* ---- an error handler that records instead of aborting ----------------------------------- */

static int err_calls;
static int err_code;
static char err_msg[4096];
static const void *err_ptr;

static void record_error(const refgc_error_info_t *info, void *arg) {
  (void)arg;
  err_calls++;
  err_code = info->code;
  err_ptr = info->ptr;
  snprintf(err_msg, sizeof err_msg, "%s", info->message);
}

static void errors_reset(void) {
  refgc_set_error_handler(record_error, NULL);
  err_calls = 0;
  err_code = 0;
  err_msg[0] = 0;
  err_ptr = NULL;
}

static size_t stats_in_use(void) {
  refgc_heap_stats_t s;
  s.size = sizeof s;
  refgc_heap_stats(&s);
  return s.in_use;
}

/* ---- sizes and classes --------------------------------------------------------------------- */

TEST(size_class_table) {
  size_t prev = 0;
  for (unsigned c = 0; c < REFGC_NUM_CLASSES; c++) {
    size_t bs = refgc__classes[c].block_size;
    ASSERT_GT(bs, prev);
    ASSERT_EQ(bs % 16, 0);
    /* every page holds at least 4 blocks */
    ASSERT_GE(((size_t)1 << refgc__classes[c].page_shift) / bs, 4);
    ASSERT_EQ(refgc__size_class(bs), c);
    ASSERT_EQ(refgc__size_class(prev + 1), c);
    prev = bs;
  }
  ASSERT_EQ(prev, REFGC_MEDIUM_MAX);
  ASSERT_EQ(refgc__size_class(0), 0);
}

TEST(div_magic_exact_for_every_offset) {
  for (unsigned c = 0; c < REFGC_NUM_CLASSES; c++) {
    uint64_t bs = refgc__classes[c].block_size;
    uint64_t page = (uint64_t)1 << refgc__classes[c].page_shift;
    uint64_t m = refgc__classes[c].div_magic;
    for (uint64_t off = 0; off < page; off++) {
      uint64_t q = (off * m) >> 40;
      if (q != off / bs) TEST_FAIL("class %u offset %llu: %llu != %llu", c, (unsigned long long)off,
                                   (unsigned long long)q, (unsigned long long)(off / bs));
    }
  }
}

TEST(malloc_every_small_size_aligned_and_usable) {
  for (size_t n = 0; n <= 9000; n++) {
    uint8_t *p = refgc_malloc(n);
    ASSERT(p != NULL);
    ASSERT_EQ((uintptr_t)p % 16, 0);
    size_t u = refgc_usable_size(p);
    ASSERT_GE(u, n);
    if (n) {
      p[0] = 1;
      p[u - 1] = 2;
    }
    ASSERT(refgc_owns(p));
    refgc_free(p);
  }
  for (size_t n = 9000; n < 600000; n = n * 9 / 8) {
    uint8_t *p = refgc_malloc(n);
    ASSERT(p != NULL);
    ASSERT_EQ((uintptr_t)p % 16, 0);
    ASSERT_GE(refgc_usable_size(p), n);
    memset(p, 0x5A, n);
    refgc_free(p);
  }
}

TEST(power_of_two_classes_are_naturally_aligned) {
  for (size_t n = 16; n <= 4096; n *= 2) {
    void *p = refgc_malloc(n);
    ASSERT_EQ((uintptr_t)p % n, 0);
    refgc_free(p);
  }
}

TEST(malloc_zero_returns_unique_blocks) {
  void *a = refgc_malloc(0), *b = refgc_malloc(0);
  ASSERT(a && b && a != b);
  refgc_free(a);
  refgc_free(b);
  refgc_free(NULL);
}

/* volatile: keep the compiler from warning about (and folding) the impossible sizes */
static volatile size_t huge = SIZE_MAX;

TEST(malloc_huge_fails_with_enomem) {
  errno = 0;
  ASSERT(refgc_malloc(huge) == NULL);
  ASSERT_EQ(errno, ENOMEM);
  errno = 0;
  ASSERT(refgc_malloc(huge / 2 + 1) == NULL);
  ASSERT_EQ(errno, ENOMEM);
}

TEST(calloc_zeroes_and_checks_overflow) {
  for (size_t n = 1; n < 300000; n = n * 3 + 1) {
    uint8_t *p = refgc_malloc(n);
    memset(p, 0xFF, n);
    refgc_free(p);
    uint8_t *q = refgc_calloc(n, 1);
    for (size_t i = 0; i < n; i++)
      if (q[i]) TEST_FAIL("calloc(%zu) byte %zu is %d", n, i, q[i]);
    refgc_free(q);
  }
  errno = 0;
  ASSERT(refgc_calloc(huge / 2, 3) == NULL);
  ASSERT_EQ(errno, ENOMEM);
  void *z = refgc_calloc(0, 10);
  ASSERT(z != NULL);
  refgc_free(z);
}

TEST(realloc_keeps_contents) {
  ASSERT(refgc_realloc(NULL, 0) != NULL); /* leaks one min block: fine in a test */
  uint8_t *p = refgc_realloc(NULL, 10);
  for (int i = 0; i < 10; i++) p[i] = (uint8_t)i;
  size_t sizes[] = {20, 8, 500, 5000, 70000, 300000, 1000000, 100, 3};
  size_t have = 10;
  for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
    size_t n = sizes[k];
    uint8_t *q = refgc_realloc(p, n);
    ASSERT(q != NULL);
    size_t keep = have < n ? have : n;
    for (size_t i = 0; i < keep; i++)
      if (q[i] != (uint8_t)i) TEST_FAIL("realloc to %zu lost byte %zu", n, i);
    for (size_t i = keep; i < n; i++) q[i] = (uint8_t)i;
    have = n;
    p = q;
  }
  void *m = refgc_realloc(p, 0); /* frees p, returns a minimum block */
  ASSERT(m != NULL);
  refgc_free(m);
}

TEST(realloc_shrink_in_place_and_grow) {
  uint8_t *p = refgc_malloc(400);
  ASSERT_PTR_EQ(refgc_realloc(p, 390), p);
  uint8_t *q = refgc_realloc(p, 100);
  ASSERT(q != NULL);
  refgc_free(q);
}

TEST(aligned_alloc_every_alignment) {
  for (size_t align = 1; align <= REFGC_MAX_ALIGN; align *= 2) {
    size_t sizes[] = {1, 8, 24, 100, 1000, 5000, 70000, 300000};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
      uint8_t *p = refgc_aligned_alloc(align, sizes[k]);
      ASSERT(p != NULL);
      if ((uintptr_t)p % align) TEST_FAIL("align %zu size %zu gave %p", align, sizes[k], (void *)p);
      ASSERT_GE(refgc_usable_size(p), sizes[k]);
      memset(p, 1, sizes[k]);
      refgc_free(p);
    }
  }
  errno = 0;
  ASSERT(refgc_aligned_alloc(48, 10) == NULL);
  ASSERT_EQ(errno, EINVAL);
  errno = 0;
  ASSERT(refgc_aligned_alloc(REFGC_MAX_ALIGN * 2, 10) == NULL);
  ASSERT_EQ(errno, EINVAL);
  errno = 0;
  ASSERT(refgc_aligned_alloc(0, 10) == NULL);
  ASSERT_EQ(errno, EINVAL);
}

TEST(large_blocks) {
  size_t sizes[] = {REFGC_MEDIUM_MAX + 1, 200000, 1 << 20, (size_t)5 << 20, (size_t)33 << 20};
  for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
    uint8_t *p = refgc_malloc(sizes[k]);
    ASSERT(p != NULL);
    p[0] = 1;
    p[sizes[k] - 1] = 2;
    ASSERT(refgc_owns(p));
    ASSERT(!refgc_owns(p + 16));
    ASSERT_EQ(refgc_heap_check(), 0);
    refgc_free(p);
    ASSERT(!refgc_owns(p));
  }
}

TEST(blocks_do_not_overlap) {
  enum { N = 20000 };
  static uint8_t *ptrs[N];
  static size_t sizes[N];
  test_rng_t r = {test_seed()};
  for (int i = 0; i < N; i++) {
    sizes[i] = 1 + test_below(&r, 2000);
    ptrs[i] = refgc_malloc(sizes[i]);
    memset(ptrs[i], (uint8_t)i, sizes[i]);
  }
  for (int i = 0; i < N; i++)
    for (size_t k = 0; k < sizes[i]; k++)
      if (ptrs[i][k] != (uint8_t)i) TEST_FAIL("block %d byte %zu overwritten", i, k);
  ASSERT_EQ(refgc_heap_check(), 0);
  for (int i = 0; i < N; i++) refgc_free(ptrs[i]);
  ASSERT_EQ(refgc_heap_check(), 0);
}

/* ---- bad pointers are reported, never followed --------------------------------------------- */

TEST(free_foreign_pointer_is_reported) {
  errors_reset();
  int local;
  refgc_free(&local);
  ASSERT_EQ(err_calls, 1);
  ASSERT_EQ(err_code, REFGC_EFOREIGN);
  ASSERT_PTR_EQ(err_ptr, &local);
  ASSERT_STR_CONTAINS(err_msg, "refgc_free(");
  ASSERT_STR_CONTAINS(err_msg, "not allocated by refgc");
  void *m = malloc(32);
  refgc_free(m);
  ASSERT_EQ(err_calls, 2);
  ASSERT_EQ(err_code, REFGC_EFOREIGN);
  free(m);
  ASSERT_EQ(refgc_usable_size(&local), 0);
  ASSERT_EQ(err_calls, 3);
  errno = 0;
  ASSERT(refgc_realloc(&local, 10) == NULL);
  ASSERT_EQ(errno, EINVAL);
  ASSERT_EQ(err_calls, 4);
  refgc_set_error_handler(NULL, NULL);
}

TEST(free_interior_pointer_is_reported) {
  errors_reset();
  uint8_t *p = refgc_malloc(100); /* 112-byte class */
  size_t before = stats_in_use();
  refgc_free(p + 8);
  ASSERT_EQ(err_calls, 1);
  ASSERT_EQ(err_code, REFGC_EINTERIOR);
  ASSERT_STR_CONTAINS(err_msg, "8 bytes into the 112-byte block");
  ASSERT_EQ(stats_in_use(), before); /* nothing was freed */
  uint8_t *l = refgc_malloc(1 << 20);
  refgc_free(l + 4096);
  ASSERT_EQ(err_calls, 2);
  ASSERT_EQ(err_code, REFGC_EINTERIOR);
  ASSERT_STR_CONTAINS(err_msg, "large block");
  ASSERT_EQ(refgc_heap_check(), 0);
  refgc_free(p);
  refgc_free(l);
  ASSERT_EQ(err_calls, 2);
  refgc_set_error_handler(NULL, NULL);
}

TEST(error_names) {
  ASSERT_STR_CONTAINS(refgc_strerror(REFGC_ENOMEM), "out of memory");
  ASSERT_STR_CONTAINS(refgc_err_name(REFGC_EDOUBLEFREE), "REFGC_EDOUBLEFREE");
  ASSERT_STR_CONTAINS(refgc_err_name(12345), "UNKNOWN");
  ASSERT_EQ(refgc_version(), REFGC_VERSION_HEX);
  ASSERT_STR_CONTAINS(refgc_version_string(), REFGC_VERSION_STRING);
}

/* ---- statistics ---------------------------------------------------------------------------- */

TEST(stats_track_blocks) {
  refgc_heap_stats_t a, b;
  a.size = b.size = sizeof a;
  ASSERT_EQ(refgc_heap_stats(&a), 0);
  ASSERT_EQ(a.version, REFGC_HEAP_STATS_VERSION);
  enum { N = 1000 };
  void *ptrs[N];
  for (int i = 0; i < N; i++) ptrs[i] = refgc_malloc(40); /* 48-byte class */
  void *big = refgc_malloc(1 << 20);
  ASSERT_EQ(refgc_heap_stats(&b), 0);
  ASSERT_EQ(b.classes[2].block_size, 48);
  ASSERT_EQ(b.classes[2].blocks_in_use - a.classes[2].blocks_in_use, N);
  ASSERT_EQ(b.requested_total - a.requested_total, N * 40 + (1 << 20));
  ASSERT_EQ(b.large_count - a.large_count, 1);
  ASSERT_GE(b.in_use - a.in_use, N * 48 + (1 << 20));
  ASSERT_GE(b.committed, b.in_use);
  ASSERT_GE(b.reserved, b.committed);
  ASSERT_GE(b.committed_peak, b.committed);
  ASSERT(b.fragmentation > 0 && b.fragmentation <= 1.0);
  for (int i = 0; i < N; i++) refgc_free(ptrs[i]);
  refgc_free(big);
  ASSERT_EQ(refgc_heap_stats(&b), 0);
  ASSERT_EQ(b.classes[2].blocks_in_use, a.classes[2].blocks_in_use);
  ASSERT_EQ(b.in_use, a.in_use);
  ASSERT_EQ(b.free_count - a.free_count, N + 1);
  refgc_heap_stats_t small;
  small.size = 4;
  ASSERT_EQ(refgc_heap_stats(&small), REFGC_EINVAL);
  ASSERT_EQ(refgc_heap_stats(NULL), REFGC_EINVAL);
}

TEST(stats_reports_print) {
  FILE *f = tmpfile();
  ASSERT(f != NULL);
  refgc_heap_stats_print(f);
  ASSERT_EQ(refgc_heap_stats_print_json(f), 0);
  long len = ftell(f);
  ASSERT_GT(len, 100);
  rewind(f);
  static char buf[65536];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  buf[n] = 0;
  fclose(f);
  ASSERT_STR_CONTAINS(buf, "committed");
  ASSERT_STR_CONTAINS(buf, "fragmentation");
  ASSERT_STR_CONTAINS(buf, "{\"version\":1,");
  ASSERT_STR_CONTAINS(buf, "\"classes\":[{\"class\":0,\"block_size\":16,");
  ASSERT_STR_CONTAINS(buf, "]}\n");
}

/* ---- giving memory back ------------------------------------------------------------------- */

TEST(empty_pages_are_given_back) {
  refgc_heap_collect();
  refgc_heap_stats_t a, b, c;
  a.size = b.size = c.size = sizeof a;
  refgc_heap_stats(&a);
  enum { N = 200000 };
  void **ptrs = malloc(N * sizeof *ptrs);
  for (int i = 0; i < N; i++) ptrs[i] = refgc_malloc(64);
  refgc_heap_stats(&b);
  ASSERT_GE(b.committed - a.committed, (size_t)N * 64);
  for (int i = 0; i < N; i++) refgc_free(ptrs[i]);
  refgc_heap_collect();
  refgc_heap_stats(&c);
  /* everything came back but at most a page per class */
  ASSERT_LE(c.committed, a.committed + 128 * 1024);
  ASSERT_GT(c.released_total, b.released_total);
  ASSERT_EQ(refgc_heap_check(), 0);
  free(ptrs);
}

TEST(os_pages_inside_used_pages_are_given_back) {
  refgc_heap_collect();
  enum { N = 100000 };
  void **ptrs = malloc(N * sizeof *ptrs);
  for (int i = 0; i < N; i++) ptrs[i] = refgc_malloc(128);
  refgc_heap_stats_t b, c;
  b.size = c.size = sizeof b;
  refgc_heap_stats(&b);
  /* keep one block in 256: every 64 KiB page keeps a block, so no page can go whole */
  for (int i = 0; i < N; i++)
    if (i % 256) {
      refgc_free(ptrs[i]);
      ptrs[i] = NULL;
    }
  refgc_heap_collect();
  refgc_heap_stats(&c);
  ASSERT_EQ(refgc_heap_check(), 0);
  /* 100000 * 128 B = 12.2 MiB committed; survivors hold 391 OS pages = 1.5 MiB */
  ASSERT_LT(c.committed, b.committed / 4);
  /* the survivors are intact and the pages work again */
  for (int i = 0; i < N; i++)
    if (ptrs[i]) memset(ptrs[i], 7, 128);
  for (int i = 0; i < N; i++)
    if (!ptrs[i]) ptrs[i] = refgc_malloc(128);
  ASSERT_EQ(refgc_heap_check(), 0);
  for (int i = 0; i < N; i++) memset(ptrs[i], 9, 128);
  for (int i = 0; i < N; i++) refgc_free(ptrs[i]);
  ASSERT_EQ(refgc_heap_check(), 0);
  free(ptrs);
}

TEST(heap_check_finds_corruption) {
  errors_reset();
  uint8_t *p = refgc_malloc(64);
  uint8_t *q = refgc_malloc(64);
  refgc_free(q);
  /* free the block twice behind the heap's back: the free list now holds it twice */
  refgc_segment_t *seg = refgc__segment_of(p);
  refgc_page_t *page = &seg->pages[((uintptr_t)p - (uintptr_t)seg) >> seg->page_shift];
  refgc_block_t *saved = page->local_free;
  uint32_t used = page->used;
  refgc__block_set_next((refgc_block_t *)p, page->local_free);
  page->local_free = (refgc_block_t *)p;
  int bad = refgc_heap_check();
  ASSERT_GT(bad, 0);
  ASSERT_EQ(err_code, REFGC_ECORRUPT);
  ASSERT_STR_CONTAINS(err_msg, "page");
  page->local_free = saved; /* repair */
  page->used = used;
  refgc_set_error_handler(NULL, NULL);
  ASSERT_EQ(refgc_heap_check(), 0);
  refgc_free(p);
}

/* ---- fork ---------------------------------------------------------------------------------- */

#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

static int fork_pipe[2], fork_back[2]; /* thread -> main, main -> thread */
static void *fork_helper_thread(void *arg) {
  void **out = arg;
  for (int i = 0; i < 1000; i++) out[i] = refgc_malloc(100);
  char c = 1;
  if (write(fork_pipe[1], &c, 1) != 1) return NULL; /* blocks allocated */
  if (read(fork_back[0], &c, 1) != 1) return NULL;  /* stay alive across the fork */
  return NULL;
}

TEST(fork_child_keeps_a_working_heap) {
  /* another thread owns blocks when we fork; in the child that thread is gone, and its heap
   * must be adopted, its blocks freeable, and no lock left held */
  static void *blocks[1000];
  pthread_t t;
  char c;
  ASSERT_EQ(pipe(fork_pipe), 0);
  ASSERT_EQ(pipe(fork_back), 0);
  pthread_create(&t, NULL, fork_helper_thread, blocks);
  ASSERT_EQ(read(fork_pipe[0], &c, 1), 1); /* the thread is alive and owns its blocks */
  void *mine = refgc_malloc(50);
  pid_t pid = fork();
  ASSERT(pid >= 0);
  if (pid == 0) {
    int bad = 0;
    for (int i = 0; i < 1000; i++) refgc_free(blocks[i]);
    refgc_free(mine);
    void *big = refgc_malloc(1 << 20);
    refgc_free(big);
    refgc_heap_collect();
    bad += refgc_heap_check();
    refgc_heap_stats_t s;
    s.size = sizeof s;
    refgc_heap_stats(&s);
    if (s.heaps_abandoned < 1) bad++; /* the helper's heap, orphaned by fork */
    _exit(bad ? 1 : 0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  c = 2;
  ASSERT_EQ(write(fork_back[1], &c, 1), 1);
  pthread_join(t, NULL);
  close(fork_pipe[0]);
  close(fork_pipe[1]);
  close(fork_back[0]);
  close(fork_back[1]);
  ASSERT(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0);
  for (int i = 0; i < 1000; i++) refgc_free(blocks[i]);
  refgc_free(mine);
}
