"""The PyTorch side of the equivalence tests against EdgeBert (tests/EdgeBert.Tests/TorchEquivalenceTests.cs):

  python3 -m edgebert_torch.check infer --model DIR --input IN.jsonl [--batch-size 8]
      One JSON line per input line {"logits": [..], "kept": [..]} from the hard-gated forward. Input lines are
      {"input_ids": [..], "token_type_ids": [..]} or {"text": "..", "text_pair": ".."} (tokenized with vocab.txt).
  python3 -m edgebert_torch.check grads --model DIR --input IN.jsonl --out FILE.safetensors
                                  [--lambda X] [--mu X]
      One soft forward and backward (no dropout) of the batch with the lines' "label": writes the loss, the
      regularizers, the gradient of every parameter (as "grad.NAME") and each gated layer's ranks.
"""
import argparse
import json
import os

import torch

from . import checkpoint, wordpiece
from .model import from_pretrained, gate_bimodal, gate_l1, pad_batch


def read_inputs(path, model_dir, max_length):
    vocab = None
    sequences, lines = [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            item = json.loads(line)
            if "input_ids" not in item:
                vocab = vocab or wordpiece.read_vocab(os.path.join(model_dir, checkpoint.VOCAB_FILE))
                item.update(wordpiece.encode(item["text"], item.get("text_pair"), max_length, vocab))
            ids = item["input_ids"]
            sequences.append((ids, item.get("token_type_ids") or [0] * len(ids)))
            lines.append(item)
    return sequences, lines


def infer(args):
    model = from_pretrained(args.model).eval()
    sequences, _ = read_inputs(args.input, args.model, model.config["max_position_embeddings"])
    for start in range(0, len(sequences), args.batch_size):
        logits, kept = model.hard_forward(*pad_batch(sequences[start:start + args.batch_size]))
        for row, k in zip(logits.tolist(), kept.tolist()):
            print(json.dumps({"logits": row, "kept": k}))


def grads(args):
    model = from_pretrained(args.model).eval()
    sequences, lines = read_inputs(args.input, args.model, model.config["max_position_embeddings"])
    logits, ranks = model(*pad_batch(sequences))
    task = torch.nn.functional.cross_entropy(logits, torch.tensor([item["label"] for item in lines]))
    l1, bimodal = gate_l1(model.gates), gate_bimodal(model.gates)
    loss = task + args.lam * l1 + args.mu * bimodal
    loss.backward()
    out = {"loss": loss.detach().reshape(1), "task_loss": task.detach().reshape(1), "l1": l1.detach().reshape(1),
           "bimodal": bimodal.detach().reshape(1)}
    out.update({f"grad.{name}": p.grad for name, p in model.named_parameters() if p.grad is not None})
    lengths = [len(ids) for ids, _ in sequences]
    for j, r in enumerate(ranks):
        # Packed like EdgeBert's batches: sequence after sequence, no padding.
        out[f"ranks.{j}"] = torch.cat([r[i, :n] for i, n in enumerate(lengths)]).to(torch.float32)
    checkpoint.write_safetensors(args.out, out)


def main():
    torch.set_num_threads(1)
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    i = sub.add_parser("infer")
    i.add_argument("--model", required=True)
    i.add_argument("--input", required=True)
    i.add_argument("--batch-size", type=int, default=8)
    g = sub.add_parser("grads")
    g.add_argument("--model", required=True)
    g.add_argument("--input", required=True)
    g.add_argument("--out", required=True)
    g.add_argument("--lambda", dest="lam", type=float, default=0.0)
    g.add_argument("--mu", type=float, default=0.0)
    args = p.parse_args()
    infer(args) if args.command == "infer" else grads(args)


if __name__ == "__main__":
    main()
