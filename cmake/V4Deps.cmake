# Third-party dependencies, all from Debian 12 packages (see README).
find_package(Threads REQUIRED)
find_package(nlohmann_json 3 REQUIRED)
find_package(GTest REQUIRED)
include(GoogleTest)
set(OPENSSL_USE_STATIC_LIBS TRUE) # v4run must run where only libc and the CUDA driver exist
find_package(OpenSSL REQUIRED)   # sha256 for artifact identity and cache keys
find_path(FLATBUFFERS_INCLUDE_DIR flatbuffers/flatbuffers.h REQUIRED)
find_library(FLATBUFFERS_LIBRARY NAMES libflatbuffers.a flatbuffers REQUIRED)
find_program(FLATC flatc REQUIRED)
find_path(XXHASH_INCLUDE_DIR xxhash.h REQUIRED)
find_library(XXHASH_LIBRARY NAMES libxxhash.a xxhash REQUIRED)

# LLVM/MLIR 19 (compiler side only; the runtime must not link them).
set(LLVM_DIR /usr/lib/llvm-19/lib/cmake/llvm CACHE PATH "")
set(MLIR_DIR /usr/lib/llvm-19/lib/cmake/mlir CACHE PATH "")
find_package(MLIR REQUIRED CONFIG)
list(APPEND CMAKE_MODULE_PATH "${MLIR_CMAKE_DIR}" "${LLVM_CMAKE_DIR}")
include(TableGen)
include(AddLLVM)
include(AddMLIR)
set(LLVM_LIT /usr/lib/llvm-19/build/utils/lit/lit.py)
set(FILECHECK /usr/lib/llvm-19/bin/FileCheck)

# MLIR targets carry their include dirs only through these variables.
set(V4_MLIR_INCLUDES ${LLVM_INCLUDE_DIRS} ${MLIR_INCLUDE_DIRS})
