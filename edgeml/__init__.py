"""edgeml: train, quantize, export and run small neural networks on CPUs and devices."""
from edgeml.errors import EdgeMLError, InputError, ModelFormatError, UnsupportedOpError
from edgeml.runtime.interpreter import Interpreter

__version__ = "0.1.0"
__all__ = ["Interpreter", "EdgeMLError", "InputError", "ModelFormatError", "UnsupportedOpError", "__version__"]
