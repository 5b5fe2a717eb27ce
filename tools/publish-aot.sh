#!/usr/bin/env bash
# Publishes `edgebert` as one NativeAOT executable (docs/deploy.md).
#   tools/publish-aot.sh [--model DIR | --no-model] [CPU] [RID]
#   --model DIR: the model directory embedded in the executable, so the one file classifies wherever it is copied
#        (default: the shipped default, weights/edgebert-minilm-sst2); --no-model embeds none.
#   CPU: portable (default; Vector128 only), x86-64-v3 (AVX2 + FMA), x86-64-v4 (AVX-512), native
#        (the CPU of this machine); for linux-arm64 also e.g. armv8.2-a or armv8.2-a+dotprod (sdot required:
#        portable detects it at run time); '+' adds instruction sets (IlcInstructionSet gets them comma-separated).
#   RID: linux-x64 (default) or linux-arm64.
# Output: artifacts/aot/RID-CPU/edgebert. Needs clang (and lld for linux-arm64) and zlib1g-dev:
#   apt-get install -y clang lld zlib1g-dev
# Cross-publishing linux-arm64 from x64 needs more: tools/arm64-selftest.sh installs and does it all.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
model="weights/edgebert-minilm-sst2"
model_dir="$root/$model"
positional=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --model)
      [[ $# -ge 2 ]] || { echo "error: --model needs a directory" >&2; exit 2; }
      model="$2"; model_dir="$(cd "$2" 2>/dev/null && pwd)" || { echo "error: $2: no such directory" >&2; exit 2; }
      shift 2 ;;
    --no-model) model=""; model_dir=""; shift ;;
    -*) echo "error: unknown option $1" >&2; exit 2 ;;
    *) positional+=("$1"); shift ;;
  esac
done
cpu="${positional[0]:-portable}"
rid="${positional[1]:-linux-x64}"
out="$root/artifacts/aot/$rid-$cpu"
extra=()
if [[ -n "$model_dir" ]]; then
  for f in config.json model.safetensors vocab.txt; do
    [[ -f "$model_dir/$f" ]] || { echo "error: $model_dir/$f: file not found" >&2; exit 2; }
  done
  extra+=(-p:EdgeBertEmbedModel="$model_dir" -p:EdgeBertEmbedModelSource="$model")
fi
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
