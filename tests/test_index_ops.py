"""Resize, reduction, index / shape, cast, select and comparison ops against LiteRT's reference kernels.

Models come from TensorFlow's converter (tests/index_models.py, cached on disk like tests/tflite_models.py) in
float, int8, int16 and uint8: awkward shapes, negative axes, broadcasts, batch 2, dynamic batches.  Integer and bool
outputs must equal `OpResolverType.BUILTIN_REF` exactly, float outputs within rtol=1e-5, atol=1e-6, on 20 seeded
input sets.  Each test first checks that its model holds the ops it is about.  Malformed variants (edited
flatbuffers) must raise ModelFormatError / UnsupportedOpError naming the problem; indices out of range at run time
raise InputError.
"""
from __future__ import annotations

import re
import zlib

import index_models as M
import model_cache
import numpy as np
import pytest
from litert_reference import reference_model, run_reference
from litert_reference import run_all as run_ours

import edgeml
from converters import from_tflite
from edgeml import InputError, ModelFormatError, UnsupportedOpError
from edgeml.ir import UINT8

N_INPUTS = 20
RTOL, ATOL = 1e-5, 1e-6
CASES = [(name, kind) for name, spec in M.SPECS.items() for kind in spec.kinds]


@pytest.fixture(scope="session")
def models(request, tmp_path_factory) -> model_cache.ConvertedModels:
    return model_cache.converted_models(request, tmp_path_factory, "index_models", M)


def reference(model: bytes, shapes=None):
    """LiteRT's reference kernels.  Its BUILTIN_REF resolver registers TILE only up to version 2; version 3 (int8)
    runs the same kernel, so the reference copy of a model says version 2."""
    if any(op.type == "TILE" and op.version == 3 for op in from_tflite(model).ops):
        model = M.edit_model(model, lambda fb, m, sg: [setattr(c, "version", 2) for c in m.operatorCodes
                                                        if c.builtinCode == fb.BuiltinOperator.TILE])
    return reference_model(model, shapes)


def spec_positions(details) -> list:
    """The catalogue position of each model input (the converter names them in0, in1, ...)."""
    return [int(d["name"][2:]) if re.fullmatch(r"in\d+", d["name"]) else k for k, d in enumerate(details)]


def input_sets(spec, details, n: int, seed: int) -> list:
    """n input sets in the model's own input order: for quantized inputs full-range integers (even sets) or
    values drawn like the calibration data and quantized (odd sets); float inputs at 1, 1/4 and 4 times the
    spec's spread; integer and bool inputs in the spec's ranges."""
    rng = np.random.default_rng(seed)
    positions = spec_positions(details)
    sets = []
    for j in range(n):
        shapes = [None] * len(spec.inputs)
        for k, d in zip(positions, details):
            shapes[k] = tuple(d["shape"])
        values = M.sample(spec, rng, shapes=shapes)
        xs = []
        for k, d in zip(positions, details):
            x, dtype = values[k], np.dtype(d["dtype"])
            if dtype in (np.int8, np.uint8, np.int16) and spec.inputs[k][1] == "float32":
                info = np.iinfo(dtype)
                scale, zp = d["scale"], d["zero_point"]
                if j % 2:
                    x = np.clip(np.round(x / scale) + zp, info.min, info.max)
                else:
                    x = rng.integers(info.min, info.max + 1, size=x.shape)
            elif dtype == np.float32:
                x = x * (1.0, 0.25, 4.0)[j % 3]
            xs.append(np.asarray(x).astype(dtype))
        sets.append(xs)
    return sets


def assert_outputs_match(got: list, expected: list, what: str):
    assert len(got) == len(expected), what
    for k, (g, e) in enumerate(zip(got, expected)):
        assert g.dtype == e.dtype and g.shape == e.shape, (what, k, g.dtype, g.shape, e.dtype, e.shape)
        if e.dtype == np.float32:
            np.testing.assert_allclose(g, e, rtol=RTOL, atol=ATOL, err_msg=f"{what}: output {k}")
        elif not np.array_equal(g, e):
            bad = np.argwhere(g != e)
            pytest.fail(f"{what}: output {k} differs from LiteRT in {len(bad)}/{e.size} values; first at "
                        f"{tuple(bad[0])}: edgeml {g[tuple(bad[0])]} vs LiteRT {e[tuple(bad[0])]}")


