"""`edgeml compile`: the generated C, built with the system gcc -O2 (and under qemu for aarch64), gives outputs
bit-identical to the Interpreter's on 20 seeded inputs; run-time index checks come back as error codes; models
the Interpreter refuses fail at compile time with its errors."""
from __future__ import annotations

import json
import shutil
import subprocess
import zlib

import numpy as np
import pytest

import model_cache
import tflite_models

import edgeml
from edgeml.cli import main
from edgeml.codegen import compile_model
from edgeml.errors import EdgeMLError, ModelFormatError, UnsupportedOpError
from edgeml.ir import Graph, Op, Tensor

N_INPUTS = 20
CROSS_CC, QEMU = "aarch64-linux-gnu-gcc", "qemu-aarch64"
# (model under tests/models, target); the others of the same kind run with -m slow
FAST = [("mlperf_tiny/ad01_int8.tflite", "x86-64"), ("mlperf_tiny/kws_ref_model.tflite", "x86-64"),
        ("mlperf_tiny/pretrainedResnet_quant.tflite", "x86-64"), ("mlperf_tiny/kws_ref_model_float32.tflite", "x86-64"),
        ("mlperf_tiny_onnx/ad01_int8.onnx", "x86-64"),
        ("mlperf_tiny/ad01_int8.tflite", "generic"), ("mlperf_tiny/kws_ref_model.tflite", "generic"),
        ("mlperf_tiny/ad01_int8.tflite", "aarch64")]
SLOW = [("mlperf_tiny/vww_96_int8.tflite", "x86-64"), ("mlperf_tiny/ad01_fp32.tflite", "x86-64"),
        ("mlperf_tiny/vww_96_float.tflite", "x86-64"), ("mlperf_tiny_onnx/kws_ref_model.onnx", "x86-64"),
        ("mlperf_tiny_onnx/vww_96_int8.onnx", "x86-64"), ("mlperf_tiny_onnx/pretrainedResnet_quant.onnx", "x86-64"),
        ("mlperf_tiny/vww_96_int8.tflite", "generic"), ("mlperf_tiny/pretrainedResnet_quant.tflite", "generic"),
        ("mlperf_tiny/kws_ref_model_float32.tflite", "generic"), ("mlperf_tiny/kws_ref_model.tflite", "aarch64"),
        ("mlperf_tiny/pretrainedResnet_quant.tflite", "aarch64")]


def build(out, target: str):
    """Builds the example program with the generated Makefile; the command that runs it."""
    if shutil.which("make") is None or shutil.which("gcc") is None:
        pytest.skip("make and gcc are needed to build the generated C")
    args = ["make", "-s", "-C", str(out), "CC=gcc", "CFLAGS=-O2"]
    if target == "generic":
        args[-1] = "CFLAGS=-O2 -std=c99"
    if target == "aarch64":
        if shutil.which(CROSS_CC) is None or shutil.which(QEMU) is None:
            pytest.skip(f"{CROSS_CC} and {QEMU} are needed for the aarch64 build")
        args[-2:] = [f"CC={CROSS_CC}", "CFLAGS=-O2", "LDFLAGS=-static"]
    done = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    program = [str(next(out.glob("*_main")))]
    return [QEMU] + program if target == "aarch64" else program


def seeded_sets(interpreter, seed: int) -> list:
    rng = np.random.default_rng(seed)
    sets = []
    for _ in range(N_INPUTS):
        xs = []
        for d in interpreter.get_input_details():
            shape, dtype = tuple(d["shape"]), np.dtype(d["dtype"])
            if dtype.kind == "f":
                xs.append(rng.standard_normal(shape).astype(dtype))
            else:
                info = np.iinfo(dtype)
                xs.append(rng.integers(max(info.min, -128), min(info.max, 127) + 1, size=shape).astype(dtype))
        sets.append(xs)
    return sets


