// A loaded CUBIN and its kernel: the runtime resolves each plan kernel to a CudaKernel once, then only
// launches.
#pragma once
#include <string>

#include "codegen/cuda/cuda_driver.hpp"

namespace mf {

struct Dim3 {
    unsigned x = 1, y = 1, z = 1;
};

// The attributes of one launch (CudaKernel::launch_with); all off: a plain cuLaunchKernel.
struct CudaLaunchOptions {
    unsigned cluster_x = 0;    // > 0: thread-block clusters of cluster_x x 1 x 1 CTAs (as launch_cluster)
    bool cooperative = false;  // all CTAs resident at once (as launch_cooperative)
    bool dependent = false;    // programmatic dependent of the previous kernel in the stream (as launch_dependent)
};

class CudaKernel {
  public:
    // Loads `cubin` into the current context and looks up the extern "C" symbol `name`; raises the kernel's
    // dynamic shared-memory limit to `dynamic_smem_bytes` when that is above the default 48 KiB.
    CudaKernel(const std::string& cubin, const std::string& name, unsigned block_threads,
               unsigned dynamic_smem_bytes);
    ~CudaKernel();
    CudaKernel(const CudaKernel&) = delete;
    CudaKernel& operator=(const CudaKernel&) = delete;

    // One params struct passed by value (the kernel's only argument).
    template <class Params>
    void launch(Dim3 grid, const Params& params, CuStream stream) const {
        launch_raw(grid, &params, stream);
    }
    void launch_raw(Dim3 grid, const void* params, CuStream stream) const;
    // Programmatic dependent launch (sm_90+): this kernel may start while the previous kernel in `stream`
    // still runs; it must execute griddepcontrol.wait before reading that kernel's results. Falls back to
    // launch() where the driver lacks cuLaunchKernelEx. Capturable into CUDA graphs.
    template <class Params>
    void launch_dependent(Dim3 grid, const Params& params, CuStream stream) const {
        launch_dependent_raw(grid, &params, stream);
    }
    void launch_dependent_raw(Dim3 grid, const void* params, CuStream stream) const;
    // Cooperative launch (cuLaunchKernelEx with the cooperative attribute; capturable into CUDA graphs, where
    // the kernel node keeps the attribute): all CTAs of the grid are resident at once, so they may wait for
    // each other. The grid must not exceed max_resident_ctas(). Throws when the driver lacks cuLaunchKernelEx.
    template <class Params>
    void launch_cooperative(Dim3 grid, const Params& params, CuStream stream) const {
        launch_cooperative_raw(grid, &params, stream);
    }
    void launch_cooperative_raw(Dim3 grid, const void* params, CuStream stream) const;
    // One launch with any of the attributes above together (cuLaunchKernelEx with each one set; none: launch()). A
    // dependent launch alone falls back to launch() where the driver lacks cuLaunchKernelEx; the others throw there.
    template <class Params>
    void launch_with(Dim3 grid, const CudaLaunchOptions& options, const Params& params, CuStream stream) const {
        launch_with_raw(grid, options, &params, stream);
    }
    void launch_with_raw(Dim3 grid, const CudaLaunchOptions& options, const void* params, CuStream stream) const;
    // How many CTAs of this kernel a cooperative launch may have on the current context's device (CTAs per SM
    // by occupancy x SMs); 0 when the device or driver cannot launch cooperatively.
    int max_resident_ctas() const;
    // Launch as thread-block clusters of `cluster_x` x 1 x 1 CTAs (cuLaunchKernelEx with the cluster dimension;
    // capturable into CUDA graphs); grid.x must be a multiple of cluster_x. A size above 8 (non-portable) needs
    // max_active_clusters(cluster_x) to have been asked first (it allows such sizes for this kernel).
    template <class Params>
    void launch_cluster(Dim3 grid, unsigned cluster_x, const Params& params, CuStream stream) const {
        launch_cluster_raw(grid, cluster_x, &params, stream);
    }
    void launch_cluster_raw(Dim3 grid, unsigned cluster_x, const void* params, CuStream stream) const;
    // How many clusters of `cluster_x` CTAs of this kernel the current context's device holds at once
    // (cuOccupancyMaxActiveClusters); 0 when it holds none or the driver cannot tell. Allows non-portable
    // cluster sizes (above 8) for this kernel first. Not inside a stream capture.
    int max_active_clusters(unsigned cluster_x) const;

    const std::string& name() const { return name_; }
    unsigned block_threads() const { return block_threads_; }
    unsigned dynamic_smem_bytes() const { return smem_; }
    int registers() const;    // per thread, from the driver
    int local_bytes() const;  // stack frame / spills per thread

  private:
    CuModule module_ = nullptr;
    CuFunction fn_ = nullptr;
    std::string name_;
    unsigned block_threads_ = 0, smem_ = 0;
};

}  // namespace mf
