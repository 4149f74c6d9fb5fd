/* refgc — the test runner shared by every test executable.
 *
 *   TEST(name) { ... }        defines a case (registered before main runs)
 *   ASSERT(cond)              fails the case, printing the condition
 *   ASSERT_EQ(a, b), ASSERT_NE, ASSERT_LE, ASSERT_GE, ASSERT_LT, ASSERT_GT
 *                             integer comparisons that print both operands
 *   ASSERT_PTR_EQ(a, b), ASSERT_STR_CONTAINS(haystack, needle)
 *   test_seed()               the run's random seed: --seed=N or REFGC_TEST_SEED, else the
 *                             clock; printed so that a failure can be replayed
 *   test_scale()              --scale=N or REFGC_TEST_SCALE (default 1): multiplies work in
 *                             randomized tests, for longer runs by hand
 *
 * Usage: test_x [--list] [--seed=N] [--scale=N] [case ...]. Each case runs in the same process,
 * in order; output is TAP-like ("ok 3 - name") and the last line is "N passed, N failed"
 * (CTest reads the exit status; CI reads that line).
 */
#ifndef REFGC_TEST_H
#define REFGC_TEST_H

#include <inttypes.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef void (*test_fn)(void);
typedef struct test_case_s {
  const char *name;
  test_fn fn;
} test_case_t;

#define TEST_MAX 256
static test_case_t test_cases[TEST_MAX];
static int test_count;
static jmp_buf test_jmp;
static int test_failed_flag;
static uint64_t test_seed_value;
static long test_scale_value = 1;

static void test_register(const char *name, test_fn fn) {
  if (test_count < TEST_MAX) test_cases[test_count++] = (test_case_t){name, fn};
}

#define TEST(name)                                                                    \
  static void test_##name(void);                                                      \
  __attribute__((constructor)) static void test_register_##name(void) {               \
    test_register(#name, test_##name);                                                \
  }                                                                                   \
  static void test_##name(void)

#define TEST_FAIL(...)                                                      \
  do {                                                                      \
    fprintf(stderr, "  FAILED at %s:%d: ", __FILE__, __LINE__);             \
    fprintf(stderr, __VA_ARGS__);                                           \
    fprintf(stderr, "\n");                                                  \
    test_failed_flag = 1;                                                   \
    longjmp(test_jmp, 1);                                                   \
  } while (0)

#define ASSERT(cond) \
  do {               \
    if (!(cond)) TEST_FAIL("ASSERT(%s)", #cond); \
  } while (0)

#define ASSERT_CMP_(a, op, b)                                                           \
  do {                                                                                  \
    long long va_ = (long long)(a), vb_ = (long long)(b);                               \
    if (!(va_ op vb_))                                                                  \
      TEST_FAIL("%s %s %s (%lld %s %lld)", #a, #op, #b, va_, #op, vb_);                 \
  } while (0)
#define ASSERT_EQ(a, b) ASSERT_CMP_(a, ==, b)
#define ASSERT_NE(a, b) ASSERT_CMP_(a, !=, b)
#define ASSERT_LE(a, b) ASSERT_CMP_(a, <=, b)
#define ASSERT_GE(a, b) ASSERT_CMP_(a, >=, b)
#define ASSERT_LT(a, b) ASSERT_CMP_(a, <, b)
#define ASSERT_GT(a, b) ASSERT_CMP_(a, >, b)
#define ASSERT_PTR_EQ(a, b)                                                     \
  do {                                                                          \
    const void *pa_ = (a), *pb_ = (b);                                          \
    if (pa_ != pb_) TEST_FAIL("%s == %s (%p != %p)", #a, #b, pa_, pb_);         \
  } while (0)
#define ASSERT_STR_CONTAINS(h, n)                                                      \
  do {                                                                                 \
    const char *h_ = (h), *n_ = (n);                                                   \
    if (!h_ || !strstr(h_, n_)) TEST_FAIL("\"%s\" does not contain \"%s\"", h_ ? h_ : "(null)", n_); \
  } while (0)

__attribute__((unused)) static uint64_t test_seed(void) { return test_seed_value; }
__attribute__((unused)) static long test_scale(void) { return test_scale_value; }

/* splitmix64: the tests' random numbers, reproducible from the printed seed. */
typedef struct test_rng_s {
  uint64_t s;
} test_rng_t;
static inline uint64_t test_rand(test_rng_t *r) {
  uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
static inline uint64_t test_below(test_rng_t *r, uint64_t n) { return n ? test_rand(r) % n : 0; }

/* setjmp lives in its own frame, so main's locals cannot be clobbered by longjmp. */
static int test_run_one(test_fn fn) {
  test_failed_flag = 0;
  if (setjmp(test_jmp) == 0) fn();
  return test_failed_flag;
}

int main(int argc, char **argv) {
  const char *env_seed = getenv("REFGC_TEST_SEED");
  const char *env_scale = getenv("REFGC_TEST_SCALE");
  test_seed_value = env_seed ? strtoull(env_seed, NULL, 0) : (uint64_t)time(NULL) ^ (uint64_t)clock();
  if (env_scale) test_scale_value = strtol(env_scale, NULL, 0);
  int selected = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--list")) {
      for (int t = 0; t < test_count; t++) printf("%s\n", test_cases[t].name);
      return 0;
    } else if (!strncmp(argv[i], "--seed=", 7)) {
      test_seed_value = strtoull(argv[i] + 7, NULL, 0);
    } else if (!strncmp(argv[i], "--scale=", 8)) {
      test_scale_value = strtol(argv[i] + 8, NULL, 0);
    } else {
      selected++;
    }
  }
  if (test_scale_value < 1) test_scale_value = 1;
  printf("# %s: seed %" PRIu64 " (replay with --seed=%" PRIu64 "), scale %ld\n", argv[0],
         test_seed_value, test_seed_value, test_scale_value);
  int passed = 0, failed = 0, n = 0;
  for (int t = 0; t < test_count; t++) {
    if (selected) {
      int want = 0;
      for (int i = 1; i < argc; i++)
        if (argv[i][0] != '-' && !strcmp(argv[i], test_cases[t].name)) want = 1;
      if (!want) continue;
    }
    n++;
    fflush(stdout);
    if (test_run_one(test_cases[t].fn)) {
      failed++;
      printf("not ok %d - %s\n", n, test_cases[t].name);
    } else {
      passed++;
      printf("ok %d - %s\n", n, test_cases[t].name);
    }
    fflush(stdout);
  }
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}

#endif /* REFGC_TEST_H */
