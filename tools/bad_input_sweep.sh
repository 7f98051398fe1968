#!/usr/bin/env bash
# usage: bad_input_sweep.sh BIN_DIR SCRATCH_DIR CASE_DIR
#
# Runs every command line of v4c, v4run, v4-opt and v4bench-agent with bad
# input (missing / truncated / tampered files, malformed checkpoints, bad
# option values, unknown flags) and checks the project rule for each: exit 1
# or 2 (no signal, no timeout), the last stderr line is the tool's one-line
# error ("v4c: error: ...", "v4run: error: ...", ...), nothing else on stderr
# (v4-opt may print MLIR diagnostics above it), no core file, and a file the
# user already had at an output path is left byte-identical.
# CASE_DIR is a small conformance case (tests/conformance/tiny-mixed).
set -u
rm -rf "$2" && mkdir -p "$2/run" || exit 1
bin=$(cd "$1" && pwd) work=$(cd "$2" && pwd) case_dir=$(cd "$3" && pwd) || exit 1
v4c=$bin/v4c v4run=$bin/v4run v4opt=$bin/v4-opt agent=$bin/v4bench-agent
cd "$work/run" || exit 1 # a core file, if any, would land here

cases=0 failures=0 skipped=0

# check NAME PREFIX [--multiline] [--keep FILE]... [--timeout S] [--may-pass] -- COMMAND...
#   --multiline: diagnostics may precede the last line (MLIR tools)
#   --keep FILE: FILE exists before and must be byte-identical after
#   --timeout S: seconds before the command counts as hung (default 60)
#   --may-pass:  exit 0 is fine too (input that may be valid; --keep files
#                must still be intact); any failure must still follow the rule
check() {
  local name=$1 prefix=$2 multiline=0 keep=() sums=() f problems="" limit=60 may_pass=0 last
  shift 2
  while [ $# -gt 0 ] && [ "$1" != -- ]; do
    case $1 in
      --multiline) multiline=1; shift ;;
      --keep) keep+=("$2"); shift 2 ;;
      --timeout) limit=$2; shift 2 ;;
      --may-pass) may_pass=1; shift ;;
      *) echo "sweep: bad check option $1"; exit 2 ;;
    esac
  done
  shift
  cases=$((cases + 1))
  for f in ${keep[@]+"${keep[@]}"}; do sums+=("$(sha256sum < "$f")"); done
  rm -f core core.*
  timeout -k 5 "$limit" "$@" > "$work/out" 2> "$work/err" < /dev/null
  local rc=$?
  if [ $may_pass = 1 ] && [ $rc = 0 ]; then
    last="exit 0"
  else
    case $rc in
      1 | 2) ;;
      0) problems+=" exit 0 (bad input accepted);" ;;
      124 | 137) problems+=" timed out after $limit s;" ;;
      *) if [ $rc -gt 128 ]; then problems+=" killed by signal $((rc - 128));"; else problems+=" exit $rc (want 1 or 2);"; fi ;;
    esac
    local lines
    lines=$(wc -l < "$work/err")
    last=$(tail -n 1 "$work/err")
    [ -s "$work/err" ] || problems+=" nothing on stderr;"
    [ $multiline = 1 ] || [ "$lines" -le 1 ] || problems+=" $lines lines on stderr (want one);"
    case $last in "$prefix"?*) ;; *) problems+=" last stderr line does not start with '$prefix';" ;; esac
    case $last in *std::* | *bad_alloc* | *basic_string* | *_M_* | *"Run with --help"*)
      problems+=" an internal message, not one saying what to fix;" ;;
    esac
  fi
  if grep -qE 'terminate called|Stack dump|Assertion .* failed|Segmentation fault|AddressSanitizer' "$work/err"; then
    problems+=" crash report on stderr;"
  fi
  compgen -G 'core*' > /dev/null && problems+=" core dumped;"
  local i=0
  for f in ${keep[@]+"${keep[@]}"}; do
    if [ ! -f "$f" ]; then
      problems+=" $f was deleted;"
    elif [ "$(sha256sum < "$f")" != "${sums[$i]}" ]; then
      problems+=" $f was changed;"
    fi
    compgen -G "$f.t*" > /dev/null && problems+=" a temporary next to $f was left behind;"
    i=$((i + 1))
  done
  if [ -n "$problems" ]; then
    failures=$((failures + 1))
    echo "FAIL  $name:$problems"
    echo "      \$ $*"
    sed 's/^/      stderr: /' "$work/err" | head -n 6
  else
    echo "ok    $name: $last"
  fi
}

