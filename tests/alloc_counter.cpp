// Replaces the C allocator entry points with counting wrappers around glibc's own
// (__libc_malloc and friends). Counting looks up the calling thread's name with prctl, which
// does not allocate, and keeps the counts in a fixed table, so the hook never re-enters malloc.
#include "alloc_counter.hpp"

#include <sys/prctl.h>

#include <atomic>
#include <cstddef>
#include <cstring>

extern "C" {
void* __libc_malloc(size_t);
void* __libc_calloc(size_t, size_t);
void* __libc_realloc(void*, size_t);
void* __libc_memalign(size_t, size_t);
void __libc_free(void*);
}

namespace {

constexpr int kSlots = 64;
struct Slot {
  char name[16];
  std::atomic<int64_t> count, bytes, largest;
};
Slot g_slots[kSlots];
std::atomic<int> g_used{0};
std::atomic_flag g_insert = ATOMIC_FLAG_INIT;
std::atomic<bool> g_counting{false};

void record(size_t bytes) {
  if (!g_counting.load(std::memory_order_relaxed)) return;
  char name[16] = {};
  prctl(PR_GET_NAME, name, 0, 0, 0);
  int n = g_used.load(std::memory_order_acquire);
  int slot = -1;
  for (int i = 0; i < n; ++i)
    if (std::strncmp(g_slots[i].name, name, 16) == 0) slot = i;
  if (slot < 0) {
    while (g_insert.test_and_set(std::memory_order_acquire)) {
    }
    n = g_used.load(std::memory_order_relaxed);
    for (int i = 0; i < n; ++i)
      if (std::strncmp(g_slots[i].name, name, 16) == 0) slot = i;
    if (slot < 0 && n < kSlots) {
      std::memcpy(g_slots[n].name, name, 16);
      slot = n;
      g_used.store(n + 1, std::memory_order_release);
    }
    g_insert.clear(std::memory_order_release);
    if (slot < 0) return;
  }
  Slot& s = g_slots[slot];
  s.count.fetch_add(1, std::memory_order_relaxed);
  s.bytes.fetch_add(int64_t(bytes), std::memory_order_relaxed);
  int64_t big = s.largest.load(std::memory_order_relaxed);
  while (int64_t(bytes) > big && !s.largest.compare_exchange_weak(big, int64_t(bytes))) {
  }
}

}  // namespace

extern "C" {
void* malloc(size_t n) {
  record(n);
  return __libc_malloc(n);
}
void* calloc(size_t n, size_t size) {
  record(n * size);
  return __libc_calloc(n, size);
}
void* realloc(void* p, size_t n) {
  record(n);
  return __libc_realloc(p, n);
}
void free(void* p) {
  __libc_free(p);
}
void* memalign(size_t align, size_t n) {
  record(n);
  return __libc_memalign(align, n);
}
void* aligned_alloc(size_t align, size_t n) {
  record(n);
  return __libc_memalign(align, n);
}
int posix_memalign(void** out, size_t align, size_t n) {
  record(n);
  void* p = __libc_memalign(align, n);
  if (!p) return 12;  // ENOMEM
  *out = p;
  return 0;
}
}

namespace upres::test {

void start_counting_allocations() {
  g_counting = false;
  for (int i = 0; i < g_used.load(); ++i) {
    g_slots[i].count = 0;
    g_slots[i].bytes = 0;
    g_slots[i].largest = 0;
  }
  g_counting = true;
}

void stop_counting_allocations() {
  g_counting = false;
}

std::vector<ThreadAllocations> allocation_counts() {
  const bool was = g_counting.exchange(false);
  std::vector<ThreadAllocations> out;
  for (int i = 0; i < g_used.load(); ++i)
    if (g_slots[i].count > 0)
      out.push_back({std::string(g_slots[i].name, strnlen(g_slots[i].name, 16)), g_slots[i].count.load(),
                     g_slots[i].bytes.load(), g_slots[i].largest.load()});
  g_counting = was;
  return out;
}

int64_t total_allocations() {
  int64_t n = 0;
  for (int i = 0; i < g_used.load(); ++i) n += g_slots[i].count.load();
  return n;
}

}  // namespace upres::test
