// `v4c compile --weights dummy`: a fill recipe per weight, chosen from its
// name and role so the dummy model computes sane values (no NaN/inf, logits
// of order one), and no weight bytes in the artifact.
#pragma once

#include <cstdint>
#include <string>

#include "runtime/artifact/Program.h"

namespace v4c {

// The recipe for one weight of `program` (by name, dtype, shape):
//   linears / experts / embeddings   Uniform +-1/sqrt(fan_in) (embeddings +-1)
//   norm weights, mHC scale          Constant 1
//   attention sinks                  Constant 0
//   mHC fn / hc_head fn              Uniform +-1/sqrt(hc*D); base Uniform +-0.5
//   compressor position_bias         Uniform +-0.5
//   router bias                      Uniform +-0.05
//   tid2eid                          IntModulo numExperts (distinct per row)
//   fp8 codes (F8E4M3)               Uniform +-2; their ue8m0 scales (W.scale)
//                                    Exponent round(log2(0.5/sqrt(K)))
//   fp4 codes (U8 data)              Bytes modulo 16; scales log2(0.25/sqrt(K))
// Unknown names: rank >= 2 floats as linears, rank-1 floats Constant 1.
v4rt::DummyRecipe dummyRecipeFor(const v4rt::Program &program, size_t weightIndex, int64_t numExperts);

// Marks every weight of `program` dummy (recipe per dummyRecipeFor) and sets
// the program's seed. Throws v4c::Error for a weight no recipe can fill.
void makeWeightsDummy(v4rt::Program &program, int64_t numExperts, uint64_t seed);

// `v4c dummy-checkpoint ARTIFACT -o DIR`: writes DIR/config.json (the
// artifact's config) and DIR/model.safetensors holding the values the dummy
// artifact's weights generate (f32 / bf16 / i32, under the artifact's weight
// names), so compiling DIR normally yields the same model. Returns 0.
int writeDummyCheckpoint(const std::string &artifactPath, const std::string &directory);

} // namespace v4c