skip() { skipped=$((skipped + 1)); echo "skip  $1"; }

# The checker itself must reject a command that succeeds.
( failures=0; check self-test "x: error: " -- true > /dev/null; [ $failures -eq 1 ] ) ||
  { echo "sweep self-test: the checker accepted a command that exits 0"; exit 1; }

C="v4c: error: " R="v4run: error: " O="v4-opt: error: " A="v4bench-agent: error: "
w=$work

# ---- fixtures -------------------------------------------------------------
"$v4c" compile "$case_dir" --target cpu -o "$w/tiny.v4a" > /dev/null || { echo "cannot compile $case_dir"; exit 1; }
"$v4run" generate "$w/tiny.v4a" --prompt-ids 1,2 -n 2 > /dev/null || { echo "the tiny artifact does not run"; exit 1; }
art=$w/tiny.v4a
size=$(stat -c %s "$art")
u32() { od -An -tu4 -j "$2" -N 4 "$1" | tr -d ' '; }
u64() { od -An -tu8 -j "$2" -N 8 "$1" | tr -d ' '; }
manifest_size=$(u32 "$art" 12) blob=$(u64 "$art" 16)
truncate_at() { head -c "$1" "$art" > "$w/trunc-$1.v4a"; }
flip_at() { # a copy of the artifact with the byte at $1 inverted
  cp "$art" "$w/flip-$1.v4a"
  local byte
  byte=$(od -An -tu1 -j "$1" -N 1 "$art" | tr -d ' ')
  printf "$(printf '\\%03o' $((255 - byte)))" | dd of="$w/flip-$1.v4a" bs=1 seek="$1" conv=notrunc status=none
}
for n in 7 40 $((64 + manifest_size / 2)) $((blob + 100)) $((size - 1)); do truncate_at $n; done
for n in 8 12 16 24 $((64 + manifest_size / 2)) $((blob + 8)) $((size - 8)); do flip_at $n; done
# Manifest bytes changed and the header's sha256 made to match: only the
# flatbuffers Verifier and the program checks stand between them and the
# runtime. Some changes leave a valid program (the sha256 names the program,
# it is no signature), so exit 0 is allowed; a crash or hang is not. 48
# offsets by default; V4_SWEEP_TAMPER_STEP=37 tries every 37th byte (~3000
# runs, minutes: a fuzzing run, not for ctest).
tamper_step=${V4_SWEEP_TAMPER_STEP:-$(((manifest_size + 47) / 48))}
tamper() { # FIRST LAST: resealed copies tamper-N.v4a for N = FIRST, FIRST + step, ... < LAST
  python3 - "$art" "$w" "$tamper_step" "$1" "$2" << 'EOF'
import hashlib, struct, sys
source, out, step, first, last = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
original = open(source, "rb").read()
size = struct.unpack_from("<I", original, 12)[0]
for offset in range(first, min(last, 64 + size), step):
    data = bytearray(original)
    data[offset] ^= 0xFF
    data[32:64] = hashlib.sha256(bytes(data[64:64 + size])).digest()
    open("%s/tamper-%d.v4a" % (out, offset), "wb").write(data)
EOF
}
cp "$art" "$w/trailing.v4a" && printf 'x' >> "$w/trailing.v4a"
: > "$w/empty.v4a"
mkdir -p "$w/adir.v4a" "$w/emptydir"
echo "not an artifact, not a checkpoint" > "$w/notes.txt"
# An unwritable directory; root writes through chmod, so there /proc stands in.
ro=$w/readonly
mkdir -p "$ro" && chmod 555 "$ro"
if [ -w "$ro" ]; then
  echo "note  running as root: /proc stands in for an unwritable directory"
  ro=/proc
fi

