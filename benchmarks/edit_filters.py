#!/usr/bin/env python
"""What can the editor alone do for a trained model? The learning report of a model whose
edits are changed at edit time, with no retraining. Texture filters (recipe log, report
112):

- ``lowpass:SIGMA``: the paste adds ``regions * blur(G - face)`` instead of
  ``regions * (G - face)`` (``blur``: :func:`exprgan_tf.preprocessing.gaussian_blur`);
- ``highpass:SIGMA``: it adds ``regions * (d - blur(d))``, ``d = G - face``: only G's
  slow colour drift is taken out;
- ``mirror``: the edit is the mean of the edit of the face and the mirrored edit of
  the mirrored face.

Intensity by other means than the code (report 115):

- ``fade``: the edit at intensity ``s`` is ``face + s * (edit at 1 - face)``, a
  cross-fade from the input to the full edit;
- ``gain:G``: G is given the code of intensity ``G * s`` (past the training range for
  ``G > 1``; recipe log, report 162). Now an editor setting of its own,
  ``model.intensity_scale`` (``train_learning.py --intensity-scale G``), which this
  variant runs;
- ``curve:P``: G is given the code of intensity ``s ** P`` (report 175);
- ``gate-source:TAU``: the editor's ``model.paste_gate=TAU`` (G's face pasted only
  where the code changes its drawing, :func:`exprgan_tf.editor.change_gate`), the
  change measured from G's drawing at the input's own code as ``delta`` picks it
  (below) instead of the zero code, so an edit to the input's own expression is the
  input (the zero-code gate itself: ``train_learning.py --paste-gate TAU``);
- ``delta``: the edit adds to the input only what G's code changes, ``face + regions *
  (G(z, c) - G(z, c_source))``, with ``c_source`` the input's own code as G sees it:
  of the zero code and the six expressions at intensity 1, the one whose drawing is
  nearest (L1 inside ``regions``) to the pre-processed input. ``delta-sources
  --checkpoint PATH`` prints how often that is the input's own code (no report).

Where G puts the face (this session's sweep: the full edits of held-out faces are
further from the true peak than the neutral face is):

- ``register:R``: before the gated paste, G's drawings at the requested and at the zero
  code are moved, in each quarter of the image (above and below 5/8 of its height, the
  cut of ``model.decoder_hole_blur_above``'s preset value, and left and right of the
  middle), by the whole-pixel shift within ``R`` in x and y that brings the zero-code
  drawing nearest (L1 inside the paste map) to the input: G's resting eyes and mouth are
  registered onto the person's, and its strokes move with them. ``register-shifts
  --checkpoint PATH`` (or ``--run-dir DIR [--edit-regions P]``) prints the shift each
  quarter takes on the neutral faces of the held-out subjects and of eight training
  subjects (no report).

- ``refine:N`` (or ``refine:N@RATE``, default rate :data:`REFINE_RATE`): before the
  edit, ``z`` is refined by ``N`` Adam steps so that G's drawing at the input's own
  code (as ``delta`` picks it) fits the input inside the paste map (:func:`refine_z`);
  then G draws the request from the refined ``z`` and the editor pastes as it does.
  G's features are fitted to the person's before the strokes are drawn on them.

A diagnostic, not a feature: the variant replaces :func:`exprgan_tf.layers.paste` or
``ExpressionEditor.call`` or ``ExpressionCode.call`` in this process only, then runs
``benchmarks/train_learning.py`` with the remaining arguments (``--checkpoint`` or
``--run-dir ... --score-only``, ``--out``). Every variant but ``mirror`` and ``fade``
needs a model that pastes (``model.edit_regions > 0``); ``fade`` pastes when the model
does.

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

    from exprgan_tf import controller, editor, layers
    from exprgan_tf.preprocessing import gaussian_blur

    kind, _, sigma = variant.partition(":")
    if kind == "gain" and sigma:
        scale = _positive(variant, sigma)
        raise SystemExit(f"{variant} is the editor's model.intensity_scale={scale:g}: pass "
                         f"--intensity-scale {scale:g} instead")
    if kind == "curve" and sigma:
        controller.ExpressionCode.call = _curve(controller.ExpressionCode.call,
                                                _positive(variant, sigma))
        return
    if kind == "gate-source" and sigma:
        editor.ExpressionEditor.call = _gate_source(_positive(variant, sigma))
        return
    if kind == "register" and sigma:
        radius = _positive(variant, sigma)
        if radius != int(radius):
            raise SystemExit(f"the number in {variant!r} must be a whole number of pixels. "
                             f"Received: {sigma!r}")
        editor.ExpressionEditor.call = _register(int(radius))
        return
    if kind == "refine" and sigma:
        steps, _, rate = sigma.partition("@")
        steps = _positive(variant, steps)
        if steps != int(steps):
            raise SystemExit(f"the steps in {variant!r} must be a whole number. "
                             f"Received: {sigma!r}")
        editor.ExpressionEditor.call = _refine(int(steps),
                                               _positive(variant, rate or str(REFINE_RATE)))
        return
    if kind in ("fade", "delta") and not sigma:
        editor.ExpressionEditor.call = _fade(editor.ExpressionEditor.call) \
            if kind == "fade" else _delta
        return
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
        raise SystemExit("variant must be lowpass:SIGMA, highpass:SIGMA, mirror, fade, "
                         "delta, gain:G, curve:P, gate-source:TAU, register:R or "
                         f"refine:N[@RATE]. Received: {variant!r}")
    sigma = _positive(variant, sigma)

    def filtered_paste(drawn, face, regions):
        face = ops.cast(face, drawn.dtype)
        change = drawn - face
        blurred = ops.cast(gaussian_blur(change, sigma), drawn.dtype)
        change = blurred if kind == "lowpass" else change - blurred
        return face + ops.cast(regions, drawn.dtype) * change

    layers.paste = filtered_paste


def _positive(variant: str, value: str) -> float:
    """The number after the variant's colon, which must be > 0."""
    try:
        number = float(value)
    except ValueError:
        number = float("nan")
    if not number > 0:
        raise SystemExit(f"the number in {variant!r} must be > 0. Received: {value!r}")
    return number


