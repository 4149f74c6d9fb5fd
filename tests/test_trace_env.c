/* refgc — tracing started from the environment (refgc/trace.h, "Environment").
 *
 * The env_* cases run this program again (fork and execve of /proc/self/exe, the case "child")
 * with REFGC_TRACE... set, then load the files the child wrote and check them: tracing on in
 * main() with the frame limit asked for, the snapshot written at exit (with the object graph)
 * holding the child's allocation site, sampling and its seed, numbered files every N
 * milliseconds or bytes, the DWARF unwinder, bad values ignored with a message.
 *
 * CTest also runs this program with REFGC_TRACE=8 and REFGC_TRACE_FILE=env_snapshot.rgc in its
 * environment (case env_started_before_main), and a second test checks the file that run left
 * (case env_ctest_file, with TE_CHECK_FILE set).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "refgc.h"
#include "test.h"

extern char **environ;

#if defined(__clang__)
#define NOINL __attribute__((noinline))
#else
#define NOINL __attribute__((noinline, noipa))
#endif
#define KEEP(p) __asm__ volatile("" : : "r"(p) : "memory")

static int fn_is(const char *name, const char *want) {
  size_t n = strlen(want);
  return name && strncmp(name, want, n) == 0 && (name[n] == 0 || name[n] == '.');
}

NOINL void *te_child_site(size_t n) {
  void *p = refgc_malloc(n);
  KEEP(p);
  return p;
}
NOINL void *te_child_caller(size_t n) {
  void *p = te_child_site(n);
  KEEP(p);
  return p;
}
NOINL void *te_ctest_site(size_t n) {
  void *p = refgc_malloc(n);
  KEEP(p);
  return p;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- the parent's side ---------------------------------------------------------------------- */

static char dir[256];
static const char *path_in(const char *name) {
  static char buf[4][512];
  static int k;
  char *b = buf[k++ % 4];
  if (!dir[0]) {
    const char *base = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/refgc-test-env-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(dir)) TEST_FAIL("mkdtemp: %s", strerror(errno));
  }
  snprintf(b, sizeof buf[0], "%s/%s", dir, name);
  return b;
}
__attribute__((destructor)) static void dir_cleanup(void) {
  if (!dir[0]) return;
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

static char *read_text(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  rewind(f);
  char *buf = calloc(1, (size_t)n + 1);
  if (buf && n > 0 && fread(buf, 1, (size_t)n, f) != (size_t)n) buf[0] = 0;
  fclose(f);
  return buf;
}

/* Run the case "child" in a new process with `vars` (NULL-terminated "NAME=value" strings)
 * added to an environment without any REFGC_ or TE_ variable. Returns its pid; its output goes
 * to `log`. Fails the case unless it exits with status 0 (or `want_status`). */
static pid_t run_child(const char *const *vars, const char *log, int want_status) {
  size_t n = 0;
  for (char **e = environ; *e; e++) n++;
  const char **env = calloc(n + 32, sizeof *env);
  ASSERT(env);
  size_t k = 0;
  for (char **e = environ; *e; e++)
    if (strncmp(*e, "REFGC_", 6) != 0 && strncmp(*e, "TE_", 3) != 0) env[k++] = *e;
  for (size_t i = 0; vars[i] && k < n + 31; i++) env[k++] = vars[i];
  env[k] = NULL;
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  ASSERT(pid >= 0);
  if (pid == 0) {
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
    char *const argv[] = {(char *)"test_trace_env", (char *)"child", NULL};
    execve("/proc/self/exe", argv, (char *const *)env);
    _exit(127);
  }
  free(env);
  int status;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != want_status) {
    char *text = read_text(log);
    fprintf(stderr, "---- child output ----\n%s----\n", text ? text : "(none)");
    free(text);
    TEST_FAIL("child exited with status %d (signal %d), expected %d",
              WIFEXITED(status) ? WEXITSTATUS(status) : -1,
              WIFSIGNALED(status) ? WTERMSIG(status) : 0, want_status);
  }
  return pid;
}

