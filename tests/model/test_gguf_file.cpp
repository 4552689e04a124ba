// The GGUF reader on hand-assembled files (every value type), on GgufWriter output, and on truncated and
// corrupted files: each bad header field gives an error naming the file and the field, never a crash.
#include <doctest/doctest.h>

#include <cstring>
#include <fstream>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "model/gguf_file.hpp"
#include "model/gguf_writer.hpp"
#include "tests/model/scratch_dir.hpp"

using namespace mf;

namespace {

// Builds GGUF bytes field by field, independently of GgufWriter. Offsets of interesting fields are recorded
// so tests can corrupt them.
struct GgufBytes {
    std::string b;
    template <class T>
    size_t put(T v) {
        const size_t at = b.size();
        b.append(reinterpret_cast<const char*>(&v), sizeof(T));
        return at;
    }
    size_t str(const std::string& s) {
        const size_t at = put<uint64_t>(s.size());
        b += s;
        return at;
    }
    void align(size_t a) {
        while (b.size() % a) b.push_back('\0');
    }
};

struct Sample {
    GgufBytes g;
    size_t version_at, n_tensors_at, n_kv_at, str_len_at, arr_len_at, bool_at, ndims_at, dim_at, type_at,
        offset_at, type_key_at, elem_type_at, tensor2_offset_at;
};

// Two tensors (f32 [3][4] and q8_0 [2][32]), one key of every type, an array of strings and a nested array.
Sample make_sample(uint32_t version = 3) {
    Sample s;
    auto& g = s.g;
    g.put<uint32_t>(0x46554747);
    s.version_at = g.put<uint32_t>(version);
    s.n_tensors_at = g.put<uint64_t>(2);
    s.n_kv_at = g.put<uint64_t>(16);
    auto key = [&](const std::string& k, uint32_t type) {
        g.str(k);
        return g.put<uint32_t>(type);
    };
    key("k.u8", 0), g.put<uint8_t>(200);
    key("k.i8", 1), g.put<int8_t>(-100);
    key("k.u16", 2), g.put<uint16_t>(60000);
    key("k.i16", 3), g.put<int16_t>(-30000);
    key("k.u32", 4), g.put<uint32_t>(4000000000u);
    key("k.i32", 5), g.put<int32_t>(-2000000000);
    key("k.f32", 6), g.put<float>(1.5f);
    key("k.bool", 7), s.bool_at = g.put<uint8_t>(1);
    s.type_key_at = key("k.string", 8);
    s.str_len_at = g.str("hello");
    key("k.u64", 10), g.put<uint64_t>(1ull << 40);
    key("k.i64", 11), g.put<int64_t>(-(1ll << 40));
    key("k.f64", 12), g.put<double>(0.25);
    key("k.strings", 9);
    s.elem_type_at = g.put<uint32_t>(8);
    s.arr_len_at = g.put<uint64_t>(3);
    g.str("a"), g.str(""), g.str("ccc");
    key("k.nested", 9), g.put<uint32_t>(9), g.put<uint64_t>(2);
    g.put<uint32_t>(5), g.put<uint64_t>(2), g.put<int32_t>(7), g.put<int32_t>(-7);
    g.put<uint32_t>(6), g.put<uint64_t>(1), g.put<float>(2.5f);
    key("k.bools", 9), g.put<uint32_t>(7), g.put<uint64_t>(2), g.put<uint8_t>(0), g.put<uint8_t>(1);
    key("general.alignment", 4), g.put<uint32_t>(64);
    g.str("t.f32");
    s.ndims_at = g.put<uint32_t>(2);
    s.dim_at = g.put<uint64_t>(4);
    g.put<uint64_t>(3);
    s.type_at = g.put<uint32_t>(0);
    s.offset_at = g.put<uint64_t>(0);
    g.str("t.q8");
    g.put<uint32_t>(2), g.put<uint64_t>(32), g.put<uint64_t>(2), g.put<uint32_t>(8);
    s.tensor2_offset_at = g.put<uint64_t>(64);
    g.align(64);
    for (int i = 0; i < 12; ++i) g.put<float>(float(i) * 0.5f);
    g.align(64);
    for (int r = 0; r < 2; ++r) {
        g.put<uint16_t>(0x3c00);
        for (int i = 0; i < 32; ++i) g.put<int8_t>(int8_t(i - r));
    }
    return s;
}

void write(const std::filesystem::path& p, const std::string& bytes) {
    std::ofstream(p, std::ios::binary | std::ios::trunc).write(bytes.data(), std::streamsize(bytes.size()));
}

template <class T>
void poke(std::string& b, size_t at, T v) {
    std::memcpy(&b[at], &v, sizeof(T));
}

std::string open_error(const std::filesystem::path& p) {
    try {
        GgufFile f(p);
    } catch (const std::runtime_error& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST_CASE("GGUF reader: every metadata type, tensor infos, alignment and data (v2 and v3)") {
    test::ScratchDir dir("gguf");
    for (uint32_t version : {2u, 3u}) {
        const auto s = make_sample(version);
        write(dir / "a.gguf", s.g.b);
        GgufFile f(dir / "a.gguf");
        CHECK(f.version() == version);
        CHECK(f.alignment() == 64);
        CHECK(f.metadata().size() == 16);
        CHECK(f.get_uint("k.u8") == 200);
        CHECK(f.get_int("k.i8") == -100);
        CHECK(f.get_uint("k.u16") == 60000);
        CHECK(f.get_int("k.i16") == -30000);
        CHECK(f.get_uint("k.u32") == 4000000000u);
        CHECK(f.get_int("k.i32") == -2000000000);
        CHECK(f.get_float("k.f32") == 1.5);
        CHECK(f.get_bool("k.bool"));
        CHECK(f.get_string("k.string") == "hello");
        CHECK(f.get_uint("k.u64") == (1ull << 40));
        CHECK(f.get_int("k.i64") == -(1ll << 40));
        CHECK(f.get_float("k.f64") == 0.25);
        CHECK(f.find("k.strings")->strings == std::vector<std::string>{"a", "", "ccc"});
        const GgufValue* nested = f.find("k.nested");
        REQUIRE(nested->arrays.size() == 2);
        CHECK(nested->arrays[0].ints == std::vector<int64_t>{7, -7});
        CHECK(nested->arrays[1].floats == std::vector<double>{2.5});
        CHECK(f.find("k.bools")->ints == std::vector<int64_t>{0, 1});
        CHECK_THROWS_WITH_AS(f.get_uint("k.i8"), doctest::Contains("negative"), std::runtime_error);
        CHECK_THROWS_WITH_AS(f.get_uint("k.string"), doctest::Contains("expected an integer"),
                             std::runtime_error);
        CHECK_THROWS_WITH_AS(f.get_uint("nope"), doctest::Contains("missing key 'nope'"), std::runtime_error);
        REQUIRE(f.tensors().size() == 2);
        const GgufTensorInfo* t = f.find_tensor("t.f32");
        REQUIRE(t);
        CHECK(t->ne == std::vector<uint64_t>{4, 3});
        CHECK(t->n_bytes == 48);
        CHECK((t->data - (const uint8_t*)nullptr) % 64 == (f.data_offset() % 64));
        float v[12];
        std::memcpy(v, t->data, 48);
        for (int i = 0; i < 12; ++i) CHECK(v[i] == float(i) * 0.5f);
        const GgufTensorInfo* q = f.find_tensor("t.q8");
        CHECK(q->type == GgmlType::q8_0);
        CHECK(q->n_bytes == 68);
        CHECK(int8_t(q->data[2 + 34 + 5]) == 4);
    }
}

TEST_CASE("GGUF reader: every truncation of a valid file is a clear error") {
    test::ScratchDir dir("gguf-trunc");
    const auto s = make_sample();
    for (size_t n = 0; n < s.g.b.size(); ++n) {
        write(dir / "t.gguf", s.g.b.substr(0, n));
        const std::string err = open_error(dir / "t.gguf");
        CAPTURE(n);
        CHECK(err.find("t.gguf") != std::string::npos);
    }
}

TEST_CASE("GGUF reader: each corrupted header field names what is wrong") {
    test::ScratchDir dir("gguf-bad");
    struct Case {
        const char* label;
        std::function<void(Sample&)> corrupt;
        const char* expect;
    };
    const std::vector<Case> cases = {
        {"magic", [](Sample& s) { s.g.b[0] = 'X'; }, "bad magic"},
        {"version 1", [](Sample& s) { poke<uint32_t>(s.g.b, s.version_at, 1); }, "version 1"},
        {"version 9", [](Sample& s) { poke<uint32_t>(s.g.b, s.version_at, 9); },
         "unsupported GGUF version 9"},
        {"tensor count", [](Sample& s) { poke<uint64_t>(s.g.b, s.n_tensors_at, 1ull << 60); },
         "tensor count"},
        {"kv count", [](Sample& s) { poke<uint64_t>(s.g.b, s.n_kv_at, ~0ull); }, "metadata count"},
        {"string length", [](Sample& s) { poke<uint64_t>(s.g.b, s.str_len_at, 1ull << 62); },
         "string length"},
        {"value type", [](Sample& s) { poke<uint32_t>(s.g.b, s.type_key_at, 13); }, "unknown value type 13"},
        {"array type", [](Sample& s) { poke<uint32_t>(s.g.b, s.elem_type_at, 99); },
         "unknown array element type"},
        {"array length", [](Sample& s) { poke<uint64_t>(s.g.b, s.arr_len_at, 1ull << 61); }, "cannot fit"},
        {"bool", [](Sample& s) { poke<uint8_t>(s.g.b, s.bool_at, 2); }, "neither 0 nor 1"},
        {"n_dims 0", [](Sample& s) { poke<uint32_t>(s.g.b, s.ndims_at, 0); }, "tensor 't.f32': 0 dimensions"},
        {"n_dims 5", [](Sample& s) { poke<uint32_t>(s.g.b, s.ndims_at, 5); }, "5 dimensions"},
        {"dim 0", [](Sample& s) { poke<uint64_t>(s.g.b, s.dim_at, 0); }, "dimension 0 is 0"},
        {"dim huge", [](Sample& s) { poke<uint64_t>(s.g.b, s.dim_at, 1ull << 50); }, "dimension 0 is"},
        {"ggml type", [](Sample& s) { poke<uint32_t>(s.g.b, s.type_at, 77); }, "unknown GGML type 77"},
        {"fp8 id is not GGUF", [](Sample& s) { poke<uint32_t>(s.g.b, s.type_at, 0x1000); },
         "unknown GGML type"},
        {"row vs block", [](Sample& s) { poke<uint32_t>(s.g.b, s.type_at, 8); },
         "not a whole number of q8_0 blocks"},
        {"misaligned offset", [](Sample& s) { poke<uint64_t>(s.g.b, s.offset_at, 8); },
         "not a multiple of the alignment"},
        {"offset beyond", [](Sample& s) { poke<uint64_t>(s.g.b, s.tensor2_offset_at, 1ull << 40); },
         "beyond the end"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.label);
        Sample s = make_sample();
        c.corrupt(s);
        write(dir / "bad.gguf", s.g.b);
        const std::string err = open_error(dir / "bad.gguf");
        CHECK(err.find("bad.gguf") != std::string::npos);
        CHECK(err.find(c.expect) != std::string::npos);
    }
}

TEST_CASE("GGUF reader: random byte corruption never crashes") {
    test::ScratchDir dir("gguf-fuzz");
    const auto s = make_sample();
    std::mt19937 rng(1234);
    int opened = 0, rejected = 0;
    for (int iter = 0; iter < 1500; ++iter) {
        std::string b = s.g.b;
        const int flips = 1 + int(rng() % 4);
        for (int k = 0; k < flips; ++k) b[rng() % 600] = char(rng());
        write(dir / "f.gguf", b);
        try {
            GgufFile f(dir / "f.gguf");
            for (const auto& t : f.tensors()) CHECK(f.data_offset() + t.offset + t.n_bytes <= f.file_size());
            ++opened;
        } catch (const std::runtime_error&) {
            ++rejected;
        }
    }
    CHECK(opened + rejected == 1500);
    CHECK(rejected > 0);
}

TEST_CASE("GgufWriter output reads back: keys, tensors in order, each padded to the alignment") {
    test::ScratchDir dir("gguf-writer");
    for (uint32_t align : {32u, 256u}) {
        {
            GgufWriter w(dir / "w.gguf", align);
            w.add_string("general.architecture", "test");
            w.add_u32("a.u32", 7);
            w.add_f32("a.f32", -0.5f);
            w.add_bool("a.bool", true);
            w.add_string_array("a.strs", {"x", "yy"});
            w.add_i32_array("a.ints", {1, -2, 3});
            w.add_tensor("one", GgmlType::f32, {3});
            w.add_tensor("two", GgmlType::q8_0, {64, 2});
            w.begin_data();
            const float one[3] = {1, 2, 3};
            w.append(one, 12);
            std::vector<uint8_t> two(136);
            for (size_t i = 0; i < two.size(); ++i) two[i] = uint8_t(i);
            w.append(two.data(), 100);  // in two pieces
            w.append(two.data() + 100, 36);
            w.finish();
        }
        GgufFile f(dir / "w.gguf");
        CHECK(f.alignment() == align);
        CHECK(f.get_string("general.architecture") == "test");
        CHECK(f.get_uint("a.u32") == 7);
        CHECK(f.get_float("a.f32") == -0.5);
        CHECK(f.get_bool("a.bool"));
        CHECK(f.find("a.strs")->strings == std::vector<std::string>{"x", "yy"});
        CHECK(f.find("a.ints")->ints == std::vector<int64_t>{1, -2, 3});
        REQUIRE(f.tensors().size() == 2);
        CHECK(f.tensors()[0].offset == 0);
        CHECK(f.tensors()[1].offset == align);  // 12 bytes padded to the alignment
        CHECK(f.data_offset() % align == 0);
        float one[3];
        std::memcpy(one, f.tensors()[0].data, 12);
        CHECK(one[2] == 3.0f);
        CHECK(f.tensors()[1].data[135] == 135);
        CHECK(f.file_size() == f.data_offset() + align + (136 + align - 1) / align * align);
    }
}
