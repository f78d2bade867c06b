"""Small ONNX models built with onnx.helper for the ONNX tests, and onnxruntime as the reference."""
from __future__ import annotations

import numpy as np
from onnx import helper, numpy_helper

OPSET = 17


def make_model(nodes, inputs, outputs, initializers=(), opset=OPSET, extra_opsets=()) -> bytes:
    """inputs / outputs: [(name, numpy dtype, shape)]; initializers: {name: array}."""
    def vi(name, dtype, shape):
        return helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(np.dtype(dtype)), shape)
    graph = helper.make_graph(
        nodes, "test", [vi(*i) for i in inputs], [vi(*o) for o in outputs],
        initializer=[numpy_helper.from_array(np.asarray(v), k) for k, v in dict(initializers).items()])
    imports = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, v) for d, v in extra_opsets]
    model = helper.make_model(graph, opset_imports=imports)
    model.ir_version = 8
    return model.SerializeToString()


def ort_run(model: bytes, feeds: dict) -> list:
    """onnxruntime's outputs for `feeds`, one thread, exact on every CPU (OrtReference)."""
    return OrtReference(model).run(None, feeds)


# ----- onnxruntime as an exact reference on every x86-64 CPU ----------------------------------------------------------
# onnxruntime's int8 GEMMs (MLAS) on x86-64 CPUs without VNNI multiply uint8 x int8 with vpmaddubsw, which saturates
# a pair of products at int16: a QLinearConv / QDQ conv whose weights use the full int8 range then gives results that
# are not the ONNX operators' arithmetic (seen here on an AVX2-only EPYC: kws_ref_model.onnx, 2 outputs of 6 inputs;
# small random QLinearConvs, up to 15% of outputs).  Its uint8 x uint8 kernels widen to int16 and are exact, and its
# "session.x64quantprecision" option, meant to switch to them, fails to load QDQ models in onnxruntime 1.32 ("Attempt
# to replace the existing tensor").  So on such CPUs the reference runs an equivalent model in which every int8
# tensor is the uint8 tensor 128 above it (int8 initializers, zero points, graph inputs and outputs; q - zp, and so
# every quantized op's result, is unchanged), and the feeds and outputs are shifted to match.  edgeml never
# saturates: it computes the operators' integer sums exactly on every CPU, as onnxruntime does with VNNI or on arm64.

def ort_int8_saturates() -> bool:
    """True where onnxruntime's uint8 x int8 GEMM kernels saturate pairs of products (x86-64 without VNNI)."""
    from edgeml.cpu import onnxruntime_int8_saturates
    return onnxruntime_int8_saturates()


# ops whose zero point inputs may be left out (default 0): (input index of a quantized int8 operand, index of its
# zero point); an omitted zero point of an int8 operand must become an explicit uint8 128
_ZERO_POINT_SLOTS = {
    "DequantizeLinear": [(0, 2)], "QuantizeLinear": [],
    "ConvInteger": [(0, 2), (1, 3)], "MatMulInteger": [(0, 2), (1, 3)],
    "QLinearConv": [], "QLinearMatMul": [],
    "DynamicQuantizeMatMul": [(1, 3)], "MatMulIntegerToFloat": [(0, 4), (1, 5)],
    "QAttention": [(0, 6), (1, 7)], "QGemm": [],
}


def _as_uint8_model(model):
    """The uint8 twin of `model` (a ModelProto, changed in place) and the names of its graph inputs / outputs that
    were int8; None when the model holds something the shift does not carry over exactly (a Cast to int8)."""
    from onnx import TensorProto
    g = model.graph
    INT8, UINT8 = TensorProto.INT8, TensorProto.UINT8
    int8_names = set()

    def shift_tensor(t):
        a = numpy_helper.to_array(t)
        b = numpy_helper.from_array(np.asarray(a.astype(np.int16) + 128).astype(np.uint8), t.name)
        t.CopyFrom(b)

    for t in g.initializer:
        if t.data_type == INT8:
            int8_names.add(t.name)
            shift_tensor(t)
    for n in g.node:
        if n.op_type == "Cast" and any(a.name == "to" and a.i == INT8 for a in n.attribute):
            return None
        for a in n.attribute:
            if a.type == a.TENSOR and a.t.data_type == INT8:
                int8_names.update(n.output)
                shift_tensor(a.t)
            if a.type == a.GRAPH:
                return None
    shifted_io = []
    for vi in list(g.input) + list(g.output) + list(g.value_info):
        tt = vi.type.tensor_type
        if tt.elem_type == INT8:
            tt.elem_type = UINT8
            int8_names.add(vi.name)
    for vi in list(g.input) + list(g.output):
        if vi.name in int8_names and vi.type.tensor_type.elem_type == UINT8:
            shifted_io.append(vi.name)
    # explicit zero points where an int8 operand relied on the default 0
    added = 0
    for n in g.node:
        for operand, zp in _ZERO_POINT_SLOTS.get(n.op_type, ()):
            if operand < len(n.input) and n.input[operand] in int8_names or _produced_int8(g, n, operand, int8_names):
                if zp >= len(n.input) or not n.input[zp]:
                    name = f"_edgeml_u8_zero_point_{added}"
                    added += 1
                    g.initializer.append(numpy_helper.from_array(np.array(128, np.uint8), name))
                    while len(n.input) < zp:
                        n.input.append("")
                    if zp < len(n.input):
                        n.input[zp] = name
                    else:
                        n.input.append(name)
    return model, set(shifted_io)