static refgc_snapshot_t *load(const char *path) {
  refgc_snapshot_t *s = refgc_snapshot_load(path);
  if (!s) TEST_FAIL("load %s: %s", path, refgc_snapshot_error());
  return s;
}
static refgc_snapshot_info_t info_of(const refgc_snapshot_t *s) {
  refgc_snapshot_info_t i;
  memset(&i, 0, sizeof i);
  i.size = sizeof i;
  ASSERT_EQ(refgc_snapshot_info(s, &i), 0);
  return i;
}
static const refgc_stat_t *fn_row(const refgc_stat_t *rows, size_t n, const char *fn) {
  for (size_t i = 0; i < n; i++)
    if (fn_is(rows[i].key, fn)) return &rows[i];
  return NULL;
}

/* ---- the child ------------------------------------------------------------------------------- */

static const refgc_type_t *child_type(void) {
  refgc_type_spec_t s = {REFGC_TYPE_SPEC_VERSION, REFGC_TYPE_LEAF, "te.thing", 40, 0, NULL, NULL,
                         NULL, NULL, 0};
  return refgc_type_register(&s);
}

TEST(child) {
  const char *mode = getenv("TE_CHILD");
  if (!mode) {
    printf("# (the env_* cases run this case in a child process)\n");
    return;
  }
  if (strcmp(mode, "basic") == 0) {
    /* tracing was started before main() */
    ASSERT_EQ(refgc_trace_is_tracing(), 1);
    ASSERT_EQ(refgc_trace_frames(), atoi(getenv("TE_FRAMES")));
    ASSERT_EQ(refgc_trace_sample_bytes(), 0);
    for (int i = 0; i < 10; i++) KEEP(te_child_caller(1000)); /* live at exit */
    refgc_object_t *o = refgc_new(child_type());
    KEEP(o);
    void *fr[64];
    void *p = te_child_caller(10);
    int n = refgc_trace_traceback(p, fr, 64);
    ASSERT(n >= 2);
    ASSERT(n <= atoi(getenv("TE_FRAMES")));
    refgc_frame_info_t fi;
    refgc_symbolize((uintptr_t)fr[0], &fi);
    ASSERT(fn_is(fi.function, "te_child_site"));
    refgc_symbolize((uintptr_t)fr[1], &fi);
    ASSERT(fn_is(fi.function, "te_child_caller"));
    for (int i = 0; i < n; i++) {
      refgc_symbolize((uintptr_t)fr[i], &fi);
      if (strncmp(fi.function, "refgc", 5) == 0) TEST_FAIL("frame %d is refgc's: %s", i, fi.function);
    }
    refgc_free(p);
  } else if (strcmp(mode, "sample") == 0) {
    ASSERT_EQ(refgc_trace_is_tracing(), 1);
    ASSERT_EQ(refgc_trace_sample_bytes(), 4096);
    for (int i = 0; i < 65536; i++) KEEP(te_child_site(64)); /* 4 MiB live at exit */
  } else if (strcmp(mode, "every_ms") == 0) {
    ASSERT_EQ(refgc_trace_is_tracing(), 1);
    double t0 = now_s();
    int k = 0;
    while (now_s() - t0 < 0.45) {
      void *p = te_child_site(100 + (size_t)(k++ % 500));
      if (k % 3) refgc_free(p);
    }
  } else if (strcmp(mode, "every_bytes") == 0) {
    ASSERT_EQ(refgc_trace_is_tracing(), 1);
    for (int i = 0; i < 10; i++) {
      for (int j = 0; j < 64; j++) KEEP(te_child_site(5000)); /* 320 KB per round */
    }
  } else if (strcmp(mode, "plain") == 0) {
    ASSERT_EQ(refgc_trace_is_tracing(), 1);
    KEEP(te_child_site(100));
  } else if (strcmp(mode, "off") == 0) {
    ASSERT_EQ(refgc_trace_is_tracing(), 0);
    ASSERT_EQ(refgc_trace_frames(), 0);
    void *p = te_child_site(100);
    ASSERT_EQ(refgc_trace_count(), 0);
    refgc_free(p);
  } else {
    TEST_FAIL("unknown TE_CHILD=%s", mode);
  }
}

