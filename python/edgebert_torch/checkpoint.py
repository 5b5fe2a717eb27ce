"""EdgeBert / HuggingFace checkpoint files without transformers or safetensors: model.safetensors
(u64 LE header length, JSON header {name: {dtype, shape, data_offsets}}, raw little-endian data),
config.json (every key kept, gate settings added) and vocab.txt."""
import json
import os
import shutil
import struct

import torch

WEIGHTS_FILE, CONFIG_FILE, VOCAB_FILE = "model.safetensors", "config.json", "vocab.txt"
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64,
          "I64": torch.int64, "I32": torch.int32, "I8": torch.int8, "U8": torch.uint8}


def read_safetensors(path):
    """name -> tensor in its stored dtype ("__metadata__" skipped)."""
    with open(path, "rb") as f:
        (header_len,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(header_len))
        data = f.read()
    tensors = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        if meta["dtype"] not in DTYPES:
            raise ValueError(f"{path}: tensor {name} has unsupported dtype {meta['dtype']}")
        begin, end = meta["data_offsets"]
        # bytearray: frombuffer needs a writable buffer; the copy also detaches it from the file's bytes.
        raw = bytearray(data[begin:end])
        t = torch.frombuffer(raw, dtype=DTYPES[meta["dtype"]]) if raw else torch.empty(0, dtype=DTYPES[meta["dtype"]])
        tensors[name] = t.reshape(meta["shape"])
    return tensors


def write_safetensors(path, tensors, dtypes=None, pad_header=True, metadata=None):
    """Writes name -> tensor in sorted name order, F32 unless dtypes[name] says otherwise. pad_header
    rounds the header to 8 bytes (aligned data); False makes it odd (every tensor unaligned), for tests."""
    header, blobs, offset = {"__metadata__": metadata or {"format": "pt"}}, [], 0
    names = {dtype: name for name, dtype in DTYPES.items()}
    for name in sorted(tensors):
        dtype = (dtypes or {}).get(name, "F32")
        t = tensors[name].detach().to("cpu", DTYPES[dtype]).contiguous()
        # A uint8 view gives the raw little-endian bytes of any dtype (bf16 included, which numpy lacks).
        data = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[name] = {"dtype": names[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    if pad_header:
        text += b" " * (-len(text) % 8)
    elif len(text) % 2 == 0:
        text += b" "
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)
    os.replace(tmp, path)


def hf_name(name):
    """The BertForSequenceClassification name of a checkpoint tensor (bare BertModel names, legacy gamma/beta)."""
    if not name.startswith(("bert.", "classifier.", "cls.")):
        name = "bert." + name
    if name.endswith(".gamma"):
        name = name[: -len("gamma")] + "weight"
    if name.endswith(".beta"):
        name = name[: -len("beta")] + "bias"
    return name


def read_config(directory):
    with open(os.path.join(directory, CONFIG_FILE), encoding="utf-8") as f:
        return json.load(f)


def labels_of(config):
    """Class names in index order (id2label), or ["score"] for a regression head."""
    if "id2label" in config:
        id2label = config["id2label"]
        return [id2label[str(i)] for i in range(len(id2label))]
    return [f"LABEL_{i}" for i in range(config.get("num_labels", 2))]


def load_tensors(directory):
    """HF-named float32 tensors of a model directory; INT8 checkpoints (quantized) are refused."""
    stored = read_safetensors(os.path.join(directory, WEIGHTS_FILE))
    if any(t.dtype == torch.int8 for t in stored.values()):
        raise ValueError(f"{directory}: an INT8 checkpoint (edgebert quantize output) cannot be trained")
    return {hf_name(k): v.to(torch.float32) for k, v in stored.items() if not k.endswith("position_ids")}


def save_directory(directory, config, tensors, kept_counts=None, copy_files=()):
    """Writes the HF layout EdgeBert reads: model.safetensors (F32), config.json with gate_threshold and
    gate_kept_counts when the model has gates (as `edgebert train` writes them), and copies of copy_files
    (vocab.txt, tokenizer_config.json) under their own names."""
    os.makedirs(directory, exist_ok=True)
    write_safetensors(os.path.join(directory, WEIGHTS_FILE), tensors)
    config = dict(config)
    config.pop("num_labels", None)
    config.pop("precision", None)
    if kept_counts is None:
        config.pop("gate_threshold", None)
        config.pop("gate_kept_counts", None)
    else:
        config["gate_threshold"] = config.get("gate_threshold", 0.5)
        config["gate_kept_counts"] = list(kept_counts)
    config["architectures"] = ["BertForSequenceClassification" if "classifier.weight" in tensors else "BertModel"]
    tmp = os.path.join(directory, CONFIG_FILE + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    os.replace(tmp, os.path.join(directory, CONFIG_FILE))
    for source in copy_files:
        target = os.path.join(directory, os.path.basename(source))
        if os.path.exists(source) and os.path.abspath(source) != os.path.abspath(target):
            shutil.copyfile(source, target)
