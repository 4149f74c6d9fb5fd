/* refgc — weakly valued maps: key bytes → object, without keeping the object alive.
 *
 * An open-addressing table of pointers to entry nodes; each node holds a copy of the key and
 * a weak reference to the value whose callback removes the node when the value is released.
 * `refgc_weakmap_count` checks each entry's value (O(capacity)), so that values whose release
 * has begun are not counted.
 * The node, not the table slot, is the callback's argument, because slots move when the table
 * grows. If the map is freed while a callback is still queued (the value died during a release
 * that has not finished), the node is left to the callback, which frees it.
 */
#include <string.h>

#include "internal.h"

typedef struct wm_node_s {
  struct refgc_weakmap_s *map; /* NULL once the map was freed */
  uint64_t hash;
  refgc_object_t *wr;          /* our reference to the weak reference */
  size_t len;
  unsigned char key[];
} wm_node_t;

#define WM_TOMB ((wm_node_t *)(uintptr_t)1)

struct refgc_weakmap_s {
  wm_node_t **slots;
  size_t cap, used, live; /* used: nodes and tombstones */
};

static uint64_t wm_hash(const void *key, size_t len) {
  const unsigned char *p = key;
  uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a, then a final mix */
  for (size_t i = 0; i < len; i++) h = (h ^ p[i]) * 0x100000001b3ull;
  h ^= h >> 32;
  h *= 0x9E3779B97F4A7C15ull;
  return h ^ (h >> 29);
}

static wm_node_t **wm_slot(refgc_weakmap_t *m, const void *key, size_t len, uint64_t h) {
  if (!m->cap) return NULL;
  for (size_t i = h & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
    wm_node_t *n = m->slots[i];
    if (!n) return NULL;
    if (n != WM_TOMB && n->hash == h && n->len == len && (!len || !memcmp(n->key, key, len)))
      return &m->slots[i];
  }
}

static bool wm_reserve(refgc_weakmap_t *m) {
  if ((m->used + 1) * 4 <= m->cap * 3) return true;
  size_t cap = 16;
  while ((m->live + 1) * 2 > cap) cap *= 2;
  wm_node_t **slots = refgc_calloc(cap, sizeof *slots);
  if (!slots) return false;
  for (size_t i = 0; i < m->cap; i++) {
    wm_node_t *n = m->slots[i];
    if (!n || n == WM_TOMB) continue;
    size_t j = n->hash & (cap - 1);
    while (slots[j]) j = (j + 1) & (cap - 1);
    slots[j] = n;
  }
  refgc_free(m->slots);
  m->slots = slots;
  m->cap = cap;
  m->used = m->live;
  return true;
}

/* Remove `node` from its map's table (the caller frees it). */
static void wm_unlink(refgc_weakmap_t *m, wm_node_t *node) {
  wm_node_t **s = wm_slot(m, node->key, node->len, node->hash);
  if (s && *s == node) {
    *s = WM_TOMB;
    m->live--;
  }
}

/* The value died: drop its entry. */
static void wm_value_died(refgc_object_t *wr, void *arg) {
  (void)wr;
  wm_node_t *node = arg;
  if (node->map) {
    wm_unlink(node->map, node);
    refgc_object_t *mine = node->wr;
    node->wr = NULL;
    refgc_decref(mine);
  }
  refgc_free(node);
}

/* The map lets go of `node` (already out of the table). If our reference is the weak
 * reference's only one, no callback is queued: dropping it unlinks it for good, so the node
 * goes now. Otherwise the callback queue holds it: the callback will free the node. */
static void wm_node_drop(wm_node_t *node) {
  refgc_object_t *wr = node->wr;
  node->map = NULL;
  node->wr = NULL;
  if (refgc_refcount(wr) == 1) {
    refgc_free(node);
    refgc_decref(wr);
  } else {
    refgc_decref(wr);
  }
}

refgc_weakmap_t *refgc_weakmap_new(void) { return refgc_calloc(1, sizeof(refgc_weakmap_t)); }

void refgc_weakmap_free(refgc_weakmap_t *m) {
  if (!m) return;
  for (size_t i = 0; i < m->cap; i++) {
    wm_node_t *n = m->slots[i];
    if (!n || n == WM_TOMB) continue;
    wm_node_drop(n);
  }
  refgc_free(m->slots);
  refgc_free(m);
}

int refgc_weakmap_set(refgc_weakmap_t *m, const void *key, size_t len, refgc_object_t *value) {
  if (!m || !value || (!key && len)) return REFGC_EINVAL;
  refgc_weakmap_remove(m, key, len);
  if (!wm_reserve(m)) return REFGC_ENOMEM;
  wm_node_t *node = refgc_malloc(sizeof *node + len);
  if (!node) return REFGC_ENOMEM;
  node->map = m;
  node->hash = wm_hash(key, len);
  node->len = len;
  if (len) memcpy(node->key, key, len);
  node->wr = refgc_weakref_new(value, wm_value_died, node);
  if (!node->wr) {
    refgc_free(node);
    return REFGC_ENOMEM;
  }
  size_t i = node->hash & (m->cap - 1);
  while (m->slots[i] && m->slots[i] != WM_TOMB) i = (i + 1) & (m->cap - 1);
  if (!m->slots[i]) m->used++;
  m->slots[i] = node;
  m->live++;
  return 0;
}

refgc_object_t *refgc_weakmap_get(refgc_weakmap_t *m, const void *key, size_t len) {
  if (!m) return NULL;
  wm_node_t **s = wm_slot(m, key, len, wm_hash(key, len));
  return s ? refgc_weakref_get((*s)->wr) : NULL;
}

int refgc_weakmap_remove(refgc_weakmap_t *m, const void *key, size_t len) {
  if (!m) return 0;
  wm_node_t **s = wm_slot(m, key, len, wm_hash(key, len));
  if (!s) return 0;
  wm_node_t *n = *s;
  *s = WM_TOMB;
  m->live--;
  wm_node_drop(n);
  return 1;
}

size_t refgc_weakmap_count(refgc_weakmap_t *m) {
  if (!m) return 0;
  /* entries whose value is being released (count 0, callback not yet run) do not count */
  size_t n = 0;
  for (size_t i = 0; i < m->cap; i++) {
    wm_node_t *node = m->slots[i];
    if (node && node != WM_TOMB && refgc_weakref_alive(node->wr)) n++;
  }
  return n;
}