/* ---- the cases ------------------------------------------------------------------------------- */

TEST(env_trace_and_file_at_exit) {
  const char *file = path_in("basic.rgc"), *log = path_in("basic.log");
  char v_file[600];
  snprintf(v_file, sizeof v_file, "REFGC_TRACE_FILE=%s", file);
  const char *vars[] = {"REFGC_TRACE=8", v_file, "TE_CHILD=basic", "TE_FRAMES=8", NULL};
  pid_t pid = run_child(vars, log, 0);
  refgc_snapshot_t *s = load(file);
  refgc_snapshot_info_t info = info_of(s);
  ASSERT_EQ(info.pid, (uint64_t)pid);
  ASSERT_EQ(info.frames, 8);
  ASSERT_EQ(info.sample_bytes, 0);
  ASSERT(info.graph_nodes >= 1); /* written with the object graph */
  ASSERT(strstr(info.program, "test_trace_env") != NULL);
  size_t n;
  refgc_stat_t *st = refgc_snapshot_statistics(s, REFGC_GROUP_FUNCTION, 0, &n);
  const refgc_stat_t *row = fn_row(st, n, "te_child_site");
  if (!row) TEST_FAIL("no row for te_child_site in the child's snapshot");
  ASSERT_EQ(row->size, 10000);
  ASSERT_EQ(row->count, 10);
  refgc_stats_free(st);
  st = refgc_snapshot_statistics(s, REFGC_GROUP_FUNCTION, 1, &n);
  row = fn_row(st, n, "te_child_caller");
  ASSERT(row && row->size == 10000);
  refgc_stats_free(st);
  st = refgc_snapshot_statistics(s, REFGC_GROUP_TYPE, 0, &n);
  int found = 0;
  for (size_t i = 0; i < n; i++)
    if (strcmp(st[i].key, "te.thing") == 0) {
      found = 1;
      ASSERT_EQ(st[i].count, 1);
    }
  ASSERT(found);
  refgc_stats_free(st);
  /* the tracebacks hold at most 8 frames */
  for (uint32_t t = 0; t < refgc_snapshot_tracebacks(s); t++) {
    const uint32_t *fr;
    ASSERT(refgc_snapshot_traceback(s, t, &fr) <= 8);
  }
  refgc_snapshot_free(s);
  /* no temporary file left beside it */
  char tmp[700];
  snprintf(tmp, sizeof tmp, "%s.tmp.%ld", file, (long)pid);
  ASSERT(access(tmp, F_OK) != 0);
}

TEST(env_dwarf_unwinder) {
  const char *file = path_in("dwarf.rgc"), *log = path_in("dwarf.log");
  char v_file[600];
  snprintf(v_file, sizeof v_file, "REFGC_TRACE_FILE=%s", file);
  const char *vars[] = {"REFGC_TRACE=5", "REFGC_TRACE_UNWIND=dwarf", v_file, "TE_CHILD=basic",
                        "TE_FRAMES=5", NULL};
  run_child(vars, log, 0);
  refgc_snapshot_t *s = load(file);
  ASSERT_EQ(info_of(s).frames, 5);
  size_t n;
  refgc_stat_t *st = refgc_snapshot_statistics(s, REFGC_GROUP_FUNCTION, 0, &n);
  const refgc_stat_t *row = fn_row(st, n, "te_child_site");
  ASSERT(row);
  ASSERT_EQ(row->size, 10000);
  refgc_stats_free(st);
  refgc_snapshot_free(s);
}

