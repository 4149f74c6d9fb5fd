/* refgc export --format dot — Graphviz drawing of the reference graph around the leak suspects.
 *
 * Focus: the snapshot's leak suspects (refgc_snapshot_suspects, largest retained first, at most
 * 10); when there are none, the 5 objects that retain the most. Which objects are drawn, within
 * --max-nodes (default 200):
 *   1. each focus object's chain of references from a root (the suspect's chain, else
 *      refgc_snapshot_chain), drawn in red: why it is alive;
 *   2. what the focus objects keep alive: breadth-first along references, all focuses at once;
 *   3. with room left, the focus objects' direct holders.
 * Every reference between two drawn objects is drawn (at most 4 per drawn object), labelled
 * with its field: "+16" (byte offset in the holder) or "[2]" (position in traverse order when
 * the offset is unknown). A node's label is its type, size and retained size, its allocation
 * site (innermost frame) when traced, the root's name for declared roots, and the leak class
 * for suspects; a count of references not drawn is added when some are left out.
 * Labels are escaped for dot's strings and made valid UTF-8 (other bytes become '?').
 */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "export.h"

#define MAX_FOCUS_SUSPECTS 10
#define MAX_FOCUS_RETAINERS 5

typedef struct dot_ctx_s {
  refgc_snapshot_t *s;
  const refgc_node_t *nodes;
  const refgc_edge_t *edges;
  size_t nn, ne;
  uint32_t *order;     /* drawn nodes, in the order they were chosen */
  size_t norder, max;
  unsigned char *in;   /* drawn? */
  unsigned char *role; /* ROLE_* bits */
  uint64_t *chain_links; /* sorted (from << 32 | to) of highlighted references */
  size_t nlinks, links_cap;
} dot_ctx_t;

enum { ROLE_FOCUS = 1, ROLE_CHAIN = 2 };

static void edge_range(const dot_ctx_t *c, size_t i, size_t *b, size_t *e) {
  size_t begin = c->nodes[i].first_edge, end = i + 1 < c->nn ? c->nodes[i + 1].first_edge : c->ne;
  if (end > c->ne) end = c->ne;
  if (begin > end) begin = end;
  *b = begin;
  *e = end;
}

static int add_node(dot_ctx_t *c, uint32_t i) {
  if (i >= c->nn) return 0;
  if (c->in[i]) return 1;
  if (c->norder >= c->max) return 0;
  c->in[i] = 1;
  c->order[c->norder++] = i;
  return 1;
}

static void add_link(dot_ctx_t *c, uint32_t from, uint32_t to) {
  if (c->nlinks == c->links_cap) {
    c->links_cap = c->links_cap ? c->links_cap * 2 : 64;
    c->chain_links = cli_xrealloc(c->chain_links, c->links_cap * sizeof *c->chain_links);
  }
  c->chain_links[c->nlinks++] = (uint64_t)from << 32 | to;
}

static int u64_cmp(const void *pa, const void *pb) {
  uint64_t a = *(const uint64_t *)pa, b = *(const uint64_t *)pb;
  return a < b ? -1 : a > b;
}

static int is_link(const dot_ctx_t *c, uint32_t from, uint32_t to) {
  uint64_t k = (uint64_t)from << 32 | to;
  return c->nlinks && bsearch(&k, c->chain_links, c->nlinks, sizeof k, u64_cmp) != NULL;
}

/* Append `s` to a dot string under construction: quotes and backslashes escaped, invalid
 * UTF-8 bytes replaced. */
static void dot_puts(FILE *f, const char *s) {
  const unsigned char *p = (const unsigned char *)s;
  size_t len = strlen(s);
  for (size_t i = 0; i < len;) {
    unsigned ch = p[i];
    size_t n;
    if (ch == '"' || ch == '\\') {
      fputc('\\', f);
      fputc((int)ch, f);
      i++;
    } else if (ch < 0x20 || ch == 0x7F) {
      fputc(' ', f);
      i++;
    } else if ((n = cli_utf8_put(f, p + i, len - i)) > 0) {
      i += n;
    } else {
      fputc('?', f);
      i++;
    }
  }
}

