/* refgc — version numbers and ABI policy.
 *
 * ABI policy: until 1.0 every MINOR release may change the ABI; PATCH releases never do.
 * From 1.0 on, the ABI changes only with MAJOR. Public structs that the library fills in
 * (`refgc_heap_stats_t`) start with `size` and `version` fields, so a program built against an
 * older header keeps working with a newer library: the library writes no more than `size` bytes.
 * Error code values (`REFGC_E*`) are pinned once released and never renumbered.
 */
#ifndef REFGC_VERSION_H
#define REFGC_VERSION_H

#define REFGC_VERSION_MAJOR 0
#define REFGC_VERSION_MINOR 1
#define REFGC_VERSION_PATCH 0

/** `0xMMmmpp`: comparable with `<`, as `refgc_version()` returns at run time. */
#define REFGC_VERSION_HEX \
  ((REFGC_VERSION_MAJOR << 16) | (REFGC_VERSION_MINOR << 8) | (REFGC_VERSION_PATCH))

#define REFGC_STRINGIFY_(x) #x
#define REFGC_STRINGIFY(x) REFGC_STRINGIFY_(x)
#define REFGC_VERSION_STRING          \
  REFGC_STRINGIFY(REFGC_VERSION_MAJOR) \
  "." REFGC_STRINGIFY(REFGC_VERSION_MINOR) "." REFGC_STRINGIFY(REFGC_VERSION_PATCH)

#endif /* REFGC_VERSION_H */
