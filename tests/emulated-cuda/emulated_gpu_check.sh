#!/bin/sh
# One check of a GPU artifact on the emulated CUDA driver (CPU only).
# usage: emulated_gpu_check.sh V4C V4RUN DRIVER_DIR WORK_DIR fast|slow CHECK ARGUMENT...
#   DRIVER_DIR: the folder holding the emulated libcuda.so.1
#   verify CASE PRECISION TOLERANCE: v4run verify vs the case's golden logits
#   compare CASE PROMPT_IDS DECODE: every launch vs the CPU artifact (fp32, 1e-4)
#   consistency CASE PRECISION PROMPT_LEN: prefill vs chunked vs decode, graph vs launches
# V4_EMULATED_GPU_SLOW=1 runs the checks marked slow (a full golden verify takes
# many minutes on two cores: one host thread per CUDA thread); without it they
# exit 77 (ctest: skipped) saying so.
set -eu
v4c=$1 v4run=$2 driver=$3 work=$4 speed=$5 check=$6
shift 6
if [ "$speed" = slow ] && [ "${V4_EMULATED_GPU_SLOW:-0}" != 1 ]; then
  echo "SKIPPED: slow emulated-GPU check (many minutes on the CPU); run with V4_EMULATED_GPU_SLOW=1"
  exit 77
fi
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
conformance=$root/tests/conformance
target=sm_90a
mkdir -p "$work"

# gpu_artifact CASE PRECISION: compiles the case for $target keeping the
# CUDA source, builds its host module; prints the artifact's path.
gpu_artifact() {
  out=$work/$1-$target-$2.v4a
  "$v4c" compile "$conformance/$1" --target $target --precision "$2" --decode-batch 1 \
    --keep-cuda-source "$out.src" -o "$out" > "$out.log" 2>&1 ||
    { cat "$out.log" >&2; echo "emulated_gpu_check: compiling $1 for $target ($2) failed" >&2; exit 1; }
  sh "$here/build_host_module.sh" "$out.src" "$work/modules" > /dev/null
  echo "$out"
}

export LD_LIBRARY_PATH="$driver${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export V4_EMU_MODULE_DIR="$work/modules"

# The device v4run sees must be the emulated one, not a real GPU.
probe=$("$v4run" device --target $target 2>&1) || { echo "$probe" >&2; exit 1; }
echo "$probe"
case $probe in
*Emulated*) ;;
*) echo "emulated_gpu_check: v4run did not load the emulated driver from $driver" >&2; exit 1 ;;
esac

case $check in
verify)
  gpu=$(gpu_artifact "$1" "$2")
  "$v4run" verify "$gpu" --golden "$conformance/$1/golden.safetensors" --tolerance "$3"
  ;;
compare)
  gpu=$(gpu_artifact "$1" fp32)
  cpu=$work/$1-cpu-fp32.v4a
  "$v4c" compile "$conformance/$1" --target cpu --decode-batch 1 -o "$cpu" > "$cpu.log" 2>&1 ||
    { cat "$cpu.log" >&2; exit 1; }
  "$v4run" compare "$gpu" "$cpu" --prompt-ids "$2" --decode "$3" --tolerance 1e-4
  ;;
consistency)
  gpu=$(gpu_artifact "$1" "$2")
  "$v4run" consistency "$gpu" --prompt-len "$3" --max-context 256
  ;;
*)
  echo "emulated_gpu_check: unknown check '$check'" >&2
  exit 2
  ;;
esac
