// Programmatic dependent launch (sm_90+) as inline PTX. A kernel launched with the programmatic-serialization
// attribute (CudaKernel::launch_dependent) may start before the previous kernel of its stream has finished:
// it must call griddep_wait() before reading that kernel's results (the wait returns once the previous grid
// has completed and its memory is visible; at once when not launched that way). The previous kernel may call
// griddep_launch_dependents() to let the dependent grid start early. No-ops before sm_90.
#pragma once

namespace mf {

__device__ __forceinline__ void griddep_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}

__device__ __forceinline__ void griddep_launch_dependents() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}

}  // namespace mf
