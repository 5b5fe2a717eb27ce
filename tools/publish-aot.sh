#!/usr/bin/env bash
# Publishes `edgebert` as one NativeAOT executable (docs/deploy.md).
#   tools/publish-aot.sh [CPU] [RID]
#   CPU: portable (default; Vector128 only), x86-64-v3 (AVX2 + FMA), x86-64-v4 (AVX-512), native
#        (the CPU of this machine); for linux-arm64 also e.g. armv8.2-a or armv8.2-a+dotprod (sdot required:
#        portable detects it at run time); '+' adds instruction sets (IlcInstructionSet gets them comma-separated).
#   RID: linux-x64 (default) or linux-arm64.
# Output: artifacts/aot/RID-CPU/edgebert. Needs clang (and lld for linux-arm64) and zlib1g-dev:
#   apt-get install -y clang lld zlib1g-dev
# Cross-publishing linux-arm64 from x64 needs more: tools/arm64-selftest.sh installs and does it all.
set -euo pipefail
cpu="${1:-portable}"
rid="${2:-linux-x64}"
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$root/artifacts/aot/$rid-$cpu"
extra=()
if [[ "$rid" == linux-arm64 && "$(uname -m)" != aarch64 ]]; then
  # Cross-compile: the SDK passes --target=aarch64-linux-gnu to clang, which finds Debian's cross libc and
  # gcc (libc6-dev-arm64-cross, gcc-aarch64-linux-gnu) by itself. No SysRoot: with
  # SysRoot=/usr/aarch64-linux-gnu, lld looks for the absolute paths in its libc.so script inside the
  # sysroot again and fails. lld links aarch64 (the host's ld cannot); the cross objcopy splits edgebert.dbg.
  extra+=(-p:LinkerFlavor=lld -p:ObjCopyName=aarch64-linux-gnu-objcopy)
fi
dotnet publish "$root/src/EdgeBert.Cli" -c Release -r "$rid" -p:PublishAot=true -p:EdgeBertCpu="$cpu" \
  "${extra[@]}" -o "$out" >&2
echo "$out/edgebert"