def intensity_scale_of(variant: str) -> float | None:
    """``G`` of a ``gain:G`` variant (the editor's ``model.intensity_scale``), else
    ``None``."""
    kind, _, value = variant.partition(":")
    return _positive(variant, value) if kind == "gain" and value else None


def _curve(call, power: float):
    """``ExpressionCode.call`` at intensity ``s ** power`` (clipped to [0, 1] first):
    below 1 a weak request is drawn stronger, the full one unchanged."""
    from keras import ops

    def curved(self, inputs):
        labels, intensity = inputs
        intensity = ops.clip(ops.cast(intensity, "float32"), 0.0, 1.0)
        return call(self, [labels, ops.power(intensity, power)])

    return curved


def _fade(call):
    """``ExpressionEditor.call`` with intensity as a cross-fade to the full edit."""
    import tensorflow as tf

    def faded(self, inputs):
        images, expression, intensity = self._split_inputs(inputs)
        images = tf.convert_to_tensor(images)
        s = tf.reshape(tf.cast(intensity, tf.float32), [-1])
        full = call(self, [images, expression, tf.ones_like(s)])
        face = self.face(images) if self.face is not None else self.preprocess(images)
        return face + s[:, None, None, None] * (full - face)

    return faded


def _gate_source(tau: float):
    """``ExpressionEditor.call`` pasting G's face only where its code changes it from
    G's drawing at the input's own code (:func:`_source_pick`)."""
    from exprgan_tf.editor import change_gate

    def gated(self, inputs):
        images, drawn, source = _drawn_and_source(self, inputs, "gate-source")
        return self.paste([drawn, self.face(images), change_gate(drawn, source, tau)])

    return gated


REFINE_RATE = 0.02
"""``refine``'s learning rate when the variant names none."""

REGISTER_CUT = 0.625
"""The row (fraction of the height) between ``register``'s upper and lower quarters."""


