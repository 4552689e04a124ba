// The safetensors reader and writer, the HF checkpoint directory (single file and index + shards), and their
// errors on truncated and corrupted files.
#include <doctest/doctest.h>

#include <cstring>
#include <fstream>
#include <random>

#include "model/hf_checkpoint.hpp"
#include "model/safetensors_file.hpp"
#include "model/safetensors_writer.hpp"
#include "tests/model/scratch_dir.hpp"

using namespace mf;

namespace {

void write(const std::filesystem::path& p, const std::string& bytes) {
    std::ofstream(p, std::ios::binary | std::ios::trunc).write(bytes.data(), std::streamsize(bytes.size()));
}
std::string read(const std::filesystem::path& p) {
    std::ifstream f(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), {});
}
// A file from a literal JSON header and `data_len` bytes of data.
std::string file_with_header(const std::string& header, size_t data_len) {
    std::string b(8, '\0');
    const uint64_t n = header.size();
    std::memcpy(b.data(), &n, 8);
    return b + header + std::string(data_len, '\x01');
}
std::string open_error(const std::filesystem::path& p) {
    try {
        SafetensorsFile f(p);
    } catch (const std::runtime_error& e) {
        return e.what();
    }
    return "";
}

void write_sample(const std::filesystem::path& p) {
    SafetensorsWriter w(p);
    w.set_metadata("format", "pt");
    w.add_tensor("a", "F32", {2, 3});
    w.add_tensor("b.weight", "BF16", {4});
    w.add_tensor("c", "F8_E4M3", {2, 2});
    w.begin_data();
    const float a[6] = {1, 2, 3, 4, 5, 6};
    w.append(a, sizeof a);
    const uint16_t b[4] = {0x3f80, 0x4000, 0x4040, 0x4080};
    w.append(b, sizeof b);
    const uint8_t c[4] = {0x38, 0x40, 0x48, 0x50};
    w.append(c, sizeof c);
    w.finish();
}

}  // namespace

TEST_CASE("safetensors: writer output reads back with dtypes, shapes, data and metadata") {
    test::ScratchDir dir("st");
    write_sample(dir / "m.safetensors");
    const std::string bytes = read(dir / "m.safetensors");
    uint64_t header_len;
    std::memcpy(&header_len, bytes.data(), 8);
    CHECK(header_len % 8 == 0);
    SafetensorsFile f(dir / "m.safetensors");
    CHECK(f.metadata().at("format") == "pt");
    REQUIRE(f.tensors().size() == 3);
    const auto* a = f.find("a");
    REQUIRE(a);
    CHECK(a->dtype == "F32");
    CHECK(a->shape == std::vector<uint64_t>{2, 3});
    float av[6];
    std::memcpy(av, a->data, 24);
    CHECK(av[5] == 6.0f);
    CHECK(f.find("b.weight")->n_bytes == 8);
    CHECK(f.find("c")->data[3] == 0x50);
    CHECK(safetensors_dtype_to_ggml("F8_E4M3") == GgmlType::f8_e4m3);
    CHECK(!safetensors_dtype_to_ggml("I64"));
}

