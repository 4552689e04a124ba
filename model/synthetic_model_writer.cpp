// Streams a synthetic model to GGUF and/or an HF safetensors directory: tensors are generated in chunks of
// rows (in parallel), converted to the stored type and appended, so memory stays bounded whatever the model
// size.
#include <fmt/core.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <thread>

#include "model/block_formats.hpp"
#include "model/gguf_vocab.hpp"
#include "model/gguf_writer.hpp"
#include "model/model.hpp"
#include "model/safetensors_writer.hpp"
#include "model/synthetic_model.hpp"
#include "model/synthetic_plan.hpp"

namespace mf {
namespace {

using Sink = std::function<void(const void*, size_t)>;

uint64_t stored_bytes(GgmlType t, int64_t rows, int64_t cols) {
    return *ggml_row_bytes(uint32_t(t), uint64_t(cols)) * uint64_t(rows);
}

// The values of rows [r0, r0+n) as stored: generated, converted to `type`, and (when `as_f32`) converted back
// to fp32 — the exact values a reader of the GGUF copy sees.
void produce_rows(const PlannedTensor& t, uint64_t seed, GgmlType type, bool as_f32, int64_t r0, int64_t n,
                  uint8_t* dst) {
    const int64_t cols = t.cols();
    const uint64_t rb = *ggml_row_bytes(uint32_t(type), uint64_t(cols));
    std::vector<float> row(static_cast<size_t>(cols));
    std::vector<uint8_t> q(rb);
    for (int64_t r = 0; r < n; ++r) {
        generate_rows(t, seed, r0 + r, 1, row.data());
        if (as_f32) {
            quantize_row(type, row.data(), q.data(), cols);
            dequantize_row(type, q.data(), reinterpret_cast<float*>(dst + uint64_t(r) * uint64_t(cols) * 4),
                           cols);
        } else {
            quantize_row(type, row.data(), dst + uint64_t(r) * rb, cols);
        }
    }
}

// Streams one tensor through `sink` in chunks of rows, each chunk produced by all cores.
void stream_tensor(const PlannedTensor& t, uint64_t seed, GgmlType type, bool as_f32, const Sink& sink) {
    const int64_t rows = t.rows(), cols = t.cols();
    const uint64_t rb = as_f32 ? uint64_t(cols) * 4 : *ggml_row_bytes(uint32_t(type), uint64_t(cols));
    const int64_t chunk = std::max<int64_t>(1, int64_t((64ull << 20) / rb));
    const int nthreads = int(std::max(1u, std::thread::hardware_concurrency()));
    std::vector<uint8_t> buf;
    for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
        const int64_t n = std::min(chunk, rows - r0);
        buf.resize(size_t(uint64_t(n) * rb));
        const int64_t per = (n + nthreads - 1) / nthreads;
        std::vector<std::thread> pool;
        for (int64_t a = 0; a < n; a += per) {
            const int64_t b = std::min(n, a + per);
            pool.emplace_back([&, a, b] {
                produce_rows(t, seed, type, as_f32, r0 + a, b - a, buf.data() + uint64_t(a) * rb);
            });
        }
        for (auto& th : pool) th.join();
        sink(buf.data(), buf.size());
    }
}

// One GGUF tensor: a plain one, a stack of routed experts, or k_b / v_b cut from kv_b.
struct GgufItem {
    std::string name;
    GgmlType type;
    std::vector<uint64_t> ne;
    std::vector<const PlannedTensor*> parts;  // experts in order, or the one tensor
    int mla = 0;                              // 1: attn_k_b, 2: attn_v_b (from parts[0] = kv_b)
    uint64_t bytes = 0;
};

std::vector<GgufItem> gguf_items(const DeepSeekV3Config& c, const std::vector<PlannedTensor>& plan,
                                 bool mla) {
    std::vector<GgufItem> items;
    for (const auto& t : plan) {
        if (t.expert > 0) {
            items.back().parts.push_back(&t);
            items.back().ne[2] += 1;
            continue;
        }
        if (t.kv_b && mla) {
            const std::string layer = t.gguf_name.substr(0, t.gguf_name.find("attn_kv_b"));
            items.push_back({layer + "attn_k_b.weight",
                             t.gguf_type,
                             {uint64_t(c.qk_nope), uint64_t(c.kv_lora_rank), uint64_t(c.n_heads)},
                             {&t},
                             1});
            items.push_back({layer + "attn_v_b.weight",
                             t.gguf_type,
                             {uint64_t(c.kv_lora_rank), uint64_t(c.v_head), uint64_t(c.n_heads)},
                             {&t},
                             2});
            continue;
        }
        GgufItem it{t.gguf_name, t.gguf_type, {}, {&t}, 0};
        for (auto d = t.shape.rbegin(); d != t.shape.rend(); ++d) it.ne.push_back(uint64_t(*d));
        if (t.expert == 0) it.ne.push_back(1);
        items.push_back(std::move(it));
    }
    for (auto& it : items) {
        uint64_t rows = 1;
        for (size_t d = 1; d < it.ne.size(); ++d) rows *= it.ne[d];
        it.bytes = stored_bytes(it.type, int64_t(rows), int64_t(it.ne[0]));
    }
    return items;
}

void stream_gguf_item(const DeepSeekV3Config& c, const GgufItem& it, uint64_t seed, const Sink& sink) {
    if (!it.mla) {
        for (const PlannedTensor* p : it.parts) stream_tensor(*p, seed, it.type, false, sink);
        return;
    }
    // k_b[h][r][i] = kv_b[h*(nope+v)+i][r]; v_b[h][j][r] = kv_b[h*(nope+v)+nope+j][r], from the stored
    // values.
    const PlannedTensor& t = *it.parts[0];
    const int64_t H = c.n_heads, nope = c.qk_nope, vd = c.v_head, kvl = c.kv_lora_rank;
    std::vector<float> kvb(size_t(t.rows() * t.cols()));
    produce_rows(t, seed, it.type, true, 0, t.rows(), reinterpret_cast<uint8_t*>(kvb.data()));
    const int64_t cols = it.mla == 1 ? nope : kvl;
    const uint64_t rb = *ggml_row_bytes(uint32_t(it.type), uint64_t(cols));
    std::vector<float> row(static_cast<size_t>(cols));
    std::vector<uint8_t> q(rb);
    for (int64_t h = 0; h < H; ++h) {
        const int64_t inner = it.mla == 1 ? kvl : vd;
        for (int64_t a = 0; a < inner; ++a) {
            for (int64_t b = 0; b < cols; ++b)
                row[size_t(b)] = it.mla == 1 ? kvb[size_t((h * (nope + vd) + b) * kvl + a)]
                                             : kvb[size_t((h * (nope + vd) + nope + a) * kvl + b)];
            quantize_row(it.type, row.data(), q.data(), cols);
            sink(q.data(), q.size());
        }
    }
}

const char* hf_dtype(GgmlType t) {
    switch (t) {
        case GgmlType::bf16:
            return "BF16";
        case GgmlType::f16:
            return "F16";
        default:
            return "F32";
    }
}
bool hf_keeps_type(GgmlType t) {
    return t == GgmlType::bf16 || t == GgmlType::f16 || t == GgmlType::f32;
}

// A coarse progress stage ("gguf: layer 3") so line-per-stage logs stay short.
std::string stage_of(const std::string& tensor, const char* format) {
    for (const char* prefix : {"blk.", "model.layers."}) {
        const std::string p = prefix;
        if (tensor.rfind(p, 0) == 0)
            return fmt::format("{}: layer {}", format,
                               tensor.substr(p.size(), tensor.find('.', p.size()) - p.size()));
    }
    return fmt::format("{}: {}", format, tensor);
}

// llama.cpp's llama_ftype for a file whose FFN weights are `wtype` (shown by its loader; not used to decode).
uint32_t llama_file_type(GgmlType wtype) {
    switch (wtype) {
        case GgmlType::f16:
            return 1;  // MOSTLY_F16
        case GgmlType::q8_0:
            return 7;  // MOSTLY_Q8_0
        case GgmlType::q4_k:
            return 15;  // MOSTLY_Q4_K_M
        case GgmlType::q5_k:
            return 17;  // MOSTLY_Q5_K_M
        case GgmlType::q6_k:
            return 18;  // MOSTLY_Q6_K
        case GgmlType::bf16:
            return 32;  // MOSTLY_BF16
        default:
            return 0;  // ALL_F32
    }
}

}  // namespace

