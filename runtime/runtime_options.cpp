#include "runtime/runtime_options.hpp"

#include <stdexcept>

#include <fmt/core.h>

#include "model/model.hpp"

namespace mf {

ComputeType RuntimeOptions::dense_type() const {
    if (dense == "auto" || dense == "bf16") return ComputeType::bf16;
    if (dense == "int8") return ComputeType::int8;
    throw std::invalid_argument("--dense " + dense + ": expected auto, bf16 or int8");
}

ComputeType RuntimeOptions::expert_type(const Model& m) const {
    if (experts == "auto") {
        for (const auto& l : m.weights().layers)
            if (!l.exp_gate.empty()) return l.exp_gate[0].type == GgmlType::q4_k ? ComputeType::int4 : ComputeType::int8;
        return ComputeType::int8;
    }
    if (experts == "int8") return ComputeType::int8;
    if (experts == "int4") return ComputeType::int4;
    if (experts == "bf16") return ComputeType::bf16;
    throw std::invalid_argument("--experts " + experts + ": expected auto, int8, int4 or bf16");
}

std::string RuntimeOptions::describe() const {
    return fmt::format("{}; dense {}, experts {}, prefill chunk {}, ctx {}", plan_note, compute_type_name(dense_type()),
                       experts, prefill_chunk > 0 ? std::to_string(prefill_chunk) : std::string("auto"), ctx);
}

}  // namespace mf
