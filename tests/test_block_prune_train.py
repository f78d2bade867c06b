"""`--prune-block`: block magnitude pruning (edgeml.optimize.block_prune) trains a Conv2D + Dense model to exactly
the target share of zero 16x4 blocks per layer; its int8 export runs bit-exact with LiteRT's reference kernels,
identical with the sparse kernels on and off, and the runtime takes the sparse kernel where its thresholds say."""
from __future__ import annotations

import numpy as np
import pytest

import edgeml
from edgeml.errors import TrainingError
from edgeml.optimize.block_prune import block_mask, parse_block, zero_block_share
from edgeml.runtime.packing_sparse import block_density
from edgeml.train.finetune import phase_epochs, prune_finetune_epochs

TARGET = 0.75


@pytest.mark.parametrize("text, want", [("16x4", (16, 4)), ("1x1", (1, 1)), ("32X8", (32, 8)), ((16, 4), (16, 4))])
def test_parse_block_accepts_1x1_and_multiples_of_16x4(text, want):
    assert parse_block(text) == want


@pytest.mark.parametrize("text", ["4x16", "8x4", "16x2", "16", "axb", "0x0", "2:4"])
def test_parse_block_refuses_blocks_the_kernel_cannot_skip(text):
    with pytest.raises(TrainingError, match="prune-block"):
        parse_block(text)


def test_train_config_checks_prune_block():
    from edgeml.train.config import TrainConfig, validate
    with pytest.raises(TrainingError, match="prune-block 8x4"):
        validate(TrainConfig(out="/nonexistent/x", prune=0.5, prune_block="8x4"), ("cnn",))