def _produced_int8(g, node, operand, int8_names) -> bool:
    """Whether `node`'s input `operand` is an int8 activation: the output of a QuantizeLinear whose zero point was
    int8 (now in int8_names), or of an op passing one through."""
    if operand >= len(node.input):
        return False
    name = node.input[operand]
    for p in g.node:
        if name in p.output and p.op_type == "QuantizeLinear" and len(p.input) > 2 and p.input[2] in int8_names:
            int8_names.add(name)
            return True
    return name in int8_names


class OrtOutput(np.ndarray):
    """An onnxruntime output; `alt` is the uint8 twin's output where onnxruntime's int8 GEMMs saturate (else None).
    The twin is exact in the GEMMs but not always in the ops that compute in float from the raw quantized values
    (a QDQ MatMul's float output, QLinearAveragePool: 1 LSB seen at pretrainedResnet's softmax input), so an element
    may take either value: assert_ort_equal accepts, element by element, the plain run's value or the twin's."""
    alt = None


def assert_ort_equal(got, want, rtol: float = 0.0, atol: float = 0.0, err_msg: str = ""):
    """got equals onnxruntime's output `want` exactly (or to rtol / atol); on CPUs where onnxruntime's int8 GEMMs
    saturate, each element may equal the plain run's value or the uint8 twin's (OrtOutput)."""
    got = np.asarray(got)
    alt = getattr(want, "alt", None)
    want = np.asarray(want).view(np.ndarray)
    if alt is None:
        if rtol or atol:
            np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, err_msg=err_msg)
        else:
            np.testing.assert_array_equal(got, want, err_msg=err_msg)
        return
    assert got.shape == want.shape, (got.shape, want.shape)
    if rtol or atol:
        ok = np.isclose(got, want, rtol=rtol, atol=atol) | np.isclose(got, alt, rtol=rtol, atol=atol)
    else:
        ok = (got == want) | (got == alt)
    if not ok.all():
        bad = np.argwhere(~ok)[:5]
        raise AssertionError(f"{err_msg} {int((~ok).sum())} of {got.size} elements equal neither onnxruntime's "
                             f"output nor its uint8 twin's; first at {bad.tolist()}: got "
                             f"{[got[tuple(b)] for b in bad]}, onnxruntime {[want[tuple(b)] for b in bad]}, "
                             f"twin {[alt[tuple(b)] for b in bad]}")


def ort_diff(got, want) -> np.ndarray:
    """|got - want| element by element in int64 (the smaller of the two where `want` has a uint8 twin's `alt`)."""
    d = np.abs(np.asarray(got).astype(np.int64) - np.asarray(want).view(np.ndarray).astype(np.int64))
    alt = getattr(want, "alt", None)
    if alt is not None:
        d = np.minimum(d, np.abs(np.asarray(got).astype(np.int64) - alt.astype(np.int64)))
    return d


class OrtReference:
    """onnxruntime on `model` (bytes or path; one thread) as an InferenceSession, whose run(None, feeds) returns
    OrtOutput arrays: on CPUs where its int8 GEMMs saturate, each with the uint8 twin's output as `alt` (see above;
    compare with assert_ort_equal)."""

    def __init__(self, model, so=None):
        import onnx
        import onnxruntime as ort
        if so is None:
            so = ort.SessionOptions()
            so.intra_op_num_threads = 1
        if not isinstance(model, bytes):
            model = str(model)
        self.sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
        self.out_names = [o.name for o in self.sess.get_outputs()]
        self.twin, self.shifted = None, set()
        if ort_int8_saturates():
            proto = onnx.load_from_string(model) if isinstance(model, bytes) else onnx.load(model)
            made = _as_uint8_model(proto)
            if made is not None:
                proto, self.shifted = made
                self.twin = ort.InferenceSession(proto.SerializeToString(), so, providers=["CPUExecutionProvider"])

    def get_inputs(self):
        return self.sess.get_inputs()

    def get_outputs(self):
        return self.sess.get_outputs()

    def run(self, names, feeds):
        outs = [np.asarray(o).view(OrtOutput) for o in self.sess.run(None, feeds)]
        if self.twin is not None:
            twin_feeds = {k: np.asarray(np.asarray(v).astype(np.int16) + 128).astype(np.uint8)
                          if k in self.shifted else v
                          for k, v in feeds.items()}
            for name, o, t in zip(self.out_names, outs, self.twin.run(None, twin_feeds)):
                o.alt = np.asarray(t.astype(np.int16) - 128).astype(np.int8) if name in self.shifted else t
        if names is None:
            return outs
        return [outs[self.out_names.index(n)] for n in names]
