"""converters/onnx/proto.py: the ONNX message classes the reader parses without importing the `onnx` package.
Every field they declare is the installed `onnx` package's field (number, type, repetition, message / enum type,
oneof), they parse every reference model into the same message (the same bytes serialized, unknown fields
included), and loading a .onnx model in a fresh process leaves the `onnx` package unimported."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import onnx
import pytest

from converters.onnx import proto

ROOT = Path(__file__).resolve().parents[1]
MODELS = sorted((ROOT / "tests" / "models" / "mlperf_tiny_onnx").glob("*.onnx"))
SHARED = sorted((ROOT.parent / "shared" / "models").glob("**/*.onnx"))


def _messages(desc, prefix=""):
    """{dotted name: descriptor} of a file's messages and their nested messages."""
    items = desc.message_types_by_name.values() if hasattr(desc, "message_types_by_name") else desc.nested_types
    out = {}
    for m in items:
        out[prefix + m.name] = m
        out.update(_messages(m, prefix + m.name + "."))
    return out


def _repeated(field) -> bool:
    return field.is_repeated if hasattr(field, "is_repeated") else field.label == field.LABEL_REPEATED


def test_every_declared_field_is_the_onnx_packages():
    ours, theirs = _messages(proto._FILE), _messages(onnx.onnx_ml_pb2.DESCRIPTOR)
    assert len(ours) >= 20
    for name, message in ours.items():
        assert name in theirs, name
        for f in message.fields:
            g = theirs[name].fields_by_name.get(f.name)
            where = f"{name}.{f.name}"
            assert g is not None, where
            assert (f.number, f.type, _repeated(f)) == (g.number, g.type, _repeated(g)), where
            assert (f.message_type and f.message_type.name) == (g.message_type and g.message_type.name), where
            if f.enum_type is not None:
                assert [(v.name, v.number) for v in f.enum_type.values] == \
                    [(v.name, v.number) for v in g.enum_type.values], where
            assert (f.containing_oneof is None) == (g.containing_oneof is None), where
            assert f.GetOptions().packed == g.GetOptions().packed, where


@pytest.mark.parametrize("path", MODELS + SHARED, ids=lambda p: p.name)
def test_reference_models_parse_to_the_same_message(path):
    data = path.read_bytes()
    ours = proto.ModelProto.FromString(data)
    assert ours.SerializeToString() == onnx.load_model_from_string(data).SerializeToString()
    assert len(ours.graph.node) > 0


def test_a_load_does_not_import_the_onnx_package():
    """Reading a quantized model (raw-data initializers, no constant folding) in a fresh process: `onnx` stays
    unimported (its import costs about a second, which every first .onnx load paid)."""
    script = ("import sys, edgeml\n"
              f"edgeml.Interpreter({str(MODELS[0])!r})\n"
              "print('onnx' in sys.modules)\n")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=str(ROOT), timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split()[-1] == "False"


def test_an_onnx_package_modelproto_is_read_as_it_is():
    import edgeml
    import numpy as np

    model = onnx.load_model_from_string(MODELS[0].read_bytes())
    a, b = edgeml.Interpreter(model), edgeml.Interpreter(MODELS[0].read_bytes())
    x = np.random.default_rng(0).integers(-128, 128, a.get_input_details()[0]["shape"]).astype(
        a.get_input_details()[0]["dtype"])
    assert np.array_equal(a.run(x), b.run(x))


def test_attribute_value_reads_as_the_onnx_helper():
    """tensors.attribute_value against onnx.helper.get_attribute_value on every attribute type (our messages and
    the onnx package's, the same values), and their errors."""
    from onnx import helper

    from converters.onnx.tensors import attribute_value

    node = helper.make_node("Custom", [], [], f=1.5, i=3, s=b"abc", floats=[1.0, 2.0], ints=[4, 5],
                            strings=[b"x"], t=helper.make_tensor("t", onnx.TensorProto.INT64, [1], [7]))
    ours = proto.NodeProto.FromString(node.SerializeToString())
    for a, b in zip(ours.attribute, node.attribute):
        got, want = attribute_value(a), helper.get_attribute_value(b)
        if a.type == proto.AttributeProto.TENSOR:
            assert got.SerializeToString() == want.SerializeToString()
        else:
            assert got == want and type(got) is type(want), a.name
    undefined = proto.AttributeProto(name="u")
    assert attribute_value(undefined) is None and helper.get_attribute_value(onnx.AttributeProto(name="u")) is None
    with pytest.raises(ValueError, match="reference attribute"):
        attribute_value(proto.AttributeProto(name="r", ref_attr_name="x", type=proto.AttributeProto.INT))
    # an attribute type the schema does not name (field 20 = 101): proto2's closed enum keeps it as an unknown
    # field, so both read the type as UNDEFINED and the value as None
    data = b"\x0a\x03bad" + b"\xa0\x01\x65"
    assert attribute_value(proto.AttributeProto.FromString(data)) is None
    assert helper.get_attribute_value(onnx.AttributeProto.FromString(data)) is None
