#!/usr/bin/python3
"""Dynamic INT8 quantization of an ONNX graph for ONNX Runtime's CPU provider, done here because the
python onnxruntime package (and its quantize_dynamic) is not installed; Debian's python3-onnx and numpy
are enough.

  onnx_quantize_dynamic.py --in model.onnx --out model.int8.onnx [--keep-add]

Every MatMul whose second input is a constant initializer W [K, N] (directly or through Identity
nodes, as torch.onnx.export shares equal tensors), and every Gemm with transA = 0,
alpha = 1 and a constant B, becomes one com.microsoft DynamicQuantizeMatMul (opset 1 of that domain):
  inputs  A (float), B (int8 [K, N]), b_scale (float [N]), b_zero_point (int8 [N], zeros), bias (float [N])
  output  Y = A x dequantize(B) + bias, A quantized to uint8 per tensor at run time by ONNX Runtime.
The weights are symmetric int8 with one scale per output column:
  scale[n] = max_k |W[k, n]| / 127 (1 where the column is all zeros),
  B[k, n]  = round-half-to-even(W[k, n] / scale[n]) clamped to [-127, 127].
A MatMul whose only consumer is an Add of a constant [N] initializer takes that vector as its bias and
the Add goes; --keep-add leaves such Adds in the graph. A Gemm's C (scaled by beta) becomes the bias the
same way. Other nodes are left as they are, but for nodes left without consumers (the Identity nodes of
folded biases), which go.

The result goes through onnx.checker, which checks the graph but has no schema for com.microsoft ops, so
the new nodes' inputs are checked only by ONNX Runtime when it loads the model. Errors exit with status 1
and a message on stderr.
"""
import argparse
import sys

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import helper, numpy_helper

DOMAIN = "com.microsoft"
OP = "DynamicQuantizeMatMul"


def quantize_columns(w):
    """Symmetric per-column int8 of w [K, N]: (int8 [K, N], float32 scales [N])."""
    w = w.astype(np.float32)
    scale = np.abs(w).max(axis=0) / np.float32(127)
    scale = np.where(scale > 0, scale, np.float32(1)).astype(np.float32)
    q = np.clip(np.rint(w / scale), -127, 127).astype(np.int8)  # np.rint rounds half to even
    return q, scale


def attribute(node, name, default):
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


