/* refgc — heap introspection (objgraph for C): counts by type, growth, declared roots, "why is
 * this object alive", the object graph of a snapshot and the leak analysis (refgc/trace.h).
 *
 * The graph. Every live object of every heap is a node (the collector's page walk, gc.c); each
 * reference its type's traverse hook reports is an edge. The field a reference sits in is found
 * by looking for the child's address in the holder's memory, starting just after the previous
 * field found, so references reported in field order (structs, inline arrays) cost O(1) each;
 * a reference that is not in the holder's own memory (an array in a separate raw block) gets
 * offset -1 and keeps its index in traverse order.
 *
 * Roots. An object's count minus the references the graph accounts for (edges into it, its
 * declarations with refgc_root_add, the collector's garbage list) is its "unexplained" count:
 * references held from outside the object graph, by the program's variables — or lost. A node
 * with an unexplained count, a declaration or an immortal count is a root.
 *
 * Chains. "Why is it alive" is a breadth-first search backwards over the edges from the object
 * to the nearest root (a declared root when one reaches it, since that is the program's own
 * name for where the chain starts).
 *
 * Retained sizes. Dominators of the graph hung below a virtual root that points at every root
 * (Cooper, Harvey and Kennedy's iterative algorithm over a reverse postorder); an object's
 * retained size is the size of its dominator subtree — what freeing it would free.
 *
 * Leak classes. (1) Lost reference: while roots are declared, an object with an unexplained
 * count that no declared root reaches. (2) Resurrected: a live object whose finalizer already
 * ran (it was found garbage and brought back), or one on the garbage list, reported at the top
 * of its dominator subtree. (3) Growth that never shrinks: across snapshots
 * (refgc_snapshots_growth, snapshot.c).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snapshot.h"

/* ---------------------------------------------------------------------------------------------
 * Declared roots
 * ------------------------------------------------------------------------------------------ */

typedef struct root_s {
  refgc_object_t *obj;
  char *name;
} root_t;

static pthread_mutex_t roots_lock = PTHREAD_MUTEX_INITIALIZER;
static root_t *roots;
static size_t nroots, roots_cap;

int refgc_root_add(refgc_object_t *obj, const char *name) {
  if (!obj) return REFGC_EINVAL;
  char *copy = strdup(name ? name : "");
  if (!copy) return REFGC_ENOMEM;
  pthread_mutex_lock(&roots_lock);
  if (nroots == roots_cap) {
    size_t cap = roots_cap ? roots_cap * 2 : 16;
    root_t *n = realloc(roots, cap * sizeof *n);
    if (!n) {
      pthread_mutex_unlock(&roots_lock);
      free(copy);
      return REFGC_ENOMEM;
    }
    roots = n;
    roots_cap = cap;
  }
  roots[nroots++] = (root_t){obj, copy};
  pthread_mutex_unlock(&roots_lock);
  return 0;
}

