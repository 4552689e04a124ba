// One field list per kernel Desc/Config drives equality, hashing, printing, JSON and the kernel's name.
// A struct opts in with
//     static constexpr const char* kPrefix = "gemm_amx";          // name prefix (Desc only)
//     template <class S, class F> static void visit(S& s, F&& f) { f("k", "k", s.k); ... }
// where f(json_key, name_tag, field). Fields are integers or enums with enum_name()/enum_parse() overloads.
#pragma once
#include <fmt/format.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

namespace mf {

template <class T>
std::vector<int64_t> field_values(const T& t) {
    std::vector<int64_t> v;
    T::visit(t, [&](const char*, const char*, const auto& x) { v.push_back(int64_t(x)); });
    return v;
}

template <class T>
bool fields_equal(const T& a, const T& b) {
    return field_values(a) == field_values(b);
}

template <class T>
uint64_t fields_hash(const T& t, uint64_t seed = 0xcbf29ce484222325ull) {
    uint64_t h = seed;
    for (int64_t x : field_values(t)) {
        h ^= uint64_t(x) + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
        h *= 0x100000001b3ull;
    }
    return h;
}

template <class V>
std::string field_text(const V& x) {
    if constexpr (std::is_enum_v<V>)
        return enum_name(x);
    else
        return std::to_string(x);
}

// "k=7168 m=4"
template <class T>
std::string fields_to_string(const T& t) {
    std::string s;
    T::visit(t, [&](const char* key, const char*, const auto& x) {
        if (!s.empty()) s += ' ';
        s += fmt::format("{}={}", key, field_text(x));
    });
    return s;
}

// Desc pieces are joined by '_' ("int8_k7168_m4"), Config pieces are concatenated ("np2pf8u2").
template <class T>
std::string fields_name_part(const T& t, bool joined) {
    std::string s;
    T::visit(t, [&](const char*, const char* tag, const auto& x) {
        if (joined && !s.empty()) s += '_';
        s += tag;
        s += field_text(x);
    });
    return s;
}

// The kernel's name spells its descriptor: prefix_desc__config.
template <class D, class C>
std::string kernel_name(const D& d, const C& c) {
    return fmt::format("{}_{}__{}", D::kPrefix, fields_name_part(d, true), fields_name_part(c, false));
}

template <class T>
nlohmann::json fields_to_json(const T& t) {
    nlohmann::json j = nlohmann::json::object();
    T::visit(t, [&](const char* key, const char*, const auto& x) {
        if constexpr (std::is_enum_v<std::decay_t<decltype(x)>>)
            j[key] = enum_name(x);
        else
            j[key] = x;
    });
    return j;
}

// Missing keys keep base's values; a key of the wrong type or an unknown enum name throws, naming the key.
template <class T>
T fields_from_json(const nlohmann::json& j, const T& base = T{}) {
    T t = base;
    T::visit(t, [&](const char* key, const char*, auto& x) {
        if (!j.contains(key)) return;
        using V = std::decay_t<decltype(x)>;
        try {
            if constexpr (std::is_enum_v<V>)
                enum_parse(j.at(key).get<std::string>(), x);
            else
                x = j.at(key).get<V>();
        } catch (const std::exception& e) {
            throw std::runtime_error(fmt::format("kernel descriptor field '{}': {}", key, e.what()));
        }
    });
    return t;
}

}  // namespace mf