class Rewriter:
    def __init__(self, model, keep_add):
        self.model = model
        self.graph = model.graph
        self.keep_add = keep_add
        self.inits = {i.name: i for i in self.graph.initializer}
        self.aliases = {n.output[0]: n.input[0] for n in self.graph.node if n.op_type == "Identity"}
        self.arrays = {}
        self.new_inits = []
        self.quantized = {}  # (weight name, transposed) -> (B, b_scale, b_zero_point) names
        self.consumers = {}
        for n in self.graph.node:
            for x in n.input:
                self.consumers.setdefault(x, []).append(n)
        self.outputs = {o.name for o in self.graph.output}

    def constant(self, name):
        """The initializer that name is, directly or through Identity nodes, or None."""
        while name not in self.inits and name in self.aliases:
            name = self.aliases[name]
        return name if name in self.inits else None

    def array(self, name):
        if name not in self.arrays:
            self.arrays[name] = numpy_helper.to_array(self.inits[name])
        return self.arrays[name]

    def weight_inputs(self, name, transposed):
        """Names of the int8 weight, its scales and zero points, made once per weight."""
        key = (name, transposed)
        if key not in self.quantized:
            w = self.array(name)
            q, scale = quantize_columns(w.T if transposed else w)
            base = f"{name}_T" if transposed else name
            names = (f"{base}_quantized", f"{base}_scale", f"{base}_zero_point")
            self.new_inits += [numpy_helper.from_array(q, names[0]), numpy_helper.from_array(scale, names[1]),
                               numpy_helper.from_array(np.zeros(q.shape[1], np.int8), names[2])]
            self.quantized[key] = names
        return self.quantized[key]

    def add_bias(self, name, columns, beta=1.0):
        """Name of a float [N] bias, beta times initializer name ([N], [1, N] or a scalar), or None
        when that does not broadcast to one value per column."""
        c = self.array(name)
        if not (c.size == 1 or (c.size == columns and c.shape[-1] == columns)):
            return None
        if beta == 1.0 and c.shape == (columns,) and c.dtype == np.float32:
            return name
        bias_name = f"{name}_as_bias" if beta == 1.0 else f"{name}_as_bias_times_{beta:g}"
        if bias_name not in {i.name for i in self.new_inits}:
            b = np.broadcast_to(c.astype(np.float32).reshape(-1) * np.float32(beta), (columns,))
            self.new_inits.append(numpy_helper.from_array(np.ascontiguousarray(b), bias_name))
        return bias_name

    def folded_add(self, node, columns):
        """The Add right after a MatMul whose other input is a constant [N] vector, or None."""
        if self.keep_add or node.output[0] in self.outputs:
            return None
        users = self.consumers.get(node.output[0], [])
        if len(users) != 1 or users[0].op_type != "Add":
            return None
        add = users[0]
        other = self.constant(add.input[1] if add.input[0] == node.output[0] else add.input[0])
        if other is None or list(self.inits[other].dims) != [columns]:
            return None
        return add, other

    def rewrite(self):
        nodes, dropped, counts = [], set(), {"MatMul": 0, "Gemm": 0, "bias": 0}
        for node in self.graph.node:
            if id(node) in dropped:
                continue
            made = self.quantize_node(node, dropped, counts)
            nodes.append(made if made is not None else node)
        used = self.prune(nodes)
        del self.graph.node[:]
        self.graph.node.extend(nodes)
        kept = [i for i in self.graph.initializer if i.name in used]
        del self.graph.initializer[:]
        self.graph.initializer.extend(kept + self.new_inits)
        if not any(o.domain == DOMAIN for o in self.model.opset_import):
            self.model.opset_import.append(helper.make_opsetid(DOMAIN, 1))
        return counts

    def prune(self, nodes):
        """Drops nodes none of whose outputs is used; returns the names still used."""
        while True:
            used = {x for n in nodes for x in n.input} | self.outputs
            live = [n for n in nodes if any(y in used for y in n.output)]
            if len(live) == len(nodes):
                return used
            nodes[:] = live

    def quantize_node(self, node, dropped, counts):
        if node.op_type not in ("MatMul", "Gemm"):
            return None
        weight = self.constant(node.input[1])
        if weight is None:
            return None
        if node.op_type == "MatMul" and self.array(weight).ndim == 2:
            columns = self.array(weight).shape[1]
            b, scale, zero = self.weight_inputs(weight, transposed=False)
            inputs, output = [node.input[0], b, scale, zero], node.output[0]
            fold = self.folded_add(node, columns)
            if fold is not None:
                add, vector = fold
                inputs.append(self.add_bias(vector, columns))
                output = add.output[0]
                dropped.add(id(add))
                counts["bias"] += 1
            counts["MatMul"] += 1
            return helper.make_node(OP, inputs, [output], name=f"{node.name or output}_quant", domain=DOMAIN)
        if node.op_type == "Gemm":  # Y = A x B' + beta C, B' = B or its transpose
            trans_b = attribute(node, "transB", 0)
            if attribute(node, "transA", 0) != 0 or attribute(node, "alpha", 1.0) != 1.0:
                return None
            w = self.array(weight)
            if w.ndim != 2:
                return None
            columns = w.shape[0] if trans_b else w.shape[1]
            bias = None
            if len(node.input) > 2 and node.input[2]:
                c = self.constant(node.input[2])
                bias = self.add_bias(c, columns, attribute(node, "beta", 1.0)) if c is not None else None
                if bias is None:
                    return None
                counts["bias"] += 1
            inputs = [node.input[0], *self.weight_inputs(weight, transposed=bool(trans_b))]
            if bias is not None:
                inputs.append(bias)
            counts["Gemm"] += 1
            return helper.make_node(OP, inputs, [node.output[0]], name=f"{node.name or node.output[0]}_quant",
                                    domain=DOMAIN)
        return None


def main():
    summary, details = __doc__.split("\n\n", 1)
    p = argparse.ArgumentParser(description=summary, epilog=details,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--in", dest="source", required=True, help="the float ONNX model")
    p.add_argument("--out", required=True, help="where to write the quantized model")
    p.add_argument("--keep-add", action="store_true", help="do not fold a following bias Add into the op")
    a = p.parse_args()
    try:
        model = onnx.load(a.source)
    except (OSError, DecodeError) as e:
        sys.exit(f"error: cannot read {a.source}: {e}")
    counts = Rewriter(model, a.keep_add).rewrite()
    if counts["MatMul"] + counts["Gemm"] == 0:
        sys.exit(f"error: {a.source} has no MatMul or Gemm with a constant weight to quantize")
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as e:
        sys.exit(f"error: onnx.checker rejects the quantized graph: {e}")
    try:
        onnx.save(model, a.out)
    except OSError as e:
        sys.exit(f"error: cannot write {a.out}: {e}")
    print(f"quantized {counts['MatMul']} MatMul and {counts['Gemm']} Gemm to {OP} "
          f"({counts['bias']} with the bias folded in): {a.out}")


if __name__ == "__main__":
    main()
