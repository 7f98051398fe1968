#!/usr/bin/env bash
# Installs what v4c needs on Debian 12 (skips what is already there).
set -euo pipefail
packages=(cmake ninja-build g++ ccache python3
  llvm-19-dev libmlir-19-dev mlir-19-tools llvm-19-tools
  libflatbuffers-dev flatbuffers-compiler libgtest-dev libbenchmark-dev
  nlohmann-json3-dev libcli11-dev libfmt-dev libssl-dev libxxhash-dev libzstd-dev liburing-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}"
fi
