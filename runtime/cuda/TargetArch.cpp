#include "runtime/cuda/TargetArch.h"

#include <cctype>

#include "common/Error.h"

namespace v4rt::cuda {

TargetArch parseTargetArch(const std::string &target) {
  const std::string bad = "target '" + target + "' is not a CUDA architecture (want e.g. sm_90a, sm_80)";
  if (target.size() < 5 || target.compare(0, 3, "sm_") != 0)
    throw v4c::Error(bad);
  std::string digits = target.substr(3);
  TargetArch arch;
  if (!digits.empty() && digits.back() == 'a') {
    arch.archSpecific = true;
    digits.pop_back();
  }
  if (digits.size() < 2 || digits.size() > 3)
    throw v4c::Error(bad);
  for (char c : digits)
    if (!std::isdigit(static_cast<unsigned char>(c)))
      throw v4c::Error(bad);
  // The last digit is the minor version: sm_90 -> 9.0, sm_100 -> 10.0.
  arch.minor = digits.back() - '0';
  arch.major = std::stoi(digits.substr(0, digits.size() - 1));
  return arch;
}

std::string targetMismatch(const std::string &target, int major, int minor) {
  const TargetArch arch = parseTargetArch(target);
  const std::string device =
      "device compute capability " + std::to_string(major) + "." + std::to_string(minor);
  const std::string wanted = std::to_string(arch.major) + "." + std::to_string(arch.minor);
  if (arch.archSpecific) {
    if (major == arch.major && minor == arch.minor)
      return {};
    return device + " cannot run " + target + " code (needs exactly " + wanted + ")";
  }
  if (major == arch.major && minor >= arch.minor)
    return {};
  return device + " cannot run " + target + " code (needs " + wanted + " to " +
         std::to_string(arch.major) + ".9: SASS runs only within its major version)";
}

} // namespace v4rt::cuda
