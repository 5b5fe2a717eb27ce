#!/usr/bin/python3
"""PyTorch peer of `edgebert bench train`: the time of one full training step of a BERT sequence
classifier in PyTorch (Debian's python3-torch 1.13, CPU).

  torch_train_bench.py --shape mini|tiny|base --seq 128 --batch 32 --threads T [--seconds X]
                       [--warmup N] [--attention-dropout P] [--json]

One step = forward with dropout 0.1 + cross-entropy + backward + AdamW (weight decay 0.01, none on
biases and LayerNorm weights) + zero_grad, on random token ids and labels, random init with the
shapes of tools/torch_peer.py (BertConfig.ForShape), exact erf GELU, 2 labels. After --warmup steps,
steps are timed one by one until --seconds have passed (at least 3); prints the best and median.
--json: {"seq","batch","threads","steps","ms_per_step","median_ms","tokens_per_s","median_tokens_per_s"}
(ms_per_step and tokens_per_s are the best step, as in `edgebert bench train --json`).

Dropout sits where EdgeBert's training graph has it (embeddings, attention output, FFN output,
pooler); HuggingFace also drops attention probabilities (attention_probs_dropout_prob), which
EdgeBert does not: --attention-dropout 0.1 adds it to measure what it costs.

Run it with Debian's /usr/bin/python3. The thread environment is set here before torch loads:
OMP_NUM_THREADS/OPENBLAS_NUM_THREADS = threads, OMP_WAIT_POLICY=PASSIVE (Debian's pthread OpenBLAS
and PyTorch's OpenMP threads otherwise spin against each other on 2 cores) and OPENBLAS_CORETYPE
(without it OpenBLAS on this VM falls back to SSE3 kernels); values already set win.
"""
import argparse
import json
import math
import os
import statistics
import sys
import time


def cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def set_thread_environment(threads):
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    os.environ.setdefault("OPENBLAS_NUM_THREADS", str(threads))
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    flags = cpu_flags()
    if "avx512f" in flags:
        os.environ.setdefault("OPENBLAS_CORETYPE", "SkylakeX")
    elif "avx2" in flags:
        os.environ.setdefault("OPENBLAS_CORETYPE", "Haswell")


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shape", choices=["base", "mini", "tiny"], required=True)
    p.add_argument("--seq", type=int, required=True)
    p.add_argument("--batch", type=int, required=True)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--attention-dropout", type=float, default=0.0)
    p.add_argument("--json", action="store_true")
    return p.parse_args()


args = parse_args()
set_thread_environment(args.threads)

import torch  # noqa: E402  (after the thread environment)
from torch import nn  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_peer import SHAPES, Config, init_weights  # noqa: E402


# --- HuggingFace BertForSequenceClassification in training mode (dropout), same names and math as
# torch_peer.py's inference module ---

class Embeddings(nn.Module):
    def __init__(self, c, p):
        super().__init__()
        self.word_embeddings = nn.Embedding(c.vocab_size, c.hidden_size)
        self.position_embeddings = nn.Embedding(c.max_position_embeddings, c.hidden_size)
        self.token_type_embeddings = nn.Embedding(c.type_vocab_size, c.hidden_size)
        self.LayerNorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.dropout = nn.Dropout(p)
        self.register_buffer("position_ids", torch.arange(c.max_position_embeddings).unsqueeze(0), persistent=False)

    def forward(self, input_ids, token_type_ids):
        positions = self.position_ids[:, : input_ids.size(1)]
        x = (self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)
             + self.position_embeddings(positions))
        return self.dropout(self.LayerNorm(x))


