/* refgc — weak references.
 *
 * A weak reference is an object of the built-in type "weakref" (so it is reference counted
 * like any other, and the cycle collector can see it). Objects pay nothing for weak
 * references they do not have: the weak references to an object hang off a side table keyed
 * by the object's address, and the object carries one header bit (REFGC_OB_WEAKREFS) saying
 * the table has an entry for it.
 *
 * The table is an open-addressing hash map (linear probing, tombstones, grown at 3/4 load)
 * from object to the head of a doubly linked list of its weak references, under one mutex:
 * weak references are created and cleared far less often than objects are.
 *
 * Release order (object.c calls `refgc__weakrefs_clear` before dropping the object's
 * references): every weak reference is detached and made to read NULL; the ones with a
 * callback that are not themselves being released are kept alive (incref) and their callbacks
 * queued; the queue runs after the whole release finishes, so callbacks never see the referent
 * or anything half released.
 */
#include <pthread.h>
#include <string.h>

#include "internal.h"

typedef struct weakref_s {
  refgc_object_t ob;
  refgc_object_t *target; /* NULL once the referent was released */
  refgc_weakref_callback *cb;
  void *arg;
  struct weakref_s *next, *prev; /* the referent's list, under wr_lock */
} weakref_t;

typedef struct wr_slot_s {
  refgc_object_t *key; /* NULL: empty; WR_TOMB: deleted */
  weakref_t *head;
} wr_slot_t;

#define WR_TOMB ((refgc_object_t *)(uintptr_t)1)

static pthread_mutex_t wr_lock = PTHREAD_MUTEX_INITIALIZER;
static wr_slot_t *wr_slots;
static size_t wr_cap, wr_used; /* used: live entries and tombstones */
static pthread_once_t wr_once = PTHREAD_ONCE_INIT;
static const refgc_type_t *weakref_type;

static size_t wr_hash(const refgc_object_t *o) {
  uint64_t h = (uint64_t)(uintptr_t)o >> 4;
  h *= 0x9E3779B97F4A7C15ull;
  return (size_t)(h ^ (h >> 29));
}

/* The slot of `o`, or NULL. wr_lock held. */
static wr_slot_t *wr_find(const refgc_object_t *o) {
  if (!wr_cap) return NULL;
  for (size_t i = wr_hash(o) & (wr_cap - 1);; i = (i + 1) & (wr_cap - 1)) {
    if (wr_slots[i].key == o) return &wr_slots[i];
    if (!wr_slots[i].key) return NULL;
  }
}

/* Grow (or rehash away tombstones) so that one more entry fits. wr_lock held. */
static bool wr_reserve(void) {
  if ((wr_used + 1) * 4 <= wr_cap * 3) return true;
  size_t live = 0;
  for (size_t i = 0; i < wr_cap; i++)
    if (wr_slots[i].key && wr_slots[i].key != WR_TOMB) live++;
  size_t cap = 64;
  while ((live + 1) * 2 > cap) cap *= 2;
  wr_slot_t *slots = refgc_calloc(cap, sizeof *slots);
  if (!slots) return false;
  for (size_t i = 0; i < wr_cap; i++) {
    refgc_object_t *k = wr_slots[i].key;
    if (!k || k == WR_TOMB) continue;
    size_t j = wr_hash(k) & (cap - 1);
    while (slots[j].key) j = (j + 1) & (cap - 1);
    slots[j] = wr_slots[i];
  }
  refgc_free(wr_slots);
  wr_slots = slots;
  wr_cap = cap;
  wr_used = live;
  return true;
}

/* The slot for `o`, created if missing; NULL when out of memory. wr_lock held. */
static wr_slot_t *wr_find_or_add(refgc_object_t *o) {
  wr_slot_t *s = wr_find(o);
  if (s) return s;
  if (!wr_reserve()) return NULL;
  size_t i = wr_hash(o) & (wr_cap - 1);
  while (wr_slots[i].key && wr_slots[i].key != WR_TOMB) i = (i + 1) & (wr_cap - 1);
  if (!wr_slots[i].key) wr_used++;
  wr_slots[i].key = o;
  wr_slots[i].head = NULL;
  return &wr_slots[i];
}

/* Unlink `w` from its referent's list; drop the entry when the list empties. wr_lock held. */
static void wr_unlink(weakref_t *w) {
  refgc_object_t *t = w->target;
  if (!t) return;
  if (w->prev)
    w->prev->next = w->next;
  else {
    wr_slot_t *s = wr_find(t);
    if (s) s->head = w->next;
    /* the referent keeps its WEAKREFS bit: this may run on another thread than the one using
     * the referent, which alone writes its header; its release finds no entry and moves on */
    if (s && !s->head) s->key = WR_TOMB;
  }
  if (w->next) w->next->prev = w->prev;
  w->next = w->prev = NULL;
  w->target = NULL;
}

/* The weakref type's release hook: a weak reference that dies before its referent. */
static void weakref_release(refgc_object_t *self) {
  weakref_t *w = (weakref_t *)self;
  pthread_mutex_lock(&wr_lock);
  wr_unlink(w);
  pthread_mutex_unlock(&wr_lock);
}

