"""exprgan_tf: ExprGAN and its multi-scale dilated / unsharp-mask variant in TF2/Keras 3.

Where things live:

- :mod:`exprgan_tf.config` - typed configuration and presets;
- :mod:`exprgan_tf.preprocessing` - unsharp mask and [-1, 1] rescaling as TF ops;
- :mod:`exprgan_tf.layers` - ``DilatedConv2D``, ``ConcatLabel``;
- :mod:`exprgan_tf.controller` - the expression code (training sampler, intensity map);
- :mod:`exprgan_tf.models` - encoder, decoder, D_z, D_img + Q builders;
- :mod:`exprgan_tf.losses` - every loss as a pure function.
"""

from exprgan_tf.config import EXPRESSIONS, PRESETS, ExprGANConfig, get_preset

__version__ = "0.1.0"

__all__ = ["EXPRESSIONS", "PRESETS", "ExprGANConfig", "get_preset", "__version__"]
