"""A user's model for `edgeml train`: a file (.keras / .h5 from Keras 3 or tf_keras, a tf_keras SavedModel folder)
or a model object (tf_keras or Keras 3), turned into a tf_keras model the trainer owns (the caller's object is
copied, not trained in place).  Keras 3 models are rebuilt in tf_keras by `edgeml.train.keras3`."""
from __future__ import annotations

import json
import os
import zipfile

from edgeml.errors import TrainingError
from edgeml.train import keras_env
from edgeml.train.keras3 import is_keras3_model, load_keras3_file, to_tf_keras
from edgeml.train.layers import register_layers

MODEL_FILE_TYPES = (".h5", ".hdf5", ".keras")


def saved_keras_version(path: str):
    """The keras_version recorded in a .keras zip or .h5 file, or None if it cannot be told."""
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as z:
                return json.loads(z.read("metadata.json")).get("keras_version")
        except (KeyError, ValueError, zipfile.BadZipFile):
            return None
    try:
        import h5py
        with h5py.File(path, "r") as f:
            v = f.attrs.get("keras_version")
            return v.decode() if isinstance(v, bytes) else v
    except Exception:  # noqa: BLE001 - not an HDF5 file: the loader says so
        return None


def load_user_model(path):
    """Loads a model file as an uncompiled tf_keras model: tf_keras .h5 / .keras / SavedModel folders directly
    (inside tfmot's quantize scope when they hold QAT wrappers), Keras 3 .keras / .h5 files through Keras 3 and
    the tf_keras rebuild.  Raises TrainingError for a missing path, an unknown format, or a layer the rebuild
    cannot take."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise TrainingError(f"model file '{path}' does not exist")
    ext = os.path.splitext(path)[1].lower()
    if os.path.isdir(path):
        if not os.path.isfile(os.path.join(path, "saved_model.pb")):
            raise TrainingError(f"folder '{path}' is not a SavedModel (no saved_model.pb inside)")
        if not os.path.isfile(os.path.join(path, "keras_metadata.pb")):
            raise TrainingError(f"SavedModel '{path}' holds no Keras model (no keras_metadata.pb: it was written by "
                                "Keras 3 `model.export` or `tf.saved_model.save`); save the Keras model itself with "
                                "model.save('model.keras')")
    elif ext not in MODEL_FILE_TYPES:
        raise TrainingError(f"cannot load a Keras model from '{path}': use a .keras or .h5 file (Keras 3 or "
                            "tf_keras) or a tf_keras SavedModel folder")
    else:
        version = saved_keras_version(path)
        if version and str(version).split(".")[0] not in ("2", "1"):
            return to_tf_keras(load_keras3_file(path))
    tf, keras = keras_env()
    try:
        model = _load(keras, path)
    except TrainingError:
        raise
    except Exception as exc:  # noqa: BLE001 - one line naming the file and the loader's complaint
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise TrainingError(f"could not load the Keras model '{path}' ({type(exc).__name__}: {first[:300]})") from exc
    if not isinstance(model, keras.Model):
        raise TrainingError(f"'{path}' did not load as a Keras model (got {type(model).__name__})")
    return model


def _load(keras, path: str):
    custom = register_layers()
    try:
        return keras.models.load_model(path, compile=False, custom_objects=custom)
    except (ValueError, TypeError) as exc:
        if "quant" not in str(exc).lower():
            raise
    import tensorflow_model_optimization as tfmot
    with tfmot.quantization.keras.quantize_scope(custom):
        return keras.models.load_model(path, compile=False)


def from_object(model):
    """A tf_keras copy (architecture and weights) of a tf_keras or Keras 3 model object."""
    _, keras = keras_env()
    if is_keras3_model(model):
        return to_tf_keras(model)
    if not isinstance(model, keras.Model):
        cls = type(model)
        raise TrainingError(f"model must be a zoo name, a model file or a Keras model, not "
                            f"{cls.__module__}.{cls.__qualname__}")
    if not model.built or not model.inputs:
        raise TrainingError(f"the Keras model '{model.name}' is not built: give it an Input layer (or call it once) "
                            "so its input shape is known")
    try:
        copy = keras.models.clone_model(model)
    except Exception:  # noqa: BLE001 - subclassed models cannot be cloned: train the object itself
        return model
    copy.set_weights(model.get_weights())
    return copy