TEST_CASE("safetensors: every truncation and each bad header field is a clear error") {
    test::ScratchDir dir("st-bad");
    write_sample(dir / "good.safetensors");
    const std::string good = read(dir / "good.safetensors");
    for (size_t n = 0; n < good.size(); ++n) {
        write(dir / "t.safetensors", good.substr(0, n));
        CAPTURE(n);
        CHECK(open_error(dir / "t.safetensors").find("t.safetensors") != std::string::npos);
    }
    struct Case {
        const char* label;
        std::string bytes;
        const char* expect;
    };
    std::string huge = good;
    const uint64_t big = 1ull << 40;
    std::memcpy(huge.data(), &big, 8);
    const std::vector<Case> cases = {
        {"tiny file", "abc", "too short"},
        {"header length", huge, "header length"},
        {"not json", file_with_header("{\"a\": [", 0), "not valid JSON"},
        {"not object", file_with_header("[1, 2]", 0), "not a JSON object"},
        {"no dtype", file_with_header(R"({"a": {"shape": [1], "data_offsets": [0, 4]}})", 4),
         "missing string 'dtype'"},
        {"bad dtype", file_with_header(R"({"a": {"dtype": "F7", "shape": [1], "data_offsets": [0, 4]}})", 4),
         "unknown dtype 'F7'"},
        {"negative dim",
         file_with_header(R"({"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}})", 4),
         "non-negative"},
        {"backwards", file_with_header(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}})", 4),
         "run backwards"},
        {"beyond", file_with_header(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}})", 2),
         "beyond the end"},
        {"size mismatch",
         file_with_header(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}})", 4),
         "8 bytes expected"},
        {"overflow",
         file_with_header(
             R"({"a": {"dtype": "F32", "shape": [1099511627776, 1099511627776], "data_offsets": [0, 4]}})",
             4),
         "overflows"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.label);
        write(dir / "bad.safetensors", c.bytes);
        const std::string err = open_error(dir / "bad.safetensors");
        CHECK(err.find("bad.safetensors") != std::string::npos);
        CHECK(err.find(c.expect) != std::string::npos);
    }
    std::mt19937 rng(99);
    for (int iter = 0; iter < 500; ++iter) {
        std::string b = good;
        b[rng() % b.size()] = char(rng());
        write(dir / "f.safetensors", b);
        try {
            SafetensorsFile f(dir / "f.safetensors");
            for (const auto& t : f.tensors()) CHECK(t.n_bytes <= good.size());
        } catch (const std::runtime_error&) {
        }
    }
}

TEST_CASE("HF checkpoint: index + shards, single file, and the errors of a broken directory") {
    test::ScratchDir dir("hf");
    std::ofstream(dir / "config.json") << R"({"model_type": "deepseek_v3"})";
    {
        SafetensorsWriter a(dir / "model-00001-of-00002.safetensors");
        a.add_tensor("x", "F32", {1});
        const float one = 1;
        a.append(&one, 4);
        a.finish();
        SafetensorsWriter b(dir / "model-00002-of-00002.safetensors");
        b.add_tensor("y", "F32", {1});
        const float two = 2;
        b.append(&two, 4);
        b.finish();
    }
    std::ofstream(dir / "model.safetensors.index.json")
        << R"({"metadata": {"total_size": 8}, "weight_map": {"x": "model-00001-of-00002.safetensors", "y": "model-00002-of-00002.safetensors"}})";
    HfCheckpoint ck(dir.path());
    CHECK(ck.tensor_count() == 2);
    CHECK(ck.shards().size() == 2);
    CHECK(ck.config()["model_type"] == "deepseek_v3");
    float y;
    std::memcpy(&y, ck.find("y")->data, 4);
    CHECK(y == 2.0f);
    CHECK(ck.find("z") == nullptr);

    std::ofstream(dir / "model.safetensors.index.json", std::ios::trunc)
        << R"({"weight_map": {"x": "model-00001-of-00002.safetensors", "z": "model-00002-of-00002.safetensors"}})";
    CHECK_THROWS_WITH_AS(HfCheckpoint(dir.path()), doctest::Contains("lacks it"), std::runtime_error);
    std::ofstream(dir / "model.safetensors.index.json", std::ios::trunc)
        << R"({"weight_map": {"x": "model-00009-of-00009.safetensors"}})";
    CHECK_THROWS_WITH_AS(HfCheckpoint(dir.path()), doctest::Contains("is missing"), std::runtime_error);
    std::ofstream(dir / "model.safetensors.index.json", std::ios::trunc)
        << R"({"weight_map": {"x": "../etc/passwd"}})";
    CHECK_THROWS_WITH_AS(HfCheckpoint(dir.path()), doctest::Contains("not a plain file name"),
                         std::runtime_error);
    std::filesystem::remove(dir / "model.safetensors.index.json");
    CHECK_THROWS_WITH_AS(HfCheckpoint(dir.path()), doctest::Contains("neither"), std::runtime_error);
    std::filesystem::rename(dir / "model-00001-of-00002.safetensors", dir / "model.safetensors");
    CHECK(HfCheckpoint(dir.path()).tensor_count() == 1);
    std::filesystem::remove(dir / "config.json");
    CHECK_THROWS_WITH_AS(HfCheckpoint(dir.path()), doctest::Contains("no config.json"), std::runtime_error);
}
