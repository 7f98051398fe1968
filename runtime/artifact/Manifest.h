// Conversion between v4rt::Program and the flatbuffers manifest (v4a.fbs).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "runtime/artifact/Program.h"

namespace v4rt::artifact {

// Serialises `program` (weights with their offsets, sizes and checksums
// already set; weight data pointers are ignored). Every scalar is written
// even when it equals its default, so the encoded size depends only on the
// program's structure, never on the values of offsets or checksums.
std::vector<uint8_t> encodeManifest(const Program &program);

// Runs the flatbuffers Verifier (with the "V4A1" identifier) over `size`
// bytes at `data` (8-byte aligned), checks the schema version, and converts the manifest,
// rejecting unknown enum values. Weight data pointers are left null. Throws
// v4c::Error (without a file name) on any failure. Structural checks of the
// result are the caller's job (checkProgram, checkWeightLayout).
Program decodeManifest(const uint8_t *data, size_t size);

} // namespace v4rt::artifact