class SelfAttention(nn.Module):
    def __init__(self, c, attention_p):
        super().__init__()
        self.heads, self.head_dim = c.num_attention_heads, c.hidden_size // c.num_attention_heads
        self.query = nn.Linear(c.hidden_size, c.hidden_size)
        self.key = nn.Linear(c.hidden_size, c.hidden_size)
        self.value = nn.Linear(c.hidden_size, c.hidden_size)
        self.dropout = nn.Dropout(attention_p) if attention_p > 0 else nn.Identity()

    def split_heads(self, x):
        return x.view(x.size()[:-1] + (self.heads, self.head_dim)).permute(0, 2, 1, 3)

    def forward(self, x, mask):
        q, k, v = self.split_heads(self.query(x)), self.split_heads(self.key(x)), self.split_heads(self.value(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.head_dim) + mask
        probabilities = self.dropout(nn.functional.softmax(scores, dim=-1))
        context = torch.matmul(probabilities, v).permute(0, 2, 1, 3).contiguous()
        return context.view(context.size()[:-2] + (self.heads * self.head_dim,))


class DenseAddNorm(nn.Module):
    """LayerNorm(dropout(dense(x)) + residual): BertSelfOutput and BertOutput (post-LN)."""

    def __init__(self, c, inner, p):
        super().__init__()
        self.dense = nn.Linear(inner, c.hidden_size)
        self.dropout = nn.Dropout(p)
        self.LayerNorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)

    def forward(self, x, residual):
        return self.LayerNorm(self.dropout(self.dense(x)) + residual)


class Layer(nn.Module):
    def __init__(self, c, p, attention_p):
        super().__init__()
        self.attention = SelfAttention(c, attention_p)
        self.attention_output = DenseAddNorm(c, c.hidden_size, p)
        self.intermediate = nn.Linear(c.hidden_size, c.intermediate_size)
        self.output = DenseAddNorm(c, c.intermediate_size, p)

    def forward(self, x, mask):
        a = self.attention_output(self.attention(x, mask), x)
        return self.output(nn.functional.gelu(self.intermediate(a)), a)  # exact erf GELU


class BertForSequenceClassification(nn.Module):
    def __init__(self, c, p, attention_p):
        super().__init__()
        self.embeddings = Embeddings(c, p)
        self.layers = nn.ModuleList(Layer(c, p, attention_p) for _ in range(c.num_hidden_layers))
        self.pooler = nn.Linear(c.hidden_size, c.hidden_size)
        self.dropout = nn.Dropout(p)
        self.classifier = nn.Linear(c.hidden_size, c.num_labels)

    def forward(self, input_ids, attention_mask, token_type_ids):
        # HF's extended mask: 0 where attended, the most negative float where masked.
        mask = (1.0 - attention_mask[:, None, None, :].to(torch.float32)) * torch.finfo(torch.float32).min
        x = self.embeddings(input_ids, token_type_ids)
        for layer in self.layers:
            x = layer(x, mask)
        return self.classifier(self.dropout(torch.tanh(self.pooler(x[:, 0]))))


def build(c):
    torch.manual_seed(1)
    model = BertForSequenceClassification(c, args.dropout, args.attention_dropout)
    init_weights(model, c)
    return model.train()


def main():
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    c = Config(SHAPES[args.shape])
    if args.seq > c.max_position_embeddings:
        sys.exit(f"error: --seq {args.seq} exceeds max_position_embeddings {c.max_position_embeddings}")
    model = build(c)
    no_decay = [p for n, p in model.named_parameters() if n.endswith("bias") or "LayerNorm" in n]
    decay = [p for n, p in model.named_parameters() if not (n.endswith("bias") or "LayerNorm" in n)]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=1e-5)
    generator = torch.Generator().manual_seed(3)
    ids = torch.randint(0, c.vocab_size, (args.batch, args.seq), generator=generator)
    labels = torch.randint(0, c.num_labels, (args.batch,), generator=generator)
    mask, types = torch.ones_like(ids), torch.zeros_like(ids)
    loss_function = nn.CrossEntropyLoss()

    def step():
        loss = loss_function(model(ids, mask, types), labels)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    for _ in range(args.warmup):
        step()
    times = []
    total = time.perf_counter()
    while time.perf_counter() - total < args.seconds or len(times) < 3:
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    best, median = min(times), statistics.median(times)
    tokens = args.seq * args.batch
    if args.json:
        print(json.dumps({"seq": args.seq, "batch": args.batch, "threads": torch.get_num_threads(), "steps": len(times),
                          "ms_per_step": round(best * 1e3, 3), "median_ms": round(median * 1e3, 3),
                          "tokens_per_s": round(tokens / best, 1), "median_tokens_per_s": round(tokens / median, 1)}))
    else:
        print(f"torch train step seq={args.seq} batch={args.batch} threads={torch.get_num_threads()}: "
              f"best {best * 1e3:.2f} ms ({tokens / best:.0f} tokens/s), median {median * 1e3:.2f} ms "
              f"over {len(times)} steps")


if __name__ == "__main__":
    main()
