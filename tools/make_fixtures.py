#!/usr/bin/python3
"""Builds the tiny-BERT parity fixtures in tests/fixtures (run from the repository root with
Debian's python3, which has python3-torch):

    /usr/bin/python3 tools/make_fixtures.py

Writes
  tests/fixtures/tiny_bert/        config.json, vocab.txt, tokenizer_config.json, model.safetensors (F32,
                                   BertForSequenceClassification names, plus an I64 embeddings.position_ids
                                   buffer as older HF checkpoints carry)
  tests/fixtures/tiny_bert_f16/    the same weights stored as F16, header not padded (unaligned data)
  tests/fixtures/tiny_bert_expected.json
                                   per-tensor checks (shape, first values, float64 sums) of the stored weights,
                                   inputs (texts, pairs, id sequences of lengths 1..max_position) and the
                                   float64 logits, pooled output and last hidden states of a float64
                                   forward pass, for the F32 weights and for the F16-rounded weights.
  tests/fixtures/tiny_bert_gated/  a 4-layer model of the same family (own seed) with F32 gate vectors
                                   `bert.encoder.layer.{j}.gate` [gate_positions=48] giving m_j = 22, 12, 6, 3
  tests/fixtures/tiny_bert_gated_expected.json
                                   inputs of 1..64 tokens with the dense and the hard-gated (METHOD.md 2-4)
                                   float64 logits and final hidden states, kept counts and original positions
                                   per layer, multiply-adds performed, and the relative significance margin
                                   at every keep/drop boundary (inputs are drawn until it is >= 1e-3).

The model is HuggingFace BertForSequenceClassification's math written directly in PyTorch (no
transformers package on Debian): embeddings LayerNorm(word + position + token_type), post-LN
layers with exact erf GELU, LayerNorm eps 1e-12 with biased variance, attention softmax(QK^T/sqrt(d)
+ key mask)V, pooler tanh(dense(h[CLS])), classifier on the pooled vector. The seed is fixed, so
the files are reproducible.
"""
import json
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hf_wordpiece_reference as ref  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
from edgebert_torch.checkpoint import write_safetensors  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures")
WORDS = ("the a an cat dog bird sat ran flew on in under mat tree house happy sad big small red blue "
         "is was and or not very good bad movie film great terrible i you it this that to of play "
         "run walk jump see saw love hate day night time old new").split()
PIECES = ["##s", "##ing", "##ed", "##er", "##ly", "##y", "##e", "##a", "##o", "##n"]
PUNCT = list(".,!?'\"()-:;$")
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS + PIECES + PUNCT + list("abcdefghijklmnopqrstuvwxyz")
CONFIG = dict(
    architectures=["BertForSequenceClassification"], model_type="bert", vocab_size=len(VOCAB), hidden_size=32,
    num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, hidden_act="gelu",
    max_position_embeddings=64, type_vocab_size=2, layer_norm_eps=1e-12, pad_token_id=0,
    hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1, initializer_range=0.02,
    id2label={"0": "negative", "1": "neutral", "2": "positive"},
    label2id={"negative": 0, "neutral": 1, "positive": 2},
    problem_type="single_label_classification", custom_unknown_key={"kept": [1, 2, 3]},
)


def make_weights(gen, c=CONFIG):
    h, f, v, p, t, labels = (c["hidden_size"], c["intermediate_size"], c["vocab_size"],
                             c["max_position_embeddings"], c["type_vocab_size"], len(c["id2label"]))

    # Scales well above BERT's 0.02 init so every nonlinearity is exercised and errors show.
    def rnd(*shape, scale=0.3):
        return torch.randn(*shape, generator=gen, dtype=torch.float64) * scale

    def ln():
        return 1.0 + rnd(h, scale=0.1), rnd(h, scale=0.1)

    w = {}
    e = "bert.embeddings."
    w[e + "word_embeddings.weight"] = rnd(v, h, scale=0.5)
    w[e + "position_embeddings.weight"] = rnd(p, h, scale=0.2)
    w[e + "token_type_embeddings.weight"] = rnd(t, h, scale=0.2)
    w[e + "LayerNorm.weight"], w[e + "LayerNorm.bias"] = ln()
    for j in range(c["num_hidden_layers"]):
        q = f"bert.encoder.layer.{j}."
        for name in ("query", "key", "value"):
            w[q + f"attention.self.{name}.weight"] = rnd(h, h, scale=1 / math.sqrt(h) * 1.5)
            w[q + f"attention.self.{name}.bias"] = rnd(h, scale=0.1)
        w[q + "attention.output.dense.weight"] = rnd(h, h, scale=1 / math.sqrt(h))
        w[q + "attention.output.dense.bias"] = rnd(h, scale=0.1)
        w[q + "attention.output.LayerNorm.weight"], w[q + "attention.output.LayerNorm.bias"] = ln()
        w[q + "intermediate.dense.weight"] = rnd(f, h, scale=1 / math.sqrt(h))
        w[q + "intermediate.dense.bias"] = rnd(f, scale=0.1)
        w[q + "output.dense.weight"] = rnd(h, f, scale=1 / math.sqrt(f))
        w[q + "output.dense.bias"] = rnd(h, scale=0.1)
        w[q + "output.LayerNorm.weight"], w[q + "output.LayerNorm.bias"] = ln()
    w["bert.pooler.dense.weight"] = rnd(h, h, scale=1 / math.sqrt(h))
    w["bert.pooler.dense.bias"] = rnd(h, scale=0.1)
    w["classifier.weight"] = rnd(labels, h, scale=1 / math.sqrt(h))
    w["classifier.bias"] = rnd(labels, scale=0.1)
    return w


