# cython: language_level=3
"""compile.prepare_steps' loop over the ops in one call (issue 15): per op the op-table look-up, the version
check, the scheme check's common answer (coverage.ACCEPTED), the output types, the op's prepare, then the
produced / read checks, in prepare_steps' order.  Every refusal is raised by compile.py's own functions (the
`refuse` callbacks), so the messages are the Python loop's; prepare_steps is this loop's twin (tests/test_load_loop.py
compares the plans and the refusals of both).  Not kernels: no KERNELS table."""
from cpython.dict cimport PyDict_GetItem
from cpython.object cimport PyObject


def prepare_ops(ctx, dict op_table, dict accepted_types, dict data_input, check_scheme, refuse_op, refuse_output,
                refuse_unproduced):
    """ctx.graph's steps (a list), each op prepared in graph order after the checks prepare_steps makes.
    op_table: op type -> OpSpec; accepted_types: coverage.ACCEPTED (op type -> True or the data input types that
    pass without coverage.scheme_of; absent: check_scheme decides and fills it); data_input: coverage.DATA_INPUT.
    refuse_op(op, spec) raises for a type the table lacks or a version past its newest, refuse_output(op, tensor,
    types) for an output of a type the op does not make, refuse_unproduced(tensors, shapes, op) for an output it
    did not produce or an input nothing provides."""
    graph = ctx.graph
    cdef list steps = []
    cdef dict shapes = ctx.shapes, substitutes = ctx.substitutes
    cdef Py_ssize_t position
    cdef PyObject* found
    if shapes is None or substitutes is None:
        raise TypeError("prepare_ops: ctx.shapes and ctx.substitutes must be dicts")
    tensors = graph.tensors
    for op in graph.ops:
        if substitutes:
            op = substitutes.pop(op.index, op)
        op_type = op.type
        spec = op_table.get(op_type)
        if spec is None or op.version > spec.max_version:
            refuse_op(op, spec)
        found = PyDict_GetItem(accepted_types, op_type)
        if found is NULL:
            check_scheme(graph, op)
        elif <object>found is not True:
            accepted = <object>found
            inputs = op.inputs
            found = PyDict_GetItem(data_input, op_type)
            position = 0 if found is NULL else <object>found
            if not (position < len(inputs) and inputs[position] >= 0 and tensors[inputs[position]].dtype in accepted):
                check_scheme(graph, op)
        output_types = spec.output_types
        if output_types is not None:
            for t in op.outputs:
                tensor = tensors[t]
                if tensor.dtype not in output_types:
                    refuse_output(op, tensor, output_types)
        step = spec.prepare(ctx, op)
        if isinstance(step, list):
            steps.extend(step)
        elif step is not None:
            steps.append(step)
        if not (all_known(op.outputs, shapes) and all_known(op.inputs, shapes)):
            refuse_unproduced(tensors, shapes, op)
    return steps


cdef bint all_known(tensor_indices, dict shapes) except -1:
    """Whether every tensor index (an omitted optional input, -1, aside) has a shape."""
    for t in tensor_indices:
        if PyDict_GetItem(shapes, t) is NULL and t >= 0:
            return False
    return True
