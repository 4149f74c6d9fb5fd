#include "refgc.h"
int main(void) { void *p = refgc_malloc(10); refgc_free(p); refgc_heap_stats_print(stdout); return 0; }
