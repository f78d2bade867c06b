"""Dynamic-range ("hybrid") models: float input, int8 weights.  LiteRT quantizes the input on the fly; edgeml
reproduces that quantization, so outputs match its reference kernels within float tolerance."""
import numpy as np
import pytest

import edgeml
from converters import from_tflite


@pytest.fixture(scope="module")
def hybrid_models():
    pytest.importorskip("tensorflow")
    from edgeml.train import keras_env
    tf, keras = keras_env()
    keras.utils.set_random_seed(4)
    layers = keras.layers
    specs = {
        "conv": [layers.Conv2D(20, (3, 2), strides=2, padding="same", activation="relu")],
        "conv_1x1": [layers.Conv2D(48, 1)],
        "depthwise": [layers.DepthwiseConv2D(3, depth_multiplier=4, padding="same", activation="relu6")],
        "dense": [layers.Flatten(), layers.Dense(33, activation="relu"), layers.Dense(7)],
    }
    out = {}
    for name, body in specs.items():
        model = keras.Sequential([layers.Input((9, 7, 40), batch_size=1)] + body)
        conv = tf.lite.TFLiteConverter.from_keras_model(model)
        conv.optimizations = [tf.lite.Optimize.DEFAULT]      # no representative data: dynamic range
        out[name] = conv.convert()     # weights over 1024 elements: the converter quantizes them
    return out


@pytest.mark.parametrize("name,op", [("conv", "CONV_2D"), ("conv_1x1", "CONV_2D"),
                                     ("depthwise", "DEPTHWISE_CONV_2D"), ("dense", "FULLY_CONNECTED")])
def test_hybrid_op_matches_litert_reference(hybrid_models, name, op):
    litert = pytest.importorskip("ai_edge_litert.interpreter")
    model = hybrid_models[name]
    g = from_tflite(model)
    hybrid = [o for o in g.ops if o.type == op and g.tensors[o.inputs[1]].dtype == np.int8
              and g.tensors[o.inputs[0]].dtype == np.float32]
    assert hybrid, [(o.type, g.tensors[o.inputs[1]].dtype) for o in g.ops]
    ours = edgeml.Interpreter(model)
    ref = litert.Interpreter(model_content=model, experimental_op_resolver_type=litert.OpResolverType.BUILTIN_REF)
    ref.allocate_tensors()
    d, o = ref.get_input_details()[0], ref.get_output_details()[0]
    rng = np.random.default_rng(8)
    for k in range(20):
        x = (rng.standard_normal(tuple(d["shape"])) * (0.01, 1.0, 50.0)[k % 3]).astype(np.float32)
        ref.set_tensor(d["index"], x)
        ref.invoke()
        ours.set_input(x)
        ours.invoke()
        np.testing.assert_allclose(ours.get_output(), ref.get_tensor(o["index"]), rtol=1e-5, atol=1e-6)
