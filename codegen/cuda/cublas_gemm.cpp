#include "codegen/cuda/cublas_gemm.hpp"

#include <dlfcn.h>

#include <stdexcept>
#include <type_traits>

namespace mf {
namespace {

// cuBLAS C ABI (values from cublas_api.h / library_types.h).
using Status = int;
constexpr int kOpN = 0, kOpT = 1, kComputeF32 = 68, kGemmDefault = -1, kR32F = 0, kR16BF = 14;
constexpr size_t kWorkspaceBytes = 32u << 20;

struct CublasApi {
    Status (*create)(void**);
    Status (*destroy)(void*);
    Status (*set_stream)(void*, CuStream);
    Status (*set_workspace)(void*, void*, size_t);
    Status (*gemm_ex)(void*, int, int, int, int, int, const void*, const void*, int, int, const void*, int,
                      int, const void*, void*, int, int, int, int);
    Status (*gemm_strided_batched_ex)(void*, int, int, int, int, int, const void*, const void*, int, int,
                                      long long, const void*, int, int, long long, const void*, void*, int,
                                      int, long long, int, int, int);
    std::string why;
};

const CublasApi& api() {
    static const CublasApi a = [] {
        CublasApi x{};
        void* lib = dlopen("libcublas.so.13", RTLD_NOW | RTLD_LOCAL);
        if (!lib) lib = dlopen("libcublas.so.12", RTLD_NOW | RTLD_LOCAL);
        if (!lib) {
            x.why =
                "libcublas.so.13 (or .12) not found: install the CUDA toolkit's cuBLAS or add it to "
                "LD_LIBRARY_PATH";
            return x;
        }
        bool ok = true;
        auto get = [&](const char* name, auto& fn) {
            fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(lib, name));
            ok = ok && fn;
        };
        get("cublasCreate_v2", x.create);
        get("cublasDestroy_v2", x.destroy);
        get("cublasSetStream_v2", x.set_stream);
        get("cublasSetWorkspace_v2", x.set_workspace);
        get("cublasGemmEx", x.gemm_ex);
        get("cublasGemmStridedBatchedEx", x.gemm_strided_batched_ex);
        if (!ok) x.why = "libcublas lacks cublasGemmEx / cublasGemmStridedBatchedEx / cublasSetWorkspace_v2";
        return x;
    }();
    return a;
}

void check(Status s, const char* what) {
    if (s != 0)
        throw std::runtime_error(std::string("cuBLAS: ") + what + " failed with status " + std::to_string(s));
}

int type_of(CudaDtype t) {
    return t == CudaDtype::f32 ? kR32F : kR16BF;
}

}  // namespace

bool CublasGemm::available(std::string* why) {
    if (!api().why.empty()) {
        if (why) *why = api().why;
        return false;
    }
    return true;
}

CublasGemm::CublasGemm() {
    if (std::string why; !available(&why)) throw std::runtime_error("cuBLAS is unavailable: " + why);
    check(api().create(&handle_), "cublasCreate");
    // A fixed workspace makes the handle usable under CUDA graph capture.
    cu_check(cuda_driver().mem_alloc(&workspace_, kWorkspaceBytes), "cuMemAlloc (cuBLAS workspace)");
    check(api().set_workspace(handle_, reinterpret_cast<void*>(workspace_), kWorkspaceBytes),
          "cublasSetWorkspace");
}

CublasGemm::~CublasGemm() {
    if (handle_) api().destroy(handle_);
    if (workspace_) cuda_driver().mem_free(workspace_);
}

void CublasGemm::run(const GemmShape& s, const void* a, const void* b, void* c, CuStream stream, float alpha,
                     float beta) {
    // Row-major C = A op(B) is column-major C^T = op(B)^T A^T: cuBLAS sees (M, N, K) = (n, m, k), its A is
    // our B.
    const long long lda = s.lda ? s.lda : s.k;
    const long long ldb = s.ldb ? s.ldb : (s.trans_b == GemmTrans::t ? s.k : s.n);
    const long long ldc = s.ldc ? s.ldc : s.n;
    const int op_b = s.trans_b == GemmTrans::t ? kOpT : kOpN;
    if (!stream_set_ || stream != stream_) {
        check(api().set_stream(handle_, stream), "cublasSetStream");
        // cublasSetStream resets the workspace to cuBLAS's own pool, which would allocate inside a graph capture.
        check(api().set_workspace(handle_, reinterpret_cast<void*>(workspace_), kWorkspaceBytes),
              "cublasSetWorkspace");
        stream_ = stream, stream_set_ = true;
    }
    if (s.batch == 1) {
        check(api().gemm_ex(handle_, op_b, kOpN, s.n, s.m, s.k, &alpha, b, type_of(s.b),
                            static_cast<int>(ldb), a, type_of(s.a), static_cast<int>(lda), &beta, c,
                            type_of(s.c), static_cast<int>(ldc), kComputeF32, kGemmDefault),
              "cublasGemmEx");
    } else {
        check(api().gemm_strided_batched_ex(
                  handle_, op_b, kOpN, s.n, s.m, s.k, &alpha, b, type_of(s.b), static_cast<int>(ldb),
                  s.stride_b, a, type_of(s.a), static_cast<int>(lda), s.stride_a, &beta, c, type_of(s.c),
                  static_cast<int>(ldc), s.stride_c, s.batch, kComputeF32, kGemmDefault),
              "cublasGemmStridedBatchedEx");
    }
}

}  // namespace mf
