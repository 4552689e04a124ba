// One field list per Desc/Config drives equality, hashing, the kernel's name, printing and JSON.
// A type lists its fields once:
//     template <class S, class F> static void fields(S& s, F&& f) { f("heads", "h", s.heads); ... }
// (long name for JSON and printing, short tag for the kernel name). Fields are int, bool or an enum with
// `const char* field_text(E)` and `bool field_parse(std::string_view, E&)` found by argument-dependent
// lookup.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace mf {

namespace fields_detail {
template <class V>
std::string text(const V& v) {
    if constexpr (std::is_same_v<V, bool>)
        return v ? "1" : "0";
    else if constexpr (std::is_enum_v<V>)
        return field_text(v);
    else
        return std::to_string(v);
}
inline uint64_t mix(uint64_t h, uint64_t v) {  // FNV-1a over the value's 8 bytes
    for (int i = 0; i < 8; ++i) h = (h ^ ((v >> (8 * i)) & 0xff)) * 0x100000001b3ull;
    return h;
}
}  // namespace fields_detail

// "h128_lat512_..." : tag followed by value, joined by '_'.
template <class T>
std::string fields_name(const T& x) {
    std::string s;
    T::fields(x, [&](const char*, const char* tag, const auto& v) {
        if (!s.empty()) s += '_';
        s += tag;
        s += fields_detail::text(v);
    });
    return s;
}

// "heads=128 latent_dim=512 ..."
template <class T>
std::string fields_print(const T& x) {
    std::string s;
    T::fields(x, [&](const char* name, const char*, const auto& v) {
        if (!s.empty()) s += ' ';
        s += name;
        s += '=';
        s += fields_detail::text(v);
    });
    return s;
}

template <class T>
uint64_t fields_hash(const T& x) {
    uint64_t h = 0xcbf29ce484222325ull;
    int i = 0;
    T::fields(x, [&](const char*, const char*, const auto& v) {
        h = fields_detail::mix(h, static_cast<uint64_t>(++i));
        h = fields_detail::mix(h, static_cast<uint64_t>(static_cast<int64_t>(v)));
    });
    return h;
}

template <class T>
std::vector<int64_t> fields_values(const T& x) {
    std::vector<int64_t> v;
    T::fields(x, [&](const char*, const char*, const auto& f) { v.push_back(static_cast<int64_t>(f)); });
    return v;
}

template <class T>
bool fields_equal(const T& a, const T& b) {
    return fields_values(a) == fields_values(b);
}

template <class T>
nlohmann::json fields_to_json(const T& x) {
    nlohmann::json j = nlohmann::json::object();
    T::fields(x, [&](const char* name, const char*, const auto& v) {
        using V = std::decay_t<decltype(v)>;
        if constexpr (std::is_enum_v<V>)
            j[name] = field_text(v);
        else
            j[name] = v;
    });
    return j;
}

// Missing fields keep their defaults; a wrong type or unknown enum text throws naming the field.
template <class T>
T fields_from_json(const nlohmann::json& j) {
    T x{};
    T::fields(x, [&](const char* name, const char*, auto& v) {
        using V = std::decay_t<decltype(v)>;
        if (!j.contains(name)) return;
        const auto& e = j.at(name);
        if constexpr (std::is_enum_v<V>) {
            if (!e.is_string() || !field_parse(e.get<std::string>(), v))
                throw std::runtime_error(std::string("kernel descriptor field '") + name +
                                         "' has an unknown value");
        } else if constexpr (std::is_same_v<V, bool>) {
            if (!e.is_boolean())
                throw std::runtime_error(std::string("kernel descriptor field '") + name +
                                         "' must be a bool");
            v = e.get<bool>();
        } else {
            if (!e.is_number_integer())
                throw std::runtime_error(std::string("kernel descriptor field '") + name +
                                         "' must be an integer");
            v = e.get<V>();
        }
    });
    return x;
}

}  // namespace mf
