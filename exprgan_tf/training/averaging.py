"""An exponential moving average of E's and G's weights (``training.ema_momentum``).

GAN generators oscillate around a good solution while their discriminator keeps moving:
the weights after the last step carry that step's swing, in this package's CPU recipe a
checkerboard and a class that comes and goes between epochs. The average of the last
few hundred steps' weights is a steadier editor (Karras et al. 2018, "Progressive
Growing of GANs", and most GANs since). Not in the original ExprGAN.

The average is a second copy of the encoder and decoder, updated after every step as
``a <- m * a + (1 - m) * w`` for every weight (BatchNorm's moving statistics included),
that never feeds back into training: a run with the average on trains bit for bit like
one without it. It lives in the checkpoint under ``encoder_ema`` / ``decoder_ema``, so a
resumed run continues the same average; :func:`exprgan_tf.run_dir.load_networks` (the
exporter, the scorers) gives the averaged networks when a checkpoint has them.

Example:
    >>> import keras, numpy as np
    >>> w = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> a = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> avg = WeightAverage({"net": w}, {"net": a}, momentum=0.75)
    >>> avg.reset()
    >>> _ = w.layers[0].bias.assign([4.0])
    >>> avg.update()
    >>> float(a.layers[0].bias[0])    # 0.75 * 0 + 0.25 * 4
    1.0
"""

from __future__ import annotations

import tensorflow as tf

# The checkpoint name of a network's average: the network's own name plus this.
SUFFIX = "_ema"
# The networks that are averaged: the editor's (the discriminators are not used after
# training).
AVERAGED = ("encoder", "decoder")


class WeightAverage:
    """Keeps ``averaged[name]`` an exponential moving average of ``networks[name]``.

    Args:
        networks: name -> the trained ``keras.Model``.
        averaged: name -> a model of the same architecture that holds the average.
        momentum: ``m`` in ``a <- m * a + (1 - m) * w``, in ``(0, 1)``; the average
            spans about ``1 / (1 - m)`` steps.
        jit_compile: compile the update with XLA into one fused kernel (about 4x faster
            than one op per weight on a CPU: 6-8 ms against 25-29 ms a step for
            ``proposed-small``'s 11 M weights). Leave it off for variables of a
            multi-replica strategy.
    """

    def __init__(self, networks: dict, averaged: dict, momentum: float,
                 jit_compile: bool = True):
        if not 0.0 < momentum < 1.0:
            raise ValueError(f"momentum must be in (0, 1). Received: momentum={momentum}")
        if set(networks) != set(averaged):
            raise ValueError(f"networks and averaged must name the same models. Received: "
                             f"{sorted(networks)} and {sorted(averaged)}")
        self.momentum = momentum
        self.averaged = dict(averaged)
        self.pairs = []
        for name in networks:
            source, target = networks[name].weights, averaged[name].weights
            shapes = ([tuple(v.shape) for v in source], [tuple(v.shape) for v in target])
            if shapes[0] != shapes[1]:
                raise ValueError(f"{name}: the average's weights {shapes[1]} do not match "
                                 f"the network's {shapes[0]}")
            self.pairs += list(zip(source, target))
        self._update = tf.function(self._assign_average, jit_compile=jit_compile)

    def reset(self):
        """Make the average equal to the current weights (at the start of a stage)."""
        for w, a in self.pairs:
            a.assign(w)

    def update(self):
        """One step of the average (call after each training step)."""
        self._update()

    def _assign_average(self):
        m = self.momentum
        for w, a in self.pairs:
            if tf.as_dtype(a.dtype).is_floating:
                a.assign(m * a + (1.0 - m) * tf.cast(w, a.dtype))
            else:  # a counter or a seed: nothing to average
                a.assign(w)
