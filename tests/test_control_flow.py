"""WHILE with its cond / body subgraphs against LiteRT's reference kernels: float Keras GRU and SimpleRNN layers and
tf.while_loop functions as TensorFlow's converter emits them (tests/control_flow_models.py), 20 seeded inputs each;
the run-time checks inside a loop (GATHER indices, the TensorList write's SLICEs, the iteration bound) as
InputError; malformed subgraph structures as ModelFormatError / UnsupportedOpError."""
from __future__ import annotations

import copy
import threading

import control_flow_models as M
import model_cache
import numpy as np
import pytest
from tflite_schema import edit

import edgeml
from converters import from_tflite
from edgeml import InputError, ModelFormatError, UnsupportedOpError
from edgeml.runtime.ops import control

SAMPLES = 20
RTOL, ATOL = 1e-5, 1e-6


@pytest.fixture(scope="session")
def loop_models(request, tmp_path_factory) -> model_cache.ConvertedModels:
    return model_cache.converted_models(request, tmp_path_factory, "control_flow_models", M)


def reference(model: bytes):
    litert = pytest.importorskip("ai_edge_litert.interpreter")
    ref = litert.Interpreter(model_content=model, experimental_op_resolver_type=litert.OpResolverType.BUILTIN_REF)
    ref.allocate_tensors()
    return ref


def run_reference(ref, x) -> list:
    ref.set_tensor(ref.get_input_details()[0]["index"], x)
    ref.invoke()
    return [ref.get_tensor(d["index"]) for d in ref.get_output_details()]


def run_edgeml(it, x) -> list:
    y = it.run(x)
    return y if isinstance(y, list) else [y]


def model_bytes(loop_models, name: str) -> bytes:
    return loop_models.get(name, "float")


# ----- conformance --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(M.SPECS))
def test_loop_model_matches_litert(loop_models, name):
    spec = M.SPECS[name]
    model = model_bytes(loop_models, name)
    types = [op.type for op in from_tflite(model).ops]
    assert types.count("WHILE") == spec.whiles and spec.holds <= set(types), types
    ref, ours = reference(model), edgeml.Interpreter(model)
    outputs = []
    for x in M.inputs(spec, SAMPLES):
        want = run_reference(ref, x)
        got = run_edgeml(ours, x)
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert g.dtype == w.dtype and g.shape == w.shape
            if w.dtype == np.float32:
                np.testing.assert_allclose(g, w, rtol=RTOL, atol=ATOL)
            else:
                np.testing.assert_array_equal(g, w)
        outputs.append(want[0])
    assert len(np.unique(np.concatenate([o.ravel() for o in outputs]))) > 8, "outputs are degenerate"


def test_trip_count_follows_the_input(loop_models):
    """loop_until_mean: the iteration count it returns differs between inputs (0 for a mean already >= 10)."""
    ours = edgeml.Interpreter(model_bytes(loop_models, "loop_until_mean"))
    counts = {int(run_edgeml(ours, np.full((2, 3), v, np.float32))[1]) for v in (0.1, 3.0, 9.0, 20.0)}
    assert 0 in counts and len(counts) == 4, counts


