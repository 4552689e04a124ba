#include "runtime/kv_cache.hpp"

#include <new>
#include <stdexcept>
#include <string>

namespace mf {

LatentKvCache::LatentKvCache(int64_t layers, int64_t capacity, int64_t kv_lora, int64_t rope)
    : layers_(layers), capacity_(capacity), kv_lora_(kv_lora), rope_(rope) {
    if (layers < 0 || capacity <= 0 || kv_lora <= 0 || rope < 0)  // 0 layers: all on the GPU, positions counted here
        throw std::invalid_argument("LatentKvCache: bad sizes");
    const uint64_t n = uint64_t(layers) * uint64_t(capacity) * uint64_t(kv_lora + rope);
    try {
        data_.assign(n, 0.0f);
    } catch (const std::bad_alloc&) {
        throw std::runtime_error("out of memory allocating the KV cache (" + std::to_string(n * 4 >> 20) +
                                 " MiB for " + std::to_string(capacity) + " positions): lower --ctx");
    }
}

void LatentKvCache::commit(int64_t n) {
    if (n < 0 || size_ + n > capacity_) throw std::logic_error("LatentKvCache::commit past the capacity");
    size_ += n;
}

void LatentKvCache::truncate(int64_t n) {
    if (n < 0 || n > size_) throw std::logic_error("LatentKvCache::truncate beyond the current size");
    size_ = n;
}

}  // namespace mf
