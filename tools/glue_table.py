#!/usr/bin/env python3
"""Prints the GLUE table of docs/glue-minilm.md from the eval files tools/glue-minilm.sh writes.

    tools/glue_table.py RUNS

Each model directory RUNS/<task>/{dense,two-stage/lambda-X,frozen-lambda-X,one-stage} holds eval-batch1.json and
eval-batch32.json (`edgebert eval --json`, 1 thread). A row per model: the task's official dev metrics,
the loss in points against the dense fine-tune, the exact FLOPs ratio and the measured speed-ups.
"""
import json
import sys
from pathlib import Path

TASKS = ["SST-2", "CoLA", "MRPC", "STS-B", "RTE"]
# The official GLUE dev metrics, and the one a loss is counted in (the first).
METRICS = {"SST-2": ["accuracy"], "CoLA": ["mcc"], "MRPC": ["accuracy", "f1"],
           "STS-B": ["pearson", "spearman"], "RTE": ["accuracy"]}


def load(model):
    files = [model / f"eval-batch{b}.json" for b in (1, 32)]
    if not all(f.exists() for f in files):
        return None
    return [json.loads(f.read_text()) for f in files]


def models(task_dir):
    yield "dense", task_dir / "dense"
    for sweep in sorted((task_dir / "two-stage").glob("lambda-*"), key=lambda p: float(p.name[7:])):
        yield f"two-stage, lambda {sweep.name[7:]}", sweep
        yield f"two-stage, lambda {sweep.name[7:]}, retrained under frozen gates", task_dir / f"frozen-{sweep.name}"
    yield "one-stage", task_dir / "one-stage"


def main(runs):
    print("| task | model | dev metric | loss (points) | FLOPs ratio | speed-up, batch 1 | speed-up, batch 32 |")
    print("|---|---|---|---:|---:|---:|---:|")
    for task in TASKS:
        dense = load(runs / task / "dense")
        for name, model in models(runs / task):
            result = load(model)
            if result is None:
                continue
            b1, b32 = result
            metrics = " / ".join(f"{100 * b1['metrics'][m]:.2f}" for m in METRICS[task])
            first = METRICS[task][0]
            loss = 100 * (dense[0]["metrics"][first] - b1["metrics"][first]) if dense else float("nan")
            speed = [f"{r['speedup']:.2f}x" if "speedup" in r else "1.00x" for r in (b1, b32)]
            print(f"| {task} | {name} | {metrics} | {loss:.2f} | {b1['flops_ratio']:.2f}x | {speed[0]} | {speed[1]} |")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(Path(sys.argv[1]))
