// The host's cores, caches and NUMA nodes, read once through hwloc (cores, caches) and libnuma (nodes, memory).
#pragma once
#include <cstdint>
#include <vector>

namespace mf {

struct CoreInfo {
    int package = 0;
    int numa_node = 0;
    std::vector<int> pus;  // OS cpu ids of the hardware threads of this core; pus[0] is the one we pin to
};

struct CacheInfo {
    int level = 0;  // 1 = L1d, 2, 3
    uint64_t bytes = 0;
    int instances = 0;
    int pus_per_instance = 0;
};

struct NumaNodeInfo {
    int id = 0;
    std::vector<int> pus;
    uint64_t memory_bytes = 0;
};

struct CpuTopology {
    int packages = 0;
    int pus = 0;
    std::vector<CoreInfo> cores;
    std::vector<CacheInfo> caches;  // data/unified caches, by level
    std::vector<NumaNodeInfo> numa_nodes;

    uint64_t llc_bytes_total() const;
    // One OS cpu id per physical core (the first hardware thread), optionally only those of one NUMA node.
    std::vector<int> one_pu_per_core(int numa_node = -1) const;
};

// Only the PUs this process may run on are reported (cgroups / taskset restrict what we can use).
CpuTopology read_cpu_topology();

}  // namespace mf
