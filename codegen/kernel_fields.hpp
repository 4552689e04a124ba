// One field list per kernel Desc/Config drives equality, hashing, printing, JSON and the kernel's name, for the
// x64 JIT kernels and the CUDA kernels alike. A struct opts in with one static member template listing its fields,
// spelt `visit` (x64 descriptors) or `fields` (CUDA descriptors):
//     static constexpr const char* kPrefix = "gemm_amx";          // name prefix (x64 Desc only)
//     template <class S, class F> static void visit(S& s, F&& f) { f("k", "k", s.k); ... }
// where f(json_key, name_tag, field). Fields are integers, bools or enums with text/parse overloads found by
// argument-dependent lookup: enum_name()/enum_parse() (x64) or field_text()/field_parse() (CUDA).
#pragma once
#include <fmt/format.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace mf {

namespace fields_detail {

template <class T, class F>
void for_each(T& t, F&& f) {
    using U = std::remove_const_t<T>;
    if constexpr (requires { U::visit(t, f); })
        U::visit(t, f);
    else
        U::fields(t, f);
}

template <class V>
std::string text(const V& v) {
    if constexpr (std::is_same_v<V, bool>)
        return v ? "1" : "0";
    else if constexpr (std::is_enum_v<V>) {
        if constexpr (requires { enum_name(v); })
            return enum_name(v);
        else
            return field_text(v);
    } else
        return std::to_string(v);
}

template <class V>
bool parse(const std::string& s, V& v) {
    if constexpr (requires { enum_parse(s, v); }) {
        enum_parse(s, v);  // throws on an unknown name
        return true;
    } else {
        return field_parse(std::string_view(s), v);
    }
}

}  // namespace fields_detail

template <class T>
std::vector<int64_t> field_values(const T& t) {
    std::vector<int64_t> v;
    fields_detail::for_each(t, [&](const char*, const char*, const auto& x) { v.push_back(int64_t(x)); });
    return v;
}
template <class T>
std::vector<int64_t> fields_values(const T& t) {
    return field_values(t);
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

// "k=7168 m=4"
template <class T>
std::string fields_to_string(const T& t) {
    std::string s;
    fields_detail::for_each(t, [&](const char* key, const char*, const auto& x) {
        if (!s.empty()) s += ' ';
        s += fmt::format("{}={}", key, fields_detail::text(x));
    });
    return s;
}
template <class T>
std::string fields_print(const T& t) {
    return fields_to_string(t);
}

// Pieces are tag + value, joined by '_' ("int8_k7168_m4") or concatenated ("np2pf8u2").
template <class T>
std::string fields_name_part(const T& t, bool joined) {
    std::string s;
    fields_detail::for_each(t, [&](const char*, const char* tag, const auto& x) {
        if (joined && !s.empty()) s += '_';
        s += tag;
        s += fields_detail::text(x);
    });
    return s;
}
template <class T>
std::string fields_name(const T& t) {
    return fields_name_part(t, true);
}

// The x64 kernel's name spells its descriptor: prefix_desc__config.
template <class D, class C>
std::string kernel_name(const D& d, const C& c) {
    return fmt::format("{}_{}__{}", D::kPrefix, fields_name_part(d, true), fields_name_part(c, false));
}

template <class T>
nlohmann::json fields_to_json(const T& t) {
    nlohmann::json j = nlohmann::json::object();
    fields_detail::for_each(t, [&](const char* key, const char*, const auto& x) {
        if constexpr (std::is_enum_v<std::decay_t<decltype(x)>>)
            j[key] = fields_detail::text(x);
        else
            j[key] = x;
    });
    return j;
}

// Missing keys keep base's values; a key of the wrong type or an unknown enum name throws, naming the key.
template <class T>
T fields_from_json(const nlohmann::json& j, const T& base = T{}) {
    T t = base;
    fields_detail::for_each(t, [&](const char* key, const char*, auto& x) {
        if (!j.contains(key)) return;
        using V = std::decay_t<decltype(x)>;
        const auto& e = j.at(key);
        try {
            if constexpr (std::is_enum_v<V>) {
                if (!e.is_string() || !fields_detail::parse(e.get<std::string>(), x))
                    throw std::runtime_error("unknown value " + e.dump());
            } else if constexpr (std::is_same_v<V, bool>) {
                if (!e.is_boolean()) throw std::runtime_error("must be a bool");
                x = e.get<bool>();
            } else {
                if (!e.is_number_integer()) throw std::runtime_error("must be an integer");
                x = e.get<V>();
            }
        } catch (const std::exception& ex) {
            throw std::runtime_error(fmt::format("kernel descriptor field '{}': {}", key, ex.what()));
        }
    });
    return t;
}

}  // namespace mf
