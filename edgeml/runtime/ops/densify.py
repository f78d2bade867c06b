"""DENSIFY: a sparse constant (weights stored with TFLite sparsity parameters) made dense.  The reader validates the
sparsity parameters and expands the tensor (converters/tflite_sparsity.py), so DENSIFY folds at load into the
dense constant it produces: no step runs, and the model runs like its dense twin."""
from __future__ import annotations

from edgeml.errors import ModelFormatError
from edgeml.ir import Op
from edgeml.runtime.plan import Ctx, OpSpec


def prepare_densify(ctx: Ctx, op: Op) -> None:
    what = op.describe()
    if len(op.inputs) != 1 or len(op.outputs) != 1:
        raise ModelFormatError(f"{what}: expected one input and one output, got {len(op.inputs)} and "
                               f"{len(op.outputs)}")
    x, y = ctx.tensor(op, 0), ctx.tensor(op, 0, "output")
    if x.index not in ctx.constants:
        raise ModelFormatError(f"{what}: input {x.describe()} must be a constant (sparse weights in the file)")
    if x.dtype != y.dtype:
        raise ModelFormatError(f"{what}: input {x.describe()} is {x.dtype} but output {y.describe()} is {y.dtype}")
    ctx.set_output(op, 0, ctx.shape(x))
    ctx.constants[y.index] = ctx.constants[x.index]


OPS = {"DENSIFY": OpSpec(prepare_densify, max_version=1, output_types=None)}
