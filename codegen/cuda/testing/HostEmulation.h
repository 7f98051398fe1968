// Runs the REAL CUDA kernel templates (include/v4cuda/*.cuh) on the CPU, so
// their index math, tile boundaries and block hand-offs can be checked
// against the CPU reference kernels without a GPU.
//
// Include this header FIRST, then the kernel headers through the emulated
// include directory that v4cuda_add_host_test (testing/CMakeLists.txt) puts on
// the include path: a build-time copy of include/v4cuda/*.cuh (with #line
// directives naming the originals) in which `extern __shared__` reads
// `extern`, because `__shared__` itself means `static` here (see below).
//
// Emulated:
// - the execution model: every CUDA thread of a block is a user-space fiber
//   (Fibers.h: its own mmap'ed 128 KiB stack above 64 KiB of guard, a few
//   instructions per switch on x86-64), all run by the launching OS thread.
//   3-D blocks are linearised x fastest, warps are 32 consecutive linear ids.
//   The fibers run in linear order, each until it reaches a barrier or warp
//   primitive or returns; the last to arrive resolves the barrier. The
//   blocks of a launch run ONE AFTER ANOTHER, so a "last block finishes"
//   hand-off sees every other block done, as on the GPU. threadIdx (set at
//   every switch), blockIdx / blockDim / gridDim are globals. Cost: ~60 ns
//   of CPU per thread per barrier (with one OS thread per CUDA thread it was
//   ~6 us of CPU, and far more wall time on a loaded machine), so a run
//   costs about the kernels' own arithmetic.
// - __syncthreads / __syncthreads_or / _and / _count: a block barrier; a
//   thread that returns drops out of the barriers (as on hardware).
// - __syncwarp, __shfl_sync / _xor_sync / _up_sync / _down_sync (any
//   trivially copyable type up to 8 bytes, `width` segments), __ballot_sync,
//   __any_sync / __all_sync: a warp barrier at which every live lane
//   publishes its value; a lane that does not exist or has returned reads
//   its own value.
// - divergent barriers fail the launch with a v4c::Error instead of hanging:
//   threads of a block at different __syncthreads calls, lanes of a warp at
//   different warp primitives (each primitive records its call site), or a
//   block in which every live thread waits and no barrier can complete (the
//   error lists which threads wait where, by file and line). A fiber stack
//   overflow prints the CUDA thread and block before the SIGSEGV.
// - atomics (add, sub, max, min, exch, CAS, or, and) as plain read-modify-
//   writes (no fiber is switched out inside one); __threadfence as a seq_cst
//   fence; __ldg / __ldcg / __ldcs / __ldca and __stcg / __stcs as plain
//   accesses.
// - the __f*_rn intrinsics (exact IEEE fp32 ops; build with
//   -ffp-contract=off so the host compiler does not fuse a*b+c either),
//   __int_as_float & co., __popc / __clz / __ffs, CUDA's global min / max.
// - `__shared__` variables: function-local `static` storage (one block runs
//   at a time). They are NOT reset between blocks or launches.
// - `extern __shared__` dynamic shared memory: every kernel names its own
//   array; V4EMU_DYNAMIC_SHARED(type, name) defines v4cuda::name with room for
//   kDynamicSharedCapacity bytes (the kernels' names in the tree are defined
//   below). Before each block, the launch's dynamicSharedBytes of every such
//   array (plus a guard) are filled with 0xFF bytes (NaN as f32 / bf16, -1 as
//   int), so a read of an element no thread wrote shows up; a write into the
//   guard past dynamicSharedBytes fails the launch.
// - nvcuda::wmma: a fragment holds the whole 16x16 (m16n16k16) tile in every
//   thread, as floats; load/store/fill/mma act on the whole tile (stores
//   split over the lanes), mma accumulates in fp32. Exact as long as kernels
//   never index fragment elements (which is layout-dependent on the GPU).
// - Hopper wgmma (Wgmma.cuh's primitives): WgmmaEmulation.h (descriptors,
//   the 128-byte swizzle, the m64nNk16 accumulator fragment, deferred
//   execution at wait_group, warpgroup-uniform calls). Dynamic shared memory
//   starts at shared address wgmma::kDynamicSharedWindow (384, not
//   1024-aligned).
// - sm_80 cp.async (CpAsync.cuh's primitives): CpAsyncEmulation.h (per-thread
//   groups performed at wait_group, poisoned destinations, zero-fill, and
//   which threads / proxies may see a copied chunk: a wgmma that reads one
//   before the barrier or without fence.proxy.async fails). fence.proxy.async
//   matters only for cp.async-written chunks (plain stores need none here).
// - alignment: __ldg & co. of a misaligned vector type, and wmma tiles off
//   256-bit alignment or with a stride not a multiple of 16 bytes, fail the
//   launch (the GPU faults); plain misaligned vector dereferences are caught
//   by -fsanitize=alignment, which v4cuda_add_host_test turns on.
// - __launch_bounds__, __global__, __device__, __forceinline__, __restrict__
//   (from the CUDA host headers or defined away here).
//
// NOT emulated:
// - the memory model's weak orderings: every access is a plain host access
//   and barriers synchronise fully. Between barriers the threads run one
//   after another in linear order, so a lane reading what a HIGHER lane
//   writes without a barrier sees the old value (the bug shows up), while a
//   read of a lower lane's write, or a missing __threadfence between blocks,
//   passes here and may fail on the GPU;
// - warp primitives under divergence: every live lane of a warp must reach
//   each warp primitive (full-mask code; masks only filter ballots), and
//   every live thread of a block each __syncthreads;
// - concurrent blocks (a kernel that waits for another block spins forever),
//   cooperative groups, clusters, bulk async copies (TMA), textures,
//   timing, and register / shared memory limits;
// - fragment element access (fragment::x) with the GPU's lane layout.
#pragma once