def interpreter_outputs(interpreter, sets) -> bytes:
    out = []
    for xs in sets:
        for i, x in enumerate(xs):
            interpreter.set_input(x, i)
        interpreter.invoke()
        out += [interpreter.get_output(i).tobytes() for i in range(len(interpreter.get_output_details()))]
    return b"".join(out)


def run_program(program, out, sets):
    (out / "in.bin").write_bytes(b"".join(x.tobytes() for xs in sets for x in xs))
    return subprocess.run(program + [str(out / "in.bin"), str(out / "out.bin")], capture_output=True, text=True,
                          timeout=600)


def check_model(path, target, out):
    compiled = compile_model(path, out, target=target, name="net")
    program = build(out, target)
    ours = edgeml.Interpreter(path)
    sets = seeded_sets(ours, zlib.crc32(path.name.encode()))
    done = run_program(program, out, sets)
    assert done.returncode == 0, done.stderr
    assert (out / "out.bin").read_bytes() == interpreter_outputs(ours, sets), f"{path.name} ({target})"
    return compiled


@pytest.mark.parametrize("model,target", FAST)
def test_compiled_model_equals_interpreter(reference_models, tmp_path, model, target):
    compiled = check_model(reference_models / model, target, tmp_path)
    assert compiled.isa == {"generic": "scalar", "aarch64": "neon"}.get(target, compiled.isa)
    if target != "x86-64":       # planned with the portable kernels and their weight packing
        assert not any(k.endswith(("_vnni", "_avxvnni", "_avx2")) for k in compiled.kernels), compiled.kernels


@pytest.mark.slow
@pytest.mark.parametrize("model,target", SLOW)
def test_compiled_model_equals_interpreter_slow(reference_models, tmp_path, model, target):
    check_model(reference_models / model, target, tmp_path)


@pytest.mark.slow
def test_public_models_compile_and_match(public_models, tmp_path):
    for k, path in enumerate(sorted((public_models / "tflite").glob("*.tflite"))):
        try:
            edgeml.Interpreter(path)
        except EdgeMLError:
            continue
        check_model(path, "x86-64", tmp_path / str(k))


@pytest.fixture(scope="session")
def catalogue(request, tmp_path_factory) -> model_cache.ConvertedModels:
    """tests/tflite_models.py's converter-made models (the cache test_tflite_ops.py fills)."""
    return model_cache.converted_models(request, tmp_path_factory, "tflite_models", tflite_models)


@pytest.mark.slow
def test_catalogue_models_compile_and_match(catalogue, tmp_path):
    """Every model of the op catalogue compiles; one model per distinct set of kernels is built and run (the others
    would repeat the same C)."""
    covered, built = set(), 0
    for name, spec in sorted(tflite_models.SPECS.items()):
        for kind in [k for k in ("int8", "float") if k in spec.kinds]:
            path = tmp_path / f"{name}.{kind}.tflite"
            path.write_bytes(catalogue.get(name, kind))
            out = tmp_path / f"{name}_{kind}"
            kernels = set(compile_model(path, out, name="net").kernels)
            if kernels <= covered:
                continue
            covered |= kernels
            check_model(path, "x86-64", out)
            built += 1
    assert built >= 10


# ----- small graphs built in the IR (no converter) ------------------------------------------------------------

def graph(tensors, ops, inputs, outputs) -> Graph:
    ts = [Tensor(k, name, tuple(shape), np.dtype(dtype), None, None if data is None else np.asarray(data, dtype))
          for k, (name, shape, dtype, data) in enumerate(tensors)]
    return Graph(tensors=ts, ops=[Op(k, t, 1, list(i), list(o), dict(opts)) for k, (t, i, o, opts) in enumerate(ops)],
                 inputs=list(inputs), outputs=list(outputs), source="tflite")


