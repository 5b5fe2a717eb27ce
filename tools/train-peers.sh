#!/usr/bin/env bash
# Training throughput, EdgeBert vs PyTorch, side by side: alternates `edgebert bench train --json` and
# tools/torch_train_bench.py for R rounds at each thread count (the order flips every round, so a
# change in background load hits both peers alike) and prints a table.
#
#   tools/train-peers.sh [--shape mini] [--seq 128] [--batch 32] [--threads "1 2"] [--rounds 3] [--seconds 6]
#
# Each run reports its best step; per peer, "best" is the best over rounds and "median" the median
# of the per-round bests. "ratio" is EdgeBert ms / PyTorch ms (below 1: EdgeBert is faster) from
# the best steps, and "paired" the median over rounds of that ratio within the same round.
# EDGEBERT overrides the EdgeBert command (default: the Release build of src/EdgeBert.Cli);
# build it first with `dotnet build src/EdgeBert.Cli -c Release`.
set -euo pipefail
cd "$(dirname "$0")/.."

shape=mini seq=128 batch=32 threads="1 2" rounds=3 seconds=6
while [[ $# -gt 0 ]]; do
  case "$1" in
    --shape) shape=$2; shift 2 ;;
    --seq) seq=$2; shift 2 ;;
    --batch) batch=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    *) echo "usage: $0 [--shape S] [--seq N] [--batch B] [--threads \"1 2\"] [--rounds R] [--seconds X]" >&2; exit 2 ;;
  esac
done

edgebert=${EDGEBERT:-"dotnet src/EdgeBert.Cli/bin/Release/net10.0/edgebert.dll"}
if [[ -z ${EDGEBERT:-} && ! -f src/EdgeBert.Cli/bin/Release/net10.0/edgebert.dll ]]; then
  echo "error: build first: dotnet build src/EdgeBert.Cli -c Release" >&2; exit 1
fi

results=$(mktemp)
trap 'rm -f "$results"' EXIT

run_edgebert() {
  $edgebert bench train --shape "$shape" --seq "$seq" --batch "$batch" --threads "$1" --seconds "$seconds" --json
}
run_torch() {
  /usr/bin/python3 tools/torch_train_bench.py --shape "$shape" --seq "$seq" --batch "$batch" --threads "$1" --seconds "$seconds" --json
}

for t in $threads; do
  for ((r = 1; r <= rounds; r++)); do
    if ((r % 2)); then order="EdgeBert PyTorch"; else order="PyTorch EdgeBert"; fi
    for peer in $order; do
      if [[ $peer == EdgeBert ]]; then line=$(run_edgebert "$t"); else line=$(run_torch "$t"); fi
      echo "threads $t round $r $peer $line" >&2
      echo "$t $r $peer $line" >>"$results"
    done
  done
done

/usr/bin/python3 - "$results" "$shape" "$seq" "$batch" <<'EOF'
import json, statistics, sys
path, shape, seq, batch = sys.argv[1:]
runs = {}
for line in open(path):
    t, r, peer, payload = line.split(" ", 3)
    runs.setdefault(int(t), {}).setdefault(peer, {})[int(r)] = json.loads(payload)["ms_per_step"]
tokens = int(seq) * int(batch)
print(f"shape {shape}, seq {seq}, batch {batch}: ms per training step (forward, CE, backward, AdamW)")
print(f"| threads | peer | best ms | median ms | tokens/s (best) | rounds | ratio EdgeBert/PyTorch (best) | paired (median) |")
print(f"|---|---|---|---|---|---|---|---|")
for t in sorted(runs):
    e, p = runs[t]["EdgeBert"], runs[t]["PyTorch"]
    paired = statistics.median(e[r] / p[r] for r in e if r in p)
    for peer, ms in (("EdgeBert", e), ("PyTorch 1.13", p)):
        best, median = min(ms.values()), statistics.median(ms.values())
        ratio = f"{min(e.values()) / min(p.values()):.2f}" if peer == "EdgeBert" else ""
        pair = f"{paired:.2f}" if peer == "EdgeBert" else ""
        print(f"| {t} | {peer} | {best:.1f} | {median:.1f} | {tokens / best * 1e3:.0f} | {len(ms)} | {ratio} | {pair} |")
EOF
