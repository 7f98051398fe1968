#include "runtime/cuda/CudaModel.h"

#include <algorithm>
#include <cstring>
#include <map>

#include "common/Error.h"
#include "runtime/cuda/LaunchParams.h"

namespace v4rt::cuda {
namespace {

// Host -> device weight copies go through two pinned buffers of this size,
// so one fills while the other is copied.
constexpr uint64_t kStagingBytes = 64ull << 20;
constexpr uint32_t kDefaultSharedLimit = 48 * 1024; // usable without opting in

} // namespace

std::unique_ptr<CudaModel> CudaModel::load(const std::string &path, const CudaLoadOptions &options) {
  std::unique_ptr<CudaModel> model(new CudaModel());
  model->path_ = path;
  OpenOptions open;
  open.verifyChecksums = options.verifyChecksums;
  model->artifact_ = Artifact::open(path, open);
  const Program &program = model->program();
  v4c::check(program.target != "cpu", path + ": compiled for the cpu target; the CUDA backend runs sm_* artifacts");
  model->device_ = &CudaDevice::open(program.target);
  v4c::check(program.outputs.size() == 1 && program.outputs[0].name == "logits",
             path + ": artifact has no 'logits' output");
  const DType logits = program.outputs[0].dtype;
  v4c::check(logits == DType::F32 || logits == DType::BF16,
             path + ": logits are " + dtypeName(logits) + "; the CUDA backend reads f32 or bf16 logits");
  for (const IoSlot &input : program.inputs)
    v4c::check(input.dtype == DType::I32 && input.width == 1 && (input.name == "ids" || input.name == "positions"),
               path + ": input \"" + input.name + "\" must be i32 ids or positions, one per token");
  model->vocabSize_ = program.outputs[0].width;
  model->maxContext_ = sessionMaxContext(program, options.maxContext);
  model->stream_ = std::make_unique<Stream>(model->api());
  model->loadModules();
  model->uploadWeights();
  model->bindBuckets();
  model->stream_->synchronize("loading " + path);
  uint64_t kvBytes = options.deviceKvBytes;
  if (kvBytes == 0 && options.deviceKvSessions > 0)
    kvBytes = static_cast<uint64_t>(options.deviceKvSessions) * model->sessionKvBytes();
  if (kvBytes == 0) {
    size_t freeBytes = 0, totalBytes = 0;
    checkCuda(model->api(), model->api().cuMemGetInfo(&freeBytes, &totalBytes), "cuMemGetInfo");
    kvBytes = defaultDeviceKvBytes(freeBytes);
  }
  model->kvPool_ = std::make_unique<DeviceKvPool>(kvBytes);
  return model;
}

uint64_t CudaModel::sessionKvBytes() const {
  uint64_t bytes = 0;
  for (const CacheSlot &slot : program().caches)
    bytes += cacheSlotBytes(slot, maxContext_);
  return bytes;
}

CudaModel::~CudaModel() {
  if (!device_)
    return;
  if (stream_)
    api().cuStreamSynchronize(stream_->get());
  for (CUmodule module : modules_)
    api().cuModuleUnload(module);
}

void CudaModel::loadModules() {
  const DriverApi &api = this->api();
  for (size_t m = 0; m < program().modules.size(); ++m) {
    CUmodule module = nullptr;
    const CUresult r = api.cuModuleLoadData(&module, program().modules[m].binary.data());
    if (r == CUDA_ERROR_NO_BINARY_FOR_GPU || r == CUDA_ERROR_INVALID_IMAGE)
      throwCudaError(api, r, "cuModuleLoadData",
                     path_ + ": module " + std::to_string(m) + " (" + program().modules[m].target +
                         ") does not run on " + device_->name() + " (compute capability " +
                         std::to_string(device_->ccMajor()) + "." + std::to_string(device_->ccMinor()) + ")");
    checkCuda(api, r, "cuModuleLoadData", path_ + ": module " + std::to_string(m));
    modules_.push_back(module);
  }
  v4c::check(!modules_.empty(), path_ + ": a " + program().target + " artifact carries no device module");
  // The dummy-weight filler is in every CUDA module (codegen/cuda/include/v4cuda/DummyFill.cuh).
  const CUresult r = api.cuModuleGetFunction(&fillDummy_, modules_[0], "v4_fill_dummy");
  if (r != CUDA_SUCCESS)
    fillDummy_ = nullptr; // only an error if a dummy weight needs it
}

void CudaModel::uploadWeights() {
  const DriverApi &api = this->api();
  const std::vector<Weight> &weights = program().weights;
  weights_.reserve(weights.size());
  PinnedBuffer staging[2];
  std::unique_ptr<Event> copied[2];
  bool pending[2] = {false, false};
  int next = 0;
  try {
    for (size_t w = 0; w < weights.size(); ++w) {
      const Weight &weight = weights[w];
      weights_.emplace_back(api, weight.size, path_ + ": weight \"" + weight.name + "\"");
      deviceBytes_ += weight.size;
      if (weight.size == 0)
        continue;
      if (weight.isDummy()) {
        fillDummyWeight(w);
        continue;
      }
      v4c::check(weight.data != nullptr, path_ + ": weight \"" + weight.name + "\" has no bytes in the file");
      for (uint64_t done = 0; done < weight.size;) {
        if (!staging[next].data()) {
          staging[next] = PinnedBuffer(api, kStagingBytes, "weight staging buffer");
          copied[next] = std::make_unique<Event>(api);
        }
        if (pending[next])
          copied[next]->wait(); // the copy that last read this buffer is done
        const uint64_t n = std::min(kStagingBytes, weight.size - done);
        std::memcpy(staging[next].data(), weight.data + done, n);
        checkCuda(api, api.cuMemcpyHtoDAsync(weights_[w].get() + done, staging[next].data(), n, stream()),
                  "cuMemcpyHtoDAsync", path_ + ": weight \"" + weight.name + "\"");
        copied[next]->record(stream());
        pending[next] = true;
        next ^= 1;
        done += n;
      }
    }
  } catch (...) {
    // A failure part way (a weight that does not fit) frees the staging
    // buffers on the way out while copies from them may still be queued:
    // wait for those first (cuMemFreeHost does not wait for a DMA in flight).
    api.cuStreamSynchronize(stream());
    throw;
  }
  stream_->synchronize(path_ + ": uploading weights");
}

void CudaModel::fillDummyWeight(size_t index) {
  const Weight &weight = program().weights[index];
  v4c::check(fillDummy_ != nullptr,
             path_ + ": weight \"" + weight.name + "\" is a dummy weight but the module has no v4_fill_dummy entry");
  const uint64_t elementSize = dtypeSize(weight.dtype);
  v4c::check(weight.size % elementSize == 0,
             path_ + ": dummy weight \"" + weight.name + "\" has " + std::to_string(weight.size) +
                 " bytes, not a whole number of " + dtypeName(weight.dtype) + " elements");
  v4c::check(dummyRecipeFits(weight.dummy.kind, static_cast<uint32_t>(weight.dtype)),
             path_ + ": dummy weight \"" + weight.name + "\" has a recipe its dtype " + dtypeName(weight.dtype) +
                 " does not support");
  CUdeviceptr dst = weights_[index].get();
  uint64_t count = weight.size / elementSize;
  uint32_t dtype = static_cast<uint32_t>(weight.dtype);
  uint64_t seed = program().dummySeed;
  uint32_t weightIndex = static_cast<uint32_t>(index);
  uint32_t kind = static_cast<uint32_t>(weight.dummy.kind);
  float scale = weight.dummy.scale;
  int32_t modulo = weight.dummy.modulo;
  void *params[] = {&dst, &count, &dtype, &seed, &weightIndex, &kind, &scale, &modulo};
  constexpr unsigned kBlock = 256; // v4cuda::v4DummyFillBlock
  const uint64_t blocks = std::min<uint64_t>((count + kBlock - 1) / kBlock, 65535);
  checkCuda(api(),
            api().cuLaunchKernel(fillDummy_, static_cast<unsigned>(blocks), 1, 1, kBlock, 1, 1, 0, stream(), params,
                                 nullptr),
            "cuLaunchKernel", path_ + ": v4_fill_dummy for weight \"" + weight.name + "\"");
}

void CudaModel::bindBuckets() {
  const DriverApi &api = this->api();
  const Program &program = this->program();
  // Each kernel's function, and the largest dynamic shared memory any of its
  // launches asks for (set once per function) next to its static shared memory.
  std::vector<CUfunction> functions(program.kernels.size(), nullptr);
  std::map<CUfunction, std::pair<uint32_t, int>> sharedNeeded; // dynamic, static
  for (size_t k = 0; k < program.kernels.size(); ++k) {
    const Kernel &kernel = program.kernels[k];
    v4c::check(kernel.module < modules_.size(),
               path_ + ": kernel \"" + kernel.name + "\" refers to module " + std::to_string(kernel.module));
    const CUresult r = api.cuModuleGetFunction(&functions[k], modules_[kernel.module], kernel.name.c_str());
    if (r == CUDA_ERROR_NOT_FOUND)
      throw v4c::Error(path_ + ": the module has no entry \"" + kernel.name + "\" (artifact and cubin disagree)");
    checkCuda(api, r, "cuModuleGetFunction", kernel.name);
  }
  const int sharedOptin = device_->maxSharedPerBlockOptin();
  bool havePrefill = false;
  bool haveDecode = false;
  for (const Bucket &bucket : program.buckets) {
    DeviceBucket bound;
    bound.bucket = &bucket;
    const std::string name = path_ + ": bucket " + bucket.name;
    bound.arena = DeviceBuffer(api, bucket.arenaBytes, name + " arena");
    if (bucket.arenaBytes)
      checkCuda(api, api.cuMemsetD8Async(bound.arena.get(), 0, bucket.arenaBytes, stream()), "cuMemsetD8Async");
    bound.dyn = DeviceBuffer(api, kDynValues * sizeof(int32_t), name + " dyn");
    checkCuda(api, api.cuMemsetD8Async(bound.dyn.get(), 0, kDynValues * sizeof(int32_t), stream()),
              "cuMemsetD8Async");
    auto ioBuffers = [&](const std::vector<IoSlot> &slots, std::vector<DeviceBuffer> &buffers) {
      for (const IoSlot &slot : slots) {
        const uint64_t bytes = static_cast<uint64_t>(bucket.tokens) * slot.width * dtypeSize(slot.dtype);
        buffers.emplace_back(api, bytes, name + " " + slot.name);
        // Rows past the tokens present are never written: zeros keep them valid ids.
        checkCuda(api, api.cuMemsetD8Async(buffers.back().get(), 0, bytes, stream()), "cuMemsetD8Async");
        deviceBytes_ += bytes;
      }
    };
    ioBuffers(program.inputs, bound.inputs);
    ioBuffers(program.outputs, bound.outputs);
    deviceBytes_ += bucket.arenaBytes;
    for (size_t s = 0; s < bucket.steps.size(); ++s) {
      const Step &step = bucket.steps[s];
      DeviceStep device;
      device.step = &step;
      device.where = describeStep(program, bucket, s);
      v4c::check(step.kernel < functions.size(), path_ + ": " + device.where + " has no kernel");
      device.function = functions[step.kernel];
      const uint64_t threads = uint64_t{step.block[0]} * step.block[1] * step.block[2];
      int maxThreads = 0, staticShared = 0;
      checkCuda(api, api.cuFuncGetAttribute(&maxThreads, CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK, device.function),
                "cuFuncGetAttribute", device.where);
      checkCuda(api, api.cuFuncGetAttribute(&staticShared, CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES, device.function),
                "cuFuncGetAttribute", device.where);
      v4c::check(threads >= 1 && threads <= static_cast<uint64_t>(maxThreads),
                 path_ + ": " + device.where + " launches " + std::to_string(threads) +
                     " threads per block; this kernel allows at most " + std::to_string(maxThreads) +
                     " on this device (registers): lower the emitter's block size");
      v4c::check(step.grid[1] <= 65535 && step.grid[2] <= 65535 && step.grid[0] <= 0x7fffffffu,
                 path_ + ": " + device.where + " has grid (" + std::to_string(step.grid[0]) + ", " +
                     std::to_string(step.grid[1]) + ", " + std::to_string(step.grid[2]) +
                     "), over the limits (2^31-1, 65535, 65535)");
      v4c::check(static_cast<int64_t>(step.sharedBytes) + staticShared <= sharedOptin,
                 path_ + ": " + device.where + " needs " + std::to_string(step.sharedBytes) + " + " +
                     std::to_string(staticShared) + " (static) bytes of shared memory; the device has " +
                     std::to_string(sharedOptin) + " per block");
      auto &[dynamicBytes, staticBytes] = sharedNeeded[device.function];
      dynamicBytes = std::max(dynamicBytes, step.sharedBytes);
      staticBytes = staticShared;
      bound.steps.push_back(std::move(device));
    }
    const size_t index = buckets_.size();
    buckets_.push_back(std::move(bound));
    if (bucket.kind == BucketKind::Decode && bucket.tokens == 1 && bucket.batch == 1) {
      decodeIndex_ = index;
      haveDecode = true;
    } else if (bucket.kind == BucketKind::Prefill &&
               (!havePrefill || bucket.tokens > program.buckets[prefillIndex_].tokens)) {
      prefillIndex_ = index;
      havePrefill = true;
    }
  }
  v4c::check(havePrefill, path_ + ": artifact has no prefill bucket");
  if (!haveDecode) // a prefill chunk of one token is a valid decode step
    decodeIndex_ = prefillIndex_;
  // Static + dynamic shared memory over 48 KiB per block needs an opt-in.
  for (const auto &[function, bytes] : sharedNeeded)
    if (bytes.first + static_cast<uint32_t>(bytes.second) > kDefaultSharedLimit)
      checkCuda(api,
                api.cuFuncSetAttribute(function, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                                       static_cast<int>(bytes.first)),
                "cuFuncSetAttribute", "MAX_DYNAMIC_SHARED_SIZE_BYTES " + std::to_string(bytes.first));
}

BoundLaunches CudaModel::bindLaunches(const DeviceBucket &bucket, const std::vector<uint64_t> &cacheAddresses) const {
  ArgAddresses addresses;
  addresses.arena = bucket.arena.get();
  addresses.arenaBytes = bucket.arena.bytes();
  for (size_t w = 0; w < program().weights.size(); ++w)
    addresses.weights.push_back(weightAddress(w));
  addresses.caches = cacheAddresses;
  for (const DeviceBuffer &input : bucket.inputs)
    addresses.inputs.push_back(input.get());
  for (const DeviceBuffer &output : bucket.outputs)
    addresses.outputs.push_back(output.get());
  addresses.dyn = bucket.dyn.get();
  BoundLaunches launches;
  launches.values.resize(bucket.steps.size());
  launches.params.resize(bucket.steps.size());
  for (size_t s = 0; s < bucket.steps.size(); ++s) {
    launches.values[s] = stepParams(*bucket.steps[s].step, addresses, bucket.steps[s].where);
    for (uint64_t &value : launches.values[s]) // never grows again: stable addresses
      launches.params[s].push_back(&value);
  }
  return launches;
}

void CudaModel::launch(const DeviceStep &device, void **params) const {
  const Step &step = *device.step;
  checkCuda(api(),
            api().cuLaunchKernel(device.function, step.grid[0], step.grid[1], step.grid[2], step.block[0],
                                 step.block[1], step.block[2], step.sharedBytes, stream(), params, nullptr),
            "cuLaunchKernel", device.where);
}

} // namespace v4rt::cuda