def register_picks(rest, face, regions, radius: int):
    """``(quarters, shifts, picks)``: the four quarter masks ``[H, W, 1]``, the candidate
    shifts ``(dy, dx)``, ``|dy|, |dx| <= radius``, and per quarter the index ``[N]`` of the
    shift that minimises the mean ``|rest - face|`` inside ``regions`` in that quarter
    (first of equals in row-major order from ``(-radius, -radius)``; pixels shifted in
    wrap round from the far edge, outside the map)."""
    import tensorflow as tf

    h, w = rest.shape[1], rest.shape[2]
    rows = tf.range(h)[:, None, None] < int(REGISTER_CUT * h)
    cols = tf.range(w)[None, :, None] < w // 2
    quarters = [tf.cast(tf.logical_and(r, c), tf.float32)
                for r in (rows, tf.logical_not(rows)) for c in (cols, tf.logical_not(cols))]
    shifts = [(dy, dx) for dy in range(-radius, radius + 1)
              for dx in range(-radius, radius + 1)]
    error = tf.stack([tf.reduce_mean(tf.abs(tf.roll(rest, s, (1, 2)) - face), -1,
                                     keepdims=True) for s in shifts])       # [S, N, H, W, 1]
    picks = [tf.argmin(tf.reduce_sum(error * (tf.cast(regions, tf.float32) * q), [2, 3, 4]),
                       0) for q in quarters]
    return quarters, shifts, picks


def register_shift(rest, out, face, regions, radius: int):
    """``(rest, out)`` moved, in each quarter of the image, by the shift
    :func:`register_picks` finds for it. ``rest``, ``out``, ``face``: ``[N, H, W, C]``;
    ``regions``: ``[H, W, 1]``."""
    import tensorflow as tf

    quarters, shifts, picks = register_picks(rest, face, regions, radius)
    moved = []
    for image in (rest, out):
        every = tf.stack([tf.roll(image, s, (1, 2)) for s in shifts], 1)   # [N, S, H, W, C]
        moved.append(sum(q * tf.gather(every, pick, batch_dims=1)
                         for q, pick in zip(quarters, picks)))
    return tuple(moved)


def _register(radius: int):
    """``ExpressionEditor.call`` with G's drawings registered onto the input
    (:func:`register_shift`) before the paste (gated when the editor gates)."""
    import tensorflow as tf

    from exprgan_tf.editor import change_gate
    from exprgan_tf.models import decode

    def registered(self, inputs):
        images, expression, intensity, z, sees, out = _decoded_request(self, inputs,
                                                                       "register")
        rest = decode(self.decoder, z, self.code([expression, tf.zeros_like(intensity)]),
                      sees)
        face = self.face(images)
        rest, out = register_shift(rest, out, face, self.paste.regions, radius)
        if not self.paste_gate:
            return self.paste([out, face])
        return self.paste([out, face, change_gate(out, rest, self.paste_gate)])

    return registered


def _encoded_request(self, inputs, variant: str):
    """``(images, expression, intensity, z, sees)``: the editor's inputs as tensors, the
    code ``z`` of the pre-processed faces and the face G takes (``sees``)."""
    import tensorflow as tf

    if self.paste is None:
        raise SystemExit(f"the {variant} variant needs a model that pastes "
                         "(model.edit_regions > 0)")
    images, expression, intensity = self._split_inputs(inputs)
    images = tf.convert_to_tensor(images)
    expression = tf.cast(tf.reshape(expression, [-1]), tf.int32)
    intensity = tf.reshape(tf.cast(intensity, tf.float32), [-1])
    x = self.preprocess(images)
    sees = x if self.base is None else self.base(images)
    return images, expression, intensity, self.encoder(x), sees


def _decoded_request(self, inputs, variant: str):
    """:func:`_encoded_request` and G's drawing at the requested code, for the variants
    that decode more than once."""
    from exprgan_tf.models import decode

    images, expression, intensity, z, sees = _encoded_request(self, inputs, variant)
    drawn = decode(self.decoder, z, self.code([expression, intensity]), sees)
    return images, expression, intensity, z, sees, drawn


