#!/usr/bin/python3
"""PyTorch peer of EdgeBert: a BertForSequenceClassification with HuggingFace's exact math, written
here because transformers is not installed (Debian's python3-torch and python3-onnx are enough).

  torch_peer.py export (--model DIR | --shape base|mini|tiny [--seed N]) --out model.onnx [--opset 14]
      Writes an ONNX graph with inputs input_ids, attention_mask, token_type_ids (int64, [batch, seq],
      both axes dynamic) and outputs logits [batch, labels] (when the model has a classifier) and
      last_hidden_state [batch, seq, hidden].
  torch_peer.py serve --model DIR --inputs FILE --threads T
      The timing peer of `EdgeBert.Benchmarks peers`. FILE is JSON {"input_ids": [[...]],
      "token_type_ids": [[...]]}. Prints one JSON line with the outputs, then answers each stdin line
      "time N" with one JSON line {"ms": [...]} (N forward passes, each timed here) until "quit".

Run it with Debian's /usr/bin/python3 (a version-managed python3 earlier on PATH lacks the packages).
On 2 threads set OMP_WAIT_POLICY=PASSIVE: Debian's pthread OpenBLAS and PyTorch's OpenMP threads
otherwise spin against each other on a 2-core machine.
"""
import argparse
import json
import math
import os
import sys
import time

import torch
from torch import nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
from edgebert_torch.checkpoint import load_tensors  # noqa: E402

SHAPES = {  # the shapes of BertConfig.ForShape in EdgeBert.Model
    "base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
    "mini": dict(hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024),
    "tiny": dict(hidden_size=128, num_hidden_layers=2, num_attention_heads=2, intermediate_size=512),
}
DEFAULTS = dict(vocab_size=30522, hidden_act="gelu", max_position_embeddings=512, type_vocab_size=2,
                layer_norm_eps=1e-12, initializer_range=0.02)


class Config:
    def __init__(self, d):
        merged = {**DEFAULTS, **d}
        self.vocab_size = merged["vocab_size"]
        self.hidden_size = merged["hidden_size"]
        self.num_hidden_layers = merged["num_hidden_layers"]
        self.num_attention_heads = merged["num_attention_heads"]
        self.intermediate_size = merged["intermediate_size"]
        self.max_position_embeddings = merged["max_position_embeddings"]
        self.type_vocab_size = merged["type_vocab_size"]
        self.layer_norm_eps = float(merged["layer_norm_eps"])
        self.initializer_range = merged["initializer_range"]
        self.num_labels = len(d["id2label"]) if "id2label" in d else d.get("num_labels", 2)
        if merged["hidden_act"] not in ("gelu", "gelu_python"):
            sys.exit(f"error: hidden_act '{merged['hidden_act']}' is not the exact erf GELU")


# --- the model: HuggingFace BertForSequenceClassification's math, eval mode (no dropout) ---

class Embeddings(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.word_embeddings = nn.Embedding(c.vocab_size, c.hidden_size)
        self.position_embeddings = nn.Embedding(c.max_position_embeddings, c.hidden_size)
        self.token_type_embeddings = nn.Embedding(c.type_vocab_size, c.hidden_size)
        self.LayerNorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.register_buffer("position_ids", torch.arange(c.max_position_embeddings).unsqueeze(0), persistent=False)

    def forward(self, input_ids, token_type_ids):
        positions = self.position_ids[:, : input_ids.size(1)]
        x = (self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)
             + self.position_embeddings(positions))
        return self.LayerNorm(x)


class SelfAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.heads, self.head_dim = c.num_attention_heads, c.hidden_size // c.num_attention_heads
        self.query = nn.Linear(c.hidden_size, c.hidden_size)
        self.key = nn.Linear(c.hidden_size, c.hidden_size)
        self.value = nn.Linear(c.hidden_size, c.hidden_size)

    def split_heads(self, x):
        return x.view(x.size()[:-1] + (self.heads, self.head_dim)).permute(0, 2, 1, 3)

    def forward(self, x, mask):
        q, k, v = self.split_heads(self.query(x)), self.split_heads(self.key(x)), self.split_heads(self.value(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.head_dim) + mask
        context = torch.matmul(nn.functional.softmax(scores, dim=-1), v).permute(0, 2, 1, 3).contiguous()
        return context.view(context.size()[:-2] + (self.heads * self.head_dim,))


class DenseAddNorm(nn.Module):
    """LayerNorm(dense(x) + residual): BertSelfOutput and BertOutput (post-LN)."""

    def __init__(self, c, inner):
        super().__init__()
        self.dense = nn.Linear(inner, c.hidden_size)
        self.LayerNorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)

    def forward(self, x, residual):
        return self.LayerNorm(self.dense(x) + residual)


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.self = SelfAttention(c)
        self.output = DenseAddNorm(c, c.hidden_size)

    def forward(self, x, mask):
        return self.output(self.self(x, mask), x)


class Intermediate(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c.hidden_size, c.intermediate_size)

    def forward(self, x):
        return nn.functional.gelu(self.dense(x))  # exact erf GELU, as hidden_act "gelu"


class Layer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.attention = Attention(c)
        self.intermediate = Intermediate(c)
        self.output = DenseAddNorm(c, c.intermediate_size)

    def forward(self, x, mask):
        a = self.attention(x, mask)
        return self.output(self.intermediate(a), a)


class Encoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.layer = nn.ModuleList(Layer(c) for _ in range(c.num_hidden_layers))

    def forward(self, x, mask):
        for layer in self.layer:
            x = layer(x, mask)
        return x


class Pooler(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c.hidden_size, c.hidden_size)

    def forward(self, hidden):
        return torch.tanh(self.dense(hidden[:, 0]))


class BertModel(nn.Module):
    def __init__(self, c, pooler):
        super().__init__()
        self.embeddings = Embeddings(c)
        self.encoder = Encoder(c)
        self.pooler = Pooler(c) if pooler else None

    def forward(self, input_ids, attention_mask, token_type_ids):
        # HF's extended mask: 0 where attended, the most negative float where masked.
        mask = (1.0 - attention_mask[:, None, None, :].to(torch.float32)) * torch.finfo(torch.float32).min
        return self.encoder(self.embeddings(input_ids, token_type_ids), mask)


class BertForSequenceClassification(nn.Module):
    def __init__(self, c, classifier=True):
        super().__init__()
        self.bert = BertModel(c, pooler=classifier)
        self.classifier = nn.Linear(c.hidden_size, c.num_labels) if classifier else None

    def forward(self, input_ids, attention_mask, token_type_ids):
        hidden = self.bert(input_ids, attention_mask, token_type_ids)
        if self.classifier is None:
            return (hidden,)
        return self.classifier(self.bert.pooler(hidden)), hidden


# --- loading ---

def load_model(directory):
    with open(os.path.join(directory, "config.json")) as f:
        c = Config(json.load(f))
    tensors = load_tensors(directory)
    model = BertForSequenceClassification(c, classifier="classifier.weight" in tensors)
    state = model.state_dict()
    missing = [k for k in state if k not in tensors]
    if missing:
        sys.exit(f"error: {directory}: missing tensors {missing[:5]}")
    # Gates, MLM head and NSP head tensors are not part of the dense classifier forward pass.
    model.load_state_dict({k: tensors[k] for k in state})
    return model.eval()


def init_weights(model, c):
    """HuggingFace's BERT initialisation: N(0, initializer_range) weights, zero biases, LayerNorm 1/0."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "LayerNorm" in name:
                p.fill_(1.0 if name.endswith("weight") else 0.0)
            elif name.endswith("weight"):
                p.normal_(0.0, c.initializer_range)
            else:
                p.zero_()


def random_model(shape, seed):
    c = Config(SHAPES[shape])
    torch.manual_seed(seed)
    model = BertForSequenceClassification(c)
    init_weights(model, c)
    return model.eval()


# --- subcommands ---

def export(args):
    model = load_model(args.model) if args.model else random_model(args.shape, args.seed)
    ids = torch.randint(0, model.bert.embeddings.word_embeddings.num_embeddings, (2, 16))
    inputs = (ids, torch.ones_like(ids), torch.zeros_like(ids))
    outputs = ["last_hidden_state"] if model.classifier is None else ["logits", "last_hidden_state"]
    axes = {name: {0: "batch", 1: "sequence"}
            for name in ("input_ids", "attention_mask", "token_type_ids", "last_hidden_state")}
    axes["logits"] = {0: "batch"}
    with torch.no_grad():
        torch.onnx.export(model, inputs, args.out, input_names=["input_ids", "attention_mask", "token_type_ids"],
                          output_names=outputs, dynamic_axes=axes, opset_version=args.opset, do_constant_folding=True)
    import onnx  # after export: only to check the file
    onnx.checker.check_model(args.out)
    print(f"wrote {args.out} (opset {args.opset}, outputs {', '.join(outputs)})", file=sys.stderr)


def serve(args):
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    model = load_model(args.model)
    with open(args.inputs) as f:
        batch = json.load(f)
    ids = torch.tensor(batch["input_ids"], dtype=torch.int64)
    types = torch.tensor(batch["token_type_ids"], dtype=torch.int64)
    mask = torch.ones_like(ids)
    with torch.inference_mode():
        out = model(ids, mask, types)
        reply = {"threads": torch.get_num_threads(), "last_hidden_state": out[-1].flatten().tolist()}
        if model.classifier is not None:
            reply["logits"] = out[0].flatten().tolist()
        print(json.dumps(reply), flush=True)
        for line in sys.stdin:
            words = line.split()
            if not words or words[0] == "quit":
                break
            times = []
            for _ in range(int(words[1])):
                start = time.perf_counter()
                model(ids, mask, types)
                times.append((time.perf_counter() - start) * 1e3)
            print(json.dumps({"ms": times}), flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    e = sub.add_parser("export", help="write an ONNX graph of a model directory or a random model")
    src = e.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", help="HF layout directory: config.json + model.safetensors")
    src.add_argument("--shape", choices=sorted(SHAPES), help="random weights of a named shape")
    e.add_argument("--seed", type=int, default=1)
    e.add_argument("--out", required=True)
    e.add_argument("--opset", type=int, default=14)
    s = sub.add_parser("serve", help="time forward passes on request (stdin/stdout JSON lines)")
    s.add_argument("--model", required=True)
    s.add_argument("--inputs", required=True)
    s.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    export(args) if args.command == "export" else serve(args)


if __name__ == "__main__":
    main()
