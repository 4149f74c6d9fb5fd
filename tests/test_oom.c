#include "refgc.h"
#include "test.h"
TEST(placeholder) { ASSERT(1); }
