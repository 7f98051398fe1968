#include "runtime/artifact/Manifest.h"

#include <cstdint>
#include <string>

#include "common/Error.h"
#include "runtime/artifact/ArtifactFormat.h"
#include "runtime/artifact/v4a_generated.h"

namespace v4rt::artifact {
namespace {

using flatbuffers::FlatBufferBuilder;
using flatbuffers::Offset;

// ---- encoding -------------------------------------------------------------

Offset<flatbuffers::Vector<int64_t>> encodeShape(FlatBufferBuilder &fbb,
                                                 const std::vector<int64_t> &shape) {
  return fbb.CreateVector(shape);
}

Offset<fb::ArgRef> encodeArg(FlatBufferBuilder &fbb, const ArgRef &arg) {
  return fb::CreateArgRef(fbb, static_cast<fb::ArgKind>(arg.kind), arg.index, arg.offset,
                          static_cast<fb::DType>(arg.dtype), encodeShape(fbb, arg.shape));
}

Offset<flatbuffers::Vector<Offset<fb::ArgRef>>> encodeArgs(FlatBufferBuilder &fbb,
                                                           const std::vector<ArgRef> &args) {
  std::vector<Offset<fb::ArgRef>> encoded;
  encoded.reserve(args.size());
  for (const ArgRef &arg : args)
    encoded.push_back(encodeArg(fbb, arg));
  return fbb.CreateVector(encoded);
}

Offset<fb::Step> encodeStep(FlatBufferBuilder &fbb, const Step &step) {
  auto ins = encodeArgs(fbb, step.ins);
  auto outs = encodeArgs(fbb, step.outs);
  std::vector<Offset<fb::Attr>> attrs;
  attrs.reserve(step.attrs.size());
  for (const Attr &attr : step.attrs)
    attrs.push_back(fb::CreateAttr(fbb, fbb.CreateString(attr.name), fbb.CreateVector(attr.ints),
                                   fbb.CreateVector(attr.floats), fbb.CreateString(attr.str)));
  const fb::Dim3 grid(step.grid[0], step.grid[1], step.grid[2]);
  const fb::Dim3 block(step.block[0], step.block[1], step.block[2]);
  return fb::CreateStep(fbb, step.kernel, ins, outs, fbb.CreateVector(attrs), &grid, &block,
                        step.sharedBytes);
}

Offset<fb::Bucket> encodeBucket(FlatBufferBuilder &fbb, const Bucket &bucket) {
  std::vector<Offset<fb::Step>> steps;
  steps.reserve(bucket.steps.size());
  for (const Step &step : bucket.steps)
    steps.push_back(encodeStep(fbb, step));
  return fb::CreateBucket(fbb, fbb.CreateString(bucket.name),
                          static_cast<fb::BucketKind>(bucket.kind), bucket.tokens, bucket.batch,
                          bucket.arenaBytes, bucket.naiveBytes, fbb.CreateVector(steps));
}

Offset<flatbuffers::Vector<Offset<fb::IoSlot>>> encodeIoSlots(FlatBufferBuilder &fbb,
                                                              const std::vector<IoSlot> &slots) {
  std::vector<Offset<fb::IoSlot>> encoded;
  for (const IoSlot &slot : slots)
    encoded.push_back(fb::CreateIoSlot(fbb, fbb.CreateString(slot.name),
                                       static_cast<fb::DType>(slot.dtype), slot.width));
  return fbb.CreateVector(encoded);
}

// ---- decoding -------------------------------------------------------------

// Flatbuffers enums are raw bytes on disk: a value past the last enumerator
// passes the Verifier, so each one is range-checked here.
template <typename Enum>
Enum checkedEnum(uint8_t raw, uint8_t maxValue, const char *what, const std::string &where) {
  if (raw > maxValue)
    throw v4c::Error(where + ": unknown " + what + " code " + std::to_string(raw));
  return static_cast<Enum>(raw);
}

DType decodeDType(fb::DType raw, const std::string &where) {
  return checkedEnum<DType>(raw, fb::DType_MAX, "dtype", where);
}

std::string decodeString(const flatbuffers::String *text) {
  return text ? text->str() : std::string();
}

// The Verifier (flatbuffers 2.0.8) checks the alignment of a vector's length
// but not of its elements; reading misaligned 8-byte values is undefined
// behaviour, so a damaged offset that produces them is rejected here.
template <typename T> std::vector<T> decodeScalars(const flatbuffers::Vector<T> *values) {
  if (!values || values->size() == 0) // an empty vector's data may sit anywhere
    return {};
  if (reinterpret_cast<uintptr_t>(values->data()) % alignof(T) != 0)
    throw v4c::Error("manifest is corrupted: a vector of " + std::to_string(sizeof(T)) +
                     "-byte values is misaligned");
  return std::vector<T>(values->begin(), values->end());
}

std::vector<ArgRef> decodeArgs(const flatbuffers::Vector<Offset<fb::ArgRef>> *args,
                               const std::string &where) {
  std::vector<ArgRef> decoded;
  if (!args)
    return decoded;
  decoded.reserve(args->size());
  for (const fb::ArgRef *arg : *args) {
    ArgRef ref;
    ref.kind = checkedEnum<ArgKind>(arg->kind(), fb::ArgKind_MAX, "argument kind", where);
    ref.index = arg->index();
    ref.offset = arg->offset();
    ref.dtype = decodeDType(arg->dtype(), where);
    ref.shape = decodeScalars(arg->shape());
    decoded.push_back(std::move(ref));
  }
  return decoded;
}

Bucket decodeBucket(const fb::Bucket &source) {
  Bucket bucket;
  bucket.name = decodeString(source.name());
  const std::string where = "bucket \"" + bucket.name + "\"";
  bucket.kind = checkedEnum<BucketKind>(source.kind(), fb::BucketKind_MAX, "bucket kind", where);
  bucket.tokens = source.tokens();
  bucket.batch = source.batch();
  bucket.arenaBytes = source.arena_bytes();
  bucket.naiveBytes = source.naive_bytes();
  if (const auto *steps = source.steps()) {
    bucket.steps.reserve(steps->size());
    for (const fb::Step *stepSource : *steps) {
      const std::string stepWhere = where + " step " + std::to_string(bucket.steps.size());
      Step step;
      step.kernel = stepSource->kernel();
      step.ins = decodeArgs(stepSource->ins(), stepWhere);
      step.outs = decodeArgs(stepSource->outs(), stepWhere);
      if (const auto *attrs = stepSource->attrs())
        for (const fb::Attr *attrSource : *attrs)
          step.attrs.push_back(Attr{decodeString(attrSource->name()),
                                    decodeScalars(attrSource->ints()),
                                    decodeScalars(attrSource->floats()),
                                    decodeString(attrSource->str())});
      if (const fb::Dim3 *grid = stepSource->grid()) // absent before schema minor 1
        step.grid[0] = grid->x(), step.grid[1] = grid->y(), step.grid[2] = grid->z();
      if (const fb::Dim3 *block = stepSource->block())
        step.block[0] = block->x(), step.block[1] = block->y(), step.block[2] = block->z();
      step.sharedBytes = stepSource->shared_bytes();
      bucket.steps.push_back(std::move(step));
    }
  }
  return bucket;
}

std::vector<IoSlot> decodeIoSlots(const flatbuffers::Vector<Offset<fb::IoSlot>> *slots,
                                  const char *what) {
  std::vector<IoSlot> decoded;
  if (!slots)
    return decoded;
  for (const fb::IoSlot *slot : *slots) {
    IoSlot io;
    io.name = decodeString(slot->name());
    io.dtype = decodeDType(slot->dtype(), std::string(what) + " \"" + io.name + "\"");
    io.width = slot->width();
    decoded.push_back(std::move(io));
  }
  return decoded;
}

} // namespace

std::vector<uint8_t> encodeManifest(const Program &program) {
  FlatBufferBuilder fbb(1 << 16);
  fbb.ForceDefaults(true);
  std::vector<Offset<fb::Bucket>> buckets;
  for (const Bucket &bucket : program.buckets)
    buckets.push_back(encodeBucket(fbb, bucket));
  std::vector<Offset<fb::Kernel>> kernels;
  for (const Kernel &kernel : program.kernels)
    kernels.push_back(fb::CreateKernel(fbb, fbb.CreateString(kernel.name),
                                       fbb.CreateVector(kernel.binary), kernel.module));
  std::vector<Offset<fb::Module>> modules;
  for (const Module &module : program.modules)
    modules.push_back(fb::CreateModule(fbb, fbb.CreateString(module.target),
                                       fbb.CreateVector(module.binary)));
  std::vector<Offset<fb::CacheSlot>> caches;
  for (const CacheSlot &cache : program.caches)
    caches.push_back(fb::CreateCacheSlot(fbb, fbb.CreateString(cache.name), cache.layer,
                                         static_cast<fb::CacheKind>(cache.kind), cache.rows,
                                         cache.width, cache.rate,
                                         static_cast<fb::DType>(cache.dtype), cache.ropeWidth));
  auto inputs = encodeIoSlots(fbb, program.inputs);
  auto outputs = encodeIoSlots(fbb, program.outputs);
  std::vector<Offset<fb::Weight>> weights;
  for (const Weight &weight : program.weights)
    weights.push_back(fb::CreateWeight(fbb, fbb.CreateString(weight.name),
                                       static_cast<fb::DType>(weight.dtype),
                                       encodeShape(fbb, weight.shape), weight.offset, weight.size,
                                       weight.checksum, static_cast<uint32_t>(weight.dummy.kind),
                                       weight.dummy.scale, weight.dummy.modulo));
  auto root = fb::CreateProgram(
      fbb, kSchemaVersion, kSchemaMinor, fbb.CreateString(program.target),
      fbb.CreateString(program.configJson), fbb.CreateString(program.compileOptions),
      fbb.CreateVector(buckets), fbb.CreateVector(kernels), fbb.CreateVector(caches), inputs,
      outputs, fbb.CreateVector(weights), fbb.CreateVector(std::vector<Offset<fb::Extension>>()),
      fbb.CreateVector(modules), program.dummySeed);
  fb::FinishProgramBuffer(fbb, root);
  return std::vector<uint8_t>(fbb.GetBufferPointer(), fbb.GetBufferPointer() + fbb.GetSize());
}

Program decodeManifest(const uint8_t *data, size_t size) {
  // Every table takes at least 4 bytes, so this bound never rejects a valid
  // manifest; the default (one million) would reject the biggest models.
  if (reinterpret_cast<uintptr_t>(data) % 8 != 0)
    throw v4c::Error("internal error: the manifest must be decoded from an 8-byte-aligned buffer");
  const size_t maxTables = size / 4 + 1;
  flatbuffers::Verifier verifier(data, size, /*max_depth=*/64, maxTables);
  if (size < 8 || !fb::ProgramBufferHasIdentifier(data))
    throw v4c::Error("manifest does not carry the \"V4A1\" identifier");
  if (!fb::VerifyProgramBuffer(verifier))
    throw v4c::Error("manifest failed flatbuffers verification (corrupted or not a v4a manifest)");
  const fb::Program *root = fb::GetProgram(data);
  if (root->schema_version() != kSchemaVersion)
    throw v4c::Error("artifact schema version " + std::to_string(root->schema_version()) +
                     " is not supported by this runtime (supports " +
                     std::to_string(kSchemaVersion) + ")");

  Program program;
  program.target = decodeString(root->target());
  program.configJson = decodeString(root->config_json());
  program.compileOptions = decodeString(root->compile_options());
  if (const auto *buckets = root->buckets())
    for (const fb::Bucket *bucket : *buckets)
      program.buckets.push_back(decodeBucket(*bucket));
  if (const auto *kernels = root->kernels())
    for (const fb::Kernel *kernel : *kernels)
      program.kernels.push_back(
          Kernel{decodeString(kernel->name()), decodeScalars(kernel->binary()), kernel->module_index()});
  if (const auto *modules = root->modules())
    for (const fb::Module *module : *modules)
      program.modules.push_back(Module{decodeString(module->target()), decodeScalars(module->binary())});
  program.dummySeed = root->dummy_seed();
  if (const auto *caches = root->caches())
    for (const fb::CacheSlot *source : *caches) {
      CacheSlot cache;
      cache.name = decodeString(source->name());
      const std::string where = "cache slot \"" + cache.name + "\"";
      cache.layer = source->layer();
      cache.kind = checkedEnum<CacheKind>(source->kind(), fb::CacheKind_MAX, "cache kind", where);
      cache.rows = source->rows();
      cache.width = source->width();
      cache.rate = source->rate();
      cache.dtype = decodeDType(source->dtype(), where);
      cache.ropeWidth = source->rope_width(); // 0 before schema minor 2
      program.caches.push_back(std::move(cache));
    }
  program.inputs = decodeIoSlots(root->inputs(), "input");
  program.outputs = decodeIoSlots(root->outputs(), "output");
  if (const auto *weights = root->weights())
    for (const fb::Weight *source : *weights) {
      Weight weight;
      weight.name = decodeString(source->name());
      weight.dtype = decodeDType(source->dtype(), "weight \"" + weight.name + "\"");
      weight.shape = decodeScalars(source->shape());
      weight.offset = source->offset();
      weight.size = source->size();
      weight.checksum = source->checksum();
      if (source->dummy_kind() > static_cast<uint32_t>(DummyKind::Exponent))
        throw v4c::Error("weight \"" + weight.name + "\": unknown dummy recipe kind " +
                         std::to_string(source->dummy_kind()));
      weight.dummy.kind = static_cast<DummyKind>(source->dummy_kind());
      weight.dummy.scale = source->dummy_scale();
      weight.dummy.modulo = source->dummy_modulo();
      program.weights.push_back(std::move(weight));
    }
  return program;
}

} // namespace v4rt::artifact
