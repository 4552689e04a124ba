// The CUDA descriptors' field lists (`fields`) go through the same machinery as the x64 ones: equality,
// hashing, the kernel's name, printing and JSON all live in codegen/kernel_fields.hpp.
#pragma once
#include "codegen/kernel_fields.hpp"
