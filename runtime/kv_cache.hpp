// The MLA latent KV cache: per layer and position one row [c_kv (kv_lora values) | k_pe (rope values)] = 576 values
// for DeepSeek-V3. Kept in fp32 on the CPU path (the attention reads it with AVX-512 FMA); the GPU path keeps bf16.
// Positions [0, size()) are valid; prefill chunks and decode steps append; truncate() rolls back (chat history
// reuse keeps the common prefix of two conversations).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace mf {

class LatentKvCache {
public:
    LatentKvCache() = default;
    // Throws std::runtime_error (an out-of-memory message naming --ctx) when the cache cannot be allocated.
    LatentKvCache(int64_t layers, int64_t capacity, int64_t kv_lora, int64_t rope);

    int64_t layers() const { return layers_; }
    int64_t capacity() const { return capacity_; }
    int64_t row_size() const { return kv_lora_ + rope_; }
    int64_t kv_lora() const { return kv_lora_; }
    int64_t size() const { return size_; }
    size_t bytes() const { return data_.size() * sizeof(float); }

    float* row(int64_t layer, int64_t pos) { return data_.data() + (layer * capacity_ + pos) * row_size(); }
    const float* row(int64_t layer, int64_t pos) const {
        return data_.data() + (layer * capacity_ + pos) * row_size();
    }

    // After every layer has written rows [size(), size() + n): they become part of the context.
    void commit(int64_t n);
    void truncate(int64_t n);  // keep the first n positions (n <= size())
    void clear() { size_ = 0; }

private:
    int64_t layers_ = 0, capacity_ = 0, kv_lora_ = 0, rope_ = 0, size_ = 0;
    std::vector<float> data_;
};

}  // namespace mf
