#!/bin/sh
# KV cache format conformance: compile CASE with --kv-cache KVCACHE (bf16 or
# fp8), run `v4run verify` against HF's fp32 logits and check the reported
# max relative errors (prefill, chunked prefill, decode) are <= BOUND and the
# prefill error is >= FLOOR (an fp32 cache verifies at ~1e-6: less means the
# cache was not rounded). With REQUIRE_TOKENS=1 every greedy token must match.
# Usage: kv-cache-verify.sh V4C V4RUN CASE_DIR ARTIFACT KVCACHE BOUND FLOOR REQUIRE_TOKENS
set -u
v4c=$1 v4run=$2 dir=$3 artifact=$4 kvcache=$5 bound=$6 floor=$7 require_tokens=$8
"$v4c" compile "$dir" --target cpu --kv-cache "$kvcache" -o "$artifact" || exit 1
out=$("$v4run" verify "$artifact" --golden "$dir/golden.safetensors" --tolerance "$bound" 2>&1)
status=$?
echo "$out"
line=$(echo "$out" | grep '^verify: prefill ')
[ -n "$line" ] || { echo "kv-cache-verify: no error line from v4run verify"; exit 1; }
echo "$line" | awk -v bound="$bound" -v floor="$floor" -v case="$(basename "$dir")" -v kv="$kvcache" '{
  prefill = $3 + 0; chunked = $5 + 0; decode = $7 + 0
  printf "kv-cache-verify: %s --kv-cache %s max rel error prefill %.3e chunked %.3e decode %.3e tokens %s (bound %s, floor %s)\n",
         case, kv, prefill, chunked, decode, $9, bound, floor
  # A NaN or inf error must fail, but awk compares "nan" unreliably (mawk,
  # Debian awk, finds nan <= bound true): accept only what %.3e prints for a
  # finite error.
  for (i = 3; i <= 7; i += 2)
    if ($i !~ /^[0-9]\.[0-9]+e[-+][0-9]+$/) { print "kv-cache-verify: max rel error \"" $i "\" is not a finite number"; exit 1 }
  if (!(prefill <= bound) || !(chunked <= bound) || !(decode <= bound)) { print "kv-cache-verify: error above bound"; exit 1 }
  if (prefill < floor) { print "kv-cache-verify: error below the floor: the cache was not stored narrow"; exit 1 }
}' || exit 1
if [ "$require_tokens" = 1 ] && [ $status -ne 0 ]; then
  echo "kv-cache-verify: greedy tokens differ from the reference"
  exit 1
fi
exit 0
