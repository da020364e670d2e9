#include "platform/memory.h"

#include <malloc.h>

namespace edgesync::platform {

bool use_one_heap() { return mallopt(M_ARENA_MAX, 1) == 1; }

}  // namespace edgesync::platform
