#include "codegen/cuda/cuda_driver.hpp"

#include <dlfcn.h>

#include <string>

namespace mf {
namespace {

// The few driver entry points the profile needs, declared with their stable C ABI so no CUDA header is required.
using CuResult = int;
using CuDevice = int;
constexpr int kAttrSmCount = 16, kAttrMemClockKhz = 36, kAttrBusWidth = 37, kAttrCcMajor = 75, kAttrCcMinor = 76;

struct DriverFns {
    CuResult (*init)(unsigned) = nullptr;
    CuResult (*driver_version)(int*) = nullptr;
    CuResult (*device_count)(int*) = nullptr;
    CuResult (*device_get)(CuDevice*, int) = nullptr;
    CuResult (*device_name)(char*, int, CuDevice) = nullptr;
    CuResult (*device_attr)(int*, int, CuDevice) = nullptr;
    CuResult (*device_mem)(size_t*, CuDevice) = nullptr;
    CuResult (*error_string)(CuResult, const char**) = nullptr;
};

template <class F>
bool resolve(void* lib, const char* name, F& fn) {
    fn = reinterpret_cast<F>(dlsym(lib, name));
    return fn != nullptr;
}

std::string describe(const DriverFns& d, CuResult r) {
    const char* s = nullptr;
    if (d.error_string && d.error_string(r, &s) == 0 && s) return s;
    return "CUDA error " + std::to_string(r);
}

}  // namespace

GpuQuery query_cuda_gpus() {
    GpuQuery q;
    void* lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        q.unavailable = "no NVIDIA driver (libcuda.so.1 not found)";
        return q;
    }
    DriverFns d;
    bool ok = resolve(lib, "cuInit", d.init) && resolve(lib, "cuDriverGetVersion", d.driver_version) &&
              resolve(lib, "cuDeviceGetCount", d.device_count) && resolve(lib, "cuDeviceGet", d.device_get) &&
              resolve(lib, "cuDeviceGetName", d.device_name) &&
              resolve(lib, "cuDeviceGetAttribute", d.device_attr) &&
              resolve(lib, "cuDeviceTotalMem_v2", d.device_mem);
    resolve(lib, "cuGetErrorString", d.error_string);
    if (!ok) {
        q.unavailable = "libcuda.so.1 lacks the driver API entry points moeforge needs";
        return q;
    }
    d.driver_version(&q.driver_version);
    if (CuResult r = d.init(0); r != 0) {
        q.unavailable = "cuInit failed: " + describe(d, r);
        return q;
    }
    int count = 0;
    if (CuResult r = d.device_count(&count); r != 0 || count == 0) {
        q.unavailable = r ? "cuDeviceGetCount failed: " + describe(d, r) : "the driver reports no CUDA device";
        return q;
    }
    for (int i = 0; i < count; ++i) {
        CuDevice dev;
        if (d.device_get(&dev, i) != 0) continue;
        GpuInfo g;
        g.ordinal = i;
        char name[256] = {};
        d.device_name(name, sizeof(name) - 1, dev);
        g.name = name;
        d.device_attr(&g.cc_major, kAttrCcMajor, dev);
        d.device_attr(&g.cc_minor, kAttrCcMinor, dev);
        d.device_attr(&g.sms, kAttrSmCount, dev);
        d.device_attr(&g.memory_clock_khz, kAttrMemClockKhz, dev);
        d.device_attr(&g.memory_bus_bits, kAttrBusWidth, dev);
        size_t mem = 0;
        d.device_mem(&mem, dev);
        g.memory_bytes = mem;
        q.gpus.push_back(std::move(g));
    }
    // The library stays loaded: the runtime will use it again and unloading a driver is never worth the risk.
    return q;
}

}  // namespace mf
