"""Incremental training (stages 1-3): the step functions, the inputs, the loop.

- :mod:`~exprgan_tf.training.steps` - one ``tf.function`` step per stage;
- :mod:`~exprgan_tf.training.inputs` - deterministic per-epoch batches;
- :mod:`~exprgan_tf.training.trainer` - the loop, checkpoints, logs, pictures;
- :mod:`~exprgan_tf.training.precision` - mixed-precision policies and optimisers;
- :mod:`~exprgan_tf.training.flops` - FLOPs of a step, counted from its graph.
"""

from exprgan_tf.training.inputs import TrainingInputs
from exprgan_tf.training.steps import LOSS_KEYS, StageStep
from exprgan_tf.training.trainer import NonFiniteLossError, Trainer, make_strategy

__all__ = ["LOSS_KEYS", "NonFiniteLossError", "StageStep", "Trainer", "TrainingInputs",
           "make_strategy"]