# Checkpoints: a copy of the case with one thing wrong each. tweak_config DIR
# PYTHON edits config.json as `c`; tweak_header DIR PYTHON edits the
# safetensors header as `h` (data untouched).
ckpt() { rm -rf "${w:?}/${1:?}" && mkdir -p "$w/$1" && cp "$case_dir/config.json" "$case_dir/model.safetensors" "$w/$1/"; }
tweak_config() {
  ckpt "$1"
  python3 - "$w/$1/config.json" "$2" << 'EOF'
import json, sys
path, code = sys.argv[1], sys.argv[2]
c = json.load(open(path))
exec(code)
open(path, "w").write(json.dumps(c))
EOF
}
tweak_header() {
  ckpt "$1"
  python3 - "$w/$1/model.safetensors" "$2" << 'EOF'
import json, struct, sys
path, code = sys.argv[1], sys.argv[2]
data = open(path, "rb").read()
n = struct.unpack("<Q", data[:8])[0]
h = json.loads(data[8:8 + n])
exec(code)
header = json.dumps(h).encode()
open(path, "wb").write(struct.pack("<Q", len(header)) + header + data[8 + n:])
EOF
}
tweak_config cfg-missing-key 'del c["hidden_size"]'
tweak_config cfg-wrong-type 'c["hidden_size"] = "64"'
tweak_config cfg-negative 'c["hidden_size"] = -64'
tweak_config cfg-zero-layers 'c["num_hidden_layers"] = 0; c["layer_types"] = []; c["mlp_layer_types"] = []'
tweak_config cfg-negative-vocab 'c["vocab_size"] = -1'
tweak_config cfg-huge-vocab 'c["vocab_size"] = 10**15'
tweak_config cfg-huge-hidden 'c["hidden_size"] = 2**40'
tweak_config cfg-float-heads 'c["num_attention_heads"] = 4.5'
tweak_config cfg-schedule-length 'c["layer_types"] = c["layer_types"][:2]'
tweak_config cfg-bad-layer-type 'c["layer_types"][1] = "dense_attention"'
ckpt cfg-not-json && printf '{"hidden_size": 64,' > "$w/cfg-not-json/config.json"
ckpt cfg-empty && : > "$w/cfg-empty/config.json"
ckpt cfg-array && echo '[1, 2]' > "$w/cfg-array/config.json"
ckpt cfg-dir && rm "$w/cfg-dir/config.json" && mkdir "$w/cfg-dir/config.json"
ckpt st-missing && rm "$w/st-missing/model.safetensors"
ckpt st-empty && : > "$w/st-empty/model.safetensors"
ckpt st-dir && rm "$w/st-dir/model.safetensors" && mkdir "$w/st-dir/model.safetensors"
ckpt st-huge-header && printf '\x00\x00\x00\x00\x01\x00\x00\x00{}' > "$w/st-huge-header/model.safetensors"
ckpt st-header-past-end && printf '\xe8\x03\x00\x00\x00\x00\x00\x00{}' > "$w/st-header-past-end/model.safetensors"
ckpt st-not-json && printf '\x0a\x00\x00\x00\x00\x00\x00\x00{not json}' > "$w/st-not-json/model.safetensors"
ckpt st-truncated && head -c 1000000 "$case_dir/model.safetensors" > "$w/st-truncated/model.safetensors"
tweak_header st-wrong-shape 'h["head.weight"]["shape"] = [64, 512]'
tweak_header st-wrong-dtype 'h["head.weight"]["dtype"] = "I32"'
tweak_header st-missing-tensor 'h.pop("head.weight"); h["zzz.padding"] = {"dtype": "F32", "shape": [512, 64], "data_offsets": [24576, 155648]}'
tweak_header st-overlap 'h["model.embed_tokens.weight"]["data_offsets"] = [24576, 155648]'
tweak_header st-bad-offsets 'h["head.weight"]["data_offsets"] = [24576, 2**62]'
tweak_header st-bad-dtype-name 'h["head.weight"]["dtype"] = "F33"'
ckpt idx-bad && mv "$w/idx-bad/model.safetensors" "$w/idx-bad/shard-1.safetensors" &&
  echo '{"weight_map": {"head.weight": "../../etc/passwd"}}' > "$w/idx-bad/model.safetensors.index.json"
ckpt idx-not-json && echo '{' > "$w/idx-not-json/model.safetensors.index.json"
ckpt idx-missing-shard && mv "$w/idx-missing-shard/model.safetensors" "$w/idx-missing-shard/shard-1.safetensors" &&
  echo '{"weight_map": {"head.weight": "shard-2.safetensors"}}' > "$w/idx-missing-shard/model.safetensors.index.json"

# ---- v4c --------------------------------------------------------------------
echo "user's artifact" > "$w/existing.v4a"
echo "user's module" > "$w/existing.mlir"
keep_v4a=(--keep "$w/existing.v4a")
check v4c.no-subcommand "$C" -- "$v4c"
check v4c.unknown-subcommand "$C" -- "$v4c" frobnicate
check v4c.unknown-flag "$C" "${keep_v4a[@]}" -- "$v4c" compile "$case_dir" --frob -o "$w/existing.v4a"
check v4c.import.missing-dir "$C" -- "$v4c" import "$w/nowhere"
check v4c.import.file-as-dir "$C" -- "$v4c" import "$w/notes.txt"
check v4c.import.empty-dir "$C" -- "$v4c" import "$w/emptydir"
check v4c.import.unknown-model "$C" -- "$v4c" import --model v4-nano
check v4c.import.bad-config-keeps-output "$C" --keep "$w/existing.mlir" -- \
  "$v4c" import "$w/cfg-missing-key" -o "$w/existing.mlir"
