"""A BERT classifier with EdgeBert's token gates (METHOD.md), in PyTorch, matching EdgeBert.Model:
- soft (training) forward over a padded batch: in each layer, after the attention block's Add & LayerNorm,
  the token at significance rank k is scaled by gate[k]; a token whose gate is exactly 0 is masked as a key
  (and as a query of the significance) in every later layer, like padding (BertTrainingGraph);
- hard (inference) forward: each sequence keeps its min(n, m_j) most significant tokens in layer j, in their
  original order, and the FFN and later layers run on those only (BertEngine + TokenGateEvaluator);
- the regularizers R_l1 and R_bimodal (GateOps).
Parameter names are HuggingFace's BertForSequenceClassification names, gates `bert.encoder.layer.{j}.gate`."""
import math

import torch
from torch import nn
import torch.nn.functional as F

DEFAULTS = dict(vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                intermediate_size=3072, hidden_act="gelu", max_position_embeddings=512, type_vocab_size=2,
                layer_norm_eps=1e-12, gate_positions=128, gate_threshold=0.5)
# The shapes of BertConfig.ForShape (and `random:small` of edgebert train).
SHAPES = {
    "base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
    "small": dict(hidden_size=512, num_hidden_layers=4, num_attention_heads=8, intermediate_size=2048),
    "mini": dict(hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024),
    "tiny": dict(hidden_size=128, num_hidden_layers=2, num_attention_heads=2, intermediate_size=512),
}


def setting(config, key):
    return config.get(key, DEFAULTS[key])


def kept_counts(gates, threshold):
    """m_j of METHOD.md point 4: gates >= threshold per layer, at least 1, forced non-increasing; a layer
    without gates (None) keeps what the previous one kept (None: everything)."""
    counts, previous = [], None
    for g in gates:
        m = previous
        if g is not None:
            m = max(int((g >= threshold).sum().item()), 1)
            m = m if previous is None else min(m, previous)
        counts.append(m)
        previous = m
    return counts


def gate_l1(gates):
    """R_l1 = (1/L) sum_j (j+1)/L * mean_k g_j[k]."""
    layers = len(gates)
    return sum(g.sum() * ((j + 1) / (layers * layers * g.numel())) for j, g in enumerate(gates))


def gate_bimodal(gates):
    """R_bimodal = (1/(L N)) sum_j sum_k g_j[k] (1 - g_j[k]); zero only when every gate is 0 or 1."""
    layers = len(gates)
    return sum((g * (1 - g)).sum() / (layers * g.numel()) for g in gates)


def significance_ranks(probs, live):
    """Rank of every token by the attention it receives from the other live queries, summed over heads
    (METHOD.md point 2); [CLS] first, ties to the lower position. probs [B, heads, query, key], live [B, T]."""
    t = probs.shape[-1]
    liveq = live.to(probs.dtype)[:, None, :, None]
    received = (probs * liveq).sum(dim=2) - torch.diagonal(probs, dim1=2, dim2=3) * liveq[..., 0]
    sig = received.sum(dim=1).clamp(min=0)
    sig[:, 0] = math.inf
    order = torch.sort(sig, dim=1, descending=True, stable=True).indices
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(t, device=order.device).expand_as(order))
    return ranks


class _Embeddings(nn.Module):
    def __init__(self, c):
        super().__init__()
        h = setting(c, "hidden_size")
        self.word_embeddings = nn.Embedding(setting(c, "vocab_size"), h)
        self.position_embeddings = nn.Embedding(setting(c, "max_position_embeddings"), h)
        self.token_type_embeddings = nn.Embedding(setting(c, "type_vocab_size"), h)
        self.LayerNorm = nn.LayerNorm(h, eps=setting(c, "layer_norm_eps"))


class _Dense(nn.Module):
    def __init__(self, n_in, n_out, eps=None):
        super().__init__()
        self.dense = nn.Linear(n_in, n_out)
        if eps is not None:
            self.LayerNorm = nn.LayerNorm(n_out, eps=eps)


class _SelfAttention(nn.Module):
    def __init__(self, h):
        super().__init__()
        self.query, self.key, self.value = nn.Linear(h, h), nn.Linear(h, h), nn.Linear(h, h)


class _Attention(nn.Module):
    def __init__(self, h, eps):
        super().__init__()
        self.self = _SelfAttention(h)
        self.output = _Dense(h, h, eps)


