#!/usr/bin/env bash
# Cross-publishes `edgebert` for linux-arm64 with NativeAOT on this x64 Debian machine and runs
# `edgebert info` and `edgebert selftest` under qemu user-mode emulation: every kernel on the ARM64
# paths (AdvSimd as Vector128, and scalar) against the scalar reference, the INT8 GEMM (sdot when the CPU has
# dotprod, and scalar) against the exact integer sum, the tokenizer with accents under invariant globalization,
# and the tiny model's forward against PyTorch. docs/deploy.md.
#   tools/arm64-selftest.sh [CPU]      CPU: portable (default, armv8.0-a) or e.g. armv8.2-a, armv8.2-a+dotprod
#                                      (sdot required; every build runs the INT8 armdot path where the CPU has it)
# QEMU_CPU picks the emulated CPU (default max, which has dotprod; e.g. cortex-a72 has none, and a dotprod
# binary refuses to start there).
# Installs the Debian packages it needs when run as root; exits with the self-test's code.
set -euo pipefail
cpu="${1:-portable}"
root="$(cd "$(dirname "$0")/.." && pwd)"

packages=(clang lld binutils-aarch64-linux-gnu gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user-static)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if (( ${#missing[@]} )); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "error: missing Debian packages: ${missing[*]} (apt-get install -y ${missing[*]})" >&2
    exit 1
  fi
  echo "installing ${missing[*]}" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

binary="$("$root/tools/publish-aot.sh" "$cpu" linux-arm64)"
echo "published $binary ($(stat -c %s "$binary") bytes)"
# -L: the aarch64 loader and libc come from Debian's cross packages (the binary needs only libc and libm).
qemu_cpu="${QEMU_CPU:-max}"
echo "qemu-aarch64-static -cpu $qemu_cpu"
qemu=(qemu-aarch64-static -cpu "$qemu_cpu" -L /usr/aarch64-linux-gnu)
"${qemu[@]}" "$binary" info
"${qemu[@]}" "$binary" selftest
