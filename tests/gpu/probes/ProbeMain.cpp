// v4probe-primitives: checks, one fact at a time, what the wgmma / cp.async
// host emulation assumes about the hardware (Wgmma.cuh's and CpAsync.cuh's
// numbered facts), by running the SAME small kernels on the device and on
// the emulation against a model of the fact (ProbeFacts.cpp), then the
// dense wgmma tiles at one small shape against the CPU reference kernels.
//
// Prints one line per fact, in an order where the first FAIL is the one to
// read (later ones often follow from it):
//   fact <id> <name>: PASS | SKIPPED (...) | FAIL: <half>: <first mismatch, expected vs got>
//   tile <id> <name>: PASS (...) | SKIPPED (...) | FAIL: ...
// then one JSON line. Without a usable CUDA device the device half prints
// one "device: no CUDA device ... SKIPPED" line and every fact still runs on
// the emulation (a FAIL there is a bug in the probe or the emulation).
// Exit status: 0 unless a line says FAIL; 2 on a bad command line.
//
// usage: v4probe-primitives [--emulation-only] [--timeout SECONDS] [--only ID,...]
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <memory>
#include <set>
#include <stdexcept>
#include <sstream>
#include <string>
#include <vector>

#include "tests/gpu/probes/Isolated.h"
#include "tests/gpu/probes/ProbeFacts.h"
#include "tests/gpu/probes/ProbeTiles.h"

