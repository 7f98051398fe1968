// Streams, events and graphs of the emulated driver, and WHEN queued work runs.
//
// A real GPU runs async work later than the call that submitted it, so host
// code that reads a copy's destination, rewrites its source or frees its
// buffer before the copy completed is a bug that shows only sometimes. Here
// every stream keeps a FIFO of what was submitted to it, and the work runs
// only where the driver guarantees completion (README.md, "Deferred
// execution"):
// - cuStreamSynchronize(s): s's queue; cuEventSynchronize(e): e's stream up
//   to e's latest record; cuCtxSynchronize and cuMemFree: every queue;
// - copies of pageable host memory (the driver stages them) and the
//   synchronous cuMemcpyHtoD/DtoH: up to and including the copy;
// - cuStreamQuery / cuEventQuery: the first query of pending work answers
//   CUDA_ERROR_NOT_READY, a later one runs it (a GPU finishes some time);
// - the legacy NULL stream waits for the blocking streams' earlier work and
//   they wait for its; CU_STREAM_NON_BLOCKING streams do neither;
//   cuStreamWaitEvent makes a stream's later work wait for the event's.
// An operation's prerequisites on other streams run before it, so the order
// is always one a GPU could have produced. V4_EMU_EAGER=1 runs everything at
// submission instead (the old behaviour, for debugging).
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <limits>
#include <set>
#include <utility>

#include "Operation.h"

