// libFuzzer target: the GGUF reader, the deepseek2 config and tokenizer keys, and binding the weights. Any
// input must either open or throw std::runtime_error; every tensor the reader accepts must lie inside the
// file.
#include <cstdint>
#include <cstdlib>
#include <stdexcept>

#include "model/gguf_file.hpp"
#include "model/gguf_vocab.hpp"
#include "model/model.hpp"
#include "tests/fuzz/fuzz_input_file.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const auto path = mf::fuzz::write_input("input.gguf", data, size);
    try {
        mf::GgufFile f(path);
        volatile uint8_t sink = 0;
        for (const auto& t : f.tensors()) {
            if (f.data_offset() + t.offset + t.n_bytes > f.file_size()) std::abort();
            sink = sink + t.data[0] + t.data[t.n_bytes - 1];
        }
        try {
            mf::read_gguf_vocab(f);
        } catch (const std::runtime_error&) {
        }
        const auto m = mf::Model::open(path);
        mf::for_each_tensor(m->weights(), [&](const mf::TensorView& t) {
            if (t.bytes) sink = sink + static_cast<const uint8_t*>(t.data)[t.bytes - 1];
        });
    } catch (const std::runtime_error&) {
    }
    return 0;
}
