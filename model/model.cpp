#include "model/model.hpp"

#include <fmt/core.h>

#include <regex>
#include <stdexcept>
#include <unordered_map>

#include "model/deepseek_v3_names.hpp"

namespace mf {

std::filesystem::path gguf_split_path(const std::filesystem::path& prefix, int part, int count) {
    return prefix.string() + fmt::format("-{:05d}-of-{:05d}.gguf", part, count);
}

std::vector<std::filesystem::path> gguf_split_paths(const std::filesystem::path& any_part) {
    static const std::regex re("(.*)-([0-9]{5})-of-([0-9]{5})\\.gguf");
    std::smatch m;
    const std::string s = any_part.string();
    if (!std::regex_match(s, m, re)) return {any_part};
    const int count = std::stoi(m[3].str());
    if (count < 1) throw std::runtime_error(s + ": split count 0 in the file name");
    std::vector<std::filesystem::path> parts;
    for (int i = 1; i <= count; ++i) {
        auto p = gguf_split_path(m[1].str(), i, count);
        if (!std::filesystem::exists(p))
            throw std::runtime_error(fmt::format("{}: part {} of {} of this split model is missing ({})", s,
                                                 i, count, p.string()));
        parts.push_back(p);
    }
    return parts;
}

std::unique_ptr<Model> Model::open(const std::filesystem::path& path) {
    std::unique_ptr<Model> m(new Model());
    m->path_ = path;
    if (std::filesystem::is_directory(path)) {
        if (!is_hf_checkpoint_dir(path))
            throw std::runtime_error(
                path.string() + ": a directory without config.json (expected a Hugging Face checkpoint)");
        m->format_ = ModelFormat::safetensors;
        m->hf_ = std::make_unique<HfCheckpoint>(path);
        m->config_ = config_from_hf_json(m->hf_->config(), (path / "config.json").string());
        m->bind_hf();
    } else {
        if (!std::filesystem::exists(path))
            throw std::runtime_error(path.string() + ": no such file or directory");
        m->format_ = ModelFormat::gguf;
        const auto paths = gguf_split_paths(path);
        for (const auto& p : paths) m->gguf_.push_back(std::make_unique<GgufFile>(p));
        if (paths.size() > 1) {
            uint64_t total = 0;
            for (size_t i = 0; i < paths.size(); ++i) {
                const GgufFile& f = *m->gguf_[i];
                const auto no = f.opt_uint("split.no"), count = f.opt_uint("split.count");
                if (!no || !count || *no != i || *count != paths.size())
                    f.fail(
                        fmt::format("split.no/split.count should be {}/{} for this part", i, paths.size()));
                total += f.tensors().size();
            }
            const uint64_t declared = m->gguf_[0]->get_uint("split.tensors.count");
            if (declared != total)
                m->gguf_[0]->fail(
                    fmt::format("split.tensors.count is {} but the parts hold {} tensors", declared, total));
        }
        m->config_ = config_from_gguf(*m->gguf_[0]);
        m->bind_gguf();
    }
    validate_weights(m->config_, m->weights_, path.string());
    return m;
}

namespace {

TensorView view_of(const GgufTensorInfo& t) {
    TensorView v;
    v.name = t.name;
    v.type = t.type;
    for (auto it = t.ne.rbegin(); it != t.ne.rend(); ++it) v.shape.push_back(int64_t(*it));
    v.data = t.data;
    v.bytes = t.n_bytes;
    return v;
}

TensorView missing(const std::string& name) {
    TensorView v;
    v.name = name;
    return v;
}

}  // namespace

void Model::bind_gguf() {
    std::unordered_map<std::string, const GgufTensorInfo*> all;
    for (const auto& part : gguf_)
        for (const auto& t : part->tensors())
            if (!all.emplace(t.name, &t).second)
                part->fail("tensor '" + t.name + "' appears in more than one part of the split model");
    auto get = [&](const std::string& name) {
        auto it = all.find(name);
        return it == all.end() ? missing(name) : view_of(*it->second);
    };
    const auto& c = config_;
    weights_.token_embd = get(kGgufTokenEmbd);
    weights_.output_norm = get(kGgufOutputNorm);
    weights_.output = get(kGgufOutput);
    weights_.layers.resize(size_t(c.n_layers));
    for (int64_t i = 0; i < c.n_layers; ++i) {
        LayerWeights& l = weights_.layers[size_t(i)];
        for (const auto& n : layer_tensor_names()) l.*n.member = get(gguf_layer_tensor(i, n.gguf));
        if (!l.kv_b.empty()) l.k_b = l.v_b = TensorView{};
        if (!c.is_moe_layer(i)) continue;
        for (const auto& n : expert_tensor_names()) {
            const TensorView all_experts = get(gguf_layer_tensor(i, n.gguf));
            auto& dst = l.*n.member;
            if (all_experts.empty())
                throw std::runtime_error(fmt::format("{}: missing tensor '{}' (layer {} routed experts)",
                                                     path_.string(), all_experts.name, i));
            if (all_experts.shape.size() != 3 || all_experts.shape[0] != c.n_experts)
                throw std::runtime_error(
                    fmt::format("{}: tensor '{}' should be 3-D with {} experts outermost", path_.string(),
                                all_experts.name, c.n_experts));
            const uint64_t per_expert = all_experts.bytes / uint64_t(c.n_experts);
            for (int64_t e = 0; e < c.n_experts; ++e) {
                TensorView v = all_experts;
                v.name = fmt::format("{}[{}]", all_experts.name, e);
                v.shape = {all_experts.shape[1], all_experts.shape[2]};
                v.data = static_cast<const uint8_t*>(all_experts.data) + uint64_t(e) * per_expert;
                v.bytes = per_expert;
                dst.push_back(std::move(v));
            }
        }
    }
}

void Model::bind_hf() {
    const std::string where = hf_->dir().string();
    auto get = [&](const std::string& name) -> TensorView {
        const SafetensorsTensor* t = hf_->find(name);
        if (!t) return missing(name);
        TensorView v;
        v.name = name;
        const auto type = safetensors_dtype_to_ggml(t->dtype);
        if (!type)
            throw std::runtime_error(
                fmt::format("{}: tensor '{}' has dtype {} (moeforge reads F32, F16, BF16 and "
                            "F8_E4M3 with _scale_inv)",
                            where, name, t->dtype));
        v.type = *type;
        for (uint64_t d : t->shape) v.shape.push_back(int64_t(d));
        v.data = t->data;
        v.bytes = t->n_bytes;
        if (v.type == GgmlType::f8_e4m3) {
            const SafetensorsTensor* s = hf_->find(name + "_scale_inv");
            if (!s)
                throw std::runtime_error(where + ": FP8 tensor '" + name + "' has no '" + name +
                                         "_scale_inv'");
            const uint64_t br = (uint64_t(v.rows()) + 127) / 128, bc = (uint64_t(v.cols()) + 127) / 128;
            if (s->dtype != "F32" || s->shape != std::vector<uint64_t>{br, bc})
                throw std::runtime_error(fmt::format(
                    "{}: '{}_scale_inv' should be F32 [{}, {}] (128x128 blocks)", where, name, br, bc));
            v.scale_inv = reinterpret_cast<const float*>(s->data);
        }
        return v;
    };
    const auto& c = config_;
    weights_.token_embd = get(kHfTokenEmbd);
    weights_.output_norm = get(kHfOutputNorm);
    weights_.output = get(kHfOutput);
    weights_.layers.resize(size_t(c.n_layers));
    for (int64_t i = 0; i < c.n_layers; ++i) {
        LayerWeights& l = weights_.layers[size_t(i)];
        for (const auto& n : layer_tensor_names())
            if (n.hf) l.*n.member = get(hf_layer_tensor(i, n.hf));
        if (!c.is_moe_layer(i)) continue;
        for (const auto& n : expert_tensor_names())
            for (int64_t e = 0; e < c.n_experts; ++e) {
                TensorView v = get(hf_expert_tensor(i, e, n.hf));
                if (v.empty()) throw std::runtime_error(where + ": missing tensor '" + v.name + "'");
                (l.*n.member).push_back(std::move(v));
            }
    }
}

}  // namespace mf