def check_against_micro(model: bytes, sets: list, what: str):
    """TFLite Micro's reference kernels, for the cases where LiteRT's BUILTIN_REF is wrong."""
    runtime = pytest.importorskip("tflite_micro.python.tflite_micro.runtime")
    ours, micro = edgeml.Interpreter(model), runtime.Interpreter.from_bytes(model)
    n_out = len(ours.get_output_details())
    for j, xs in enumerate(sets):
        for i, x in enumerate(xs):
            micro.set_input(x, i)
        micro.invoke()
        assert_outputs_match(run_ours(ours, xs), [micro.get_output(i) for i in range(n_out)],
                             f"{what} input set {j} (vs TFLite Micro)")


def check_against_reference(model: bytes, sets: list, what: str, shapes=None):
    ours = edgeml.Interpreter(model)
    ref = reference(model, shapes)
    if shapes is not None:
        for i, s in enumerate(shapes):
            ours.resize_input(i, s)
    # names and types here; shapes with the outputs (LiteRT sizes a dynamic output only when it runs)
    for a, b in ((ours.get_input_details(), ref.get_input_details()),
                 (ours.get_output_details(), ref.get_output_details())):
        assert [(d["name"], np.dtype(d["dtype"])) for d in a] == [(d["name"], np.dtype(d["dtype"])) for d in b]
    for j, xs in enumerate(sets):
        assert_outputs_match(run_ours(ours, xs), run_reference(ref, xs), f"{what} input set {j}")
    return ours


KIND_TYPES = {"int8": np.int8, "uint8": np.uint8, "int16": np.int16}
SHAPE_ARITHMETIC = {"PACK"}        # int32 in every kind of model


def assert_holds(model: bytes, ops, kind: str = ""):
    """The model has each op; in a quantized kind, each (shape arithmetic aside) touches a tensor of that type,
    so an op the converter left in float does not pass for a quantized one."""
    graph = from_tflite(model)
    types = {op.type for op in graph.ops}
    assert set(ops) <= types, f"the model lacks {sorted(set(ops) - types)}; it has {sorted(types)}"
    if kind in KIND_TYPES:
        typed = {op.type for op in graph.ops if any(graph.tensors[t].dtype == KIND_TYPES[kind]
                                                    for t in op.inputs + op.outputs if t >= 0)
                 or (kind == "uint8" and op.options.get(UINT8))}       # uint8 held as int8 by the reader
        assert set(ops) - SHAPE_ARITHMETIC <= typed, f"{sorted(set(ops) - typed)} run in another type than {kind}"


# ----- conformance -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name,kind", CASES, ids=[f"{n}-{k}" for n, k in CASES])
def test_op_matches_litert_reference(models, name, kind):
    spec = M.SPECS[name]
    model = models.get(name, kind)
    assert_holds(model, spec.ops[kind], kind)
    details = edgeml.Interpreter(model).get_input_details()
    sets = input_sets(spec, details, N_INPUTS, zlib.crc32(f"{name}/{kind}".encode()))
    if kind in spec.micro_reference:
        check_against_micro(model, sets, f"{name} ({kind})")
    else:
        check_against_reference(model, sets, f"{name} ({kind})")


# ----- dynamic batch: the converter's shape arithmetic folds at load and follows a resized batch ------------------

