// Capturing a CUDA graph of what a function enqueues on a stream: decode
// buckets (CudaSession, CudaDecodeBatch) and v4run profile replay the
// captured launches instead of launching kernel by kernel.
#pragma once

#include <string>

#include "runtime/cuda/CudaDriver.h"

namespace v4rt::cuda {

// Records what `enqueue` puts on `stream` into `graph` and instantiates it
// into `exec`. A throwing enqueue ends the capture (its partial graph is
// destroyed, the stream is usable again) and the exception goes on; `what`
// names the graph in errors.
template <typename Enqueue>
void captureGraph(const DriverApi &api, CUstream stream, const std::string &what, Enqueue &&enqueue, CUgraph &graph,
                  CUgraphExec &exec) {
  checkCuda(api, api.cuStreamBeginCapture(stream, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL), "cuStreamBeginCapture", what);
  try {
    enqueue();
  } catch (...) {
    CUgraph partial = nullptr;
    api.cuStreamEndCapture(stream, &partial);
    if (partial)
      api.cuGraphDestroy(partial);
    throw;
  }
  checkCuda(api, api.cuStreamEndCapture(stream, &graph), "cuStreamEndCapture", what);
  checkCuda(api, api.cuGraphInstantiateWithFlags(&exec, graph, 0), "cuGraphInstantiateWithFlags", what);
}

} // namespace v4rt::cuda
