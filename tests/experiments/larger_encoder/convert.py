"""ONNX (Xenova's export of BAAI/bge-small-en-v1.5, as langchain4j's jar carries it) ->
model.safetensors with Hugging Face BERT names: the MatMul weights (onnx::MatMul_N, [in, out])
are named by the bias their output is added to, and transposed to [out, in]."""

import sys

import numpy as np
import onnx
from onnx import numpy_helper
from safetensors.numpy import save_file

m = onnx.load(sys.argv[1])
inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
consumers = {}
for node in m.graph.node:
    for x in node.input:
        consumers.setdefault(x, []).append(node)
out = {k: v for k, v in inits.items() if not k.startswith("onnx::")}
for node in m.graph.node:
    if node.op_type == "MatMul" and node.input[1] in inits and node.input[1].startswith("onnx::"):
        adds = [c for c in consumers[node.output[0]] if c.op_type == "Add"]
        bias = [x for c in adds for x in c.input if x.endswith(".bias") and x in inits]
        assert len(bias) == 1, (node.name, bias)
        out[bias[0][: -len(".bias")] + ".weight"] = np.ascontiguousarray(inits[node.input[1]].T)
left = [k for k in inits if k.startswith("onnx::MatMul")]
print(len(out), "tensors;", sum(v.size for v in out.values()) / 1e6, "M values")
save_file({k: v.astype(np.float32) for k, v in out.items()}, sys.argv[2])