def gather_graph() -> Graph:
    return graph([("x", (2, 4, 3), "float32", None), ("i", (5,), "int32", None), ("y", (2, 5, 3), "float32", None),
                  ("w", (2, 5, 3), "float32", np.arange(30, dtype=np.float32).reshape(2, 5, 3) / 7),
                  ("z", (2, 5, 3), "float32", None)],
                 [("GATHER", [0, 1], [2], {"axis": 1}), ("ADD", [2, 3], [4], {})], [0, 1], [4])


def test_run_time_index_check_returns_an_error_code(tmp_path):
    """GATHER's indices are an input: the program reports a bad one through NAME_invoke's error code (the
    kernel's status area, as the Interpreter's InputError), and computes good ones as the Interpreter does."""
    g = gather_graph()
    compiled = compile_model(g, tmp_path, name="gather")
    header = (tmp_path / "gather.h").read_text()
    assert "input 1 'i': int32 [5], 20 bytes" in header and "#define GATHER_ERR_STEP 1000" in header
    program = build(tmp_path, "x86-64")
    x = (np.arange(24, dtype=np.float32).reshape(2, 4, 3) - 5) / 3
    good = [[x, np.array([3, 0, 1, 3, 2], np.int32)], [x * 2, np.array([0, 0, 0, 0, 0], np.int32)]]
    done = run_program(program, tmp_path, good)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out.bin").read_bytes() == interpreter_outputs(edgeml.Interpreter(g), good)
    for bad in (4, -1, 2 ** 31 - 1):
        done = run_program(program, tmp_path, [[x, np.array([0, 1, bad, 2, 3], np.int32)]])
        assert done.returncode == 1
        assert "op 0 (GATHER v1): a run-time index or length is out of range (code 1000)" in done.stderr
    assert compiled.kernels == sorted(compiled.kernels) and "gather_indices" in compiled.kernels


@pytest.mark.parametrize("case", ["unsupported_op", "bad_axis", "truncated_file", "bad_version"])
def test_refused_models_fail_at_compile_time_with_the_interpreters_error(reference_models, tmp_path, case):
    if case == "truncated_file":
        model = (reference_models / "mlperf_tiny" / "kws_ref_model.tflite").read_bytes()[:3000]
    else:
        model = gather_graph()
        if case == "unsupported_op":
            model.ops[1].type = "NOT_AN_OP"
        elif case == "bad_axis":
            model.ops[0].options["axis"] = 5
        else:
            model.ops[0].version = 99
    with pytest.raises(EdgeMLError) as interpreted:
        edgeml.Interpreter(model)
    with pytest.raises(type(interpreted.value)) as compiled:
        compile_model(model, tmp_path, name="refused")
    assert str(compiled.value) == str(interpreted.value)
    assert isinstance(compiled.value, (ModelFormatError, UnsupportedOpError))
    assert not (tmp_path / "refused.c").exists()


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(EdgeMLError, match="must be a C identifier"):
        compile_model(gather_graph(), tmp_path, name="2x")
    with pytest.raises(EdgeMLError, match="--target generic runs the scalar kernels only"):
        compile_model(gather_graph(), tmp_path, target="generic", isa="avx2")
    with pytest.raises(EdgeMLError, match="target must be one of x86-64, aarch64, generic"):
        compile_model(gather_graph(), tmp_path, target="riscv")


