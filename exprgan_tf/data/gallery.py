"""Sample grids of the built-in face set (the pictures in ``docs/``).

Example:
    >>> from exprgan_tf.data.faces import FaceSet
    >>> from exprgan_tf.data.gallery import expression_grid
    >>> expression_grid(FaceSet(seed=0), subjects=[0, 1], size=32).shape
    (64, 224, 3)
"""

from __future__ import annotations

import numpy as np

from exprgan_tf.data.faces import LIGHTINGS, FaceSet


def _tile(images: np.ndarray, rows: int, cols: int, gap: int = 0) -> np.ndarray:
    n, h, w, c = images.shape
    out = np.full((rows * h + (rows - 1) * gap, cols * w + (cols - 1) * gap, c), 255,
                  np.uint8)
    for i in range(n):
        r, k = divmod(i, cols)
        out[r * (h + gap):r * (h + gap) + h, k * (w + gap):k * (w + gap) + w] = images[i]
    return out


def expression_grid(faces: FaceSet, subjects, size: int = 96, lighting: str = "strong",
                    jitter_seed=None, gap: int = 0) -> np.ndarray:
    """Rows = subjects; columns = neutral, then the six expressions at the peak."""
    subjects = list(subjects)
    subj = [s for s in subjects for _ in range(7)]
    expr = [max(e, 0) for _ in subjects for e in range(-1, 6)]
    inten = [0.0 if e < 0 else 1.0 for _ in subjects for e in range(-1, 6)]
    jit = None if jitter_seed is None else [jitter_seed] * len(subj)
    images = faces.render_batch(subj, expr, inten, lighting, size, jit)
    return _tile(images, len(subjects), 7, gap)


def intensity_grid(faces: FaceSet, subject, steps: int = 6, size: int = 96,
                   lighting: str = "strong", gap: int = 0) -> np.ndarray:
    """Rows = the six expressions; columns = intensity 0 (neutral) to 1 (peak)."""
    t = np.linspace(0.0, 1.0, steps)
    images = faces.render_batch([subject] * 6 * steps, [e for e in range(6) for _ in t],
                                np.tile(t, 6), lighting, size)
    return _tile(images, 6, steps, gap)


def lighting_strip(faces: FaceSet, subject, expression="happiness", size: int = 96,
                   jitter_seeds=(1, 2), gap: int = 0) -> np.ndarray:
    """The true face, then each lighting with pose jitter and noise."""
    images = [faces.true_face(subject, expression, 1.0, size)]
    for light in LIGHTINGS:
        for j in jitter_seeds:
            images.append(faces.render(subject, expression, 1.0, light, size, jitter_seed=j))
    return _tile(np.stack(images), 1, len(images), gap)
