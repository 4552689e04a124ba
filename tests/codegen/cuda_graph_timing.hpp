// The cuda benches' timing: a captured graph replayed in 5 batches after one warm-up replay, the median batch's time
// per replay divided by the launches each replay holds (the rotation sets that keep the cache out of L2).
#pragma once

#include <algorithm>
#include <vector>

#include "codegen/cuda/cuda_stream.hpp"

namespace mf::test {

inline double graph_replay_us(const CudaGraph& g, const CudaStream& stream, int launches_per_replay) {
    g.launch(stream.get());
    stream.synchronize();
    const int n = std::max(1, std::max(3, 2000 / launches_per_replay) / 5);
    std::vector<double> t;
    for (int rep = 0; rep < 5; ++rep) {
        CudaEvent e0, e1;
        e0.record(stream.get());
        for (int i = 0; i < n; ++i) g.launch(stream.get());
        e1.record(stream.get());
        e1.synchronize();
        t.push_back(e1.elapsed_ms_since(e0) * 1e3 / (double(n) * launches_per_replay));
    }
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
}

}  // namespace mf::test
