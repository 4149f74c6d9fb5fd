/* refgc — symbols: return addresses of this process to module, function, source file and line.
 *
 * Used by the tracer when a snapshot is saved or a statistic needs names, never on the
 * allocation path, so one mutex serialises everything here.
 *
 * Resolver. With elfutils' libdw (REFGC_HAVE_LIBDW), one Dwfl session describes the process:
 * built on first use from /proc/self/maps (dwfl_linux_proc_report), it opens each module's ELF
 * file and, through dwfl_standard_find_debuginfo, its separate debug file (/usr/lib/debug by
 * build id or .gnu_debuglink; debuginfod only when the user set DEBUGINFOD_URLS, as with gdb).
 * An address is looked up as:
 *   1. the module containing it (dwfl_addrmodule): its path and its lowest mapped address, so
 *      that `offset` = address - start is the same in every run despite ASLR;
 *   2. the function: the ELF symbol table's symbol covering it (dwfl_module_addrname; .symtab
 *      when present, so static functions too, else .dynsym);
 *   3. the source file and line from the DWARF line table (dwfl_module_getsrc, dwfl_lineinfo;
 *      when the module has no .debug_aranges, as clang's output, by the units' own ranges).
 * The addresses are return addresses: the call that made the frame is the instruction before,
 * which may belong to another line (the next statement) or even another function (a call to
 * a noreturn function at a function's end). Steps 1-3 therefore look up address - 1; `address`
 * is reported unchanged. A module that was loaded after the session was built (dlopen) is not
 * in it: when no module contains an address and the C library's count of loaded objects
 * (dl_iterate_phdr's dlpi_adds) moved since the last report, the process's modules are reported
 * again (dwfl_report_begin_add keeps the old ones) and the lookup is retried once. When objects
 * were unloaded (dlpi_subs moved), the session is rebuilt from scratch, so that a library that
 * reuses an unloaded one's addresses is not mistaken for it.
 *
 * Fallback. Without libdw at build time, or when it fails at run time (no /proc, dwfl_begin
 * failing, an address in no module it knows), dladdr gives the module (path and load base) and
 * the exported symbol covering the address (dynamic symbols only: executables need -rdynamic);
 * file "" and line 0. dladdr names the main program by argv[0]; /proc/self/exe gives its path.
 * An address in no module at all gets module "", offset = the address itself.
 *
 * Cache. Every resolved address is kept in an open-addressing hash table (linear probing, load
 * at most 1/2) of complete records, so a second request for an address costs one probe and
 * returns the very same string pointers. Strings (module paths, function names, file names) are
 * interned in a second hash table and copied into chunks that are never freed: the header
 * promises that they live until the program ends, and the Dwfl session's own strings would not
 * survive a rebuild. All of it comes from the C library's malloc, never from the refgc heap (the
 * tracer's memory must not look like the program's); `refgc__symbols_memory` says how much.
 * When memory runs out, a result is returned uncached, with "" for strings it could not keep.
 *
 * Threads: any thread; one pthread mutex around lookups, the Dwfl session (not thread-safe) and
 * the tables, taken around fork (pthread_atfork) so that a child can symbolize too: its address
 * space is the parent's, so the session and the cache stay valid there.
 */
#define _GNU_SOURCE /* dladdr1, Dl_info, dl_iterate_phdr's dlpi_adds */
#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if REFGC_HAVE_LIBDW
#include <elfutils/libdwfl.h>
#endif

#include "internal.h"

static pthread_mutex_t sym_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t sym_once = PTHREAD_ONCE_INIT;

/* fork waits for a symbolization in progress, so that the child's copy of the lock is free. */
static void sym_lock_take(void) { pthread_mutex_lock(&sym_lock); }
static void sym_lock_drop(void) { pthread_mutex_unlock(&sym_lock); }
static void sym_init(void) { pthread_atfork(sym_lock_take, sym_lock_drop, sym_lock_drop); }

/* Bytes held by the tables and string chunks: written under the lock, read without it. */
static atomic_size_t sym_bytes;

static void *sym_alloc(size_t n) {
  void *p = malloc(n);
  if (p) atomic_fetch_add_explicit(&sym_bytes, n, memory_order_relaxed);
  return p;
}
static void *sym_calloc(size_t count, size_t size) {
  void *p = calloc(count, size);
  if (p) atomic_fetch_add_explicit(&sym_bytes, count * size, memory_order_relaxed);
  return p;
}
static void sym_free(void *p, size_t n) {
  if (!p) return;
  free(p);
  atomic_fetch_sub_explicit(&sym_bytes, n, memory_order_relaxed);
}

