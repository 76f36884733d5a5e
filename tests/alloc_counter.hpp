// Counts heap allocations (malloc and everything built on it, operator new included) per thread
// name while counting is on. The test executable replaces malloc and friends, so allocations
// inside FFmpeg, oneDNN and libstdc++ are seen too.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace upres::test {

struct ThreadAllocations {
  std::string thread;  // the name set with pthread_setname_np (the process name otherwise)
  int64_t count = 0;
  int64_t bytes = 0;
  int64_t largest = 0;
};

void start_counting_allocations();  // clears the counts
void stop_counting_allocations();
std::vector<ThreadAllocations> allocation_counts();
int64_t total_allocations();

}  // namespace upres::test