def _drawn_and_source(self, inputs, variant: str):
    """``(images, drawn, source)``: G's drawing at the requested code and at the input's
    own code as :func:`_source_pick` finds it, for the variants built on both."""
    import tensorflow as tf

    images, _, _, z, sees, drawn = _decoded_request(self, inputs, variant)
    every, pick = _source_pick(self, sees, z)
    return images, drawn, tf.gather(tf.transpose(every, [1, 0, 2, 3, 4]), pick, batch_dims=1)


def _source_pick(self, x, z):
    """G's drawings of ``z`` under the zero code and each class at intensity 1 (``[k, n,
    S, S, C]``), and for each face the index of the one nearest ``x`` inside the paste
    map (0 = the zero code, ``1 + class`` otherwise). ``x``: the face G takes (the
    pre-processed input, or the editor's ``base`` form of it when it has one)."""
    import tensorflow as tf

    from exprgan_tf.models import decode

    n, k = tf.shape(x)[0], self.num_classes + 1
    # Candidates, k blocks of n: the zero code, then each class at intensity 1.
    labels = tf.repeat(tf.range(k, dtype=tf.int32) - 1, n)
    codes = self.code([tf.maximum(labels, 0), tf.cast(labels >= 0, tf.float32)])
    drawn = decode(self.decoder, tf.tile(z, [k, 1]), codes, tf.tile(x, [k, 1, 1, 1]))
    drawn = tf.reshape(drawn, tf.concat([[k, n], tf.shape(x)[1:]], 0))
    regions = tf.cast(self.paste.regions, drawn.dtype)
    error = tf.reduce_sum(tf.abs(drawn - x[None]) * regions, [2, 3, 4])      # [k, n]
    return drawn, tf.argmin(error, 0)


def _delta(self, inputs):
    """``ExpressionEditor.call`` that adds G's change from the input's own code."""
    import tensorflow as tf

    images, target, source = _drawn_and_source(self, inputs, "delta")
    return self.face(images) + tf.cast(self.paste.regions, target.dtype) * (target - source)


