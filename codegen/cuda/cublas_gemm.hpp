// Dense projections through cuBLAS (bf16 operands, fp32 accumulation), loaded with dlopen like the driver, so
// the binary starts where cuBLAS is absent. Row-major vocabulary: C[m][n] = alpha * A[m][k] . op(B) + beta *
// C, with B either [n][k] (weights as stored by GGUF / PyTorch Linear: Y = X W^T, Trans::t) or [k][n]
// (Trans::n).
#pragma once
#include <string>

#include "codegen/cuda/cuda_driver.hpp"
#include "codegen/cuda/cuda_dtype.hpp"

namespace mf {

enum class GemmTrans { n, t };

struct GemmShape {
    int m = 0, n = 0, k = 0;
    GemmTrans trans_b = GemmTrans::t;
    long long lda = 0, ldb = 0, ldc = 0;  // row strides in elements (0: dense k, k or n, n)
    CudaDtype a = CudaDtype::bf16, b = CudaDtype::bf16, c = CudaDtype::bf16;
    // Strided batch (1: one GEMM); element offsets between consecutive matrices.
    int batch = 1;
    long long stride_a = 0, stride_b = 0, stride_c = 0;
};

class CublasGemm {
  public:
    // Loads libcublas.so.13 (or .12) and creates a handle in the current context; throws naming what is
    // missing.
    CublasGemm();
    ~CublasGemm();
    CublasGemm(const CublasGemm&) = delete;
    CublasGemm& operator=(const CublasGemm&) = delete;

    // Work is queued on `stream` (graph capture works once a workspace is set, which the constructor does).
    void run(const GemmShape& s, const void* a, const void* b, void* c, CuStream stream, float alpha = 1.f,
             float beta = 0.f);
    static bool available(std::string* why = nullptr);

  private:
    void* handle_ = nullptr;
    CuDevicePtr workspace_ = 0;
    CuStream stream_ = nullptr;  // the handle's stream (set again only when a call brings another)
    bool stream_set_ = false;
};

}  // namespace mf
