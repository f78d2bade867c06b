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


# ----- several inputs and outputs, inputs optionally resized (the per-op conformance suites) --------------------

def reference_model(model: bytes, shapes=None, preserve_all_tensors: bool = False, resolver: str = "ref"):
    """LiteRT with its reference kernels (resolver "builtin": its optimized ones), optionally with inputs resized
    to `shapes`."""
    litert = pytest.importorskip("ai_edge_litert.interpreter")
    kind = {"ref": litert.OpResolverType.BUILTIN_REF,
            "builtin": litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES}[resolver]
    ref = litert.Interpreter(model_content=model, experimental_op_resolver_type=kind,
                             experimental_preserve_all_tensors=preserve_all_tensors)
    if shapes is not None:
        for detail, shape in zip(ref.get_input_details(), shapes):
            ref.resize_tensor_input(detail["index"], list(shape))
    ref.allocate_tensors()
    return ref


def run_reference(ref, xs) -> list:
    for detail, x in zip(ref.get_input_details(), xs):
        ref.set_tensor(detail["index"], x)
    ref.invoke()
    return [ref.get_tensor(d["index"]) for d in ref.get_output_details()]


def run_all(ours, xs) -> list:
    """edgeml on inputs `xs` (in input order): every output."""
    for i, x in enumerate(xs):
        ours.set_input(x, i)
    ours.invoke()
    return [ours.get_output(i) for i in range(len(ours.get_output_details()))]
