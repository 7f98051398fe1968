// What `v4c compile --target / --precision / --weights` mean together, kept
// out of main.cpp: validation with one-line errors, the storage precision of
// activations, and the CUDA back half (kernels -> nvcc -> cubin).
#pragma once

#include <string>

#include "runtime/artifact/Program.h"

namespace v4c {

// Throws v4c::Error for an unknown target ("valid targets: cpu, sm_80, ..."),
// an unknown precision, weights mode or tensor-core kind, bf16 on the CPU, or
// --tensor-cores wgmma for any target but sm_90a (the CPU included: it has
// no tensor cores; wmma, the default, means nothing there and is ignored).
void checkTargetOptions(const std::string &target, const std::string &precision, const std::string &weights,
                        const std::string &tensorCores = "wmma");

bool isCudaTarget(const std::string &target);

// Storage of activations (v4-cast-precision): "bf16" for CUDA targets with
// --precision bf16 or fp8, else "fp32". Caches default to the same.
std::string activationPrecision(const std::string &target, const std::string &precision);

// CUDA targets: generates the kernels, runs nvcc and embeds the cubin
// (codegen/cuda/CudaCodegen.h). `keepSourceDir` non-empty keeps the .cu.
// `tensorCores`: "wmma" | "wgmma" (checked by checkTargetOptions). cpu: nothing to do.
void finishForTarget(v4rt::Program &program, const std::string &keepSourceDir, const std::string &tensorCores = "wmma");

} // namespace v4c
