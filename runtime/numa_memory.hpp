// Placement of packed weights on a NUMA node (libnuma/mbind). On a one-node host, or for node -1, nothing happens.
#pragma once
#include <cstddef>

namespace mf {

// Moves the pages of [p, p + bytes) to `node` and binds them there. Returns false where the kernel refused (the
// weights then stay where they are: correct, only slower). Only whole pages inside the range are moved.
bool bind_to_numa_node(void* p, size_t bytes, int node);

// NUMA nodes libnuma reports (1 where it is unavailable).
int numa_node_count();

}  // namespace mf
