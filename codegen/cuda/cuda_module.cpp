#include "codegen/cuda/cuda_module.hpp"

#include <cstring>
#include <stdexcept>

namespace mf {

CudaKernel::CudaKernel(const std::string& cubin, const std::string& name, unsigned block_threads,
                       unsigned dynamic_smem_bytes)
    : name_(name), block_threads_(block_threads), smem_(dynamic_smem_bytes) {
    const CudaDriverApi& d = cuda_driver();
    cu_check(d.module_load_data(&module_, cubin.data()), ("cuModuleLoadData for " + name).c_str());
    if (CuResult r = d.module_get_function(&fn_, module_, name.c_str()); r != 0) {
        d.module_unload(module_);
        cu_check(r, ("cuModuleGetFunction " + name).c_str());
    }
    if (dynamic_smem_bytes > 48 * 1024) {
        if (CuResult r =
                d.func_set_attribute(fn_, kCuFuncAttrMaxDynamicSmem, static_cast<int>(dynamic_smem_bytes));
            r != 0) {
            d.module_unload(module_);
            cu_check(r, ("raising the shared-memory limit of " + name + " to " +
                         std::to_string(dynamic_smem_bytes) + " bytes")
                            .c_str());
        }
    }
}

CudaKernel::~CudaKernel() {
    if (module_) cuda_driver().module_unload(module_);
}

void CudaKernel::launch_raw(Dim3 grid, const void* params, CuStream stream) const {
    void* args[] = {const_cast<void*>(params)};
    CuResult r = cuda_driver().launch_kernel(fn_, grid.x, grid.y, grid.z, block_threads_, 1, 1, smem_, stream,
                                             args, nullptr);
    if (r != 0) cu_check(r, ("cuLaunchKernel " + name_).c_str());
}

namespace {

// cuda.h's CUlaunchAttribute / CUlaunchConfig (driver ABI): id, 4 bytes padding, a 64-byte value union.
struct CuLaunchAttribute {
    int id;
    char pad[4];
    union {
        char bytes[64];
        int i;
    } value;
};
struct CuLaunchConfig {
    unsigned grid_x, grid_y, grid_z, block_x, block_y, block_z, smem;
    CuStream stream;
    CuLaunchAttribute* attrs;
    unsigned num_attrs;
};
static_assert(sizeof(CuLaunchAttribute) == 72, "CUlaunchAttribute layout");
static_assert(sizeof(CuLaunchConfig) == 56, "CUlaunchConfig layout");
constexpr int kCuLaunchAttrProgrammaticStreamSerialization = 6;
constexpr int kCuLaunchAttrCooperative = 2;
constexpr int kCuLaunchAttrClusterDimension = 4;

CuLaunchAttribute cluster_attribute(unsigned cluster_x) {
    CuLaunchAttribute attr{};
    attr.id = kCuLaunchAttrClusterDimension;
    const unsigned dim[3] = {cluster_x, 1, 1};  // CUlaunchAttributeValue::clusterDim {x, y, z}
    std::memcpy(attr.value.bytes, dim, sizeof dim);
    return attr;
}

// A launch attribute whose value is the flag 1 (programmatic serialization, cooperative).
CuLaunchAttribute flag_attribute(int id) {
    CuLaunchAttribute attr{};
    attr.id = id;
    attr.value.i = 1;
    return attr;
}

// One cuLaunchKernelEx with a single launch attribute.
void launch_with_attribute(CuFunction fn, Dim3 grid, unsigned block_threads, unsigned smem, const void* params,
                           CuStream stream, CuLaunchAttribute attr, const std::string& what) {
    CuLaunchConfig cfg{grid.x, grid.y, grid.z, block_threads, 1, 1, smem, stream, &attr, 1};
    void* args[] = {const_cast<void*>(params)};
    if (CuResult r = cuda_driver().launch_kernel_ex(&cfg, fn, args, nullptr); r != 0) cu_check(r, what.c_str());
}

}  // namespace

void CudaKernel::launch_dependent_raw(Dim3 grid, const void* params, CuStream stream) const {
    if (!cuda_driver().launch_kernel_ex) return launch_raw(grid, params, stream);
    launch_with_attribute(fn_, grid, block_threads_, smem_, params, stream,
                          flag_attribute(kCuLaunchAttrProgrammaticStreamSerialization), "cuLaunchKernelEx " + name_);
}

void CudaKernel::launch_cooperative_raw(Dim3 grid, const void* params, CuStream stream) const {
    if (!cuda_driver().launch_kernel_ex)
        throw std::runtime_error("cooperative launch of " + name_ + ": the CUDA driver lacks cuLaunchKernelEx");
    launch_with_attribute(fn_, grid, block_threads_, smem_, params, stream, flag_attribute(kCuLaunchAttrCooperative),
                          "cuLaunchKernelEx (cooperative) " + name_);
}

void CudaKernel::launch_cluster_raw(Dim3 grid, unsigned cluster_x, const void* params, CuStream stream) const {
    if (!cuda_driver().launch_kernel_ex)
        throw std::runtime_error("cluster launch of " + name_ + ": the CUDA driver lacks cuLaunchKernelEx");
    launch_with_attribute(fn_, grid, block_threads_, smem_, params, stream, cluster_attribute(cluster_x),
                          "cuLaunchKernelEx (cluster of " + std::to_string(cluster_x) + ") " + name_);
}

void CudaKernel::launch_with_raw(Dim3 grid, const CudaLaunchOptions& options, const void* params,
                                 CuStream stream) const {
    const bool only_dependent = !options.cluster_x && !options.cooperative;
    if (only_dependent && !options.dependent) return launch_raw(grid, params, stream);
    if (only_dependent && !cuda_driver().launch_kernel_ex) return launch_raw(grid, params, stream);
    if (!cuda_driver().launch_kernel_ex)
        throw std::runtime_error("launch of " + name_ + ": the CUDA driver lacks cuLaunchKernelEx");
    CuLaunchAttribute attrs[3];
    unsigned n = 0;
    std::string what = "cuLaunchKernelEx (";
    if (options.cluster_x) {
        attrs[n++] = cluster_attribute(options.cluster_x);
        what += "cluster of " + std::to_string(options.cluster_x) + " ";
    }
    if (options.cooperative) {
        attrs[n++] = flag_attribute(kCuLaunchAttrCooperative);
        what += "cooperative ";
    }
    if (options.dependent) {
        attrs[n++] = flag_attribute(kCuLaunchAttrProgrammaticStreamSerialization);
        what += "programmatic ";
    }
    what.back() = ')';
    CuLaunchConfig cfg{grid.x, grid.y, grid.z, block_threads_, 1, 1, smem_, stream, attrs, n};
    void* args[] = {const_cast<void*>(params)};
    if (CuResult r = cuda_driver().launch_kernel_ex(&cfg, fn_, args, nullptr); r != 0)
        cu_check(r, (what + " " + name_).c_str());
}

int CudaKernel::max_active_clusters(unsigned cluster_x) const {
    const CudaDriverApi& d = cuda_driver();
    if (!d.occupancy_max_active_clusters || !d.launch_kernel_ex) return 0;
    if (cluster_x > 8 && d.func_set_attribute(fn_, kCuFuncAttrNonPortableClusterSizeAllowed, 1) != 0) return 0;
    CuLaunchAttribute attr = cluster_attribute(cluster_x);
    CuLaunchConfig cfg{cluster_x, 1, 1, block_threads_, 1, 1, smem_, nullptr, &attr, 1};
    int n = 0;
    return d.occupancy_max_active_clusters(&n, fn_, &cfg) == 0 ? n : 0;
}

int CudaKernel::max_resident_ctas() const {
    const CudaDriverApi& d = cuda_driver();
    if (!d.launch_kernel_ex || !d.ctx_get_device || !d.occupancy_max_active_blocks) return 0;
    CuDevice dev = 0;
    int coop = 0, sms = 0, per_sm = 0;
    if (d.ctx_get_device(&dev) != 0 || d.device_get_attribute(&coop, kCuAttrCooperativeLaunch, dev) != 0 ||
        d.device_get_attribute(&sms, kCuAttrMultiprocessorCount, dev) != 0 ||
        d.occupancy_max_active_blocks(&per_sm, fn_, static_cast<int>(block_threads_), smem_) != 0)
        return 0;
    return coop ? per_sm * sms : 0;
}

int CudaKernel::registers() const {
    int v = 0;
    cu_check(cuda_driver().func_get_attribute(&v, kCuFuncAttrNumRegs, fn_), "cuFuncGetAttribute");
    return v;
}

int CudaKernel::local_bytes() const {
    int v = 0;
    cu_check(cuda_driver().func_get_attribute(&v, kCuFuncAttrLocalBytes, fn_), "cuFuncGetAttribute");
    return v;
}

}  // namespace mf