namespace v4probe {
namespace {

struct Options {
  bool emulationOnly = false;
  int timeoutSeconds = 60;
  std::set<std::string> only;
};

std::string jsonString(const std::string &text) {
  std::string out = "\"";
  for (char ch : text) {
    if (ch == '"' || ch == '\\')
      out += '\\', out += ch;
    else if (static_cast<unsigned char>(ch) < 0x20)
      out += ' ';
    else
      out += ch;
  }
  return out + "\"";
}

struct Outcome {
  std::string id, name, verdict, detail; // verdict: PASS, FAIL, SKIPPED
};

// The device half's state: checked once, in a child process.
struct Device {
  bool usable = false;
  std::string description; // name, or why not
};

Device probeDevice(const Options &options) {
  if (options.emulationOnly)
    return {false, "--emulation-only"};
  const IsolatedResult r = runIsolated(
      [] {
        const std::string reason = deviceUnavailableReason();
        const std::string text = reason.empty() ? "ok " + deviceName() : "no " + reason;
        return std::vector<uint8_t>(text.begin(), text.end());
      },
      options.timeoutSeconds);
  if (!r.ok)
    return {false, "no CUDA device: the check failed: " + r.error};
  const std::string text(r.bytes.begin(), r.bytes.end());
  return {text.rfind("ok ", 0) == 0, text.substr(3)};
}

// All runs of a fact on the device, in one child process: their outputs
// concatenated (each prefixed by its size).
IsolatedResult deviceRuns(const Fact &fact, int timeoutSeconds) {
  return runIsolated(
      [&fact] {
        std::unique_ptr<Runner> runner = makeDeviceRunner();
        std::vector<uint8_t> all;
        for (const ProbeRun &run : fact.runs) {
          std::vector<uint8_t> bytes;
          try {
            bytes = run.run(*runner);
          } catch (const std::exception &e) {
            throw std::runtime_error(run.label + ": " + e.what());
          }
          const uint64_t size = bytes.size();
          all.insert(all.end(), reinterpret_cast<const uint8_t *>(&size), reinterpret_cast<const uint8_t *>(&size) + 8);
          all.insert(all.end(), bytes.begin(), bytes.end());
        }
        return all;
      },
      timeoutSeconds);
}

// "" when the emulation agrees with the model on every run of `fact`.
std::string emulationDisagreement(const Fact &fact, Runner &emulated) {
  for (const ProbeRun &run : fact.runs) {
    std::vector<uint8_t> got;
    try {
      got = run.run(emulated);
    } catch (const std::exception &e) {
      if (!run.emulationRejects.empty() && std::string(e.what()).find(run.emulationRejects) != std::string::npos)
        continue; // rejected as designed: only the device answers this run
      return run.label + ": " + e.what();
    }
    if (!run.emulationRejects.empty())
      return run.label + ": the emulation ran it, but it should reject it (\"" + run.emulationRejects + "\")";
    const std::string mismatch = run.explain(got);
    if (!mismatch.empty())
      return run.label + ": " + mismatch;
  }
  return "";
}

Outcome checkFact(const Fact &fact, Runner &emulated, const Device &device, const Options &options) {
  const std::string emulation = emulationDisagreement(fact, emulated);
  if (!emulation.empty())
    return {fact.id, fact.name, "FAIL", "emulation (a probe or emulation bug, not the device): " + emulation};
  if (!device.usable)
    return {fact.id, fact.name, "SKIPPED", "no device; the emulation agrees with the model"};
  const IsolatedResult r = deviceRuns(fact, options.timeoutSeconds);
  if (!r.ok)
    return {fact.id, fact.name, "FAIL", "device: " + r.error + " [" + fact.what + "]"};
  size_t at = 0;
  for (const ProbeRun &run : fact.runs) {
    uint64_t size = 0;
    if (at + 8 > r.bytes.size())
      return {fact.id, fact.name, "FAIL", "device: truncated result"};
    std::memcpy(&size, r.bytes.data() + at, 8);
    at += 8;
    if (size > r.bytes.size() - at)
      return {fact.id, fact.name, "FAIL", "device: truncated result"};
    const std::vector<uint8_t> got(r.bytes.begin() + at, r.bytes.begin() + at + size);
    at += size;
    const std::string mismatch = run.explain(got);
    if (!mismatch.empty())
      return {fact.id, fact.name, "FAIL", "device: " + run.label + ": " + mismatch + " [" + fact.what + "]"};
  }
  return {fact.id, fact.name, "PASS", ""};
}

std::string sci(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%.2g", v);
  return text;
}

// max over outputs of |got - expected| / max(1, scale), NaN when any is
// NaN; rows >= present must stay unwritten (NaN on both halves).
struct TileError {
  double worst = 0.0;
  std::string first; // first element over `bound`, or a written padding row
};
TileError tileError(const std::vector<float> &got, const TileProblem &p, double bound) {
  TileError e;
  for (int t = 0; t < p.rows; ++t)
    for (int n = 0; n < p.cols; ++n) {
      const float value = got[size_t(t) * p.cols + n];
      if (t >= p.present) {
        if (!std::isnan(value) && e.first.empty())
          e.first = "row " + std::to_string(t) + " >= present " + std::to_string(p.present) + " was written";
        continue;
      }
      const float want = p.expected[size_t(t) * p.cols + n];
      const double ratio = std::fabs(double(value) - want) / std::max(1.0f, p.scale[size_t(t) * p.cols + n]);
      if (!(ratio <= e.worst))
        e.worst = std::isnan(ratio) ? NAN : std::max(e.worst, ratio);
      if (!(ratio <= bound) && e.first.empty()) {
        char text[160];
        std::snprintf(text, sizeof text, "y[%d][%d] = %.9g, reference %.9g (|err| / scale %.2g > %.2g)", t, n, value,
                      want, ratio, bound);
        e.first = text;
      }
    }
  return e;
}

// One tile: the emulation at the host tests' bound, the device at `deviceBound`.
Outcome checkTile(const std::string &id, const std::string &name, const TileProblem &p, double deviceBound,
                  const std::function<std::vector<float>(Runner &)> &run, Runner &emulated, const Device &device,
                  const Options &options) {
  std::vector<float> emulatedY;
  try {
    emulatedY = run(emulated);
  } catch (const std::exception &e) {
    return {id, name, "FAIL", std::string("emulation: ") + e.what()};
  }
  if (emulatedY.size() != size_t(p.rows) * p.cols)
    return {id, name, "FAIL", "emulation: wrong output size"};
  const TileError onHost = tileError(emulatedY, p, p.relative);
  if (!onHost.first.empty())
    return {id, name, "FAIL", "emulation: " + onHost.first};
  const std::string hostText = "emulation |err|/scale " + sci(onHost.worst) + " <= " + sci(p.relative);
  if (!device.usable)
    return {id, name, "SKIPPED", "no device; " + hostText};
  const IsolatedResult r = runIsolated(
      [&] {
        std::unique_ptr<Runner> runner = makeDeviceRunner();
        const std::vector<float> y = run(*runner);
        return std::vector<uint8_t>(reinterpret_cast<const uint8_t *>(y.data()),
                                    reinterpret_cast<const uint8_t *>(y.data() + y.size()));
      },
      options.timeoutSeconds);
  if (!r.ok)
    return {id, name, "FAIL", "device: " + r.error};
  std::vector<float> y(r.bytes.size() / sizeof(float));
  std::memcpy(y.data(), r.bytes.data(), y.size() * sizeof(float));
  if (y.size() != size_t(p.rows) * p.cols)
    return {id, name, "FAIL", "device: wrong output size"};
  const TileError onDevice = tileError(y, p, deviceBound);
  if (!onDevice.first.empty())
    return {id, name, "FAIL", "device: " + onDevice.first + "; " + hostText};
  return {id, name, "PASS", "device |err|/scale " + sci(onDevice.worst) + " <= " + sci(deviceBound) + "; " + hostText};
}

int usage(const std::string &why) {
  std::fprintf(stderr, "v4probe-primitives: %s\nusage: v4probe-primitives [--emulation-only] [--timeout SECONDS] "
                       "[--only ID,...]\n",
               why.c_str());
  return 2;
}

int run(int argc, char **argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--emulation-only") {
      options.emulationOnly = true;
    } else if (arg == "--timeout" && i + 1 < argc) {
      options.timeoutSeconds = std::atoi(argv[++i]);
      if (options.timeoutSeconds <= 0)
        return usage("--timeout takes a positive number of seconds");
    } else if (arg == "--only" && i + 1 < argc) {
      std::stringstream ids(argv[++i]);
      for (std::string id; std::getline(ids, id, ',');)
        options.only.insert(id);
    } else {
      return usage("unknown argument " + arg);
    }
  }
  const auto wanted = [&](const std::string &id) { return options.only.empty() || options.only.count(id); };

