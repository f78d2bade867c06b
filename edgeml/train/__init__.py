"""Keras front-end: data sources, model zoo, training, export pipeline (`edgeml.train.pipeline.train`).

TensorFlow is imported lazily inside functions; importing this package costs nothing.  tfmot needs Keras 2,
so everything here uses `tf_keras` with TF_USE_LEGACY_KERAS=1 set before TensorFlow loads (see `keras_env`).
"""
import logging
import os
import sys
import warnings

from edgeml.train.console import captured_stderr, native_logs_shown


def keras_env():
    """Import TensorFlow and tf_keras the way tfmot needs them; returns (tf, keras).

    The first import runs with file descriptor 2 captured and TensorFlow's loggers at ERROR, so the oneDNN /
    CUDA / absl lines it prints on every start stay off the terminal (EDGEML_TF_LOGS=1 shows them)."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    first = "tensorflow" not in sys.modules
    if first and not native_logs_shown():
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with captured_stderr(enabled=first):
        import tensorflow as tf
        import tf_keras as keras
    if first and not native_logs_shown():
        tf.get_logger().setLevel("ERROR")
        tf.autograph.set_verbosity(0)
        logging.getLogger("absl").setLevel(logging.ERROR)
        for pattern in (".*HDF5 file.*", ".*tf.lite.Interpreter is deprecated.*",
                        ".*Statistics for quantized inputs were expected.*"):
            warnings.filterwarnings("ignore", message=pattern)
    return tf, keras