check v4c.import.unwritable-output "$C" -- "$v4c" import "$case_dir" -o "$ro/v4c-sweep.mlir"
check v4c.import.output-in-missing-dir "$C" -- "$v4c" import "$case_dir" -o "$w/nowhere/x.mlir"
check v4c.compile.no-input "$C" -- "$v4c" compile -o "$w/x.v4a"
check v4c.compile.no-output "$C" -- "$v4c" compile "$case_dir"
check v4c.compile.missing-dir "$C" "${keep_v4a[@]}" -- "$v4c" compile "$w/nowhere" -o "$w/existing.v4a"
check v4c.compile.file-as-dir "$C" "${keep_v4a[@]}" -- "$v4c" compile "$w/notes.txt" -o "$w/existing.v4a"
check v4c.compile.empty-dir "$C" "${keep_v4a[@]}" -- "$v4c" compile "$w/emptydir" -o "$w/existing.v4a"
check v4c.compile.output-is-dir "$C" -- "$v4c" compile "$case_dir" -o "$w/adir.v4a"
check v4c.compile.output-in-missing-dir "$C" -- "$v4c" compile "$case_dir" -o "$w/nowhere/x.v4a"
check v4c.compile.output-under-file "$C" -- "$v4c" compile "$case_dir" -o "$w/notes.txt/x.v4a"
check v4c.compile.unwritable-output "$C" -- "$v4c" compile "$case_dir" -o "$ro/v4c-sweep.v4a"
for bad in cfg-missing-key cfg-wrong-type cfg-negative cfg-zero-layers cfg-negative-vocab cfg-huge-vocab \
           cfg-huge-hidden cfg-float-heads cfg-schedule-length cfg-bad-layer-type cfg-not-json cfg-empty \
           cfg-array cfg-dir st-missing st-empty st-dir st-huge-header st-header-past-end st-not-json st-truncated st-wrong-shape \
           st-wrong-dtype st-missing-tensor st-overlap st-bad-offsets st-bad-dtype-name idx-bad idx-not-json \
           idx-missing-shard; do
  check "v4c.compile.$bad" "$C" "${keep_v4a[@]}" -- "$v4c" compile "$w/$bad" --target cpu -o "$w/existing.v4a"
done
tweak_config cfg-overflow 'c["hidden_size"] = 2**40; c["vocab_size"] = 2**40'
check v4c.compile.dummy.overflowing-config "$C" "${keep_v4a[@]}" -- \
  "$v4c" compile "$w/cfg-overflow" --weights dummy --target cpu -o "$w/existing.v4a"
