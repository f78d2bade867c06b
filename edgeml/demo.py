"""`edgeml demo`: the default main job until the training front-end lands.

Trains a small CNN on scikit-learn's digits (no network), converts it to full-int8 TFLite with TensorFlow's
converter, then runs the test split through edgeml and LiteRT's reference kernels and prints accuracy,
agreement and latency.  TensorFlow is imported here only; the runtime itself never imports it.
"""
from __future__ import annotations

import os
import time

import numpy as np


def run_demo(seed: int = 0) -> int:
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf
    import tf_keras as keras
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    import edgeml

    digits = load_digits()
    x = (digits.images.astype(np.float32) / 16.0)[..., None]
    y = digits.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.2, random_state=seed, stratify=y)
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([
        keras.layers.Input((8, 8, 1), batch_size=1),
        keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
        keras.layers.DepthwiseConv2D(3, padding="same", activation="relu"),
        keras.layers.Conv2D(32, 1, activation="relu"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Flatten(),
        keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    t0 = time.perf_counter()
    # train with a free batch dimension, then copy the weights into the batch-1 edge model
    train_model = keras.Sequential([keras.layers.Input((8, 8, 1))] + [keras.layers.deserialize(
        {"class_name": l.__class__.__name__, "config": l.get_config()}) for l in model.layers])
    train_model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    train_model.fit(x_tr, y_tr, epochs=15, batch_size=32, verbose=0)
    model.set_weights(train_model.get_weights())
    float_acc = float(np.mean(np.argmax(train_model.predict(x_te, verbose=0), 1) == y_te))
    print(f"trained a {model.count_params()}-parameter CNN on {len(x_tr)} digits in {time.perf_counter() - t0:.1f} s; "
          f"float test accuracy {float_acc:.4f}")

    def representative():
        for i in range(0, 200):
            yield [x_tr[i:i + 1]]
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    tflite_bytes = conv.convert()
    print(f"full-int8 .tflite: {len(tflite_bytes)} bytes")

    it = edgeml.Interpreter(tflite_bytes)
    print(f"edgeml arena: {it.arena_bytes} bytes; ops: {[s.op.type for s in it.plan.steps]}")
    d = it.get_input_details()[0]
    xq = edgeml.runtime.quant.quantize_array(x_te, d["scale"], d["zero_point"])
    ours = np.concatenate([it.run(xq[i:i + 1]) for i in range(len(xq))])
    edgeml_acc = float(np.mean(np.argmax(ours, 1) == y_te))
    line = f"edgeml int8 test accuracy {edgeml_acc:.4f}"
    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
        ref = Interpreter(model_content=tflite_bytes, experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
        ref.allocate_tensors()
        rin, rout = ref.get_input_details()[0]["index"], ref.get_output_details()[0]["index"]
        theirs = []
        for i in range(len(xq)):
            ref.set_tensor(rin, xq[i:i + 1])
            ref.invoke()
            theirs.append(ref.get_tensor(rout))
        theirs = np.concatenate(theirs)
        line += f"; bit-identical to LiteRT reference kernels on {np.mean(np.all(theirs == ours, axis=1)) * 100:.1f}% of samples"
    except ImportError:
        line += " (ai-edge-litert not installed: no comparison)"
    print(line)
    it.set_input(xq[:1])
    times = []
    for _ in range(200):
        t0 = time.perf_counter_ns()
        it.invoke()
        times.append(time.perf_counter_ns() - t0)
    print(f"edgeml latency, batch 1: median {np.median(times) / 1000:.1f} us")
    return 0
