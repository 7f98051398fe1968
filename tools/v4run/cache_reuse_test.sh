#!/bin/sh
# usage: cache_reuse_test.sh V4C V4RUN CASE_DIR WORK_DIR
set -eu
v4c=$1 v4run=$2 case_dir=$3 work=$4
rm -rf "$work" && mkdir -p "$work"
"$v4c" compile "$case_dir" --target cpu -o "$work/model.v4a" > /dev/null
ids=$(seq 2 71 | tr '\n' ',' | sed 's/,$//')   # 70 tokens: 4 reusable pages of 16

run() { "$v4run" generate "$work/model.v4a" --prompt-ids "$ids" -n 8 --cache-dir "$work/cache" "$@"; }

run > "$work/first.txt"
run > "$work/second.txt"
grep -qx 'prefix hit: 0 tokens reused' "$work/first.txt" || { echo "first run reused pages"; cat "$work/first.txt"; exit 1; }
grep -qx 'prefix hit: 64 tokens reused' "$work/second.txt" || { echo "second run did not reuse 64 tokens"; cat "$work/second.txt"; exit 1; }
first_ids=$(head -n 1 "$work/first.txt")
second_ids=$(head -n 1 "$work/second.txt")
[ -n "$first_ids" ] && [ "$first_ids" = "$second_ids" ] || { echo "ids differ: $first_ids vs $second_ids"; exit 1; }
# Same ids as a run without any cache.
cold_ids=$("$v4run" generate "$work/model.v4a" --prompt-ids "$ids" -n 8 | head -n 1)
[ "$cold_ids" = "$first_ids" ] || { echo "cached ids $first_ids differ from cold $cold_ids"; exit 1; }

# Another tenant shares nothing.
run --tenant other | grep -qx 'prefix hit: 0 tokens reused' || { echo "tenant salt ignored"; exit 1; }

"$v4run" cache stats "$work/cache" > "$work/stats.txt"
grep -qx 'pages: 8' "$work/stats.txt" || { echo "expected 8 pages (4 per tenant)"; cat "$work/stats.txt"; exit 1; }
# stats reads no page; verify reads them all.
"$v4run" cache verify "$work/cache" > "$work/verify.txt" || { cat "$work/verify.txt"; exit 1; }
grep -qx 'good: 8' "$work/verify.txt" && grep -qx 'corrupt: 0' "$work/verify.txt" || { cat "$work/verify.txt"; exit 1; }
"$v4run" cache clear "$work/cache" | grep -qx "removed 8 pages from $work/cache" || { echo "clear failed"; exit 1; }
"$v4run" cache stats "$work/cache" | grep -qx 'pages: 0' || { echo "clear left pages"; exit 1; }

# --swa-cache zero: pages without windows (smaller), a restarted run rebuilds
# the window from 64 - 48 (4 layers x window 8 + rate 16) = 16 on: 16 tokens
# reused, 48 run again, the same ids.
full_bytes=$(grep '^bytes per page: ' "$work/stats.txt" | cut -d' ' -f4)
run --swa-cache zero > /dev/null
run --swa-cache zero > "$work/zero.txt"
grep -qx 'prefix hit: 16 tokens reused' "$work/zero.txt" || { echo "zero: expected 16 tokens reused"; cat "$work/zero.txt"; exit 1; }
grep -qx 'window rebuild: 48 restored tokens run again (--swa-cache zero)' "$work/zero.txt" || { cat "$work/zero.txt"; exit 1; }
[ "$(head -n 1 "$work/zero.txt")" = "$cold_ids" ] || { echo "zero: ids differ from cold"; exit 1; }
zero_bytes=$("$v4run" cache stats "$work/cache" | grep '^bytes per page: ' | cut -d' ' -f4)
[ "$zero_bytes" -lt "$full_bytes" ] || { echo "zero pages ($zero_bytes bytes) not smaller than full ($full_bytes)"; exit 1; }
# A period that is not a whole number of pages fails with one line.
if run --swa-cache periodic:24 2> "$work/err.txt"; then echo "periodic:24 accepted"; exit 1; fi
grep -q 'must be a multiple of the page size, 16 tokens' "$work/err.txt" || { cat "$work/err.txt"; exit 1; }
[ "$(wc -l < "$work/err.txt")" -eq 1 ] || { cat "$work/err.txt"; exit 1; }
echo "cache reuse test passed"
