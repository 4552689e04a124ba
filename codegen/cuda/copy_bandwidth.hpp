// The device's memory bandwidth as a large device-to-device copy measures it: the floor that attention kernels
// reading the KV cache are compared against (the tuner's MLA search and the MLA decode benchmark).
#pragma once
#include <cstddef>

#include "codegen/cuda/cuda_driver.hpp"

namespace mf {

// (read + write) bytes per second of copying `bytes` on `stream`, best of 5 timed rounds after a warm-up. Needs a
// current CudaContext; allocates 2 x bytes of device memory for the duration.
double measure_device_copy_bandwidth(CuStream stream, size_t bytes = size_t(512) << 20);

}  // namespace mf
