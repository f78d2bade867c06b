"""The op coverage table (edgeml/runtime/coverage.py): the README shows it as the code has it, every registered
TFLite builtin has a row, and compile refuses an op on a type its row does not name, before the op's prepare."""
from pathlib import Path

import numpy as np
import pytest

from edgeml import UnsupportedOpError
from edgeml.ir import UINT8, Graph, Op, Quantization, Tensor
from edgeml.runtime import coverage
from edgeml.runtime.compile import compile_graph
from edgeml.runtime.registry import OPS

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_table_is_the_generated_one():
    block = coverage.readme_block(README.read_text(encoding="utf-8"))
    assert block == coverage.table(), (
        "regenerate: python -c \"from edgeml.runtime import coverage; coverage.write_readme('README.md')\"")


def test_every_registered_builtin_has_a_row_and_every_row_an_op():
    builtins = set(coverage.builtin_names())
    assert set(OPS) & builtins <= set(coverage.RUNS_ON)
    assert set(coverage.RUNS_ON) <= set(OPS)
    for name, runs_on in coverage.RUNS_ON.items():
        assert runs_on == coverage.ANY or (runs_on and set(runs_on) <= set(coverage.SCHEMES)), name


def _graph(op_type, in_dtype, out_dtype=None, options=None, weights=None):
    quant = Quantization(np.array([0.05]), np.array([0]))
    tensors = [Tensor(0, "x", (1, 4), np.dtype(in_dtype), quant if in_dtype != np.float32 else None),
               Tensor(1, "y", (1, 4), np.dtype(out_dtype or in_dtype), quant if out_dtype != np.float32 else None)]
    inputs = [0]
    if weights is not None:
        tensors.append(Tensor(2, "w", weights.shape, weights.dtype, Quantization(np.array([0.01]), np.array([0])),
                              data=weights))
        inputs.append(2)
    op = Op(0, op_type, 1, inputs, [1], options or {})
    return Graph(tensors, [op], [0], [1], source="tflite")


@pytest.mark.parametrize("op_type, dtype, scheme", [
    ("EXP", np.int16, "int16"),            # EXP runs on float32 and int8 only
    ("BATCH_MATMUL", np.int16, "int16"),
    ("LOGICAL_NOT", np.float32, "float32"),
    ("DEQUANTIZE", np.float32, "float32"),
])
def test_op_on_a_type_its_row_lacks_is_refused_naming_both(op_type, dtype, scheme):
    with pytest.raises(UnsupportedOpError, match=rf"op 0 \({op_type} v1\).*has type {scheme}; {op_type} runs on "):
        compile_graph(_graph(op_type, dtype), {0: (1, 4)})


def test_schemes_uint8_and_hybrid():
    g = _graph("SOFTMAX", np.int8, options={UINT8: True})
    assert coverage.scheme_of(g, g.ops[0]) == "uint8"
    g = _graph("FULLY_CONNECTED", np.float32, np.float32, weights=np.ones((4, 4), np.int8))
    assert coverage.scheme_of(g, g.ops[0]) == "hybrid"
    g = _graph("FULLY_CONNECTED", np.float32, np.float32, weights=np.ones((4, 4), np.float32))
    assert coverage.scheme_of(g, g.ops[0]) == "float32"
    g = _graph("ELU", np.int8, options={UINT8: True})       # LiteRT has no uint8 ELU
    with pytest.raises(UnsupportedOpError, match="has type uint8; ELU runs on float32, int8$"):
        compile_graph(g, {0: (1, 4)})


def test_summary_counts_what_the_table_lists():
    text = coverage.table()
    listed = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| operator")]
    builtins = coverage.builtin_names()
    assert len(listed) == len(set(builtins) & set(coverage.RUNS_ON)) + len(coverage.CUSTOM_NAMES)
    assert text.startswith(f"{len(listed) - len(coverage.CUSTOM_NAMES)} of the {len(builtins)} TFLite builtin")