static uint64_t sym_mix(uint64_t z) { /* splitmix64's finalizer */
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* ---------------------------------------------------------------------------------------------
 * Interned strings
 * ------------------------------------------------------------------------------------------ */

#define SYM_CHUNK 16384

typedef struct sym_chunk_s {
  struct sym_chunk_s *next; /* every chunk stays reachable (leak checkers) */
  size_t used, cap;
  char data[];
} sym_chunk_t;

static sym_chunk_t *sym_chunks;
static const char **sym_strs; /* open addressing; NULL is empty */
static size_t sym_strs_cap, sym_strs_count;

static uint64_t sym_str_hash(const char *s) {
  uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
  return h;
}

static char *sym_chunk_copy(const char *s, size_t len) {
  sym_chunk_t *c = sym_chunks;
  if (!c || c->cap - c->used < len + 1) {
    size_t cap = len + 1 > SYM_CHUNK / 4 ? len + 1 : SYM_CHUNK - sizeof(sym_chunk_t);
    c = sym_alloc(sizeof(sym_chunk_t) + cap);
    if (!c) return NULL;
    c->used = 0;
    c->cap = cap;
    if (len + 1 > SYM_CHUNK / 4 && sym_chunks) { /* keep filling the current chunk */
      c->next = sym_chunks->next;
      sym_chunks->next = c;
    } else {
      c->next = sym_chunks;
      sym_chunks = c;
    }
  }
  char *p = c->data + c->used;
  memcpy(p, s, len + 1);
  c->used += len + 1;
  return p;
}

static bool sym_strs_grow(void) {
  size_t cap = sym_strs_cap ? sym_strs_cap * 2 : 256;
  const char **t = sym_calloc(cap, sizeof *t);
  if (!t) return false;
  for (size_t i = 0; i < sym_strs_cap; i++) {
    if (!sym_strs[i]) continue;
    size_t j = (size_t)sym_str_hash(sym_strs[i]) & (cap - 1);
    while (t[j]) j = (j + 1) & (cap - 1);
    t[j] = sym_strs[i];
  }
  sym_free(sym_strs, sym_strs_cap * sizeof *sym_strs);
  sym_strs = t;
  sym_strs_cap = cap;
  return true;
}

/* The interned copy of `s`, which lives until the process ends; "" for NULL, "" or no memory. */
static const char *sym_intern(const char *s) {
  if (!s || !*s) return "";
  if (2 * (sym_strs_count + 1) > sym_strs_cap && !sym_strs_grow()) return "";
  size_t j = (size_t)sym_str_hash(s) & (sym_strs_cap - 1);
  for (; sym_strs[j]; j = (j + 1) & (sym_strs_cap - 1))
    if (!strcmp(sym_strs[j], s)) return sym_strs[j];
  char *copy = sym_chunk_copy(s, strlen(s));
  if (!copy) return "";
  sym_strs[j] = copy;
  sym_strs_count++;
  return copy;
}

/* ---------------------------------------------------------------------------------------------
 * The address cache
 * ------------------------------------------------------------------------------------------ */

typedef struct sym_slot_s {
  refgc_frame_info_t info; /* info.address is the key */
  bool used;
} sym_slot_t;

static sym_slot_t *sym_slots;
static size_t sym_slots_cap, sym_slots_count;

static const refgc_frame_info_t *sym_cache_find(uintptr_t address) {
  if (!sym_slots_cap) return NULL;
  size_t j = (size_t)sym_mix(address) & (sym_slots_cap - 1);
  for (; sym_slots[j].used; j = (j + 1) & (sym_slots_cap - 1))
    if (sym_slots[j].info.address == address) return &sym_slots[j].info;
  return NULL;
}

static void sym_cache_put(const refgc_frame_info_t *info) {
  if (2 * (sym_slots_count + 1) > sym_slots_cap) {
    size_t cap = sym_slots_cap ? sym_slots_cap * 2 : 256;
    sym_slot_t *t = sym_calloc(cap, sizeof *t);
    if (!t) return; /* uncached: resolved again next time */
    for (size_t i = 0; i < sym_slots_cap; i++) {
      if (!sym_slots[i].used) continue;
      size_t j = (size_t)sym_mix(sym_slots[i].info.address) & (cap - 1);
      while (t[j].used) j = (j + 1) & (cap - 1);
      t[j] = sym_slots[i];
    }
    sym_free(sym_slots, sym_slots_cap * sizeof *sym_slots);
    sym_slots = t;
    sym_slots_cap = cap;
  }
  size_t j = (size_t)sym_mix(info->address) & (sym_slots_cap - 1);
  while (sym_slots[j].used) j = (j + 1) & (sym_slots_cap - 1);
  sym_slots[j].info = *info;
  sym_slots[j].used = true;
  sym_slots_count++;
}

/* ---------------------------------------------------------------------------------------------
 * dladdr
 * ------------------------------------------------------------------------------------------ */

/* The main program's path (dladdr gives argv[0] for it). */
static const char *sym_exe_path(const char *fallback) {
  static const char *exe;
  if (!exe) {
    char buf[4096];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0) return sym_intern(fallback);
    buf[n] = 0;
    exe = sym_intern(buf);
  }
  return exe;
}