def test_resized_loop_matches_litert(loop_models):
    """loop_swap planned again for 5 rows instead of 3: the subgraphs follow the loop variables' new shapes."""
    model = model_bytes(loop_models, "loop_swap")
    ref, ours = reference(model), edgeml.Interpreter(model)
    ref.resize_tensor_input(ref.get_input_details()[0]["index"], [5, 5])
    ref.allocate_tensors()
    x = np.random.default_rng(5).standard_normal((5, 5)).astype(np.float32)
    for g, w in zip(run_edgeml(ours, x), run_reference(ref, x)):
        assert g.shape == (5, 5)
        np.testing.assert_allclose(g, w, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("name", ["gru_last_b1", "rnn_last_b1"])
def test_batch_resize_of_a_time_major_rnn_is_refused_as_litert_refuses_it(loop_models, name):
    """The converter's GRU / SimpleRNN reshapes [1, T, F] to the time-major [T, 1, F] with a constant shape; a
    batch of 4 cannot follow it (LiteRT refuses it at allocate).  Once edgeml stretched the first axis there, took
    the time axis for the batch and ran the loop over wrong data: now an InputError naming the RESHAPE."""
    model = model_bytes(loop_models, name)
    ours = edgeml.Interpreter(model)
    shape = list(ours.get_input_details()[0]["shape"])
    ours.resize_input(0, [4] + shape[1:])           # planned again at the next use
    with pytest.raises(edgeml.InputError, match=r"RESHAPE.*cannot reshape"):
        ours.run(np.zeros([4] + shape[1:], np.float32))
    ours.resize_input(0, shape)
    litert = pytest.importorskip("ai_edge_litert.interpreter")
    ref = litert.Interpreter(model_content=model, experimental_op_resolver_type=litert.OpResolverType.BUILTIN_REF)
    ref.resize_tensor_input(ref.get_input_details()[0]["index"], [4] + shape[1:])
    with pytest.raises(RuntimeError, match="RESHAPE"):
        ref.allocate_tensors()
    x = M.inputs(M.SPECS[name], 1)[0]       # the Interpreter still runs at its planned batch
    np.testing.assert_allclose(run_edgeml(ours, x)[0], run_reference(reference(model), x)[0], rtol=RTOL, atol=ATOL)


def test_clones_run_their_own_loops(loop_models):
    """clone(): the sub-plans are bound again to the clone's arena; two threads running clones agree with one
    interpreter running alone, and the clone shares the packed weights."""
    spec = M.SPECS["stacked_gru_rnn_b2"]
    model = model_bytes(loop_models, spec.name)
    one = edgeml.Interpreter(model)
    xs = M.inputs(spec, 8)
    want = [run_edgeml(one, x)[0] for x in xs]
    twins = [one.clone(), one.clone()]
    assert twins[0].shared_weight_bytes == one.shared_weight_bytes > 0
    got = [[None] * len(xs) for _ in twins]

    def work(k):
        for j, x in enumerate(xs):
            got[k][j] = run_edgeml(twins[k], x)[0]
    threads = [threading.Thread(target=work, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k in range(2):
        for g, w in zip(got[k], want):
            np.testing.assert_array_equal(g, w)


def test_profiled_invoke_reports_the_while_as_one_step(loop_models):
    ours = edgeml.Interpreter(model_bytes(loop_models, "gru_seq_b1"))
    ours.set_input(M.inputs(M.SPECS["gru_seq_b1"], 1)[0])
    steps = ours.invoke_profiled()
    assert [s[1] for s in steps] == [op.type for op in ours.graph.ops] and steps[1][1] == "WHILE"


# ----- run-time checks ----------------------------------------------------------------------------------------

def constant_named(model: bytes, subgraph: int, name: str) -> int:
    return next(t.index for t in from_tflite(model).subgraphs[subgraph].tensors if t.name == name)


def test_gather_index_past_the_sequence_is_an_input_error(loop_models):
    """gru_seq_b1 with its cond's step limit raised from 7 to 9: step 7's GATHER reads past the input sequence.
    LiteRT fails the invoke too; edgeml stops the loop and names the body's op."""
    model = model_bytes(loop_models, "gru_seq_b1")
    limit = constant_named(model, 1, "strided_slice1")
    bad = edit(model, lambda m, fb: M.set_constant(m, 1, limit, np.array(9, np.int32)))
    x = M.inputs(M.SPECS["gru_seq_b1"], 1)[0]
    with pytest.raises(RuntimeError):
        run_reference(reference(bad), x)
    ours = edgeml.Interpreter(bad)
    for _ in range(2):
        with pytest.raises(InputError, match=r"WHILE v1\): in its body subgraph 2: op 3 \(GATHER v1\): index 7 is "
                                             r"outside 0\.\.6"):
            ours.run(x)
    good = edgeml.Interpreter(model)
    np.testing.assert_allclose(run_edgeml(good, x)[0], run_reference(reference(model), x)[0], rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("tensor, values, fragment", [
    # the suffix slice takes 2 steps instead of the rest: the pieces no longer add up to 7 steps
    ("while/TensorArrayV2Write/TensorListSetItem1", [2, -1, -1], "sizes along axis 0 do not add up to the output's 7"),
    # the prefix slice keeps 5 of the 6 units: its shape does not fit the output's
    ("while/TensorArrayV2Write/TensorListSetItem3", [-1, 5], "piece 0"),
    # the suffix slice starts at unit 7 of 6: outside its source
    ("while/TensorArrayV2Write/TensorListSetItem2", [0, 7], "piece 2"),
])
def test_runtime_slices_outside_the_list_are_input_errors(loop_models, tensor, values, fragment):
    model = model_bytes(loop_models, "gru_seq_b1")
    index = constant_named(model, 2, tensor)
    bad = edit(model, lambda m, fb: M.set_constant(m, 2, index, np.array(values, np.int32)))
    graph = from_tflite(bad)
    assert "SLICE" in [op.type for op in graph.subgraphs[2].ops]
    with pytest.raises(InputError, match=r"body subgraph 2: op 24 \(CONCATENATION_OF_SLICES v1\)") as info:
        edgeml.Interpreter(bad).run(M.inputs(M.SPECS["gru_seq_b1"], 1)[0])
    assert fragment in str(info.value)


def endless(model: bytes) -> bytes:
    """loop_until_mean whose cond always holds: step limit INT32_MAX, body v * 1 + 0."""
    def change(m, fb):
        M.set_constant(m, 1, constant_named(model, 1, "while/Less/y"), np.array(2**31 - 1, np.int32))
        M.set_constant(m, 2, constant_named(model, 2, "while/add_1/y"), np.array(0.0, np.float32))
        M.set_constant(m, 2, constant_named(model, 2, "while/mul/y"), np.array(1.0, np.float32))
    return edit(model, change)


def test_a_loop_that_never_ends_stops_at_the_bound(loop_models):
    """10^7 body runs (about half a second), then an InputError, never a hang."""
    ours = edgeml.Interpreter(endless(model_bytes(loop_models, "loop_until_mean")))
    with pytest.raises(InputError, match="has not ended after 10000000 iterations"):
        ours.run(np.zeros((2, 3), np.float32))


def test_the_bound_counts_body_runs(loop_models, monkeypatch):
    """With the bound at 3: an input needing 4 or more steps fails, one needing 3 or fewer runs as LiteRT."""
    monkeypatch.setattr(control, "MAX_ITERATIONS", 3)
    model = model_bytes(loop_models, "loop_until_mean")
    ours, ref = edgeml.Interpreter(model), reference(model)
    for value, steps in ((20.0, 0), (7.0, 2), (5.0, 3)):
        x = np.full((2, 3), value, np.float32)
        want = run_reference(ref, x)
        assert int(want[1]) == steps
        np.testing.assert_array_equal(run_edgeml(ours, x)[1], want[1])
    with pytest.raises(InputError, match="not ended after 3 iterations"):
        ours.run(np.full((2, 3), 4.0, np.float32))


# ----- malformed subgraph structures --------------------------------------------------------------------------

def set_while(index: int = 0, subgraph: int = 0, **fields):
    def change(m, fb):
        op = M.while_ops(m, fb, subgraph)[index]
        for key, value in fields.items():
            setattr(op.builtinOptions, key, value)
    return change


def set_outputs(subgraph: int, outputs):
    def change(m, fb):
        m.subgraphs[subgraph].outputs = np.array(outputs, np.int32)
    return change


def drop_while_options(m, fb):
    op = M.while_ops(m, fb)[0]
    op.builtinOptionsType, op.builtinOptions = 0, None


def h_becomes_its_recurrent_product(m, fb):
    """The GRU body's new h (output 3) replaced by the FULLY_CONNECTED product of the old h, [1, 18]."""
    body = m.subgraphs[2]
    product = next(op.outputs[0] for op in body.operators if op.inputs[0] == body.inputs[3] and
                   m.operatorCodes[op.opcodeIndex].builtinCode == fb.BuiltinOperator.FULLY_CONNECTED)
    body.outputs[3] = product


def cond_runs_itself(m, fb):
    """loop_swap's cond (subgraph 1) given a WHILE of its own whose cond is subgraph 1 again."""
    cond = m.subgraphs[1]
    outputs = []
    for t in cond.inputs:
        inner = copy.deepcopy(cond.tensors[t])
        inner.name = f"again_{len(cond.tensors)}"
        cond.tensors.append(inner)
        outputs.append(len(cond.tensors) - 1)
    op = copy.deepcopy(M.while_ops(m, fb)[0])
    op.inputs, op.outputs = np.array(cond.inputs, np.int32), np.array(outputs, np.int32)
    cond.operators.append(op)


def drop_while_output(m, fb):
    op = M.while_ops(m, fb)[0]
    op.outputs = op.outputs[:-1]


MALFORMED = {
    "cond_out_of_range": ("loop_swap", set_while(condSubgraphIndex=7), ModelFormatError,
                          "cond_subgraph_index 7 is outside the model's 3 subgraphs"),
    "body_negative": ("loop_swap", set_while(bodySubgraphIndex=-1), ModelFormatError,
                      "body_subgraph_index -1 is outside"),
    "cond_is_body": ("loop_swap", set_while(condSubgraphIndex=2), ModelFormatError,
                     "cond and body are both subgraph 2"),
    "body_is_main": ("loop_swap", set_while(bodySubgraphIndex=0), ModelFormatError,
                     "body_subgraph_index 0 is a subgraph this WHILE runs in (recursion)"),
    "cond_is_main": ("loop_swap", set_while(condSubgraphIndex=0), ModelFormatError, "(recursion)"),
    "cond_runs_itself": ("loop_swap", cond_runs_itself, ModelFormatError,
                         "op 1 (WHILE v1): cond subgraph 1: op 1 (WHILE v1): cond_subgraph_index 1 is a subgraph this "
                         "WHILE runs in (recursion)"),
    # the inner WHILE of loop_nested runs the outer body (subgraph 4) as its own body
    "inner_body_is_outer_body": ("loop_nested", set_while(subgraph=4, bodySubgraphIndex=4), ModelFormatError,
                                 "body_subgraph_index 4 is a subgraph this WHILE runs in (recursion)"),
    "no_options": ("loop_swap", drop_while_options, ModelFormatError, "cond_subgraph_index None names no subgraph"),
    "cond_gives_int32": ("loop_swap", set_outputs(1, [0]), ModelFormatError,
                         "cond subgraph 1 must produce one bool; its output tensor 0 'while_cond_arg0' is int32"),
    "cond_gives_two": ("loop_swap", set_outputs(1, [4, 4]), ModelFormatError, "expected 1 output(s)"),
    "body_gives_two_of_three": ("loop_swap", set_outputs(2, [5, 2]), ModelFormatError,
                                "body subgraph 2 has 3 inputs and 2 outputs"),
    "body_output_type": ("loop_swap", set_outputs(2, [8, 2, 8]), ModelFormatError,
                         "is float32, the loop variable tensor 1 'arith.constant' int32"),
    "while_output_missing": ("loop_swap", drop_while_output, ModelFormatError, "3 inputs and 2 outputs"),
    "body_changes_shape": ("gru_seq_b1", h_becomes_its_recurrent_product, UnsupportedOpError,
                           "changes shape from [1, 6] to [1, 18] in body subgraph 2"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_loop(loop_models, case):
    name, change, error, fragment = MALFORMED[case]
    model = edit(model_bytes(loop_models, name), change)
    with pytest.raises(error) as info:
        edgeml.Interpreter(model)
    assert fragment in str(info.value)


def test_an_unsupported_op_in_a_body_names_the_subgraph(loop_models):
    """The body's TANH turned into CUMSUM (not implemented): the error names the WHILE and its body."""
    def change(m, fb):
        code = fb.OperatorCodeT()
        code.builtinCode = fb.BuiltinOperator.CUMSUM
        code.deprecatedBuiltinCode = fb.BuiltinOperator.PLACEHOLDER_FOR_GREATER_OP_CODES
        code.version = 1
        m.operatorCodes.append(code)
        tanh = next(op for op in m.subgraphs[2].operators
                    if m.operatorCodes[op.opcodeIndex].builtinCode == fb.BuiltinOperator.TANH)
        tanh.opcodeIndex = len(m.operatorCodes) - 1
    model = edit(model_bytes(loop_models, "loop_swap"), change)
    with pytest.raises(UnsupportedOpError, match=r"op 1 \(WHILE v1\): body subgraph 2: op 2 \(CUMSUM v1\): op CUMSUM "
                                                 "is not supported"):
        edgeml.Interpreter(model)


def test_subgraphs_no_op_reaches_are_not_read(loop_models):
    """A fourth subgraph nothing names, holding a string tensor edgeml cannot read, does not stop the model
    loading; the same subgraph named by the WHILE as its body does, and the error names it."""
    def change(m, fb):
        extra = fb.SubGraphT()
        t = fb.TensorT()
        t.shape, t.type, t.buffer, t.name = np.array([2], np.int32), fb.TensorType.STRING, 0, "text"
        extra.tensors, extra.operators = [t], []
        extra.inputs = extra.outputs = np.array([0], np.int32)
        m.subgraphs.append(extra)
    model = edit(model_bytes(loop_models, "loop_swap"), change)
    x = M.inputs(M.SPECS["loop_swap"], 1)[0]
    np.testing.assert_array_equal(run_edgeml(edgeml.Interpreter(model), x)[0],
                                  run_edgeml(edgeml.Interpreter(model_bytes(loop_models, "loop_swap")), x)[0])
    named = edit(model, set_while(bodySubgraphIndex=3))
    with pytest.raises(ModelFormatError, match="subgraph 3: tensor 0 'text': tensor type STRING is not supported"):
        edgeml.Interpreter(named)


def test_nested_loops_share_one_iteration_bound(loop_models, monkeypatch):
    """loop_nested runs 4 outer and 1 + 2 + 3 + 4 inner body iterations: 14 in all.  A bound of 14 lets it finish
    as LiteRT does; at 13 the inner loop runs out (the bound counts the body runs of a WHILE and of every WHILE
    inside it together, so nested loops cannot multiply their bounds)."""
    model = model_bytes(loop_models, "loop_nested")
    x = M.inputs(M.SPECS["loop_nested"], 1)[0]
    monkeypatch.setattr(control, "MAX_ITERATIONS", 14)
    np.testing.assert_allclose(run_edgeml(edgeml.Interpreter(model), x)[0], run_reference(reference(model), x)[0],
                               rtol=RTOL, atol=ATOL)
    monkeypatch.setattr(control, "MAX_ITERATIONS", 13)
    with pytest.raises(InputError, match=r"op 0 \(WHILE v1\): in its body subgraph 4: op 1 \(WHILE v1\): the loop "
                                         r"has not ended after 13 iterations"):
        edgeml.Interpreter(model).run(x)


def nest_whiles(depth: int, per_level: int):
    """loop_swap whose body (subgraph 2) runs `per_level` WHILEs over copies of itself, `depth` levels deep (the
    last level is the original body); the inner results are unused."""
    def change(m, fb):
        code = next(k for k, c in enumerate(m.operatorCodes) if c.builtinCode == fb.BuiltinOperator.WHILE)
        original = m.subgraphs[2]
        for level in range(depth):
            body = copy.deepcopy(original)
            if level < depth - 1:
                for _ in range(per_level):
                    outputs = []
                    for t in body.inputs:
                        inner = copy.deepcopy(body.tensors[t])
                        inner.name = f"level{level}_{len(body.tensors)}"
                        body.tensors.append(inner)
                        outputs.append(len(body.tensors) - 1)
                    op, options = fb.OperatorT(), fb.WhileOptionsT()
                    options.condSubgraphIndex, options.bodySubgraphIndex = 1, 3 + level
                    op.opcodeIndex = code
                    op.inputs, op.outputs = np.array(body.inputs, np.int32), np.array(outputs, np.int32)
                    op.builtinOptionsType, op.builtinOptions = fb.BuiltinOptions.WhileOptions, options
                    body.operators.append(op)
            if level == 0:
                m.subgraphs[2] = body
            else:
                m.subgraphs.append(body)
    return change


def test_nesting_and_plan_count_are_bounded(loop_models):
    """A file cannot make loading recurse without bound (WHILEs 20 deep) nor plan without end (two WHILEs per
    level: 2^depth subgraph plans)."""
    model = model_bytes(loop_models, "loop_swap")
    x = M.inputs(M.SPECS["loop_swap"], 1)[0]
    np.testing.assert_allclose(run_edgeml(edgeml.Interpreter(edit(model, nest_whiles(4, 1))), x)[0],
                               run_reference(reference(model), x)[0], rtol=RTOL, atol=ATOL)
    with pytest.raises(UnsupportedOpError, match="control-flow ops nest more than 16 deep"):
        edgeml.Interpreter(edit(model, nest_whiles(20, 1)))
    with pytest.raises(ModelFormatError, match="need more than 256 subgraph plans"):
        edgeml.Interpreter(edit(model, nest_whiles(10, 2)))
