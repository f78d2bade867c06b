"""What each op runs on: the type table compile enforces before an op's prepare, and the README's coverage table.

An op's scheme is the type of its data input (the tensor whose values it computes on; the first input unless
DATA_INPUT says otherwise), with two refinements: "uint8" for a TF1-style uint8 op held as int8 (options[UINT8])
and "hybrid" for a weighted op with float32 activations and int8 weights (dynamic-range quantization).
`write_readme("README.md")` rewrites the README's table; tests/test_coverage.py keeps the two equal.
"""
from __future__ import annotations

import numpy as np
import tflite

from edgeml.errors import UnsupportedOpError
from edgeml.ir import UINT8
from edgeml.runtime.ops import binary_math, index, normalization, space, unary_math

F32, I8, U8, I16, I32, I64, B, F16, U16 = ("float32", "int8", "uint8", "int16", "int32", "int64", "bool", "float16",
                                           "uint16")
HYBRID = "hybrid"
ANY = "any"                        # the op moves or inspects tensors of every type (SHAPE, WHILE)
SCHEMES = (F32, I8, U8, I16, HYBRID, I32, I64, B, F16, U16)

# the input whose type decides the scheme, where it is not input 0
DATA_INPUT = {"TRANSPOSE_CONV": 2, "SELECT": 1, "SELECT_V2": 1, "FILL": 1, "SPLIT": 1}
# weighted ops whose float32 activations with int8 weights (this input) run as hybrid
HYBRID_WEIGHTS = {"CONV_2D": 1, "DEPTHWISE_CONV_2D": 1, "FULLY_CONNECTED": 1, "UNIDIRECTIONAL_SEQUENCE_LSTM": 4,
                  "SVDF": 1}


def _names(dtypes) -> tuple:
    return tuple(sorted({np.dtype(d).name for d in dtypes}, key=SCHEMES.index))


# where a family module keeps a type table, the row is read from it
_VALUES = _names(index.VALUE_TYPES)                            # gathers, casts, selects: every plain type
_MOVES = (F32, I8, U8, I16, I32, I64, B)                        # RESHAPE and the other byte moves
_MOVES_16 = (F32, I8, U8, I16)                                  # moves with int16 but no integer tensors
_COMPARED = (F32, I8, U8, I16, I32, I64)
RUNS_ON = {
    # convolutions and matrix products
    "CONV_2D": (F32, I8, U8, I16, HYBRID),
    "DEPTHWISE_CONV_2D": (F32, I8, U8, I16, HYBRID),
    "FULLY_CONNECTED": (F32, I8, U8, I16, HYBRID),
    "TRANSPOSE_CONV": (F32, I8, I16),
    "BATCH_MATMUL": (F32, I8),
    "UNIDIRECTIONAL_SEQUENCE_LSTM": (F32, I8, HYBRID),
    "SVDF": (F32, I8, HYBRID),
    # pooling, reductions, normalization
    "AVERAGE_POOL_2D": (F32, I8, U8),
    "MAX_POOL_2D": (F32, I8, U8),
    "MEAN": (F32, I8, U8, I16),
    "SUM": _COMPARED,
    "REDUCE_MAX": _COMPARED,
    "REDUCE_MIN": _COMPARED,
    "REDUCE_PROD": _COMPARED,
    "ARG_MAX": (F32, I8, U8, I32, B),
    "ARG_MIN": (F32, I8, U8, I32, B),
    "SOFTMAX": (F32, I8, U8, I16),
    **{name: _names(types) for name, types in normalization.TYPES.items()},
    # element-wise with two inputs
    "ADD": (F32, I8, U8, I16, I32),
    "SUB": (F32, I8, U8, I16, I32),
    "MUL": (F32, I8, U8, I16, I32),
    **{name: _names(types) for name, types in binary_math.TYPES.items()},
    "MAXIMUM": _COMPARED,
    "MINIMUM": _COMPARED,
    "LESS": _COMPARED,
    "LESS_EQUAL": _COMPARED,
    "GREATER": _COMPARED,
    "GREATER_EQUAL": _COMPARED,
    "EQUAL": _COMPARED + (B,),
    "NOT_EQUAL": _COMPARED + (B,),
    "LOGICAL_AND": (B,),
    "LOGICAL_OR": (B,),
    "LOGICAL_NOT": (B,),
    "SELECT": _VALUES,
    "SELECT_V2": _VALUES,
    # element-wise with one input
    "RELU": (F32, I8, U8, I16),
    "RELU6": (F32, I8, U8, I16),
    "RELU_N1_TO_1": (F32, I8, U8, I16),
    "LEAKY_RELU": (F32, I8, U8, I16),
    "HARD_SWISH": (F32, I8, U8),
    "LOGISTIC": (F32, I8, U8, I16),
    "TANH": (F32, I8, U8, I16),
    **{name: _names(types) for name, types in unary_math.TYPES.items()},
    "QUANTIZE": (F32, I8, U8, I16, I32),
    "DEQUANTIZE": (I8, U8, I16, F16),
    "CAST": _VALUES,
    # data movement
    "RESHAPE": _MOVES,
    "TRANSPOSE": _MOVES,
    "CONCATENATION": _MOVES,
    "PACK": _MOVES,
    "STRIDED_SLICE": _MOVES,
    "SLICE": _MOVES,
    "BROADCAST_TO": _MOVES,
    "SQUEEZE": _MOVES_16,
    "EXPAND_DIMS": _MOVES_16,
    "UNPACK": _MOVES_16,
    "SPLIT": _MOVES_16,
    "SPLIT_V": _MOVES_16,
    "PAD": _MOVES_16,
    "PADV2": _MOVES_16,
    "REVERSE_V2": _MOVES_16,
    "TILE": _VALUES,
    "GATHER": _VALUES,
    "GATHER_ND": _VALUES,
    "FILL": _VALUES,
    "SHAPE": ANY,
    **{name: _names(space.TYPES) for name in ("SPACE_TO_DEPTH", "DEPTH_TO_SPACE", "MIRROR_PAD", "SPACE_TO_BATCH_ND",
                                                "BATCH_TO_SPACE_ND")},
    "RESIZE_BILINEAR": (F32, I8, U8, I16),
    "RESIZE_NEAREST_NEIGHBOR": (F32, I8, U8, I16),
    # control flow, sparse weights, detection
    "WHILE": ANY,
    "DENSIFY": (F32, I8),
    "DETECTION_POSTPROCESS": (F32, I8, U8),
}
# the IR's own op types that are not TFLite builtins: the .tflite custom op, and steps readers add
CUSTOM_NAMES = {"DETECTION_POSTPROCESS": "TFLite_Detection_PostProcess (custom)"}


