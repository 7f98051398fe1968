#include "codegen/cuda/CudaCodegen.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/Error.h"

extern char **environ;

namespace v4c::cuda {
namespace fs = std::filesystem;

const std::vector<std::string> &cudaTargets() {
  static const std::vector<std::string> targets = {"sm_80", "sm_89", "sm_90a", "sm_100a"};
  return targets;
}

bool isCudaTarget(const std::string &target) {
  for (const std::string &known : cudaTargets())
    if (target == known)
      return true;
  return false;
}

std::string validTargetList() {
  std::string list = "cpu";
  for (const std::string &target : cudaTargets())
    list += ", " + target;
  return list;
}

std::string gencodeFlag(const std::string &target) {
  check(isCudaTarget(target), "unknown CUDA target '" + target + "'; valid targets: " + validTargetList());
  const std::string arch = target.substr(3); // "90a"
  return "-gencode=arch=compute_" + arch + ",code=sm_" + arch;
}

const char *tensorCoresName(TensorCores tensorCores) {
  return tensorCores == TensorCores::Wgmma ? "wgmma" : "wmma";
}

TensorCores parseTensorCores(const std::string &name) {
  if (name == "wmma")
    return TensorCores::Wmma;
  if (name == "wgmma")
    return TensorCores::Wgmma;
  throw Error("unknown --tensor-cores '" + name + "'; valid: wmma (every CUDA target), wgmma (sm_90a)");
}

void checkTargetOptions(const std::string &target, const CudaTargetOptions &options) {
  check(options.tensorCores != TensorCores::Wgmma || target == "sm_90a",
        "--tensor-cores wgmma needs --target sm_90a (Hopper's warpgroup MMA), got --target " + target +
            "; use --tensor-cores wmma");
}

int64_t sharedOptinLimit(const std::string &target) {
  check(isCudaTarget(target), "unknown CUDA target '" + target + "'; valid targets: " + validTargetList());
  if (target == "sm_80")
    return 163 * 1024;
  if (target == "sm_89")
    return 99 * 1024;
  return 227 * 1024; // sm_90a, sm_100a
}

namespace {

bool isExecutable(const std::string &path) { return !path.empty() && ::access(path.c_str(), X_OK) == 0; }

std::string environment(const char *name) {
  const char *value = std::getenv(name);
  return value ? value : "";
}

bool isIdentifier(const std::string &name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0])))
    return false;
  for (char c : name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_')
      return false;
  return true;
}

std::string stepName(const v4rt::Bucket &bucket, size_t step, const std::string &op) {
  return "bucket '" + bucket.name + "' step " + std::to_string(step) + " (" + op + ")";
}

// Limits every launch must respect (CUDA compute capability >= 8.0).
void checkDims(const EmittedKernel &kernel, const std::string &where) {
  const LaunchDims &d = kernel.dims;
  const uint64_t threads = uint64_t{d.block[0]} * d.block[1] * d.block[2];
  const bool ok = d.grid[0] >= 1 && d.grid[1] >= 1 && d.grid[2] >= 1 && d.block[0] >= 1 && d.block[1] >= 1 &&
                  d.block[2] >= 1 && d.grid[0] <= 0x7FFFFFFFu && d.grid[1] <= 65535 && d.grid[2] <= 65535 &&
                  threads <= 1024 && d.block[2] <= 64 && d.sharedBytes <= 227 * 1024;
  check(ok, "internal error: " + where + ": entry '" + kernel.entry + "' has launch grid (" +
                std::to_string(d.grid[0]) + ", " + std::to_string(d.grid[1]) + ", " + std::to_string(d.grid[2]) +
                ") block (" + std::to_string(d.block[0]) + ", " + std::to_string(d.block[1]) + ", " +
                std::to_string(d.block[2]) + ") shared " + std::to_string(d.sharedBytes) +
                " bytes outside CUDA's limits (grid.y/z <= 65535, <= 1024 threads, <= 227 KiB shared)");
}

void writeFile(const fs::path &path, const std::string &text) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  check(static_cast<bool>(out), path.string() + ": cannot write");
}

