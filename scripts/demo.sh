#!/usr/bin/env bash
# The main job on the bundled tiny model: install, build, compile for the CPU,
# generate 16 tokens and print them with the speed.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
mkdir -p build/demo
build/bin/v4c compile tests/conformance/tiny-mixed --target cpu -o build/demo/tiny-mixed.v4a
build/bin/v4run generate build/demo/tiny-mixed.v4a --prompt-ids 5,17,300 -n 16
