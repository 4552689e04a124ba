#include "codegen/cuda/copy_bandwidth.hpp"

#include <algorithm>

#include "codegen/cuda/cuda_memory.hpp"
#include "codegen/cuda/cuda_stream.hpp"

namespace mf {

double measure_device_copy_bandwidth(CuStream stream, size_t bytes) {
    DeviceBuffer a(bytes), b(bytes);
    a.fill_bytes(0x5a);
    CudaEvent e0, e1;
    double best = 0;
    for (int rep = 0; rep < 6; ++rep) {
        e0.record(stream);
        for (int i = 0; i < 4; ++i)
            cu_check(cuda_driver().memcpy_dtod_async(b.ptr(), a.ptr(), bytes, stream), "cuMemcpyDtoDAsync");
        e1.record(stream);
        e1.synchronize();
        if (rep) best = std::max(best, 2.0 * 4 * double(bytes) / (double(e1.elapsed_ms_since(e0)) * 1e-3));
    }
    return best;
}

}  // namespace mf
