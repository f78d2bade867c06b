"""No silent wrong answers and one error type: threads sharing an Interpreter, API misuse, memory budgets, files that
are not model files, hostile shapes that used to escape as KeyError / ValueError / MemoryError / OverflowError."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import edgeml
from edgeml import EdgeMLError, InputError, ModelFormatError
from test_hostile_models import FLOAT32, INT8, base_spec, build_model
from thread_hammer import hammer

MODELS = Path(__file__).resolve().parent / "models" / "mlperf_tiny"
RESHAPE = 22


# ----- one Interpreter, several threads ------------------------------------------------------------------

@pytest.mark.parametrize("name", ["kws_ref_model_float32", "kws_ref_model"])
def test_threads_sharing_one_interpreter_get_their_own_answers(name):
    """run() is atomic: two threads calling it on one Interpreter with different inputs (and batch sizes) each get
    the output of their own input (before: 24% wrong for the float model, spurious InputErrors with batches)."""
    it = edgeml.Interpreter(MODELS / f"{name}.tflite")
    rng = np.random.default_rng(0)
    dtype = it.get_input_details()[0]["dtype"]
    xs = [rng.uniform(-1, 1, (b, 49, 10, 1)).astype(np.float32) if dtype == np.float32
          else rng.integers(-128, 128, (b, 49, 10, 1)).astype(np.int8) for b in (1, 1, 2, 1, 3)]
    want = [it.run(x) for x in xs]
    hammer(lambda x, r: it.run(x), xs, want, np.array_equal, threads=2, calls=150)


def test_per_thread_interpreters_share_the_packed_weights():
    """Interpreter.clone(): its own arena and state, the same packed weights; same outputs as the original."""
    it = edgeml.Interpreter(MODELS / "vww_96_int8.tflite")
    twin = it.clone()
    assert twin.arena_bytes == it.arena_bytes
    assert twin.plan.arena.__array_interface__["data"][0] != it.plan.arena.__array_interface__["data"][0]
    assert twin.shared_weight_bytes == it.shared_weight_bytes > 0
    x = np.random.default_rng(1).integers(-128, 128, (1, 96, 96, 3)).astype(np.int8)
    np.testing.assert_array_equal(twin.run(x), it.run(x))


# ----- API states ----------------------------------------------------------------------------------------

def test_get_output_before_invoke_is_an_input_error():
    it = edgeml.Interpreter(MODELS / "ad01_int8.tflite")
    with pytest.raises(InputError, match="before invoke"):
        it.get_output()


def test_invoke_before_every_input_is_set_is_an_input_error():
    it = edgeml.Interpreter(MODELS / "ad01_int8.tflite")
    with pytest.raises(InputError, match="input 0 .* not been set"):
        it.invoke()
    it.set_input(np.zeros((1, 640), np.int8))
    it.invoke()
    it.invoke()                            # inputs persist between invokes
    it.resize_input(0, (2, 640))
    with pytest.raises(InputError, match="not been set"):     # a re-plan clears the arena
        it.invoke()


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("path", [MODELS / "ad01_int8.tflite", MODELS.parent / "mlperf_tiny_onnx" / "ad01_int8.onnx"])
def test_non_finite_floats_into_a_quantized_input_are_refused(path, bad):
    it = edgeml.Interpreter(path)
    x = np.zeros((1, 640), np.float32)
    x[0, 7] = bad
    with pytest.raises(InputError, match="not finite"):
        it.run(x)


@pytest.mark.parametrize("shape", [(1.7, 640), (True, 640), (np.float64(2.0), 640), ("2", 640)])
def test_non_integer_shapes_are_refused(shape):
    it = edgeml.Interpreter(MODELS / "ad01_int8.tflite")
    with pytest.raises(InputError, match="whole number"):
        it.resize_input(0, shape)


# ----- memory budget -------------------------------------------------------------------------------------

def test_a_resize_past_the_arena_budget_is_refused_before_allocating():
    it = edgeml.Interpreter(MODELS / "kws_ref_model.tflite")
    it.resize_input(0, (10 ** 6, 49, 10, 1))           # 15 GiB of activations
    with pytest.raises(InputError, match="arena"):
        it.invoke()
    it.resize_input(0, (2 ** 62, 49, 10, 1))
    with pytest.raises(InputError):
        it.invoke()
    it.resize_input(0, (1, 49, 10, 1))                   # the interpreter still works afterwards
    it.set_input(np.zeros((1, 49, 10, 1), np.int8))
    it.invoke()


def test_max_arena_bytes_is_an_interpreter_option():
    with pytest.raises(ModelFormatError, match="arena"):
        edgeml.Interpreter(MODELS / "vww_96_int8.tflite", max_arena_bytes=10_000)
    assert edgeml.Interpreter(MODELS / "vww_96_int8.tflite", max_arena_bytes=1 << 20).arena_bytes <= 1 << 20
    with pytest.raises(EdgeMLError, match="max_arena_bytes"):
        edgeml.Interpreter(MODELS / "ad01_int8.tflite", max_arena_bytes=0)


def test_max_weight_bytes_bounds_the_packed_copies():
    with pytest.raises(ModelFormatError, match="weight"):
        edgeml.Interpreter(MODELS / "vww_96_int8.tflite", max_weight_bytes=50_000)


# ----- files that are not model files --------------------------------------------------------------------

def test_a_device_is_not_a_model_file():
    with pytest.raises(ModelFormatError, match="regular file"):
        edgeml.Interpreter("/dev/zero")


def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "model.tflite"
    os.mkfifo(fifo)
    with pytest.raises(ModelFormatError, match="regular file"):
        edgeml.Interpreter(fifo)


# ----- hostile shapes --------------------------------------------------------------------------------------

def _reshape_model(shape_tensor: dict) -> bytes:
    spec = base_spec()
    spec["opcodes"] = [(RESHAPE, 1)]
    spec["tensors"] = [
        {"name": "input", "shape": [1, 4], "type": INT8, "buffer": 1, "quant": {"scale": [0.5], "zero_point": [0]}},
        shape_tensor,
        {"name": "output", "shape": [4], "type": INT8, "buffer": 1, "quant": {"scale": [0.5], "zero_point": [0]}},
    ]
    spec["buffers"] = [b"", b"", np.array([np.nan], np.float32).tobytes()]
    spec["ops"] = [{"opcode": 0, "inputs": [0, 1], "outputs": [2]}]
    spec["inputs"], spec["outputs"] = [0], [2]
    return build_model(spec)


def test_an_op_input_nothing_produces_is_a_model_format_error():
    """A RESHAPE shape tensor on the empty buffer 0: neither a constant nor produced (before: KeyError)."""
    data = _reshape_model({"name": "shape", "shape": [1], "type": 2, "buffer": 0})
    with pytest.raises(ModelFormatError, match="'shape', which is neither a constant, a graph input nor produced"):
        edgeml.Interpreter(data)


def test_a_float_reshape_shape_is_a_model_format_error():
    """A float32 RESHAPE shape tensor holding NaN (before: ValueError: cannot convert float NaN to integer)."""
    data = _reshape_model({"name": "shape", "shape": [1], "type": FLOAT32, "buffer": 2})
    with pytest.raises(ModelFormatError, match="int32"):
        edgeml.Interpreter(data)


@pytest.mark.parametrize("pad", [2 ** 31 - 5, 2 ** 40, 2 ** 62])
def test_huge_onnx_pads_are_refused_before_allocating(pad):
    """Pads near 2^31 .. 2^62 (before: MemoryError / 'Maximum allowed dimension exceeded' / OverflowError)."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper
    node = helper.make_node("Pad", ["x", "pads"], ["y"], mode="constant")
    pads = helper.make_tensor("pads", TensorProto.INT64, [8], [0, 0, pad, 0, 0, 0, 0, 0])
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 3, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [pads])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(ModelFormatError):
        edgeml.Interpreter(m.SerializeToString())
    del onnx