/* Module, offset and exported symbol of `pc` (the address minus one) by dladdr; false when
 * `pc` is in no loaded object. */
static bool sym_dladdr(uintptr_t pc, refgc_frame_info_t *out) {
  Dl_info info;
  struct link_map *map = NULL;
  if (!dladdr1((void *)pc, &info, (void **)&map, RTLD_DL_LINKMAP) || !info.dli_fbase)
    return false;
  if (map && map->l_name && !map->l_name[0])
    out->module = sym_exe_path(info.dli_fname);
  else
    out->module = sym_intern(info.dli_fname);
  out->offset = out->address - (uintptr_t)info.dli_fbase;
  out->function = sym_intern(info.dli_sname);
  return true;
}

/* ---------------------------------------------------------------------------------------------
 * libdw
 * ------------------------------------------------------------------------------------------ */

#if REFGC_HAVE_LIBDW
/* Loaded and unloaded object counts of the C library (0, 0 when unknown). */
typedef struct sym_dlcounts_s {
  unsigned long long adds, subs;
} sym_dlcounts_t;

static int sym_dlcounts_cb(struct dl_phdr_info *info, size_t size, void *arg) {
  sym_dlcounts_t *c = arg;
  if (size >= offsetof(struct dl_phdr_info, dlpi_subs) + sizeof info->dlpi_subs) {
    c->adds = info->dlpi_adds;
    c->subs = info->dlpi_subs;
  }
  return 1; /* the first object is enough: the counts are global */
}

static sym_dlcounts_t sym_dlcounts(void) {
  sym_dlcounts_t c = {0, 0};
  dl_iterate_phdr(sym_dlcounts_cb, &c);
  return c;
}

static char *sym_debuginfo_path; /* NULL: libdw's default path */
static const Dwfl_Callbacks sym_callbacks = {
    .find_elf = dwfl_linux_proc_find_elf,
    .find_debuginfo = dwfl_standard_find_debuginfo,
    .debuginfo_path = &sym_debuginfo_path,
};
static Dwfl *sym_dwfl;
static bool sym_dwfl_failed; /* libdw does not work here: dladdr from now on */
static sym_dlcounts_t sym_dwfl_counts; /* at the last report */

static bool sym_dwfl_report(bool add) {
  sym_dwfl_counts = sym_dlcounts();
  if (add) dwfl_report_begin_add(sym_dwfl);
  else dwfl_report_begin(sym_dwfl);
  int rc = dwfl_linux_proc_report(sym_dwfl, getpid());
  return dwfl_report_end(sym_dwfl, NULL, NULL) == 0 && rc == 0;
}

/* The session, built or rebuilt as needed; NULL when libdw does not work. */
static Dwfl *sym_dwfl_get(void) {
  if (sym_dwfl_failed) return NULL;
  if (sym_dwfl && sym_dlcounts().subs != sym_dwfl_counts.subs) {
    dwfl_end(sym_dwfl); /* the cache holds interned copies, never the session's strings */
    sym_dwfl = NULL;
  }
  if (!sym_dwfl) {
    sym_dwfl = dwfl_begin(&sym_callbacks);
    if (!sym_dwfl || !sym_dwfl_report(false)) {
      if (sym_dwfl) dwfl_end(sym_dwfl);
      sym_dwfl = NULL;
      sym_dwfl_failed = true;
      return NULL;
    }
  }
  return sym_dwfl;
}

/* The module that contains `pc`, and its name and lowest address. dwfl_addrmodule answers the
 * last module for any address above it (up to the top of the address space): check the range. */