compile_bad() { # NAME ARGS...: a bad option value; the user's artifact survives
  local name=$1
  shift
  check "v4c.compile.$name" "$C" "${keep_v4a[@]}" -- "$v4c" compile "$case_dir" -o "$w/existing.v4a" "$@"
}
compile_bad target-unknown --target sm_75
compile_bad target-empty --target ""
compile_bad precision-unknown --precision fp16
compile_bad precision-bf16-on-cpu --precision bf16
compile_bad experts-unknown --experts fp3
compile_bad kv-cache-unknown --kv-cache fp16
compile_bad weights-unknown --weights random
compile_bad tensor-cores-unknown --tensor-cores mfma
compile_bad tensor-cores-on-cpu --tensor-cores wgmma
compile_bad prefill-chunk-zero --prefill-chunk 0
compile_bad prefill-chunk-negative --prefill-chunk -1
compile_bad prefill-chunk-text --prefill-chunk x
compile_bad prefill-chunk-huge --prefill-chunk 99999999999999999999
compile_bad prefill-chunk-too-big --prefill-chunk 70000
compile_bad decode-batch-zero --decode-batch 0
compile_bad decode-batch-empty-item --decode-batch 1,,2
compile_bad decode-batch-text --decode-batch a
compile_bad decode-batch-empty --decode-batch ""
compile_bad decode-batch-descending --decode-batch 4,1
compile_bad decode-batch-huge --decode-batch 5000
compile_bad decode-batch-trailing-comma --decode-batch 1,4,
compile_bad dummy-seed-text --weights dummy --dummy-seed x
compile_bad dummy-seed-negative --weights dummy --dummy-seed -1
compile_bad dump-ir-after-unknown --dump-ir-after v4-no-such-pass
compile_bad model-unknown --model v4-nano
compile_bad kv-fp8-bf16 --target sm_90a --precision bf16 --kv-cache fp8
compile_bad cuda-decode-batch-too-big --target sm_90a --decode-batch 1,128
check v4c.dummy-checkpoint.missing "$C" -- "$v4c" dummy-checkpoint "$w/nowhere.v4a" -o "$w/dc"
check v4c.dummy-checkpoint.not-dummy "$C" -- "$v4c" dummy-checkpoint "$art" -o "$w/dc"
check v4c.dummy-checkpoint.truncated "$C" -- "$v4c" dummy-checkpoint "$w/trunc-40.v4a" -o "$w/dc"
"$v4c" compile "$case_dir" --weights dummy --target cpu -o "$w/dummy.v4a" > /dev/null
ckpt user-ckpt
check v4c.dummy-checkpoint.over-a-checkpoint "$C" --keep "$w/user-ckpt/model.safetensors" \
  --keep "$w/user-ckpt/config.json" -- "$v4c" dummy-checkpoint "$w/dummy.v4a" -o "$w/user-ckpt"
check v4c.dummy-checkpoint.onto-a-file "$C" --keep "$w/notes.txt" -- "$v4c" dummy-checkpoint "$w/dummy.v4a" -o "$w/notes.txt"
check v4c.dummy-checkpoint.unwritable "$C" -- "$v4c" dummy-checkpoint "$w/dummy.v4a" -o "$ro/v4c-sweep-ckpt"

# ---- v4-opt -----------------------------------------------------------------
printf 'func.func @f() {\n  %%0 = bogus\n}\n' > "$w/bad.mlir"
echo 'module {}' > "$w/empty.mlir"
check v4-opt.missing-input "$O" -- "$v4opt" "$w/nowhere.mlir"
check v4-opt.dir-input "$O" -- "$v4opt" "$w/emptydir"
check v4-opt.unknown-flag "$O" -- "$v4opt" --frob "$w/bad.mlir"
check v4-opt.invalid-ir "$O" --multiline -- "$v4opt" "$w/bad.mlir"
check v4-opt.invalid-ir-keeps-output "$O" --multiline --keep "$w/existing.mlir" -- \
  "$v4opt" "$w/bad.mlir" -o "$w/existing.mlir"
check v4-opt.unknown-pass-option "$O" --multiline -- "$v4opt" "$w/empty.mlir" --v4-specialize=sizes=9
check v4-opt.bad-pass-option "$O" --multiline -- "$v4opt" "$w/empty.mlir" --v4-specialize=buckets=prefill:0
check v4-opt.unwritable-output "$O" -- "$v4opt" "$w/bad.mlir" -o "$ro/v4opt-sweep.mlir"

# ---- v4run: files -------------------------------------------------------------
check v4run.no-subcommand "$R" -- "$v4run"
check v4run.unknown-subcommand "$R" -- "$v4run" frobnicate
check v4run.unknown-flag "$R" -- "$v4run" generate "$art" --prompt-ids 1 --frob
check v4run.missing-required "$R" -- "$v4run" generate "$art"
bad_files=(nowhere.v4a adir.v4a empty.v4a notes.txt trailing.v4a)
for n in 7 40 $((64 + manifest_size / 2)) $((blob + 100)) $((size - 1)); do bad_files+=("trunc-$n.v4a"); done
for n in 8 12 16 24 $((64 + manifest_size / 2)) $((blob + 8)) $((size - 8)); do bad_files+=("flip-$n.v4a"); done
for f in "${bad_files[@]}"; do
  check "v4run.generate.$f" "$R" -- "$v4run" generate "$w/$f" --prompt-ids 1,2 -n 2
  check "v4run.info.$f" "$R" -- "$v4run" info "$w/$f"
done
# config prints the manifest's config only (sha256-checked); it hashes no weight.
for f in nowhere.v4a trunc-40.v4a "flip-$((64 + manifest_size / 2)).v4a"; do
  check "v4run.config.$f" "$R" -- "$v4run" config "$w/$f"
