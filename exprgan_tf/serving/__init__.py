"""Serving an :class:`~exprgan_tf.editor.ExpressionEditor`.

- :mod:`exprgan_tf.serving.export` - SavedModel export in TensorFlow Serving's
  ``<dir>/<version>/`` layout, with a uint8-tensor and an encoded-bytes signature.

Editing a face inside a photo of any size (detect, align and crop, edit, blend back)
is client-side work: :mod:`exprgan_tf.photo`.

See ``docs/serving.md``.
"""

from exprgan_tf.serving.export import (BYTES_SIGNATURE, DEFAULT_SIGNATURE,
                                       EditorServingModule, export_saved_model)

__all__ = ["BYTES_SIGNATURE", "DEFAULT_SIGNATURE", "EditorServingModule",
           "export_saved_model"]
