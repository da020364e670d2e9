#include "platform/memory.h"

#include <malloc.h>

namespace edgesync::platform {

void use_one_heap() { mallopt(M_ARENA_MAX, 1); }

}  // namespace edgesync::platform