  const Device device = probeDevice(options);
  if (device.usable)
    std::printf("device: %s\n", device.description.c_str());
  else
    std::printf("device: %s: SKIPPED (the device half; the emulation half runs)\n", device.description.c_str());
  std::fflush(stdout);

  std::unique_ptr<Runner> emulated = makeEmulatedRunner();
  std::vector<Outcome> outcomes;
  auto report = [&](const char *kind, const Outcome &o) {
    std::string line = std::string(kind) + " " + o.id + " " + o.name + ": " + o.verdict;
    if (!o.detail.empty())
      line += o.verdict == "FAIL" ? ": " + o.detail : " (" + o.detail + ")";
    std::printf("%s\n", line.c_str());
    std::fflush(stdout);
    outcomes.push_back(o);
  };
  for (const Fact &fact : primitiveFacts())
    if (wanted(fact.id))
      report("fact", checkFact(fact, *emulated, device, options));
  if (wanted("T1")) {
    const TileProblem p = denseBf16Problem();
    report("tile", checkTile("T1", "wgmma.dense-bf16-tile", p, 1e-4,
                             [&p](Runner &r) { return r.denseBf16Tile(p.x, p.w); }, *emulated, device, options));
  }
  if (wanted("T2")) {
    const TileProblem p = fp8Problem();
    // The H100 sums e4m3 products narrower than fp32 within a 128-wide group.
    report("tile", checkTile("T2", "wgmma.fp8-e4m3-tile", p, 2e-3,
                             [&p](Runner &r) { return r.fp8Tile(p.x, p.codes, p.scales); }, *emulated, device, options));
  }

  if (wanted("T3")) {
    const TileProblem p = moeProblem();
    report("tile", checkTile("T3", "wgmma.moe-grouped-bf16", p, 1e-4,
                             [&p](Runner &r) { return r.moeTile(p.x, p.routeWeights, p.experts, p.w, p.down); },
                             *emulated, device, options));
  }

  int pass = 0, fail = 0, skipped = 0;
  std::string results;
  for (const Outcome &o : outcomes) {
    pass += o.verdict == "PASS", fail += o.verdict == "FAIL", skipped += o.verdict == "SKIPPED";
    results += std::string(results.empty() ? "" : ", ") + "{\"id\": " + jsonString(o.id) +
               ", \"name\": " + jsonString(o.name) + ", \"verdict\": " + jsonString(o.verdict) +
               ", \"detail\": " + jsonString(o.detail) + "}";
  }
  std::printf("{\"probe\": \"v4probe-primitives\", \"device\": %s, \"device_usable\": %s, \"pass\": %d, \"fail\": %d, "
              "\"skipped\": %d, \"results\": [%s]}\n",
              jsonString(device.description).c_str(), device.usable ? "true" : "false", pass, fail, skipped,
              results.c_str());
  return fail == 0 ? 0 : 1;
}

} // namespace
} // namespace v4probe

int main(int argc, char **argv) {
  try {
    return v4probe::run(argc, argv);
  } catch (const std::exception &e) {
    std::fprintf(stderr, "v4probe-primitives: error: %s\n", e.what());
    return 1;
  }
}