@pytest.mark.parametrize("shape", [(3, 3, 8, 32), (1, 1, 20, 40), (64, 10), (3, 3, 1, 16)])
@pytest.mark.parametrize("sparsity", [0.5, 0.75, 0.9])
def test_block_mask_zeroes_the_weakest_blocks_the_runtime_counts(shape, sparsity):
    kernel = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    pruned = kernel * block_mask(kernel, sparsity, (16, 4))
    runtime_view = pruned.reshape(-1, shape[-1]).T        # int8 file: [out][kh * kw * in]
    k_blocks, groups = -(-runtime_view.shape[1] // 4), -(-shape[-1] // 16)
    if k_blocks < 4:     # too few blocks along K: single weights instead
        assert np.mean(pruned == 0) == pytest.approx(round(sparsity * kernel.size) / kernel.size)
        return
    want = round(sparsity * k_blocks * groups) / (k_blocks * groups)
    assert zero_block_share(pruned) == pytest.approx(want)
    assert 1 - block_density(runtime_view) == pytest.approx(want)
    kept = np.abs(pruned) > 0             # no partly zeroed block: every kept weight keeps its value
    assert np.array_equal(pruned[kept], kernel[kept])


def test_default_pruning_fine_tune_grows_with_the_sparsity():
    """ceil(3.5 / (1 - sparsity)) epochs, at least 3: 14 at 75% keeps the zoo's models within 2 points."""
    assert [prune_finetune_epochs(s) for s in (0.1, 0.5, 0.75, 0.8, 0.9, 0.99)] == [4, 7, 14, 18, 35, 40]
    assert phase_epochs(None, 0.75) == {"prune": 14, "cluster": 3, "qat": 3}
    assert phase_epochs(None, None) == {"prune": 3, "cluster": 3, "qat": 3}
    assert phase_epochs(2, 0.9) == {"prune": 2, "cluster": 2, "qat": 2}       # --finetune-epochs: every phase


@pytest.mark.parametrize("shape", [(3, 3, 3, 16), (5, 5, 3, 24), (3, 3, 6, 32)])
def test_block_mask_of_odd_window_rows_zeroes_the_blocks_the_implicit_gemm_skips(shape):
    """KW * IN not a multiple of 4 (a first conv on RGB): the VNNI / AVX2 kernels pack each window row padded to a
    multiple of 4, so the pruned blocks are counted there, not in the plain [kh * kw * in] order."""
    kh, kw, cin, out = shape
    kernel = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    pruned = kernel * block_mask(kernel, 0.75, (16, 4))
    span = -(-(kw * cin) // 4) * 4
    packed = np.zeros((out, kh, span), np.float32)
    packed[:, :, :kw * cin] = pruned.transpose(3, 0, 1, 2).reshape(out, kh, kw * cin)
    blocks = kh * span // 4 * -(-out // 16)
    want = round(0.75 * blocks) / blocks
    assert 1 - block_density(packed.reshape(out, -1)) == pytest.approx(want)
    assert zero_block_share(pruned) == pytest.approx(want)


@pytest.fixture(scope="module")
def trained():
    """A Conv2D 3x3 + Conv2D 1x1 + two Dense model block-pruned to 75% in a short fit (the schedule ends at step
    8, the fit runs 12 steps), its per-layer block sparsity during the fit, and its int8 export."""
    from edgeml.optimize.block_prune import layer_block_sparsity
    from edgeml.optimize.prune import prune_model, strip_pruning
    from edgeml.train import keras_env
    tf, keras = keras_env()
    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 8))
    x = keras.layers.Conv2D(32, 3, padding="same", activation="relu")(inp)
    x = keras.layers.Conv2D(32, 1, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(32, activation="relu")(x)
    model = keras.Model(inp, keras.layers.Dense(16)(x))
    rng = np.random.default_rng(0)
    xs = rng.standard_normal((48, 8, 8, 8)).astype(np.float32)
    ys = rng.integers(0, 16, 48)
    pruned, callbacks = prune_model(model, TARGET, steps=8, block="16x4")
    seen = []

    class Watch(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(layer_block_sparsity(self.model))
    pruned.compile(optimizer=keras.optimizers.Adam(1e-2),
                   loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    pruned.fit(xs, ys, batch_size=16, epochs=4, verbose=0, callbacks=[*callbacks, Watch()], shuffle=False)
    stripped = strip_pruning(pruned)
    converter = tf.lite.TFLiteConverter.from_keras_model(stripped)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([xs[i:i + 1]] for i in range(32))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return stripped, seen, converter.convert()


def test_block_pruning_reaches_exactly_the_target_in_every_layer(trained):
    stripped, seen, _ = trained
    from edgeml.optimize.block_prune import layer_block_sparsity
    final = layer_block_sparsity(stripped)
    assert len(final) == 4 and all(v == TARGET for v in final.values()), final
    assert all(0 < v < TARGET for v in seen[0].values()), seen[0]              # a ramp from the first step on
    for name in final:
        assert all(a[name] <= b[name] for a, b in zip(seen, seen[1:])), name
    assert all(s == final for s in seen[7:]), "the masks hold after the schedule's last step"


def test_block_pruned_int8_export_is_bit_exact_with_sparse_on_and_off(trained):
    litert = pytest.importorskip("ai_edge_litert.interpreter")
    from edgeml.runtime.ops.sparse_gemm import MAX_DENSITY, sparse_path
    model = trained[2]
    on, off = edgeml.Interpreter(model, sparse="auto"), edgeml.Interpreter(model, sparse="off")
    g = on.graph
    layers = [s for s in on.plan.steps if s.op.type in ("CONV_2D", "FULLY_CONNECTED")]
    assert len(layers) == 4
    for s in layers:
        w = g.tensors[s.op.inputs[1]].data
        w2 = w.reshape(w.shape[0], -1)
        assert block_density(w2) == 1 - TARGET, f"step {s.op.index}: the int8 file lost the block pattern"
        kind = ("gemv" if s.op.type == "FULLY_CONNECTED" else "1x1" if w.shape[1] == w.shape[2] == 1 else "kxk")
        assert ("sparse" in s.kernel) == (block_density(w2) <= MAX_DENSITY[sparse_path()][kind]), s.kernel
    assert not any("sparse" in s.kernel for s in off.plan.steps)
    ref = litert.Interpreter(model_content=model, experimental_op_resolver_type=litert.OpResolverType.BUILTIN_REF)
    ref.allocate_tensors()
    rng = np.random.default_rng(1)
    for k in range(20):
        x = rng.integers(-128, 128, (1, 8, 8, 8)).astype(np.int8)
        ref.set_tensor(ref.get_input_details()[0]["index"], x)
        ref.invoke()
        want = ref.get_tensor(ref.get_output_details()[0]["index"])
        np.testing.assert_array_equal(on.run(x), want, err_msg=f"sparse on, input {k}")
        np.testing.assert_array_equal(off.run(x), want, err_msg=f"sparse off, input {k}")


def test_cli_refuses_a_block_the_kernel_cannot_skip(tmp_path):
    import subprocess
    import sys
    done = subprocess.run([sys.executable, "-m", "edgeml", "train", "--prune", "0.5", "--prune-block", "8x4",
                           "--out", str(tmp_path / "o")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().startswith("edgeml: --prune-block 8x4") and len(done.stderr.strip().splitlines()) == 1


def test_train_prunes_blocks_keeps_depthwise_dense_and_reports_sparse_latency(tmp_path):
    """ds_cnn: Conv2D, DepthwiseConv2D (left dense, and not a guard failure) and Dense, pruned by `train`."""
    from edgeml.train.pipeline import TrainConfig, train
    out = str(tmp_path / "ds")
    result = train(TrainConfig(out=out, model="ds_cnn", epochs=1, finetune_epochs=2, prune=0.75, verbose=0,
                               allow_degraded=True))
    r = result.report
    assert not [f for f in r["failures"] if f["check"] == "sparsity"], r["failures"]
    assert r["optimizations"]["prune_block"] == "16x4"
    blocks = r["block_sparsity"]
    first, *rest = blocks.values()          # layer names depend on what the process built before: go by order
    assert first == 0 and rest and all(v == TARGET for v in rest), blocks   # the first conv's K = 9: single weights
    assert any(op == "DEPTHWISE_CONV_2D" and z < 0.5 for _, op, z, _ in r["weights_int8"])
    sparse = r["latency_edgeml_int8"]["sparse"]
    assert sparse["on_us"] > 0 and sparse["off_us"] > 0 and sparse["sparse_kernels"] >= 1
    md = open(f"{out}/report.md").read()
    assert "| block zero fraction |" in md and "block-sparse kernels on / off" in md
