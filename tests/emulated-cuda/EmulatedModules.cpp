// The module side of the emulated driver: cuModuleLoadData finds the host
// build of a cubin by the cubin's sha256 and checks that it defines every
// kernel the cubin exports; functions carry their parameter sizes.
#include <dlfcn.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>

#include "DriverInternal.h"

namespace v4emu::driver {
namespace {

std::set<Module *> gModules;
std::set<Function *> gFunctions;

// The size of an ELF64 image: the furthest byte any header or section covers.
size_t elfSize(const unsigned char *image) {
  uint64_t shoff, phoff;
  uint16_t phentsize, phnum, shentsize, shnum;
  std::memcpy(&phoff, image + 0x20, 8);
  std::memcpy(&shoff, image + 0x28, 8);
  std::memcpy(&phentsize, image + 0x36, 2);
  std::memcpy(&phnum, image + 0x38, 2);
  std::memcpy(&shentsize, image + 0x3A, 2);
  std::memcpy(&shnum, image + 0x3C, 2);
  uint64_t end = std::max<uint64_t>(64, std::max(shoff + uint64_t{shentsize} * shnum, phoff + uint64_t{phentsize} * phnum));
  for (uint16_t s = 0; s < shnum; ++s) {
    const unsigned char *header = image + shoff + uint64_t{s} * shentsize;
    uint32_t type;
    uint64_t offset, size;
    std::memcpy(&type, header + 4, 4);
    std::memcpy(&offset, header + 24, 8);
    std::memcpy(&size, header + 32, 8);
    if (type != 8 /*SHT_NOBITS*/)
      end = std::max(end, offset + size);
  }
  for (uint16_t p = 0; p < phnum; ++p) {
    const unsigned char *header = image + phoff + uint64_t{p} * phentsize;
    uint64_t offset, size;
    std::memcpy(&offset, header + 8, 8);
    std::memcpy(&size, header + 32, 8);
    end = std::max(end, offset + size);
  }
  return end;
}

// Global function symbols of an ELF64 image (the kernels a cubin exports).
std::vector<std::string> elfFunctions(const unsigned char *image) {
  uint64_t shoff;
  uint16_t shentsize, shnum;
  std::memcpy(&shoff, image + 0x28, 8);
  std::memcpy(&shentsize, image + 0x3A, 2);
  std::memcpy(&shnum, image + 0x3C, 2);
  std::vector<std::string> names;
  for (uint16_t s = 0; s < shnum; ++s) {
    const unsigned char *header = image + shoff + uint64_t{s} * shentsize;
    uint32_t type, link;
    uint64_t offset, size, entrySize, strings;
    std::memcpy(&type, header + 4, 4);
    if (type != 2 /*SHT_SYMTAB*/)
      continue;
    std::memcpy(&offset, header + 24, 8);
    std::memcpy(&size, header + 32, 8);
    std::memcpy(&link, header + 40, 4);
    std::memcpy(&entrySize, header + 56, 8);
    std::memcpy(&strings, image + shoff + uint64_t{link} * shentsize + 24, 8);
    for (uint64_t symbol = offset; entrySize && symbol + 24 <= offset + size; symbol += entrySize) {
      uint32_t name;
      std::memcpy(&name, image + symbol, 4);
      const unsigned char info = image[symbol + 4];
      if ((info >> 4) == 1 && (info & 0xF) == 2) // STB_GLOBAL, STT_FUNC
        names.emplace_back(reinterpret_cast<const char *>(image + strings + name));
    }
  }
  return names;
}

std::string sha256Hex(const unsigned char *data, size_t size) {
  unsigned char digest[32];
  unsigned int length = 0;
  EVP_Digest(data, size, digest, &length, EVP_sha256(), nullptr);
  std::string hex;
  char byte[3];
  for (unsigned i = 0; i < length; ++i) {
    snprintf(byte, sizeof byte, "%02x", digest[i]);
    hex += byte;
  }
  return hex;
}

} // namespace

CUresult emuModuleLoadData(CUmodule *module, const void *image) {
  LOCKED;
  REQUIRE_INIT
  if (CUresult r = forbiddenWhileCapturing("cuModuleLoadData"); r != CUDA_SUCCESS)
    return r;
  const auto *bytes = static_cast<const unsigned char *>(image);
  if (!bytes || std::memcmp(bytes, "\x7f" "ELF", 4) != 0 || bytes[4] != 2)
    return fail(CUDA_ERROR_INVALID_IMAGE, "cuModuleLoadData: the image is not an ELF64 cubin");
  uint16_t machine;
  std::memcpy(&machine, bytes + 0x12, 2);
  if (machine != 190 /*EM_CUDA*/)
    return fail(CUDA_ERROR_INVALID_IMAGE, "cuModuleLoadData: the ELF image is for machine %u, not EM_CUDA", machine);
  const std::string hash = sha256Hex(bytes, elfSize(bytes));
  const char *dir = std::getenv("V4_EMU_MODULE_DIR");
  if (!dir || !*dir)
    return fail(CUDA_ERROR_FILE_NOT_FOUND,
                "cuModuleLoadData: set V4_EMU_MODULE_DIR to the directory holding %s.so, the host build of this "
                "cubin (tests/emulated-cuda/build_host_module.sh)", hash.c_str());
  const std::string path = std::string(dir) + "/" + hash + ".so";
  void *library = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!library)
    return fail(CUDA_ERROR_FILE_NOT_FOUND, "cuModuleLoadData: no host build of this cubin: %s (%s)", path.c_str(),
                dlerror());
  auto launch = reinterpret_cast<V4EmuLaunchFn>(dlsym(library, V4EMU_LAUNCH_SYMBOL));
  if (!launch) {
    dlclose(library);
    return fail(CUDA_ERROR_INVALID_IMAGE, "cuModuleLoadData: %s lacks " V4EMU_LAUNCH_SYMBOL, path.c_str());
  }
  auto loaded = std::make_unique<Module>();
  loaded->library = library;
  loaded->launch = launch;
  loaded->exported = elfFunctions(bytes);
  // The host build must define every kernel of the cubin: a mismatch means
  // the .so was built from another source.
  for (const std::string &name : loaded->exported)
    if (!dlsym(library, (name + V4EMU_ENTRY_SUFFIX).c_str())) {
      dlclose(library);
      return fail(CUDA_ERROR_INVALID_IMAGE, "cuModuleLoadData: %s has no host entry for the cubin's kernel %s",
                  path.c_str(), name.c_str());
    }
  if (loaded->exported.empty())
    return fail(CUDA_ERROR_INVALID_IMAGE, "cuModuleLoadData: the cubin exports no kernel");
  *module = reinterpret_cast<CUmodule>(loaded.get());
  gModules.insert(loaded.release());
  return CUDA_SUCCESS;
}

