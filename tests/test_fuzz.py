"""The fuzz harnesses (tests/fuzz): every input that ever found a bug replays through them, and each loader gets a
short coverage-guided run (the long campaigns are run by hand, README "Fuzzing and sanitizers")."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.fuzz import harness

FUZZ = Path(__file__).resolve().parent / "fuzz"
REPO = FUZZ.parents[1]
REGRESSIONS = sorted((FUZZ / "regressions").glob("*/*"))
SMOKE_SECONDS = 20


@pytest.mark.parametrize("path", REGRESSIONS, ids=[p.name for p in REGRESSIONS])
def test_regression_inputs_only_raise_edgeml_errors(path):
    """harness.run_* lets only EdgeMLError pass: anything else raised here is the old bug back."""
    data = path.read_bytes()
    if path.parent.name == "onnx":
        pytest.importorskip("onnx")
        harness.run_onnx_bytes(data)
    else:
        harness.run_model(data)


def test_the_regression_corpus_covers_both_loaders():
    assert {p.parent.name for p in REGRESSIONS} == {"tflite", "onnx"}


@pytest.mark.parametrize("fmt", ["tflite", "onnx"])
def test_a_short_fuzzing_run_finds_nothing(fmt, tmp_path):
    pytest.importorskip("atheris")
    if fmt == "onnx":
        pytest.importorskip("onnx")
    done = subprocess.run([sys.executable, str(FUZZ / "fuzz_loaders.py"), fmt, str(tmp_path / "corpus"),
                           f"-max_total_time={SMOKE_SECONDS}", "-seed=1", "-print_final_stats=1"],
                          capture_output=True, text=True, timeout=SMOKE_SECONDS + 120, cwd=REPO)
    tail = done.stderr[-3000:]
    # atheris prints an uncaught exception's traceback on stdout, libFuzzer its verdict on stderr
    assert done.returncode == 0, done.stdout[-3000:] + "\n" + tail
    assert "Done" in tail and "stat::number_of_executed_units" in tail, tail
    runs = int(tail.split("stat::number_of_executed_units:")[1].split()[0])
    assert runs > 100, f"only {runs} executions in {SMOKE_SECONDS} s"


@pytest.mark.parametrize("dtype", ["int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64", "bool",
                                   "float32"])
def test_the_harness_fills_inputs_of_every_type(dtype):
    """An ONNX model with an int64 input once stopped a 1.1M-execution campaign inside the harness itself
    (np.arange modulo 2**64 overflowed), not in edgeml."""
    import numpy as np
    x = harness.fill({"shape": (3, 5), "dtype": np.dtype(dtype)})
    assert x.shape == (3, 5) and x.dtype == np.dtype(dtype)
    assert len(np.unique(x)) > 1
