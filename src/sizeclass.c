/* refgc — size classes.
 *
 * 64 classes: 16-byte steps from 16 to 512 bytes (32 classes, as CPython's obmalloc, so the
 * commonest object sizes waste at most 15 bytes), then four classes per doubling from 640 B
 * to 128 KiB (at most 20 % internal waste, as mimalloc's bins). Classes 0–47 (≤ 8 KiB) live in
 * 64 KiB pages, classes 48–63 in 512 KiB pages, so every page holds at least 4 blocks.
 *
 * The free path must tell a block's start from an interior pointer without dividing, so each
 * class carries `div_magic = ceil(2^40 / size)`: for an offset `off < 2^23` into a page,
 * `(off * div_magic) >> 40 == off / size` exactly (the error term `off * e / 2^40`, e < 1,
 * stays below `1 / size` because `off * size < 2^40`). tests/test_heap.c checks every
 * offset of every class.
 */
#include "internal.h"

#define SMALL(sz) {(sz), REFGC_SMALL_PAGE_SHIFT, (((uint64_t)1 << 40) + (sz) - 1) / (sz)}
#define MEDIUM(sz) {(sz), REFGC_MEDIUM_PAGE_SHIFT, (((uint64_t)1 << 40) + (sz) - 1) / (sz)}
#define FOUR_SMALL(base) SMALL((base) * 5 / 4), SMALL((base) * 6 / 4), SMALL((base) * 7 / 4), SMALL((base) * 2)
#define FOUR_MEDIUM(base) MEDIUM((base) * 5 / 4), MEDIUM((base) * 6 / 4), MEDIUM((base) * 7 / 4), MEDIUM((base) * 2)

const refgc_class_info_t refgc__classes[REFGC_NUM_CLASSES] = {
    SMALL(16),  SMALL(32),  SMALL(48),  SMALL(64),  SMALL(80),  SMALL(96),  SMALL(112),
    SMALL(128), SMALL(144), SMALL(160), SMALL(176), SMALL(192), SMALL(208), SMALL(224),
    SMALL(240), SMALL(256), SMALL(272), SMALL(288), SMALL(304), SMALL(320), SMALL(336),
    SMALL(352), SMALL(368), SMALL(384), SMALL(400), SMALL(416), SMALL(432), SMALL(448),
    SMALL(464), SMALL(480), SMALL(496), SMALL(512),
    FOUR_SMALL(512), FOUR_SMALL(1024), FOUR_SMALL(2048), FOUR_SMALL(4096),
    FOUR_MEDIUM(8192), FOUR_MEDIUM(16384), FOUR_MEDIUM(32768), FOUR_MEDIUM(65536),
};

unsigned refgc__size_class(size_t size) {
  if (size <= REFGC_SMALL_FAST_MAX) return size == 0 ? 0 : (unsigned)((size - 1) >> 4);
  /* size in (2^b, 2^(b+1)]: four classes, each 2^(b-2) wide */
  size_t w = size - 1;
  unsigned b = (unsigned)(63 - __builtin_clzll((unsigned long long)w));
  unsigned quarter = (unsigned)((w - ((size_t)1 << b)) >> (b - 2));
  return 32 + (b - 9) * 4 + quarter;
}
