"""The check every tfmot step makes on the model it is handed: a built tf_keras (Keras 2) model."""
from __future__ import annotations

from edgeml.errors import TrainingError
from edgeml.train import keras_env


def require_tf_keras(model, action: str) -> None:
    """Raises TrainingError unless `model` is a built tf_keras (Keras 2) model, the only kind tfmot handles."""
    if model is None:
        raise TrainingError(f"{action} got no model (None); pass a built tf_keras model.")
    _, keras = keras_env()
    if isinstance(model, keras.Model):
        if not model.built or not model.inputs:
            raise TrainingError(f"{action} needs a built model with known inputs; call the model once or give "
                                f"it an Input layer first.")
        return
    cls = type(model)
    where = f"{cls.__module__}.{cls.__qualname__}"
    if cls.__module__.split(".")[0] == "keras":
        raise TrainingError(f"{action} needs a tf_keras (Keras 2) model but got a Keras 3 model ({where}); "
                            f"build it with `import tf_keras as keras`, since tensorflow-model-optimization "
                            f"does not support Keras 3.")
    raise TrainingError(f"{action} needs a tf_keras model, not {where}.")