@pytest.mark.parametrize("dilation", [2 ** 30, 2 ** 62])
def test_huge_onnx_dilations_stay_exact_or_are_refused(dilation):
    """Dilation and padding near 2^30 / 2^62 on a 5x5 image: only the centre row of taps lands in the image, so the
    result is a 1-D convolution along the width; the 64-bit index arithmetic must not wrap (before: MemoryError
    or a 130 GiB arena on such files)."""
    pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(3)
    w = rng.standard_normal((2, 2, 3, 3)).astype(np.float32)
    node = helper.make_node("Conv", ["x", "w"], ["y"], dilations=[dilation, 1], pads=[dilation, 1, dilation, 1])
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 5, 5])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                          [numpy_helper.from_array(w, "w")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    try:
        it = edgeml.Interpreter(m.SerializeToString())
    except EdgeMLError:
        return
    x = rng.standard_normal((1, 2, 5, 5)).astype(np.float32)
    xp = np.pad(x, ((0, 0), (0, 0), (0, 0), (1, 1)))
    want = np.einsum("oik,nihwk->nohw", w[:, :, 1, :],
                     np.stack([xp[..., k:k + 5] for k in range(3)], axis=-1))
    np.testing.assert_allclose(it.run(x), want, rtol=1e-5, atol=1e-5)


# ----- the command line and the trainer ---------------------------------------------------------------------

def _cli(args, capsys) -> tuple:
    from edgeml.cli import main
    code = main(args)
    err = capsys.readouterr().err
    return code, err


def test_cli_reports_bad_model_files_in_one_line(capsys, tmp_path):
    for model in ("/dev/zero", str(tmp_path)):
        code, err = _cli(["run", model], capsys)
        assert code == 2 and err.count("\n") == 1 and "regular file" in err


def test_cli_refuses_a_pickled_input_in_one_line(capsys, tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    code, err = _cli(["run", str(MODELS / "ad01_int8.tflite"), "--input", str(path)], capsys)
    assert code == 2 and err.count("\n") == 1 and "not a readable .npy array" in err


def _hidden_module_run(module: str, code: str):
    """`code` run in a fresh Python in which importing `module` fails (as if it were not installed)."""
    import subprocess
    import sys
    return subprocess.run([sys.executable, "-c", f"import sys; sys.modules[{module!r}] = None\n" + code],
                          capture_output=True, text=True, timeout=120, cwd=Path(__file__).resolve().parents[1])


CLI_RUN_AD01_ONNX = ("from edgeml.cli import main\n"
                     f"sys.exit(main(['run', {str(MODELS.parent / 'mlperf_tiny_onnx' / 'ad01_int8.onnx')!r}]))")


def test_cli_without_the_onnx_extra_says_so_in_one_line():
    """Without the protobuf runtime (which the `onnx` extra brings) a .onnx model is refused in one line."""
    done = _hidden_module_run("google.protobuf", CLI_RUN_AD01_ONNX)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "needs the 'onnx' package" in done.stderr


def test_without_the_onnx_package_a_quantized_model_runs_and_a_fold_says_what_it_needs():
    """The reader parses with the protobuf runtime alone: without the `onnx` package a QDQ model (raw-data
    initializers) still runs; a constant fold, which uses onnx's reference evaluator, names the package."""
    done = _hidden_module_run("onnx", CLI_RUN_AD01_ONNX)
    assert done.returncode == 0, done.stderr
    import onnx
    from onnx import helper

    from converters.onnx import from_onnx
    shape = helper.make_tensor("s", onnx.TensorProto.INT64, [2], [1, -4])
    nodes = [helper.make_node("Constant", [], ["c"], value=shape),
             helper.make_node("Neg", ["c"], ["n"]), helper.make_node("Reshape", ["x", "n"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [2, 2])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)])
    data = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    from_onnx(data)          # (folds Neg with the onnx package present)
    done = _hidden_module_run("onnx", "from converters.onnx import from_onnx\n"
                                      "from edgeml.errors import UnsupportedOpError\n"
                                      "try:\n"
                                      f"    from_onnx({data!r})\n"
                                      "except UnsupportedOpError as exc:\n"
                                      "    print(exc)\n")
    assert done.returncode == 0, done.stderr
    assert "needs the 'onnx' package" in done.stdout and "pip install edgeml[onnx]" in done.stdout, done.stdout


@pytest.mark.parametrize("flag", ["--batch-size", "--epochs"])
def test_train_refuses_zero_counts_in_one_line(capsys, tmp_path, flag):
    code, err = _cli(["train", flag, "0", "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and err.count("\n") == 1 and "at least 1" in err


def test_train_refuses_a_foreign_non_empty_out(tmp_path):
    from edgeml.errors import TrainingError
    from edgeml.train.pipeline import TrainConfig, train
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("years of work")
    with pytest.raises(TrainingError, match="not written by edgeml train"):
        train(TrainConfig(out=str(out)))
    assert (out / "thesis.tex").read_text() == "years of work"


def test_train_keeps_the_previous_output_until_the_new_one_is_complete(tmp_path, monkeypatch):
    from edgeml.train import pipeline
    out = tmp_path / "run"
    out.mkdir()
    (out / pipeline.OUTPUT_MARKER).write_text("")
    (out / "report.json").write_text("old")

    def failing(cfg, work, *_):
        (Path(work) / "report.json").write_text("half")
        raise RuntimeError("killed half way")
    monkeypatch.setattr(pipeline, "_run", failing)
    with pytest.raises(RuntimeError):
        pipeline.train(pipeline.TrainConfig(out=str(out)))
    assert (out / "report.json").read_text() == "old"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".edgeml-")]

    def finishing(cfg, work, *_):
        (Path(work) / "report.json").write_text("new")
        return {}
    monkeypatch.setattr(pipeline, "_run", finishing)
    pipeline.train(pipeline.TrainConfig(out=str(out)))
    assert (out / "report.json").read_text() == "new" and (out / pipeline.OUTPUT_MARKER).is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".edgeml-")]


def test_train_removes_what_killed_runs_left(tmp_path):
    import subprocess
    import sys
    from edgeml.train import pipeline
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    for name, pid in ((".edgeml-train-dead", dead.stdout.strip()), (".edgeml-train-live", str(os.getpid()))):
        (tmp_path / name).mkdir()
        (tmp_path / name / pipeline.OWNER_FILE).write_text(pid)
    pipeline.remove_stale_work(str(tmp_path), str(tmp_path / "out"))
    assert sorted(p.name for p in tmp_path.iterdir()) == [".edgeml-train-live"]


def test_a_binary_csv_is_a_data_error(tmp_path):
    from edgeml.errors import DataError
    from edgeml.train.data import load_dataset
    path = tmp_path / "data.csv"
    path.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(DataError, match="not a text CSV"):
        load_dataset(str(path), seed=0)