TEST(env_sample_and_seed) {
  const char *file = path_in("sample.rgc"), *log = path_in("sample.log");
  char v_file[600];
  snprintf(v_file, sizeof v_file, "REFGC_TRACE_FILE=%s", file);
  const char *vars[] = {"REFGC_TRACE=4", "REFGC_TRACE_SAMPLE=4096", "REFGC_TRACE_SEED=7", v_file,
                        "TE_CHILD=sample", NULL};
  run_child(vars, log, 0);
  refgc_snapshot_t *a = load(file);
  refgc_snapshot_info_t ia = info_of(a);
  ASSERT_EQ(ia.sample_bytes, 4096);
  /* 65536 blocks of 64 bytes live: the estimate within 5 standard deviations */
  double p = -expm1(-64.0 / 4096), truth = 65536.0 * 64;
  double sd = sqrt(65536.0 * 64 * 64 * (1 - p) / p);
  size_t n;
  refgc_stat_t *st = refgc_snapshot_statistics(a, REFGC_GROUP_FUNCTION, 0, &n);
  const refgc_stat_t *row = fn_row(st, n, "te_child_site");
  ASSERT(row);
  printf("# sampled child: %llu bytes estimated in %llu traces (truth %.0f, sd %.0f)\n",
         (unsigned long long)row->size, (unsigned long long)ia.trace_count, truth, sd);
  ASSERT(fabs((double)row->size - truth) <= 5 * sd);
  ASSERT(ia.trace_count < 65536 / 10);
  refgc_stats_free(st);
  /* the same seed, the same samples */
  run_child(vars, log, 0);
  refgc_snapshot_t *b = load(file);
  refgc_snapshot_info_t ib = info_of(b);
  ASSERT_EQ(ib.trace_count, ia.trace_count);
  ASSERT_EQ(ib.traced_current, ia.traced_current);
  refgc_snapshot_free(a);
  refgc_snapshot_free(b);
}

TEST(env_every_ms_numbered_files) {
  const char *file = path_in("every.rgc"), *log = path_in("every.log");
  char v_file[600];
  snprintf(v_file, sizeof v_file, "REFGC_TRACE_FILE=%s", file);
  const char *vars[] = {"REFGC_TRACE=4", "REFGC_TRACE_EVERY_MS=50", v_file, "TE_CHILD=every_ms", NULL};
  run_child(vars, log, 0);
  int files = 0;
  double last_time = 0;
  for (int i = 1; i < 1000; i++) {
    char name[700];
    snprintf(name, sizeof name, "%s.%d", file, i);
    if (access(name, F_OK) != 0) break;
    refgc_snapshot_t *s = load(name);
    refgc_snapshot_info_t info = info_of(s);
    ASSERT_EQ(info.frames, 4);
    ASSERT(info.time >= last_time);
    last_time = info.time;
    refgc_snapshot_free(s);
    files++;
  }
  printf("# %d numbered files in 0.45 s at 50 ms\n", files);
  ASSERT(files >= 3);
  ASSERT(files <= 12);
  refgc_snapshot_t *s = load(file); /* and the one at exit */
  ASSERT(info_of(s).time >= last_time);
  refgc_snapshot_free(s);
}

TEST(env_every_bytes_numbered_files) {
  const char *file = path_in("bytes.rgc"), *log = path_in("bytes.log");
  char v_file[600];
  snprintf(v_file, sizeof v_file, "REFGC_TRACE_FILE=%s", file);
  const char *vars[] = {"REFGC_TRACE=4", "REFGC_TRACE_EVERY_BYTES=1000000", v_file,
                        "TE_CHILD=every_bytes", NULL};
  run_child(vars, log, 0);
  /* 3.2 MB traced in 5000-byte blocks: a file each time it grew by a megabyte since the last
   * one (checked every 64 allocations, so 2 or 3 of them) */
  int files = 0;
  uint64_t last = 0;
  for (int i = 1; i < 100; i++) {
    char name[700];
    snprintf(name, sizeof name, "%s.%d", file, i);
    if (access(name, F_OK) != 0) break;
    refgc_snapshot_t *s = load(name);
    refgc_snapshot_info_t info = info_of(s);
    ASSERT(info.traced_current >= last + 1000000);
    last = info.traced_current;
    refgc_snapshot_free(s);
    files++;
  }
  printf("# %d numbered files for 3.2 MB at 1 MB\n", files);
  ASSERT(files >= 2 && files <= 3);
}