@pytest.mark.parametrize("name", ["dynamic_batch_reshape_tile", "shape_outputs"])
@pytest.mark.parametrize("kind", ["float", "int8"])
def test_dynamic_batch_graphs_fold_and_follow_the_batch(models, name, kind):
    spec = M.SPECS[name]
    model = models.get(name, kind)
    assert_holds(model, spec.ops[kind], kind)
    plan = edgeml.Interpreter(model).plan
    folded = [s.op.type for s in plan.steps if s.kernel != "copy"
              and all(t in plan.constants for t in s.op.inputs if t >= 0)]
    assert folded == [], f"steps left for ops of constants only: {folded}"
    if name == "dynamic_batch_reshape_tile":
        assert not {"SHAPE", "PACK"} & {s.op.type for s in plan.steps}
    for batch in (1, 3):
        details = edgeml.Interpreter(model).get_input_details()
        shapes = [(batch, *tuple(d["shape"])[1:]) for d in details]
        sets = input_sets(spec, [dict(d, shape=np.array(s)) for d, s in zip(details, shapes)], 6, batch)
        check_against_reference(model, sets, f"{name} ({kind}) batch {batch}", shapes=shapes)


def test_shape_output_is_copied_from_the_folded_constant(models):
    model = models.get("shape_outputs", "float")
    ours = edgeml.Interpreter(model)
    assert [s.kernel for s in ours.plan.steps if s.op.type == "SHAPE"] == ["copy", "copy"]
    out = ours.run(np.zeros((5, 3), np.float32))
    assert out[0].dtype == np.int32 and out[0].tolist() == [5, 3]
    assert out[1].dtype == np.int64 and out[1].tolist() == [5, 3]


# ----- indices that arrive at run time -------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["float", "int8"])
def test_gather_index_out_of_range_at_run_time_is_an_input_error(models, kind):
    """GATHER reads its indices from an input: a bad one raises InputError at invoke (never an out-of-bounds
    read); the next good input runs normally."""
    model = models.get("gather_runtime_indices", kind)
    ours = edgeml.Interpreter(model)
    x_detail = ours.get_input_details()[0]
    x = np.ones(tuple(x_detail["shape"]), x_detail["dtype"])
    for bad, shown in ((5, "index 5"), (-1, "index -1"), (2 ** 31 - 1, "index 2147483647")):
        idx = np.zeros((2, 3), np.int32)
        idx[1, 2] = bad
        ours.set_input(x, 0)
        ours.set_input(idx, 1)
        with pytest.raises(InputError, match=rf"GATHER.*{shown} is outside 0\.\.[34]"):
            ours.invoke()
    good = np.array([[0, 3, 1], [2, 2, 0]], np.int32)
    check_against_reference(model, [[x, good]], f"gather_runtime_indices ({kind}) after an error")


def test_gather_nd_index_out_of_range_at_run_time_is_an_input_error(models):
    model = models.get("gather_nd_runtime_indices", "float")
    ours = edgeml.Interpreter(model)
    details = ours.get_input_details()
    xs = [np.zeros(tuple(d["shape"]), d["dtype"]) for d in details]
    xs[1][2] = (1, 4)                    # params are [2, 5, 4]: row index 1 fits, 4 fits the second axis (5)
    xs[2][1, 3] = (2, 0, 0)              # 2 is past the first axis (2)
    for i, x in enumerate(xs):
        ours.set_input(x, i)
    with pytest.raises(InputError, match=r"GATHER_ND.*index 2 is outside params \[2, 5, 4\]"):
        ours.invoke()
    xs[2][1, 3] = (1, 4, 3)
    assert_outputs_match(run_ours(ours, xs), run_reference(reference(model), xs), "gather_nd after an error")


# ----- malformed and unsupported variants ----------------------------------------------------------------------

def _ops_of(fb, model, sg, name):
    code = getattr(fb.BuiltinOperator, name)
    return [op for op in sg.operators if max(model.operatorCodes[op.opcodeIndex].builtinCode,
                                             model.operatorCodes[op.opcodeIndex].deprecatedBuiltinCode) == code]


def _set_constant(fb, model, sg, tensor_index, values):
    buf = fb.BufferT()
    buf.data = list(np.asarray(values).tobytes())
    model.buffers.append(buf)
    sg.tensors[tensor_index].buffer = len(model.buffers) - 1


def _first(name, change):
    """An edit of the first `name` op: change(fb, model, sg, op)."""
    def edit(fb, model, sg):
        change(fb, model, sg, _ops_of(fb, model, sg, name)[0])
    return edit


