"""The ONNX reader's IR stays identical (tensors, types, shapes, quantization, constant bytes, ops, options) on the
repository's .onnx reference models and on the shared ones (skipped when absent): a guard for load-time work."""
import json

import pytest

from tests.onnx_ir_digest import GOLDEN, ir_digest, model_files

pytest.importorskip("onnx")
EXPECTED = json.loads(GOLDEN.read_text())
FILES = model_files()


@pytest.mark.parametrize("key", sorted(EXPECTED))
def test_ir_unchanged(key):
    if key not in FILES:
        pytest.skip(f"{key} is not present here")
    got, want = ir_digest(FILES[key]), EXPECTED[key]
    if "error" in want or "error" in got:
        assert got == want
        return
    assert got["graph"] == want["graph"]
    assert len(got["tensors"]) == len(want["tensors"]) and len(got["ops"]) == len(want["ops"])
    for what in ("tensors", "ops"):
        for k, (a, b) in enumerate(zip(got[what], want[what])):
            assert a == b, f"{key}: {what[:-1]} {k} differs"


def test_repository_models_are_covered():
    assert any(k.startswith("repo/models/") for k in EXPECTED)
