/* refgc — the symbol resolver: return addresses of the test's own code (function, file, line),
 * of the C library, of a library loaded and unloaded later, of nothing; the cache (the same
 * string pointers twice, memory counted, nothing taken from the refgc heap); threads.
 * Built with -g in every build type (tests/CMakeLists.txt) so that libdw finds lines.
 */
#define _GNU_SOURCE /* dlinfo, RTLD_NOLOAD */
#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"
#include "refgc.h"
#include "test.h"

#if defined(__clang__)
#define NO_IPA __attribute__((noinline, optnone))
#else
#define NO_IPA __attribute__((noinline, noipa))
#endif

/* The return address of its call: inside the caller, just after the call instruction. */
NO_IPA static uintptr_t return_address(void) {
  uintptr_t a = (uintptr_t)__builtin_extract_return_addr(__builtin_return_address(0));
  __asm__ volatile("" ::: "memory");
  return a;
}

static int ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && !strcmp(s + n - m, suffix);
}

/* Whether libdw answers: built with it and /proc there (without /proc the resolver falls back
 * to dladdr: `unshare -m sh -c 'mount -t tmpfs none /proc && test_symbols'` tests that). */
static int have_libdw(void) {
  return !strcmp(refgc_symbolizer(), "libdw") && access("/proc/self/maps", R_OK) == 0;
}

static size_t heap_in_use(void) {
  refgc_heap_stats_t s;
  s.size = sizeof s;
  refgc_heap_stats(&s);
  return s.in_use;
}

/* Checks common to every resolved frame of this executable. */
static void check_own_frame(const refgc_frame_info_t *f, uintptr_t ra, const char *caller,
                            int line, int exported) {
  ASSERT_EQ(f->address, ra);
  ASSERT_STR_CONTAINS(f->module, "test_symbols");
  Dl_info info;
  ASSERT(dladdr((void *)(ra - 1), &info) && info.dli_fbase);
  ASSERT_EQ(f->offset, ra - (uintptr_t)info.dli_fbase);
  if (have_libdw()) {
    ASSERT_STR_CONTAINS(f->function, caller);
    if (!ends_with(f->file, "test_symbols.c")) TEST_FAIL("file \"%s\"", f->file);
    ASSERT_EQ(f->line, line);
  } else {
    if (exported)
      ASSERT_STR_CONTAINS(f->function, caller);
    else
      ASSERT(!strcmp(f->function, "")); /* static: not in the dynamic symbol table */
    ASSERT(!strcmp(f->file, ""));
    ASSERT_EQ(f->line, 0);
  }
}

TEST(symbolizer_name) {
#if defined(REFGC_EXPECT_SYMBOLIZER)
  ASSERT(!strcmp(refgc_symbolizer(), REFGC_EXPECT_SYMBOLIZER));
#endif
  ASSERT(!strcmp(refgc_symbolizer(), "libdw") || !strcmp(refgc_symbolizer(), "dladdr"));
  printf("# symbolizer: %s\n", refgc_symbolizer());
}

TEST(null_out_is_einval) { ASSERT_EQ(refgc_symbolize(0x1234, NULL), REFGC_EINVAL); }

TEST(own_static_function_file_and_line) {
  uintptr_t ra = return_address(); const int line = __LINE__;
  refgc_frame_info_t f;
  memset(&f, 0xff, sizeof f);
  ASSERT_EQ(refgc_symbolize(ra, &f), 0);
  printf("# %#lx: %s+%#lx %s %s:%d\n", (unsigned long)f.address, f.module,
         (unsigned long)f.offset, f.function, f.file, f.line);
  check_own_frame(&f, ra, "test_own_static_function_file_and_line", line, 0);
}

/* Exported (the tests link with ENABLE_EXPORTS): dladdr names it too. */
uintptr_t symbols_exported_caller(int *line);
NO_IPA uintptr_t symbols_exported_caller(int *line) {
  uintptr_t ra = return_address(); *line = __LINE__;
  return ra;
}

TEST(own_exported_function) {
  int line = 0;
  uintptr_t ra = symbols_exported_caller(&line);
  refgc_frame_info_t f;
  ASSERT_EQ(refgc_symbolize(ra, &f), 0);
  check_own_frame(&f, ra, "symbols_exported_caller", line, 1);
}

/* getpid's address in the C library itself (not a PLT stub, not a sanitizer's interceptor). */
static uintptr_t libc_getpid(void) {
  void *libc = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
  if (!libc) TEST_FAIL("libc.so.6 is not loaded: %s", dlerror());
  void *p = dlsym(libc, "getpid");
  dlclose(libc);
  if (!p) TEST_FAIL("no getpid in libc.so.6");
  return (uintptr_t)p;
}

