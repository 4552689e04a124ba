// The CUDA driver API, loaded with dlopen so one binary runs with or without an NVIDIA driver.
// Handles and entry points are declared here with the driver's stable C ABI, so no CUDA header is needed.
#pragma once
#include <cstddef>
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
    int l2_bytes = 0;
    int max_smem_per_block_optin = 0;  // bytes of dynamic shared memory a kernel may opt in to
};

struct GpuQuery {
    std::vector<GpuInfo> gpus;
    int driver_version = 0;   // e.g. 13000; 0 when no driver was loaded
    std::string unavailable;  // why no GPU is listed (empty when gpus is non-empty)
};

// Never throws: a machine without a driver or device is a normal answer.
GpuQuery query_cuda_gpus();

// Opaque driver handles (the same pointers cuda.h calls CUcontext, CUmodule, ...).
using CuResult = int;
using CuDevice = int;
using CuDevicePtr = unsigned long long;
using CuContext = struct CuContextOpaque*;
using CuModule = struct CuModuleOpaque*;
using CuFunction = struct CuFunctionOpaque*;
using CuStream = struct CuStreamOpaque*;
using CuEvent = struct CuEventOpaque*;
using CuGraph = struct CuGraphOpaque*;
using CuGraphExec = struct CuGraphExecOpaque*;

// The driver entry points moeforge uses (versioned symbols as cuda.h 13 maps them).
struct CudaDriverApi {
    CuResult (*init)(unsigned);
    CuResult (*driver_get_version)(int*);
    CuResult (*device_get_count)(int*);
    CuResult (*device_get)(CuDevice*, int);
    CuResult (*device_get_name)(char*, int, CuDevice);
    CuResult (*device_get_attribute)(int*, int, CuDevice);
    CuResult (*device_total_mem)(size_t*, CuDevice);
    CuResult (*primary_ctx_retain)(CuContext*, CuDevice);
    CuResult (*primary_ctx_release)(CuDevice);
    CuResult (*ctx_set_current)(CuContext);
    CuResult (*ctx_synchronize)();
    CuResult (*module_load_data)(CuModule*, const void*);
    CuResult (*module_unload)(CuModule);
    CuResult (*module_get_function)(CuFunction*, CuModule, const char*);
    CuResult (*func_set_attribute)(CuFunction, int, int);
    CuResult (*func_get_attribute)(int*, int, CuFunction);
    CuResult (*launch_kernel)(CuFunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
                              unsigned, CuStream, void**, void**);
    CuResult (*mem_alloc)(CuDevicePtr*, size_t);
    CuResult (*mem_free)(CuDevicePtr);
    CuResult (*mem_host_alloc)(void**, size_t, unsigned);
    CuResult (*mem_free_host)(void*);
    CuResult (*mem_get_info)(size_t*, size_t*);
    CuResult (*memcpy_htod)(CuDevicePtr, const void*, size_t);
    CuResult (*memcpy_dtoh)(void*, CuDevicePtr, size_t);
    CuResult (*memcpy_dtod)(CuDevicePtr, CuDevicePtr, size_t);
    CuResult (*memcpy_htod_async)(CuDevicePtr, const void*, size_t, CuStream);
    CuResult (*memcpy_dtoh_async)(void*, CuDevicePtr, size_t, CuStream);
    CuResult (*memcpy_dtod_async)(CuDevicePtr, CuDevicePtr, size_t, CuStream);
    CuResult (*memset_d8)(CuDevicePtr, unsigned char, size_t);
    CuResult (*memset_d8_async)(CuDevicePtr, unsigned char, size_t, CuStream);
    CuResult (*stream_create)(CuStream*, unsigned);
    CuResult (*stream_destroy)(CuStream);
    CuResult (*stream_synchronize)(CuStream);
    CuResult (*stream_wait_event)(CuStream, CuEvent, unsigned);
    CuResult (*stream_begin_capture)(CuStream, int);
    CuResult (*stream_end_capture)(CuStream, CuGraph*);
    CuResult (*graph_instantiate)(CuGraphExec*, CuGraph, unsigned long long);
    CuResult (*graph_launch)(CuGraphExec, CuStream);
    CuResult (*graph_exec_destroy)(CuGraphExec);
    CuResult (*graph_destroy)(CuGraph);
    CuResult (*event_create)(CuEvent*, unsigned);
    CuResult (*event_record)(CuEvent, CuStream);
    CuResult (*event_synchronize)(CuEvent);
    CuResult (*event_elapsed_time)(float*, CuEvent, CuEvent);
    CuResult (*event_destroy)(CuEvent);
    CuResult (*get_error_name)(CuResult, const char**);
    CuResult (*get_error_string)(CuResult, const char**);
    // Optional (null when the driver lacks them): for the CPU/GPU hand-off of the hybrid executor.
    CuResult (*mem_host_register)(void*, size_t, unsigned);  // pin existing host memory
    CuResult (*mem_host_unregister)(void*);
    CuResult (*launch_host_func)(CuStream, void (*)(void*), void*);  // a host callback in stream order
    CuResult (*stream_query)(CuStream);  // 0: idle; 600 (CUDA_ERROR_NOT_READY): busy
    CuResult (*event_query)(CuEvent);
    // Optional: cuLaunchKernelEx (launch attributes: programmatic dependent launch). `config` is a
    // CuLaunchConfig (cuda_module.cpp), laid out as cuda.h's CUlaunchConfig.
    CuResult (*launch_kernel_ex)(const void* config, CuFunction, void**, void**);
    // Optional: cuTensorMapEncodeTiled (TMA descriptors, sm_90+). `map` points to 128 bytes, 64-byte aligned.
    CuResult (*tensor_map_encode_tiled)(void* map, int dtype, uint32_t rank, void* global, const uint64_t* dims,
                                        const uint64_t* strides, const uint32_t* box,
                                        const uint32_t* elem_strides, int interleave, int swizzle, int l2_promotion,
                                        int oob_fill);
    // Optional: for cooperative launches (the fused MLA combine): the current context's device and how many CTAs
    // of a kernel fit on one SM.
    CuResult (*ctx_get_device)(CuDevice*);
    CuResult (*occupancy_max_active_blocks)(int*, CuFunction, int, size_t);
    // Optional: how many clusters of a launch configuration (a CuLaunchConfig with the cluster dimension) can be
    // resident at once (thread-block clusters, sm_90+).
    CuResult (*occupancy_max_active_clusters)(int*, CuFunction, const void* config);
};