def scheme_of(graph, op) -> str | None:
    """The scheme an op runs in, or None when its data input is absent (an optional input left out)."""
    position = DATA_INPUT.get(op.type, 0)
    if position >= len(op.inputs) or op.inputs[position] < 0:
        return None
    dtype = graph.tensors[op.inputs[position]].dtype
    name = DTYPE_NAMES.get(dtype) or DTYPE_NAMES.setdefault(dtype, dtype.name)
    if name == I8 and op.options.get(UINT8):
        return U8
    weights = HYBRID_WEIGHTS.get(op.type)
    if (name == F32 and weights is not None and weights < len(op.inputs) and op.inputs[weights] >= 0
            and graph.tensors[op.inputs[weights]].dtype == np.int8):
        return HYBRID
    return name


DTYPE_NAMES = {}      # dtype -> its name (numpy builds dtype.name in Python on every read)


def check_scheme(graph, op) -> None:
    """Refuse an op whose scheme its table row does not name, before its prepare reads anything."""
    accepted = ACCEPTED.get(op.type)
    if accepted is None:
        accepted = ACCEPTED[op.type] = accepted_types(op.type)
    if accepted is True:
        return
    position = DATA_INPUT.get(op.type, 0)
    inputs = op.inputs
    if position < len(inputs) and inputs[position] >= 0 and graph.tensors[inputs[position]].dtype in accepted:
        return
    runs_on = RUNS_ON.get(op.type)
    if runs_on is None or runs_on == ANY:
        return
    scheme = scheme_of(graph, op)
    if scheme is not None and scheme not in runs_on:
        position = DATA_INPUT.get(op.type, 0)
        raise UnsupportedOpError(f"{op.describe()}: input {graph.tensors[op.inputs[position]].describe()} has type "
                                 f"{scheme}; {op.type} runs on {', '.join(runs_on)}")


def accepted_types(op_type: str):
    """The data input types an op of `op_type` runs on whatever its options and weights (check_scheme's answer
    without scheme_of: a uint8 option or int8 weights could only lead to a scheme the row also names); True when
    the row takes every type (or the op has none)."""
    runs_on = RUNS_ON.get(op_type)
    if runs_on is None or runs_on == ANY:
        return True
    global PLAIN
    if PLAIN is None:       # (one tuple assigned whole: a load in another thread sees it complete or not at all)
        PLAIN = tuple((np.dtype(name), name) for name in SCHEMES if name != HYBRID)
    return frozenset(d for d, name in PLAIN if name in runs_on and (name != I8 or U8 in runs_on)
                     and (name != F32 or op_type not in HYBRID_WEIGHTS or HYBRID in runs_on))


ACCEPTED = {}       # op type -> accepted_types(op type), filled as types are met
PLAIN = None        # (dtype, name) of the schemes but hybrid, made on first use (numpy reads dtype.name slowly)


def builtin_names() -> list:
    """Every builtin operator of the TFLite schema the `tflite` package carries."""
    return sorted(name for name in dir(tflite.BuiltinOperator)
                  if name.isupper() and name not in ("CUSTOM", "PLACEHOLDER_FOR_GREATER_OP_CODES"))


def table() -> str:
    """The README's coverage block: a row per operator edgeml runs (every TFLite builtin it has, and the custom op),
    a check mark per scheme, then the builtins it does not run, by name."""
    names = builtin_names()
    rows = [f"{summary(names)}:", "", "| operator | " + " | ".join(SCHEMES) + " |", "|---|" + ":-:|" * len(SCHEMES)]
    for name in sorted(set(names) & set(RUNS_ON)) + sorted(CUSTOM_NAMES):
        runs_on = RUNS_ON[name]
        marks = ["✓" if runs_on == ANY or scheme in runs_on else "" for scheme in SCHEMES]
        rows.append(f"| {CUSTOM_NAMES.get(name, name)} | " + " | ".join(marks) + " |")
    missing = [name for name in names if name not in RUNS_ON]
    rows += ["", f"Not supported ({len(missing)}): " + ", ".join(missing) + "."]
    return "\n".join(rows)


def summary(names) -> str:
    covered = [name for name in names if name in RUNS_ON]
    return (f"{len(covered)} of the {len(names)} TFLite builtin operators, and the custom op "
            "TFLite_Detection_PostProcess")


BEGIN, END = "<!-- coverage table: begin", "<!-- coverage table: end -->"


def readme_block(text: str) -> str:
    """The generated part of a README's text (between the markers)."""
    start = text.index("\n", text.index(BEGIN)) + 1
    return text[start:text.index(END)].strip("\n")


def write_readme(path: str) -> None:
    with open(path, encoding="utf-8") as f:
        text = f.read()
    start = text.index("\n", text.index(BEGIN)) + 1
    text = text[:start] + table() + "\n" + text[text.index(END):]
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
