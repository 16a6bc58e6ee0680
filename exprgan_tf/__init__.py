"""exprgan_tf: ExprGAN and its multi-scale dilated / unsharp-mask variant in TF2/Keras 3.

Where things live:

- :mod:`exprgan_tf.config` - typed configuration and presets;
- :mod:`exprgan_tf.preprocessing` - unsharp mask and [-1, 1] rescaling as TF ops;
- :mod:`exprgan_tf.layers` - ``DilatedConv2D``, ``ConcatLabel``;
- :mod:`exprgan_tf.controller` - the expression code (training sampler, intensity map);
- :mod:`exprgan_tf.models` - encoder, decoder, D_z, D_img + Q builders;
- :mod:`exprgan_tf.losses` - every loss as a pure function;
- :mod:`exprgan_tf.identity` - identity networks for L_id (VGG-Face, dlib ResNet);
- :mod:`exprgan_tf.data` - the built-in face set, readers, ``tf.data`` pipeline;
- :mod:`exprgan_tf.training` - the three training stages;
- :mod:`exprgan_tf.editor` - ``ExpressionEditor`` / ``load_editor`` (``model.predict``);
- :mod:`exprgan_tf.serving` - SavedModel export and photo editing.
"""

from exprgan_tf.config import EXPRESSIONS, PRESETS, ExprGANConfig, get_preset

__version__ = "0.1.0"

__all__ = ["EXPRESSIONS", "PRESETS", "ExprGANConfig", "ExpressionEditor", "find_checkpoint",
           "get_preset", "load_editor", "__version__"]


def __getattr__(name):
    # The editor imports TensorFlow; load it on first use so `import exprgan_tf` stays light.
    if name in ("ExpressionEditor", "load_editor", "find_checkpoint"):
        from exprgan_tf import editor
        return getattr(editor, name)
    raise AttributeError(f"module 'exprgan_tf' has no attribute {name!r}")
