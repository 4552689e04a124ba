// The CUDA driver API, loaded with dlopen so one binary runs with or without an NVIDIA driver.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace mf {

struct GpuInfo {
    int ordinal = 0;
    std::string name;
    int cc_major = 0, cc_minor = 0;
    int sms = 0;
    uint64_t memory_bytes = 0;
    int memory_clock_khz = 0;
    int memory_bus_bits = 0;
};

struct GpuQuery {
    std::vector<GpuInfo> gpus;
    int driver_version = 0;    // e.g. 13000; 0 when no driver was loaded
    std::string unavailable;   // why no GPU is listed (empty when gpus is non-empty)
};

// Never throws: a machine without a driver or device is a normal answer.
GpuQuery query_cuda_gpus();

}  // namespace mf