static const refgc_node_t *cmp_nodes; /* for by_retained (qsort has no context argument) */
static int by_retained(const void *pa, const void *pb) {
  uint32_t a = *(const uint32_t *)pa, b = *(const uint32_t *)pb;
  if (cmp_nodes[a].retained != cmp_nodes[b].retained)
    return cmp_nodes[a].retained > cmp_nodes[b].retained ? -1 : 1;
  return a < b ? -1 : a > b;
}

static const char *leak_class_name(refgc_leak_class_t cls) {
  switch (cls) {
  case REFGC_LEAK_LOST_REFERENCE: return "lost reference";
  case REFGC_LEAK_RESURRECTED: return "resurrected";
  case REFGC_LEAK_GROWTH: return "growth";
  }
  return "suspect";
}

int export_dot(FILE *f, refgc_snapshot_t *s, const char *path, const export_opts_t *o) {
  refgc_snapshot_info_t in;
  if (cli_info(s, path, &in) < 0) return -1;
  dot_ctx_t c;
  memset(&c, 0, sizeof c);
  c.s = s;
  c.nodes = refgc_snapshot_graph(s, &c.nn, &c.edges, &c.ne);
  if ((!c.nodes || c.nn == 0) && in.objects > 0) {
    cli_error("%s has no object graph: take the snapshot with REFGC_SNAPSHOT_GRAPH "
              "(refgc_snapshot_take) or REFGC_TRACE_FILE", path);
    return -1;
  }
  if (!c.nodes) c.nn = c.ne = 0;
  c.max = o->max_nodes;
  c.order = cli_xcalloc(c.max + 1, sizeof *c.order);
  c.in = cli_xcalloc(c.nn ? c.nn : 1, 1);
  c.role = cli_xcalloc(c.nn ? c.nn : 1, 1);

  size_t nsus = 0;
  const refgc_suspect_t *sus = refgc_snapshot_suspects(s, &nsus);
  if (!sus) nsus = 0;
  /* suspect index + 1 per node, for labels */
  uint32_t *sus_of = cli_xcalloc(c.nn ? c.nn : 1, sizeof *sus_of);
  uint32_t focus[MAX_FOCUS_SUSPECTS];
  size_t nfocus = 0;
  for (size_t i = 0; i < nsus; i++) {
    if (sus[i].node >= c.nn) continue;
    if (!sus_of[sus[i].node]) sus_of[sus[i].node] = (uint32_t)i + 1;
    if (nfocus < MAX_FOCUS_SUSPECTS && !(c.role[sus[i].node] & ROLE_FOCUS)) {
      focus[nfocus++] = sus[i].node;
      c.role[sus[i].node] |= ROLE_FOCUS;
    }
  }
  int retainers = 0;
  if (nfocus == 0 && c.nn > 0) {
    retainers = 1;
    uint32_t *idx = cli_xcalloc(c.nn, sizeof *idx);
    for (size_t i = 0; i < c.nn; i++) idx[i] = (uint32_t)i;
    cmp_nodes = c.nodes;
    qsort(idx, c.nn, sizeof *idx, by_retained);
    for (size_t i = 0; i < c.nn && nfocus < MAX_FOCUS_RETAINERS; i++) {
      focus[nfocus++] = idx[i];
      c.role[idx[i]] |= ROLE_FOCUS;
    }
    free(idx);
  }

  /* 1. chains from a root */
  uint32_t *chain = cli_xcalloc(c.nn ? c.nn : 1, sizeof *chain);
  for (size_t k = 0; k < nfocus; k++) {
    const uint32_t *ch = NULL;
    size_t len = 0;
    uint32_t si = sus_of[focus[k]];
    if (si && sus[si - 1].chain && sus[si - 1].chain_len) {
      ch = sus[si - 1].chain;
      len = sus[si - 1].chain_len;
    } else {
      len = refgc_snapshot_chain(s, focus[k], chain, c.nn);
      if (len > c.nn) len = c.nn;
      ch = chain;
    }
    /* the focus object first, then its chain from the root down */
    if (!add_node(&c, focus[k])) break;
    for (size_t j = 0; j < len; j++) {
      if (ch[j] >= c.nn || !add_node(&c, ch[j])) break;
      c.role[ch[j]] |= ROLE_CHAIN;
      if (j + 1 < len && ch[j + 1] < c.nn) add_link(&c, ch[j], ch[j + 1]);
    }
  }
  free(chain);
  if (c.nlinks) qsort(c.chain_links, c.nlinks, sizeof *c.chain_links, u64_cmp);

  /* 2. what the focus objects keep alive, breadth-first */
  uint32_t *queue = cli_xcalloc(c.nn ? c.nn : 1, sizeof *queue);
  unsigned char *queued = cli_xcalloc(c.nn ? c.nn : 1, 1);
  size_t qh = 0, qt = 0;
  for (size_t k = 0; k < nfocus; k++) {
    queue[qt++] = focus[k];
    queued[focus[k]] = 1;
  }
  while (qh < qt && c.norder < c.max) {
    uint32_t i = queue[qh++];
    size_t b, e;
    edge_range(&c, i, &b, &e);
    for (size_t x = b; x < e && c.norder < c.max; x++) {
      uint32_t to = c.edges[x].to;
      if (to >= c.nn) continue;
      add_node(&c, to);
      if (!queued[to]) {
        queued[to] = 1;
        queue[qt++] = to;
      }
    }
  }
  free(queue);
  free(queued);

  /* 3. the focus objects' direct holders */
  for (size_t i = 0; i < c.nn && c.norder < c.max; i++) {
    size_t b, e;
    edge_range(&c, i, &b, &e);
    for (size_t x = b; x < e; x++) {
      uint32_t to = c.edges[x].to;
      if (to < c.nn && (c.role[to] & ROLE_FOCUS)) {
        add_node(&c, (uint32_t)i);
        break;
      }
    }
  }

  /* ---- output ---- */
  char a[32], b2[32], d[32];
  fprintf(f, "digraph refgc {\n  graph [fontname=\"Helvetica\", labelloc=t, rankdir=LR, label=\"");
  {
    char head[512];
    if (c.nn == 0)
      snprintf(head, sizeof head, "refgc: %s has no objects", cli_basename(path));
    else if (retainers)
      snprintf(head, sizeof head,
               "refgc: no leak suspects in %s; the %zu largest retainers (%zu of %s objects shown)",
               cli_basename(path), nfocus, c.norder, cli_count(c.nn, a, sizeof a));
    else
      snprintf(head, sizeof head, "refgc: leak suspects in %s: %zu (%zu of %s objects shown)",
               cli_basename(path), nsus, c.norder, cli_count(c.nn, a, sizeof a));
    dot_puts(f, head);
  }
  fprintf(f, "\"];\n  node [shape=box, style=\"rounded,filled\", fillcolor=\"#ffffff\", "
             "fontname=\"Helvetica\", fontsize=10];\n"
             "  edge [fontname=\"Helvetica\", fontsize=9, color=\"#777777\"];\n");

  size_t edge_budget = 4 * (c.max ? c.max : 1), edges_drawn = 0, edges_left = 0;
  for (size_t k = 0; k < c.norder; k++) {
    uint32_t i = c.order[k];
    const refgc_node_t *n = &c.nodes[i];
    size_t b, e, hidden = 0;
    edge_range(&c, i, &b, &e);
    for (size_t x = b; x < e; x++)
      if (c.edges[x].to >= c.nn || !c.in[c.edges[x].to]) hidden++;
    fprintf(f, "  n%" PRIu32 " [label=\"", i);
    if (n->flags & REFGC_NODE_DECLARED) {
      const char *rn = refgc_snapshot_string(s, n->root_name);
      fputs("root \\\"", f);
      dot_puts(f, rn && *rn ? rn : "?");
      fputs("\\\"\\n", f);
    } else if ((n->flags & REFGC_NODE_ROOT) &&
               !(sus_of[i] && sus[sus_of[i] - 1].cls == REFGC_LEAK_LOST_REFERENCE)) {
      fputs("held by the program\\n", f);
    }
    const char *tn = refgc_snapshot_type_name(s, n->type);
    dot_puts(f, tn && *tn ? tn : "(unnamed type)");
    fprintf(f, "\\n%s, retains %s", cli_size(n->size, a, sizeof a),
            cli_size(n->retained, b2, sizeof b2));
    if (n->traceback != UINT32_MAX) {
      const uint32_t *fr = NULL;
      if (refgc_snapshot_traceback(s, n->traceback, &fr) > 0) {
        char site[1024];
        cli_frame_label(refgc_snapshot_frame(s, fr[0]), CLI_FRAME_FULL, site, sizeof site);
        fputs("\\n", f);
        dot_puts(f, site);
      }
    }
    uint32_t si = sus_of[i];
    if (si) {
      const refgc_suspect_t *sp = &sus[si - 1];
      fprintf(f, "\\nLEAK: %s", leak_class_name(sp->cls));
      if (sp->cls == REFGC_LEAK_LOST_REFERENCE)
        fprintf(f, " (%" PRIu64 " unexplained reference%s)", sp->unexplained,
                sp->unexplained == 1 ? "" : "s");
      fprintf(f, "\\nkeeps %s objects, %s alive", cli_count(sp->retained_count, d, sizeof d),
              cli_size(sp->retained, a, sizeof a));
    }
    if (n->flags & REFGC_NODE_FINALIZED && !si) fputs("\\nfinalized (resurrected)", f);
    if (hidden) fprintf(f, "\\n+%zu reference%s not shown", hidden, hidden == 1 ? "" : "s");
    fputc('"', f);
    if (si)
      fprintf(f, ", fillcolor=\"%s\", penwidth=2",
              sus[si - 1].cls == REFGC_LEAK_RESURRECTED ? "#f7d08a" : "#f4a6a6");
    else if (c.role[i] & ROLE_FOCUS)
      fputs(", fillcolor=\"#cfe2f3\", penwidth=2", f);
    if (c.role[i] & ROLE_CHAIN) fputs(", color=\"#d62728\"", f);
    if (n->flags & (REFGC_NODE_DECLARED | REFGC_NODE_ROOT)) fputs(", peripheries=2", f);
    fputs("];\n", f);
  }
  for (size_t k = 0; k < c.norder; k++) {
    uint32_t i = c.order[k];
    size_t b, e;
    edge_range(&c, i, &b, &e);
    for (size_t x = b; x < e; x++) {
      uint32_t to = c.edges[x].to;
      if (to >= c.nn || !c.in[to]) continue;
      int hl = is_link(&c, i, to);
      if (!hl && edges_drawn >= edge_budget) {
        edges_left++;
        continue;
      }
      edges_drawn++;
      char field[32];
      if (c.edges[x].offset >= 0)
        snprintf(field, sizeof field, "+%" PRId64, c.edges[x].offset);
      else
        snprintf(field, sizeof field, "[%" PRIu32 "]", c.edges[x].index);
      fprintf(f, "  n%" PRIu32 " -> n%" PRIu32 " [label=\"%s\"%s];\n", i, to, field,
              hl ? ", color=\"#d62728\", fontcolor=\"#d62728\", penwidth=2.5" : "");
    }
  }
  if (edges_left)
    fprintf(f, "  omitted [shape=note, label=\"%zu more references between these objects are "
               "not drawn\"];\n", edges_left);
  fputs("}\n", f);

  free(sus_of);
  free(c.order);
  free(c.in);
  free(c.role);
  free(c.chain_links);
  return 0;
}
