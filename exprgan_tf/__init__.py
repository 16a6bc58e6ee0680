"""exprgan_tf: ExprGAN and its multi-scale dilated / unsharp-mask variant in TF2/Keras 3.

Where things live:

- :mod:`exprgan_tf.config` - typed configuration and presets;
- :mod:`exprgan_tf.preprocessing` - unsharp mask and [-1, 1] rescaling as TF ops;
- :mod:`exprgan_tf.layers` - ``DilatedConv2D``, ``ConcatLabel``;
- :mod:`exprgan_tf.controller` - the expression code (training sampler, intensity map);
- :mod:`exprgan_tf.models` - encoder, decoder, D_z, D_img + Q builders;
- :mod:`exprgan_tf.losses` - every loss as a pure function;
- :mod:`exprgan_tf.identity` - identity networks for L_id (VGG-Face, dlib ResNet);
- :mod:`exprgan_tf.data` - the built-in face set and dataset readers;
- :mod:`exprgan_tf.training` - the three training stages and their one input path;
- :mod:`exprgan_tf.editor` - ``ExpressionEditor`` (``model.predict``);
  :mod:`exprgan_tf.editor_io` - ``load_editor``, ``save_compact``, ``find_checkpoint``;
- :mod:`exprgan_tf.serving` - SavedModel export and photo editing;
- :mod:`exprgan_tf.cli` - the command-line tools (``exprgan-train``, ...).

``import exprgan_tf`` imports TensorFlow and Keras and registers every serialisable
class of the package, so ``keras.saving.load_model("editor.keras", safe_mode=True)``
works after it alone. On x86, when TensorFlow is not imported yet and
``TF_ENABLE_ONEDNN_OPTS`` is unset, it first sets ``TF_ENABLE_ONEDNN_OPTS=1`` (oneDNN
kernels; :mod:`exprgan_tf.cpu`); ``TF_ENABLE_ONEDNN_OPTS=0`` keeps them off.

Example:
    >>> import exprgan_tf
    >>> editor = exprgan_tf.load_editor()          # the shipped pretrained model  # doctest: +SKIP
    >>> editor.image_size                                                          # doctest: +SKIP
    64
"""

# Before anything imports TensorFlow: oneDNN on by default on x86 (exprgan_tf.cpu);
# TF_ENABLE_ONEDNN_OPTS=0 in the environment keeps it off.
from exprgan_tf import cpu as _cpu

_cpu.onednn_set_by_package = _cpu.default_onednn()

from exprgan_tf.config import EXPRESSIONS, PRESETS, ExprGANConfig, get_preset  # noqa: E402

# The modules below define every registered Keras class (exprgan_tf.layers,
# exprgan_tf.controller, exprgan_tf.identity.layers, exprgan_tf.editor). Keras looks
# classes up in its registry when it loads a file, so they are imported here, not lazily.
from exprgan_tf import controller, identity, layers  # noqa: F401,E402  (registration)
from exprgan_tf.editor import ExpressionEditor  # noqa: E402
from exprgan_tf.editor_io import (find_checkpoint, load_editor, pretrained_path,  # noqa: E402
                                  save_compact)

__version__ = "0.1.0"

__all__ = ["EXPRESSIONS", "PRESETS", "ExprGANConfig", "ExpressionEditor", "find_checkpoint",
           "get_preset", "load_editor", "pretrained_path", "save_compact", "__version__"]
