// NVRTC compile tests: run in CI without a GPU (NVRTC needs no driver).
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>

#include "codegen/cuda/cubin_cache.hpp"
#include "codegen/cuda/embedded_headers.hpp"
#include "codegen/cuda/mla_kernels.hpp"
#include "codegen/cuda/nvrtc_compiler.hpp"
#include "tests/codegen/cuda_kernel_catalog.hpp"
#include "tests/codegen/nvrtc_checks.hpp"

namespace fs = std::filesystem;
using namespace mf;
using mf::test::check_no_ptxas_performance_loss;
using mf::test::occurrences;

namespace {

fs::path fresh_dir(const char* name) {
    fs::path d = fs::path(MOEFORGE_BINARY_DIR) / "test_tmp" / name;
    fs::remove_all(d);
    fs::create_directories(d);
    return d;
}

size_t count_files(const fs::path& d, const std::string& ext) {
    size_t n = 0;
    for (const auto& e : fs::directory_iterator(d)) n += e.path().extension() == ext;
    return n;
}

}  // namespace

TEST_CASE("cuda embed: every kernels/*.cuh is embedded byte for byte") {
    const fs::path dir = fs::path(MOEFORGE_SOURCE_DIR) / "codegen" / "cuda" / "kernels";
    size_t on_disk = 0;
    for (const auto& e : fs::directory_iterator(dir)) {
        if (e.path().extension() != ".cuh") continue;
        ++on_disk;
        std::ifstream f(e.path(), std::ios::binary);
        const std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
        bool found = false;
        for (const auto& h : embedded_cuda_headers())
            if (h.name == e.path().filename().string()) {
                found = true;
                CHECK(h.text == text);
            }
        CHECK_MESSAGE(found, e.path().filename().string() << " is not embedded (re-run cmake)");
    }
    CHECK(on_disk == embedded_cuda_headers().size());
    CHECK(on_disk >= 8);
}

TEST_CASE("cuda nvrtc: every kernel compiles to a CUBIN for sm_90a, sm_86, sm_80 and sm_89") {
    if (!nvrtc_available()) {
        MESSAGE("skipped: moeforge was built without the CUDA toolkit, so there is no NVRTC to test");
        return;
    }
    CHECK(nvrtc_version() >= 12000);
    for (const auto& [major, minor] : {std::pair{9, 0}, std::pair{8, 6}, std::pair{8, 0}, std::pair{8, 9}}) {
        const CudaArch arch = CudaArch::for_device(major, minor);
        CHECK(arch.sm_name() ==
              (major == 9 ? std::string("sm_90a") : "sm_" + std::to_string(major * 10 + minor)));
        const auto catalog = test::cuda_kernel_catalog(major * 10 + minor);
        CHECK(catalog.size() >= 13);
        for (const CudaKernelSource& src : catalog) {
            CAPTURE(src.name);
            CAPTURE(arch.sm_name());
            const CudaBinary bin = compile_cuda_kernel(src, arch, {});
            CHECK_FALSE(bin.from_cache);
            REQUIRE(bin.cubin.size() > 1000);
            CHECK(bin.cubin.compare(0, 4,
                                    "\x7f"
                                    "ELF") == 0);
            CHECK(cubin_has_symbol(bin.cubin, src.name));
            CHECK_FALSE(cubin_has_symbol(bin.cubin, src.name + "_not_there"));
            CHECK(bin.log.find("error") == std::string::npos);
            CHECK(src.block_threads > 0);
            CHECK(src.dynamic_smem_bytes <= static_cast<unsigned>(cuda_max_smem_optin(major * 10 + minor)));
        }
    }
}

TEST_CASE("cuda nvrtc: the Hopper MLA decode uses the big-tile wgmma config, sm_86 one that fits 99 KiB") {
    const MlaDecodeDesc v3;
    MlaDecodeConfig tma{64, 2, 1, 1, 1, 1};  // wgmma, bf16 partials, TMA tile loads, per-warp combine, early
    tma.tma = 1;                            // prologue, the combine fused where the grid fits
    tma.combine_warp = 1;
    tma.prologue = 1;
    tma.fused_combine = 1;
    tma.merge_loads = 1;  // (session 5: the merge's 512-byte warp loads)
    tma.tile_box_wait = 1;  // (session 8: S waits box by box, S right behind P V in CTAs of 2 tiles or more)
    tma.pv_overlap = 2;
    CHECK(mla_decode_default_config(v3, 90) == tma);
    CHECK(mla_decode_default_config(v3, 89).wgmma == 0);
    CHECK(mla_decode_smem_bytes(v3, MlaDecodeConfig{64, 2}) <= 227u * 1024);
    const MlaDecodeConfig c86 = mla_decode_default_config(v3, 86);
    CHECK(mla_decode_smem_bytes(v3, c86) <= 99u * 1024);
    CHECK(mla_decode_unsupported(v3, MlaDecodeConfig{64, 2}, 86).find("shared memory") != std::string::npos);
    CHECK_FALSE(mla_decode_unsupported(v3, MlaDecodeConfig{64, 2}, 75).empty());
    MlaDecodeDesc bad = v3;
    bad.latent_dim = 256;
    CHECK_FALSE(mla_decode_unsupported(bad, MlaDecodeConfig{16, 1}, 90).empty());
    CHECK_THROWS_AS(mla_decode_source(bad, MlaDecodeConfig{16, 1}, 90), std::invalid_argument);
}