def layer_norm(x, weight, bias, eps):
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)  # biased variance, eps inside the sqrt
    return (x - mean) / torch.sqrt(var + eps) * weight + bias


def gelu(x):
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def forward(w, ids, types, mask=None, c=CONFIG):
    """ids, types: [batch, n] long; mask: [batch, n] with 1 for real tokens. Returns hidden, pooled, logits."""
    eps, heads, h = c["layer_norm_eps"], c["num_attention_heads"], c["hidden_size"]
    d = h // heads
    b, n = ids.shape
    if mask is None:
        mask = torch.ones(b, n, dtype=torch.float64)
    lin = lambda x, name: x @ w[name + ".weight"].T + w[name + ".bias"]  # noqa: E731  nn.Linear: x W^T + b
    e = "bert.embeddings."
    x = w[e + "word_embeddings.weight"][ids] + w[e + "position_embeddings.weight"][torch.arange(n)] \
        + w[e + "token_type_embeddings.weight"][types]
    x = layer_norm(x, w[e + "LayerNorm.weight"], w[e + "LayerNorm.bias"], eps)
    key_mask = (1.0 - mask)[:, None, None, :] * torch.finfo(torch.float64).min
    for j in range(c["num_hidden_layers"]):
        q = f"bert.encoder.layer.{j}."
        split = lambda t: t.view(b, n, heads, d).transpose(1, 2)  # noqa: E731  heads are contiguous slices
        qh = split(lin(x, q + "attention.self.query"))
        kh = split(lin(x, q + "attention.self.key"))
        vh = split(lin(x, q + "attention.self.value"))
        probs = torch.softmax(qh @ kh.transpose(-1, -2) / math.sqrt(d) + key_mask, dim=-1)
        ctx = (probs @ vh).transpose(1, 2).reshape(b, n, h)
        a = layer_norm(lin(ctx, q + "attention.output.dense") + x,
                       w[q + "attention.output.LayerNorm.weight"], w[q + "attention.output.LayerNorm.bias"], eps)
        y = lin(gelu(lin(a, q + "intermediate.dense")), q + "output.dense")
        x = layer_norm(y + a, w[q + "output.LayerNorm.weight"], w[q + "output.LayerNorm.bias"], eps)
    pooled = torch.tanh(lin(x[:, 0], "bert.pooler.dense"))
    return x, pooled, lin(pooled, "classifier")


