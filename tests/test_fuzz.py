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
    assert done.returncode == 0, tail
    assert "Done" in tail and "stat::number_of_executed_units" in tail, tail
    runs = int(tail.split("stat::number_of_executed_units:")[1].split()[0])
    assert runs > 100, f"only {runs} executions in {SMOKE_SECONDS} s"