#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <math.h> // CUDA's math functions live in the global namespace
#include <source_location>
#include <type_traits>

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>
#include <mma.h>
#include <vector_types.h>

// Kernel headers that need the emulation's own model of an instruction
// (Wgmma.cuh, CpAsync.cuh) test this.
#define V4EMU_HOST_EMULATION 1
#include "codegen/cuda/testing/CpAsyncEmulation.h"
#include "codegen/cuda/testing/WgmmaEmulation.h"

// `__shared__` variables live in static storage: one block runs at a time.
#undef __shared__
#define __shared__ static
#ifndef __launch_bounds__
#define __launch_bounds__(...)
#endif

// ---- built-in variables ---------------------------------------------------------

// threadIdx is the running fiber's: the scheduler sets it at every switch.
inline uint3 threadIdx;
inline uint3 blockIdx;
inline dim3 blockDim, gridDim;
inline constexpr int warpSize = 32;

namespace v4emu {

// This thread's linear id in the block, its warp and lane.
inline unsigned linearThread() {
  return threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
}

// Dynamic shared memory arrays (V4EMU_DYNAMIC_SHARED), filled before blocks.
inline constexpr size_t kDynamicSharedCapacity = size_t(1) << 18;
bool registerDynamicShared(void *base, size_t capacity);

namespace detail {
void launchBlocks(dim3 grid, dim3 block, size_t dynamicSharedBytes, const std::function<void()> &body);

// The running fiber waits at the block barrier `primitive` (called at
// `where`) until every live thread of the block is there; returns how many
// arrived with a nonzero `predicate`, and how many arrived.
struct BlockVote {
  int trueCount, arrivals;
};
// The running launch's dynamic shared bytes (fails outside a launch), and
// the dynamic shared array that holds `p` (nullptr: none).
size_t launchDynamicSharedBytes();
const unsigned char *dynamicSharedArrayOf(const void *p);

BlockVote syncBlock(int predicate, const char *primitive, const std::source_location &where);

// The running fiber publishes `bits` and waits until every live lane of its
// warp has reached the same warp primitive; returns lane `sourceLane`'s bits
// (its own when that lane does not exist or has exited).
uint64_t exchangeWarp(uint64_t bits, unsigned sourceLane, const char *primitive, const std::source_location &where);

// The same wait; returns the ballot of the predicates of the lanes in `mask`.
unsigned ballotWarp(unsigned mask, bool predicate, const char *primitive, const std::source_location &where);
} // namespace detail

// Runs `kernelBody` (a callable that calls the __global__ function or the
// kernel template with its arguments) for every block of `grid`, with `block`
// threads each. Throws v4c::Error on a bad geometry, a dynamic shared size
// above the capacity, a write past dynamicSharedBytes, divergent barriers, or
// an exception thrown by the body.
template <typename F> void launch(dim3 grid, dim3 block, size_t dynamicSharedBytes, F kernelBody) {
  detail::launchBlocks(grid, block, dynamicSharedBytes, std::function<void()>(std::move(kernelBody)));
}

// Warp exchange: every live lane of the warp publishes `value`, then reads
// the value of lane `source`.
template <typename T>
T warpExchange(T value, unsigned source, const char *primitive, const std::source_location &where) {
  static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= 8, "warp shuffle of an unsupported type");
  uint64_t bits = 0;
  std::memcpy(&bits, &value, sizeof(T));
  bits = detail::exchangeWarp(bits, source, primitive, where);
  T result;
  std::memcpy(&result, &bits, sizeof(T));
  return result;
}

} // namespace v4emu

