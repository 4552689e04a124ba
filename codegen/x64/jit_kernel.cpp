#include "codegen/x64/jit_kernel.hpp"

namespace mf {

const char* jit_status_name(JitStatus s) {
    switch (s) {
        case JitStatus::ok: return "ok";
        case JitStatus::unsupported_isa: return "unsupported ISA";
        case JitStatus::bad_desc: return "descriptor not supported";
        case JitStatus::emit_failed: return "emission failed";
    }
    return "?";
}

JitKernel::JitKernel(std::string name, size_t max_code_bytes)
    : Xbyak::CodeGenerator(max_code_bytes, Xbyak::AutoGrow), name_(std::move(name)) {}

JitStatus JitKernel::create() {
    status_ = check();
    if (status_ != JitStatus::ok) return status_;
    try {
        generate();
        ready();
    } catch (const std::exception& e) {
        status_ = JitStatus::emit_failed;
        error_ = e.what();
        return status_;
    }
    return status_;
}

void JitKernel::preamble() {
    for (const auto* r : {&rbx, &rbp, &r12, &r13, &r14, &r15}) push(*r);
}

void JitKernel::emit_full_tile_config(Xbyak::Label& cfg, int tiles) {
    emit_tile_config(cfg, tiles, [](int) { return TileShape{16, 64}; });
}

void JitKernel::emit_tile_config(Xbyak::Label& cfg, int tiles, const TileShape (&shapes)[8]) {
    mark_data_start();
    align(64);
    L(cfg);
    db(1);  // palette
    db(0);  // start row
    for (int i = 0; i < 14; ++i) db(0);
    for (int t = 0; t < 16; ++t) dw(t < tiles && t < 8 ? shapes[t].bytes_per_row : 0);
    for (int t = 0; t < 16; ++t) db(t < tiles && t < 8 ? shapes[t].rows : 0);
}

void JitKernel::postamble() {
    for (const auto* r : {&r15, &r14, &r13, &r12, &rbp, &rbx}) pop(*r);
    vzeroupper();
    ret();
}

}  // namespace mf
