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
grep -qx 'corrupt: 0' "$work/stats.txt" || { cat "$work/stats.txt"; exit 1; }
"$v4run" cache clear "$work/cache" | grep -qx "removed 8 pages from $work/cache" || { echo "clear failed"; exit 1; }
"$v4run" cache stats "$work/cache" | grep -qx 'pages: 0' || { echo "clear left pages"; exit 1; }

# Unsupported strategies fail with one line.
if run --swa-cache zero 2> "$work/err.txt"; then echo "zero accepted"; exit 1; fi
grep -q 'not supported yet' "$work/err.txt" || { cat "$work/err.txt"; exit 1; }
echo "cache reuse test passed"
