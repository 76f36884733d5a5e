// Broken invariants abort; they are bugs, not user errors (user errors throw upres::Error).
#pragma once

#include <cstdio>
#include <cstdlib>

#define UPRES_ASSERT(cond)                                                                    \
  do {                                                                                        \
    if (!(cond)) {                                                                            \
      std::fprintf(stderr, "upres: internal error: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
      std::abort();                                                                           \
    }                                                                                         \
  } while (0)
