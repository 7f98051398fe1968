#include "runtime/cuda/LaunchParams.h"

#include <nlohmann/json.hpp>

#include "common/Error.h"
#include "runtime/cpu/CacheStorage.h"

namespace v4rt::cuda {
namespace {

uint64_t indexed(const std::vector<uint64_t> &table, uint32_t index, const char *kind, const std::string &where) {
  if (index >= table.size())
    throw v4c::Error(where + ": " + kind + " index " + std::to_string(index) + " is out of range (" +
                     std::to_string(table.size()) + " exist)");
  return table[index];
}

} // namespace

uint64_t argumentAddress(const ArgRef &arg, const ArgAddresses &addresses, const std::string &where) {
  switch (arg.kind) {
  case ArgKind::Arena:
    if (arg.offset + arg.byteSize() > addresses.arenaBytes)
      throw v4c::Error(where + ": arena argument [" + std::to_string(arg.offset) + ", " +
                       std::to_string(arg.offset + arg.byteSize()) + ") exceeds the bucket's arena of " +
                       std::to_string(addresses.arenaBytes) + " bytes");
    return addresses.arena + arg.offset;
  case ArgKind::Weight:
    return indexed(addresses.weights, arg.index, "weight", where);
  case ArgKind::Cache:
    return indexed(addresses.caches, arg.index, "cache slot", where);
  case ArgKind::Input:
    return indexed(addresses.inputs, arg.index, "input", where);
  case ArgKind::Output:
    return indexed(addresses.outputs, arg.index, "output", where);
  }
  throw v4c::Error(where + ": unknown argument kind " + std::to_string(static_cast<int>(arg.kind)));
}

std::vector<uint64_t> stepParams(const Step &step, const ArgAddresses &addresses, const std::string &where) {
  std::vector<uint64_t> params;
  params.reserve(step.ins.size() + step.outs.size() + 1);
  for (size_t i = 0; i < step.ins.size(); ++i)
    params.push_back(argumentAddress(step.ins[i], addresses, where + " input " + std::to_string(i)));
  for (size_t i = 0; i < step.outs.size(); ++i)
    params.push_back(argumentAddress(step.outs[i], addresses, where + " output " + std::to_string(i)));
  params.push_back(addresses.dyn);
  return params;
}

int64_t cacheSlotRows(const CacheSlot &slot, int64_t maxContext) {
  if (slot.kind != CacheKind::Entries)
    return slot.rows;
  v4c::check(slot.rate > 0, "cache slot \"" + slot.name + "\" has rate " + std::to_string(slot.rate));
  return (maxContext + slot.rate - 1) / slot.rate;
}

uint64_t cacheSlotBytes(const CacheSlot &slot, int64_t maxContext) {
  // Rows in the slot's storage format (fp8 rows carry scales and bf16 rope channels).
  return static_cast<uint64_t>(cacheSlotRows(slot, maxContext)) *
         cacheRowBytes(CacheRowFormat{slot.dtype, slot.ropeWidth}, slot.width);
}

int64_t sessionMaxContext(const Program &program, int64_t requested) {
  int64_t configured = 0;
  try {
    const nlohmann::json config = nlohmann::json::parse(program.configJson);
    configured = config.value("max_position_embeddings", int64_t{0});
  } catch (const nlohmann::json::exception &e) {
    throw v4c::Error(std::string("the artifact's model config is not valid JSON: ") + e.what());
  }
  v4c::check(configured > 0, "the artifact's model config has no max_position_embeddings");
  if (requested <= 0)
    return configured;
  v4c::check(requested <= configured, "--max-context " + std::to_string(requested) +
                                          " exceeds the model's max_position_embeddings " +
                                          std::to_string(configured));
  return requested;
}

std::string describeStep(const Program &program, const Bucket &bucket, size_t stepIndex) {
  std::string text = "bucket " + bucket.name + " step " + std::to_string(stepIndex);
  if (stepIndex < bucket.steps.size() && bucket.steps[stepIndex].kernel < program.kernels.size())
    text += " " + program.kernels[bucket.steps[stepIndex].kernel].name;
  return text;
}

} // namespace v4rt::cuda