#define V4EMU_CONCAT_INNER(a, b) a##b
#define V4EMU_CONCAT(a, b) V4EMU_CONCAT_INNER(a, b)

// Defines the dynamic shared array `extern __shared__ TYPE NAME[];` of a kernel
// in namespace v4cuda, with room for kDynamicSharedCapacity bytes.
#define V4EMU_DYNAMIC_SHARED(TYPE, NAME)                                                                   \
  namespace v4cuda {                                                                                       \
  alignas(1024) inline TYPE NAME[v4emu::kDynamicSharedCapacity / sizeof(TYPE)];                              \
  }                                                                                                        \
  namespace v4emu::registered {                                                                            \
  inline const bool V4EMU_CONCAT(NAME, Registered) = v4emu::registerDynamicShared(v4cuda::NAME, sizeof(v4cuda::NAME)); \
  }

// The dynamic shared arrays of the kernel families in include/v4cuda.
V4EMU_DYNAMIC_SHARED(unsigned char, v4cudaDenseShared)
V4EMU_DYNAMIC_SHARED(float, attentionShared)
V4EMU_DYNAMIC_SHARED(float, compressShared)
V4EMU_DYNAMIC_SHARED(float, indexerShared)
V4EMU_DYNAMIC_SHARED(float, moeShared)

// ---- synchronisation ---------------------------------------------------------------
// Every primitive takes its call site (a defaulted std::source_location), so
// that threads waiting at different barriers are reported by file and line.

using V4EmuSite = std::source_location;

inline void __syncthreads(V4EmuSite where = V4EmuSite::current()) {
  v4emu::detail::syncBlock(0, "__syncthreads", where);
}
inline int __syncthreads_count(int predicate, V4EmuSite where = V4EmuSite::current()) {
  return v4emu::detail::syncBlock(predicate, "__syncthreads_count", where).trueCount;
}
inline int __syncthreads_or(int predicate, V4EmuSite where = V4EmuSite::current()) {
  return v4emu::detail::syncBlock(predicate, "__syncthreads_or", where).trueCount != 0;
}
inline int __syncthreads_and(int predicate, V4EmuSite where = V4EmuSite::current()) {
  const v4emu::detail::BlockVote vote = v4emu::detail::syncBlock(predicate, "__syncthreads_and", where);
  return vote.trueCount == vote.arrivals;
}

