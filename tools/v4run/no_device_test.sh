#!/bin/sh
# usage: no_device_test.sh V4C V4RUN CASE_DIR WORK_DIR
# v4run loads only libc/libm/libdl/libpthread (the CUDA driver is dlopen'ed),
# and where no CUDA device exists, running a GPU artifact ends with one line
# saying so and a non-zero exit. Skipped (77) on machines with a device.
set -eu
v4c=$1 v4run=$2 case_dir=$3 work=$4
rm -rf "$work" && mkdir -p "$work"
extra=$(ldd "$v4run" | grep -Ev 'linux-vdso|libc\.so|libm\.so|libdl\.so|libpthread\.so|ld-linux' || true)
[ -z "$extra" ] || { echo "v4run links more than libc/libm/libdl/libpthread: $extra"; exit 1; }
if "$v4run" device --target sm_90a > "$work/device.txt" 2>&1; then
  echo "SKIPPED: a CUDA device is present: $(cat "$work/device.txt")"
  exit 77
fi
grep -q '^no CUDA device: .*; this artifact targets sm_90a$' "$work/device.txt" || { cat "$work/device.txt"; exit 1; }
"$v4c" compile "$case_dir" --target sm_90a --decode-batch 1 -o "$work/gpu.v4a" > /dev/null
for command in "generate $work/gpu.v4a --prompt-ids 1,2,3 -n 2" "bench $work/gpu.v4a --prompt-len 8 --decode 2" \
               "verify $work/gpu.v4a --golden $case_dir/golden.safetensors"; do
  # shellcheck disable=SC2086 # the command's words
  if "$v4run" $command > "$work/out.txt" 2> "$work/err.txt"; then
    echo "v4run $command succeeded without a CUDA device"; exit 1
  fi
  [ "$(wc -l < "$work/err.txt")" -eq 1 ] || { echo "v4run $command: want one line on stderr:"; cat "$work/err.txt"; exit 1; }
  grep -q '^v4run: error: no CUDA device: .*; this artifact targets sm_90a$' "$work/err.txt" ||
    { echo "v4run $command:"; cat "$work/err.txt"; exit 1; }
done
cat "$work/err.txt"