// Driver constants used by moeforge (values from cuda.h).
inline constexpr int kCuAttrMaxSmemPerBlockOptin = 97;
inline constexpr int kCuAttrMultiprocessorCount = 16;
inline constexpr int kCuAttrCooperativeLaunch = 95;
inline constexpr int kCuFuncAttrMaxDynamicSmem = 8;
inline constexpr int kCuFuncAttrNumRegs = 4;
inline constexpr int kCuFuncAttrLocalBytes = 3;
inline constexpr int kCuFuncAttrNonPortableClusterSizeAllowed = 14;
inline constexpr unsigned kCuStreamNonBlocking = 1;
inline constexpr int kCuCaptureModeThreadLocal = 1;
inline constexpr unsigned kCuMemHostAllocPortable = 1;
inline constexpr unsigned kCuMemHostRegisterPortable = 1;
inline constexpr CuResult kCuErrorNotReady = 600;
inline constexpr int kCuTensorMapBf16 = 9;  // CU_TENSOR_MAP_DATA_TYPE_BFLOAT16
inline constexpr int kCuTensorMapInterleaveNone = 0;
inline constexpr int kCuTensorMapSwizzle128B = 3;
inline constexpr int kCuTensorMapL2Promotion256B = 3;
inline constexpr int kCuTensorMapOobFillNone = 0;

// Loads libcuda.so.1 once (thread-safe) and calls cuInit. Returns null and sets *why when that fails.
const CudaDriverApi* try_cuda_driver(std::string* why = nullptr);
// Same, but throws std::runtime_error naming the reason.
const CudaDriverApi& cuda_driver();

// Throws std::runtime_error "CUDA driver: <what> failed: <error name>: <error string>" when r != 0.
void cu_check(CuResult r, const char* what);

}  // namespace mf