done
for f in nowhere.v4a trunc-40.v4a "flip-$((64 + manifest_size / 2)).v4a" "flip-$((blob + 8)).v4a"; do
  check "v4run.verify.$f" "$R" -- "$v4run" verify "$w/$f" --golden "$case_dir/golden.safetensors"
  check "v4run.bench.$f" "$R" -- "$v4run" bench "$w/$f" --prompt-len 4 --decode 2
  check "v4run.consistency.$f" "$R" -- "$v4run" consistency "$w/$f" --prompt-len 4
  check "v4run.profile.$f" "$R" -- "$v4run" profile "$w/$f" --bucket decode
done
# 64 copies at a time, each removed once run (a fuzzing run makes thousands).
for ((first = 64; first < 64 + manifest_size; first += 64 * tamper_step)); do
  tamper "$first" $((first + 64 * tamper_step))
  for f in "$w"/tamper-*.v4a; do
    check "v4run.generate.$(basename "$f")" "$R" --may-pass --timeout 20 -- \
      "$v4run" generate "$f" --prompt-ids 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18 -n 3 --threads 1
    rm -f "$f"
  done
done
check v4run.verify.golden-missing "$R" -- "$v4run" verify "$art" --golden "$w/nowhere.safetensors"
check v4run.verify.golden-dir "$R" -- "$v4run" verify "$art" --golden "$w/emptydir"
check v4run.verify.golden-empty "$R" -- "$v4run" verify "$art" --golden "$w/st-empty/model.safetensors"
check v4run.verify.golden-not-json "$R" -- "$v4run" verify "$art" --golden "$w/st-not-json/model.safetensors"
check v4run.verify.golden-not-golden "$R" -- "$v4run" verify "$art" --golden "$case_dir/model.safetensors"

# ---- v4run: option values -----------------------------------------------------
gen() { # NAME ARGS...: generate with one bad option
  local name=$1
  shift
  check "v4run.generate.$name" "$R" -- "$v4run" generate "$art" "$@"
}
gen ids-empty-item --prompt-ids 1,,2
gen ids-text --prompt-ids a
gen ids-empty --prompt-ids ""
gen ids-comma --prompt-ids ,
gen ids-trailing-comma --prompt-ids 1,2,
gen ids-negative --prompt-ids -1
gen ids-out-of-vocab --prompt-ids 512
gen ids-huge --prompt-ids 99999999999
gen ids-empty-prompt --prompt-ids "1;;2"
gen ids-trailing-prompt --prompt-ids "1;2;"
gen n-negative --prompt-ids 1 -n -1
gen n-text --prompt-ids 1 -n x
gen n-overflow --prompt-ids 1 -n 99999999999999999999
gen n-past-context --prompt-ids 1 -n 1000000000000
gen temperature-negative --prompt-ids 1 --temperature -1
gen temperature-text --prompt-ids 1 --temperature x
gen temperature-nan --prompt-ids 1 --temperature nan
gen temperature-inf --prompt-ids 1 --temperature inf
gen top-p-above-one --prompt-ids 1 --top-p 2
gen top-p-zero --prompt-ids 1 --top-p 0
gen top-p-nan --prompt-ids 1 --top-p nan
gen seed-text --prompt-ids 1 --seed x
gen seed-negative --prompt-ids 1 --seed -1
gen threads-text --prompt-ids 1 --threads x
gen threads-negative --prompt-ids 1 --threads -1
gen threads-huge --prompt-ids 1 --threads 100000000
gen batch-negative --prompt-ids 1 --batch -1
gen batch-text --prompt-ids 1 --batch x
gen batch-huge --prompt-ids 1 --batch 100000000
gen cache-dir-is-file --prompt-ids 1 --cache-dir "$w/notes.txt"
gen cache-dir-unwritable --prompt-ids 1 --cache-dir "$ro/v4run-sweep"
gen cache-disk-bytes-text --prompt-ids 1 --cache-dir "$w/cache" --cache-disk-bytes x
gen cache-disk-bytes-negative --prompt-ids 1 --cache-dir "$w/cache" --cache-disk-bytes -1
gen cache-host-bytes-negative --prompt-ids 1 --cache-host-bytes -5
gen swa-cache-unknown --prompt-ids 1 --swa-cache some
gen swa-cache-periodic-zero --prompt-ids 1 --swa-cache periodic:0
gen swa-cache-periodic-text --prompt-ids 1 --swa-cache periodic:x
gen swa-cache-periodic-odd --prompt-ids 1 --cache-dir "$w/cache" --swa-cache periodic:3
gen device-bytes-on-cpu --prompt-ids 1 --cache-device-bytes 1000
gen max-context-negative --prompt-ids 1 --max-context -1
check v4run.generate.cache-dir-file-kept "$R" --keep "$w/notes.txt" -- \
  "$v4run" generate "$art" --prompt-ids 1 --cache-dir "$w/notes.txt"

