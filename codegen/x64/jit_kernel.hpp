// Thin base for every Xbyak generator: name, two-phase creation with a status, prologue/epilogue.
// Subclasses emit in generate(), never in the constructor, so a failure becomes a status, not a throw mid-build.
#pragma once
#include <xbyak/xbyak.h>

#include <cstddef>
#include <string>

namespace mf {

enum class JitStatus { ok, unsupported_isa, bad_desc, emit_failed };
const char* jit_status_name(JitStatus s);

class JitKernel : public Xbyak::CodeGenerator {
public:
    explicit JitKernel(std::string name, size_t max_code_bytes = 64 * 1024);
    ~JitKernel() override = default;
    JitKernel(const JitKernel&) = delete;
    JitKernel& operator=(const JitKernel&) = delete;

    // Emits the code; afterwards entry() is callable iff the result is JitStatus::ok.
    JitStatus create();
    JitStatus status() const { return status_; }
    const std::string& error() const { return error_; }
    const std::string& name() const { return name_; }
    const void* entry() const { return getCode(); }
    size_t code_size() const { return getSize(); }
    // Bytes of instructions; anything after (constants such as a tile configuration) is data.
    size_t text_size() const { return text_size_ ? text_size_ : getSize(); }

    // Every kernel has the same C signature: one pointer to its plain arguments struct.
    template <class Args>
    void operator()(const Args* args) const {
        reinterpret_cast<void (*)(const void*)>(const_cast<uint8_t*>(getCode()))(args);
    }

protected:
    // Returns a status other than ok to refuse a (Desc, Config) combination without emitting.
    virtual JitStatus check() const { return JitStatus::ok; }
    virtual void generate() = 0;

    // System V: the arguments pointer arrives in rdi. preamble() saves rbx, rbp, r12-r15; postamble() restores
    // them, clears the upper vector state and returns.
    void preamble();
    void postamble();
    const Xbyak::Reg64& abi_args() const { return rdi; }
    // Call where constant data starts (after the last instruction), so disassembly stops there.
    void mark_data_start() { text_size_ = getSize(); }
    // Emits, after the code, an AMX palette-1 tile configuration for `tiles` tiles of 16 rows x 64 bytes and
    // binds `cfg` to it: ldtilecfg reads it from the code stream, so no compiler can drop its stores.
    void emit_full_tile_config(Xbyak::Label& cfg, int tiles);
    // The same for tiles of their own shapes: tile t has rows(t) rows of bytes_per_row(t) bytes for t < tiles.
    struct TileShape {
        int rows;
        int bytes_per_row;
    };
    template <class ShapeOf>
    void emit_tile_config(Xbyak::Label& cfg, int tiles, ShapeOf shape_of) {
        TileShape shapes[8] = {};
        for (int t = 0; t < tiles && t < 8; ++t) shapes[t] = shape_of(t);
        emit_tile_config(cfg, tiles, shapes);
    }
    void emit_tile_config(Xbyak::Label& cfg, int tiles, const TileShape (&shapes)[8]);

private:
    std::string name_;
    JitStatus status_ = JitStatus::emit_failed;
    std::string error_;
    size_t text_size_ = 0;
};

}  // namespace mf