def _constant_input(position, values):
    return lambda fb, model, sg, op: _set_constant(fb, model, sg, op.inputs[position], values)


def _option(field, value):
    return lambda fb, model, sg, op: setattr(op.builtinOptions, field, value)


def _options(**fields):
    return lambda fb, model, sg, op: [setattr(op.builtinOptions, k, v) for k, v in fields.items()]


def _tensor_type(position, kind, type_name):
    def change(fb, model, sg, op):
        t = sg.tensors[(op.inputs if kind == "input" else op.outputs)[position]]
        t.type = getattr(fb.TensorType, type_name)
    return change


def _output_scale(factor):
    def change(fb, model, sg, op):
        q = sg.tensors[op.outputs[0]].quantization
        q.scale = [float(s) * factor for s in q.scale]
    return change


def _input_scale(position, factor):
    def change(fb, model, sg, op):
        q = sg.tensors[op.inputs[position]].quantization
        q.scale = [float(v) * factor for v in q.scale]
    return change


def _version(number):
    return lambda fb, model, sg, op: setattr(model.operatorCodes[op.opcodeIndex], "version", number)


MALFORMED = [
    # (catalogue model, kind, op edited, edit, error, message fragment)
    ("gather_constant_indices", "float", "GATHER", _constant_input(1, np.array([2, 0, 3, 3], np.int32)),
     ModelFormatError, r"index 3 is out of range: it must lie in 0\.\.2"),
    ("gather_constant_indices", "int8", "GATHER", _constant_input(1, np.array([2, -1, 0, 0], np.int32)),
     ModelFormatError, r"index -1 is out of range"),
    ("gather_constant_indices", "float", "GATHER", _option("axis", 4), ModelFormatError, r"axis 4 outside rank 4"),
    ("gather_runtime_indices", "float", "GATHER", _option("batchDims", 3), ModelFormatError, r"batch_dims 3"),
    ("gather_constant_indices", "float", "GATHER", _version(99), UnsupportedOpError, r"version 99 of GATHER"),
    ("reduce_max_min", "float", "REDUCE_MAX", _constant_input(1, np.array([1, 4], np.int32)), ModelFormatError,
     r"axis 4 outside rank 4"),
    ("reduce_sum", "int8", "SUM", _constant_input(1, np.array([1, -5], np.int32)), ModelFormatError,
     r"axis -5 outside rank 4"),
    ("reduce_max_min", "int8", "REDUCE_MAX", _output_scale(2.0), UnsupportedOpError,
     r"copies values without requantizing"),
    ("arg_max_min", "float", "ARG_MAX", _constant_input(1, np.array([4], np.int32)), ModelFormatError,
     r"axis 4 outside rank 4"),
    ("arg_max_min", "int8", "ARG_MAX", _tensor_type(0, "output", "FLOAT32"), UnsupportedOpError,
     r"output type float32 \(int32 or int64 expected\)"),
    ("maximum_minimum", "int8", "MINIMUM", _output_scale(1.5), UnsupportedOpError, r"must be equal"),
    ("select_and_select_v2", "float", "SELECT_V2", _tensor_type(0, "output", "INT32"), ModelFormatError,
     r"has type int32, .* float32; they must match"),
    ("comparisons", "float", "GREATER", _tensor_type(0, "output", "INT32"), ModelFormatError,
     r"must be bool, not int32"),
    ("resize_bilinear_modes", "int8", "RESIZE_BILINEAR", _constant_input(1, np.array([0, 4], np.int32)),
     ModelFormatError, r"output size \[0, 4\] must be positive"),
    ("resize_nearest_modes", "float", "RESIZE_NEAREST_NEIGHBOR", _options(alignCorners=True, halfPixelCenters=True),
     ModelFormatError,
     r"align_corners and half_pixel_centers cannot both be set"),
    ("slice_tile_broadcast", "float", "SLICE", _constant_input(2, np.array([-1, 4, -1, 2], np.int32)),
     ModelFormatError, r"begin 1 and size 4 do not fit dimension 1 of size 4"),
    ("slice_tile_broadcast", "int8", "TILE", _constant_input(1, np.array([1, -2, 1, 3], np.int32)),
     ModelFormatError, r"multiples \[1, -2, 1, 3\]"),
    ("slice_tile_broadcast", "float", "BROADCAST_TO", _constant_input(1, np.array([2, 4, 3, 3], np.int32)),
     ModelFormatError, r"cannot broadcast \[2, 1, 5, 1\] to \[2, 4, 3, 3\]"),
    ("cast_between_types", "float", "CAST", _tensor_type(0, "output", "FLOAT16"), UnsupportedOpError,
     r"type float16"),
    ("reduce_prod", "uint8", "REDUCE_PROD", lambda fb, model, sg, op: None, UnsupportedOpError,
     r"quantized uint8 REDUCE_PROD is not supported"),
    ("comparisons", "int8", "GREATER", _input_scale(0, 300.0), UnsupportedOpError,
     r"LiteRT compares quantized values only for scales below 1"),
]