verify_bad() {
  local name=$1
  shift
  check "v4run.verify.$name" "$R" -- "$v4run" verify "$art" --golden "$case_dir/golden.safetensors" "$@"
}
verify_bad tolerance-negative --tolerance -1
verify_bad tolerance-text --tolerance x
verify_bad tolerance-nan --tolerance nan
verify_bad token-margin-negative --token-margin -1
verify_bad threads-text --threads x

bench_bad() {
  local name=$1
  shift
  check "v4run.bench.$name" "$R" -- "$v4run" bench "$art" "$@"
}
bench_bad prompt-len-zero --prompt-len 0 --decode 2
bench_bad prompt-len-negative --prompt-len -1
bench_bad prompt-len-text --prompt-len x
bench_bad prompt-len-past-context --prompt-len 1000000000000 --decode 2
bench_bad context-negative --context -5
bench_bad decode-negative --prompt-len 4 --decode -1
bench_bad decode-huge --prompt-len 4 --decode 1000000000000
bench_bad batch-zero --prompt-len 4 --decode 2 --batch 0
bench_bad batch-negative --prompt-len 4 --decode 2 --batch -1
bench_bad batch-huge --prompt-len 4 --decode 2 --batch 100000
bench_bad bandwidth-text --prompt-len 4 --decode 2 --bandwidth fast
bench_bad threads-huge --prompt-len 4 --decode 2 --threads 100000000
bench_bad warmup-negative --prompt-len 4 --decode 2 --warmup -1
bench_bad bandwidth-zero --prompt-len 4 --decode 2 --bandwidth 0
bench_bad bandwidth-negative --prompt-len 4 --decode 2 --bandwidth -1
bench_bad prefill-budget-negative --prompt-len 4 --decode 2 --prefill-budget -1
bench_bad max-context-negative --prompt-len 4 --decode 2 --max-context -1

profile_bad() {
  local name=$1
  shift
  check "v4run.profile.$name" "$R" -- "$v4run" profile "$art" "$@"
}
profile_bad bucket-unknown --bucket middle
profile_bad context-negative --bucket decode --context -1
profile_bad context-past-model --bucket decode --context 1000000000000
profile_bad batch-zero --bucket decode --batch 0
profile_bad batch-no-bucket --bucket decode --batch 1000
profile_bad tokens-zero --bucket prefill --tokens 0
profile_bad tokens-past-bucket --bucket prefill --tokens 100000
profile_bad repeat-zero --bucket decode --repeat 0
profile_bad repeat-negative --bucket decode --repeat -1
profile_bad warmup-negative --bucket decode --warmup -1
profile_bad fill-unknown --bucket decode --fill sideways
profile_bad fill-chunk-zero --bucket decode --fill tiled --fill-chunk 0
profile_bad bandwidth-zero --bucket decode --bandwidth 0
profile_bad peak-negative --bucket decode --peak-tflops -1
profile_bad peak-f32-zero --bucket decode --peak-f32 0
profile_bad tokens-negative --bucket prefill --tokens -4
profile_bad max-context-negative --bucket decode --max-context -1
profile_bad threads-text --bucket decode --threads many

consistency_bad() {
  local name=$1
  shift
  check "v4run.consistency.$name" "$R" -- "$v4run" consistency "$art" "$@"
}
consistency_bad prompt-len-zero --prompt-len 0
consistency_bad prompt-len-negative --prompt-len -3
consistency_bad prompt-len-past-context --prompt-len 1000000000000
consistency_bad tolerance-negative --prompt-len 4 --tolerance -1
consistency_bad decode-negative --prompt-len 4 --decode -1
consistency_bad batch-zero --prompt-len 4 --batch 0
consistency_bad batch-negative --prompt-len 4 --batch -2
consistency_bad batch-huge --prompt-len 4 --batch 100000
consistency_bad batch-tolerance-negative --prompt-len 4 --batch 2 --batch-tolerance -1
consistency_bad sessions-on-cpu --prompt-len 4 --sessions 2
consistency_bad swa-cache-on-cpu --prompt-len 4 --swa-cache full
consistency_bad max-context-negative --prompt-len 4 --max-context -1
consistency_bad cache-bytes-negative --prompt-len 4 --swa-cache full --cache-host-bytes -1