CUresult emuModuleUnload(CUmodule handle) {
  LOCKED;
  REQUIRE_INIT
  auto *module = reinterpret_cast<Module *>(handle);
  if (!gModules.count(module))
    return CUDA_ERROR_INVALID_HANDLE;
  // Queued launches of its kernels run first (the driver waits for them too).
  const CUresult pending = synchronizeAll("cuModuleUnload");
  gModules.erase(module);
  for (auto &[name, function] : module->functions)
    gFunctions.erase(function.get());
  dlclose(module->library);
  delete module;
  return pending;
}

CUresult emuModuleGetFunction(CUfunction *result, CUmodule handle, const char *name) {
  LOCKED;
  REQUIRE_INIT
  auto *module = reinterpret_cast<Module *>(handle);
  if (!gModules.count(module))
    return CUDA_ERROR_INVALID_HANDLE;
  if (std::find(module->exported.begin(), module->exported.end(), name) == module->exported.end())
    return CUDA_ERROR_NOT_FOUND; // as the driver answers for a kernel the cubin lacks
  auto &function = module->functions[name];
  if (!function) {
    auto body = reinterpret_cast<V4EmuEntryFn>(dlsym(module->library, (std::string(name) + V4EMU_ENTRY_SUFFIX).c_str()));
    auto params = reinterpret_cast<V4EmuParamsFn>(
        dlsym(module->library, (std::string(name) + V4EMU_PARAMS_SUFFIX).c_str()));
    if (!body || !params) {
      module->functions.erase(name);
      return fail(CUDA_ERROR_NOT_FOUND, "cuModuleGetFunction: the host module has no entry %s", name);
    }
    function = std::make_unique<Function>();
    function->name = name;
    function->body = body;
    function->module = module;
    const size_t *sizes = nullptr;
    const size_t count = params(&sizes);
    function->paramSizes.assign(sizes, sizes + count);
    gFunctions.insert(function.get());
  }
  *result = reinterpret_cast<CUfunction>(function.get());
  return CUDA_SUCCESS;
}

Function *functionOf(CUfunction handle) {
  auto *function = reinterpret_cast<Function *>(handle);
  return gFunctions.count(function) ? function : nullptr;
}

CUresult emuFuncSetAttribute(CUfunction handle, CUfunction_attribute attribute, int value) {
  LOCKED;
  REQUIRE_INIT
  Function *function = functionOf(handle);
  if (!function)
    return CUDA_ERROR_INVALID_HANDLE;
  if (attribute == CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES) {
    if (value < 0 || value > 232448)
      return fail(CUDA_ERROR_INVALID_VALUE, "cuFuncSetAttribute(%s, MAX_DYNAMIC_SHARED_SIZE_BYTES, %d): over the "
                                            "device's 232448 bytes", function->name.c_str(), value);
    function->maxDynamicShared = value;
    return CUDA_SUCCESS;
  }
  if (attribute == CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT)
    return CUDA_SUCCESS;
  return fail(CUDA_ERROR_INVALID_VALUE, "cuFuncSetAttribute: attribute %d is not emulated",
              static_cast<int>(attribute));
}

CUresult emuFuncGetAttribute(int *value, CUfunction_attribute attribute, CUfunction handle) {
  LOCKED;
  REQUIRE_INIT
  Function *function = functionOf(handle);
  if (!function)
    return CUDA_ERROR_INVALID_HANDLE;
  switch (attribute) {
  case CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK:
    *value = 1024; // registers are not emulated: a real device may allow fewer
    return CUDA_SUCCESS;
  case CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES:
    *value = 0; // static shared memory is not measured here
    return CUDA_SUCCESS;
  case CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES:
    *value = function->maxDynamicShared;
    return CUDA_SUCCESS;
  default:
    return fail(CUDA_ERROR_INVALID_VALUE, "cuFuncGetAttribute: attribute %d is not emulated",
                static_cast<int>(attribute));
  }
}


} // namespace v4emu::driver
