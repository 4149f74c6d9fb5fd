/* refgc — error codes, error reports and the error handler.
 *
 * A report is formatted into a buffer on the stack (never the refgc heap: the heap may be the
 * thing that is broken), the allocation stack is appended as symbolised frames (dladdr, which
 * does not allocate), and the handler is called. The default handler writes the report to
 * stderr with one write() and aborts.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

unsigned refgc_version(void) { return REFGC_VERSION_HEX; }
const char *refgc_version_string(void) { return REFGC_VERSION_STRING; }

const char *refgc_strerror(int err) {
  switch (err) {
    case REFGC_OK: return "success";
#define REFGC_STRERROR_CASE_(name, value, text) \
  case REFGC_##name: return text;
    REFGC_ERRNO_MAP(REFGC_STRERROR_CASE_)
#undef REFGC_STRERROR_CASE_
    default: return "unknown error";
  }
}

const char *refgc_err_name(int err) {
  switch (err) {
    case REFGC_OK: return "REFGC_OK";
#define REFGC_ERRNAME_CASE_(name, value, text) \
  case REFGC_##name: return "REFGC_" #name;
    REFGC_ERRNO_MAP(REFGC_ERRNAME_CASE_)
#undef REFGC_ERRNAME_CASE_
    default: return "REFGC_UNKNOWN";
  }
}

/* write(2) everything, retrying short writes; nothing to do about a failure here. */
static void write_stderr(const char *s, size_t n) {
  while (n) {
    ssize_t w = write(2, s, n);
    if (w <= 0) return;
    s += w;
    n -= (size_t)w;
  }
}

static void default_handler(const refgc_error_info_t *info, void *arg) {
  (void)arg;
  char line[64];
  write_stderr("refgc: ", 7);
  write_stderr(info->message, strlen(info->message));
  int n = snprintf(line, sizeof line, "\nrefgc: aborting (%s)\n", refgc_err_name(info->code));
  if (n > 0) write_stderr(line, (size_t)n);
  abort();
}

static _Atomic(refgc_error_fn *) handler_fn = default_handler;
static _Atomic(void *) handler_arg;
static atomic_ulong error_count;

void refgc_set_error_handler(refgc_error_fn *fn, void *arg) {
  atomic_store(&handler_arg, arg);
  atomic_store(&handler_fn, fn ? fn : default_handler);
}

unsigned long refgc_error_count(void) { return atomic_load(&error_count); }

/* Append "    #i 0xADDR symbol+off (object)" lines for `stack` to buf[*len..cap). */
static void format_stack(char *buf, size_t cap, size_t *len, void *const *stack, int depth) {
  /* Start below the library's own frames: the stack is captured inside refgc, so its first
   * frames are the allocation call itself (the last public `refgc_` one is where we cut). */
  int first = 0;
  for (int i = 0; i < depth && i < 4; i++) {
    Dl_info di;
    if (dladdr(stack[i], &di) && di.dli_sname && !strncmp(di.dli_sname, "refgc_", 6))
      first = i + 1;
  }
  if (first >= depth) first = 0;
  for (int i = first; i < depth && *len + 1 < cap; i++) {
    Dl_info di;
    memset(&di, 0, sizeof di);
    int n;
    if (dladdr(stack[i], &di) && di.dli_sname)
      n = snprintf(buf + *len, cap - *len, "\n    #%d %p in %s+0x%zx (%s)", i - first, stack[i],
                   di.dli_sname, (size_t)((uintptr_t)stack[i] - (uintptr_t)di.dli_saddr),
                   di.dli_fname ? di.dli_fname : "?");
    else if (di.dli_fname)
      n = snprintf(buf + *len, cap - *len, "\n    #%d %p in %s+0x%zx", i - first, stack[i], di.dli_fname,
                   (size_t)((uintptr_t)stack[i] - (uintptr_t)di.dli_fbase));
    else
      n = snprintf(buf + *len, cap - *len, "\n    #%d %p", i - first, stack[i]);
    if (n < 0) return;
    *len += (size_t)n;
    if (*len >= cap) *len = cap - 1;
  }
}

void refgc__report(int code, const char *func, const void *ptr, size_t block_size,
                   size_t requested, void *const *stack, int depth, const char *fmt, ...) {
  char buf[4096];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  size_t len = n < 0 ? 0 : (size_t)n;
  if (len >= sizeof buf) len = sizeof buf - 1;
  if (depth > 0) {
    int m = snprintf(buf + len, sizeof buf - len, "\n  block allocated at:");
    if (m > 0) len += (size_t)m;
    if (len >= sizeof buf) len = sizeof buf - 1;
    format_stack(buf, sizeof buf, &len, stack, depth);
  }
  buf[len] = 0;
  atomic_fetch_add(&error_count, 1);
  refgc_error_info_t info = {code, func, ptr, block_size, requested, buf, stack, depth};
  refgc_error_fn *fn = atomic_load(&handler_fn);
  fn(&info, atomic_load(&handler_arg));
}
