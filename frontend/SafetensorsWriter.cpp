#include "frontend/SafetensorsWriter.h"

#include "common/Error.h"

#include <nlohmann/json.hpp>

#include <cstring>
#include <fstream>
#include <map>
#include <set>

namespace v4c {
namespace {

size_t dtypeBytes(const std::string &dtype) {
  static const std::map<std::string, size_t> sizes = {
      {"F32", 4}, {"BF16", 2}, {"F16", 2}, {"F8_E4M3", 1}, {"I64", 8}, {"I32", 4},
      {"U8", 1},  {"I8", 1},   {"BOOL", 1}, {"F8_E8M0", 1}, {"F64", 8}};
  auto it = sizes.find(dtype);
  if (it == sizes.end())
    throw Error("writeSafetensors: unknown dtype \"" + dtype + "\"");
  return it->second;
}

} // namespace

void writeSafetensors(const std::string &path, const std::vector<TensorToWrite> &tensors) {
  // ordered_json keeps the header in the caller's order.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  header["__metadata__"] = {{"format", "pt"}};
  std::set<std::string> names;
  uint64_t offset = 0;
  for (const TensorToWrite &tensor : tensors) {
    if (!names.insert(tensor.name).second)
      throw Error(path + ": tensor \"" + tensor.name + "\" written twice");
    uint64_t expected = dtypeBytes(tensor.dtype);
    for (int64_t extent : tensor.shape)
      expected *= static_cast<uint64_t>(extent);
    if (expected != tensor.bytes.size())
      throw Error(path + ": tensor \"" + tensor.name + "\" has " + std::to_string(tensor.bytes.size()) +
                  " bytes but its shape and dtype need " + std::to_string(expected));
    header[tensor.name] = {{"dtype", tensor.dtype},
                           {"shape", tensor.shape},
                           {"data_offsets", {offset, offset + tensor.bytes.size()}}};
    offset += tensor.bytes.size();
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' '); // keeps the data section 8-byte aligned
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out)
    throw Error(path + ": cannot create");
  uint8_t length[8];
  uint64_t size = text.size();
  for (int i = 0; i < 8; ++i)
    length[i] = static_cast<uint8_t>(size >> (8 * i));
  out.write(reinterpret_cast<const char *>(length), 8);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  for (const TensorToWrite &tensor : tensors)
    out.write(reinterpret_cast<const char *>(tensor.bytes.data()), static_cast<std::streamsize>(tensor.bytes.size()));
  if (!out.flush())
    throw Error(path + ": write failed");
}

TensorToWrite f32Tensor(const std::string &name, std::vector<int64_t> shape, const std::vector<float> &values) {
  TensorToWrite tensor{name, "F32", std::move(shape), std::vector<uint8_t>(values.size() * sizeof(float))};
  if (!values.empty())
    std::memcpy(tensor.bytes.data(), values.data(), tensor.bytes.size());
  return tensor;
}

} // namespace v4c