TEST(libc_function) {
  uintptr_t ra = libc_getpid() + 1; /* as if a call had returned to its first byte */
  refgc_frame_info_t f;
  ASSERT_EQ(refgc_symbolize(ra, &f), 0);
  printf("# %#lx: %s+%#lx %s %s:%d\n", (unsigned long)f.address, f.module,
         (unsigned long)f.offset, f.function, f.file, f.line);
  ASSERT_EQ(f.address, ra);
  ASSERT_STR_CONTAINS(f.module, "libc");
  ASSERT_STR_CONTAINS(f.function, "getpid");
  Dl_info info;
  ASSERT(dladdr((void *)(ra - 1), &info) && info.dli_fbase);
  ASSERT_EQ(f.offset, ra - (uintptr_t)info.dli_fbase);
  ASSERT(f.file != NULL);
  ASSERT_GE(f.line, 0);
}

TEST(garbage_addresses) {
  const uintptr_t bad[] = {0x10, 0, 1, 0x1000, UINTPTR_MAX, UINTPTR_MAX / 2};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    for (int round = 0; round < 2; round++) { /* resolved, then cached */
      refgc_frame_info_t f;
      memset(&f, 0xff, sizeof f);
      ASSERT_EQ(refgc_symbolize(bad[i], &f), 0);
      ASSERT_EQ(f.address, bad[i]);
      ASSERT_EQ(f.offset, bad[i]);
      ASSERT(f.module && !strcmp(f.module, ""));
      ASSERT(f.function && !strcmp(f.function, ""));
      ASSERT(f.file && !strcmp(f.file, ""));
      ASSERT_EQ(f.line, 0);
    }
  }
}

TEST(cached_results_share_strings) {
  uintptr_t ra = return_address(); const int line = __LINE__;
  refgc_frame_info_t a, b;
  ASSERT_EQ(refgc_symbolize(ra, &a), 0);
  size_t mem = refgc__symbols_memory();
  ASSERT_GT(mem, 0);
  ASSERT_EQ(refgc_symbolize(ra, &b), 0);
  ASSERT_EQ(refgc__symbols_memory(), mem);
  ASSERT_EQ(a.address, b.address);
  ASSERT_EQ(a.offset, b.offset);
  ASSERT_PTR_EQ(a.module, b.module);
  ASSERT_PTR_EQ(a.function, b.function);
  ASSERT_PTR_EQ(a.file, b.file);
  ASSERT_EQ(a.line, b.line);
  /* another address of the same function and file: the strings are interned once */
  uintptr_t ra2 = return_address(); const int line2 = __LINE__;
  refgc_frame_info_t c;
  ASSERT_EQ(refgc_symbolize(ra2, &c), 0);
  ASSERT_PTR_EQ(c.module, a.module);
  if (have_libdw()) {
    ASSERT_PTR_EQ(c.function, a.function);
    ASSERT_PTR_EQ(c.file, a.file);
    ASSERT_EQ(a.line, line);
    ASSERT_EQ(c.line, line2);
  }
}

TEST(memory_is_counted_and_not_from_the_refgc_heap) {
  size_t in_use = heap_in_use();
  size_t mem = refgc__symbols_memory();
  uintptr_t base = (uintptr_t)&symbols_exported_caller;
  for (uintptr_t i = 1; i <= 4000; i++) {
    refgc_frame_info_t f;
    ASSERT_EQ(refgc_symbolize(base + i, &f), 0);
    ASSERT_STR_CONTAINS(f.module, "test_symbols");
  }
  ASSERT_GT(refgc__symbols_memory(), mem + 4000 * sizeof(refgc_frame_info_t));
  ASSERT_EQ(heap_in_use(), in_use);
}

/* A library loaded after the resolver first ran is found (the modules are reported again),
 * and one unloaded does not confuse it. */
