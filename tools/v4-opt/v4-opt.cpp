// v4-opt: parses, verifies, transforms and prints v4 IR, like mlir-opt.
// Unlike mlir-opt's own driver: every failure ends with one line
// "v4-opt: error: ..." (MLIR diagnostics, with their source lines, come
// above it), and -o FILE is written to a temporary renamed over FILE only on
// success, so a failed run leaves a file the user already had untouched
// (mlir-opt truncates it, then deletes it).
#include <string>

#include "dialects/v4/V4Dialect.h"

#include "mlir/Debug/Counter.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/AsmState.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/FileUtilities.h"
#include "mlir/Support/Timing.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"
#include "mlir/Transforms/Passes.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/raw_ostream.h"

#ifdef V4_HAVE_PLAN
#include "dialects/plan/PlanDialect.h"
#endif
#ifdef V4_HAVE_PASSES
#include "passes/Passes.h"
#endif

namespace {

namespace cl = llvm::cl;

int fail(const std::string &message) {
  llvm::errs() << "v4-opt: error: " << message << "\n";
  return 1;
}

// cl's error text ("v4-opt: Unknown command line argument '--x'.  Try: ...\n
// v4-opt: Did you mean '--y'?\n") as one line without the repeated tool name.
std::string oneLine(const std::string &text) {
  std::string line;
  size_t begin = 0;
  while (begin < text.size()) {
    size_t end = text.find('\n', begin);
    if (end == std::string::npos)
      end = text.size();
    std::string part = text.substr(begin, end - begin);
    if (part.rfind("v4-opt: ", 0) == 0)
      part = part.substr(8);
    if (!part.empty())
      line += (line.empty() ? "" : " ") + part;
    begin = end + 1;
  }
  return line;
}

} // namespace

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  // Generic MLIR passes (canonicalize, cse, ...) that v4 pipelines build on.
  mlir::registerTransformsPasses();
#ifdef V4_HAVE_PASSES
  v4c::registerV4Passes();
#endif

  mlir::DialectRegistry registry;
  registry.insert<v4c::v4::V4Dialect, mlir::func::FuncDialect, mlir::arith::ArithDialect>();
#ifdef V4_HAVE_PLAN
  registry.insert<v4c::plan::PlanDialect>();
#endif

  // The options mlir::registerAndParseCLIOptions registers, parsed with an
  // error stream so a bad flag is reported here rather than by exit(1).
  static cl::opt<std::string> inputFilename(cl::Positional, cl::desc("<input file>"), cl::init("-"));
  static cl::opt<std::string> outputFilename("o", cl::desc("Output filename"), cl::value_desc("filename"),
                                             cl::init("-"));
  mlir::MlirOptMainConfig::registerCLOptions(registry);
  mlir::registerAsmPrinterCLOptions();
  mlir::registerMLIRContextCLOptions();
  mlir::registerPassManagerCLOptions();
  mlir::registerDefaultTimingManagerCLOptions();
  mlir::tracing::DebugCounter::registerCLOptions();
  std::string help = "v4c optimizer driver\nAvailable Dialects: ";
  {
    llvm::raw_string_ostream os(help);
    llvm::interleaveComma(registry.getDialectNames(), os, [&](auto name) { os << name; });
  }
  std::string parseErrors;
  llvm::raw_string_ostream parseErrorStream(parseErrors);
  if (!cl::ParseCommandLineOptions(argc, argv, help, &parseErrorStream)) {
    parseErrorStream.flush();
    return fail(oneLine(parseErrors));
  }

  mlir::MlirOptMainConfig config = mlir::MlirOptMainConfig::createFromCLOptions();
  if (config.shouldShowDialects()) // a listing only: no files
    return mlir::asMainReturnCode(mlir::MlirOptMain(argc, argv, inputFilename, outputFilename, registry));

  std::string error;
  std::unique_ptr<llvm::MemoryBuffer> input = mlir::openInputFile(inputFilename, &error);
  if (!input)
    return fail(error);
  bool ran = false, processed = false;
  llvm::Error written = llvm::writeToOutput(outputFilename, [&](llvm::raw_ostream &os) -> llvm::Error {
    ran = true;
    processed = mlir::succeeded(mlir::MlirOptMain(os, std::move(input), registry, config));
    if (!processed) // discards the temporary; -o FILE keeps its old contents
      return llvm::createStringError(llvm::inconvertibleErrorCode(), "failed");
    return llvm::Error::success();
  });
  if (!written)
    return 0;
  const std::string why = llvm::toString(std::move(written));
  if (ran && !processed)
    return fail(inputFilename + ": failed (see the diagnostics above)" +
                (outputFilename == "-" ? std::string() : "; " + outputFilename + " left as it was"));
  return fail("cannot write " + outputFilename + ": " + why);
}
