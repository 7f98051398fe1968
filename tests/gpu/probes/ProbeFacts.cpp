// The facts and their designed inputs. Operands "coded" by (row, k) against
// a one-hot "selector" operand make D[r][c] equal ONE element of the coded
// operand, so a wrong layout shows which element moved where; the
// fragment probe's D[r][c] = (r + 1) + 256 (c + 1) names the position a
// thread's register really holds.
#include "tests/gpu/probes/ProbeFacts.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <utility>

#include "runtime/cpu/Quantization.h"

namespace v4probe {
namespace {

namespace quant = v4rt::quant;

std::string number(double v) {
  char text[64];
  std::snprintf(text, sizeof text, "%.9g", v);
  return text;
}

float bf16Value(uint16_t bits) {
  const uint32_t word = uint32_t(bits) << 16;
  float value;
  std::memcpy(&value, &word, sizeof value);
  return value;
}

// A K-major operand: `rows` rows of 128 bytes (64 bf16 or 128 e4m3 elements).
struct Operand {
  int rows;
  bool e4m3;
  std::vector<uint8_t> bytes;
  Operand(int rows, bool e4m3) : rows(rows), e4m3(e4m3), bytes(size_t(rows) * kRowBytes, 0) {}
  int elements() const { return e4m3 ? 128 : 64; }
  void set(int row, int k, uint16_t bits) {
    if (e4m3) {
      bytes[size_t(row) * kRowBytes + k] = static_cast<uint8_t>(bits);
    } else {
      bytes[size_t(row) * kRowBytes + 2 * k] = static_cast<uint8_t>(bits & 0xff);
      bytes[size_t(row) * kRowBytes + 2 * k + 1] = static_cast<uint8_t>(bits >> 8);
    }
  }
  float at(int row, int k) const {
    if (e4m3)
      return quant::decodeE4M3(bytes[size_t(row) * kRowBytes + k]);
    return bf16Value(uint16_t(bytes[size_t(row) * kRowBytes + 2 * k] | (bytes[size_t(row) * kRowBytes + 2 * k + 1] << 8)));
  }
};

uint16_t oneBits(bool e4m3) { return e4m3 ? 0x38 : 0x3F80; }
// bf16 of an integer < 2^16 with at most 8 significant bits.
uint16_t bf16Integer(int value) {
  const float f = static_cast<float>(value);
  uint32_t word;
  std::memcpy(&word, &f, sizeof word);
  return static_cast<uint16_t>(word >> 16);
}
// A bf16 value per (row < 256, k < 64), all distinct: (1 + (row % 128) / 128) * 2^(k - 32 [+ 64 for row >= 128]).
uint16_t bf16Code(int row, int k) {
  const int exponent = (row < 128 ? k - 32 : k + 32) + 127;
  return static_cast<uint16_t>((exponent << 7) | (row & 127));
}
// A distinct nonzero, non-NaN e4m3 code per index < 252.
uint8_t e4m3Code(int index) {
  index %= 252;
  return index < 126 ? static_cast<uint8_t>(1 + index) : static_cast<uint8_t>(0x81 + index - 126);
}

enum class Coding { RowAndK, RowOnly, KOnly };

// Every element coded: RowAndK (bf16 only), or by its row or its k alone (e4m3).
Operand coded(int rows, bool e4m3, Coding coding) {
  Operand op(rows, e4m3);
  for (int r = 0; r < rows; ++r)
    for (int k = 0; k < op.elements(); ++k)
      op.set(r, k, coding == Coding::RowAndK ? bf16Code(r, k) : e4m3Code(coding == Coding::RowOnly ? r : k));
  return op;
}
// One at every k with k % (slice width) == row % (slice width): in any slice,
// D's column (or row) c picks k = c % width of the other operand.
Operand selector(int rows, bool e4m3) {
  Operand op(rows, e4m3);
  const int width = op.elements() / kSlices;
  for (int r = 0; r < rows; ++r)
    for (int k = 0; k < op.elements(); ++k)
      if (k % width == r % width)
        op.set(r, k, oneBits(e4m3));
  return op;
}
// Small integers (exact in bf16 and e4m3, and their sums in fp32).
Operand integers(int rows, bool e4m3, int salt) {
  Operand op(rows, e4m3);
  for (int r = 0; r < rows; ++r)
    for (int k = 0; k < op.elements(); ++k) {
      const int v = (r * 7 + k * 3 + salt * 5 + (r * k) % 11) % 5 - 2; // -2..2
      op.set(r, k, e4m3 ? quant::encodeE4M3(static_cast<float>(v)) : bf16Integer(v));
    }
  return op;
}
// The fragment probe: A[r][0] = r + 1, A[r][1] = 1; B[c][0] = 1, B[c][1] = 256 (c + 1).
std::pair<Operand, Operand> fragmentOperands(int n) {
  Operand a(kRowsA, false), b(n, false);
  for (int r = 0; r < kRowsA; ++r) {
    a.set(r, 0, bf16Integer(r + 1));
    a.set(r, 1, oneBits(false));
  }
  for (int c = 0; c < n; ++c) {
    b.set(c, 0, oneBits(false));
    b.set(c, 1, bf16Integer(256 * (c + 1)));
  }
  return {a, b};
}

// The model's D [64 x n] for one mma of `slice` (all slices chained for kChain).
std::vector<float> modelD(const WgmmaCase &c, const Operand &a, const Operand &b, int slice) {
  const int width = a.elements() / kSlices;
  const int k0 = c.mode == kChain ? 0 : slice * width, k1 = c.mode == kChain ? a.elements() : k0 + width;
  std::vector<float> d(size_t(kRowsA) * c.n);
  for (int r = 0; r < kRowsA; ++r)
    for (int col = 0; col < c.n; ++col) {
      double sum = c.mode == kAccumulate ? kAccumulateBase : 0.0;
      for (int k = k0; k < k1; ++k)
        sum += double(a.at(r, k)) * double(b.at(col, k));
      d[size_t(r) * c.n + col] = static_cast<float>(sum);
    }
  return d;
}

std::vector<uint8_t> floatBytes(const std::vector<float> &values) {
  std::vector<uint8_t> bytes(values.size() * sizeof(float));
  std::memcpy(bytes.data(), values.data(), bytes.size());
  return bytes;
}
std::vector<float> bytesFloats(const std::vector<uint8_t> &bytes) {
  std::vector<float> values(bytes.size() / sizeof(float));
  std::memcpy(values.data(), bytes.data(), values.size() * sizeof(float));
  return values;
}

// What a value is: the coded operand's elements that hold it, or the fragment code's position.
using Namer = std::function<std::string(float)>;

Namer operandNamer(const Operand &op, char name) {
  return [op, name](float value) -> std::string {
    std::vector<std::pair<int, int>> where;
    for (int r = 0; r < op.rows; ++r)
      for (int k = 0; k < op.elements(); ++k)
        if (op.at(r, k) == value)
          where.push_back({r, k});
    if (where.empty())
      return value == 0.0f ? "zero: no coded element reached it (the selector's k was read elsewhere)"
                           : std::string("no element of ") + name;
    bool oneRow = true, oneK = true;
    for (const auto &w : where)
      oneRow &= w.first == where[0].first, oneK &= w.second == where[0].second;
    std::string text = std::string(1, name) + "(";
    if (where.size() == 1)
      return text + "row " + std::to_string(where[0].first) + ", k " + std::to_string(where[0].second) + ")";
    if (oneRow)
      return text + "row " + std::to_string(where[0].first) + ")";
    if (oneK)
      return text + "k " + std::to_string(where[0].second) + ")";
    return text + "row " + std::to_string(where[0].first) + ", k " + std::to_string(where[0].second) + " or " +
           std::to_string(where.size() - 1) + " more)";
  };
}

// "the code of D[r][c]" when v is (r + 1) + 256 (c + 1) for a position of the tile, else "".
std::string fragmentCode(double v) {
  if (v != std::floor(v) || v < 257 || v > 256.0 * 257 + 64)
    return "";
  const long code = static_cast<long>(v);
  const int row = static_cast<int>(code % 256) - 1, col = static_cast<int>(code / 256) - 1;
  if (row < 0 || row >= kRowsA)
    return "";
  return "the code of D[" + std::to_string(row) + "][" + std::to_string(col) + "]";
}

// Names fragment-probe values; `base` is what the accumulators held before a scale-d = 1 mma (else 0).
Namer fragmentNamer(float base) {
  return [base](float value) -> std::string {
    if (std::isnan(value))
      return "NaN (never written)";
    const std::string plain = fragmentCode(double(value) - base);
    if (!plain.empty())
      return base != 0.0f ? number(base) + " + " + plain : plain;
    const std::string kept = fragmentCode(double(value) - kOverwriteSentinel);
    if (!kept.empty())
      return number(kOverwriteSentinel) + " + " + kept + " (the old accumulator was kept: scale-d = 0 not honoured)";
    if (base != 0.0f && !fragmentCode(value).empty())
      return fragmentCode(value) + " without the " + number(base) + " (scale-d = 1 not honoured)";
    return "no position's code";
  };
}

// A wgmma run: expected fragment(s) through the model's fragment layout;
// `namer` names values.
ProbeRun wgmmaRun(std::string label, const WgmmaCase &c, const Operand &a, const Operand &b, Namer namer) {
  ProbeRun run;
  run.label = std::move(label);
  std::vector<float> expected;
  const int fragments = c.mode == kWaitGroup ? 2 : 1;
  for (int f = 0; f < fragments; ++f) {
    const std::vector<float> d = modelD(c, a, b, c.mode == kWaitGroup ? f : c.slice);
    for (int t = 0; t < kWgmmaThreadsProbe; ++t)
      for (int i = 0; i < c.n / 2; ++i) {
        const TilePosition p = accumulatorPosition(t, i);
        expected.push_back(d[size_t(p.row) * c.n + p.col]);
      }
  }
  run.expected = floatBytes(expected);
  run.run = [c, a = a.bytes, b = b.bytes](Runner &runner) { return floatBytes(runner.wgmma(c, a, b)); };
  const int n = c.n;
  run.explain = [n, expected, namer](const std::vector<uint8_t> &gotBytes) -> std::string {
    const std::vector<float> got = bytesFloats(gotBytes);
    if (got.size() != expected.size())
      return "got " + std::to_string(got.size()) + " floats, expected " + std::to_string(expected.size());
    size_t bad = 0, first = 0;
    for (size_t j = 0; j < got.size(); ++j)
      if (std::memcmp(&got[j], &expected[j], sizeof(float)) != 0 && !(std::isnan(got[j]) && std::isnan(expected[j])))
        if (bad++ == 0)
          first = j;
    if (bad == 0)
      return "";
    const size_t perFragment = size_t(kWgmmaThreadsProbe) * (n / 2);
    const int fragment = static_cast<int>(first / perFragment), t = static_cast<int>(first % perFragment / (n / 2)),
              i = static_cast<int>(first % (n / 2));
    const TilePosition p = accumulatorPosition(t, i);
    return std::string(fragment ? "second group's " : "") + "D[" + std::to_string(p.row) + "][" +
           std::to_string(p.col) + "] (thread " + std::to_string(t) + ", accumulator " + std::to_string(i) +
           "): expected " + number(expected[first]) + " = " + namer(expected[first]) + ", got " + number(got[first]) +
           " = " + namer(got[first]) + " (" + std::to_string(bad) + " of " + std::to_string(got.size()) +
           " elements differ)";
  };
  return run;
}

// A-coded (D[r][c] = A[r][slice k c % w]) or B-coded (D[r][c] = B[c][slice k r % w]) runs of `c`.
ProbeRun codedRun(const std::string &label, const WgmmaCase &c, bool codeA, Coding coding) {
  const Operand codedOp = coded(codeA ? kRowsA : c.n, c.e4m3, coding);
  const Operand other = selector(codeA ? c.n : kRowsA, c.e4m3);
  const Operand &a = codeA ? codedOp : other, &b = codeA ? other : codedOp;
  return wgmmaRun(label, c, a, b, operandNamer(codedOp, codeA ? 'A' : 'B'));
}

WgmmaCase wgmmaCase(int n, bool e4m3, int slice = 0, int mode = kPlain) {
  WgmmaCase c;
  c.n = n, c.e4m3 = e4m3, c.slice = slice, c.mode = mode;
  return c;
}

// Operand layout facts of one (n, dtype): bf16 codes (row, k) at once; e4m3 by row, then by k.
std::vector<ProbeRun> layoutRuns(int n, bool e4m3, bool codeA, int slice) {
  const std::string operand = codeA ? "A" : "B", at = "n " + std::to_string(n) + ", slice " + std::to_string(slice);
  const WgmmaCase c = wgmmaCase(n, e4m3, slice);
  if (!e4m3)
    return {codedRun(operand + " coded by (row, k), " + at, c, codeA, Coding::RowAndK)};
  return {codedRun(operand + " coded by row, " + at, c, codeA, Coding::RowOnly),
          codedRun(operand + " coded by k, " + at, c, codeA, Coding::KOnly)};
}

void append(std::vector<ProbeRun> &to, std::vector<ProbeRun> runs) {
  for (ProbeRun &r : runs)
    to.push_back(std::move(r));
}

std::vector<uint8_t> patternBytes(size_t count, int salt) {
  std::vector<uint8_t> bytes(count);
  for (size_t i = 0; i < count; ++i) {
    uint8_t v = static_cast<uint8_t>(1 + (i * 37 + salt) % 255);
    bytes[i] = v == kPoisonByte ? 0x5A : v;
  }
  return bytes;
}

std::string firstByteMismatch(const std::vector<uint8_t> &got, const std::vector<uint8_t> &expected,
                              const std::function<std::string(size_t, uint8_t, uint8_t)> &name) {
  if (got.size() != expected.size())
    return "got " + std::to_string(got.size()) + " bytes, expected " + std::to_string(expected.size());
  size_t bad = 0, first = 0;
  for (size_t i = 0; i < got.size(); ++i)
    if (got[i] != expected[i] && bad++ == 0)
      first = i;
  return bad == 0 ? "" : name(first, expected[first], got[first]) + " (" + std::to_string(bad) + " bytes differ)";
}

// A run whose outputs are compared byte by byte; `name` describes the first
// differing byte (its index, the expected and the got byte).
ProbeRun byteRun(std::string label, std::vector<uint8_t> expected,
                 std::function<std::vector<uint8_t>(Runner &)> run,
                 std::function<std::string(size_t, uint8_t, uint8_t)> name) {
  ProbeRun probe;
  probe.label = std::move(label);
  probe.run = std::move(run);
  probe.explain = [expected, name = std::move(name)](const std::vector<uint8_t> &got) {
    return firstByteMismatch(got, expected, name);
  };
  probe.expected = std::move(expected);
  return probe;
}

std::string hexByte(uint8_t b) {
  char text[8];
  std::snprintf(text, sizeof text, "0x%02x", b);
  return text;
}

Fact cpAsyncZeroFillFact() {
  const std::vector<uint8_t> src = patternBytes(kCpAsyncThreads * 16, 3);
  std::vector<uint8_t> expected(src.size(), 0);
  for (int t = 0; t < kCpAsyncThreads; ++t) {
    const int from = (t + 1) % kCpAsyncThreads;
    for (int i = 0; i < zeroFillSourceBytes(from); ++i)
      expected[t * 16 + i] = src[from * 16 + i];
  }
  const auto nameByte = [](size_t at, uint8_t want, uint8_t have) {
    const int t = static_cast<int>(at / 16), from = (t + 1) % kCpAsyncThreads, i = static_cast<int>(at % 16);
    std::string text = "thread " + std::to_string(from) + "'s chunk byte " + std::to_string(i) + " (src bytes " +
                       std::to_string(zeroFillSourceBytes(from)) + ", read by thread " + std::to_string(t) +
                       "): expected " + hexByte(want) + ", got " + hexByte(have);
    if (have == kPoisonByte)
      text += " = the pre-fill: the copy never wrote it (no zero-fill, or not visible after wait_group + barrier)";
    else if (want == 0)
      text += ": written past src-size (zero-fill not honoured)";
    return text;
  };
  const ProbeRun run =
      byteRun("thread t copies t % 17 bytes; thread t - 1 reads them after wait_group 0 + barrier", expected,
              [src](Runner &r) { return r.cpAsyncZeroFill(src); }, nameByte);
  return {"C1", "cp.async.zero-fill",
          "CpAsync.cuh facts 1, 3: cp.async 16 with src-size s copies s bytes and zero-fills the rest; visible to "
          "other threads after wait_group + barrier",
          {run}};
}

Fact cpAsyncGroupsFact() {
  const std::vector<uint8_t> src = patternBytes(3 * kCpAsyncThreads * 16, 11);
  const auto nameByte = [](size_t at, uint8_t want, uint8_t have) {
    const int group = static_cast<int>(at / (kCpAsyncThreads * 16)), t = static_cast<int>(at / 16 % kCpAsyncThreads);
    return "group " + std::to_string(group) + " (read after wait_group " + std::to_string(2 - group) +
           "), thread " + std::to_string(t) + " byte " + std::to_string(at % 16) + ": expected " + hexByte(want) +
           ", got " + hexByte(have) + " (the group was not complete)";
  };
  const ProbeRun run = byteRun("empty group + 3 one-copy groups; wait_group 2, 1, 0 each retire one", src,
                               [src](Runner &r) { return r.cpAsyncGroups(src); }, nameByte);
  return {"C2", "cp.async.wait_group",
          "CpAsync.cuh fact 2: commit_group closes a group (an empty one completes at once); wait_group N leaves at "
          "most the N newest pending",
          {run}};
}

} // namespace

std::vector<Fact> primitiveFacts() {
  std::vector<Fact> facts;
  {
    const auto [a, b] = fragmentOperands(256);
    facts.push_back({"W1", "wgmma.bf16.accumulator-fragment",
                     "Wgmma.cuh fact 4: thread t, element 4j+q holds D[16(t/32) + (t%32)/4 + 8(q/2)][8j + 2(t%4) + q%2]",
                     {wgmmaRun("m64n256k16, D[r][c] = (r+1) + 256 (c+1)", wgmmaCase(256, false), a, b, fragmentNamer(0))}});
  }
  facts.push_back({"W2", "wgmma.bf16.m64n64k16.a-operand",
                   "Wgmma.cuh facts 1-3: A K-major, descriptor (start, SBO 1024, 128B swizzle), chunk ^= row % 8",
                   layoutRuns(64, false, true, 0)});
  for (int n : {64, 128, 256})
    facts.push_back({"W" + std::to_string(n == 64 ? 3 : n == 128 ? 4 : 5),
                     "wgmma.bf16.m64n" + std::to_string(n) + "k16.b-operand",
                     "Wgmma.cuh facts 1-3 for B (N x K weight rows, no transpose) at N = " + std::to_string(n),
                     layoutRuns(n, false, false, 0)});
  {
    std::vector<ProbeRun> runs;
    for (int slice = 1; slice < kSlices; ++slice) {
      append(runs, layoutRuns(64, false, true, slice));
      append(runs, layoutRuns(64, false, false, slice));
    }
    facts.push_back({"W6", "wgmma.bf16.k16-advance",
                     "Wgmma.cuh fact 2: k16 slice s of a swizzled row = descriptor start + 32 s bytes", runs});
  }
  {
    const auto [a, b] = fragmentOperands(64);
    WgmmaCase overwrite = wgmmaCase(64, false, 0, kOverwrite), accumulate = wgmmaCase(64, false, 0, kAccumulate);
    facts.push_back({"W7", "wgmma.scale-d",
                     "Wgmma.cuh fact 5: scale-d = 0 ignores the accumulators (7777 there), scale-d = 1 adds (4096 there)",
                     {wgmmaRun("scale-d 0 over 7777", overwrite, a, b, fragmentNamer(0)),
                      wgmmaRun("scale-d 1 over 4096", accumulate, a, b, fragmentNamer(kAccumulateBase))}});
  }
  {
    const Operand a = coded(kRowsA, false, Coding::RowAndK), b = selector(64, false);
    facts.push_back({"W8", "wgmma.wait_group",
                     "Wgmma.cuh fact 6: wait_group 1 retires the older of two committed groups (its registers final)",
                     {wgmmaRun("slice 0 then slice 1, two groups", wgmmaCase(64, false, 0, kWaitGroup), a, b,
                               operandNamer(a, 'A'))}});
  }
  facts.push_back({"W9", "wgmma.bf16.k64-chain",
                   "the GEMM's inner loop: 4 chained k16 mmas (scale-d 0, 1, 1, 1) over one 128-byte row",
                   {wgmmaRun("integers -2..2, m64n128", wgmmaCase(128, false, 0, kChain), integers(kRowsA, false, 1),
                             integers(128, false, 2), [](float) { return std::string("a sum"); })}});
  facts.push_back({"E1", "wgmma.e4m3.m64n64k32.a-operand",
                   "Wgmma.cuh e4m3: A bytes K-major in the same swizzle, k32 per 32-byte slice",
                   layoutRuns(64, true, true, 0)});
  facts.push_back({"E2", "wgmma.e4m3.m64n64k32.b-operand", "Wgmma.cuh e4m3: B bytes K-major, no transpose",
                   layoutRuns(64, true, false, 0)});
  facts.push_back({"E3", "wgmma.e4m3.m64n256k32.b-operand", "the same at N = 256", layoutRuns(256, true, false, 0)});
  {
    std::vector<ProbeRun> runs;
    for (int slice = 1; slice < kSlices; ++slice) {
      append(runs, layoutRuns(64, true, true, slice));
      append(runs, layoutRuns(64, true, false, slice));
    }
    facts.push_back({"E4", "wgmma.e4m3.k32-advance", "k32 slice s = descriptor start + 32 s bytes", runs});
  }
  facts.push_back({"E5", "wgmma.e4m3.k128-chain", "4 chained k32 e4m3 mmas over one 128-byte row (fp32 sums of integers)",
                   {wgmmaRun("integers -2..2, m64n64", wgmmaCase(64, true, 0, kChain), integers(kRowsA, true, 3),
                             integers(64, true, 4), [](float) { return std::string("a sum"); })}});
  {
    WgmmaCase c = wgmmaCase(64, false);
    c.startOffset = 256;
    ProbeRun run = codedRun("tiles at a 1024-aligned address + 256, XOR from the address", c, true, Coding::RowAndK);
    run.emulationRejects = "swizzle period";
    facts.push_back({"S1", "wgmma.swizzle-anchor",
                     "128B swizzle XORs address bits [4:6] with bits [7:9] of the SHARED address (base offset 0), "
                     "so a tile need not start on 1024; FAIL here only means tiles must be 1024-aligned (they are)",
                     {run}});
  }
  facts.push_back(cpAsyncZeroFillFact());
  facts.push_back(cpAsyncGroupsFact());
  {
    WgmmaCase c = wgmmaCase(64, false);
    c.cpAsync = true;
    facts.push_back({"C3", "cp.async.to-wgmma",
                     "CpAsync.cuh fact 4: cp.async-written operands, wait_group + fence.proxy.async + barrier, then "
                     "wgmma reads them",
                     {codedRun("A coded by (row, k), loaded by cp.async", c, true, Coding::RowAndK)}});
  }
  return facts;
}

} // namespace v4probe