inline void __syncwarp(unsigned = 0xffffffffu, V4EmuSite where = V4EmuSite::current()) {
  v4emu::detail::exchangeWarp(0, 0, "__syncwarp", where);
}

inline void __threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline void __threadfence_block() { std::atomic_thread_fence(std::memory_order_seq_cst); }

// ---- warp shuffles and votes ---------------------------------------------------------

template <typename T>
T __shfl_sync(unsigned, T value, int srcLane, int width = 32, V4EmuSite where = V4EmuSite::current()) {
  const unsigned lane = v4emu::linearThread() % 32;
  const unsigned source =
      (lane & ~static_cast<unsigned>(width - 1)) + (static_cast<unsigned>(srcLane) & (width - 1));
  return v4emu::warpExchange(value, source, "__shfl_sync", where);
}
template <typename T>
T __shfl_xor_sync(unsigned, T value, int laneMask, int width = 32, V4EmuSite where = V4EmuSite::current()) {
  const unsigned lane = v4emu::linearThread() % 32;
  const unsigned target = lane ^ static_cast<unsigned>(laneMask);
  const unsigned segment = ~static_cast<unsigned>(width - 1);
  return v4emu::warpExchange(value, (target & segment) == (lane & segment) ? target : lane, "__shfl_xor_sync",
                             where);
}
template <typename T>
T __shfl_down_sync(unsigned, T value, unsigned delta, int width = 32, V4EmuSite where = V4EmuSite::current()) {
  const unsigned lane = v4emu::linearThread() % 32;
  const unsigned inSegment = lane & (width - 1);
  return v4emu::warpExchange(value, inSegment + delta < static_cast<unsigned>(width) ? lane + delta : lane,
                             "__shfl_down_sync", where);
}
template <typename T>
T __shfl_up_sync(unsigned, T value, unsigned delta, int width = 32, V4EmuSite where = V4EmuSite::current()) {
  const unsigned lane = v4emu::linearThread() % 32;
  const unsigned inSegment = lane & (width - 1);
  return v4emu::warpExchange(value, inSegment >= delta ? lane - delta : lane, "__shfl_up_sync", where);
}
inline unsigned __ballot_sync(unsigned mask, int predicate, V4EmuSite where = V4EmuSite::current()) {
  return v4emu::detail::ballotWarp(mask, predicate != 0, "__ballot_sync", where);
}
inline int __any_sync(unsigned mask, int predicate, V4EmuSite where = V4EmuSite::current()) {
  return v4emu::detail::ballotWarp(mask, predicate != 0, "__any_sync", where) != 0;
}
// True when no live lane of `mask` has a zero predicate.
inline int __all_sync(unsigned mask, int predicate, V4EmuSite where = V4EmuSite::current()) {
  return v4emu::detail::ballotWarp(mask, predicate == 0, "__all_sync", where) == 0;
}

// ---- atomics ---------------------------------------------------------------------------
// Plain read-modify-writes: every fiber of a launch runs on one OS thread and
// none is switched out inside an atomic.

#define V4EMU_ATOMIC(NAME, UPDATE)                                                                         \
  template <typename T> T NAME(T *address, std::type_identity_t<T> value) {                                \
    const T old = *address;                                                                                \
    *address = (UPDATE);                                                                                   \
    return old;                                                                                            \
  }
V4EMU_ATOMIC(atomicAdd, old + value)
V4EMU_ATOMIC(atomicSub, old - value)
V4EMU_ATOMIC(atomicMax, old < value ? value : old)
V4EMU_ATOMIC(atomicMin, value < old ? value : old)
V4EMU_ATOMIC(atomicExch, value)
V4EMU_ATOMIC(atomicOr, old | value)
V4EMU_ATOMIC(atomicAnd, old & value)
#undef V4EMU_ATOMIC
template <typename T> T atomicCAS(T *address, std::type_identity_t<T> compare, std::type_identity_t<T> value) {
  const T old = *address;
  if (old == compare)
    *address = value;
  return old;
}

