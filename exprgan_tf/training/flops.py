"""Floating-point operations of a train step, counted from its own TensorFlow graph.

The count uses TensorFlow's flops registry (the statistics behind the TF profiler's
``float_operation`` view): convolutions and matrix products forward *and* backward
(``MatMul`` with transposes) plus the element-wise ops it knows; a multiply-add counts
as 2 FLOPs. A convolution's input and filter gradients are counted as the forward
convolution's multiply-adds (the registry counts them from the input's size, which
overcounts a "valid" convolution over a padded map by up to 4x here). Only the ops the step
really runs are counted: a gradient tape also builds gradient ops that no output or
variable update needs (TensorFlow prunes them before running the function), so the
graph is walked back from the function's outputs and side effects first.

Example:
    >>> flops = step_flops(trainer.step, batch)          # doctest: +SKIP
    >>> flops["total"] / trainer.batch_size / 1e9         # GFLOP per image  # doctest: +SKIP
"""

from __future__ import annotations

from collections import Counter

import tensorflow as tf
from tensorflow.python.framework import ops as tf_ops
# Importing the registry registers the counts of the backprop ops, MatMul, AddN, ...
from tensorflow.python.profiler.internal import flops_registry  # noqa: F401


def _needed_ops(graph):
    """The ops that ``graph``'s outputs and control outputs (variable updates) depend
    on, in graph order."""
    stack = [t.op for t in graph.outputs] + list(graph.control_outputs)
    seen = set()
    while stack:
        op = stack.pop()
        if op.name in seen:
            continue
        seen.add(op.name)
        stack.extend(t.op for t in op.inputs)
        stack.extend(op.control_inputs)
    return [op for op in graph.get_operations() if op.name in seen]


_CONV_BACKPROP = ("Conv2DBackpropInput", "Conv2DBackpropFilter")


def _conv_backprop_flops(op) -> int:
    """A conv's input or filter gradient does the multiply-adds of its forward pass:
    2 * |out_backprop| * kh * kw * c_in. (TF's registry counts from the input's size,
    which overcounts a "valid" conv over a padded map, as in ``DilatedConv2D``.)"""
    out_backprop = op.inputs[2].shape
    kernel = op.inputs[1].shape if op.type == "Conv2DBackpropInput" else op.outputs[0].shape
    if not (out_backprop.is_fully_defined() and kernel.is_fully_defined()):
        raise ValueError(f"{op.name}: shapes not fully defined")
    kh, kw, c_in, _ = kernel.as_list()
    return 2 * out_backprop.num_elements() * kh * kw * c_in


def graph_flops(graph) -> dict:
    """FLOPs of one run of a ``tf.function`` graph (a ``FuncGraph``).

    Returns:
        ``{"total": int, "by_type": {op type: FLOPs}}``. Ops without a registered
        count (data movement, ops inside nested functions) count 0.
    """
    by_type = Counter()
    for op in _needed_ops(graph):
        try:
            if op.type in _CONV_BACKPROP:
                value = _conv_backprop_flops(op)
            else:
                value = tf_ops.get_stats_for_node_def(graph, op.node_def, "flops").value
        except (ValueError, TypeError):  # no registered count, or unknown shapes
            continue
        if value:
            by_type[op.type] += int(value)
    return {"total": int(sum(by_type.values())), "by_type": dict(by_type.most_common())}


def step_flops(step, batch) -> dict:
    """FLOPs of one :class:`~exprgan_tf.training.StageStep` on a batch like ``batch``.

    Traces the step's per-replica function once more, without XLA (so that nothing is
    hidden inside a compiled cluster) and without running it; the step's own trace
    count is unchanged. Valid for a single-replica step (the global batch).

    Args:
        step: a ``StageStep``.
        batch: a batch dict as the step takes it (tensors or ``tf.TensorSpec``s).
    """
    specs = tf.nest.map_structure(lambda t: tf.TensorSpec(t.shape, t.dtype), batch)
    concrete = tf.function(step._replica_step).get_concrete_function(specs)
    return graph_flops(concrete.graph)