class _Layer(nn.Module):
    def __init__(self, c, gated):
        super().__init__()
        h, f, eps = setting(c, "hidden_size"), setting(c, "intermediate_size"), setting(c, "layer_norm_eps")
        self.attention = _Attention(h, eps)
        self.intermediate = _Dense(h, f)
        self.output = _Dense(f, h, eps)
        self.gate = nn.Parameter(torch.ones(setting(c, "gate_positions"))) if gated else None


class _Encoder(nn.Module):
    def __init__(self, c, gated):
        super().__init__()
        self.layer = nn.ModuleList(_Layer(c, gated) for _ in range(setting(c, "num_hidden_layers")))


class _Bert(nn.Module):
    def __init__(self, c, gated, head):
        super().__init__()
        self.embeddings = _Embeddings(c)
        self.encoder = _Encoder(c, gated)
        self.pooler = _Dense(setting(c, "hidden_size"), setting(c, "hidden_size")) if head else None


class GatedBert(nn.Module):
    """config: the config.json dict (kept whole, written back on save). gated: whether layers have gates."""

    def __init__(self, config, gated=False, num_labels=None, head=True):
        super().__init__()
        if setting(config, "hidden_act") not in ("gelu", "gelu_python"):
            raise ValueError(f"hidden_act '{config['hidden_act']}' is not the exact erf GELU")
        self.config = dict(config)
        self.heads = setting(config, "num_attention_heads")
        self.bert = _Bert(config, gated, head)
        self.classifier = nn.Linear(setting(config, "hidden_size"), num_labels) if head else None

    @property
    def layers(self):
        return self.bert.encoder.layer

    @property
    def gates(self):
        return [layer.gate for layer in self.layers if layer.gate is not None]

    @property
    def has_gates(self):
        return len(self.gates) > 0

    def add_gates(self, positions):
        """Gates initialised to 1 (METHOD.md point 1)."""
        self.config["gate_positions"] = positions
        for layer in self.layers:
            layer.gate = nn.Parameter(torch.ones(positions, device=layer.output.dense.weight.device))

    def kept_counts(self, threshold=None):
        t = setting(self.config, "gate_threshold") if threshold is None else threshold
        return kept_counts([layer.gate.detach() if layer.gate is not None else None for layer in self.layers], t)

    # --- the layers' pieces, shared by both forwards ---

    def _embed(self, ids, types, dropout):
        e = self.bert.embeddings
        x = e.word_embeddings(ids) + e.position_embeddings(torch.arange(ids.shape[1], device=ids.device))
        x = e.LayerNorm(x + e.token_type_embeddings(types))
        return F.dropout(x, dropout, self.training)

    def _attention(self, layer, x, key_mask, dropout):
        """Returns LayerNorm(x + dense(context)) and the probabilities [B, heads, T, T]. key_mask [B, T]:
        0 for a key, -inf for padding or a gated-out token."""
        s = layer.attention.self
        b, t, h = x.shape
        d = h // self.heads

        def split(y):  # heads are contiguous slices of the hidden vector
            return y.view(b, t, self.heads, d).transpose(1, 2)

        q, k, v = split(s.query(x)), split(s.key(x)), split(s.value(x))
        probs = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d) + key_mask[:, None, None, :], dim=-1)
        context = (probs @ v).transpose(1, 2).reshape(b, t, h)
        o = layer.attention.output
        return o.LayerNorm(F.dropout(o.dense(context), dropout, self.training) + x), probs

    def _feed_forward(self, layer, a, dropout):
        y = layer.output.dense(F.gelu(layer.intermediate.dense(a)))
        return layer.output.LayerNorm(F.dropout(y, dropout, self.training) + a)

    def _head(self, cls, dropout):
        if self.classifier is None:
            return None
        pooled = F.dropout(torch.tanh(self.bert.pooler.dense(cls)), dropout, self.training)
        return self.classifier(pooled)

    # --- the two forward passes ---

    def forward(self, ids, types, lengths, use_gates=True, dropout=0.0):
        """Soft forward of a padded batch (ids, types [B, T] long, lengths [B]); returns the logits [B, C]
        and the per-layer ranks [B, T] of the gated layers. Dropout is active only in training mode."""
        t = ids.shape[1]
        valid = torch.arange(t, device=ids.device)[None, :] < lengths[:, None]
        neg_inf = torch.tensor(-math.inf, device=ids.device)
        key_mask = torch.where(valid, torch.zeros((), device=ids.device), neg_inf)
        x = self._embed(ids, types, dropout)
        all_ranks = []
        for layer in self.layers:
            a, probs = self._attention(layer, x, key_mask, dropout)
            if use_gates and layer.gate is not None:
                # Ranks are constants of the pass (point 7); padding ranks last and is clamped to a real gate.
                ranks = significance_ranks(probs.detach(), key_mask == 0)
                all_ranks.append(ranks)
                g = layer.gate[ranks.clamp(max=layer.gate.numel() - 1)] * valid
                a = a * g[..., None]
                key_mask = torch.where(valid & (g.detach() == 0), neg_inf, key_mask)
            x = self._feed_forward(layer, a, dropout)
        return self._head(x[:, 0], dropout), all_ranks

    @torch.no_grad()
    def hard_forward(self, ids, types, lengths, use_gates=True, threshold=None):
        """Inference as EdgeBert runs it: in layer j each sequence keeps its min(n, m_j) most significant
        tokens (original order) before the FFN, and later layers see only those. Returns the logits [B, C]
        and kept [B, layers] (tokens each layer's FFN ran on)."""
        counts = self.kept_counts(threshold) if use_gates and self.has_gates else [None] * len(self.layers)
        dev = ids.device
        lengths = lengths.clone()
        valid = torch.arange(ids.shape[1], device=dev)[None, :] < lengths[:, None]
        x = self._embed(ids, types, 0.0)
        kept = []
        for layer, m in zip(self.layers, counts):
            key_mask = torch.where(valid, torch.zeros((), device=dev), torch.tensor(-math.inf, device=dev))
            a, probs = self._attention(layer, x, key_mask, 0.0)
            if m is not None and bool((lengths > m).any()):
                ranks = significance_ranks(probs, valid)
                lengths = lengths.clamp(max=m)
                keep = (ranks < lengths[:, None]) & valid
                # A stable sort of "dropped" flags lists each row's kept positions first, in original order.
                rows = torch.sort((~keep).to(torch.int8), dim=1, stable=True).indices[:, : int(lengths.max())]
                a = torch.gather(a, 1, rows[..., None].expand(-1, -1, a.shape[-1]))
                valid = torch.arange(rows.shape[1], device=dev)[None, :] < lengths[:, None]
            kept.append(lengths.clone())
            x = self._feed_forward(layer, a, 0.0)
        return self._head(x[:, 0], 0.0), torch.stack(kept, dim=1)

    # --- checkpoints ---

    def named_tensors(self):
        """HF name -> tensor, as EdgeBert writes them (gates included, no buffers)."""
        return {name: p.detach() for name, p in self.named_parameters()}

    def load_named(self, tensors):
        """Loads HF-named tensors; gates present in the file are created. Unknown tensors (MLM or NSP heads,
        a stored classifier this model has no place for) are ignored."""
        if any(name.endswith(".gate") for name in tensors) and not self.has_gates:
            self.add_gates(next(t for n, t in tensors.items() if n.endswith(".gate")).numel())
        state = self.state_dict()
        missing = [k for k in state if k not in tensors]
        if missing:
            raise ValueError(f"missing tensors {missing[:5]}")
        self.load_state_dict({k: tensors[k] for k in state})