std::string readFile(const fs::path &path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string firstLines(const std::string &text, int count) {
  std::string head;
  std::istringstream in(text);
  std::string line;
  int lines = 0;
  while (std::getline(in, line)) {
    if (lines++ == count) {
      head += "  ...\n";
      break;
    }
    head += "  " + line + "\n";
  }
  return head;
}

// Runs argv[0] with stdout+stderr to `logPath`; returns the exit status.
int runLogged(const std::vector<std::string> &args, const std::string &logPath) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, logPath.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  std::vector<char *> argv;
  for (const std::string &arg : args)
    argv.push_back(const_cast<char *>(arg.c_str()));
  argv.push_back(nullptr);
  pid_t pid = 0;
  const int spawned = ::posix_spawn(&pid, args[0].c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  check(spawned == 0, "cannot run " + args[0] + ": " + std::strerror(spawned));
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0)
    check(errno == EINTR, "waiting for " + args[0] + ": " + std::strerror(errno));
  if (WIFEXITED(status))
    return WEXITSTATUS(status);
  return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

// The build directory: the --keep-cuda-source one, or a fresh temp dir that
// is removed unless compilation fails.
class SourceDir {
public:
  explicit SourceDir(const std::string &keep) {
    if (!keep.empty()) {
      path_ = fs::absolute(keep);
      fs::create_directories(path_);
      keep_ = true;
      return;
    }
    std::string pattern = (fs::temp_directory_path() / "v4c-cuda-XXXXXX").string();
    check(::mkdtemp(pattern.data()) != nullptr, "cannot create a temp directory for nvcc: " +
                                                    std::string(std::strerror(errno)));
    path_ = pattern;
  }
  SourceDir(const SourceDir &) = delete;
  SourceDir &operator=(const SourceDir &) = delete;
  ~SourceDir() {
    if (!keep_) {
      std::error_code ignored;
      fs::remove_all(path_, ignored);
    }
  }
  const fs::path &path() const { return path_; }
  void keep() { keep_ = true; }

private:
  fs::path path_;
  bool keep_ = false;
};

} // namespace

std::string findNvcc() {
  std::vector<std::string> tried;
  auto consider = [&](const std::string &candidate, const std::string &from) -> bool {
    if (candidate.empty())
      return false;
    tried.push_back(candidate + " (" + from + ")");
    return isExecutable(candidate);
  };
  if (const std::string fromEnv = environment("V4C_NVCC"); !fromEnv.empty()) {
    check(isExecutable(fromEnv), "$V4C_NVCC=" + fromEnv + " is not an executable nvcc");
    return fromEnv;
  }
  if (const std::string home = environment("CUDA_HOME"); !home.empty() && consider(home + "/bin/nvcc", "$CUDA_HOME"))
    return home + "/bin/nvcc";
  if (consider("/usr/local/cuda/bin/nvcc", "default install"))
    return "/usr/local/cuda/bin/nvcc";
  const std::string path = environment("PATH");
  size_t start = 0;
  while (start <= path.size()) {
    const size_t end = std::min(path.find(':', start), path.size());
    const std::string dir = path.substr(start, end - start);
    if (!dir.empty() && isExecutable(dir + "/nvcc"))
      return dir + "/nvcc";
    start = end + 1;
  }
  tried.push_back("nvcc on $PATH");
  std::string list;
  for (const std::string &place : tried)
    list += (list.empty() ? "" : ", ") + place;
  throw Error("nvcc not found (tried " + list + "); install the CUDA toolkit or set $V4C_NVCC");
}