@pytest.mark.parametrize("name,kind,op_name,change,error,message", MALFORMED,
                         ids=[f"{m[2]}-{m[5][:24]}" for m in MALFORMED])
def test_malformed_or_unsupported_variant_is_refused_at_load(models, name, kind, op_name, change, error, message):
    model = M.edit_model(models.get(name, kind), _first(op_name, change))
    with pytest.raises(error, match=message):
        edgeml.Interpreter(model)


# ----- public models -------------------------------------------------------------------------------------------

def _cut(model: bytes, keep, inputs, outputs) -> bytes:
    """The model reduced to the ops `keep` (a slice), with the given graph inputs and outputs."""
    def change(fb, m, sg):
        sg.operators = sg.operators[keep]
        sg.inputs, sg.outputs = list(inputs), list(outputs)
    return M.edit_model(model, change)


def _file_ops(model: bytes) -> tuple:
    """([(op type, input tensor indices, output tensor indices)], graph outputs) of subgraph 0, as stored."""
    import tflite

    from converters.tflite import OPERATOR_NAMES
    m = tflite.Model.GetRootAsModel(model, 0)
    sg = m.Subgraphs(0)
    ops = []
    for k in range(sg.OperatorsLength()):
        op = sg.Operators(k)
        code = m.OperatorCodes(op.OpcodeIndex())
        ops.append((OPERATOR_NAMES[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())],
                    [int(v) for v in op.InputsAsNumpy()], [int(v) for v in op.OutputsAsNumpy()]))
    return ops, [int(v) for v in sg.OutputsAsNumpy()]


def _random_inputs(model: bytes, n: int, seed: int) -> list:
    rng = np.random.default_rng(seed)
    sets = []
    for _ in range(n):
        xs = []
        for d in edgeml.Interpreter(model).get_input_details():
            shape, dtype = tuple(d["shape"]), np.dtype(d["dtype"])
            if dtype == np.float32:
                xs.append(rng.standard_normal(shape).astype(np.float32))
            else:
                info = np.iinfo(dtype)
                xs.append(rng.integers(info.min, info.max + 1, size=shape).astype(dtype))
        sets.append(xs)
    return sets


def test_gmp_wl_48_reduce_max_model_is_bit_exact(public_models):
    model = (public_models / "tflite" / "gmp_wl_48_int8.tflite").read_bytes()
    assert_holds(model, {"REDUCE_MAX"}, "int8")
    check_against_reference(model, _random_inputs(model, N_INPUTS, 1), "gmp_wl_48_int8")