TEST(library_loaded_later) {
  uintptr_t ra = return_address(); int line = __LINE__;
  refgc_frame_info_t f;
  ASSERT_EQ(refgc_symbolize(ra, &f), 0);
  check_own_frame(&f, ra, "test_library_loaded_later", line, 0);

  static const char *const candidates[] = {"libresolv.so.2", "libanl.so.1", "libutil.so.1",
                                           "libBrokenLocale.so.1", "libnss_dns.so.2"};
  const char *name = NULL;
  void *h = NULL;
  for (size_t i = 0; i < sizeof candidates / sizeof candidates[0] && !h; i++) {
    void *loaded = dlopen(candidates[i], RTLD_LAZY | RTLD_NOLOAD);
    if (loaded) {
      dlclose(loaded);
      continue;
    }
    h = dlopen(candidates[i], RTLD_LAZY | RTLD_LOCAL);
    name = candidates[i];
  }
  if (!h) {
    printf("# skipped: no unloaded library to dlopen\n");
    return;
  }
  struct link_map *map = NULL;
  ASSERT_EQ(dlinfo(h, RTLD_DI_LINKMAP, &map), 0);
  uintptr_t inside = (uintptr_t)map->l_ld + 1; /* its dynamic section: inside its mapping */
  ASSERT_EQ(refgc_symbolize(inside, &f), 0);
  printf("# %s: %s+%#lx\n", name, f.module, (unsigned long)f.offset);
  ASSERT_STR_CONTAINS(f.module, name);
  Dl_info info;
  ASSERT(dladdr((void *)(inside - 1), &info) && info.dli_fbase);
  ASSERT_EQ(f.offset, inside - (uintptr_t)info.dli_fbase);
  dlclose(h);

  ra = return_address(); line = __LINE__;
  ASSERT_EQ(refgc_symbolize(ra, &f), 0);
  check_own_frame(&f, ra, "test_library_loaded_later", line, 0);
}

/* ---- threads ------------------------------------------------------------------------------ */

#define NTHREADS 4
#define NADDR 3000

static uintptr_t thread_addrs[NADDR];
static refgc_frame_info_t thread_out[NTHREADS][NADDR];
static pthread_barrier_t thread_barrier;

static void *thread_main(void *arg) {
  refgc_frame_info_t *out = arg;
  pthread_barrier_wait(&thread_barrier);
  for (size_t i = 0; i < NADDR; i++)
    if (refgc_symbolize(thread_addrs[i], &out[i]) != 0) out[i].address = 0;
  return NULL;
}

TEST(threads_resolve_the_same_addresses) {
  uintptr_t libc = libc_getpid();
  uintptr_t own = (uintptr_t)&thread_main;
  for (size_t i = 0; i < NADDR; i++) {
    switch (i % 3) { /* fresh addresses, never resolved before */
    case 0: thread_addrs[i] = own + 1 + i; break;
    case 1: thread_addrs[i] = libc + 1 + i; break;
    default: thread_addrs[i] = 0x100000 + i; break;
    }
  }
  pthread_t t[NTHREADS];
  ASSERT_EQ(pthread_barrier_init(&thread_barrier, NULL, NTHREADS), 0);
  for (int k = 0; k < NTHREADS; k++)
    ASSERT_EQ(pthread_create(&t[k], NULL, thread_main, thread_out[k]), 0);
  for (int k = 0; k < NTHREADS; k++) pthread_join(t[k], NULL);
  pthread_barrier_destroy(&thread_barrier);
  for (size_t i = 0; i < NADDR; i++) {
    const refgc_frame_info_t *a = &thread_out[0][i];
    ASSERT_EQ(a->address, thread_addrs[i]);
    if (i % 3 == 0) ASSERT_STR_CONTAINS(a->module, "test_symbols");
    if (i % 3 == 1) ASSERT_STR_CONTAINS(a->module, "libc");
    for (int k = 1; k < NTHREADS; k++) {
      const refgc_frame_info_t *b = &thread_out[k][i];
      ASSERT_EQ(b->address, a->address);
      ASSERT_EQ(b->offset, a->offset);
      ASSERT_PTR_EQ(b->module, a->module);
      ASSERT_PTR_EQ(b->function, a->function);
      ASSERT_PTR_EQ(b->file, a->file);
      ASSERT_EQ(b->line, a->line);
    }
  }
}

/* fork while another thread is symbolizing: the child's lock is free and its answers right. */
static atomic_int busy_stop;

static void *busy_main(void *arg) {
  (void)arg;
  uintptr_t base = (uintptr_t)&return_address;
  for (uintptr_t i = 1; !atomic_load(&busy_stop); i++) {
    refgc_frame_info_t f;
    refgc_symbolize(base + (i % 100000), &f);
  }
  return NULL;
}

TEST(fork_while_symbolizing) {
  pthread_t t;
  ASSERT_EQ(pthread_create(&t, NULL, busy_main, NULL), 0);
  for (int round = 0; round < 5; round++) {
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
      alarm(30); /* a lock left held by the fork: fail, do not hang */
      uintptr_t ra = return_address(); const int line = __LINE__;
      refgc_frame_info_t f;
      int ok = refgc_symbolize(ra, &f) == 0 && f.address == ra && strstr(f.module, "test_symbols");
      if (have_libdw()) ok = ok && strstr(f.function, "fork_while_symbolizing") && f.line == line;
      _exit(ok ? 0 : 1);
    }
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT(WIFEXITED(status));
    ASSERT_EQ(WEXITSTATUS(status), 0);
  }
  atomic_store(&busy_stop, 1);
  pthread_join(t, NULL);
}