def from_pretrained(directory, head=True):
    """A model directory in the HF layout (config.json + model.safetensors), with its gates if it has them."""
    from . import checkpoint

    config = checkpoint.read_config(directory)
    tensors = checkpoint.load_tensors(directory)
    has_head = head and "classifier.weight" in tensors
    num_labels = tensors["classifier.weight"].shape[0] if has_head else None
    model = GatedBert(config, gated=any(n.endswith(".gate") for n in tensors), num_labels=num_labels, head=has_head)
    model.load_named(tensors)
    return model


def init_weights(model, std=0.02, generator=None, names=None):
    """HuggingFace's BERT initialisation: N(0, std) weights, zero biases, LayerNorm 1/0; gates stay 1.
    names restricts it to those parameters (a new classifier head)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if names is not None and name not in names or name.endswith(".gate"):
                continue
            if "LayerNorm" in name:
                p.fill_(1.0 if name.endswith("weight") else 0.0)
            elif name.endswith("weight"):
                p.normal_(0.0, std, generator=generator)
            else:
                p.zero_()


def pad_batch(sequences, device=None):
    """[(ids, types)] lists -> ids, types [B, T] long (zero padded) and lengths [B]."""
    t = max(len(ids) for ids, _ in sequences)
    ids = torch.zeros(len(sequences), t, dtype=torch.long)
    types = torch.zeros(len(sequences), t, dtype=torch.long)
    for i, (seq, ty) in enumerate(sequences):
        ids[i, : len(seq)] = torch.tensor(seq)
        types[i, : len(ty)] = torch.tensor(ty)
    lengths = torch.tensor([len(s) for s, _ in sequences])
    return ids.to(device), types.to(device), lengths.to(device)
