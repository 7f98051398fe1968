// Registration of every v4c pass and pipeline with the global registry.
#include "passes/Passes.h"
#include "passes/Pipeline.h"

namespace v4c {
namespace {
#define GEN_PASS_REGISTRATION
#include "passes/Passes.h.inc"
} // namespace

void registerV4Passes() {
  registerV4GeneratedPasses();
  registerDefaultPipeline();
}

} // namespace v4c
