"""Keras text classifiers with integer token inputs against LiteRT's reference kernels: Embedding (GATHER),
float ids (CAST), attention (BATCH_MATMUL) and layer norm, in float and int8, batch 1 and batch 3."""
import numpy as np
import pytest

import edgeml
from tests import text_models
from tests.litert_reference import reference
from tests.model_cache import converted_models

N_INPUTS = 20
CASES = [(name, kind) for name in text_models.SPECS for kind in text_models.KINDS]


@pytest.fixture(scope="module")
def models(request, tmp_path_factory):
    return converted_models(request, tmp_path_factory, "text", text_models)


def stored_ops(model: bytes) -> set:
    ref = reference(model)
    return {d["op_name"] for d in ref._get_ops_details()}


def check(model: bytes, spec, kind: str, batch: int):
    ours, ref = edgeml.Interpreter(model), reference(model)
    if batch != 1:
        ours.resize_input(0, (batch, text_models.LENGTH))
        ref.resize_tensor_input(ref.get_input_details()[0]["index"], (batch, text_models.LENGTH))
        ref.allocate_tensors()
    assert np.dtype(ours.get_input_details()[0]["dtype"]) == np.dtype(spec.token_dtype)
    rng = np.random.default_rng(batch)
    for j in range(N_INPUTS):
        x = text_models.tokens(rng, batch, spec.token_dtype)
        ref.set_tensor(ref.get_input_details()[0]["index"], x)
        ref.invoke()
        expected = ref.get_tensor(ref.get_output_details()[0]["index"])
        got = ours.run(x)
        assert got.dtype == expected.dtype and got.shape == expected.shape
        if kind == "float":
            np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6, err_msg=f"input set {j}")
        else:
            np.testing.assert_array_equal(got, expected, err_msg=f"input set {j}")


@pytest.mark.parametrize("name,kind", CASES, ids=[f"{n}-{k}" for n, k in CASES])
def test_text_classifier_matches_litert_reference(models, name, kind):
    spec = text_models.SPECS[name]
    model = models.get(name, kind)
    ops = stored_ops(model)
    assert set(spec.ops) <= ops, sorted(ops)
    if kind == "int8_io":
        assert edgeml.Interpreter(model).get_output_details()[0]["dtype"] == np.int8
    check(model, spec, kind, batch=1)


@pytest.mark.parametrize("name", ["embedding_pool", "multi_head_attention"])
def test_text_classifier_batch_of_three(models, name):
    check(models.get(name, "int8_io"), text_models.SPECS[name], "int8_io", batch=3)


def test_token_ids_out_of_range_are_an_input_error(models):
    it = edgeml.Interpreter(models.get("embedding_pool", "int8"))
    x = np.zeros((1, text_models.LENGTH), np.int32)
    x[0, 5] = text_models.VOCABULARY
    with pytest.raises(edgeml.InputError, match="GATHER"):
        it.run(x)
    x[0, 5] = -1
    with pytest.raises(edgeml.InputError, match="GATHER"):
        it.run(x)
