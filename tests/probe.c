/* refgc — a program that misuses a refgc block on purpose, for the sanitizer tests: ASan (and
 * valgrind) must report the misuse inside refgc's own pages, which they can only do because
 * the heap tells them which bytes are allocated (src/track.h).
 *
 *   probe uaf       read a block after freeing it
 *   probe overflow  read past the requested size, inside the block's size class slack
 *   probe clean     use a block correctly (must produce no report)
 */
#include <stdio.h>
#include <string.h>

#include "refgc.h"

int main(int argc, char **argv) {
  const char *what = argc > 1 ? argv[1] : "clean";
  volatile char *p = refgc_malloc(24); /* a 32-byte class: 8 bytes of slack */
  memset((char *)p, 1, 24);
  int sink = 0;
  if (!strcmp(what, "uaf")) {
    refgc_free((void *)p);
    sink = p[10];
  } else if (!strcmp(what, "overflow")) {
    sink = p[28];
    refgc_free((void *)p);
  } else {
    sink = p[23];
    refgc_free((void *)p);
  }
  printf("probe %s done (%d)\n", what, sink);
  return 0;
}
