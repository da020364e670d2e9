// The agent's heap, as the C library keeps it.
#pragma once

namespace edgesync::platform {

// Makes every thread allocate from the one main heap. glibc otherwise gives each new thread an
// arena of its own, and each arena keeps the memory freed in it for its own thread: with the
// agent's six threads that was about 2 MiB of its RSS after a backlog's drain, a tenth of it.
// The agent's threads hand work to each other more than they allocate at the same time, and
// glibc's per-thread caches serve most small allocations without the heap's lock: the drain
// measured a few percent more CPU per event and no slower (docs/PERFORMANCE.md). Call it
// before any thread is started. Returns false if the C library refused.
bool use_one_heap();

}  // namespace edgesync::platform
