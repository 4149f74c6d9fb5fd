/* refgc — unity build: the whole library as one translation unit, for single-object and LTO
 * builds (cc -c src/static.c). The CMake build compiles the files separately.
 */
#include "alloc.c"
#include "check.c"
#include "debug.c"
#include "error.c"
#include "heap.c"
#include "large.c"
#include "object.c"
#include "options.c"
#include "os.c"
#include "page.c"
#include "prim/unix/prim.c"
#include "segment.c"
#include "sizeclass.c"
#include "stats.c"
#include "weakmap.c"
#include "weakref.c"
