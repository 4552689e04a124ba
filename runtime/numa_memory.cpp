#include "runtime/numa_memory.hpp"

#include <numa.h>
#include <numaif.h>
#include <unistd.h>

#include <cstdint>

namespace mf {

int numa_node_count() {
    static const int n = numa_available() < 0 ? 1 : numa_max_node() + 1;
    return n;
}

bool bind_to_numa_node(void* p, size_t bytes, int node) {
    if (node < 0 || numa_node_count() <= 1 || !p || !bytes) return true;
    const uintptr_t page = uintptr_t(sysconf(_SC_PAGESIZE));
    const uintptr_t begin = (uintptr_t(p) + page - 1) / page * page;
    const uintptr_t end = (uintptr_t(p) + bytes) / page * page;
    if (end <= begin) return true;
    unsigned long mask[16] = {};
    if (node >= int(sizeof(mask) * 8)) return false;
    mask[node / (8 * sizeof(unsigned long))] = 1ul << (node % (8 * sizeof(unsigned long)));
    return mbind(reinterpret_cast<void*>(begin), end - begin, MPOL_BIND, mask, sizeof(mask) * 8,
                 MPOL_MF_MOVE) == 0;
}

}  // namespace mf