/* A weak reference holds no strong reference, but it is tracked: the collector must know
 * when a weak reference is itself garbage (referenced only from a garbage cycle), because
 * such a weak reference gets no callback. */
static void weakref_traverse(refgc_object_t *self, refgc_visit_fn *visit, void *arg) {
  (void)self;
  (void)visit;
  (void)arg;
}

/* Nothing to drop: a weak reference holds no strong reference. Having a clear hook makes a
 * garbage weak reference collectable (the collector keeps objects without one). */
static void weakref_clear(refgc_object_t *self) { (void)self; }

static void weakref_type_init(void) {
  refgc_type_spec_t spec = {.version = REFGC_TYPE_SPEC_VERSION,
                            .name = "weakref",
                            .basic_size = sizeof(weakref_t),
                            .traverse = weakref_traverse,
                            .clear = weakref_clear,
                            .release = weakref_release,
                            .freelist_max = 64};
  weakref_type = refgc_type_register(&spec);
}

static bool is_weakref(refgc_object_t *o) {
  pthread_once(&wr_once, weakref_type_init);
  return o && weakref_type && (o->bits & REFGC_OB_TYPE_MASK) == ((const refgc_type_t *)weakref_type)->id &&
         (o->bits & REFGC_OB_LIVE);
}

refgc_object_t *refgc_weakref_new(refgc_object_t *target, refgc_weakref_callback *callback,
                                  void *arg) {
  pthread_once(&wr_once, weakref_type_init);
  if (!target || !weakref_type) {
    refgc__set_error(target ? REFGC_ENOMEM : REFGC_EINVAL);
    return NULL;
  }
  if (refgc__object_checks && !refgc__object_check("refgc_weakref_new", target)) {
    refgc__set_error(REFGC_EBADOBJECT);
    return NULL;
  }
  weakref_t *w = (weakref_t *)refgc_new(weakref_type);
  if (!w) return NULL;
  w->cb = callback;
  w->arg = arg;
  if (target->refcnt == 0) return &w->ob; /* being released: born dead */
  pthread_mutex_lock(&wr_lock);
  wr_slot_t *s = wr_find_or_add(target);
  if (!s) {
    pthread_mutex_unlock(&wr_lock);
    refgc_decref(&w->ob);
    refgc__set_error(REFGC_ENOMEM);
    return NULL;
  }
  w->target = target;
  w->next = s->head;
  if (s->head) s->head->prev = w;
  s->head = w;
  target->bits |= REFGC_OB_WEAKREFS;
  pthread_mutex_unlock(&wr_lock);
  return &w->ob;
}

refgc_object_t *refgc_weakref_get(refgc_object_t *weakref) {
  if (!is_weakref(weakref)) {
    refgc__set_error(REFGC_EINVAL);
    return NULL;
  }
  weakref_t *w = (weakref_t *)weakref;
  pthread_mutex_lock(&wr_lock);
  refgc_object_t *t = w->target;
  if (t && t->refcnt == 0) t = NULL; /* its release has begun */
  if (t) refgc_incref(t);
  pthread_mutex_unlock(&wr_lock);
  return t;
}

int refgc_weakref_alive(refgc_object_t *weakref) {
  if (!is_weakref(weakref)) return 0;
  pthread_mutex_lock(&wr_lock);
  refgc_object_t *t = ((weakref_t *)weakref)->target;
  int alive = t && t->refcnt != 0;
  pthread_mutex_unlock(&wr_lock);
  return alive;
}

size_t refgc_weakref_count(const refgc_object_t *target) {
  if (!target || !(target->bits & REFGC_OB_WEAKREFS)) return 0;
  size_t n = 0;
  pthread_mutex_lock(&wr_lock);
  wr_slot_t *s = wr_find(target);
  for (weakref_t *w = s ? s->head : NULL; w; w = w->next) n++;
  pthread_mutex_unlock(&wr_lock);
  return n;
}

void refgc__weakrefs_clear(refgc_tstate_t *ts, refgc_object_t *o) {
  pthread_mutex_lock(&wr_lock);
  wr_slot_t *s = wr_find(o);
  weakref_t *w = s ? s->head : NULL;
  if (s) s->key = WR_TOMB;
  o->bits &= ~REFGC_OB_WEAKREFS;
  /* detach all first, then queue: a callback must find every weakref to `o` reading NULL */
  weakref_t *queue = NULL;
  while (w) {
    weakref_t *next = w->next;
    w->target = NULL;
    w->prev = NULL;
    w->next = NULL;
    /* a weak reference that is itself being released, or is garbage the collector found,
     * gets no callback */
    if (w->cb && w->ob.refcnt != 0 && !(w->ob.bits & REFGC_OB_GARBAGE)) {
      refgc_incref(&w->ob);
      w->next = queue;
      queue = w;
    }
    w = next;
  }
  pthread_mutex_unlock(&wr_lock);
  /* `queue` now runs oldest first; the callback queue is popped last-in first-out, so the
   * most recently created weak reference's callback runs first, as in CPython */
  while (queue) {
    weakref_t *next = queue->next;
    queue->next = NULL;
    refgc__queue_callback(ts, &queue->ob, queue->cb, queue->arg);
    queue = next;
  }
}
