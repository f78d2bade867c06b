"""The embedded inference library: graph IR, compile, Interpreter.  Imports numpy, cython_ops and converters.

It never imports TensorFlow, tf_keras or onnxruntime.
"""
from edgeml.errors import EdgeMLError, InputError, ModelFormatError, UnsupportedOpError
from edgeml.runtime.interpreter import Interpreter

__all__ = ["Interpreter", "EdgeMLError", "InputError", "ModelFormatError", "UnsupportedOpError"]
