"""edgeml: train, quantize, export and run small neural networks on CPUs and devices."""
from edgeml.errors import EdgeMLError, InputError, ModelFormatError, UnsupportedOpError

__version__ = "0.1.0"
__all__ = ["Interpreter", "EdgeMLError", "InputError", "ModelFormatError", "UnsupportedOpError", "__version__"]


def __getattr__(name):
    # The runtime loads on first use of edgeml.Interpreter, so that the readers (which import edgeml.ir) and
    # the training front-end import without it and the package graph has no circle.
    if name == "Interpreter":
        from edgeml.runtime.interpreter import Interpreter
        globals()["Interpreter"] = Interpreter      # (later look-ups find it without this function: ~3 us each)
        return Interpreter
    raise AttributeError(f"module 'edgeml' has no attribute {name!r}")
