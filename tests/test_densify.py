"""Sparse weights (EXPERIMENTAL_SPARSITY) read, validated and expanded at load, DENSIFY folded into the dense
constant: converter-made float and int8 models of pruned weights (random and 1x4-block pruning; LiteRT's sparse
FULLY_CONNECTED reads float block-sparse weights without DENSIFY) equal LiteRT's reference kernels and edgeml on
their dense twins; hostile sparsity parameters are ModelFormatErrors naming the tensor."""
from __future__ import annotations

import copy

import model_cache
import numpy as np
import pytest
import sparse_models as S
import tflite

import edgeml
from converters.tflite import from_tflite
from edgeml import ModelFormatError

INPUT_SETS = 20
CASES = [(name, kind) for name in S.SPECS for kind in ("float", "int8")]


@pytest.fixture(scope="session")
def models(request, tmp_path_factory) -> model_cache.ConvertedModels:
    return model_cache.converted_models(request, tmp_path_factory, "sparse_models", S)


def sparse_tensor_names(model: bytes) -> list:
    m = tflite.Model.GetRootAs(model, 0)
    sg = m.Subgraphs(0)
    return [sg.Tensors(i).Name().decode() for i in range(sg.TensorsLength()) if sg.Tensors(i).Sparsity()]


def litert_run(model: bytes, xs: list) -> list:
    litert = pytest.importorskip("ai_edge_litert.interpreter")
    ref = litert.Interpreter(model_content=model, experimental_op_resolver_type=litert.OpResolverType.BUILTIN_REF)
    ref.allocate_tensors()
    out = []
    for x in xs:
        ref.set_tensor(ref.get_input_details()[0]["index"], x)
        ref.invoke()
        out.append(ref.get_tensor(ref.get_output_details()[0]["index"]))
    return out


@pytest.mark.parametrize("name,kind", CASES, ids=[f"{n}-{k}" for n, k in CASES])
def test_sparse_model_matches_litert_and_its_dense_twin(models, name, kind):
    spec = S.SPECS[name]
    model, twin = models.get(name, kind), models.get(name, f"{kind}_dense")
    assert sparse_tensor_names(model), "the converter stored no weight sparse"
    assert not sparse_tensor_names(twin)
    ops = {op.type for op in from_tflite(model).ops}
    assert "DENSIFY" in ops or (kind, spec.block) == ("float", 4)     # LiteRT's sparse FC reads 1x4 blocks itself
    xs = S.inputs(spec, INPUT_SETS)
    ours, dense = edgeml.Interpreter(model), edgeml.Interpreter(twin)
    assert ours.arena_bytes == dense.arena_bytes
    for k, (x, expected) in enumerate(zip(xs, litert_run(model, xs))):
        y = ours.run(x)
        np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6, err_msg=f"{name} {kind} input {k}")
        if kind == "int8":       # the float output dequantizes the int8 result: equal arrays
            assert np.array_equal(y, expected), f"{name} int8 input {k}"
        assert np.array_equal(y, dense.run(x)), f"{name} {kind} input {k}: differs from the dense twin"


def test_densify_folds_into_a_constant(models):
    model = models.get("conv_dense_random", "int8")
    graph = from_tflite(model)
    densify = [op for op in graph.ops if op.type == "DENSIFY"]
    assert len(densify) == 3
    it = edgeml.Interpreter(model)
    assert all(step.op.type != "DENSIFY" for step in it.plan.steps)
    twin = from_tflite(models.get("conv_dense_random", "int8_dense"))
    sparse_weights = [graph.tensors[op.inputs[0]].data for op in densify]
    dense_weights = sorted((t.data for t in twin.tensors if t.data is not None and t.data.dtype == np.int8),
                           key=lambda a: a.shape)
    for w in sparse_weights:
        assert any(d.shape == w.shape and np.array_equal(d, w) for d in dense_weights)
    assert 0.75 < np.mean(sparse_weights[0] == 0) < 0.85


# ----- hostile sparsity parameters -----------------------------------------------------------------------------

def schema():
    return pytest.importorskip("ai_edge_litert.schema_py_generated")


