"""Block-pruned int8 models made by TensorFlow's converter (tests/block_sparse_models.py) run on the block-sparse
kernels (em_sparse.h) and give LiteRT's reference kernels' outputs bit for bit, identical with sparse="off",
"on" and "auto"; the Interpreter's `sparse` argument, `edgeml inspect`'s block table and `edgeml bench --sparse`."""
from __future__ import annotations

import block_sparse_models as S
import model_cache
import numpy as np
import pytest

import edgeml
from converters.tflite import from_tflite
from edgeml import EdgeMLError
from edgeml.runtime.packing_sparse import block_density

INPUT_SETS = 20


@pytest.fixture(scope="session")
def models(request, tmp_path_factory) -> model_cache.ConvertedModels:
    return model_cache.converted_models(request, tmp_path_factory, "block_sparse_models", S)


def quantized_inputs(model: bytes, spec) -> list:
    g = from_tflite(model)
    s, zp = g.tensors[g.inputs[0]].quant.scalar()
    return [np.clip(np.round(x / s) + zp, -128, 127).astype(np.int8) for x in S.inputs(spec, INPUT_SETS)]


@pytest.mark.parametrize("name", sorted(S.SPECS))
def test_block_pruned_model_is_bit_exact_on_sparse_kernels(models, name):
    litert = pytest.importorskip("ai_edge_litert.interpreter")
    spec, model = S.SPECS[name], models.get(name, "int8")
    g = from_tflite(model)
    pruned = [op for op in g.ops if op.type in ("CONV_2D", "FULLY_CONNECTED")]
    assert pruned, "the model holds no CONV_2D / FULLY_CONNECTED"
    for op in pruned:
        w = g.tensors[op.inputs[1]].data
        assert w.dtype == np.int8 and block_density(w.reshape(w.shape[0], -1)) <= 1 - spec.sparsity + 0.2
    on, off, auto = (edgeml.Interpreter(model, sparse=m) for m in ("on", "off", "auto"))
    assert all("sparse" in s.kernel for s in on.plan.steps if s.op.type in ("CONV_2D", "FULLY_CONNECTED"))
    assert not any("sparse" in s.kernel for s in off.plan.steps)
    ref = litert.Interpreter(model_content=model, experimental_op_resolver_type=litert.OpResolverType.BUILTIN_REF)
    ref.allocate_tensors()
    for k, x in enumerate(quantized_inputs(model, spec)):
        ref.set_tensor(ref.get_input_details()[0]["index"], x)
        ref.invoke()
        want = ref.get_tensor(ref.get_output_details()[0]["index"])
        for label, it in (("on", on), ("off", off), ("auto", auto)):
            np.testing.assert_array_equal(it.run(x), want, err_msg=f"{name} sparse={label} input {k}")


@pytest.mark.parametrize("name", sorted(S.SPECS))
def test_auto_takes_the_sparse_kernel_exactly_below_its_threshold(models, name):
    from edgeml.runtime.ops.sparse_gemm import MAX_DENSITY, sparse_path
    model = models.get(name, "int8")
    it = edgeml.Interpreter(model)
    g = it.graph
    for s in it.plan.steps:
        if s.op.type not in ("CONV_2D", "FULLY_CONNECTED"):
            continue
        w = g.tensors[s.op.inputs[1]].data
        o = s.op.options
        if s.op.type == "FULLY_CONNECTED":
            kind = "gemv" if int(np.prod(it.plan.shapes[s.op.inputs[0]])) // w.shape[1] < 4 else "1x1"
        else:
            one = w.shape[1] == w.shape[2] == 1 and o.get("stride_h", 1) == o.get("stride_w", 1) == 1
            kind = "1x1" if one else "kxk"
        want = block_density(w.reshape(w.shape[0], -1)) <= MAX_DENSITY[sparse_path()][kind]
        assert ("sparse" in s.kernel) == want, f"{name} step {s.op.index} {kind}: {s.kernel}"


def test_sparse_argument_is_checked_and_kept_by_clone(models):
    model = models.get("fc_batch4_60", "int8")
    with pytest.raises(EdgeMLError, match="sparse must be one of"):
        edgeml.Interpreter(model, sparse="yes")
    twin = edgeml.Interpreter(model, sparse="off").clone()
    assert not any("sparse" in s.kernel for s in twin.plan.steps)


def test_inspect_shows_block_density_and_kernel(models, tmp_path, capsys):
    path = tmp_path / "m.tflite"
    path.write_bytes(models.get("pointwise_odd_90", "int8"))
    from edgeml.cli import main
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "block density" in out and "conv2d_int8_sparse" in out


