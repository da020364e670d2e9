// use_one_heap(): the agent's threads allocate from one heap, not an arena each.
#include "platform/memory.h"

#include <gtest/gtest.h>
#include <malloc.h>
#include <stdio.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace edgesync::platform {
namespace {

// The heaps glibc reports (malloc_info's <heap nr=...> elements).
int heap_count() {
  char* text = nullptr;
  size_t size = 0;
  FILE* f = open_memstream(&text, &size);
  malloc_info(0, f);
  fclose(f);
  std::string xml(text, size);
  free(text);
  int n = 0;
  for (size_t at = xml.find("<heap nr="); at != std::string::npos; at = xml.find("<heap nr=", at + 1)) ++n;
  return n;
}

TEST(UseOneHeap, ThreadsShareTheMainHeap) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "the sanitizer's allocator replaces glibc's heaps";
#endif
  ASSERT_TRUE(use_one_heap());
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([] {
      // Without the limit glibc gives each new thread an arena at its first allocation.
      std::vector<std::unique_ptr<char[]>> blocks;
      for (int i = 0; i < 1000; ++i) blocks.emplace_back(new char[100 + i]);
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(heap_count(), 1);
}

}  // namespace
}  // namespace edgesync::platform