TEST(env_bad_values_are_ignored) {
  static const char *bad[] = {"REFGC_TRACE=65", "REFGC_TRACE=abc", "REFGC_TRACE=-3", "REFGC_TRACE=0",
                              "REFGC_TRACE="};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    const char *log = path_in("bad.log");
    const char *vars[] = {bad[i], "TE_CHILD=off", NULL};
    run_child(vars, log, 0);
    char *text = read_text(log);
    ASSERT(text);
    const char *value = strchr(bad[i], '=') + 1;
    if (*value && strcmp(value, "0") != 0) ASSERT_STR_CONTAINS(text, bad[i]); /* named */
    free(text);
  }
  /* EVERY_MS without a file: a message, tracing still starts */
  const char *log = path_in("nofile.log");
  const char *vars[] = {"REFGC_TRACE=4", "REFGC_TRACE_EVERY_MS=10", "TE_CHILD=every_bytes", NULL};
  run_child(vars, log, 0);
  char *text = read_text(log);
  ASSERT_STR_CONTAINS(text, "REFGC_TRACE_FILE");
  free(text);
  /* an unwritable file: a message at exit, the program's status unchanged */
  const char *vars2[] = {"REFGC_TRACE=4", "REFGC_TRACE_FILE=/nonexistent-dir/x.rgc", "TE_CHILD=plain",
                         NULL};
  run_child(vars2, log, 0);
  text = read_text(log);
  ASSERT_STR_CONTAINS(text, "/nonexistent-dir/x.rgc");
  free(text);
}

/* ---- the run CTest starts with REFGC_TRACE=8 REFGC_TRACE_FILE=env_snapshot.rgc --------------- */

static void *ctest_blocks[5];

TEST(env_started_before_main) {
  const char *t = getenv("REFGC_TRACE");
  if (!t || getenv("TE_CHILD")) {
    printf("# (REFGC_TRACE not set: CTest sets it for this program)\n");
    return;
  }
  ASSERT_EQ(refgc_trace_is_tracing(), 1);
  ASSERT_EQ(refgc_trace_frames(), atoi(t));
  for (int i = 0; i < 5; i++) ctest_blocks[i] = te_ctest_site(777); /* live at exit */
  KEEP(refgc_new(child_type()));                                        /* a node of the graph */
  const char *f = getenv("REFGC_TRACE_FILE");
  ASSERT(f);
  char pidfile[600];
  snprintf(pidfile, sizeof pidfile, "%s.pid", f);
  FILE *pf = fopen(pidfile, "w");
  ASSERT(pf);
  fprintf(pf, "%ld\n", (long)getpid());
  fclose(pf);
}

TEST(env_ctest_file) {
  const char *f = getenv("TE_CHECK_FILE");
  if (!f) {
    printf("# (TE_CHECK_FILE not set: a second CTest test checks the file of the first)\n");
    return;
  }
  char pidfile[600];
  snprintf(pidfile, sizeof pidfile, "%s.pid", f);
  char *pidtext = read_text(pidfile);
  if (!pidtext) TEST_FAIL("%s missing: the run with REFGC_TRACE did not get to main()", pidfile);
  long pid = atol(pidtext);
  free(pidtext);
  refgc_snapshot_t *s = load(f);
  refgc_snapshot_info_t info = info_of(s);
  ASSERT_EQ(info.pid, (uint64_t)pid); /* written by that run, not an older one */
  ASSERT_EQ(info.frames, 8);
  ASSERT(info.graph_nodes >= 1);
  size_t n;
  refgc_stat_t *st = refgc_snapshot_statistics(s, REFGC_GROUP_FUNCTION, 0, &n);
  const refgc_stat_t *row = fn_row(st, n, "te_ctest_site");
  if (!row) TEST_FAIL("no row for te_ctest_site in %s", f);
  ASSERT_EQ(row->size, 5 * 777);
  ASSERT_EQ(row->count, 5);
  refgc_stats_free(st);
  refgc_snapshot_free(s);
}
