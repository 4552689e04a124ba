#include "model/hf_checkpoint.hpp"

#include <fmt/core.h>

#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>

namespace mf {
namespace {

nlohmann::json read_json(const std::filesystem::path& p) {
    std::ifstream f(p, std::ios::binary);
    if (!f) throw std::runtime_error(p.string() + ": cannot open");
    std::stringstream ss;
    ss << f.rdbuf();
    try {
        return nlohmann::json::parse(ss.str());
    } catch (const nlohmann::json::exception& e) {
        throw std::runtime_error(p.string() + ": not valid JSON: " + e.what());
    }
}

}  // namespace

bool is_hf_checkpoint_dir(const std::filesystem::path& dir) {
    return std::filesystem::is_directory(dir) && std::filesystem::exists(dir / "config.json");
}

HfCheckpoint::HfCheckpoint(const std::filesystem::path& dir) : dir_(dir) {
    if (!std::filesystem::is_directory(dir)) throw std::runtime_error(dir.string() + ": not a directory");
    if (!std::filesystem::exists(dir / "config.json"))
        throw std::runtime_error(dir.string() + ": no config.json (not a Hugging Face checkpoint directory)");
    config_ = read_json(dir / "config.json");
    if (!config_.is_object())
        throw std::runtime_error((dir / "config.json").string() + ": not a JSON object");

    const auto index_path = dir / "model.safetensors.index.json";
    if (std::filesystem::exists(index_path)) {
        const auto index = read_json(index_path);
        if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object())
            throw std::runtime_error(index_path.string() + ": missing object 'weight_map'");
        std::map<std::string, size_t> shard_of_file;
        std::vector<std::pair<std::string, size_t>> wanted;
        for (auto it = index["weight_map"].begin(); it != index["weight_map"].end(); ++it) {
            if (!it.value().is_string())
                throw std::runtime_error(index_path.string() + ": weight_map['" + it.key() +
                                         "'] is not a string");
            const std::string file = it.value().get<std::string>();
            if (file.find('/') != std::string::npos || file.find("..") != std::string::npos)
                throw std::runtime_error(index_path.string() + ": shard name '" + file +
                                         "' is not a plain file name");
            auto [pos, fresh] = shard_of_file.emplace(file, shards_.size());
            if (fresh) {
                if (!std::filesystem::exists(dir / file))
                    throw std::runtime_error(index_path.string() + ": shard '" + file + "' (holding '" +
                                             it.key() + "') is missing from " + dir.string());
                shards_.push_back(std::make_unique<SafetensorsFile>(dir / file));
            }
            wanted.emplace_back(it.key(), pos->second);
        }
        for (const auto& [name, shard] : wanted) {
            const SafetensorsTensor* t = shards_[shard]->find(name);
            if (!t)
                throw std::runtime_error(
                    fmt::format("{}: the index places tensor '{}' here, but the file lacks it",
                                shards_[shard]->path().string(), name));
            index_[name] = t;
        }
    } else if (std::filesystem::exists(dir / "model.safetensors")) {
        shards_.push_back(std::make_unique<SafetensorsFile>(dir / "model.safetensors"));
        for (const auto& t : shards_[0]->tensors()) index_[t.name] = &t;
    } else {
        throw std::runtime_error(dir.string() +
                                 ": neither model.safetensors.index.json nor model.safetensors");
    }
}

const SafetensorsTensor* HfCheckpoint::find(const std::string& name) const {
    auto it = index_.find(name);
    return it == index_.end() ? nullptr : it->second;
}

}  // namespace mf