GeneratedModule generateModule(const v4rt::Program &program, EmitterLookup lookup, const CudaTargetOptions &target) {
  checkTargetOptions(program.target, target);
  GeneratedModule module;
  std::map<std::string, uint32_t> byEntry;
  std::map<std::string, std::string> missing; // op -> first use
  for (const v4rt::Bucket &bucket : program.buckets) {
    std::vector<uint32_t> &stepKernel = module.stepKernel.emplace_back();
    std::vector<LaunchDims> &stepDims = module.stepDims.emplace_back();
    for (size_t s = 0; s < bucket.steps.size(); ++s) {
      const v4rt::Step &step = bucket.steps[s];
      check(step.kernel < program.kernels.size(), "internal error: bucket '" + bucket.name + "' step " +
                                                      std::to_string(s) + " has no kernel");
      const std::string &op = program.kernels[step.kernel].name;
      const std::string where = stepName(bucket, s, op);
      KernelEmitterFn emit = lookup(op);
      if (emit == nullptr) {
        missing.emplace(op, where);
        stepKernel.push_back(0);
        stepDims.emplace_back();
        continue;
      }
      EmittedKernel kernel;
      try {
        kernel = emit(StepView(program, bucket, step, target));
      } catch (const Error &error) {
        throw Error(where + ": " + error.what());
      }
      check(isIdentifier(kernel.entry), "internal error: " + where + ": emitter returned entry name '" +
                                            kernel.entry + "', which is not a C identifier");
      check(kernel.source.find(kernel.entry) != std::string::npos,
            "internal error: " + where + ": the source of entry '" + kernel.entry + "' does not define it");
      checkDims(kernel, where);
      auto [it, inserted] = byEntry.emplace(kernel.entry, static_cast<uint32_t>(module.kernels.size()));
      if (inserted)
        module.kernels.push_back(kernel);
      else
        check(module.kernels[it->second].source == kernel.source,
              "internal error: " + where + ": entry '" + kernel.entry +
                  "' was emitted twice with different sources; its name must encode every shape, dtype and "
                  "attribute its source depends on");
      stepKernel.push_back(it->second);
      stepDims.push_back(kernel.dims); // geometry is per step, even for a shared entry
    }
  }
  if (!missing.empty()) {
    std::string list;
    for (const auto &[op, where] : missing)
      list += (list.empty() ? "" : "; ") + op + " (first used by " + where + ")";
    throw Error("no CUDA kernel emitter for " + std::to_string(missing.size()) + " op" +
                (missing.size() == 1 ? "" : "s") + ": " + list +
                ". Add one to codegen/cuda/*Emitters.cpp or compile --target cpu");
  }
  std::string &tu = module.translationUnit;
  tu = "// Generated by v4c for target " + program.target + " (tensor cores: " + tensorCoresName(target.tensorCores) +
       "): " + std::to_string(module.kernels.size()) + " kernel entries + v4_fill_dummy.\n#include <v4cuda/All.cuh>\n";
  for (const EmittedKernel &kernel : module.kernels)
    tu += "\n" + kernel.source + (kernel.source.empty() || kernel.source.back() != '\n' ? "\n" : "");
  return module;
}

std::vector<uint8_t> compileCubin(const std::string &translationUnit, const std::string &target,
                                  const CudaCompileOptions &options) {
  const std::string flag = gencodeFlag(target);
  const std::string nvcc = options.nvcc.empty() ? findNvcc() : options.nvcc;
  SourceDir dir(options.keepSourceDir);
  for (const EmbeddedHeader &header : embeddedHeaders())
    writeFile(dir.path() / "include" / header.path, header.text);
  const fs::path source = dir.path() / "kernels.cu", cubin = dir.path() / "kernels.cubin",
                 log = dir.path() / "nvcc.log";
  writeFile(source, translationUnit);
  const std::vector<std::string> args = {nvcc,        "-cubin", flag,   "-std=c++17",
                                         "-O3",       "-lineinfo", "-I" + (dir.path() / "include").string(),
                                         "-o",        cubin.string(), source.string()};
  std::string command; // kept next to the source to rerun by hand
  for (const std::string &arg : args)
    command += (command.empty() ? "" : " ") + arg;
  writeFile(dir.path() / "nvcc-command.sh", command + "\n");
  const int status = runLogged(args, log.string());
  if (status != 0 || !fs::exists(cubin)) {
    dir.keep();
    throw Error("nvcc failed (exit " + std::to_string(status) + ") compiling the kernels for " + target +
                "; source kept in " + dir.path().string() + "\n  command: " + command + "\n" +
                firstLines(readFile(log), 25));
  }
  const std::string bytes = readFile(cubin);
  check(!bytes.empty(), "nvcc wrote an empty cubin " + cubin.string());
  return std::vector<uint8_t>(bytes.begin(), bytes.end());
}