TEST_CASE("cuda nvrtc: a compile error reports the kernel name and NVRTC's log") {
    if (!nvrtc_available()) {
        MESSAGE("skipped: built without NVRTC");
        return;
    }
    CudaKernelSource bad{"broken_kernel",
                         "#include \"bf16.cuh\"\nextern \"C\" __global__ void broken_kernel() { "
                         "undeclared_thing = 1; }\n",
                         32, 0};
    try {
        compile_cuda_kernel(bad, CudaArch{9, 0, true}, {});
        FAIL("no exception");
    } catch (const std::runtime_error& e) {
        const std::string msg = e.what();
        CHECK(msg.find("broken_kernel") != std::string::npos);
        CHECK(msg.find("undeclared_thing") != std::string::npos);  // from the compile log
        CHECK(msg.find("sm_90a") != std::string::npos);
    }
}

TEST_CASE("cuda cubin cache: second compile hits, key covers arch and source, writes are atomic") {
    if (!nvrtc_available()) {
        MESSAGE("skipped: built without NVRTC");
        return;
    }
    const fs::path dir = fresh_dir("cubin_cache");
    const CudaKernelSource src =
        elementwise_source(ElementwiseDesc{ElementwiseOp::cast, CudaDtype::f32, CudaDtype::bf16});
    const CudaArch hopper{9, 0, true}, ampere{8, 6, false};

    const CudaBinary first = compile_cuda_kernel(src, hopper, dir);
    CHECK_FALSE(first.from_cache);
    CHECK(count_files(dir, ".cubin") == 1);
    const CudaBinary second = compile_cuda_kernel(src, hopper, dir);
    CHECK(second.from_cache);
    CHECK(second.cubin == first.cubin);

    const CudaBinary other_arch = compile_cuda_kernel(src, ampere, dir);
    CHECK_FALSE(other_arch.from_cache);
    CHECK(count_files(dir, ".cubin") == 2);

    CudaKernelSource edited = src;
    edited.source += "// edited\n";
    CHECK_FALSE(compile_cuda_kernel(edited, hopper, dir).from_cache);
    CHECK(count_files(dir, ".cubin") == 3);
    // no temporary files left behind
    for (const auto& e : fs::directory_iterator(dir)) CHECK(e.path().extension() == ".cubin");

    // a damaged entry is recompiled and replaced
    const std::string opts = [&] {
        std::string s;
        for (const auto& o : nvrtc_options(hopper)) s += o + "\n";
        return s;
    }();
    const fs::path file =
        cubin_cache_path(dir, src.name, cubin_cache_key(src.source, opts, hopper.sm_name(), nvrtc_version()));
    REQUIRE(fs::exists(file));
    std::ofstream(file, std::ios::binary | std::ios::trunc) << "garbage";
    const CudaBinary repaired = compile_cuda_kernel(src, hopper, dir);
    CHECK_FALSE(repaired.from_cache);
    CHECK(compile_cuda_kernel(src, hopper, dir).from_cache);
}

TEST_CASE("cuda cubin cache: key depends on each input") {
    const std::string k = cubin_cache_key("src", "opts", "sm_90a", 13000);
    CHECK(k.size() == 32);
    CHECK(k == cubin_cache_key("src", "opts", "sm_90a", 13000));
    CHECK(k != cubin_cache_key("src2", "opts", "sm_90a", 13000));
    CHECK(k != cubin_cache_key("src", "opts2", "sm_90a", 13000));
    CHECK(k != cubin_cache_key("src", "opts", "sm_86", 13000));
    CHECK(k != cubin_cache_key("src", "opts", "sm_90a", 13010));
}

