#!/usr/bin/python3
"""Writes tests/fixtures/onnx_tiny: a tiny random BERT (torch_peer.py's BertModel, no pooler) exported by
torch.onnx.export in the two forms real exports come in, and its float64 forward for a few inputs.

  named.onnx      do_constant_folding=False, opset 17: every weight keeps its HF name (MatMul reads a
                  Transpose of the [out, in] weight); LayerNorm is one LayerNormalization node.
  anonymous.onnx  do_constant_folding=True, opset 14: torch folds each Transpose into a new [in, out]
                  initializer with a generated name (as in the all-MiniLM-L6-v2 NuGet export); LayerNorm
                  is decomposed (ReduceMean, Pow, Add epsilon, Sqrt, Div).
  expected.json   config, inputs and the float64 last_hidden_state of each input (batch of one).

Run with Debian's /usr/bin/python3 (python3-torch, python3-onnx): /usr/bin/python3 tools/make_onnx_fixture.py
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_peer  # noqa: E402  (the project's plain-torch BERT)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "onnx_tiny")
VOCAB = os.path.join(ROOT, "tests", "fixtures", "tiny_bert", "vocab.txt")
INPUTS = [
    ([2, 39, 51, 41, 35, 70, 3], [0, 0, 0, 0, 0, 0, 0]),  # "you love this film !"
    ([2, 7, 3, 90, 91, 100, 105, 3], [0, 0, 0, 1, 1, 1, 1, 1]),
    ([2, 3], [0, 0]),
]


def main():
    with open(VOCAB, encoding="utf-8") as f:
        vocab_size = sum(1 for _ in f)
    config = dict(vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                  intermediate_size=64, max_position_embeddings=64, type_vocab_size=2, layer_norm_eps=1e-12,
                  hidden_act="gelu")
    c = torch_peer.Config(config)
    torch.manual_seed(21)
    model = torch_peer.BertModel(c, pooler=False).eval()
    # Non-zero biases and LayerNorm parameters, so that a bias or LayerNorm mapped to the wrong place shows.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "LayerNorm.weight" in name:
                p.copy_(1 + 0.1 * torch.randn_like(p))
            else:
                p.copy_((0.3 if name.endswith("weight") else 0.1) * torch.randn_like(p))
    os.makedirs(OUT, exist_ok=True)
    ids = torch.tensor([INPUTS[1][0]])
    args = (ids, torch.ones_like(ids), torch.zeros_like(ids))
    names = ["input_ids", "attention_mask", "token_type_ids"]
    axes = {n: {0: "batch", 1: "sequence"} for n in names + ["last_hidden_state"]}
    for file, opset, folding in (("named.onnx", 17, False), ("anonymous.onnx", 14, True)):
        path = os.path.join(OUT, file)
        torch.onnx.export(model, args, path, input_names=names, output_names=["last_hidden_state"],
                          dynamic_axes=axes, opset_version=opset, do_constant_folding=folding, export_params=True)
        import onnx  # only to check what torch wrote
        onnx.checker.check_model(path)
    reference = model.double()
    expected = []
    with torch.no_grad():
        for input_ids, types in INPUTS:
            i = torch.tensor([input_ids])
            hidden = reference(i, torch.ones_like(i), torch.tensor([types]))
            expected.append(dict(input_ids=input_ids, token_type_ids=types,
                                 last_hidden_state=hidden[0].flatten().tolist()))
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(dict(config=config, sequences=expected), f)
        f.write("\n")
    print(f"wrote {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
