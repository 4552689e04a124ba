#include "codegen/cuda/cuda_driver.hpp"

#include <dlfcn.h>

#include <mutex>
#include <stdexcept>
#include <string>

namespace mf {
namespace {

constexpr int kAttrSmCount = 16, kAttrMemClockKhz = 36, kAttrBusWidth = 37, kAttrL2Bytes = 38,
              kAttrCcMajor = 75, kAttrCcMinor = 76;

template <class F>
bool resolve(void* lib, const char* name, F& fn) {
    fn = reinterpret_cast<F>(dlsym(lib, name));
    return fn != nullptr;
}

struct LoadedDriver {
    CudaDriverApi api{};
    std::string why;  // empty when api is usable
};

LoadedDriver load_driver() {
    LoadedDriver d;
    void* lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        d.why = "no NVIDIA driver (libcuda.so.1 not found)";
        return d;
    }
    CudaDriverApi& a = d.api;
    std::string missing;
    auto need = [&](const char* name, auto& fn) {
        if (!resolve(lib, name, fn)) missing += std::string(missing.empty() ? "" : ", ") + name;
    };
    need("cuInit", a.init);
    need("cuDriverGetVersion", a.driver_get_version);
    need("cuDeviceGetCount", a.device_get_count);
    need("cuDeviceGet", a.device_get);
    need("cuDeviceGetName", a.device_get_name);
    need("cuDeviceGetAttribute", a.device_get_attribute);
    need("cuDeviceTotalMem_v2", a.device_total_mem);
    need("cuDevicePrimaryCtxRetain", a.primary_ctx_retain);
    need("cuDevicePrimaryCtxRelease_v2", a.primary_ctx_release);
    need("cuCtxSetCurrent", a.ctx_set_current);
    need("cuCtxSynchronize", a.ctx_synchronize);
    need("cuModuleLoadData", a.module_load_data);
    need("cuModuleUnload", a.module_unload);
    need("cuModuleGetFunction", a.module_get_function);
    need("cuFuncSetAttribute", a.func_set_attribute);
    need("cuFuncGetAttribute", a.func_get_attribute);
    need("cuLaunchKernel", a.launch_kernel);
    need("cuMemAlloc_v2", a.mem_alloc);
    need("cuMemFree_v2", a.mem_free);
    need("cuMemHostAlloc", a.mem_host_alloc);
    need("cuMemFreeHost", a.mem_free_host);
    need("cuMemGetInfo_v2", a.mem_get_info);
    need("cuMemcpyHtoD_v2", a.memcpy_htod);
    need("cuMemcpyDtoH_v2", a.memcpy_dtoh);
    need("cuMemcpyDtoD_v2", a.memcpy_dtod);
    need("cuMemcpyHtoDAsync_v2", a.memcpy_htod_async);
    need("cuMemcpyDtoHAsync_v2", a.memcpy_dtoh_async);
    need("cuMemcpyDtoDAsync_v2", a.memcpy_dtod_async);
    need("cuMemsetD8_v2", a.memset_d8);
    need("cuMemsetD8Async", a.memset_d8_async);
    need("cuStreamCreate", a.stream_create);
    need("cuStreamDestroy_v2", a.stream_destroy);
    need("cuStreamSynchronize", a.stream_synchronize);
    need("cuStreamWaitEvent", a.stream_wait_event);
    need("cuStreamBeginCapture_v2", a.stream_begin_capture);
    need("cuStreamEndCapture", a.stream_end_capture);
    need("cuGraphInstantiateWithFlags", a.graph_instantiate);
    need("cuGraphLaunch", a.graph_launch);
    need("cuGraphExecDestroy", a.graph_exec_destroy);
    need("cuGraphDestroy", a.graph_destroy);
    need("cuEventCreate", a.event_create);
    need("cuEventRecord", a.event_record);
    need("cuEventSynchronize", a.event_synchronize);
    if (!resolve(lib, "cuEventElapsedTime_v2", a.event_elapsed_time))
        need("cuEventElapsedTime", a.event_elapsed_time);
    need("cuEventDestroy_v2", a.event_destroy);
    need("cuGetErrorName", a.get_error_name);
    need("cuGetErrorString", a.get_error_string);
    resolve(lib, "cuMemHostRegister_v2", a.mem_host_register);
    resolve(lib, "cuMemHostUnregister", a.mem_host_unregister);
    resolve(lib, "cuLaunchHostFunc", a.launch_host_func);
    resolve(lib, "cuStreamQuery", a.stream_query);
    resolve(lib, "cuEventQuery", a.event_query);
    resolve(lib, "cuLaunchKernelEx", a.launch_kernel_ex);
    resolve(lib, "cuTensorMapEncodeTiled", a.tensor_map_encode_tiled);
    resolve(lib, "cuCtxGetDevice", a.ctx_get_device);
    resolve(lib, "cuOccupancyMaxActiveBlocksPerMultiprocessor", a.occupancy_max_active_blocks);
    resolve(lib, "cuOccupancyMaxActiveClusters", a.occupancy_max_active_clusters);
    if (!missing.empty()) {
        d.why = "libcuda.so.1 lacks driver entry points moeforge needs (" + missing +
                "): update the NVIDIA driver";
        return d;
    }
    if (CuResult r = a.init(0); r != 0) {
        const char* s = nullptr;
        a.get_error_string(r, &s);
        d.why = std::string("cuInit failed: ") + (s ? s : "error " + std::to_string(r));
    }
    // The library stays loaded: unloading a driver is never worth the risk.
    return d;
}

const LoadedDriver& driver_once() {
    static const LoadedDriver d = load_driver();
    return d;
}

}  // namespace