check v4run.compare.missing "$R" -- "$v4run" compare "$w/nowhere.v4a" "$art" --prompt-ids 1
check v4run.compare.cpu-as-gpu "$R" -- "$v4run" compare "$art" "$art" --prompt-ids 1
check v4run.compare.bad-ids "$R" -- "$v4run" compare "$art" "$art" --prompt-ids 1,,2
check v4run.compare.decode-negative "$R" -- "$v4run" compare "$art" "$art" --prompt-ids 1 --decode -1
check v4run.compare.tolerance-zero "$R" -- "$v4run" compare "$art" "$art" --prompt-ids 1 --tolerance 0
check v4run.device.not-cuda-target "$R" -- "$v4run" device --target gfx90a
check v4run.device.empty-target "$R" -- "$v4run" device --target ""
check v4run.cache.no-subcommand "$R" -- "$v4run" cache
check v4run.cache.stats-missing-dir "$R" -- "$v4run" cache stats "$w/nowhere"
check v4run.cache.stats-file "$R" -- "$v4run" cache stats "$w/notes.txt"
check v4run.cache.clear-file-kept "$R" --keep "$w/notes.txt" -- "$v4run" cache clear "$w/notes.txt"
check v4run.cache.clear-missing-dir "$R" -- "$v4run" cache clear "$w/nowhere"

# A GPU artifact where no CUDA device exists (needs nvcc to build; skipped where
# a device exists: then it runs).
if "$v4run" device --target sm_90a > /dev/null 2>&1; then
  skip "v4run.gpu-artifact-without-device: a CUDA device is present"
elif "$v4c" compile "$case_dir" --target sm_90a --decode-batch 1 -o "$w/gpu.v4a" > "$w/nvcc.txt" 2>&1; then
  for command in "generate --prompt-ids 1,2 -n 2" "bench --prompt-len 4 --decode 2" "consistency --prompt-len 4" \
                 "verify --golden $case_dir/golden.safetensors" "profile --bucket decode"; do
    # shellcheck disable=SC2086 # the command's words
    check "v4run.gpu-without-device.${command%% *}" "${R}no CUDA device: " -- "$v4run" ${command%% *} "$w/gpu.v4a" ${command#* }
  done
  check v4bench-agent.gpu-without-device "${A}no CUDA device: " -- "$agent" "$w/gpu.v4a" --turns 1 --append 4
else
  skip "v4run.gpu-artifact-without-device: cannot compile for sm_90a here ($(tail -n 1 "$w/nvcc.txt"))"
fi

# ---- v4bench-agent ------------------------------------------------------------
if [ -x "$agent" ]; then
  agent_bad() {
    local name=$1
    shift
    check "v4bench-agent.$name" "$A" -- "$agent" "$@"
  }
  agent_bad missing "$w/nowhere.v4a"
  agent_bad truncated "$w/trunc-40.v4a"
  agent_bad weights-flipped "$w/flip-$((blob + 8)).v4a" --turns 1 --append 4
  agent_bad swa-cache-unknown "$art" --turns 1 --append 4 --swa-cache some
  agent_bad no-artifact
  agent_bad unknown-flag "$art" --frob
  agent_bad turns-zero "$art" --turns 0
  agent_bad turns-text "$art" --turns x
  agent_bad append-negative "$art" --append -1
  agent_bad decode-negative "$art" --decode -1
  agent_bad threads-huge "$art" --threads 100000000
  agent_bad cache-bytes-negative "$art" --cache-host-bytes -1
  agent_bad past-context "$art" --turns 1000 --append 1000
  check v4bench-agent.cache-dir-is-file "$A" --keep "$w/notes.txt" -- \
    "$agent" "$art" --turns 1 --append 4 --cache-dir "$w/notes.txt"
  # Valid, but the directory is the user's: the replay may only clear KV pages.
  mkdir -p "$w/user-dir" && echo "user's notes" > "$w/user-dir/notes.txt"
  check v4bench-agent.cache-dir-keeps-user-files "$A" --may-pass --keep "$w/user-dir/notes.txt" -- \
    "$agent" "$art" --turns 2 --append 20 --cache-dir "$w/user-dir"
else
  skip "v4bench-agent: not built"
fi

echo "bad input sweep: $cases cases, $failures failed, $skipped skipped"
[ "$failures" -eq 0 ] || exit 1
cd / && rm -rf "$work" # ~100 MB of checkpoint copies; kept when a case failed