namespace v4emu::driver {

struct Event {
  bool recorded = false; // a cuEventRecord was queued (ever)
  bool complete = false; // its latest record ran
  Stream *stream = nullptr; // where the latest record waits
  uint64_t sequence = 0;    // the latest record's
  uint64_t answeredNotReady = 0; // cuEventQuery: the record already answered "not ready" once
  std::chrono::steady_clock::time_point at;
};

struct Graph {
  std::vector<Operation> operations;
};

struct Stream {
  bool blocking = true; // not CU_STREAM_NON_BLOCKING: ordered with the legacy stream
  bool capturing = false;
  bool invalidated = false;
  Graph *capture = nullptr;
  std::deque<Operation> queue;   // submitted, not yet run, in order
  uint64_t answeredNotReady = 0; // cuStreamQuery: the last operation already answered "not ready" once
};

namespace {

constexpr uint64_t kEverything = std::numeric_limits<uint64_t>::max();

std::set<Event *> gEvents;
std::set<Graph *> gGraphs;
std::set<Graph *> gExecs;
std::set<Stream *> gStreams;
Stream gLegacyStream; // the NULL stream
uint64_t gSequence = 0;
uint64_t gExecuted = 0; // operations run so far, for the trace
// A failed kernel poisons the context, as on a GPU: every later
// synchronizing or submitting call returns the error.
CUresult gSticky = CUDA_SUCCESS;
// Injected faults (test queries below): the Nth later submission of one call
// is refused (the context stays usable), the Nth later kernel fails when it
// runs (sticky). 0: none pending.
std::string gRefusedCall;
uint64_t gRefuseCountdown = 0;
uint64_t gKernelFailCountdown = 0;

Stream *streamOf(CUstream handle) {
  if (!handle || handle == CU_STREAM_LEGACY || handle == CU_STREAM_PER_THREAD)
    return &gLegacyStream;
  auto *stream = reinterpret_cast<Stream *>(handle);
  return gStreams.count(stream) ? stream : nullptr;
}

bool alive(const Stream *stream) {
  return stream == &gLegacyStream || gStreams.count(const_cast<Stream *>(stream)) != 0;
}

template <typename Fn> void forEachStream(Fn &&fn) {
  fn(gLegacyStream);
  for (Stream *stream : gStreams)
    fn(*stream);
}

// Cheap content hash of a host range (not cryptographic: it notices writes).
uint64_t hashOf(uintptr_t address, size_t bytes) {
  const auto *p = reinterpret_cast<const unsigned char *>(address);
  uint64_t h = 0xcbf29ce484222325ull ^ bytes;
  size_t i = 0;
  for (; i + 8 <= bytes; i += 8) {
    uint64_t word;
    std::memcpy(&word, p + i, 8);
    h = (h ^ word) * 0x9E3779B97F4A7C15ull;
    h ^= h >> 29;
  }
  for (; i < bytes; ++i)
    h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

bool overlaps(uintptr_t a, size_t aBytes, uintptr_t b, size_t bBytes) { return a < b + bBytes && b < a + aBytes; }

const char *hostRole(const Operation &op) { return op.writesHost ? "destination" : "source"; }

CUresult execute(Operation &op, const Stream &stream) {
  DeviceAccess access;
  switch (op.kind) {
  case Operation::Launch: {
    std::vector<void *> params;
    for (auto &bytes : op.params)
      params.push_back(bytes.data());
    setRunning(op.function->name.c_str());
    const auto start = std::chrono::steady_clock::now();
    const bool injected = gKernelFailCountdown > 0 && --gKernelFailCountdown == 0;
    const char *error = injected ? "injected failure (v4emuFailKernel)"
                                 : op.function->module->launch(op.function->body, params.data(), op.grid, op.block,
                                                               op.shared);
    setRunning(nullptr);
    static const bool trace = std::getenv("V4_EMU_TRACE") != nullptr; // one line per launch, for localizing
    if (trace)
      note("launch %s grid (%u,%u,%u) block (%u,%u,%u) shared %u: %.1f ms", op.function->name.c_str(), op.grid[0],
           op.grid[1], op.grid[2], op.block[0], op.block[1], op.block[2], op.shared,
           std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
    if (error)
      return fail(CUDA_ERROR_LAUNCH_FAILED, "kernel %s failed: %s", op.function->name.c_str(), error);
    return CUDA_SUCCESS;
  }
  case Operation::Memset:
    std::memset(reinterpret_cast<void *>(op.dst), op.value, op.bytes);
    return CUDA_SUCCESS;
  case Operation::Memcpy:
    if (op.watchesHost && hashOf(op.host, op.bytes) != op.hostHash)
      fatal("the host changed the pinned %s of a queued %s (stream %p, %zu bytes at %p) before the copy ran: on a "
            "GPU that write races with the DMA; wait for the copy (cuStreamSynchronize, or an event recorded after "
            "it) before touching the buffer",
            hostRole(op), op.call, static_cast<const void *>(&stream), op.bytes, reinterpret_cast<void *>(op.host));
    std::memmove(reinterpret_cast<void *>(op.dst), reinterpret_cast<const void *>(op.src), op.bytes);
    if (op.writesHost) // the DMA's bytes are what later queued copies of that range must see
      forEachStream([&](Stream &other) {
        for (Operation &queued : other.queue)
          if (queued.watchesHost && overlaps(queued.host, queued.bytes, op.host, op.bytes))
            queued.hostHash = hashOf(queued.host, queued.bytes);
      });
    return CUDA_SUCCESS;
  case Operation::Record:
    if (op.event && op.event->sequence == op.sequence) { // a later record supersedes this one
      op.event->complete = true;
      op.event->at = std::chrono::steady_clock::now();
    }
    return CUDA_SUCCESS;
  case Operation::Wait:
    return CUDA_SUCCESS; // its prerequisites ran before it
  }
  return CUDA_ERROR_INVALID_VALUE;
}

// Runs `stream`'s queued operations up to sequence number `last`, each after
// its prerequisites on other streams (always submitted earlier, so this ends).
CUresult runUntil(Stream &stream, uint64_t last) {
  if (gSticky != CUDA_SUCCESS)
    return gSticky;
  DeviceAccess access; // once for the whole run, not per operation
  while (!stream.queue.empty() && stream.queue.front().sequence <= last) {
    for (const auto &[other, upTo] : stream.queue.front().after)
      if (other != &stream && alive(other))
        if (CUresult r = runUntil(*other, upTo); r != CUDA_SUCCESS)
          return r;
    Operation op = std::move(stream.queue.front());
    stream.queue.pop_front();
    ++gExecuted;
    if (CUresult r = execute(op, stream); r != CUDA_SUCCESS) {
      gSticky = r; // the context is lost: nothing queued runs any more
      forEachStream([](Stream &s) { s.queue.clear(); });
      return r;
    }
  }
  return CUDA_SUCCESS;
}

// Appends `op` to `stream`'s queue with its ordering; returns its sequence number.
uint64_t enqueue(Stream &stream, Operation op, bool watchHost) {
  op.sequence = ++gSequence;
  if (&stream == &gLegacyStream) {
    for (Stream *other : gStreams)
      if (other->blocking && !other->queue.empty())
        op.after.emplace_back(other, other->queue.back().sequence);
  } else if (stream.blocking && !gLegacyStream.queue.empty()) {
    op.after.emplace_back(&gLegacyStream, gLegacyStream.queue.back().sequence);
  }
  if (op.kind == Operation::Record && op.event) {
    op.event->recorded = true;
    op.event->complete = false;
    op.event->stream = &stream;
    op.event->sequence = op.sequence;
  }
  if (watchHost && op.host) {
    op.watchesHost = true;
    op.hostHash = hashOf(op.host, op.bytes);
  }
  stream.queue.push_back(std::move(op));
  return gSequence;
}

// runUntil for an entry point: with V4_EMU_TRACE=1, one line saying how much
// queued work `call` ran (where the deferral ends).
CUresult drain(Stream &stream, uint64_t last, const char *call) {
  static const bool trace = std::getenv("V4_EMU_TRACE") != nullptr;
  const uint64_t before = gExecuted;
  const CUresult result = runUntil(stream, last);
  if (trace && gExecuted > before)
    note("%s ran %llu queued operations", call, static_cast<unsigned long long>(gExecuted - before));
  return result;
}

// Answers CUDA_ERROR_NOT_READY the first time pending work `last` is asked
// about, and runs it the next time (a real GPU finishes at some point).
CUresult queryPending(Stream &stream, uint64_t last, uint64_t &answeredNotReady, const char *call) {
  if (answeredNotReady != last) {
    answeredNotReady = last;
    return CUDA_ERROR_NOT_READY;
  }
  return drain(stream, last, call);
}

} // namespace

// ---- capture ---------------------------------------------------------------------------

bool anyCapturing() {
  if (gLegacyStream.capturing)
    return true;
  for (Stream *stream : gStreams)
    if (stream->capturing)
      return true;
  return false;
}

bool invalidateCapture(CUstream handle) {
  Stream *stream = streamOf(handle);
  if (!stream || !stream->capturing)
    return false;
  stream->invalidated = true;
  return true;
}

CUresult forbiddenWhileCapturing(const char *call) {
  bool capturing = false;
  for (Stream *stream : gStreams)
    if (stream->capturing) {
      stream->invalidated = true;
      capturing = true;
    }
  if (!capturing)
    return CUDA_SUCCESS;
  return fail(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, "%s called while a stream is capturing a graph", call);
}

// ---- queueing --------------------------------------------------------------------------

CUresult submit(CUstream handle, Operation op, bool complete) {
  Stream *stream = streamOf(handle);
  if (!stream)
    return fail(CUDA_ERROR_INVALID_HANDLE, "%s: unknown stream %p", op.call, static_cast<void *>(handle));
  if (stream->capturing) {
    if (stream->invalidated)
      return CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
    stream->capture->operations.push_back(std::move(op));
    return CUDA_SUCCESS;
  }
  if (stream == &gLegacyStream && anyCapturing())
    return forbiddenWhileCapturing(op.call); // the legacy stream synchronizes with every stream
  if (gSticky != CUDA_SUCCESS)
    return gSticky;
  if (gRefuseCountdown > 0 && gRefusedCall == op.call && --gRefuseCountdown == 0)
    return fail(CUDA_ERROR_INVALID_VALUE, "%s: injected failure (v4emuFailSubmission)", op.call);
  const char *call = op.call;
  const uint64_t sequence = enqueue(*stream, std::move(op), !complete);
  if (complete)
    return drain(*stream, sequence, call);
  if (eager())
    return runUntil(*stream, sequence);
  return CUDA_SUCCESS;
}

CUresult synchronizeAll(const char *call) {
  CUresult result = gSticky;
  forEachStream([&](Stream &stream) {
    if (result == CUDA_SUCCESS)
      result = drain(stream, kEverything, call);
  });
  return result;
}

void checkNoQueuedHostUse(const void *pointer, size_t bytes, const char *call) {
  const auto address = reinterpret_cast<uintptr_t>(pointer);
  forEachStream([&](Stream &stream) {
    for (const Operation &op : stream.queue)
      if (op.host && overlaps(op.host, op.bytes, address, bytes))
        fatal("%s(%p): a %s queued on stream %p still uses this buffer as its %s (%zu bytes at %p): on a GPU the "
              "DMA then touches freed memory; synchronize the stream (or an event recorded after the copy) first",
              call, pointer, op.call, static_cast<void *>(&stream), hostRole(op), op.bytes,
              reinterpret_cast<void *>(op.host));
  });
}

// ---- entry points: context, launches, streams -------------------------------------------

CUresult emuCtxSynchronize() {
  LOCKED;
  REQUIRE_INIT
  if (CUresult r = forbiddenWhileCapturing("cuCtxSynchronize"); r != CUDA_SUCCESS)
    return r;
  return synchronizeAll("cuCtxSynchronize");
}

CUresult emuLaunchKernel(CUfunction handle, unsigned gridX, unsigned gridY, unsigned gridZ, unsigned blockX,
                         unsigned blockY, unsigned blockZ, unsigned sharedBytes, CUstream stream, void **kernelParams,
                         void **extra) {
  LOCKED;
  REQUIRE_INIT
  Function *function = functionOf(handle);
  if (!function)
    return fail(CUDA_ERROR_INVALID_HANDLE, "cuLaunchKernel: unknown function handle");
  const char *name = function->name.c_str();
  if (extra)
    return fail(CUDA_ERROR_NOT_SUPPORTED, "cuLaunchKernel(%s): `extra` parameter packing is not emulated", name);
  if (!kernelParams && !function->paramSizes.empty())
    return fail(CUDA_ERROR_INVALID_VALUE, "cuLaunchKernel(%s): kernelParams is null", name);
  const uint64_t threads = uint64_t{blockX} * blockY * blockZ;
  if (gridX == 0 || gridY == 0 || gridZ == 0 || gridX > 0x7fffffffu || gridY > 65535 || gridZ > 65535)
    return fail(CUDA_ERROR_INVALID_VALUE, "cuLaunchKernel(%s): grid (%u, %u, %u) outside the device's limits", name,
                gridX, gridY, gridZ);
  if (threads == 0 || threads > 1024 || blockX > 1024 || blockY > 1024 || blockZ > 64)
    return fail(CUDA_ERROR_INVALID_VALUE, "cuLaunchKernel(%s): block (%u, %u, %u) outside the device's limits", name,
                blockX, blockY, blockZ);
  if (static_cast<int>(sharedBytes) > function->maxDynamicShared)
    return fail(CUDA_ERROR_INVALID_VALUE,
                "cuLaunchKernel(%s): %u bytes of dynamic shared memory over the function's limit %d (opt in with "
                "cuFuncSetAttribute MAX_DYNAMIC_SHARED_SIZE_BYTES)", name, sharedBytes, function->maxDynamicShared);
  Operation op{Operation::Launch};
  op.call = "cuLaunchKernel";
  op.function = function;
  op.grid[0] = gridX, op.grid[1] = gridY, op.grid[2] = gridZ;
  op.block[0] = blockX, op.block[1] = blockY, op.block[2] = blockZ;
  op.shared = sharedBytes;
  for (size_t i = 0; i < function->paramSizes.size(); ++i) {
    const auto *value = static_cast<const unsigned char *>(kernelParams[i]);
    op.params.emplace_back(value, value + function->paramSizes[i]);
  }
  return submit(stream, std::move(op), false);
}

CUresult emuStreamCreate(CUstream *stream, unsigned flags) {
  LOCKED;
  REQUIRE_INIT
  if (flags & ~static_cast<unsigned>(CU_STREAM_NON_BLOCKING))
    return fail(CUDA_ERROR_INVALID_VALUE, "cuStreamCreate: flags 0x%x are not emulated", flags);
  auto *created = new Stream();
  created->blocking = (flags & CU_STREAM_NON_BLOCKING) == 0;
  gStreams.insert(created);
  *stream = reinterpret_cast<CUstream>(created);
  return CUDA_SUCCESS;
}

CUresult emuStreamDestroy(CUstream handle) {
  LOCKED;
  REQUIRE_INIT
  auto *stream = reinterpret_cast<Stream *>(handle);
  if (!gStreams.count(stream))
    return CUDA_ERROR_INVALID_HANDLE;
  // The driver lets queued work finish and releases the stream afterwards.
  const CUresult result = drain(*stream, kEverything, "cuStreamDestroy");
  gStreams.erase(stream);
  delete stream->capture;
  delete stream;
  return result;
}

CUresult emuStreamSynchronize(CUstream handle) {
  LOCKED;
  REQUIRE_INIT
  Stream *stream = streamOf(handle);
  if (!stream)
    return CUDA_ERROR_INVALID_HANDLE;
  if (stream->capturing || (stream == &gLegacyStream && anyCapturing())) {
    stream->invalidated = true;
    return fail(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, "cuStreamSynchronize on a capturing stream");
  }
  return drain(*stream, kEverything, "cuStreamSynchronize");
}

CUresult emuStreamQuery(CUstream handle) {
  LOCKED;
  REQUIRE_INIT
  Stream *stream = streamOf(handle);
  if (!stream)
    return CUDA_ERROR_INVALID_HANDLE;
  if (stream->capturing) {
    stream->invalidated = true;
    return fail(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, "cuStreamQuery on a capturing stream");
  }
  if (gSticky != CUDA_SUCCESS)
    return gSticky;
  if (stream->queue.empty())
    return CUDA_SUCCESS;
  return queryPending(*stream, stream->queue.back().sequence, stream->answeredNotReady, "cuStreamQuery");
}

CUresult emuStreamWaitEvent(CUstream handle, CUevent eventHandle, unsigned flags) {
  LOCKED;
  REQUIRE_INIT
  Stream *stream = streamOf(handle);
  auto *event = reinterpret_cast<Event *>(eventHandle);
  if (!stream || !gEvents.count(event))
    return CUDA_ERROR_INVALID_HANDLE;
  if (flags != 0)
    return fail(CUDA_ERROR_INVALID_VALUE, "cuStreamWaitEvent: flags 0x%x are not emulated", flags);
  if (stream->capturing || anyCapturing())
    return fail(CUDA_ERROR_NOT_SUPPORTED, "cuStreamWaitEvent while capturing is not emulated");
  if (!event->recorded || event->complete)
    return CUDA_SUCCESS; // nothing to wait for
  Operation op{Operation::Wait};
  op.call = "cuStreamWaitEvent";
  op.after.emplace_back(event->stream, event->sequence);
  return submit(handle, std::move(op), false);
}

CUresult emuStreamBeginCapture(CUstream handle, CUstreamCaptureMode) {
  LOCKED;
  REQUIRE_INIT
  Stream *stream = streamOf(handle);
  if (!stream)
    return CUDA_ERROR_INVALID_HANDLE;
  if (stream == &gLegacyStream)
    return fail(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, "cuStreamBeginCapture on the legacy NULL stream");
  if (stream->capturing)
    return fail(CUDA_ERROR_ILLEGAL_STATE, "cuStreamBeginCapture: the stream is already capturing");
  stream->capturing = true;
  stream->invalidated = false;
  stream->capture = new Graph();
  return CUDA_SUCCESS;
}

CUresult emuStreamEndCapture(CUstream handle, CUgraph *graph) {
  LOCKED;
  REQUIRE_INIT
  Stream *stream = streamOf(handle);
  if (!stream)
    return CUDA_ERROR_INVALID_HANDLE;
  if (!stream->capturing)
    return fail(CUDA_ERROR_ILLEGAL_STATE, "cuStreamEndCapture: the stream is not capturing");
  stream->capturing = false;
  Graph *captured = std::exchange(stream->capture, nullptr);
  if (stream->invalidated) {
    delete captured;
    *graph = nullptr;
    return CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
  }
  gGraphs.insert(captured);
  *graph = reinterpret_cast<CUgraph>(captured);
  return CUDA_SUCCESS;
}

// ---- entry points: graphs ---------------------------------------------------------------

CUresult emuGraphInstantiateWithFlags(CUgraphExec *exec, CUgraph handle, unsigned long long) {
  LOCKED;
  REQUIRE_INIT
  auto *graph = reinterpret_cast<Graph *>(handle);
  if (!gGraphs.count(graph))
    return CUDA_ERROR_INVALID_HANDLE;
  auto *instance = new Graph(*graph);
  gExecs.insert(instance);
  *exec = reinterpret_cast<CUgraphExec>(instance);
  return CUDA_SUCCESS;
}

CUresult emuGraphLaunch(CUgraphExec handle, CUstream stream) {
  LOCKED;
  REQUIRE_INIT
  auto *exec = reinterpret_cast<Graph *>(handle);
  if (!gExecs.count(exec))
    return CUDA_ERROR_INVALID_HANDLE;
  Stream *s = streamOf(stream);
  if (!s)
    return CUDA_ERROR_INVALID_HANDLE;
  if (s->capturing) { // a graph launched into a capture becomes part of it
    for (const Operation &op : exec->operations)
      s->capture->operations.push_back(op);
    return CUDA_SUCCESS;
  }
  if (gSticky != CUDA_SUCCESS)
    return gSticky;
  // The recorded operations join the stream's queue (a copy of each: the
  // exec may be destroyed while they wait, as the driver allows).
  uint64_t last = 0;
  for (const Operation &op : exec->operations)
    last = enqueue(*s, op, true);
  return eager() && last ? runUntil(*s, last) : CUDA_SUCCESS;
}

CUresult emuGraphExecDestroy(CUgraphExec handle) {
  LOCKED;
  auto *exec = reinterpret_cast<Graph *>(handle);
  if (!gExecs.erase(exec))
    return CUDA_ERROR_INVALID_HANDLE;
  delete exec;
  return CUDA_SUCCESS;
}

CUresult emuGraphDestroy(CUgraph handle) {
  LOCKED;
  auto *graph = reinterpret_cast<Graph *>(handle);
  if (!gGraphs.erase(graph))
    return CUDA_ERROR_INVALID_HANDLE;
  delete graph;
  return CUDA_SUCCESS;
}

// ---- entry points: events ---------------------------------------------------------------

CUresult emuEventCreate(CUevent *event, unsigned) {
  LOCKED;
  REQUIRE_INIT
  auto *created = new Event();
  gEvents.insert(created);
  *event = reinterpret_cast<CUevent>(created);
  return CUDA_SUCCESS;
}

CUresult emuEventRecord(CUevent handle, CUstream stream) {
  LOCKED;
  REQUIRE_INIT
  auto *event = reinterpret_cast<Event *>(handle);
  if (!gEvents.count(event))
    return CUDA_ERROR_INVALID_HANDLE;
  Operation op{Operation::Record};
  op.call = "cuEventRecord";
  op.event = event;
  return submit(stream, std::move(op), false);
}

CUresult emuEventQuery(CUevent handle) {
  LOCKED;
  REQUIRE_INIT
  auto *event = reinterpret_cast<Event *>(handle);
  if (!gEvents.count(event))
    return CUDA_ERROR_INVALID_HANDLE;
  if (gSticky != CUDA_SUCCESS)
    return gSticky;
  if (!event->recorded || event->complete)
    return CUDA_SUCCESS;
  return queryPending(*event->stream, event->sequence, event->answeredNotReady, "cuEventQuery");
}

CUresult emuEventSynchronize(CUevent handle) {
  LOCKED;
  REQUIRE_INIT
  auto *event = reinterpret_cast<Event *>(handle);
  if (!gEvents.count(event))
    return CUDA_ERROR_INVALID_HANDLE;
  if (CUresult r = forbiddenWhileCapturing("cuEventSynchronize"); r != CUDA_SUCCESS)
    return r;
  if (!event->recorded || event->complete) // never recorded: nothing to wait for, as on the driver
    return gSticky;
  return drain(*event->stream, event->sequence, "cuEventSynchronize");
}

CUresult emuEventElapsedTime(float *ms, CUevent startHandle, CUevent endHandle) {
  LOCKED;
  REQUIRE_INIT
  auto *start = reinterpret_cast<Event *>(startHandle);
  auto *end = reinterpret_cast<Event *>(endHandle);
  if (!gEvents.count(start) || !gEvents.count(end))
    return CUDA_ERROR_INVALID_HANDLE;
  if (!start->recorded || !end->recorded)
    return fail(CUDA_ERROR_INVALID_HANDLE, "cuEventElapsedTime: an event was never recorded");
  if (!start->complete || !end->complete)
    return CUDA_ERROR_NOT_READY; // the driver's answer before both records ran
  *ms = std::chrono::duration<float, std::milli>(end->at - start->at).count();
  return CUDA_SUCCESS;
}

CUresult emuEventDestroy(CUevent handle) {
  LOCKED;
  auto *event = reinterpret_cast<Event *>(handle);
  if (!gEvents.erase(event))
    return CUDA_ERROR_INVALID_HANDLE;
  // A pending record of it completes without it (the driver frees the event
  // once its work is done); graphs that record it stop doing so.
  auto forget = [&](std::vector<Operation> &operations) {
    for (Operation &op : operations)
      if (op.event == event)
        op.event = nullptr;
  };
  forEachStream([&](Stream &stream) {
    for (Operation &op : stream.queue)
      if (op.event == event)
        op.event = nullptr;
    if (stream.capture)
      forget(stream.capture->operations);
  });
  for (Graph *graph : gGraphs)
    forget(graph->operations);
  for (Graph *exec : gExecs)
    forget(exec->operations);
  delete event;
  return CUDA_SUCCESS;
}

} // namespace v4emu::driver

using namespace v4emu::driver;

// Test queries (not CUDA; found with dlsym), for the runtime's error paths:
// the `nth` later submission of `call` ("cuMemcpyDtoHAsync", "cuLaunchKernel",
// ...; graphs' replays excluded) fails with CUDA_ERROR_INVALID_VALUE and
// queues nothing, as a driver rejecting one call does; the `nth` later kernel
// to run fails with CUDA_ERROR_LAUNCH_FAILED and poisons the context, as a
// faulting kernel does. 0 cancels. V4_EMU_FAIL_KERNEL=N at cuInit does the
// latter for a whole process (v4run).
extern "C" {
__attribute__((visibility("default"))) void v4emuFailSubmission(const char *call, unsigned long long nth) {
  LOCKED;
  gRefusedCall = call ? call : "";
  gRefuseCountdown = nth;
}

__attribute__((visibility("default"))) void v4emuFailKernel(unsigned long long nth) {
  LOCKED;
  gKernelFailCountdown = nth;
}
}