// ---- loads, stores, arithmetic intrinsics ------------------------------------------------

namespace v4emu {
// The GPU faults on a misaligned vector access: so does the emulation.
void misaligned(const void *address, size_t alignment, const char *what);
template <typename T> const T *aligned(const T *p, const char *what) {
  if (reinterpret_cast<uintptr_t>(p) % alignof(T) != 0)
    misaligned(p, alignof(T), what);
  return p;
}
} // namespace v4emu

template <typename T> T __ldg(const T *p) { return *v4emu::aligned(p, "__ldg"); }
template <typename T> T __ldcg(const T *p) { return *v4emu::aligned(p, "__ldcg"); }
template <typename T> T __ldcs(const T *p) { return *v4emu::aligned(p, "__ldcs"); }
template <typename T> T __ldca(const T *p) { return *v4emu::aligned(p, "__ldca"); }
template <typename T> void __stcg(T *p, T v) { *const_cast<T *>(v4emu::aligned(p, "__stcg")) = v; }
template <typename T> void __stcs(T *p, T v) { *const_cast<T *>(v4emu::aligned(p, "__stcs")) = v; }

inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline long long max(long long a, long long b) { return a > b ? a : b; }
inline unsigned long long min(unsigned long long a, unsigned long long b) { return a < b ? a : b; }
inline unsigned long long max(unsigned long long a, unsigned long long b) { return a > b ? a : b; }
inline long min(long a, long b) { return a < b ? a : b; }
inline long max(long a, long b) { return a > b ? a : b; }
inline unsigned long min(unsigned long a, unsigned long b) { return a < b ? a : b; }
inline unsigned long max(unsigned long a, unsigned long b) { return a > b ? a : b; }
inline float min(float a, float b) { return fminf(a, b); }
inline float max(float a, float b) { return fmaxf(a, b); }
inline double min(double a, double b) { return fmin(a, b); }
inline double max(double a, double b) { return fmax(a, b); }

inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __fmaf_rn(float a, float b, float c) { return std::fma(a, b, c); }
inline float __frcp_rn(float a) { return 1.0f / a; }
inline float __fsqrt_rn(float a) { return std::sqrt(a); }
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dmul_rn(double a, double b) { return a * b; }
inline double __fma_rn(double a, double b, double c) { return std::fma(a, b, c); }

template <typename To, typename From> To v4emuBitCast(From from) {
  static_assert(sizeof(To) == sizeof(From));
  To to;
  std::memcpy(&to, &from, sizeof to);
  return to;
}
inline float __int_as_float(int bits) { return v4emuBitCast<float>(bits); }
inline float __uint_as_float(unsigned bits) { return v4emuBitCast<float>(bits); }
inline int __float_as_int(float value) { return v4emuBitCast<int>(value); }
inline unsigned __float_as_uint(float value) { return v4emuBitCast<unsigned>(value); }
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz(static_cast<unsigned>(x)); }
inline int __ffs(int x) { return __builtin_ffs(x); }

// ---- nvcuda::wmma on whole tiles -----------------------------------------------------------

namespace nvcuda::wmma {

struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };

namespace detail {
template <typename Use, int M, int N, int K> struct Shape;
template <int M, int N, int K> struct Shape<matrix_a, M, N, K> { static constexpr int rows = M, cols = K; };
template <int M, int N, int K> struct Shape<matrix_b, M, N, K> { static constexpr int rows = K, cols = N; };
template <int M, int N, int K> struct Shape<accumulator, M, N, K> { static constexpr int rows = M, cols = N; };

inline float asFloat(float v) { return v; }
inline float asFloat(__nv_bfloat16 v) { return __bfloat162float(v); }
inline float asFloat(half v) { return __half2float(v); }
// load/store_matrix_sync need a 256-bit aligned pointer and a stride of a
// multiple of 16 bytes (CUDA Programming Guide, "Warp Matrix Functions").
template <typename P> void checkTile(const P *p, unsigned ldm, const char *what) {
  if (reinterpret_cast<uintptr_t>(p) % 32 != 0)
    v4emu::misaligned(p, 32, what);
  if ((ldm * sizeof(P)) % 16 != 0)
    v4emu::misaligned(reinterpret_cast<const void *>(uintptr_t(ldm * sizeof(P))), 16, "a wmma stride (bytes)");
}
template <typename T> T fromFloatRn(float v) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>)
    return __float2bfloat16_rn(v);
  else if constexpr (std::is_same_v<T, half>)
    return __float2half_rn(v);
  else
    return static_cast<T>(v);
}
} // namespace detail