def test_bench_sparse_off_runs_the_dense_kernels(models, tmp_path, capsys):
    path = tmp_path / "m.tflite"
    path.write_bytes(models.get("pointwise_odd_90", "int8"))
    from edgeml.bench.runners import EdgeMLRunner
    from edgeml.cli import main
    assert not any("sparse" in s.kernel for s in EdgeMLRunner(str(path), 1, sparse="off").it.plan.steps)
    assert any("sparse" in s.kernel for s in EdgeMLRunner(str(path), 1, sparse="on").it.plan.steps)
    assert main(["bench", str(path), "--sparse", "off", "--num_runs", "3", "--min_secs", "0", "--quiet"]) == 0


@pytest.mark.parametrize("kernel,stride", [((3, 3), (1, 2)), ((1, 1), (1, 1))])
def test_onnx_qlinearconv_with_pruned_blocks_matches_onnxruntime(kernel, stride):
    """ONNX QLinearConv reads into the same CONV_2D prepare: block-pruned symmetric int8 weights take the sparse
    kernels and requantize as onnxruntime does (float scale, ties to even)."""
    pytest.importorskip("onnxruntime")
    from onnx import helper
    from tests.onnx_models import assert_ort_equal, make_model, ort_run
    rng = np.random.default_rng(3)
    oc, ic, kh, kw = 40, 12, *kernel
    w = rng.integers(-127, 128, (oc, ic, kh, kw)).astype(np.int8)
    keep = rng.random((-(-oc // 16), kh, kw, ic // 4)) >= 0.8      # 16 output x 4 input channels per tap
    mask = np.repeat(np.repeat(keep, 16, 0)[:oc], 4, 3).transpose(0, 3, 1, 2)
    w = (w * mask).astype(np.int8)
    inits = {"xs": np.array(0.03, np.float32), "xz": np.array(np.uint8(130)), "w": w,
             "ws": rng.uniform(0.002, 0.02, oc).astype(np.float32), "wz": np.zeros(oc, np.int8),
             "ys": np.array(0.05, np.float32), "yz": np.array(np.uint8(120)),
             "b": rng.integers(-500, 500, oc).astype(np.int32)}
    node = helper.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"], ["y"],
                            pads=[kh // 2, kw // 2] * 2, strides=list(stride))
    m = make_model([node], [("x", np.uint8, (1, ic, 9, 8))], [("y", np.uint8, None)], inits)
    on, off = edgeml.Interpreter(m, sparse="on"), edgeml.Interpreter(m, sparse="off")
    assert any("sparse" in s.kernel for s in on.plan.steps)
    for _ in range(5):
        x = rng.integers(0, 256, (1, ic, 9, 8)).astype(np.uint8)
        want = ort_run(m, {"x": x})[0]
        assert_ort_equal(on.run(x), want)
        assert_ort_equal(off.run(x), want)


def test_generated_c_runs_the_sparse_kernels_with_the_interpreters_bits(models, tmp_path):
    """`edgeml compile` plans as the Interpreter does (sparse="auto"), so a pruned model's C calls the sparse kernels
    and gives the same output bytes."""
    import shutil
    import subprocess

    from edgeml.codegen import compile_model
    if shutil.which("make") is None or shutil.which("gcc") is None:
        pytest.skip("make and gcc are needed to build the generated C")
    name = "pointwise_odd_90"                    # 1x1 convs at 10% block density: sparse on every x86 path
    path = tmp_path / f"{name}.tflite"
    path.write_bytes(models.get(name, "int8"))
    it = edgeml.Interpreter(str(path))
    assert any("sparse" in s.kernel for s in it.plan.steps), "auto took no sparse kernel: pick a sparser model"
    compiled = compile_model(path, tmp_path / "c", name="net")
    assert any("sparse" in k for k in compiled.kernels)
    done = subprocess.run(["make", "-s", "-C", str(tmp_path / "c"), "CC=gcc", "CFLAGS=-O2"], capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    xs = quantized_inputs(path.read_bytes(), S.SPECS[name])
    (tmp_path / "in.bin").write_bytes(b"".join(x.tobytes() for x in xs))
    done = subprocess.run([str(tmp_path / "c" / "net_main"), str(tmp_path / "in.bin"), str(tmp_path / "out.bin")],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out.bin").read_bytes() == b"".join(it.run(x).tobytes() for x in xs)