std::vector<std::string> cubinEntryNames(const std::vector<uint8_t> &cubin) {
  // ELF64 little-endian: section headers at e_shoff (e_shentsize bytes each);
  // SHT_SYMTAB entries are 24 bytes (name u32, info u8, other u8, shndx u16,
  // value u64, size u64); names live in the section named by sh_link.
  auto read = [&](uint64_t offset, auto &value) {
    check(offset <= cubin.size() && sizeof value <= cubin.size() - offset, "the cubin is not a valid ELF file");
    std::memcpy(&value, cubin.data() + offset, sizeof value);
  };
  check(cubin.size() >= 64 && std::memcmp(cubin.data(), "\x7f" "ELF", 4) == 0 && cubin[4] == 2 && cubin[5] == 1,
        "the cubin is not a little-endian ELF64 file");
  uint64_t sectionOffset = 0;
  uint16_t sectionSize = 0, sections = 0;
  read(0x28, sectionOffset);
  read(0x3A, sectionSize);
  read(0x3C, sections);
  check(sectionSize >= 64, "the cubin's ELF section headers are malformed");
  std::vector<std::string> names;
  for (uint16_t s = 0; s < sections; ++s) {
    const uint64_t header = sectionOffset + uint64_t{s} * sectionSize;
    uint32_t type = 0, link = 0;
    uint64_t offset = 0, size = 0, entrySize = 0;
    read(header + 4, type);
    if (type != 2) // SHT_SYMTAB
      continue;
    read(header + 24, offset);
    read(header + 32, size);
    read(header + 40, link);
    read(header + 56, entrySize);
    uint64_t stringsOffset = 0, stringsSize = 0;
    read(sectionOffset + uint64_t{link} * sectionSize + 24, stringsOffset);
    read(sectionOffset + uint64_t{link} * sectionSize + 32, stringsSize);
    check(entrySize >= 24 && stringsOffset <= cubin.size() && stringsSize <= cubin.size() - stringsOffset,
          "the cubin's ELF symbol table is malformed");
    for (uint64_t symbol = offset; symbol + 24 <= offset + size; symbol += entrySize) {
      uint32_t name = 0;
      uint8_t info = 0;
      read(symbol, name);
      read(symbol + 4, info);
      if ((info >> 4) != 1 || (info & 0xF) != 2 || name >= stringsSize) // STB_GLOBAL, STT_FUNC
        continue;
      const char *text = reinterpret_cast<const char *>(cubin.data() + stringsOffset + name);
      names.emplace_back(text, strnlen(text, stringsSize - name));
    }
  }
  return names;
}

void compileProgramForCuda(v4rt::Program &program, const CudaCompileOptions &options) {
  check(isCudaTarget(program.target),
        "unknown target '" + program.target + "'; valid targets: " + validTargetList());
  GeneratedModule module = generateModule(program, findEmitter, options.target);
  std::vector<uint8_t> cubin = compileCubin(module.translationUnit, program.target, options);
  const std::vector<std::string> exported = cubinEntryNames(cubin);
  auto exports = [&](const std::string &entry) {
    return std::find(exported.begin(), exported.end(), entry) != exported.end();
  };
  check(exports("v4_fill_dummy"), "internal error: the cubin does not export v4_fill_dummy");
  for (const EmittedKernel &kernel : module.kernels)
    check(exports(kernel.entry), "internal error: the cubin does not export entry '" + kernel.entry +
                                     "'; define it as extern \"C\" __global__ (codegen/cuda/KernelEmitter.h)");

  for (size_t b = 0; b < program.buckets.size(); ++b)
    for (size_t s = 0; s < program.buckets[b].steps.size(); ++s) {
      v4rt::Step &step = program.buckets[b].steps[s];
      const LaunchDims &dims = module.stepDims[b][s];
      step.kernel = module.stepKernel[b][s];
      std::copy(dims.grid, dims.grid + 3, step.grid);
      std::copy(dims.block, dims.block + 3, step.block);
      step.sharedBytes = dims.sharedBytes;
    }
  program.kernels.clear();
  for (const EmittedKernel &kernel : module.kernels) {
    v4rt::Kernel entry;
    entry.name = kernel.entry;
    entry.module = 0;
    program.kernels.push_back(std::move(entry));
  }
  program.modules = {v4rt::Module{program.target, std::move(cubin)}};
}

} // namespace v4c::cuda
