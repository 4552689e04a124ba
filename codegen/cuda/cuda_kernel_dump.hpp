// What kernel-dump prints for one CUDA kernel: the instantiation source (and the embedded headers it
// includes), the PTX, and SASS where cuobjdump or nvdisasm is installed. Needs NVRTC, not a GPU.
//
// kernel-dump calls it per CUDA kernel of the plan:
//     const CudaKernelSource src = mla_decode_source(desc, config, sm);   // or any family's *_source()
//     const CudaKernelDump dump = dump_cuda_kernel(src, CudaArch::for_device(sm / 10, sm % 10));
//     print dump.name, dump.arch, dump.cubin_bytes, dump.source, dump.ptx, then dump.sass or
//     dump.sass_missing; embedded_cuda_headers() (codegen/cuda/embedded_headers.hpp) has the text of each
//     header in dump.includes.
#pragma once
#include <string>
#include <vector>

#include "codegen/cuda/cuda_kernel_source.hpp"

namespace mf {

struct CudaKernelDump {
    std::string name;
    std::string arch;                   // "sm_90a"
    std::string source;                 // the instantiation stub
    std::vector<std::string> includes;  // embedded headers the stub includes, directly or not
    std::string ptx;                    // for arch.compute_name()
    size_t cubin_bytes = 0;
    std::string sass;          // empty when no disassembler was found
    std::string sass_tool;     // the command that produced `sass`
    std::string sass_missing;  // why `sass` is empty
};

// Throws std::runtime_error when NVRTC is missing or rejects the source.
CudaKernelDump dump_cuda_kernel(const CudaKernelSource& src, const CudaArch& arch);

// Path of cuobjdump or nvdisasm ($CUDA_HOME/bin, /usr/local/cuda/bin, then PATH); empty when neither exists.
std::string find_sass_disassembler();

}  // namespace mf