def write_model_dir(name, weights, dtype, pad_header, extra=None, config=CONFIG):
    d = os.path.join(ROOT, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    with open(os.path.join(d, "vocab.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(VOCAB) + "\n")
    with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
        json.dump({"do_lower_case": True, "model_max_length": CONFIG["max_position_embeddings"],
                   "tokenizer_class": "BertTokenizer"}, f, indent=2)
        f.write("\n")
    tensors = dict(weights, **{name: t for name, (t, _) in (extra or {}).items()})
    dtypes = dict({name: dtype for name in weights}, **{name: dt for name, (_, dt) in (extra or {}).items()})
    write_safetensors(os.path.join(d, "model.safetensors"), tensors, dtypes, pad_header)


# ---------------------------------------------------------------------------------------------
# Gated variant (METHOD.md points 2-4, 9): a 4-layer model of the same shape family with
# `bert.encoder.layer.{j}.gate` vectors, and the float64 hard-elimination forward pass written
# here independently of the engine: one sequence at a time, no padding, explicit sort.
GATED_CONFIG = dict(CONFIG, num_hidden_layers=4, gate_positions=48)
del GATED_CONFIG["custom_unknown_key"]
GATE_COUNTS = [22, 12, 6, 3]  # gates >= 0.5 per layer; all different, non-increasing
GATE_THRESHOLD = 0.5
# Relative gap between the last kept and the first dropped significance that an input must have to
# be used: float32 rounding in the engine moves significance by ~1e-6 relative, so a gap this wide
# cannot flip the kept set. The fixture asserts every case is above MIN_MARGIN.
ACCEPT_MARGIN, MIN_MARGIN = 1e-3, 1e-4


def make_gates(gen, count, positions):
    """A gate vector of `positions` values with exactly `count` >= 0.5, including the edge values
    0.5 (kept: the threshold is inclusive) and 0.49999 (dropped), in random rank order."""
    high = [0.5, 1.0] + (0.5 + 0.5 * torch.rand(count - 2, generator=gen, dtype=torch.float64)).tolist()
    low = [0.49999, 0.0] + (0.49 * torch.rand(positions - count - 2, generator=gen, dtype=torch.float64)).tolist()
    values = torch.tensor(high + low, dtype=torch.float64)
    return values[torch.randperm(positions, generator=gen)]


def kept_counts_from_gates(gates, threshold):
    """m_j = count of gates >= threshold, forced non-increasing and at least 1."""
    counts, previous = [], None
    for g in gates:
        m = max(int((g >= threshold).sum().item()), 1)
        if previous is not None:
            m = min(m, previous)
        counts.append(m)
        previous = m
    return counts


def hard_gated_forward(w, c, ids, types, kept_counts):
    """One sequence (lists of ids and token types). kept_counts None runs dense. Returns logits,
    final hidden rows (kept tokens only), kept count and original positions per layer, the smallest
    relative significance margin at a keep/drop boundary, and the multiply-adds performed."""
    eps, heads, h = c["layer_norm_eps"], c["num_attention_heads"], c["hidden_size"]
    d = h // heads
    macs = 0

    def lin(x, name):  # x [rows, in]
        nonlocal macs
        weight = w[name + ".weight"]
        macs += x.shape[0] * weight.shape[0] * weight.shape[1]
        return x @ weight.T + w[name + ".bias"]

    n = len(ids)
    e = "bert.embeddings."
    x = (w[e + "word_embeddings.weight"][torch.tensor(ids)] + w[e + "position_embeddings.weight"][:n]
         + w[e + "token_type_embeddings.weight"][torch.tensor(types)])
    x = layer_norm(x, w[e + "LayerNorm.weight"], w[e + "LayerNorm.bias"], eps)
    positions = list(range(n))
    kept, survivors, margin = [], [], math.inf
    for j in range(c["num_hidden_layers"]):
        q = f"bert.encoder.layer.{j}."
        rows = x.shape[0]
        heads_of = lambda t: t.reshape(rows, heads, d).permute(1, 0, 2)  # noqa: E731  [heads, rows, d]
        qh = heads_of(lin(x, q + "attention.self.query"))
        kh = heads_of(lin(x, q + "attention.self.key"))
        vh = heads_of(lin(x, q + "attention.self.value"))
        probs = torch.softmax(qh @ kh.transpose(1, 2) / math.sqrt(d), dim=-1)  # [heads, query, key]
        ctx = (probs @ vh).permute(1, 0, 2).reshape(rows, h)
        macs += 2 * heads * rows * rows * d
        a = layer_norm(lin(ctx, q + "attention.output.dense") + x,
                       w[q + "attention.output.LayerNorm.weight"], w[q + "attention.output.LayerNorm.bias"], eps)
        if kept_counts is not None and rows > kept_counts[j]:
            m = kept_counts[j]
            # Attention each token receives from the other tokens, summed over heads and queries.
            received = (probs * (1.0 - torch.eye(rows, dtype=torch.float64))).sum(dim=(0, 1)).tolist()
            ranked = sorted(range(rows), key=lambda t: (t != 0, -received[t], t))  # [CLS] first, ties: lower position
            if m >= 2:
                last_kept, first_dropped = received[ranked[m - 1]], received[ranked[m]]
                margin = min(margin, (last_kept - first_dropped) / last_kept)
            keep = sorted(ranked[:m])
            a = a[keep]
            positions = [positions[t] for t in keep]
        kept.append(len(positions))
        survivors.append(list(positions))
        y = lin(gelu(lin(a, q + "intermediate.dense")), q + "output.dense")
        x = layer_norm(y + a, w[q + "output.LayerNorm.weight"], w[q + "output.LayerNorm.bias"], eps)
    pooled = torch.tanh(lin(x[:1], "bert.pooler.dense"))
    logits = lin(pooled, "classifier")[0]
    return {"logits": logits.tolist(), "last_hidden_state": x.tolist(), "kept": kept, "survivors": survivors,
            "margin": margin, "multiply_adds": macs}


def rounded(value, digits=10):
    """Shorter JSON: 10 significant digits are far below the 1e-4 tolerance of the tests."""
    if isinstance(value, float):
        return float(f"{value:.{digits}g}")
    if isinstance(value, list):
        return [rounded(v, digits) for v in value]
    return value


def make_gated(vocab, texts):
    c = GATED_CONFIG
    gen = torch.Generator().manual_seed(20261124)
    w = make_weights(gen, c)
    for j, count in enumerate(GATE_COUNTS):
        w[f"bert.encoder.layer.{j}.gate"] = make_gates(gen, count, c["gate_positions"])
    w32 = {k: v.to(torch.float32).to(torch.float64) for k, v in w.items()}
    write_model_dir("tiny_bert_gated", w32, "F32", True, config=c)
    gates = [w32[f"bert.encoder.layer.{j}.gate"] for j in range(c["num_hidden_layers"])]
    kept_counts = kept_counts_from_gates(gates, GATE_THRESHOLD)
    assert kept_counts == GATE_COUNTS, kept_counts

    candidates = []
    for text, pair in texts:
        enc = ref.encode(text, pair, c["max_position_embeddings"], vocab)
        candidates.append(({"text": text, "pair": pair}, lambda enc=enc: (enc["input_ids"], enc["token_type_ids"])))
    ids_gen = torch.Generator().manual_seed(11)

    def random_ids(n):
        ids = torch.randint(5, len(VOCAB), (n,), generator=ids_gen).tolist()
        types = [0] * n
        if n >= 2:
            ids[0], ids[-1] = vocab["[CLS]"], vocab["[SEP]"]
        if n >= 5:
            cut = n // 2
            ids[cut - 1] = vocab["[SEP]"]
            types = [0] * cut + [1] * (n - cut)
        return ids, types

    # Lengths below, between and above the m_j = 22, 12, 6, 3: n=1..3 lose nothing, n=4 loses tokens
    # only in the last layer, n=7 from layer 2 on, n=13 from layer 1 on, n >= 23 in every layer.
    for n in [1, 2, 3, 4, 5, 7, 9, 12, 13, 16, 22, 23, 29, 40, 64]:
        candidates.append(({"text": None, "pair": None}, lambda n=n: random_ids(n)))

    cases, margins = [], []
    for meta, draw in candidates:
        for attempt in range(100):
            ids, types = draw()
            gated = hard_gated_forward(w32, c, ids, types, kept_counts)
            if gated["margin"] >= ACCEPT_MARGIN or meta["text"] is not None:
                break
        else:
            raise SystemExit(f"no robust input of length {len(ids)}")
        assert gated["margin"] > MIN_MARGIN, (meta, gated["margin"])
        dense = hard_gated_forward(w32, c, ids, types, None)
        # Cross-check the per-sequence reference against the padded-batch forward above.
        _, _, logits = forward(w32, torch.tensor([ids]), torch.tensor([types]), c=c)
        assert torch.allclose(logits[0], torch.tensor(dense["logits"], dtype=torch.float64), rtol=1e-12, atol=1e-12)
        assert dense["kept"] == [len(ids)] * c["num_hidden_layers"]
        if all(k == len(ids) for k in gated["kept"]):
            assert gated["logits"] == dense["logits"]
        margins.append(gated["margin"])
        cases.append({**meta, "input_ids": ids, "token_type_ids": types,
                      "dense": {"logits": rounded(dense["logits"]),
                                "last_hidden_state": rounded(dense["last_hidden_state"]),
                                "multiply_adds": dense["multiply_adds"]},
                      "gated": {"logits": rounded(gated["logits"]),
                                "last_hidden_state": rounded(gated["last_hidden_state"]),
                                "kept": gated["kept"], "survivors": gated["survivors"],
                                "multiply_adds": gated["multiply_adds"],
                                "margin": None if math.isinf(gated["margin"]) else rounded(gated["margin"], 4)}})
    finite = [m for m in margins if not math.isinf(m)]
    print(f"gated: m_j = {kept_counts}, {len(cases)} cases, smallest relative significance margin {min(finite):.3g} "
          f"(all: {', '.join(f'{m:.2g}' for m in margins)})")
    doc = {"generator": "tools/make_fixtures.py", "torch": torch.__version__, "model": "tiny_bert_gated",
           "note": "float64 hard-elimination forward (METHOD.md 2-4) over the stored F32 weights; multiply_adds "
                   "counted from the matrix products the reference performed",
           "gate_threshold": GATE_THRESHOLD, "gate_kept_counts": kept_counts, "cases": cases}
    with open(os.path.join(ROOT, "tiny_bert_gated_expected.json"), "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")


def main():
    gen = torch.Generator().manual_seed(20261123)
    w = make_weights(gen)
    # The stored values: float32 (and half) rounding of the float64 draws; the reference runs on those.
    w32 = {k: v.to(torch.float32).to(torch.float64) for k, v in w.items()}
    w16 = {k: v.to(torch.float16).to(torch.float64) for k, v in w.items()}
    position_ids = torch.arange(CONFIG["max_position_embeddings"])[None, :]
    write_model_dir("tiny_bert", w32, "F32", True, extra={"bert.embeddings.position_ids": (position_ids, "I64")})
    write_model_dir("tiny_bert_f16", w16, "F16", False)

    vocab = {t: i for i, t in enumerate(VOCAB)}
    max_len = CONFIG["max_position_embeddings"]
    texts = [
        ("the cat sat on the mat.", None),
        ("i love this movie, it was very good!", None),
        ("terrible film", "the dog ran under the big red tree and you saw it"),
        ("happy days", "sad nights"),
        ("Jumping dogs played!", None),
        ("xyz quux", "(old) \"new\" time: 5$"),
    ]
    cases = []
    for text, pair in texts:
        enc = ref.encode(text, pair, max_len, vocab)
        cases.append({"text": text, "pair": pair, "tokens": enc["tokens"], "input_ids": enc["input_ids"],
                      "token_type_ids": enc["token_type_ids"]})
    ids_gen = torch.Generator().manual_seed(7)
    for n in [1, 2, 3, 4, 5, 7, 8, 9, 13, 16, 17, 31, 33, 64]:
        ids = torch.randint(5, len(VOCAB), (n,), generator=ids_gen).tolist()
        types = [0] * n
        if n >= 2:
            ids[0] = vocab["[CLS]"]
            ids[-1] = vocab["[SEP]"]
        if n >= 5:  # a pair: second half has type 1
            cut = n // 2
            ids[cut - 1] = vocab["[SEP]"]
            types = [0] * cut + [1] * (n - cut)
        cases.append({"text": None, "pair": None, "input_ids": ids, "token_type_ids": types})

    for case in cases:
        ids = torch.tensor([case["input_ids"]])
        types = torch.tensor([case["token_type_ids"]])
        for tag, weights in (("", w32), ("_f16", w16)):
            hidden, pooled, logits = forward(weights, ids, types)
            case["logits" + tag] = logits[0].tolist()
            case["pooled" + tag] = pooled[0].tolist()
            case["last_hidden_state" + tag] = hidden[0].tolist()

    # Padded batch with an attention mask equals one-at-a-time runs (checks the mask in this reference).
    batch = [c for c in cases if c["text"] is None][:4]
    n = max(len(c["input_ids"]) for c in batch)
    pad = lambda seq: seq + [0] * (n - len(seq))  # noqa: E731
    ids = torch.tensor([pad(c["input_ids"]) for c in batch])
    types = torch.tensor([pad(c["token_type_ids"]) for c in batch])
    mask = torch.tensor([[1.0] * len(c["input_ids"]) + [0.0] * (n - len(c["input_ids"])) for c in batch],
                        dtype=torch.float64)
    _, _, logits = forward(w32, ids, types, mask)
    for row, c in zip(logits, batch):
        assert torch.allclose(row, torch.tensor(c["logits"], dtype=torch.float64), rtol=1e-12, atol=1e-12)

    make_gated(vocab, texts)

    doc = {"generator": "tools/make_fixtures.py", "torch": torch.__version__, "model": "tiny_bert",
           "note": "float64 forward over the stored weights; *_f16 keys use the F16-rounded weights",
           "tensors": {name: {"shape": list(t.shape), "first": t.flatten()[:8].tolist(), "last": t.flatten()[-1].item(),
                              "sum": t.sum().item(), "sum_f16": w16[name].sum().item(),
                              "first_f16": w16[name].flatten()[:8].tolist()}
                       for name, t in sorted(w32.items())},
           "cases": cases}
    with open(os.path.join(ROOT, "tiny_bert_expected.json"), "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(dp, fn)) for dp, _, fns in os.walk(ROOT) for fn in fns)
    print(f"wrote fixtures, {len(cases)} cases, tests/fixtures total {total} bytes")


if __name__ == "__main__":
    main()
