#include "runtime/cpu_topology.hpp"

#include <hwloc.h>
#include <numa.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <stdexcept>

namespace mf {
namespace {

std::vector<int> pus_of(hwloc_const_cpuset_t set) {
    std::vector<int> out;
    int id;
    hwloc_bitmap_foreach_begin(id, set) { out.push_back(id); }
    hwloc_bitmap_foreach_end();
    return out;
}

void read_numa(CpuTopology& t) {
    if (numa_available() < 0) {
        NumaNodeInfo n;
        n.id = 0;
        for (const auto& c : t.cores) n.pus.insert(n.pus.end(), c.pus.begin(), c.pus.end());
        std::sort(n.pus.begin(), n.pus.end());
        t.numa_nodes.push_back(n);
        return;
    }
    const int max_node = numa_max_node();
    bitmask* cpus = numa_allocate_cpumask();
    for (int node = 0; node <= max_node; ++node) {
        if (!numa_bitmask_isbitset(numa_all_nodes_ptr, node)) continue;
        NumaNodeInfo n;
        n.id = node;
        if (numa_node_to_cpus(node, cpus) == 0) {
            for (int pu = 0; pu < int(cpus->size); ++pu)
                if (numa_bitmask_isbitset(cpus, pu)) n.pus.push_back(pu);
        }
        long long free_bytes = 0;
        const long long size = numa_node_size64(node, &free_bytes);
        n.memory_bytes = size > 0 ? uint64_t(size) : 0;
        t.numa_nodes.push_back(n);
    }
    numa_free_cpumask(cpus);
    // Some VMs hot-plug memory that libnuma does not count in any node; with one node, all RAM is its RAM.
    if (t.numa_nodes.size() == 1) {
        const uint64_t phys = uint64_t(sysconf(_SC_PHYS_PAGES)) * uint64_t(sysconf(_SC_PAGE_SIZE));
        t.numa_nodes[0].memory_bytes = std::max(t.numa_nodes[0].memory_bytes, phys);
    }
    for (auto& c : t.cores)
        for (const auto& n : t.numa_nodes)
            if (std::find(n.pus.begin(), n.pus.end(), c.pus.front()) != n.pus.end()) c.numa_node = n.id;
}

}  // namespace

uint64_t CpuTopology::llc_bytes_total() const {
    uint64_t best_level = 0, bytes = 0;
    for (const auto& c : caches)
        if (uint64_t(c.level) > best_level) best_level = c.level, bytes = c.bytes * uint64_t(c.instances);
    return bytes;
}

std::vector<int> CpuTopology::one_pu_per_core(int numa_node) const {
    std::vector<int> out;
    for (const auto& c : cores)
        if (numa_node < 0 || c.numa_node == numa_node) out.push_back(c.pus.front());
    return out;
}

CpuTopology read_cpu_topology() {
    hwloc_topology_t topo;
    if (hwloc_topology_init(&topo) != 0) throw std::runtime_error("hwloc_topology_init failed");
    hwloc_topology_set_flags(topo, HWLOC_TOPOLOGY_FLAG_RESTRICT_TO_CPUBINDING);
    if (hwloc_topology_load(topo) != 0) {
        hwloc_topology_destroy(topo);
        throw std::runtime_error("hwloc_topology_load failed: cannot read the CPU topology");
    }
    CpuTopology t;
    t.packages = std::max(1, hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PACKAGE));
    t.pus = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PU);
    const int ncores = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE);
    for (int i = 0; i < ncores; ++i) {
        hwloc_obj_t core = hwloc_get_obj_by_type(topo, HWLOC_OBJ_CORE, i);
        CoreInfo c;
        c.pus = pus_of(core->cpuset);
        if (c.pus.empty()) continue;
        hwloc_obj_t pkg = hwloc_get_ancestor_obj_by_type(topo, HWLOC_OBJ_PACKAGE, core);
        c.package = pkg ? int(pkg->logical_index) : 0;
        t.cores.push_back(std::move(c));
    }
    const hwloc_obj_type_t levels[] = {HWLOC_OBJ_L1CACHE, HWLOC_OBJ_L2CACHE, HWLOC_OBJ_L3CACHE};
    for (int l = 0; l < 3; ++l) {
        const int n = hwloc_get_nbobjs_by_type(topo, levels[l]);
        if (n <= 0) continue;
        hwloc_obj_t o = hwloc_get_obj_by_type(topo, levels[l], 0);
        CacheInfo c;
        c.level = l + 1;
        c.bytes = o->attr->cache.size;
        c.instances = n;
        c.pus_per_instance = hwloc_bitmap_weight(o->cpuset);
        t.caches.push_back(c);
    }
    hwloc_topology_destroy(topo);
    read_numa(t);
    return t;
}

}  // namespace mf