def test_deeplab_uint8_resize_and_arg_max_tail_is_bit_exact(public_models):
    """deeplabv3's uint8 tail (RESIZE_BILINEAR 33x33 -> 33x33 -> 513x513 with align_corners, ARG_MAX to int64)
    and its 1x1 -> 33x33 RESIZE_BILINEAR, cut out of the model (its uint8 convolutions are another group's)."""
    model = (public_models / "tflite" / "deeplabv3_mnv2_pascal_quant.tflite").read_bytes()
    ops, outputs = _file_ops(model)         # the file's own ops (the reader rewrites uint8 ones)
    last_conv = max(k for k, (kind, _, _) in enumerate(ops) if kind == "CONV_2D")
    tail = ops[last_conv + 1:]
    assert [kind for kind, _, _ in tail] == ["RESIZE_BILINEAR", "RESIZE_BILINEAR", "ARG_MAX"]
    cut = _cut(model, slice(last_conv + 1, None), tail[0][1][:1], outputs)
    check_against_reference(cut, _random_inputs(cut, 3, 2), "deeplab tail")
    first = next(k for k, (kind, _, _) in enumerate(ops) if kind == "RESIZE_BILINEAR")
    single = _cut(model, slice(first, first + 1), ops[first][1][:1], ops[first][2])
    check_against_reference(single, _random_inputs(single, 3, 3), "deeplab 1x1 resize")


def test_ssd_mobilenet_from_its_int8_input_is_bit_exact(public_models):
    """The SSD's graph after its uint8 -> int8 QUANTIZE (another group's op): SHAPE -> STRIDED_SLICE -> PACK ->
    RESHAPE / TILE fold at load, RESIZE_BILINEAR int8 runs, the anchors output is a folded constant."""
    model = (public_models / "tflite" / "ssd_mobilenet_v1_025_224_int8.tflite").read_bytes()
    ops, outputs = _file_ops(model)
    assert ops[0][0] == "QUANTIZE"
    cut = _cut(model, slice(1, None), ops[0][2], outputs)
    assert_holds(cut, {"SHAPE", "STRIDED_SLICE", "PACK", "TILE", "RESIZE_BILINEAR", "RESHAPE"})
    ours = check_against_reference(cut, _random_inputs(cut, 3, 4), "ssd from int8")
    assert not {"SHAPE", "PACK", "TILE"} & {s.op.type for s in ours.plan.steps}


@pytest.mark.parametrize("name", ["deeplabv3_mnv2_pascal_quant", "ssd_mobilenet_v1_025_224_int8"])
def test_whole_public_model_is_bit_exact(public_models, name):
    model = (public_models / "tflite" / f"{name}.tflite").read_bytes()
    check_against_reference(model, _random_inputs(model, 1, 5), name)


# ----- the integer resize in both rounding builds ------------------------------------------------------------------

