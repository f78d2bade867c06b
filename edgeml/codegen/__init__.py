"""`edgeml compile`: a model as standalone C (weights as const arrays, one static arena, the plan as a straight
sequence of calls to the same kernel headers the runtime uses).  See compile_model."""
from edgeml.codegen.generate import TARGETS, CompiledC, compile_model

__all__ = ["TARGETS", "CompiledC", "compile_model"]