def refine_z(self, z, sees, face, codes, steps: int, rate: float):
    """``z`` after ``steps`` Adam steps (learning rate ``rate``, clipped to E's range
    [-1, 1] after each) on the mean ``|G(z, codes) - face|`` inside the paste map: G's
    drawing of the face at its own code fitted to the face. Adam by hand, as the
    variant runs inside the editor's traced call, where an optimizer's variables
    cannot be made; each face's steps depend on its own loss only."""
    import tensorflow as tf

    from exprgan_tf.models import decode

    regions = tf.cast(self.paste.regions, tf.float32)
    face = tf.cast(face, tf.float32)
    m = tf.zeros_like(z)
    v = tf.zeros_like(z)
    for t in range(1, steps + 1):
        with tf.GradientTape() as tape:
            tape.watch(z)
            drawn = tf.cast(decode(self.decoder, z, codes, sees), tf.float32)
            loss = tf.reduce_sum(tf.reduce_mean(tf.abs(drawn - face) * regions, [1, 2, 3]))
        g = tape.gradient(loss, z)
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        step = (m / (1 - 0.9 ** t)) / (tf.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
        z = tf.clip_by_value(z - rate * step, -1.0, 1.0)
    return z


def _refine(steps: int, rate: float):
    """``ExpressionEditor.call`` with ``z`` refined (:func:`refine_z`) against G's drawing
    at the input's own code as :func:`_source_pick` finds it, then the editor's paste
    (gated when the editor gates)."""
    import tensorflow as tf

    from exprgan_tf.editor import change_gate
    from exprgan_tf.models import decode

    def refined(self, inputs):
        images, expression, intensity, z, sees = _encoded_request(self, inputs, "refine")
        labels = tf.cast(_source_pick(self, sees, z)[1], tf.int32) - 1
        own = self.code([tf.maximum(labels, 0), tf.cast(labels >= 0, tf.float32)])
        face = self.face(images)
        z = refine_z(self, z, sees, face, own, steps, rate)
        out = decode(self.decoder, z, self.code([expression, intensity]), sees)
        if not self.paste_gate:
            return self.paste([out, face])
        rest = decode(self.decoder, z, self.code([expression, tf.zeros_like(intensity)]),
                      sees)
        return self.paste([out, face, change_gate(out, rest, self.paste_gate)])

    return refined


def delta_sources(checkpoint: str) -> None:
    """Print how often ``delta``'s source code is the input's own: on the 144 held-out
    faces (their expression at intensity 1) and on the intensity test's neutral faces
    (the zero code)."""
    import numpy as np

    from exprgan_tf.editor_io import load_editor
    from exprgan_tf.evaluation.learning import heldout_set

    ed = load_editor(checkpoint)
    if ed.paste is None:
        raise SystemExit("delta-sources needs a model that pastes (model.edit_regions > 0)")
    held = heldout_set(ed.image_size)
    for name, images, own in (("held-out faces", held["x"], np.asarray(held["y"]) + 1),
                              ("neutral faces", held["intensity"]["neutral"], 0)):
        x = ed.preprocess(images)
        pick = _source_pick(ed, x, ed.encoder(x))[1].numpy()
        counts = np.bincount(pick, minlength=ed.num_classes + 1)
        print(f"{name} ({len(pick)}): own code picked {np.mean(pick == own):.1%}, "
              f"the zero code {np.mean(pick == 0):.1%}; picks per code (zero, "
              f"classes 0-{ed.num_classes - 1}): {counts.tolist()}")


def register_shifts(editor, radius: int = 1) -> dict:
    """The shift :func:`register_picks` finds in each quarter for the neutral face of
    each held-out subject and of the training probe (P001-P008): ``{"held-out":
    [[(dy, dx) per quarter] per subject], "training": ...}``."""
    import numpy as np

    from exprgan_tf.evaluation.learning import TRAINING_PROBE, heldout_set
    from exprgan_tf.models import decode

    out = {}
    for name, subjects in (("held-out", None), ("training", TRAINING_PROBE)):
        images = heldout_set(editor.image_size, subjects=subjects)["intensity"]["neutral"]
        n = len(images)
        x = editor.preprocess(images)
        sees = x if editor.base is None else editor.base(images)
        rest = decode(editor.decoder, editor.encoder(x),
                      editor.code([np.zeros(n, np.int32), np.zeros(n, np.float32)]), sees)
        _, shifts, picks = register_picks(rest, editor.face(images), editor.paste.regions,
                                          radius)
        out[name] = [[shifts[int(pick[i])] for pick in picks] for i in range(n)]
    return out


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0].startswith("-"):
        raise SystemExit(__doc__)
    if argv[0] == "register-shifts":
        import argparse

        from exprgan_tf.cli import add_edit_time_arguments
        from intensity_sweep import load

        p = argparse.ArgumentParser(prog="edit_filters.py register-shifts")
        src = p.add_mutually_exclusive_group(required=True)
        src.add_argument("--checkpoint")
        src.add_argument("--run-dir")
        add_edit_time_arguments(p, "edit")
        args = p.parse_args(argv[1:])
        args.trained_weights = False
        ed = load(args)
        if ed.paste is None:
            raise SystemExit("register-shifts needs a model that pastes "
                             "(model.edit_regions > 0)")
        for name, shifts in register_shifts(ed).items():
            moved = sum(any(q != (0, 0) for q in s) for s in shifts)
            print(f"{name}: {moved} of {len(shifts)} faces moved; (dy, dx) per quarter "
                  f"(top left, top right, bottom left, bottom right): {shifts}")
        return None
    if argv[0] == "delta-sources":
        if len(argv) != 3 or argv[1] != "--checkpoint":
            raise SystemExit("usage: edit_filters.py delta-sources --checkpoint PATH")
        return delta_sources(argv[2])
    scale = intensity_scale_of(argv[0])
    rest = argv[1:]
    if scale is not None:
        if "--intensity-scale" in rest:
            raise SystemExit("gain:G is --intensity-scale G; give one of them")
        rest += ["--intensity-scale", f"{scale:g}"]
    else:
        use_variant(argv[0])
    import train_learning

    train_learning.main(rest, command=("edit_filters.py", argv))


if __name__ == "__main__":
    main()
