#!/usr/bin/env bash
# Every test: install, build, then ctest (unit, lit, conformance). GPU tests
# (label gpu) skip with a reason where there is no GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
cd build
ctest --output-on-failure -j2
