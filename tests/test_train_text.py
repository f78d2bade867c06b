"""Text: token ids stay int32 from the data to the int8 file, so an Embedding + attention model (the zoo
transformer) keeps its accuracy on edgeml in int8 (within 2 points of float)."""
import numpy as np
import pytest

pytest.importorskip("tensorflow_model_optimization")

from edgeml.train.pipeline import TrainConfig, train  # noqa: E402
from edgeml.train.runtimes import FileIO  # noqa: E402


def keyword_sentences(n=900, steps=16, vocab=120, classes=4, seed=0):
    """Token-id sentences (0 = padding) whose class is which of `classes` keyword pairs appears in them; ids up to
    119, so an int8-quantized id input would merge neighbouring words."""
    rng = np.random.default_rng(seed)
    x = rng.integers(2 * classes + 1, vocab, (n, steps))
    y = rng.integers(0, classes, n)
    for i in range(n):
        at = rng.choice(steps, rng.integers(1, 3), replace=False)
        x[i, at] = 1 + 2 * y[i] + rng.integers(0, 2, len(at))
        pad = rng.integers(0, 4)
        if pad:
            x[i, steps - pad:] = 0
    return x.astype(np.int64), y


def test_transformer_on_token_ids_keeps_int32_and_its_accuracy_in_int8(tmp_path):
    result = train(TrainConfig(out=str(tmp_path / "text"), data=keyword_sentences(), model="transformer",
                               epochs=8, verbose=0, learning_rate=3e-3))
    r = result.report
    acc = r["accuracy"]
    assert result.ok, result.failures
    assert acc["keras_float"] > 0.9, acc
    assert abs(acc["edgeml_int8"] - acc["keras_float"]) <= 0.02, acc
    assert r["agreement"]["edgeml_int8_vs_litert_reference_int8"]["bit_exact"] == 1.0
    io = FileIO(result.paths["model_int8.tflite"], ["input"])
    assert [s.dtype for s in io.inputs] == [np.dtype(np.int32)]
    assert any("token ids 0..119 into an Embedding" in n for n in r["notes"])
    assert r["macs"] > 0 and r["latency_edgeml_int8"]["median_us"] > 0
