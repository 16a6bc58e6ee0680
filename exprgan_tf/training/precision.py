"""Mixed precision for training: the Keras dtype policy of the networks and the
optimisers that go with it.

``training.precision`` picks one of :data:`~exprgan_tf.config.PRECISIONS`:

- ``"float32"`` (default): everything in float32.
- ``"mixed_bfloat16"``: layers compute in bfloat16, variables stay float32. bfloat16
  has float32's range, so no loss scaling is needed.
- ``"mixed_float16"``: layers compute in float16, variables stay float32, and each
  optimiser is a :class:`keras.optimizers.LossScaleOptimizer` (dynamic loss scaling:
  a step whose gradients overflow is skipped and the scale halved).

In every case the layers the builders mark ``dtype="float32"`` (the tanh outputs of E
and G, the D_z / D_img logits and Q's code) stay float32, and the losses are computed
in float32 (:mod:`exprgan_tf.losses` casts their inputs).

Example:
    >>> with dtype_policy("mixed_bfloat16"):                 # doctest: +SKIP
    ...     nets = build_networks(config.model)
"""

from __future__ import annotations

import contextlib

import keras

from exprgan_tf.config import PRECISIONS


@contextlib.contextmanager
def dtype_policy(precision: str):
    """Build Keras layers under ``precision`` within the block, then restore the
    global dtype policy (a layer keeps the policy it was built with)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {list(PRECISIONS)}. "
                         f"Received: precision={precision!r}")
    old = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(old)


def make_optimizer(optimizer_config, name: str, precision: str = "float32"):
    """The Adam optimiser of one network group, loss-scaled under ``mixed_float16``.

    Args:
        optimizer_config: an :class:`~exprgan_tf.config.OptimizerConfig`.
        name: the optimiser's name (``adam_EG``, ...).
        precision: the run's ``training.precision``.
    """
    opt = keras.optimizers.Adam(
        learning_rate=optimizer_config.learning_rate, beta_1=optimizer_config.beta_1,
        beta_2=optimizer_config.beta_2, epsilon=optimizer_config.epsilon, name=name)
    if precision == "mixed_float16":
        opt = keras.optimizers.LossScaleOptimizer(opt, name=f"{name}_loss_scale")
    return opt
