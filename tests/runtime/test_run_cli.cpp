// The built `moeforge` binary driven like a user would: the chat REPL through a pipe (replies, history reuse,
// /reset, dropping old turns at --ctx, /exit), one-shot --prompt with --logits-out, perplexity with --json and
// --logits-out, and the one-line errors. Uses a tiny generated model carrying DeepSeek-V3's real tokenizer
// (from tools/fetch_tokenizer.sh); skipped with a message where that tokenizer is not fetched.
#include <doctest/doctest.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "model/synthetic_model.hpp"
#include "runtime/logits_file.hpp"
#include "runtime/plan.hpp"
#include "tune/host_profile.hpp"
#include "tests/model/scratch_dir.hpp"

using namespace mf;

namespace {

std::filesystem::path tokenizer_json() {
    std::filesystem::path home = std::getenv("XDG_CACHE_HOME") ? std::filesystem::path(std::getenv("XDG_CACHE_HOME"))
                                                               : std::filesystem::path(std::getenv("HOME")) / ".cache";
    return home / "moeforge" / "tokenizer" / "deepseek-v3" / "tokenizer.json";
}

std::string slurp(const std::filesystem::path& p) {
    std::ifstream f(p, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

int count(const std::string& s, const std::string& what) {
    int n = 0;
    for (size_t i = s.find(what); i != std::string::npos; i = s.find(what, i + 1)) ++n;
    return n;
}

struct Run {
    int rc;
    std::string out, err;
};

// Runs `moeforge ARGS` with `input` on stdin (and `env` before the command, e.g. "XDG_CACHE_HOME=...").
Run moeforge(const test::ScratchDir& dir, const std::string& args, const std::string& input = "",
             const std::string& env = "") {
    const auto in = dir / "stdin.txt", out = dir / "stdout.txt", err = dir / "stderr.txt";
    std::ofstream(in, std::ios::binary) << input;
    const std::string cmd = env + " " + std::string(MOEFORGE_BINARY_DIR) + "/moeforge " + args + " < " + in.string() + " > " +
                            out.string() + " 2> " + err.string();
    const int status = std::system(cmd.c_str());
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(out), slurp(err)};
}

std::filesystem::path tiny_with_real_tokenizer(const test::ScratchDir& dir) {
    SyntheticModelOptions o;
    o.config = preset_config("tiny");
    o.name = "tiny-chat";
    o.seed = 3;
    o.safetensors = false;
    o.vocab = load_tokenizer_json(tokenizer_json());
    return write_synthetic_model(o, dir.path()).gguf;
}

}  // namespace

TEST_CASE("moeforge run: the REPL through a pipe, one-shot prompt with logits, errors") {
    if (!std::filesystem::exists(tokenizer_json())) {
        MESSAGE("skipped: no DeepSeek-V3 tokenizer at " << tokenizer_json().string() << " (tools/fetch_tokenizer.sh)");
        return;
    }
    test::ScratchDir dir("run-cli");
    const auto model = tiny_with_real_tokenizer(dir);
    const std::string common = "--model " + model.string() + " --threads 2 --temperature 0 ";

    // Two turns (the second reuses the cached first), /reset, a third from scratch, /exit.
    Run r = moeforge(dir, "run " + common + "--max-tokens 6", "Hello there!\nAnd a second message.\n/reset\nThird one\n/exit\n");
    CAPTURE(r.err);
    REQUIRE(r.rc == 0);
    CHECK(count(r.err, "[prefill ") == 3);
    CHECK(count(r.err, "decode 6 tokens") == 3);
    CHECK(count(r.err, "[history cleared]") == 1);
    CHECK(r.err.find("(0 reused)") != std::string::npos);
    CHECK(count(r.err, "(0 reused)") == 2);  // the first turn and the one after /reset
    CHECK(count(r.out, "\n") == 3);          // one line per reply
    CHECK(r.err.find("no tuned plan") != std::string::npos);

    // Greedy replies are the same every run; the end of input ends the program like /exit.
    Run again = moeforge(dir, "run " + common + "--max-tokens 6", "Hello there!\nAnd a second message.\n/reset\nThird one\n");
    CHECK(again.rc == 0);
    CHECK(again.out == r.out);

    // A small context: the oldest turns are dropped with a notice and the chat goes on.
    Run small = moeforge(dir, "run " + common + "--max-tokens 8 --ctx 48",
                         "one two three four five\nsix seven eight nine\nten eleven twelve\nthirteen fourteen\n");
    CHECK(small.rc == 0);
    CHECK(small.err.find("[dropped the ") != std::string::npos);
    CHECK(count(small.err, "[prefill ") == 4);

    // One shot with the logits of every generated token.
    const auto npy = dir / "logits.npy";
    Run one = moeforge(dir, "run " + common + "--max-tokens 5 --prompt \"What is 2+2?\" --logits-out " + npy.string());
    CHECK(one.rc == 0);
    const NpyMatrix m = read_npy_f32(npy);
    CHECK(m.rows == 5);
    CHECK(m.cols == 129280);

    // Errors: one line, exit 1.
    Run missing = moeforge(dir, "run --model " + (dir / "nope.gguf").string() + " --prompt hi");
    CHECK(missing.rc == 1);
    CHECK(count(missing.err, "\n") == 1);
    CHECK(missing.err.find("does not exist") != std::string::npos);
    std::ofstream(dir / "notgguf.gguf") << "this is not a model file at all, just text padding it out a bit";
    Run bad = moeforge(dir, "run --model " + (dir / "notgguf.gguf").string() + " --prompt hi");
    CHECK(bad.rc == 1);
    CHECK(count(bad.err, "\n") == 1);
}

TEST_CASE("moeforge perplexity: llama-perplexity windows, --json and --logits-out") {
    if (!std::filesystem::exists(tokenizer_json())) {
        MESSAGE("skipped: no DeepSeek-V3 tokenizer at " << tokenizer_json().string());
        return;
    }
    test::ScratchDir dir("ppl-cli");
    const auto model = tiny_with_real_tokenizer(dir);
    std::string text;
    for (int i = 0; i < 12; ++i) text += "The quick brown fox jumps over the lazy dog, again and again. ";
    std::ofstream(dir / "text.txt") << text;
    const auto npy = dir / "ppl.npy";
    Run r = moeforge(dir, "perplexity --model " + model.string() + " --threads 2 --ctx 32 --json --file " +
                              (dir / "text.txt").string() + " --logits-out " + npy.string());
    CAPTURE(r.err);
    REQUIRE(r.rc == 0);
    const auto j = nlohmann::json::parse(r.out);
    const int64_t tokens = j.at("tokens"), chunks = j.at("chunks");
    CHECK(chunks == tokens / 32);
    CHECK(j.at("scored").get<int64_t>() == chunks * (32 - 1 - 16));
    const double ppl = j.at("ppl");
    CHECK(std::isfinite(ppl));
    CHECK(ppl > 1.0);
    const NpyMatrix m = read_npy_f32(npy);
    CHECK(m.rows == j.at("scored").get<int64_t>());
    // Too short a text for the window: one line, exit 1.
    std::ofstream(dir / "short.txt") << "too short";
    Run s = moeforge(dir, "perplexity --model " + model.string() + " --ctx 32 --file " + (dir / "short.txt").string());
    CHECK(s.rc == 1);
    CHECK(s.err.find("needs at least 64") != std::string::npos);
}

TEST_CASE("moeforge run: a tuned plan in the cache dir is used, another host plan is refused") {
    if (!std::filesystem::exists(tokenizer_json())) {
        MESSAGE("skipped: no DeepSeek-V3 tokenizer at " << tokenizer_json().string());
        return;
    }
    test::ScratchDir dir("run-plan");
    const auto model = tiny_with_real_tokenizer(dir);
    const auto cache = dir / "cache";
    std::filesystem::create_directories(cache / "moeforge");
    HostProfileOptions quick;
    quick.measure = false;
    HostProfile here = capture_host_profile(quick);
    compute_fingerprint(here);
    const DeepSeekV3Config c = preset_config("tiny");
    const ModelShape shape = model_shape_of(c, "int8");
    Plan plan = default_plan(here.fingerprint, shape);
    plan.is_default = false;
    write_plan_file(cache / "moeforge" / plan_file_name(here.fingerprint, shape), plan);
    const std::string args = "run --model " + model.string() + " --threads 1 --temperature 0 --max-tokens 3 --prompt hi";
    Run r = moeforge(dir, args, "", "XDG_CACHE_HOME=" + cache.string());
    CAPTURE(r.err);
    CHECK(r.rc == 0);
    CHECK(r.err.find("tuned plan") != std::string::npos);

    Plan other = plan;
    other.host_fingerprint = "0123456789abcdef";
    write_plan_file(dir / "other.json", other);
    Run refused = moeforge(dir, args + " --plan " + (dir / "other.json").string());
    CHECK(refused.rc == 1);
    CHECK(refused.err.find("0123456789abcdef") != std::string::npos);
    CHECK(refused.err.find(here.fingerprint) != std::string::npos);
}