uint64_t synthetic_model_gguf_bytes(const DeepSeekV3Config& c, GgmlType wtype) {
    uint64_t total = 0;
    for (const auto& t : plan_synthetic_tensors(c, wtype, nullptr))
        total += stored_bytes(t.gguf_type, t.rows(), t.cols());
    return total;
}

SyntheticModelResult write_synthetic_model(const SyntheticModelOptions& o,
                                           const std::filesystem::path& out_dir) {
    const DeepSeekV3Config& c = o.config;
    c.validate("mkmodel");
    std::filesystem::create_directories(out_dir);
    SyntheticModelResult res;
    const auto plan = plan_synthetic_tensors(c, o.wtype, &res.notes);

    uint64_t total = 0, done = 0;
    std::vector<GgufItem> items;
    if (o.gguf) {
        items = gguf_items(c, plan, o.gguf_mla_layout);
        for (const auto& it : items) total += it.bytes;
    }
    if (o.safetensors)
        for (const auto& t : plan)
            total += hf_keeps_type(t.gguf_type) ? stored_bytes(t.gguf_type, t.rows(), t.cols())
                                                : uint64_t(t.rows() * t.cols()) * 4;
    auto progress = [&](const std::string& stage) {
        if (o.progress) o.progress(done, total, stage);
    };

    if (o.gguf) {
        // Parts: consecutive tensors up to gguf_split_bytes each (one part when 0).
        std::vector<std::vector<const GgufItem*>> parts(1);
        uint64_t in_part = 0;
        for (const auto& it : items) {
            if (o.gguf_split_bytes && in_part > 0 && in_part + it.bytes > o.gguf_split_bytes)
                parts.emplace_back(), in_part = 0;
            parts.back().push_back(&it);
            in_part += it.bytes;
        }
        TokenizerVocab vocab = o.vocab;
        pad_vocab(vocab, size_t(c.vocab_size));
        const int n = int(parts.size());
        for (int p = 0; p < n; ++p) {
            const auto path =
                n == 1 ? out_dir / (o.name + ".gguf") : gguf_split_path(out_dir / o.name, p + 1, n);
            if (p == 0) res.gguf = path;
            GgufWriter w(path);
            if (p == 0) {
                write_gguf_config(w, c, o.gguf_mla_layout, o.name);
                w.add_u32("general.file_type", llama_file_type(o.wtype));
                write_gguf_vocab(w, vocab);
            }
            if (n > 1) {
                w.add_u16("split.no", uint16_t(p));
                w.add_u16("split.count", uint16_t(n));
                w.add_i32("split.tensors.count", int32_t(items.size()));
            }
            for (const GgufItem* it : parts[size_t(p)]) w.add_tensor(it->name, it->type, it->ne);
            w.begin_data();
            for (const GgufItem* it : parts[size_t(p)]) {
                const std::string stage = stage_of(it->name, "gguf");
                progress(stage);
                stream_gguf_item(c, *it, o.seed, [&](const void* src, size_t bytes) {
                    w.append(src, bytes);
                    done += bytes;
                    progress(stage);
                });
            }
            w.finish();
            res.gguf_bytes += std::filesystem::file_size(path);
        }
    }

    if (o.safetensors) {
        res.hf_dir = out_dir / (o.name + "-hf");
        std::filesystem::create_directories(res.hf_dir);
        std::vector<std::vector<const PlannedTensor*>> shards(1);
        uint64_t in_shard = 0;
        auto hf_bytes = [&](const PlannedTensor& t) {
            return hf_keeps_type(t.gguf_type) ? stored_bytes(t.gguf_type, t.rows(), t.cols())
                                              : uint64_t(t.rows() * t.cols()) * 4;
        };
        for (const auto& t : plan) {
            if (in_shard > 0 && in_shard + hf_bytes(t) > o.shard_bytes) shards.emplace_back(), in_shard = 0;
            shards.back().push_back(&t);
            in_shard += hf_bytes(t);
        }
        const int n = int(shards.size());
        nlohmann::json weight_map = nlohmann::json::object();
        uint64_t total_size = 0;
        for (int s = 0; s < n; ++s) {
            const std::string file =
                n == 1 ? "model.safetensors" : fmt::format("model-{:05d}-of-{:05d}.safetensors", s + 1, n);
            SafetensorsWriter w(res.hf_dir / file);
            w.set_metadata("format", "pt");
            for (const PlannedTensor* t : shards[size_t(s)]) {
                std::vector<uint64_t> shape(t->shape.begin(), t->shape.end());
                w.add_tensor(t->hf_name, hf_dtype(hf_keeps_type(t->gguf_type) ? t->gguf_type : GgmlType::f32),
                             shape);
                weight_map[t->hf_name] = file;
            }
            w.begin_data();
            for (const PlannedTensor* t : shards[size_t(s)]) {
                const std::string stage = stage_of(t->hf_name, "safetensors");
                progress(stage);
                stream_tensor(*t, o.seed, t->gguf_type, !hf_keeps_type(t->gguf_type),
                              [&](const void* src, size_t b) {
                                  w.append(src, b);
                                  done += b;
                                  progress(stage);
                              });
            }
            w.finish();
            total_size += w.data_bytes();
            res.hf_bytes += std::filesystem::file_size(res.hf_dir / file);
        }
        if (n > 1) {
            const nlohmann::json index = {{"metadata", {{"total_size", total_size}}},
                                          {"weight_map", weight_map}};
            std::ofstream(res.hf_dir / "model.safetensors.index.json") << index.dump(2) << "\n";
        }
        const bool all_f32 = o.wtype == GgmlType::f32;
        const char* dtype = all_f32 ? "float32" : o.wtype == GgmlType::f16 ? "float16" : "bfloat16";
        std::ofstream(res.hf_dir / "config.json") << config_to_hf_json(c, dtype).dump(2) << "\n";
        const nlohmann::json gen = {
            {"_from_model_config", true}, {"bos_token_id", c.bos_id}, {"eos_token_id", c.eos_id}};
        std::ofstream(res.hf_dir / "generation_config.json") << gen.dump(2) << "\n";
        if (!o.tokenizer_json.empty()) {
            const auto opts = std::filesystem::copy_options::overwrite_existing;
            std::filesystem::copy_file(o.tokenizer_json, res.hf_dir / "tokenizer.json", opts);
            const auto cfg = o.tokenizer_json.parent_path() / "tokenizer_config.json";
            if (std::filesystem::exists(cfg))
                std::filesystem::copy_file(cfg, res.hf_dir / "tokenizer_config.json", opts);
        }
    }
    return res;
}

}  // namespace mf