def test_cli_compile_with_report(reference_models, tmp_path, capsys):
    """`edgeml compile --report` writes the C files and a JSON report of flash / RAM; the arena equals the
    Interpreter's and the RAM is the arena plus a small static part plus the measured stack."""
    path = reference_models / "mlperf_tiny" / "ad01_int8.tflite"
    assert main(["compile", str(path), "--out", str(tmp_path), "--target", "generic", "--report"]) == 0
    text = capsys.readouterr().out
    assert "ad01_int8: target generic (scalar kernels)" in text and "flash" in text and "RAM" in text
    report = json.loads((tmp_path / "ad01_int8_report.json").read_text())
    assert {p.name for p in tmp_path.iterdir()} >= {"ad01_int8.h", "ad01_int8.c", "main.c", "Makefile", "include"}
    ram, flash = report["ram"], report["flash"]
    assert report["interpreter_arena_bytes"] == edgeml.Interpreter(path).arena_bytes
    assert f"#define AD01_INT8_ARENA_BYTES {ram['arena_bytes']} " in (tmp_path / "ad01_int8.h").read_text()
    assert flash["weight_bytes"] <= flash["const_bytes"] and flash["code_bytes"] > 0
    if ram["stack_bytes"] is not None:
        assert 0 < ram["stack_bytes"] < 65536
        assert ram["total_bytes"] == ram["arena_bytes"] + ram["static_bytes"] + ram["stack_bytes"]
    assert main(["compile", str(path), "--out", str(tmp_path), "--target", "generic", "--isa", "avx2"]) == 2


def test_x86_level_is_chosen_at_compile_time_and_checked_at_the_first_invoke(reference_models, tmp_path):
    """--isa avx2 plans the AVX2 kernels and packing (as EDGEML_ISA=avx2 does for the Interpreter) and gives the
    same bits; a program packed for a level the CPU lacks (here: forced lower by EDGEML_ISA) refuses to run."""
    from edgeml.runtime.kernels import ISA
    if ISA not in ("avx2", "avxvnni", "avx512", "avx512vnni"):
        pytest.skip("needs an x86-64 CPU with AVX2")
    path = reference_models / "mlperf_tiny" / "kws_ref_model.tflite"
    compiled = compile_model(path, tmp_path, target="x86-64", isa="avx2", name="net")
    assert {"conv2d_int8_avx2", "depthwise_int8_avx2"} <= set(compiled.kernels)
    program = build(tmp_path, "x86-64")
    ours = edgeml.Interpreter(path)
    sets = seeded_sets(ours, 7)[:5]
    done = run_program(program, tmp_path, sets)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out.bin").read_bytes() == interpreter_outputs(ours, sets)
    forced = subprocess.run(program + [str(tmp_path / "in.bin"), str(tmp_path / "out.bin")], capture_output=True,
                            text=True, env={"EDGEML_ISA": "scalar"})
    assert forced.returncode == 1 and "this CPU lacks the avx2 instructions" in forced.stderr


def test_dispatching_build_takes_the_best_level_the_cpu_runs(reference_models, tmp_path):
    """--isa dispatch holds one plan per x86 level; the first call picks the best one the CPU (or EDGEML_ISA)
    allows, and every level gives the Interpreter's bits."""
    from edgeml.runtime.kernels import ISA
    if ISA not in ("avx2", "avxvnni", "avx512", "avx512vnni"):
        pytest.skip("needs an x86-64 CPU with AVX2")
    path = reference_models / "mlperf_tiny" / "kws_ref_model.tflite"
    compiled = compile_model(path, tmp_path, target="x86-64", isa="dispatch", name="net")
    assert {"conv2d_int8", "conv2d_int8_avx2", "conv2d_int8_vnni"} <= set(compiled.kernels)
    header = (tmp_path / "net.h").read_text()
    assert "dispatch (avx512vnni, avx512, avx2, scalar) kernels" in header
    program = build(tmp_path, "x86-64")
    ours = edgeml.Interpreter(path)
    sets = seeded_sets(ours, 11)[:4]
    expected = interpreter_outputs(ours, sets)
    (tmp_path / "in.bin").write_bytes(b"".join(x.tobytes() for xs in sets for x in xs))
    for forced in (None, "avx2", "scalar"):
        env = {} if forced is None else {"EDGEML_ISA": forced}
        done = subprocess.run(program + [str(tmp_path / "in.bin"), str(tmp_path / "out.bin")], capture_output=True,
                              text=True, env=env)
        assert done.returncode == 0, done.stderr
        assert (tmp_path / "out.bin").read_bytes() == expected, forced
