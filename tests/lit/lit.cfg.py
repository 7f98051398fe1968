# lit configuration of the v4c FileCheck tests. Every .mlir file below this
# folder is a test; RUN lines use `v4-opt`, `FileCheck` and `not`.
import os

import lit.formats
from lit.llvm import llvm_config
from lit.llvm.subst import ToolSubst

config.name = "v4c"
config.test_format = lit.formats.ShTest(not llvm_config.use_lit_shell)
config.suffixes = [".mlir", ".test"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.v4c_obj_root, "tests", "lit")
config.excludes = ["CMakeLists.txt", "lit.cfg.py", "lit.site.cfg.py", "Inputs"]

# Folders whose dialect or passes are not built yet are skipped, visibly.
for folder, built in (("plan", config.v4c_have_plan), ("passes", config.v4c_have_passes)):
    if not built:
        config.excludes.append(folder)
        lit_config.note("tests/lit/%s skipped: its library is not part of this build" % folder)

# Our tools first, then the ones from LLVM (FileCheck, not).
for directory in (os.path.dirname(config.not_path), os.path.dirname(config.filecheck_path),
                  config.llvm_tools_dir, config.v4c_tools_dir):
    llvm_config.with_environment("PATH", directory, append_path=True)

# FileCheck, `| not`, `| count` from LLVM's tools.
llvm_config.use_default_substitutions()
llvm_config.add_tool_substitutions(
    [
        ToolSubst("v4-opt", command=os.path.join(config.v4c_tools_dir, "v4-opt"),
                  unresolved="fatal"),
        ToolSubst("v4c", command=os.path.join(config.v4c_tools_dir, "v4c"), unresolved="fatal"),
        ToolSubst("v4run", command=os.path.join(config.v4c_tools_dir, "v4run"), unresolved="fatal"),
    ],
    [config.v4c_tools_dir, config.llvm_tools_dir],
)

# `REQUIRES: nvcc`: CUDA compile tests (v4c --target sm_*) need the CUDA
# toolkit (no GPU); without it they report UNSUPPORTED.
import shutil
_nvcc = os.environ.get("V4C_NVCC") or os.path.join(os.environ.get("CUDA_HOME", "/nonexistent"), "bin", "nvcc")
if any(os.access(p, os.X_OK) for p in (_nvcc, "/usr/local/cuda/bin/nvcc")) or shutil.which("nvcc"):
    config.available_features.add("nvcc")
else:
    lit_config.note("nvcc not found: CUDA compile tests (REQUIRES: nvcc) are unsupported")

# The HF conformance checkpoints, for tests that import a real model.
config.substitutions.append(("%conformance", os.path.join(config.v4c_src_root, "tests", "conformance")))
