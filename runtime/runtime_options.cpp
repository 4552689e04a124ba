#include "runtime/runtime_options.hpp"

#include <stdexcept>

#include <fmt/core.h>

namespace mf {

ComputeType RuntimeOptions::dense_type() const {
    if (dense == "auto" || dense == "bf16") return ComputeType::bf16;
    if (dense == "int8") return ComputeType::int8;
    throw std::invalid_argument("--dense " + dense + ": expected auto, bf16 or int8");
}

ComputeType RuntimeOptions::expert_type() const {
    if (experts == "auto" || experts == "int8") return ComputeType::int8;
    if (experts == "bf16") return ComputeType::bf16;
    throw std::invalid_argument("--experts " + experts + ": expected auto, int8 or bf16");
}

std::string RuntimeOptions::describe() const {
    return fmt::format("no tuned plan (runtime/plan.hpp not built yet): documented defaults; dense {}, experts {}, "
                       "prefill chunk {}, ctx {}",
                       compute_type_name(dense_type()), compute_type_name(expert_type()), prefill_chunk, ctx);
}

}  // namespace mf
