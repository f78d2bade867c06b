"""LiteRT's reference kernels (OpResolverType.BUILTIN_REF) and edgeml side by side on one-input models: the
helpers the LSTM suites share."""
from __future__ import annotations

import pytest


def reference(model: bytes):
    litert = pytest.importorskip("ai_edge_litert.interpreter")
    ref = litert.Interpreter(model_content=model, experimental_op_resolver_type=litert.OpResolverType.BUILTIN_REF)
    ref.allocate_tensors()
    return ref


def run_ref(ref, x):
    ref.set_tensor(ref.get_input_details()[0]["index"], x)
    ref.invoke()
    return ref.get_tensor(ref.get_output_details()[0]["index"])


def run_ours(ours, x):
    ours.set_input(x)
    ours.invoke()
    return ours.get_output()