int refgc_root_remove(refgc_object_t *obj) {
  int rc = REFGC_EINVAL;
  pthread_mutex_lock(&roots_lock);
  for (size_t i = nroots; i-- > 0;) {
    if (roots[i].obj != obj) continue;
    free(roots[i].name);
    roots[i] = roots[--nroots];
    rc = 0;
    break;
  }
  pthread_mutex_unlock(&roots_lock);
  return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Building the graph
 * ------------------------------------------------------------------------------------------ */

typedef struct graph_s {
  refgc_object_t **obj;  /* node -> object */
  size_t n, cap;
  uint64_t *map_keys;    /* object address -> node index (open addressing) */
  uint32_t *map_vals;
  size_t map_cap;
  uint32_t *first;       /* n + 1 */
  uint32_t *to;          /* edges */
  uint32_t *idx;
  int64_t *off;
  size_t ne, ecap;
  uint32_t *indeg;       /* edges into the node */
  uint32_t *declared;    /* declarations (and garbage-list entries) */
  uint32_t *decl_name;   /* index into the roots copy + 1, 0 none */
  uint32_t *flags;
  uint64_t *size;
  root_t *roots;         /* copy of the declared roots at build time */
  size_t nroots;
  bool failed;
} graph_t;

static void collect_node(refgc_object_t *o, void *arg) {
  graph_t *g = arg;
  if (g->failed) return;
  if (g->n == g->cap) {
    size_t cap = g->cap ? g->cap * 2 : 4096;
    refgc_object_t **n = realloc(g->obj, cap * sizeof *n);
    if (!n) {
      g->failed = true;
      return;
    }
    g->obj = n;
    g->cap = cap;
  }
  g->obj[g->n++] = o;
}

static size_t ptr_slot(uint64_t key, size_t cap) {
  return (size_t)((key * 0x9E3779B97F4A7C15ull) >> 17) & (cap - 1);
}

static uint32_t node_of(const graph_t *g, const void *o) {
  uint64_t key = (uint64_t)(uintptr_t)o;
  if (!key || !g->map_cap) return UINT32_MAX;
  for (size_t j = ptr_slot(key, g->map_cap);; j = (j + 1) & (g->map_cap - 1)) {
    if (g->map_keys[j] == key) return g->map_vals[j];
    if (!g->map_keys[j]) return UINT32_MAX;
  }
}

typedef struct visit_s {
  graph_t *g;
  uint32_t holder;
  uint32_t count;    /* references visited so far */
  size_t scan_len;   /* bytes of the holder to look in */
  size_t cursor;     /* word after the last field found */
} visit_t;

/* Find `child` in the holder's words, starting at the cursor and wrapping once; bounded. */
__attribute__((no_sanitize("address"))) REFGC_NO_TSAN static int64_t
find_field(visit_t *v, const refgc_object_t *holder, const void *child) {
  const uintptr_t *w = (const uintptr_t *)(const void *)holder;
  size_t words = v->scan_len / sizeof(uintptr_t);
  if (!words) return -1;
  size_t limit = words < 512 ? words : 512;
  size_t j = v->cursor < words ? v->cursor : 0;
  for (size_t k = 0; k < limit; k++) {
    if (w[j] == (uintptr_t)child && j != 0) {
      v->cursor = j + 1;
      return (int64_t)(j * sizeof(uintptr_t));
    }
    if (++j == words) j = 0;
  }
  return -1;
}

static void collect_edge(refgc_object_t *child, void *arg) {
  visit_t *v = arg;
  graph_t *g = v->g;
  uint32_t index = v->count++;
  if (!child || g->failed) return;
  uint32_t to = node_of(g, child);
  if (to == UINT32_MAX) return; /* not a heap object (a static immortal one) */
  if (g->ne == g->ecap) {
    size_t cap = g->ecap ? g->ecap * 2 : 8192;
    uint32_t *a = realloc(g->to, cap * sizeof *a);
    if (!a) return (void)(g->failed = true);
    g->to = a;
    uint32_t *b = realloc(g->idx, cap * sizeof *b);
    if (!b) return (void)(g->failed = true);
    g->idx = b;
    int64_t *c = realloc(g->off, cap * sizeof *c);
    if (!c) return (void)(g->failed = true);
    g->off = c;
    g->ecap = cap;
  }
  g->to[g->ne] = to;
  g->idx[g->ne] = index;
  g->off[g->ne] = find_field(v, g->obj[v->holder], child);
  g->ne++;
  g->indeg[to]++;
}

static void graph_free(graph_t *g) {
  free(g->obj);
  free(g->map_keys);
  free(g->map_vals);
  free(g->first);
  free(g->to);
  free(g->idx);
  free(g->off);
  free(g->indeg);
  free(g->declared);
  free(g->decl_name);
  free(g->flags);
  free(g->size);
  for (size_t i = 0; i < g->nroots; i++) free(g->roots[i].name);
  free(g->roots);
  memset(g, 0, sizeof *g);
}

static size_t object_scan_len(const refgc_object_t *o, size_t block) {
  refgc_type_t *type = refgc__type_by_id(o->bits & REFGC_OB_TYPE_MASK);
  if (type && !type->is_var && type->spec.basic_size <= block) return type->spec.basic_size;
  return block;
}

/* Walk the heap into `g`: nodes, edges, counts explained, flags. 0 or an error code. */
static int graph_collect(graph_t *g) {
  memset(g, 0, sizeof *g);
  if (!refgc__gc_walk_objects(collect_node, g)) return REFGC_EBUSY;
  if (g->failed) goto oom;
  size_t cap = 16;
  while (cap < g->n * 2 + 2) cap *= 2;
  g->map_keys = calloc(cap, sizeof *g->map_keys);
  g->map_vals = malloc(cap * sizeof *g->map_vals);
  g->map_cap = cap;
  g->first = malloc((g->n + 1) * sizeof *g->first);
  g->indeg = calloc(g->n + 1, sizeof *g->indeg);
  g->declared = calloc(g->n + 1, sizeof *g->declared);
  g->decl_name = calloc(g->n + 1, sizeof *g->decl_name);
  g->flags = calloc(g->n + 1, sizeof *g->flags);
  g->size = calloc(g->n + 1, sizeof *g->size);
  if (!g->map_keys || !g->map_vals || !g->first || !g->indeg || !g->declared || !g->decl_name ||
      !g->flags || !g->size)
    goto oom;
  for (size_t i = 0; i < g->n; i++) {
    uint64_t key = (uint64_t)(uintptr_t)g->obj[i];
    size_t j = ptr_slot(key, cap);
    while (g->map_keys[j]) j = (j + 1) & (cap - 1);
    g->map_keys[j] = key;
    g->map_vals[j] = (uint32_t)i;
    g->size[i] = refgc__block_usable(g->obj[i]);
  }
  for (size_t i = 0; i < g->n; i++) {
    g->first[i] = (uint32_t)g->ne;
    refgc_object_t *o = g->obj[i];
    if (!(o->bits & REFGC_OB_TRACKED)) continue;
    visit_t v = {g, (uint32_t)i, 0, object_scan_len(o, (size_t)g->size[i]), 1};
    refgc__gc_traverse(o, collect_edge, &v);
    if (g->failed) goto oom;
  }
  g->first[g->n] = (uint32_t)g->ne;
  /* declared roots and the garbage list */
  pthread_mutex_lock(&roots_lock);
  g->roots = nroots ? malloc(nroots * sizeof *g->roots) : NULL;
  if (nroots && !g->roots) {
    pthread_mutex_unlock(&roots_lock);
    goto oom;
  }
  for (size_t r = 0; r < nroots; r++) {
    g->roots[g->nroots].obj = roots[r].obj;
    g->roots[g->nroots].name = strdup(roots[r].name);
    if (!g->roots[g->nroots].name) {
      pthread_mutex_unlock(&roots_lock);
      goto oom;
    }
    g->nroots++;
  }
  pthread_mutex_unlock(&roots_lock);
  for (size_t r = 0; r < g->nroots; r++) {
    uint32_t n = node_of(g, g->roots[r].obj);
    if (n == UINT32_MAX) continue;
    g->declared[n]++;
    g->flags[n] |= REFGC_NODE_DECLARED;
    if (!g->decl_name[n]) g->decl_name[n] = (uint32_t)r + 1;
  }
  size_t ng = refgc_gc_garbage_count();
  for (size_t k = 0; k < ng; k++) {
    uint32_t n = node_of(g, refgc_gc_garbage_at(k));
    if (n == UINT32_MAX) continue;
    g->declared[n]++;
    g->flags[n] |= REFGC_NODE_GARBAGE;
  }
  for (size_t i = 0; i < g->n; i++) {
    refgc_object_t *o = g->obj[i];
    if (refgc_is_immortal(o)) g->flags[i] |= REFGC_NODE_IMMORTAL | REFGC_NODE_ROOT;
    else if ((uint64_t)o->refcnt > (uint64_t)g->indeg[i] + g->declared[i])
      g->flags[i] |= REFGC_NODE_ROOT;
    if (o->bits & REFGC_OB_FINALIZED) g->flags[i] |= REFGC_NODE_FINALIZED;
    if (refgc_gc_generation(o) == 3) g->flags[i] |= REFGC_NODE_FROZEN;
  }
  return 0;
oom:
  graph_free(g);
  return REFGC_ENOMEM;
}

static uint64_t unexplained(const graph_t *g, uint32_t i) {
  const refgc_object_t *o = g->obj[i];
  if (refgc_is_immortal(o)) return 0;
  uint64_t explained = (uint64_t)g->indeg[i] + g->declared[i];
  return o->refcnt > explained ? o->refcnt - explained : 0;
}

/* Reverse adjacency (CSR): predecessors of node i are rsrc[rfirst[i] .. rfirst[i+1]), with the
 * edge index in redge. */
typedef struct rev_s {
  uint32_t *rfirst, *rsrc, *redge;
} rev_t;

static bool rev_build(const graph_t *g, rev_t *r) {
  r->rfirst = calloc(g->n + 2, sizeof *r->rfirst);
  r->rsrc = malloc((g->ne ? g->ne : 1) * sizeof *r->rsrc);
  r->redge = malloc((g->ne ? g->ne : 1) * sizeof *r->redge);
  if (!r->rfirst || !r->rsrc || !r->redge) return false;
  for (size_t e = 0; e < g->ne; e++) r->rfirst[g->to[e] + 1]++;
  for (size_t i = 0; i < g->n; i++) r->rfirst[i + 1] += r->rfirst[i];
  uint32_t *fill = malloc((g->n + 1) * sizeof *fill);
  if (!fill) return false;
  memcpy(fill, r->rfirst, (g->n + 1) * sizeof *fill);
  for (size_t i = 0; i < g->n; i++)
    for (uint32_t e = g->first[i]; e < g->first[i + 1]; e++) {
      uint32_t t = g->to[e];
      r->rsrc[fill[t]] = (uint32_t)i;
      r->redge[fill[t]] = e;
      fill[t]++;
    }
  free(fill);
  return true;
}

static void rev_free(rev_t *r) {
  free(r->rfirst);
  free(r->rsrc);
  free(r->redge);
}

/* Shortest chain root -> target: writes node indexes into `out` (root first) and, per hop, the
 * edge used into `via` (edge from out[k] to out[k+1]); returns the length (0: out of memory). */
static size_t chain_find(const graph_t *g, const rev_t *r, uint32_t target, uint32_t **out,
                         uint32_t **via) {
  *out = NULL;
  *via = NULL;
  uint32_t *prev = malloc((g->n ? g->n : 1) * sizeof *prev);  /* next hop towards target */
  uint32_t *pedge = malloc((g->n ? g->n : 1) * sizeof *pedge);
  uint32_t *queue = malloc((g->n ? g->n : 1) * sizeof *queue);
  if (!prev || !pedge || !queue) {
    free(prev);
    free(pedge);
    free(queue);
    return 0;
  }
  for (size_t i = 0; i < g->n; i++) prev[i] = UINT32_MAX;
  size_t head = 0, tail = 0;
  queue[tail++] = target;
  prev[target] = target;
  uint32_t found = UINT32_MAX, found_declared = UINT32_MAX;
  while (head < tail) {
    uint32_t x = queue[head++];
    if ((g->flags[x] & REFGC_NODE_DECLARED) && found_declared == UINT32_MAX) {
      found_declared = x;
      break;
    }
    if ((g->flags[x] & (REFGC_NODE_ROOT | REFGC_NODE_GARBAGE)) && found == UINT32_MAX) found = x;
    for (uint32_t k = r->rfirst[x]; k < r->rfirst[x + 1]; k++) {
      uint32_t p = r->rsrc[k];
      if (prev[p] != UINT32_MAX) continue;
      prev[p] = x;
      pedge[p] = r->redge[k];
      queue[tail++] = p;
    }
  }
  uint32_t start = found_declared != UINT32_MAX ? found_declared
                   : found != UINT32_MAX        ? found
                                                : target; /* unreachable: garbage not yet collected */
  size_t len = 1;
  for (uint32_t x = start; x != target; x = prev[x]) len++;
  *out = malloc(len * sizeof **out);
  *via = malloc(len * sizeof **via);
  if (!*out || !*via) {
    free(*out);
    free(*via);
    *out = *via = NULL;
    len = 0;
  } else {
    size_t k = 0;
    for (uint32_t x = start;; x = prev[x]) {
      (*out)[k] = x;
      (*via)[k] = x == target ? UINT32_MAX : pedge[x];
      k++;
      if (x == target) break;
    }
  }
  free(prev);
  free(pedge);
  free(queue);
  return len;
}

/* Immediate dominators below a virtual root (index n) that points at every root and at every
 * node no root reaches; retained[i] = bytes of i's dominator subtree. false: out of memory. */
static bool dominators(const graph_t *g, const rev_t *r, uint32_t *idom, uint64_t *retained,
                       uint64_t *retained_count) {
  size_t n = g->n, R = n;
  uint32_t *order = malloc((n + 1) * sizeof *order); /* reverse postorder */
  uint32_t *rpo = malloc((n + 1) * sizeof *rpo);     /* node -> position */
  uint32_t *stack = malloc((n + 1) * sizeof *stack);
  uint32_t *iter = malloc((n + 1) * sizeof *iter);
  uint8_t *seen = calloc(n + 1, 1);
  bool *from_root = calloc(n + 1, sizeof *from_root);
  bool ok = order && rpo && stack && iter && seen && from_root;
  if (!ok) goto done;
  size_t post = 0;
  /* DFS from the virtual root: first over the roots, then over whatever is left */
  for (int pass = 0; pass < 2; pass++) {
    for (size_t s = 0; s < n; s++) {
      bool is_root = (g->flags[s] & (REFGC_NODE_ROOT | REFGC_NODE_DECLARED | REFGC_NODE_GARBAGE)) != 0;
      if (is_root) from_root[s] = true; /* the virtual root points at it, even if seen already */
      if (seen[s] || (pass == 0 && !is_root)) continue;
      from_root[s] = true;
      size_t sp = 0;
      stack[sp] = (uint32_t)s;
      iter[sp] = g->first[s];
      seen[s] = 1;
      sp++;
      while (sp) {
        uint32_t x = stack[sp - 1];
        if (iter[sp - 1] < g->first[x + 1]) {
          uint32_t y = g->to[iter[sp - 1]++];
          if (!seen[y]) {
            seen[y] = 1;
            stack[sp] = y;
            iter[sp] = g->first[y];
            sp++;
          }
        } else {
          order[post++] = x;
          sp--;
        }
      }
    }
  }
  order[post++] = (uint32_t)R;
  /* reverse: order[0] = R */
  for (size_t i = 0; i < post / 2; i++) {
    uint32_t t = order[i];
    order[i] = order[post - 1 - i];
    order[post - 1 - i] = t;
  }
  for (size_t i = 0; i < post; i++) rpo[order[i]] = (uint32_t)i;
  for (size_t i = 0; i <= n; i++) idom[i] = UINT32_MAX;
  idom[R] = (uint32_t)R;
  bool changed = true;
  int rounds = 0;
  while (changed && rounds++ < 1000) {
    changed = false;
    for (size_t k = 1; k < post; k++) {
      uint32_t b = order[k];
      uint32_t nd = from_root[b] ? (uint32_t)R : UINT32_MAX;
      for (uint32_t e = r->rfirst[b]; e < r->rfirst[b + 1]; e++) {
        uint32_t p = r->rsrc[e];
        if (idom[p] == UINT32_MAX) continue;
        if (nd == UINT32_MAX) {
          nd = p;
          continue;
        }
        uint32_t a = p, c = nd;
        while (a != c) {
          while (rpo[a] > rpo[c]) a = idom[a];
          while (rpo[c] > rpo[a]) c = idom[c];
        }
        nd = a;
      }
      if (nd != UINT32_MAX && idom[b] != nd) {
        idom[b] = nd;
        changed = true;
      }
    }
  }
  for (size_t i = 0; i < n; i++) {
    retained[i] = g->size[i];
    retained_count[i] = 1;
  }
  for (size_t k = post; k-- > 1;) {
    uint32_t b = order[k];
    uint32_t d = idom[b];
    if (d != UINT32_MAX && d != R) {
      retained[d] += retained[b];
      retained_count[d] += retained_count[b];
    }
  }
done:
  free(order);
  free(rpo);
  free(stack);
  free(iter);
  free(seen);
  free(from_root);
  return ok;
}

/* ---------------------------------------------------------------------------------------------
 * The graph of a snapshot, with the leak analysis
 * ------------------------------------------------------------------------------------------ */

#define MAX_SUSPECTS 200

typedef struct suspect_work_s {
  uint32_t cls, node;
  uint64_t unexplained, retained, count;
} suspect_work_t;

static int cmp_suspect(const void *a, const void *b) {
  const suspect_work_t *x = a, *y = b;
  if (x->retained != y->retained) return x->retained < y->retained ? 1 : -1;
  return x->node < y->node ? -1 : x->node > y->node;
}

int refgc__graph_build(refgc_snapshot_t *s, void *take) {
  graph_t g;
  int err = graph_collect(&g);
  if (err) return err;
  rev_t r = {0};
  uint32_t *idom = malloc((g.n + 1) * sizeof *idom);
  uint64_t *ret = malloc((g.n + 1) * sizeof *ret), *retc = malloc((g.n + 1) * sizeof *retc);
  uint8_t *reach = calloc(g.n + 1, 1);
  uint32_t *queue = malloc((g.n + 1) * sizeof *queue);
  suspect_work_t *sw = NULL;
  size_t nsw = 0;
  err = REFGC_ENOMEM; /* until the end is reached */
  if (!idom || !ret || !retc || !reach || !queue || !rev_build(&g, &r) ||
      !dominators(&g, &r, idom, ret, retc))
    goto oom;
  s->nodes = calloc(g.n ? g.n : 1, sizeof *s->nodes);
  s->edges = malloc((g.ne ? g.ne : 1) * sizeof *s->edges);
  if (!s->nodes || !s->edges) goto oom;
  for (size_t i = 0; i < g.n; i++) {
    refgc_node_t *nd = &s->nodes[i];
    refgc_object_t *o = g.obj[i];
    nd->address = (uint64_t)(uintptr_t)o;
    nd->type = refgc__snapshot_object_type(take, o);
    nd->flags = g.flags[i];
    nd->size = g.size[i];
    nd->refcnt = o->refcnt;
    nd->traceback = UINT32_MAX;
    uint32_t id;
    uint64_t sz;
    if (refgc__trace_lookup(o, &id, &sz)) nd->traceback = refgc__snapshot_tb(take, id);
    nd->first_edge = g.first[i];
    nd->root_name = g.decl_name[i] ? refgc__snapshot_intern(s, g.roots[g.decl_name[i] - 1].name) : 0;
    if (nd->root_name == UINT32_MAX) goto oom;
    nd->retained = ret[i];
  }
  for (size_t e = 0; e < g.ne; e++) s->edges[e] = (refgc_edge_t){g.to[e], g.idx[e], g.off[e]};
  s->nnodes = g.n;
  s->nedges = g.ne;

  /* reachability from declared roots (for lost references) */
  bool any_declared = false;
  size_t head = 0, tail = 0;
  for (size_t i = 0; i < g.n; i++)
    if (g.flags[i] & REFGC_NODE_DECLARED) {
      any_declared = true;
      reach[i] = 1;
      queue[tail++] = (uint32_t)i;
    }
  while (head < tail) {
    uint32_t x = queue[head++];
    for (uint32_t e = g.first[x]; e < g.first[x + 1]; e++)
      if (!reach[g.to[e]]) {
        reach[g.to[e]] = 1;
        queue[tail++] = g.to[e];
      }
  }
  sw = malloc((g.n ? g.n : 1) * sizeof *sw);
  if (!sw) goto oom;
  for (size_t i = 0; i < g.n; i++) {
    uint64_t u = unexplained(&g, (uint32_t)i);
    /* a resurrection is the more specific finding: its finalizer ran, whoever holds it now */
    if (g.flags[i] & (REFGC_NODE_FINALIZED | REFGC_NODE_GARBAGE)) {
      uint32_t d = idom[i];
      bool top = d == UINT32_MAX || d == g.n ||
                 !(g.flags[d] & (REFGC_NODE_FINALIZED | REFGC_NODE_GARBAGE));
      if (top) sw[nsw++] = (suspect_work_t){REFGC_LEAK_RESURRECTED, (uint32_t)i, u, ret[i], retc[i]};
    } else if (any_declared && u > 0 && !reach[i] && !(g.flags[i] & REFGC_NODE_IMMORTAL)) {
      sw[nsw++] = (suspect_work_t){REFGC_LEAK_LOST_REFERENCE, (uint32_t)i, u, ret[i], retc[i]};
    }
  }
  qsort(sw, nsw, sizeof *sw, cmp_suspect);
  if (nsw > MAX_SUSPECTS) nsw = MAX_SUSPECTS;
  s->suspects = calloc(nsw ? nsw : 1, sizeof *s->suspects);
  if (!s->suspects) goto oom;
  size_t chains_cap = 0;
  for (size_t k = 0; k < nsw; k++) {
    uint32_t *chain, *via;
    size_t len = chain_find(&g, &r, sw[k].node, &chain, &via);
    free(via);
    if (!len) goto oom;
    if (s->nchains + len > chains_cap) {
      size_t cap = chains_cap ? chains_cap * 2 : 256;
      while (cap < s->nchains + len) cap *= 2;
      uint32_t *c = realloc(s->chains, cap * sizeof *c);
      if (!c) {
        free(chain);
        goto oom;
      }
      s->chains = c;
      chains_cap = cap;
    }
    memcpy(s->chains + s->nchains, chain, len * sizeof *chain);
    free(chain);
    s->suspects[k] = (snap_suspect_t){sw[k].cls, sw[k].node, sw[k].unexplained, sw[k].retained,
                                      sw[k].count, (uint32_t)s->nchains, (uint32_t)len};
    s->nchains += len;
    s->nsuspects = k + 1;
  }
  err = 0;
oom:
  free(sw);
  free(idom);
  free(ret);
  free(retc);
  free(reach);
  free(queue);
  rev_free(&r);
  graph_free(&g);
  return err;
}

size_t refgc_snapshot_chain(const refgc_snapshot_t *s, uint32_t node, uint32_t *out, size_t max) {
  if (!s || node >= s->nnodes) return 0;
  /* a graph over the snapshot's arrays, then the same search as live */
  graph_t g;
  memset(&g, 0, sizeof g);
  g.n = s->nnodes;
  g.ne = s->nedges;
  g.first = malloc((g.n + 1) * sizeof *g.first);
  g.to = malloc((g.ne ? g.ne : 1) * sizeof *g.to);
  g.flags = malloc(g.n * sizeof *g.flags);
  size_t len = 0;
  rev_t r = {0};
  if (g.first && g.to && g.flags) {
    for (size_t i = 0; i < g.n; i++) {
      g.first[i] = s->nodes[i].first_edge;
      g.flags[i] = s->nodes[i].flags;
    }
    g.first[g.n] = (uint32_t)g.ne;
    for (size_t e = 0; e < g.ne; e++) g.to[e] = s->edges[e].to;
    if (rev_build(&g, &r)) {
      uint32_t *chain, *via;
      len = chain_find(&g, &r, node, &chain, &via);
      for (size_t k = 0; k < len && k < max; k++) out[k] = chain[k];
      free(chain);
      free(via);
    }
  }
  rev_free(&r);
  free(g.first);
  free(g.to);
  free(g.flags);
  return len;
}

/* ---------------------------------------------------------------------------------------------
 * Live introspection
 * ------------------------------------------------------------------------------------------ */

size_t refgc_why_alive(const refgc_object_t *obj, refgc_chain_link_t *out, size_t max) {
  if (!obj) {
    refgc__set_error(REFGC_EINVAL);
    return 0;
  }
  graph_t g;
  int err = graph_collect(&g);
  if (err) {
    refgc__set_error(err);
    return 0;
  }
  uint32_t target = node_of(&g, obj);
  size_t len = 0;
  rev_t r = {0};
  if (target == UINT32_MAX) {
    refgc__set_error(REFGC_EBADOBJECT);
  } else if (!rev_build(&g, &r)) {
    refgc__set_error(REFGC_ENOMEM);
  } else {
    uint32_t *chain, *via;
    len = chain_find(&g, &r, target, &chain, &via);
    if (!len) refgc__set_error(REFGC_ENOMEM);
    if (len == 1 && !(g.flags[target] & (REFGC_NODE_ROOT | REFGC_NODE_DECLARED |
                                          REFGC_NODE_GARBAGE))) {
      /* no root reaches it: garbage (a cycle) waiting for the collector */
      free(chain);
      free(via);
      chain = via = NULL;
      len = 0;
      refgc__set_error(REFGC_OK);
    }
    for (size_t k = 0; k < len && k < max; k++) {
      uint32_t x = chain[k];
      const refgc_type_t *t = refgc_type_of(g.obj[x]);
      out[k].object = g.obj[x];
      out[k].type = t ? refgc_type_name(t) : "";
      out[k].root_name = NULL;
      if (k == 0 && g.decl_name[x]) {
        /* the name lives in the registry: find it there (names are never freed while declared) */
        pthread_mutex_lock(&roots_lock);
        for (size_t i = 0; i < nroots; i++)
          if (roots[i].obj == g.obj[x]) {
            out[k].root_name = roots[i].name;
            break;
          }
        pthread_mutex_unlock(&roots_lock);
      }
      out[k].offset = via[k] == UINT32_MAX ? -1 : g.off[via[k]];
      out[k].index = via[k] == UINT32_MAX ? -1 : (int32_t)g.idx[via[k]];
    }
    free(chain);
    free(via);
  }
  rev_free(&r);
  graph_free(&g);
  return len;
}

/* "function (file:line)" of the first frame of the block's allocation, or "" */
static void site_of(const void *p, char *buf, size_t len) {
  void *frames[4];
  buf[0] = 0;
  int n = refgc_trace_traceback(p, frames, 4);
  if (n <= 0) return;
  refgc_frame_info_t fi;
  refgc_symbolize((uintptr_t)frames[0], &fi);
  if (*fi.file)
    snprintf(buf, len, "%s (%s:%d)", *fi.function ? fi.function : "?", fi.file, fi.line);
  else
    snprintf(buf, len, "%s (%s+0x%lx)", *fi.function ? fi.function : "?", fi.module,
             (unsigned long)fi.offset);
}

size_t refgc_why_alive_print(const refgc_object_t *obj, FILE *out) {
  if (!out) out = stderr;
  refgc_chain_link_t links[64];
  size_t n = refgc_why_alive(obj, links, 64);
  if (!n && refgc_last_error() == REFGC_OK) {
    fprintf(out, "%p is not reachable from any root: it is garbage (a cycle) waiting for the "
                 "cycle collector\n", (const void *)obj);
    return 0;
  }
  if (!n) {
    fprintf(out, "why alive %p: %s\n", (const void *)obj, refgc_strerror(refgc_last_error()));
    return 0;
  }
  fprintf(out, "why is %p (%s) alive: a chain of %zu reference%s from a root\n", (const void *)obj,
          links[n > 64 ? 63 : n - 1].type, n - 1, n == 2 ? "" : "s");
  for (size_t k = 0; k < n && k < 64; k++) {
    char site[512];
    site_of(links[k].object, site, sizeof site);
    if (k == 0)
      fprintf(out, "  root  %s %p%s%s%s\n", links[k].type, (void *)links[k].object,
              links[k].root_name ? " declared as \"" : " held from outside the object graph",
              links[k].root_name ? links[k].root_name : "", links[k].root_name ? "\"" : "");
    else
      fprintf(out, "  -> %s %p\n", links[k].type, (void *)links[k].object);
    if (*site) fprintf(out, "        allocated at %s\n", site);
    if (k + 1 < n) {
      if (links[k].offset >= 0)
        fprintf(out, "        field +%lld (reference #%d)\n", (long long)links[k].offset,
                links[k].index);
      else
        fprintf(out, "        reference #%d (outside the object's own memory)\n", links[k].index);
    }
  }
  if (n > 64) fprintf(out, "  ... (%zu more)\n", n - 64);
  return n;
}

/* objects_by_type / growth */
typedef struct bytype_s {
  uint64_t *count, *bytes;
  size_t n;
  bool failed;
} bytype_t;

static void bytype_visit(refgc_object_t *o, void *arg) {
  bytype_t *b = arg;
  uint32_t id = o->bits & REFGC_OB_TYPE_MASK;
  if (b->failed) return;
  if (id >= b->n) {
    size_t n = b->n ? b->n : 64;
    while (n <= id) n *= 2;
    uint64_t *c = realloc(b->count, n * sizeof *c);
    if (!c) return (void)(b->failed = true);
    b->count = c;
    uint64_t *y = realloc(b->bytes, n * sizeof *y);
    if (!y) return (void)(b->failed = true);
    b->bytes = y;
    memset(b->count + b->n, 0, (n - b->n) * sizeof *c);
    memset(b->bytes + b->n, 0, (n - b->n) * sizeof *y);
    b->n = n;
  }
  b->count[id]++;
  b->bytes[id] += refgc__block_usable(o);
}

static int cmp_count_row(const void *a, const void *b) {
  const refgc_type_count_t *x = a, *y = b;
  if (x->count != y->count) return x->count < y->count ? 1 : -1;
  return strcmp(x->type, y->type);
}
static int cmp_growth_row(const void *a, const void *b) {
  const refgc_type_count_t *x = a, *y = b;
  if (x->delta != y->delta) return x->delta < y->delta ? 1 : -1;
  return strcmp(x->type, y->type);
}

static refgc_type_count_t *count_types(size_t *n, bool growth) {
  static pthread_mutex_t prev_lock = PTHREAD_MUTEX_INITIALIZER;
  static uint64_t *prev;
  static size_t nprev;
  *n = 0;
  bytype_t b = {0};
  if (!refgc__gc_walk_objects(bytype_visit, &b)) {
    refgc__set_error(REFGC_EBUSY);
    return NULL;
  }
  if (b.failed) goto oom;
  refgc_type_count_t *rows = malloc((b.n ? b.n : 1) * sizeof *rows);
  if (!rows) goto oom;
  size_t k = 0;
  pthread_mutex_lock(&prev_lock);
  for (size_t id = 0; id < b.n || (growth && id < nprev); id++) {
    uint64_t c = id < b.n ? b.count[id] : 0;
    uint64_t before = id < nprev ? prev[id] : 0;
    int64_t delta = (int64_t)c - (int64_t)before;
    if (growth ? delta <= 0 : c == 0) continue;
    refgc_type_t *t = refgc__type_by_id((uint32_t)id);
    rows[k++] = (refgc_type_count_t){t ? t->spec.name : "?", c, id < b.n ? b.bytes[id] : 0, delta};
  }
  if (growth) {
    free(prev);
    prev = b.count;
    nprev = b.n;
    b.count = NULL;
  }
  pthread_mutex_unlock(&prev_lock);
  qsort(rows, k, sizeof *rows, growth ? cmp_growth_row : cmp_count_row);
  free(b.count);
  free(b.bytes);
  *n = k;
  refgc__set_error(0);
  return rows;
oom:
  free(b.count);
  free(b.bytes);
  refgc__set_error(REFGC_ENOMEM);
  return NULL;
}

refgc_type_count_t *refgc_objects_by_type(size_t *n) {
  size_t dummy;
  return count_types(n ? n : &dummy, false);
}

refgc_type_count_t *refgc_objects_growth(size_t *n) {
  size_t dummy;
  return count_types(n ? n : &dummy, true);
}

void refgc_type_counts_free(refgc_type_count_t *counts) { free(counts); }

/* ---------------------------------------------------------------------------------------------
 * Leak report
 * ------------------------------------------------------------------------------------------ */

static void print_node_site(refgc_snapshot_t *s, uint32_t node, FILE *out) {
  uint32_t tb = s->nodes[node].traceback;
  const uint32_t *frames;
  size_t n = refgc_snapshot_traceback(s, tb, &frames);
  for (size_t k = 0; k < n && k < 3; k++) {
    const refgc_frame_info_t *f = refgc_snapshot_frame(s, frames[k]);
    if (!f) break;
    fprintf(out, "          %s %s (%s:%d)\n", k ? "   " : "at", *f->function ? f->function : "?",
            *f->file ? f->file : f->module, f->line);
  }
}

long refgc_leaks_print(FILE *out) {
  if (!out) out = stderr;
  refgc_snapshot_t *s = refgc_snapshot_take(REFGC_SNAPSHOT_GRAPH);
  if (!s) return refgc_last_error() ? refgc_last_error() : REFGC_ENOMEM;
  size_t n;
  const refgc_suspect_t *sus = refgc_snapshot_suspects(s, &n);
  fprintf(out, "leak suspects: %zu (of %zu objects, %zu references)\n", n, s->nnodes, s->nedges);
  for (size_t i = 0; i < n; i++) {
    const refgc_suspect_t *x = &sus[i];
    const refgc_node_t *nd = &s->nodes[x->node];
    const char *tn = refgc_snapshot_type_name(s, nd->type);
    if (x->cls == REFGC_LEAK_LOST_REFERENCE)
      fprintf(out,
              "%zu. lost reference: %s at 0x%llx has %llu reference%s nothing accounts for; "
              "it keeps %llu object%s (%llu bytes) alive\n",
              i + 1, tn, (unsigned long long)nd->address, (unsigned long long)x->unexplained,
              x->unexplained == 1 ? "" : "s", (unsigned long long)x->retained_count,
              x->retained_count == 1 ? "" : "s", (unsigned long long)x->retained);
    else
      fprintf(out,
              "%zu. resurrected: %s at 0x%llx was finalized as garbage and lives on%s; it keeps "
              "%llu object%s (%llu bytes) alive\n",
              i + 1, tn, (unsigned long long)nd->address,
              (nd->flags & REFGC_NODE_GARBAGE) ? " (on the garbage list)" : "",
              (unsigned long long)x->retained_count, x->retained_count == 1 ? "" : "s",
              (unsigned long long)x->retained);
    print_node_site(s, x->node, out);
    for (uint32_t k = 0; k < x->chain_len; k++) {
      const refgc_node_t *h = &s->nodes[x->chain[k]];
      fprintf(out, "     %s %s at 0x%llx%s%s%s\n", k ? "->" : "root", refgc_snapshot_type_name(s, h->type),
              (unsigned long long)h->address, h->root_name ? " \"" : "",
              h->root_name ? s->strings[h->root_name] : "", h->root_name ? "\"" : "");
      if (k + 1 < x->chain_len) {
        /* the edge to the next hop */
        uint32_t end = x->chain[k] + 1 < s->nnodes ? s->nodes[x->chain[k] + 1].first_edge
                                                   : (uint32_t)s->nedges;
        for (uint32_t e = h->first_edge; e < end; e++)
          if (s->edges[e].to == x->chain[k + 1]) {
            if (s->edges[e].offset >= 0)
              fprintf(out, "          field +%lld\n", (long long)s->edges[e].offset);
            else
              fprintf(out, "          reference #%u\n", s->edges[e].index);
            break;
          }
      }
    }
  }
  refgc_snapshot_free(s);
  return (long)n;
}