def rewrite(model: bytes, change) -> bytes:
    """`model` with change(sparsity, tensor, model) applied to its first sparse tensor (the conv weights)."""
    import flatbuffers
    fb = schema()
    m = fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(bytearray(model), 0))
    tensor = next(t for t in m.subgraphs[0].tensors if t.sparsity is not None)
    change(tensor.sparsity, tensor, m)
    builder = flatbuffers.Builder(1 << 16)
    builder.Finish(m.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def csr(sp):
    """The SPARSE_CSR level of the conv weights [16, 3, 3, 3]: dimension 3, 145 segment bounds."""
    return sp.dimMetadata[3]


def set_values(vector, values):
    vector.values = np.asarray(values, dtype=np.asarray(vector.values).dtype)


def segments(sp, edit):
    values = np.array(csr(sp).arraySegments.values, dtype=np.int64)
    edit(values)
    set_values(csr(sp).arraySegments, values)


def indices(sp, edit):
    values = np.array(csr(sp).arrayIndices.values, dtype=np.int64)
    edit(values)
    set_values(csr(sp).arrayIndices, values)


def add_block(sp, size, dim):
    block = copy.deepcopy(sp.dimMetadata[0])
    block.denseSize = size
    sp.dimMetadata.append(block)
    sp.traversalOrder = list(sp.traversalOrder) + [4]
    sp.blockMap = [dim]


def truncate_values(sp, tensor, m):
    data = np.asarray(m.buffers[tensor.buffer].data)
    m.buffers[tensor.buffer].data = data[:-1]


def drop_values(sp, tensor, m):
    m.buffers[tensor.buffer].data = None


HOSTILE = {
    "traversal_not_a_permutation": (lambda sp, t, m: setattr(sp, "traversalOrder", [0, 0, 2, 3]), "traversal_order"),
    "traversal_too_short": (lambda sp, t, m: setattr(sp, "traversalOrder", [0, 1, 2]), "traversal entries"),
    "metadata_missing": (lambda sp, t, m: setattr(sp, "dimMetadata", sp.dimMetadata[:3]), "dimension metadata"),
    "block_map_outside_rank": (lambda sp, t, m: add_block(sp, 3, 7), "block_map"),
    "block_not_dividing": (lambda sp, t, m: add_block(sp, 2, 1), "size dividing it"),
    "dense_size_wrong": (lambda sp, t, m: setattr(sp.dimMetadata[1], "denseSize", 4), "DENSE of size 4"),
    "unknown_format": (lambda sp, t, m: setattr(sp.dimMetadata[1], "format", 2), "dimension formats"),
    "segments_not_from_zero": (lambda sp, t, m: segments(sp, lambda v: v.__setitem__(0, 1)), "segment bounds"),
    "segments_too_few": (lambda sp, t, m: set_values(csr(sp).arraySegments,
                                                     np.asarray(csr(sp).arraySegments.values)[:-1]), "segment bounds"),
    "segments_decrease": (lambda sp, t, m: segments(sp, lambda v: v.__setitem__(5, v[7] + 1)), "decrease"),
    "segments_past_indices": (lambda sp, t, m: segments(sp, lambda v: v.__setitem__(-1, v[-1] + 1)),
                              "segment bounds"),
    "index_out_of_range": (lambda sp, t, m: indices(sp, lambda v: v.__setitem__(0, 3)), "index outside [0, 3)"),
    "too_few_values": (truncate_values, "the metadata addresses"),
    "no_values": (drop_values, "without stored values"),
    "segments_type_missing": (lambda sp, t, m: setattr(csr(sp), "arraySegmentsType", 0), "index vector type 0"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_sparsity_is_refused(models, name):
    change, fragment = HOSTILE[name]
    model = rewrite(models.get("conv_dense_random", "int8"), change)
    with pytest.raises(ModelFormatError) as info:
        edgeml.Interpreter(model)
    assert fragment in str(info.value)
    assert "conv2d" in str(info.value) and "tensor " in str(info.value)       # names the tensor


def test_repeated_index_within_a_segment_is_refused(models):
    def repeat(sp, tensor, m):
        seg = np.asarray(csr(sp).arraySegments.values)
        k = int(np.flatnonzero(np.diff(seg) >= 2)[0])        # a segment of two or more indices
        idx = np.array(csr(sp).arrayIndices.values)
        idx[seg[k] + 1] = idx[seg[k]]
        set_values(csr(sp).arrayIndices, idx)
    with pytest.raises(ModelFormatError, match="not increasing within a segment"):
        edgeml.Interpreter(rewrite(models.get("conv_dense_random", "int8"), repeat))


def test_every_single_byte_flip_of_the_sparsity_loads_or_is_refused(models):
    """Flips inside the sparse metadata: a ModelFormatError (or UnsupportedOpError) or a model that runs."""
    model = bytearray(models.get("dense_odd_sizes", "int8"))
    rng = np.random.default_rng(5)
    x = S.inputs(S.SPECS["dense_odd_sizes"], 1)[0]
    for pos in rng.integers(0, len(model), 300):
        bad = bytearray(model)
        bad[pos] ^= int(rng.integers(1, 256))
        try:
            it = edgeml.Interpreter(bytes(bad))
        except edgeml.EdgeMLError:
            continue
        assert it.run(x).shape == (1, 5)