def resize_bilinear_integer(x: np.ndarray, out_h: int, out_w: int, align: bool, half: bool, single: bool):
    """LiteRT's ResizeBilinearInteger written out per axis in Python integers (C division truncates)."""
    def tdiv(a, b):
        return int(a / b)

    def axis(n_in, n_out):
        scale = (1024 * (n_in - 1) + (n_out - 1) // 2) // (n_out - 1) if align and n_out > 1 else \
            (1024 * n_in + n_out // 2) // n_out
        rows = []
        for v in range(n_out):
            pos = v * scale + scale // 2 - 512 if half else v * scale
            lo = max(tdiv(pos, 1024), 0)
            rows.append((lo, min(tdiv(pos + 1023, 1024), n_in - 1), pos - 1024 * lo))
        return rows
    out = np.zeros((x.shape[0], out_h, out_w, x.shape[3]), x.dtype)
    xs = x.astype(np.int64)
    for y, (y0, y1, fy) in enumerate(axis(x.shape[1], out_h)):
        for c, (x0, x1, fx) in enumerate(axis(x.shape[2], out_w)):
            s = (xs[:, y0, x0] * (1024 - fy) * (1024 - fx) + xs[:, y1, x0] * fy * (1024 - fx)
                 + xs[:, y0, x1] * (1024 - fy) * fx + xs[:, y1, x1] * fy * fx)
            if single:
                out[:, y, c] = (s + (1 << 19)) >> 20
            else:
                r = s + np.where(s > 0, 1 << 19, -(1 << 19))
                out[:, y, c] = np.sign(r) * (np.abs(r) >> 20)
    return out


@pytest.mark.parametrize("rounding", ["double", "single"])
def test_int8_resize_bilinear_follows_the_integer_formula_in_both_rounding_builds(models, rounding):
    model = models.get("resize_bilinear_modes", "int8")
    graph = from_tflite(model)
    ours = edgeml.Interpreter(model, rounding=rounding)
    rng = np.random.default_rng(11)
    x = rng.integers(-128, 128, size=tuple(ours.get_input_details()[0]["shape"])).astype(np.int8)
    outs = dict(zip(graph.outputs, run_ours(ours, [x])))
    ties = 0            # outputs on an exact half, where the two builds round differently
    for op in graph.ops:
        size = graph.tensors[op.inputs[1]].data
        want, other = (resize_bilinear_integer(x, int(size[0]), int(size[1]), op.options["align_corners"],
                                               op.options["half_pixel_centers"], single)
                       for single in (rounding == "single", rounding != "single"))
        np.testing.assert_array_equal(outs[op.outputs[0]], want, err_msg=f"{op.describe()} {op.options}")
        ties += int(np.sum(want != other))
    assert ties > 0


# ----- hand-made graphs: empty tensors and constant shape arithmetic ------------------------------------------------

def _graph(tensors, ops, inputs, outputs):
    """A Graph from (name, shape, dtype, data) tuples and (type, inputs, outputs, options) tuples."""
    from edgeml.ir import Graph, Op, Tensor
    ts = [Tensor(k, name, tuple(shape), np.dtype(dtype), None, None if data is None else np.asarray(data, dtype))
          for k, (name, shape, dtype, data) in enumerate(tensors)]
    return Graph(tensors=ts, ops=[Op(k, t, 1, list(i), list(o), dict(opts)) for k, (t, i, o, opts) in enumerate(ops)],
                 inputs=list(inputs), outputs=list(outputs), source="tflite")


def test_resizing_an_empty_image_is_refused():
    g = _graph([("x", (1, 0, 3, 2), "float32", None), ("size", (2,), "int32", [4, 4]), ("y", (1, 4, 4, 2), "float32",
                                                                                         None)],
               [("RESIZE_NEAREST_NEIGHBOR", [0, 1], [2], {})], [0], [2])
    with pytest.raises(ModelFormatError, match=r"cannot resize the empty image \[1, 0, 3, 2\]"):
        edgeml.Interpreter(g)


def test_gather_from_an_empty_axis_loads_and_rejects_every_run_time_index():
    g = _graph([("x", (2, 0, 3), "float32", None), ("i", (4,), "int32", None), ("y", (2, 4, 3), "float32", None)],
               [("GATHER", [0, 1], [2], {"axis": 1})], [0, 1], [2])
    ours = edgeml.Interpreter(g)
    ours.set_input(np.zeros((2, 0, 3), np.float32), 0)
    ours.set_input(np.zeros(4, np.int32), 1)
    with pytest.raises(InputError, match=r"index 0 is outside 0\.\.-1"):
        ours.invoke()


def test_sum_of_an_empty_int8_input_is_zero_and_shape_arithmetic_of_constants_folds():
    from edgeml.ir import Quantization
    q = Quantization(np.array([0.5]), np.array([3]))
    g = _graph([("x", (2, 0), "int8", None), ("axis", (1,), "int32", [1]), ("s", (2,), "int8", None),
                ("shape", (2,), "int32", [6, 2]), ("axis0", (1,), "int32", [0]), ("n", (1,), "int32", None),
                ("cast", (1,), "float32", None)],
               [("SUM", [0, 1], [2], {"keep_dims": False}), ("REDUCE_PROD", [3, 4], [5], {"keep_dims": True}),
                ("CAST", [5], [6], {})], [0], [2, 6])
    g.tensors[0].quant = g.tensors[2].quant = q
    ours = edgeml.Interpreter(g)
    assert [s.op.type for s in ours.plan.steps] == ["SUM", "CAST"]      # the folded CAST output is copied
    outs = ours.run(np.zeros((2, 0), np.int8))
    assert outs[0].tolist() == [0, 0] and outs[1].tolist() == [12.0]
