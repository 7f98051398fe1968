#!/bin/sh
# Quantized conformance: compile CASE with --precision/--experts, run
# `v4run verify` against HF's fp32 logits and check the reported max relative
# errors (prefill, chunked prefill, decode) stay <= BOUND; with
# REQUIRE_TOKENS=1 also every greedy token must match (verify's own verdict).
# Usage: quant-verify.sh V4C V4RUN CASE_DIR ARTIFACT PRECISION EXPERTS BOUND REQUIRE_TOKENS
set -u
v4c=$1 v4run=$2 dir=$3 artifact=$4 precision=$5 experts=$6 bound=$7 require_tokens=$8
"$v4c" compile "$dir" --target cpu --precision "$precision" --experts "$experts" -o "$artifact" || exit 1
out=$("$v4run" verify "$artifact" --golden "$dir/golden.safetensors" --tolerance "$bound" 2>&1)
status=$?
echo "$out"
line=$(echo "$out" | grep '^verify: prefill ')
[ -n "$line" ] || { echo "quant-verify: no error line from v4run verify"; exit 1; }
echo "$line" | awk -v bound="$bound" -v case="$(basename "$dir")" -v mode="$precision+$experts" '{
  prefill = $3 + 0; chunked = $5 + 0; decode = $7 + 0
  printf "quant-verify: %s %s max rel error prefill %.3e chunked %.3e decode %.3e tokens %s (bound %s)\n",
         case, mode, prefill, chunked, decode, $9, bound
  # A NaN or inf error must fail, but awk compares "nan" unreliably (mawk,
  # Debian awk, finds nan <= bound true): accept only what %.3e prints for a
  # finite error.
  for (i = 3; i <= 7; i += 2)
    if ($i !~ /^[0-9]\.[0-9]+e[-+][0-9]+$/) { print "quant-verify: max rel error \"" $i "\" is not a finite number"; exit 1 }
  if (!(prefill <= bound) || !(chunked <= bound) || !(decode <= bound)) { print "quant-verify: error above bound"; exit 1 }
  # fp32 artifacts verify at ~1e-6: an error this small means nothing was quantized.
  if (prefill < 1e-3) { print "quant-verify: error below 1e-3: the artifact does not run quantized"; exit 1 }
}' || exit 1
if [ "$require_tokens" = 1 ] && [ $status -ne 0 ]; then
  echo "quant-verify: greedy tokens differ from the reference"
  exit 1
fi
exit 0
