"""Combined optimizations as tfmot provides them: sparsity-preserving clustering, pruning-preserving QAT (PQAT),
cluster-preserving QAT (CQAT) and all three (PCQAT) keep the sparsity and cluster counts in the int8 file; a
combination tfmot cannot apply is refused before training starts."""
import csv

import numpy as np
import pytest

from edgeml.errors import TrainingError

pytest.importorskip("tensorflow_model_optimization")

from edgeml.optimize.cluster import cluster_model, strip_clustering  # noqa: E402
from edgeml.optimize.convert import to_tflite  # noqa: E402
from edgeml.optimize.prune import prune_model, strip_pruning  # noqa: E402
from edgeml.optimize.qat import quantize_aware  # noqa: E402
from edgeml.train import fit as F, keras_env, zoo  # noqa: E402
from edgeml.train.guard import weight_stats  # noqa: E402
from edgeml.train.pipeline import TrainConfig, train  # noqa: E402
from edgeml.train.sources import read_digits  # noqa: E402

tf, keras = keras_env()


@pytest.fixture(scope="module")
def digits():
    raw = read_digits()
    return (raw.xs[0] / 16.0).astype(np.float32), raw.ys[0]


def small_cnn():
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(8, 3, activation="relu"),
                             keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")])


def fitted(model, x, y, callbacks=(), epochs=1):
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", ["accuracy"])
    model.fit(x, y, batch_size=64, epochs=epochs, callbacks=list(callbacks), verbose=0)
    return model


def pruned_cnn(x, y, sparsity=0.5):
    model, callbacks = prune_model(fitted(small_cnn(), x, y), sparsity, steps=2 * int(np.ceil(len(x) / 64)))
    return strip_pruning(fitted(model, x, y, callbacks, epochs=3))


@pytest.fixture(scope="module")
def pruned_weights(digits):
    """The weights of one pruned CNN, trained once for the tests below."""
    return pruned_cnn(*digits).get_weights()


@pytest.fixture
def pruned(pruned_weights):
    """A fresh copy of that pruned CNN (tfmot's clustering wrappers train the layers they wrap in place)."""
    model = small_cnn()
    model.set_weights(pruned_weights)
    return model


def kernels(model) -> dict:
    return {layer.name: layer.kernel.numpy() for layer in model.layers if hasattr(layer, "kernel")}


def test_sparsity_preserving_clustering_keeps_the_zeros(digits, pruned):
    x, y = digits
    zeros = {name: k == 0 for name, k in kernels(pruned).items()}
    clustered = strip_clustering(fitted(cluster_model(pruned, 6, preserve_sparsity=True), x, y))
    for name, k in kernels(clustered).items():
        assert np.all(k[zeros[name]] == 0), name                          # every pruned weight is still zero
        assert len(np.unique(k[k != 0])) <= 6, name


@pytest.mark.parametrize("scheme", ["preserve_sparsity", "preserve_clusters"])
def test_pqat_and_cqat_keep_sparsity_and_clusters_in_the_int8_file(digits, pruned, tmp_path, scheme):
    x, y = digits
    if scheme == "preserve_clusters":
        model = strip_clustering(fitted(cluster_model(small_cnn(), 6), x, y))
    else:
        model = pruned
    qat = fitted(quantize_aware(model, scheme), x, y, epochs=2)
    path = to_tflite(qat, tmp_path / f"{scheme}.tflite", int8=True, representative_x=x[:64])["path"]
    stats = weight_stats(path)
    assert {op for _, op, _, _ in stats} == {"CONV_2D", "FULLY_CONNECTED"}
    for name, op, zeros, distinct in stats:
        if scheme == "preserve_sparsity":
            assert zeros >= 0.49, (name, zeros)
        else:
            assert distinct <= 6, (name, distinct)


def test_prune_cluster_qat_together_through_train(tmp_path):
    out = tmp_path / "pcqat"
    result = train(TrainConfig(out=str(out), model="cnn", epochs=2, prune=0.5, cluster=8, qat=True,
                               finetune_epochs=2, verbose=0, allow_degraded=True))
    r = result.report
    assert r["optimizations"]["plan"].endswith("sparsity- and cluster-preserving QAT (PCQAT)")
    assert not [f for f in result.failures if f["check"] in ("sparsity", "clusters")], result.failures
    for name, op, zeros, distinct in r["weights_int8"]:
        assert zeros >= 0.45 and distinct <= 8, (name, op, zeros, distinct)
    # every phase in the history, none overwritten
    with open(out / "history.csv") as f:
        phases = [row["phase"] for row in csv.DictReader(f)]
    assert phases == ["train"] * 2 + ["prune"] * 2 + ["cluster"] * 2 + ["qat"] * 2
    # parameters of the plain model: no pruning masks, thresholds or centroids counted
    plain = zoo.build_model("cnn", (8, 8, 1), 10).count_params()
    assert r["params"] == plain == 17_946
    assert r["accuracy"]["keras_qat"] is not None and r["accuracy"]["edgeml_int8"] > 0.8, r["accuracy"]


def test_a_combination_tfmot_refuses_stops_before_training(tmp_path, monkeypatch):
    def no_training(*args, **kwargs):
        raise AssertionError("trained before refusing")
    monkeypatch.setattr(F, "fit", no_training)
    with pytest.raises(TrainingError, match="--qat .*cannot be applied.*'lstm' \\(LSTM\\)"):
        train(TrainConfig(out=str(tmp_path / "o"), model="lstm", prune=0.5, qat=True, verbose=0))
    assert not (tmp_path / "o").exists()