// The whole tile, row-major, in every thread.
template <typename Use, int M, int N, int K, typename T, typename Layout = void> struct fragment {
  static constexpr int rows = detail::Shape<Use, M, N, K>::rows, cols = detail::Shape<Use, M, N, K>::cols;
  static constexpr int num_elements = rows * cols;
  float x[num_elements];
};

template <typename Use, int M, int N, int K, typename T, typename L>
void fill_fragment(fragment<Use, M, N, K, T, L> &f, float value) {
  for (float &v : f.x)
    v = value;
}

// matrix_a / matrix_b: the layout is the fragment's.
template <typename Use, int M, int N, int K, typename T, typename L, typename P>
void load_matrix_sync(fragment<Use, M, N, K, T, L> &f, const P *p, unsigned ldm) {
  static_assert(std::is_same_v<L, row_major> || std::is_same_v<L, col_major>, "operand fragments need a layout");
  using F = fragment<Use, M, N, K, T, L>;
  detail::checkTile(p, ldm, "wmma::load_matrix_sync");
  for (int r = 0; r < F::rows; ++r)
    for (int c = 0; c < F::cols; ++c)
      f.x[r * F::cols + c] = detail::asFloat(std::is_same_v<L, row_major> ? p[r * ldm + c] : p[c * ldm + r]);
}

// accumulator: the layout is the call's.
template <int M, int N, int K, typename T, typename P>
void load_matrix_sync(fragment<accumulator, M, N, K, T> &f, const P *p, unsigned ldm, layout_t layout) {
  detail::checkTile(p, ldm, "wmma::load_matrix_sync");
  for (int r = 0; r < M; ++r)
    for (int c = 0; c < N; ++c)
      f.x[r * N + c] = detail::asFloat(layout == mem_row_major ? p[r * ldm + c] : p[c * ldm + r]);
}

// Every lane stores its share of the tile (element e by lane e % 32), as the
// lanes of a real warp store their fragment elements.
template <int M, int N, int K, typename T, typename P>
void store_matrix_sync(P *p, const fragment<accumulator, M, N, K, T> &f, unsigned ldm, layout_t layout) {
  detail::checkTile(p, ldm, "wmma::store_matrix_sync");
  const unsigned lane = v4emu::linearThread() % 32;
  for (int e = static_cast<int>(lane); e < M * N; e += 32) {
    const int r = e / N, c = e % N;
    p[layout == mem_row_major ? r * ldm + c : c * ldm + r] = detail::fromFloatRn<P>(f.x[e]);
  }
}

// d = a * b + c, summed in fp32 (k ascending).
template <int M, int N, int K, typename TA, typename LA, typename TB, typename LB, typename TC, typename TD>
void mma_sync(fragment<accumulator, M, N, K, TD> &d, const fragment<matrix_a, M, N, K, TA, LA> &a,
              const fragment<matrix_b, M, N, K, TB, LB> &b, const fragment<accumulator, M, N, K, TC> &c) {
  float result[M * N];
  for (int i = 0; i < M; ++i)
    for (int j = 0; j < N; ++j) {
      float sum = c.x[i * N + j];
      for (int k = 0; k < K; ++k)
        sum += a.x[i * K + k] * b.x[k * N + j];
      result[i * N + j] = sum;
    }
  std::memcpy(d.x, result, sizeof result);
}

} // namespace nvcuda::wmma
