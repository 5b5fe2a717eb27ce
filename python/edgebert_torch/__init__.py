"""EdgeBert's gated BERT in PyTorch: train token gates with DistributedDataParallel, ship with EdgeBert."""
from .checkpoint import read_safetensors, write_safetensors  # noqa: F401
from .model import GatedBert, from_pretrained, gate_bimodal, gate_l1, kept_counts  # noqa: F401
