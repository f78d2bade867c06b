"""Compiled kernels of edgeml.

Each op family is one extension module (conv, pool, elementwise, activation, shape, reduce) whose C kernels
live in `include/`; every module exports `KERNELS`, a name -> function address table that the engine runs.
"""
