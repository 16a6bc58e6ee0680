#!/usr/bin/env python
"""Can G's texture be filtered out of the edits at edit time? The learning report of a
model whose edits are changed in one of three ways, with no retraining (recipe log,
report 112):

- ``lowpass:SIGMA``: the paste adds ``regions * blur(G - face)`` instead of
  ``regions * (G - face)`` (``blur``: :func:`exprgan_tf.preprocessing.gaussian_blur`);
- ``highpass:SIGMA``: it adds ``regions * (d - blur(d))``, ``d = G - face``: only G's
  slow colour drift is taken out;
- ``mirror``: the edit is the mean of the edit of the face and the mirrored edit of
  the mirrored face.

A diagnostic, not a feature: the variant replaces :func:`exprgan_tf.layers.paste` or
``ExpressionEditor.call`` in this process only, then runs
``benchmarks/train_learning.py`` with the remaining arguments (``--checkpoint`` or
``--run-dir ... --score-only``, ``--out``). The lowpass and highpass variants need a
model that pastes (``model.edit_regions > 0``).

Example:
    python benchmarks/edit_filters.py mirror \\
        --checkpoint checkpoints/pretrained-proposed-small.npz --out /tmp/mirror
"""

from __future__ import annotations

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)                  # train_learning
sys.path.insert(0, os.path.join(HERE, os.pardir))


def use_variant(variant: str) -> None:
    """Replace the package function ``variant`` changes (see module doc)."""
    import tensorflow as tf
    from keras import ops

    from exprgan_tf import editor, layers
    from exprgan_tf.preprocessing import gaussian_blur

    kind, _, sigma = variant.partition(":")
    if kind == "mirror" and not sigma:
        call = editor.ExpressionEditor.call

        def mirrored(self, inputs):
            images, expression, intensity = self._split_inputs(inputs)
            edit = call(self, [images, expression, intensity])
            back = call(self, [tf.reverse(images, [2]), expression, intensity])
            return 0.5 * (edit + tf.reverse(back, [2]))

        editor.ExpressionEditor.call = mirrored
        return
    if kind not in ("lowpass", "highpass") or not sigma:
        raise SystemExit(f"variant must be lowpass:SIGMA, highpass:SIGMA or mirror. "
                         f"Received: {variant!r}")
    sigma = float(sigma)

    def filtered_paste(drawn, face, regions):
        face = ops.cast(face, drawn.dtype)
        change = drawn - face
        blurred = ops.cast(gaussian_blur(change, sigma), drawn.dtype)
        change = blurred if kind == "lowpass" else change - blurred
        return face + ops.cast(regions, drawn.dtype) * change

    layers.paste = filtered_paste


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0].startswith("-"):
        raise SystemExit(__doc__)
    use_variant(argv[0])
    import train_learning

    train_learning.main(argv[1:])


if __name__ == "__main__":
    main()
