"""The embedded inference library: compile a graph into a plan of kernel calls and run it (Interpreter).

Imports numpy, cython_ops, the IR and the readers in converters/; never TensorFlow, tf_keras or onnxruntime.
"""
from edgeml.errors import EdgeMLError, InputError, ModelFormatError, UnsupportedOpError
from edgeml.runtime.interpreter import Interpreter

__all__ = ["Interpreter", "EdgeMLError", "InputError", "ModelFormatError", "UnsupportedOpError"]