static Dwfl_Module *sym_dwfl_module(Dwfl *dwfl, uintptr_t pc, const char **name,
                                    Dwarf_Addr *start) {
  Dwfl_Module *mod = dwfl_addrmodule(dwfl, pc);
  if (!mod) return NULL;
  Dwarf_Addr end = 0;
  *name = dwfl_module_info(mod, NULL, start, &end, NULL, NULL, NULL, NULL);
  return pc >= *start && pc < end ? mod : NULL;
}

/* The line table's answer for `pc` found through the compilation units' own address ranges:
 * dwfl_module_getsrc finds the unit through .debug_aranges, which clang does not emit unless
 * asked (-gdwarf-aranges) and libdw 0.188 does not rebuild. Linear in the units of the module,
 * and only for addresses that dwfl_module_getsrc could not place. */
static const char *sym_cu_line(Dwfl_Module *mod, uintptr_t pc, int *lineno) {
  Dwarf_Addr bias = 0;
  Dwarf_Die *cu = NULL;
  while ((cu = dwfl_module_nextcu(mod, cu, &bias)) != NULL) {
    Dwarf_Addr base, lo, hi, addr = pc - bias;
    ptrdiff_t off = 0;
    while ((off = dwarf_ranges(cu, off, &base, &lo, &hi)) > 0) {
      if (addr < lo || addr >= hi) continue;
      Dwarf_Line *line = dwarf_getsrc_die(cu, addr);
      if (!line || dwarf_lineno(line, lineno) != 0) return NULL;
      return dwarf_linesrc(line, NULL, NULL);
    }
  }
  return NULL;
}

static bool sym_libdw(uintptr_t pc, refgc_frame_info_t *out) {
  Dwfl *dwfl = sym_dwfl_get();
  if (!dwfl) return false;
  const char *name = NULL;
  Dwarf_Addr start = 0;
  Dwfl_Module *mod = sym_dwfl_module(dwfl, pc, &name, &start);
  if (!mod && sym_dlcounts().adds != sym_dwfl_counts.adds) {
    sym_dwfl_report(true); /* loaded since (dlopen): report the modules again */
    mod = sym_dwfl_module(dwfl, pc, &name, &start);
  }
  if (!mod) return false;
  out->module = sym_intern(name);
  out->offset = out->address - (uintptr_t)start;
  out->function = sym_intern(dwfl_module_addrname(mod, pc));
  Dwfl_Line *line = dwfl_module_getsrc(mod, pc);
  int lineno = 0;
  const char *file = line ? dwfl_lineinfo(line, NULL, &lineno, NULL, NULL, NULL)
                          : sym_cu_line(mod, pc, &lineno);
  if (file) {
    out->file = sym_intern(file);
    out->line = lineno > 0 ? lineno : 0;
  }
  if (!out->function[0]) { /* no symbol table: an exported name may still be known */
    refgc_frame_info_t dl = *out;
    if (sym_dladdr(pc, &dl) && dl.offset == out->offset) out->function = dl.function;
  }
  return true;
}
#endif

/* ---------------------------------------------------------------------------------------------
 * API
 * ------------------------------------------------------------------------------------------ */

int refgc_symbolize(uintptr_t address, refgc_frame_info_t *out) {
  if (!out) return REFGC_EINVAL;
  pthread_once(&sym_once, sym_init);
  pthread_mutex_lock(&sym_lock);
  const refgc_frame_info_t *hit = sym_cache_find(address);
  if (hit) {
    *out = *hit;
    pthread_mutex_unlock(&sym_lock);
    return 0;
  }
  refgc_frame_info_t info = {address, address, "", "", "", 0};
  uintptr_t pc = address ? address - 1 : 0; /* the call instruction, not the one after it */
  bool found = false;
#if REFGC_HAVE_LIBDW
  found = sym_libdw(pc, &info);
#endif
  if (!found) found = sym_dladdr(pc, &info);
  if (!found) info.offset = address; /* in no module: the offset is the address */
  sym_cache_put(&info);
  *out = info;
  pthread_mutex_unlock(&sym_lock);
  return 0;
}

const char *refgc_symbolizer(void) {
#if REFGC_HAVE_LIBDW
  return "libdw";
#else
  return "dladdr";
#endif
}

size_t refgc__symbols_memory(void) { return atomic_load_explicit(&sym_bytes, memory_order_relaxed); }