TEST_CASE("cuda cubin cache: kernel names longer than a file name still make one cache entry each") {
    // The MLA decode kernels' names carry every config field (~230 characters in session 9): with the key and the
    // temporary suffix they overflowed Linux's 255-byte file names and every GPU load failed to write its CUBIN.
    const fs::path dir = fresh_dir("cubin_cache_long_names");
    const MlaDecodeDesc d;
    const std::string mla = mla_decode_name(d, mla_decode_default_config(d, 90)), longest(400, 'k');
    const std::string elf = std::string("\x7f") + "ELF and the rest of a CUBIN";
    for (const std::string& name : {mla, longest, longest + "x"}) {
        CAPTURE(name.size());
        const fs::path file = cubin_cache_path(dir, name, cubin_cache_key(name, "opts", "sm_90a", 13000));
        write_cached_cubin(file, elf);
        CHECK(read_cached_cubin(file) == elf);
    }
    CHECK(count_files(dir, ".cubin") == 3);  // names cut alike stay apart by their keys
}

TEST_CASE("cuda nvrtc: PTX of the MLA decode kernel holds mma.sync and ldmatrix") {
    if (!nvrtc_available()) {
        MESSAGE("skipped: built without NVRTC");
        return;
    }
    const MlaDecodeDesc v3;
    const std::string ptx =
        compile_cuda_ptx(mla_decode_source(v3, MlaDecodeConfig{64, 2}, 90), CudaArch{9, 0, true});
    CHECK(ptx.find(".target sm_90a") != std::string::npos);
    CHECK(ptx.find("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32") != std::string::npos);
    CHECK(ptx.find("ldmatrix.sync.aligned.m8n8.x4.trans") != std::string::npos);
    CHECK(ptx.find("cp.async.cg.shared.global") != std::string::npos);
}

TEST_CASE("cuda nvrtc: PTX of the sm_90a MLA decode kernel holds wgmma with a transposed-B PV product") {
    if (!nvrtc_available()) {
        MESSAGE("skipped: built without NVRTC");
        return;
    }
    const MlaDecodeDesc v3;
    for (const MlaDecodeConfig& c :
         {MlaDecodeConfig{64, 2, 1, 1}, MlaDecodeConfig{32, 4, 1, 1},
          MlaDecodeConfig{64, 2, 1, 1, 1, 0, 0, 1}, MlaDecodeConfig{64, 2, 1, 1, 1, 0, 0, 1, 4}}) {
        const std::string ptx = compile_cuda_ptx(mla_decode_source(v3, c, 90), CudaArch{9, 0, true});
        CAPTURE(fields_print(c));
        CHECK(ptx.find(".target sm_90a") != std::string::npos);
        const int cols = c.qk_split ? c.tile_tokens / 2 : c.tile_tokens;  // S columns per warpgroup
        const std::string qk =
            "wgmma.mma_async.sync.aligned.m64n" + std::to_string(cols) + "k16.f32.bf16.bf16";
        CHECK(ptx.find(qk) != std::string::npos);
        CHECK(ptx.find("wgmma.mma_async.sync.aligned.m64n256k16.f32.bf16.bf16") != std::string::npos);
        CHECK(ptx.find("p, 1, 1, 0, 1;") != std::string::npos);  // imm-trans-b = 1 for V
        CHECK(ptx.find("fence.proxy.async.shared::cta") != std::string::npos);
        CHECK(ptx.find("mma.sync") == std::string::npos);
        CHECK(occurrences(ptx, "wgmma.mma_async") == size_t(36 + c.tile_tokens / 16));  // all unrolled
    }
    check_no_ptxas_performance_loss(v3, mla_decode_default_config(v3, 90));  // (the S descriptors stepped by adds)
}

TEST_CASE("cuda nvrtc: PTX of the seesaw MLA decode: S and P V steps unrolled at each call site, mbarrier handoffs") {
    if (!nvrtc_available()) {
        MESSAGE("skipped: built without NVRTC");
        return;
    }
    const MlaDecodeDesc v3;
    MlaDecodeConfig c{64, 2, 1, 1, 1, 1};
    c.tma = 1;
    c.seesaw = 1;
    const std::string ptx = compile_cuda_ptx(mla_decode_source(v3, c, 90), CudaArch{9, 0, true});
    auto count = [&](const std::string& what) { return occurrences(ptx, what); };
    // S: tile 0 and the loop (36 k-steps each); P V: own tile (tile 0, loop), other's tile (loop, last pass)
    CHECK(count("wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16") == 2 * 36);
    CHECK(count("wgmma.mma_async.sync.aligned.m64n256k16.f32.bf16.bf16") == 4 * 4);
    CHECK(count("cp.async.bulk.tensor.2d") >= 1);
    CHECK(count("mbarrier.arrive.release.cta.shared::cta.b64") >= 3);  // empty (twice), ready
    CHECK(count("bar.sync") >= 1);  // the warpgroup barrier
    CHECK(count("mma.sync") == 0);
    check_no_ptxas_performance_loss(v3, c);
}
