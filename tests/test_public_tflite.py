"""Every .tflite of the public corpus (../shared/models/public/tflite) has an explicit expectation, so a file that
stops running, starts running, or appears without a row fails here instead of passing silently:

  BIT_EXACT      runs, and equals LiteRT's reference kernels (BUILTIN_REF) on INPUT_SETS seeded inputs: integer
                 outputs exactly, float outputs within rtol 1e-5 / atol 1e-6
  TFLM           LiteRT refuses the file; runs, and equals TFLite Micro on the same inputs
  refused(text)  edgeml refuses it at load (EdgeMLError) with `text` in the message: what it lacks

To update after merging other groups' ops: change a row from refused(...) to BIT_EXACT (or TFLM); the test names
the first row whose expectation no longer holds.  20 input sets per model, fewer for the two slowest in LiteRT's
reference kernels (deeplabv3 at 513x513: 2; traffic_model: 5).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

import edgeml

INPUT_SETS = 20


@dataclass(frozen=True)
class Expect:
    kind: str                 # "bit_exact", "tflm" or "refused"
    reason: str = ""          # refused: a fragment of edgeml's message
    input_sets: int = INPUT_SETS
    litert_versions: tuple = ()     # (op, version): LiteRT runs the file with these op versions lowered


BIT_EXACT = Expect("bit_exact")
TFLM = Expect("tflm")


def bit_exact(input_sets: int = INPUT_SETS, litert_versions: tuple = ()) -> Expect:
    return Expect("bit_exact", input_sets=input_sets, litert_versions=litert_versions)


def refused(reason: str) -> Expect:
    return Expect("refused", reason)


EXPECTED = {
    "deeplabv3_mnv2_pascal_quant.tflite": bit_exact(input_sets=2),     # 513x513: 4 s per input in BUILTIN_REF
    "fdmobilenet_0.25_224_int8.tflite": BIT_EXACT,
    "gmp_wl_48_int8.tflite": BIT_EXACT,
    "miniresnet_2stacks_64x50_int8.tflite": BIT_EXACT,
    "mobilenet_v1_0.25_96_int8.tflite": BIT_EXACT,
    "mobilenet_v1_0.5_160_quant.tflite": BIT_EXACT,
    "mobilenet_v1_1.0_224_quant_embedding_extractor.tflite": BIT_EXACT,
    "mobilenet_v2_0.35_224_int8.tflite": BIT_EXACT,
    "mobilenet_v2_1.0_224_inat_bird_quant.tflite": BIT_EXACT,
    "resnet_v1_32_32_int8.tflite": BIT_EXACT,
    "split_concat.tflite": BIT_EXACT,
    "squeezenet_v1.0_128_int8.tflite": BIT_EXACT,
    # neither LiteRT nor TFLite Micro has TILE v3; LiteRT's TILE kernel takes int8 at any version
    "ssd_mobilenet_v1_025_224_int8.tflite": bit_exact(litert_versions=(("TILE", 1),)),

    "tf2_mobilenet_v2_1.0_224_ptq.tflite": BIT_EXACT,
    # uint8 SSD with LSTM-like cells and TFLite_Detection_PostProcess; 1.2 s per input in BUILTIN_REF
    "traffic_model.tflite": bit_exact(input_sets=5),
}


@pytest.fixture(scope="module")
def corpus(public_models):
    folder = public_models / "tflite"
    if not folder.is_dir():
        pytest.skip(f"no tflite folder in {public_models}")
    return folder


def test_every_model_has_an_expectation(corpus):
    files = sorted(p.name for p in corpus.glob("*.tflite"))
    assert files == sorted(EXPECTED), "update EXPECTED: rows without a file or files without a row"


def seeded_inputs(details: list, k: int) -> list:
    """The k-th input set: integers over the whole range of an integer input, N(0, 1) floats otherwise."""
    rng = np.random.default_rng(1000 + k)
    out = []
    for d in details:
        shape, dtype = tuple(int(s) for s in d["shape"]), np.dtype(d["dtype"])
        if dtype.kind in "iu":
            info = np.iinfo(dtype)
            out.append(rng.integers(info.min, info.max + 1, shape).astype(dtype))
        else:
            out.append(rng.standard_normal(shape).astype(dtype))
    return out


def with_op_versions(model: bytes, versions: tuple) -> bytes:
    """`model` with the operator codes of each (op name, version) set to that version."""
    if not versions:
        return model
    import flatbuffers
    schema = pytest.importorskip("ai_edge_litert.schema_py_generated")
    m = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(bytearray(model), 0))
    for name, version in versions:
        code = getattr(schema.BuiltinOperator, name)
        for c in m.operatorCodes:
            if max(c.builtinCode, c.deprecatedBuiltinCode) == code:
                c.version = version
    builder = flatbuffers.Builder(len(model) + 1024)
    builder.Finish(m.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def litert_runner(model: bytes):
    litert = pytest.importorskip("ai_edge_litert.interpreter")
    ref = litert.Interpreter(model_content=model, experimental_op_resolver_type=litert.OpResolverType.BUILTIN_REF)
    ref.allocate_tensors()

    def run(xs):
        for d, x in zip(ref.get_input_details(), xs):
            ref.set_tensor(d["index"], x)
        ref.invoke()
        return [ref.get_tensor(d["index"]) for d in ref.get_output_details()]
    return run


def tflm_runner(model: bytes, outputs: int):
    tflm = pytest.importorskip("tflite_micro.python.tflite_micro.runtime")
    micro = tflm.Interpreter.from_bytes(model)

    def run(xs):
        for i, x in enumerate(xs):
            micro.set_input(x, i)
        micro.invoke()
        return [micro.get_output(i) for i in range(outputs)]
    return run


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_public_model(corpus, name):
    check_model(corpus, name, EXPECTED[name].input_sets)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(n for n, e in EXPECTED.items()
                                        if e.kind != "refused" and e.input_sets < INPUT_SETS))
def test_public_model_on_every_input_set(corpus, name):
    """The large models the default run checks on fewer input sets, on all of them (-m slow)."""
    check_model(corpus, name, INPUT_SETS)


def check_model(corpus, name: str, input_sets: int):
    path = corpus / name
    if not path.exists():
        pytest.skip(f"{name} is not in the corpus")
    expect = EXPECTED[name]
    if expect.kind == "refused":
        with pytest.raises(edgeml.EdgeMLError) as info:
            edgeml.Interpreter(path)
        assert expect.reason in str(info.value), f"{name} is refused for another reason: {info.value}"
        return
    model = path.read_bytes()
    ours = edgeml.Interpreter(model)
    n_out = len(ours.get_output_details())
    if expect.kind == "bit_exact":
        reference = litert_runner(with_op_versions(model, expect.litert_versions))
    else:
        reference = tflm_runner(model, n_out)
    for k in range(input_sets):
        xs = seeded_inputs(ours.get_input_details(), k)
        for i, x in enumerate(xs):
            ours.set_input(x, i)
        ours.invoke()
        for j, want in enumerate(reference(xs)):
            got = ours.get_output(j)
            what = f"{name} output {j} input set {k}"
            assert got.dtype == want.dtype and got.shape == want.shape, what
            if got.dtype.kind in "iub":
                np.testing.assert_array_equal(got, want, err_msg=what)
            else:
                np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=what)
