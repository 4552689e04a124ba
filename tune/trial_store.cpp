#include "tune/trial_store.hpp"

#include <fstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

namespace mf {

using nlohmann::json;

namespace {

json to_line(const TrialRecord& r) {
    return {{"f", r.family}, {"l", r.label}, {"r", r.rung}, {"s", r.seconds}, {"t", r.at_seconds},
            {"d", r.is_default}, {"e", r.error}};
}

bool from_line(const std::string& line, TrialRecord& r) {
    const json j = json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return false;
    try {
        r.family = j.at("f").get<std::string>();
        r.label = j.at("l").get<std::string>();
        r.rung = j.at("r").get<int>();
        r.seconds = j.at("s").get<double>();
        r.at_seconds = j.at("t").get<double>();
        r.is_default = j.at("d").get<bool>();
        r.error = j.at("e").get<std::string>();
        return r.seconds >= 0;
    } catch (const json::exception&) {
        return false;
    }
}

}  // namespace

TrialStore::TrialStore(std::filesystem::path path, std::string context)
    : path_(std::move(path)), context_(std::move(context)) {
    if (path_.empty()) return;
    std::ifstream f(path_);
    std::string line;
    bool same_context = false;
    if (f && std::getline(f, line)) {
        const json head = json::parse(line, nullptr, false);
        same_context = !head.is_discarded() && head.is_object() && head.value("context", "") == context_;
    }
    if (!same_context) {
        clear();
        return;
    }
    while (std::getline(f, line)) {
        TrialRecord r;
        if (!from_line(line, r)) continue;  // a torn line from an interrupted write
        records_[{r.family, r.label, r.rung}] = r;
        ++loaded_;
    }
}

const TrialRecord* TrialStore::find(const std::string& family, const std::string& label, int rung) const {
    auto it = records_.find({family, label, rung});
    return it == records_.end() ? nullptr : &it->second;
}

void TrialStore::add(const TrialRecord& r) {
    records_[{r.family, r.label, r.rung}] = r;
    append_line(to_line(r).dump());
}

void TrialStore::clear() {
    records_.clear();
    loaded_ = 0;
    if (path_.empty()) return;
    std::ofstream f(path_, std::ios::trunc);
    if (!f) throw std::runtime_error("cannot write the trial store " + path_.string());
    f << json{{"context", context_}}.dump() << '\n';
}

void TrialStore::append_line(const std::string& line) {
    if (path_.empty()) return;
    std::ofstream f(path_, std::ios::app);
    if (!f) throw std::runtime_error("cannot append to the trial store " + path_.string());
    f << line << '\n';
    f.flush();
}

}  // namespace mf