const CudaDriverApi* try_cuda_driver(std::string* why) {
    const LoadedDriver& d = driver_once();
    if (!d.why.empty()) {
        if (why) *why = d.why;
        return nullptr;
    }
    return &d.api;
}

const CudaDriverApi& cuda_driver() {
    std::string why;
    const CudaDriverApi* api = try_cuda_driver(&why);
    if (!api) throw std::runtime_error("CUDA is unavailable: " + why);
    return *api;
}

void cu_check(CuResult r, const char* what) {
    if (r == 0) return;
    std::string msg = std::string("CUDA driver: ") + what + " failed: ";
    const CudaDriverApi* api = try_cuda_driver();
    const char* name = nullptr;
    const char* text = nullptr;
    if (api) {
        api->get_error_name(r, &name);
        api->get_error_string(r, &text);
    }
    msg += name ? name : "error " + std::to_string(r);
    if (text) msg += std::string(": ") + text;
    throw std::runtime_error(msg);
}

GpuQuery query_cuda_gpus() {
    GpuQuery q;
    std::string why;
    const CudaDriverApi* d = try_cuda_driver(&why);
    if (!d) {
        q.unavailable = why;
        return q;
    }
    d->driver_get_version(&q.driver_version);
    int count = 0;
    if (CuResult r = d->device_get_count(&count); r != 0 || count == 0) {
        q.unavailable = r ? "cuDeviceGetCount failed (error " + std::to_string(r) + ")"
                          : "the driver reports no CUDA device";
        return q;
    }
    for (int i = 0; i < count; ++i) {
        CuDevice dev;
        if (d->device_get(&dev, i) != 0) continue;
        GpuInfo g;
        g.ordinal = i;
        char name[256] = {};
        d->device_get_name(name, sizeof(name) - 1, dev);
        g.name = name;
        d->device_get_attribute(&g.cc_major, kAttrCcMajor, dev);
        d->device_get_attribute(&g.cc_minor, kAttrCcMinor, dev);
        d->device_get_attribute(&g.sms, kAttrSmCount, dev);
        d->device_get_attribute(&g.memory_clock_khz, kAttrMemClockKhz, dev);
        d->device_get_attribute(&g.memory_bus_bits, kAttrBusWidth, dev);
        d->device_get_attribute(&g.l2_bytes, kAttrL2Bytes, dev);
        d->device_get_attribute(&g.max_smem_per_block_optin, kCuAttrMaxSmemPerBlockOptin, dev);
        size_t mem = 0;
        d->device_total_mem(&mem, dev);
        g.memory_bytes = mem;
        q.gpus.push_back(std::move(g));
    }
    return q;
}

}  // namespace mf
