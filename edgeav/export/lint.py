"""Lint a Q/DQ ONNX graph against TensorRT's explicit-quantization rules, on CPU (no TensorRT needed):

- every QuantizeLinear/DequantizeLinear is INT8 with zero point 0 (symmetric; TensorRT rejects other zero points);
- weights are quantized per output channel (axis 0 for Conv, per-tensor scale size 1 for activations);
- scales are positive and finite; Q→DQ pairs on activations share scale (TensorRT fuses them);
- no integer ops that TensorRT cannot consume (QLinearConv, ConvInteger, MatMulInteger: the QOperator format).
Returns a list of problems (empty = clean).
"""

from __future__ import annotations

import numpy as np

FORBIDDEN = {
    "QLinearConv",
    "QLinearMatMul",
    "ConvInteger",
    "MatMulInteger",
    "QLinearAdd",
    "QLinearMul",
    "DynamicQuantizeLinear",
}


def lint_qdq(path: str) -> tuple[list[str], dict]:
    import onnx
    from onnx import numpy_helper

    g = onnx.load(path).graph
    inits = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    consts = {}
    for n in g.node:
        if n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value":
                    consts[n.output[0]] = numpy_helper.to_array(a.t)
    values = {**inits, **consts}
    problems, stats = [], {"q": 0, "dq": 0, "per_channel_weights": 0, "int8_convs": 0}
    producers = {o: n for n in g.node for o in n.output}
    for n in g.node:
        if n.op_type in FORBIDDEN:
            problems.append(
                f"{n.name}: {n.op_type} is QOperator-format; TensorRT needs QuantizeLinear/DequantizeLinear"
            )
        if n.op_type not in ("QuantizeLinear", "DequantizeLinear"):
            continue
        stats["q" if n.op_type == "QuantizeLinear" else "dq"] += 1
        scale = values.get(n.input[1])
        zp = values.get(n.input[2]) if len(n.input) > 2 and n.input[2] else None
        if scale is None:
            problems.append(f"{n.name}: scale is not a constant")
            continue
        if not (np.all(np.isfinite(scale)) and np.all(scale > 0)):
            problems.append(f"{n.name}: non-positive or non-finite scale")
        if zp is None:
            problems.append(f"{n.name}: no zero point (dtype would default to uint8)")
        else:
            if zp.dtype != np.int8:
                problems.append(f"{n.name}: zero point dtype {zp.dtype}, TensorRT needs int8")
            if np.any(zp != 0):
                problems.append(f"{n.name}: zero point {zp.ravel()[:3]}… ≠ 0 (asymmetric), TensorRT needs symmetric")
        if n.op_type == "DequantizeLinear" and n.input[0] in inits:  # a quantized weight
            w = inits[n.input[0]]
            axis = next((a.i for a in n.attribute if a.name == "axis"), 1)
            if w.ndim == 4:
                stats["int8_convs"] += 1
                if scale.size == w.shape[0] and axis == 0:
                    stats["per_channel_weights"] += 1
                else:
                    problems.append(
                        f"{n.name}: conv weight {w.shape} not per-output-channel (axis {axis}, {scale.size} scales)"
                    )
        if n.op_type == "DequantizeLinear" and n.input[0] not in inits:
            q = producers.get(n.input[0])
            if q is not None and q.op_type == "QuantizeLinear":
                qs = values.get(q.input[1])
                if qs is not None and not np.allclose(qs, scale):
                    problems.append(f"{n.name}: Q/DQ pair with different scales")
    if stats["q"] == 0:
        problems.append("no QuantizeLinear nodes: the graph is not quantized")
    return problems, stats
