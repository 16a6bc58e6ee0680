"""The built-in face set: a deterministic procedural renderer of frontal faces.

No facial-expression dataset can be downloaded where this project is developed, so the
package ships its own. :class:`FaceSet` draws frontal faces of many subjects (face shape,
skin tone, hair style and colour, eye/brow/nose/mouth geometry, glasses), each in the
six expression classes at a continuous intensity in [0, 1] (0 = the subject's neutral
face), under Oulu-CASIA-like lighting (``"strong"``, ``"weak"``, ``"dark"``), optionally
with small pose jitter and sensor noise.

Expressions are driven by facial action units (FACS); each class is a prototype mix of
AUs (:data:`EXPRESSION_AUS`) scaled by the intensity, so faces blend continuously from
neutral to the peak. Every shape is an implicit function evaluated on the pixel grid with
analytic anti-aliasing (coverage from the signed distance over its pixel gradient), and
the skin is shaded from a height field (head ellipsoid + nose, brow ridge, cheeks, lips),
so the result reads as a lit face rather than a cartoon. Rendering is vectorised over a
batch: :meth:`FaceSet.render_batch` draws 1296 faces at 64x64 in a few seconds on a CPU.

Because the generator knows every subject's face in every expression at every intensity,
:meth:`FaceSet.true_face` gives the clean ground truth an edited face can be scored
against, which no real dataset can provide.

Example:
    >>> from exprgan_tf.data.faces import FaceSet
    >>> faces = FaceSet(seed=0)
    >>> img = faces.render(3, "happiness", 0.8, lighting="strong", size=64)
    >>> img.shape, img.dtype
    ((64, 64, 3), dtype('uint8'))
    >>> bool((faces.render(3, 3, 0.8, lighting="strong", size=64) == img).all())
    True
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import os
from dataclasses import dataclass

import numpy as np

from exprgan_tf.config import EXPRESSIONS, expression_index

LIGHTINGS = ("strong", "weak", "dark")
"""Oulu-CASIA's three illumination conditions (normal, computer-screen only, near dark)."""

ACTION_UNITS = ("AU1", "AU2", "AU4", "AU5", "AU6", "AU7", "AU9", "AU10", "AU12", "AU15",
                "AU17", "AU20", "AU24", "AU25", "AU26", "AU43")
"""Facial action units the renderer animates (FACS numbering).

AU1 inner brow raiser, AU2 outer brow raiser, AU4 brow lowerer, AU5 upper lid raiser,
AU6 cheek raiser, AU7 lid tightener, AU9 nose wrinkler, AU10 upper lip raiser,
AU12 lip corner puller, AU15 lip corner depressor, AU17 chin raiser, AU20 lip stretcher,
AU24 lip presser, AU25 lips part (teeth visible), AU26 jaw drop, AU43 eyes droop.
"""

EXPRESSION_AUS = {
    "anger": {"AU4": 1.0, "AU5": 0.35, "AU7": 0.8, "AU9": 0.15, "AU17": 0.5, "AU24": 1.0},
    "disgust": {"AU4": 0.45, "AU6": 0.35, "AU9": 1.0, "AU10": 1.0, "AU15": 0.55,
                "AU17": 0.45, "AU25": 0.5},
    "fear": {"AU1": 1.0, "AU2": 0.55, "AU4": 0.6, "AU5": 1.0, "AU7": 0.15, "AU20": 1.0,
             "AU25": 0.7, "AU26": 0.3},
    "happiness": {"AU6": 0.9, "AU12": 1.0, "AU25": 0.75, "AU26": 0.12},
    "sadness": {"AU1": 1.0, "AU4": 0.55, "AU15": 1.0, "AU17": 0.55, "AU43": 0.45},
    "surprise": {"AU1": 1.0, "AU2": 1.0, "AU5": 1.0, "AU25": 0.6, "AU26": 1.0},
}
"""Peak action-unit intensities of each expression (EMFACS-style prototypes)."""

_LIGHT = {
    # gain, ambient, diffuse, light direction (x right, y down, z towards camera),
    # colour cast, noise sigma (0-255 levels), specular strength, background gain
    "strong": dict(gain=1.0, ambient=0.42, diffuse=0.68, direction=(-0.35, -0.45, 0.82),
                   cast=(1.0, 1.0, 1.0), noise=2.0, specular=0.10),
    "weak": dict(gain=0.68, ambient=0.5, diffuse=0.55, direction=(0.05, 0.2, 1.0),
                 cast=(0.9, 0.97, 1.12), noise=4.0, specular=0.04),
    "dark": dict(gain=0.45, ambient=0.4, diffuse=0.7, direction=(0.3, -0.25, 0.9),
                 cast=(1.06, 0.98, 0.88), noise=4.0, specular=0.02),
}

_SKIN_TONES = np.array([
    (0.98, 0.84, 0.74), (0.95, 0.78, 0.66), (0.90, 0.72, 0.58), (0.86, 0.66, 0.50),
    (0.78, 0.58, 0.44), (0.68, 0.48, 0.34), (0.56, 0.38, 0.26), (0.44, 0.29, 0.20),
    (0.93, 0.76, 0.62), (0.82, 0.62, 0.46),
])
_HAIR_COLOURS = np.array([
    (0.08, 0.06, 0.05), (0.16, 0.11, 0.08), (0.30, 0.20, 0.12), (0.45, 0.31, 0.18),
    (0.72, 0.56, 0.32), (0.52, 0.24, 0.12), (0.60, 0.58, 0.56), (0.22, 0.16, 0.12),
])
_IRIS_COLOURS = np.array([
    (0.30, 0.18, 0.10), (0.20, 0.12, 0.07), (0.30, 0.45, 0.62), (0.35, 0.48, 0.32),
    (0.45, 0.34, 0.18), (0.42, 0.50, 0.58),
])
_CLOTHES = np.array([
    (0.15, 0.20, 0.35), (0.55, 0.12, 0.12), (0.20, 0.35, 0.25), (0.25, 0.25, 0.27),
    (0.80, 0.78, 0.72), (0.45, 0.38, 0.55), (0.10, 0.10, 0.12), (0.60, 0.50, 0.30),
])
_BACKGROUNDS = np.array([
    (0.55, 0.57, 0.60), (0.62, 0.60, 0.56), (0.48, 0.52, 0.55), (0.66, 0.66, 0.66),
    (0.52, 0.50, 0.50),
])


@dataclass(frozen=True)
class Identity:
    """The geometry and colours of one subject (all lengths in face-box units).

    The image spans [-1, 1] in both axes, x to the right and y down. Every field is a
    float (categorical choices are stored as colours or 0/1 weights) so that a batch
    of identities vectorises.
    """

    face_w: float
    face_top: float
    face_bot: float
    face_cy: float
    jaw_n: float
    skin: tuple
    hair: tuple
    hair_on: float
    hair_vol: float
    hair_len: float
    hairline: float
    hair_sweep: float
    hair_curl: float
    hair_side: float
    eye_dx: float
    eye_y: float
    eye_w: float
    eye_h: float
    eye_tilt: float
    iris: tuple
    brow_gap: float
    brow_len: float
    brow_up: float
    brow_thick: float
    brow_arch: float
    brow_dark: float
    nose_tip: float
    nose_w: float
    nose_ridge: float
    mouth_y: float
    mouth_w: float
    lip_u: float
    lip_l: float
    lip_red: float
    mouth_rest: float
    ear_size: float
    glasses: float
    glasses_round: float
    glasses_colour: tuple
    stubble: float
    clothes: tuple
    background: tuple

    @classmethod
    def sample(cls, rng: np.random.Generator) -> "Identity":
        """Draw a random identity from ``rng`` (a ``numpy.random.Generator``)."""
        u = rng.uniform
        skin = _SKIN_TONES[rng.integers(len(_SKIN_TONES))] * u(0.96, 1.04, 3)
        hair = _HAIR_COLOURS[rng.integers(len(_HAIR_COLOURS))] * u(0.9, 1.1)
        long_hair = rng.random() < 0.4
        return cls(
            face_w=u(0.44, 0.54), face_top=u(0.64, 0.74), face_bot=u(0.64, 0.76),
            face_cy=u(0.0, 0.06), jaw_n=u(1.9, 2.8),
            skin=tuple(np.clip(skin, 0, 1)), hair=tuple(np.clip(hair, 0, 1)),
            hair_on=float(rng.random() > 0.05), hair_vol=u(1.03, 1.16),
            hair_len=u(0.35, 1.1) if long_hair else u(-0.25, 0.05),
            hairline=u(-0.62, -0.36), hair_sweep=u(-0.25, 0.25),
            hair_curl=u(0.0, 1.0) if rng.random() < 0.3 else 0.0,
            hair_side=float(long_hair),
            eye_dx=u(0.19, 0.24), eye_y=u(-0.08, 0.0), eye_w=u(0.085, 0.11),
            eye_h=u(0.034, 0.048), eye_tilt=u(-0.12, 0.18),
            iris=tuple(_IRIS_COLOURS[rng.integers(len(_IRIS_COLOURS))]),
            brow_gap=u(0.06, 0.10), brow_len=u(0.16, 0.21), brow_up=u(0.11, 0.15),
            brow_thick=u(0.022, 0.042), brow_arch=u(0.0, 0.035), brow_dark=u(0.5, 0.9),
            nose_tip=u(0.17, 0.25), nose_w=u(0.065, 0.095), nose_ridge=u(0.6, 1.2),
            mouth_y=u(0.41, 0.49), mouth_w=u(0.13, 0.18), lip_u=u(0.016, 0.03),
            lip_l=u(0.024, 0.042), lip_red=u(0.2, 0.6), mouth_rest=u(-0.008, 0.008),
            ear_size=u(0.9, 1.15),
            glasses=float(rng.random() < 0.25), glasses_round=u(0.02, 0.07),
            glasses_colour=tuple(rng.choice([(0.08, 0.08, 0.09), (0.35, 0.22, 0.12),
                                             (0.55, 0.55, 0.58)])),
            stubble=u(0.0, 0.35) if rng.random() < 0.2 else 0.0,
            clothes=tuple(_CLOTHES[rng.integers(len(_CLOTHES))]),
            background=tuple(_BACKGROUNDS[rng.integers(len(_BACKGROUNDS))] * u(0.95, 1.05)),
        )


def action_units(expression, intensity: float) -> dict:
    """AU intensities of ``expression`` at ``intensity`` (0 = neutral, 1 = peak).

    Returns:
        A dict with every name of :data:`ACTION_UNITS`, values in [0, 1].
    """
    name = EXPRESSIONS[expression_index(expression)]
    t = _check_intensity(intensity)
    aus = dict.fromkeys(ACTION_UNITS, 0.0)
    for au, peak in EXPRESSION_AUS[name].items():
        aus[au] = peak * t
    return aus


def _check_intensity(intensity) -> float:
    t = float(intensity)
    if not 0.0 <= t <= 1.0:
        raise ValueError(f"intensity must be in [0, 1]. Received: intensity={intensity!r}")
    return t


def _check_lighting(lighting) -> int:
    if lighting not in LIGHTINGS:
        raise ValueError(f"lighting must be one of {list(LIGHTINGS)}. "
                         f"Received: lighting={lighting!r}")
    return LIGHTINGS.index(lighting)


def _check_size(size) -> int:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 8:
        raise ValueError(f"size must be an integer >= 8. Received: size={size!r}")
    return int(size)


# --- drawing primitives (arrays [B, H, W]; parameters [B, 1, 1]) ------------------------

def _coverage(field):
    """Anti-aliased coverage of the region ``field < 0``.

    The implicit field is divided by its gradient magnitude per pixel, which turns it
    into an approximate signed distance in pixels; a linear ramp one pixel wide then
    gives the fraction of each pixel inside the shape.
    """
    gy, gx = np.gradient(field, axis=(1, 2))
    grad = np.sqrt(gx * gx + gy * gy) + 1e-6
    return np.clip(0.5 - field / grad, 0.0, 1.0)


def _ellipse(x, y, cx, cy, rx, ry):
    return np.sqrt(((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2) - 1.0


def _smoothstep(e0, e1, v):
    width = e1 - e0
    t = np.clip((v - e0) / np.where(np.abs(width) < 1e-6, 1e-6, width), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _rounded_box(x, y, cx, cy, hx, hy, r):
    qx = np.abs(x - cx) - hx + r
    qy = np.abs(y - cy) - hy + r
    outside = np.sqrt(np.maximum(qx, 0) ** 2 + np.maximum(qy, 0) ** 2)
    return outside + np.minimum(np.maximum(qx, qy), 0) - r


class _Canvas:
    """Three composites layered with the same alphas: albedo, shading and gloss.

    Every layer may be drawn on a band of rows only (``rows``); ``over`` further crops to
    the bounding box of the layer's non-zero alpha, so small features cost little.
    """

    def __init__(self, background, shape):
        self.albedo = np.broadcast_to(background, shape + (3,)).astype(np.float32).copy()
        self.shade = np.ones(shape, np.float32)
        self.gloss = np.zeros(shape, np.float32)

    def over(self, alpha, colour, shade, gloss=0.0, rows=slice(None)):
        mask = alpha > 0
        r = np.flatnonzero(mask.any(axis=(0, 2)))
        if r.size == 0:
            return
        c = np.flatnonzero(mask.any(axis=(0, 1)))
        r0, r1, c0, c1 = r[0], r[-1] + 1, c[0], c[-1] + 1

        def crop(v):
            v = np.asarray(v, np.float32)
            if v.ndim >= 3:
                v = v[:, r0:r1] if v.shape[1] > 1 else v
                v = v[:, :, c0:c1] if v.shape[2] > 1 else v
            return v

        start = rows.start or 0
        win = (slice(None), slice(start + r0, start + r1), slice(c0, c1))
        a = alpha[:, r0:r1, c0:c1].astype(np.float32)
        alb = self.albedo[win]
        alb += (crop(colour) - alb) * a[..., None]
        sh = self.shade[win]
        sh += (crop(shade) - sh) * a
        gl = self.gloss[win]
        gl += (crop(gloss) - gl) * a

    def darken(self, amount, rows=slice(None)):
        self.shade[:, rows] *= 1.0 - amount


def _col(params, name):
    """A colour parameter as [B, 1, 1, 3]."""
    return params[name][:, None, None, :]


class FaceSet:
    """A deterministic set of procedural subjects.

    Subject ``i`` is drawn from ``numpy.random.default_rng([seed, i])``, so it does not
    depend on ``num_subjects`` and the same arguments always give byte-identical pixels.

    Args:
        seed: seed of the whole set (identities, jitter and noise).
        num_subjects: number of subjects (any positive number; hundreds are fine).

    Example:
        >>> faces = FaceSet(seed=0, num_subjects=8)
        >>> faces.subject_id(0)
        'P001'
        >>> faces.render_batch([0, 1], [2, 5], [1.0, 0.5], size=32).shape
        (2, 32, 32, 3)
    """

    def __init__(self, seed: int = 0, num_subjects: int = 80):
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be an integer >= 0. Received: seed={seed!r}")
        if (isinstance(num_subjects, bool) or not isinstance(num_subjects, (int, np.integer))
                or num_subjects < 1):
            raise ValueError("num_subjects must be a positive integer. "
                             f"Received: num_subjects={num_subjects!r}")
        self.seed = int(seed)
        self.num_subjects = int(num_subjects)

    def __repr__(self):
        return f"FaceSet(seed={self.seed}, num_subjects={self.num_subjects})"

    # --- identities ------------------------------------------------------------------
    def subject_index(self, subject) -> int:
        """Index of ``subject`` (an index 0..num_subjects-1 or an id like ``"P001"``)."""
        if isinstance(subject, str) and subject[:1] in ("P", "p") and subject[1:].isdigit():
            index = int(subject[1:]) - 1
        elif isinstance(subject, (int, np.integer)) and not isinstance(subject, bool):
            index = int(subject)
        else:
            index = -1
        if not 0 <= index < self.num_subjects:
            raise ValueError(f"subject must be an index 0-{self.num_subjects - 1} or an id "
                             f"P001-{self.subject_id(self.num_subjects - 1)}. "
                             f"Received: subject={subject!r}")
        return index

    @staticmethod
    def subject_id(index: int) -> str:
        """Oulu-style id of subject ``index``: 0 -> ``"P001"``."""
        return f"P{int(index) + 1:03d}"

    def identity(self, subject) -> Identity:
        """The :class:`Identity` of ``subject``."""
        return _identity(self.seed, self.subject_index(subject))

    # --- rendering -------------------------------------------------------------------
    def render(self, subject, expression, intensity: float, lighting: str = "weak",
               size: int = 128, jitter_seed=None) -> np.ndarray:
        """Render one face.

        Args:
            subject: subject index (0-based) or id (``"P001"``).
            expression: class index 0-5 or name (see ``config.EXPRESSIONS``).
            intensity: expression intensity in [0, 1]; 0 is the subject's neutral face.
            lighting: ``"strong"``, ``"weak"`` or ``"dark"`` (Oulu-CASIA conditions).
            size: output height and width in pixels.
            jitter_seed: ``None`` renders the clean, centred face; an integer adds a small
                random pose (roll, shift, scale), light direction change and sensor noise
                drawn from ``(seed, subject, expression, intensity, lighting, jitter_seed)``.

        Returns:
            uint8 array [size, size, 3].
        """
        return self.render_batch([subject], [expression], [intensity], [lighting], size,
                                 None if jitter_seed is None else [jitter_seed])[0]

    def true_face(self, subject, expression, intensity: float, size: int = 128,
                  lighting: str = "strong") -> np.ndarray:
        """The clean ground truth: no pose jitter, no noise, fixed lighting.

        Evaluation compares an edited face with this target.

        Args:
            subject: subject index or id.
            expression: class index or name.
            intensity: expression intensity in [0, 1].
            size: output height and width.
            lighting: the (fixed) lighting of the target, ``"strong"`` by default.

        Returns:
            uint8 array [size, size, 3].
        """
        return self.render(subject, expression, intensity, lighting, size, jitter_seed=None)

    def true_faces(self, subjects, expressions, intensities, size: int = 128,
                   lighting: str = "strong") -> np.ndarray:
        """Batched :meth:`true_face`: uint8 [N, size, size, 3] (identical pixels)."""
        return self.render_batch(subjects, expressions, intensities, lighting, size, None)

    def sequence(self, subject, expression, num_frames: int = 10, lighting: str = "weak",
                 size: int = 128, jitter_seed=None) -> np.ndarray:
        """An Oulu-like sequence from neutral (frame 0) to the peak (last frame).

        Returns:
            uint8 array [num_frames, size, size, 3].
        """
        if isinstance(num_frames, bool) or not isinstance(num_frames, int) or num_frames < 2:
            raise ValueError(f"num_frames must be an integer >= 2. "
                             f"Received: num_frames={num_frames!r}")
        t = np.linspace(0.0, 1.0, num_frames)
        jit = None if jitter_seed is None else [jitter_seed] * num_frames
        return self.render_batch([subject] * num_frames, [expression] * num_frames, t,
                                 [lighting] * num_frames, size, jit)

    def render_batch(self, subjects, expressions, intensities, lightings="weak",
                     size: int = 128, jitter_seeds=None, chunk: int = 32,
                     workers=None, poses_of=None) -> np.ndarray:
        """Render many faces at once (vectorised; much faster than a loop of :meth:`render`).

        Args:
            subjects: sequence of subject indices or ids.
            expressions: sequence of class indices or names, same length.
            intensities: sequence of intensities in [0, 1], same length.
            lightings: one lighting name for all, or a sequence of names.
            size: output height and width.
            jitter_seeds: ``None`` (clean renders) or a sequence of integers (or ``None``
                entries) as in :meth:`render`.
            chunk: faces rendered per vectorised call (bounds memory).
            workers: threads rendering chunks in parallel (numpy releases the GIL);
                ``None`` = up to 4, one per CPU core. The pixels do not depend on it.
            poses_of: ``None``, or a sequence of ``(expression, intensity)`` pairs (or
                ``None`` entries), one per face: a jittered face then takes the pose,
                light, gain and gaze of the frame ``(subject, expression, intensity,
                lighting, jitter_seed)`` - the same capture in another expression -
                and no sensor noise. Needs the face's jitter seed.

        Returns:
            uint8 array [N, size, size, 3]. A face is identical whichever batch or chunk it
            is rendered in.
        """
        size = _check_size(size)
        subjects = [self.subject_index(s) for s in subjects]
        n = len(subjects)
        expressions = [expression_index(e) for e in expressions]
        intensities = [_check_intensity(float(t)) for t in np.asarray(intensities, float).ravel()]
        if isinstance(lightings, str):
            lightings = [lightings] * n
        lightings = [_check_lighting(l) for l in lightings]
        if jitter_seeds is None:
            jitter_seeds = [None] * n
        jitter_seeds = list(jitter_seeds)
        lengths = {len(expressions), len(intensities), len(lightings), len(jitter_seeds)}
        if lengths != {n}:
            raise ValueError("subjects, expressions, intensities, lightings and "
                             "jitter_seeds must have the same length. Received lengths: "
                             f"{n}, {len(expressions)}, {len(intensities)}, "
                             f"{len(lightings)}, {len(jitter_seeds)}")
        poses_of = [None] * n if poses_of is None else list(poses_of)
        if len(poses_of) != n:
            raise ValueError(f"poses_of must have one entry per face ({n}). Received: "
                             f"{len(poses_of)} entries")
        for j, pose in zip(jitter_seeds, poses_of):
            if pose is not None and j is None:
                raise ValueError("poses_of gives the pose of a jittered frame, so its face "
                                 "needs a jitter seed. Received: jitter_seed=None with "
                                 f"poses_of entry {pose!r}")
        poses_of = [None if p is None else (expression_index(p[0]), _check_intensity(p[1]))
                    for p in poses_of]
        out = np.empty((n, size, size, 3), np.uint8)
        chunk = max(1, int(chunk))

        def work(start):
            sl = slice(start, start + chunk)
            out[sl] = self._render(subjects[sl], expressions[sl], intensities[sl],
                                   lightings[sl], size, jitter_seeds[sl], poses_of[sl])

        starts = range(0, n, chunk)
        if workers is None:
            workers = min(4, os.cpu_count() or 1)
        if workers > 1 and len(starts) > 1:
            with concurrent.futures.ThreadPoolExecutor(int(workers)) as pool:
                list(pool.map(work, starts))
        else:
            for start in starts:
                work(start)
        return out

    # --- internals -------------------------------------------------------------------
    def _draws(self, subject, expression, intensity, lighting, jitter_seed):
        """Per-face random draws: pose, light and a seed for the noise."""
        if jitter_seed is None:
            return dict(roll=0.0, dx=0.0, dy=0.0, scale=1.0, light=(0.0, 0.0), gain=1.0,
                        gaze=(0.0, 0.0), noise_seed=None)
        if isinstance(jitter_seed, bool) or not isinstance(jitter_seed, (int, np.integer)) \
                or jitter_seed < 0:
            raise ValueError("jitter_seed must be None or an integer >= 0. "
                             f"Received: jitter_seed={jitter_seed!r}")
        key = [self.seed, subject, expression, int(round(intensity * 1e6)), lighting,
               int(jitter_seed)]
        rng = np.random.default_rng(key)
        return dict(roll=rng.uniform(-0.07, 0.07), dx=rng.uniform(-0.04, 0.04),
                    dy=rng.uniform(-0.04, 0.04), scale=rng.uniform(0.96, 1.04),
                    light=tuple(rng.uniform(-0.12, 0.12, 2)), gain=rng.uniform(0.92, 1.08),
                    gaze=tuple(rng.uniform(-0.15, 0.15, 2)),
                    noise_seed=key + [1])

    def _render(self, subjects, expressions, intensities, lightings, size, jitter_seeds,
                poses_of):
        b = len(subjects)
        ids = [_identity(self.seed, s) for s in subjects]
        draws = []
        for s, e, t, l, j, pose in zip(subjects, expressions, intensities, lightings,
                                       jitter_seeds, poses_of):
            if pose is None:
                draws.append(self._draws(s, e, t, l, j))
            else:
                draws.append(dict(self._draws(s, pose[0], pose[1], l, j), noise_seed=None))
        p = {}
        for f in dataclasses.fields(Identity):
            vals = np.array([getattr(i, f.name) for i in ids], np.float32)
            p[f.name] = vals.reshape(b, 3) if vals.ndim == 2 else vals.reshape(b, 1, 1)
        for au in ACTION_UNITS:
            p[au] = np.array([action_units(e, t)[au] for e, t in
                              zip(expressions, intensities)], np.float32).reshape(b, 1, 1)
        light = [_LIGHT[LIGHTINGS[l]] for l in lightings]
        img = _draw(p, draws, light, size)
        for i, d in enumerate(draws):
            if d["noise_seed"] is not None:
                sigma = light[i]["noise"] / 255.0
                img[i] += np.random.default_rng(d["noise_seed"]).normal(
                    0.0, sigma, img[i].shape).astype(np.float32)
        return np.clip(np.round(img * 255.0), 0, 255).astype(np.uint8)


@functools.lru_cache(maxsize=4096)
def _identity(seed: int, index: int) -> Identity:
    return Identity.sample(np.random.default_rng([seed, index]))


_ZOOM = 1.2
"""Magnification of face units on the image (the image spans +-1/_ZOOM face units): the
face fills most of the frame, as in Oulu-CASIA's cropped faces."""

_BAND_MARGIN = 0.1  # max shift (0.04) + roll (0.07 rad) x half face width, in image units
_WHITE = np.array([1.0, 1.0, 1.0], np.float32)
_SCLERA = np.array([0.93, 0.91, 0.88], np.float32)
_PUPIL = np.array([0.03, 0.03, 0.035], np.float32)
_MOUTH = np.array([0.30, 0.09, 0.09], np.float32)
_TONGUE = np.array([0.62, 0.28, 0.30], np.float32)
_TEETH = np.array([0.93, 0.91, 0.85], np.float32)
_LENS = np.array([0.75, 0.85, 0.95], np.float32)
_LIPS = np.array([0.62, 0.20, 0.24], np.float32)


def _gauss2(x, y, cx, cy, sx, sy):
    return np.exp(-(((x - cx) / sx) ** 2 + ((y - cy) / sy) ** 2))


def _draw(p, draws, light, size):
    """Draw a batch of faces from parameter arrays ([B, 1, 1] or [B, 3] colours).

    Returns:
        float32 [B, H, W, 3], roughly in [0, 1] (clipped by the caller).
    """
    b = len(draws)
    g = (np.arange(size, dtype=np.float32) + 0.5) * (2.0 / size) - 1.0
    gx, gy = g[None, None, :], g[None, :, None]

    def per(key):
        return np.array([d[key] for d in draws], np.float32).reshape(b, 1, 1)

    roll, dx, dy = per("roll"), per("dx"), per("dy")
    zoom = per("scale") * _ZOOM
    cos, sin = np.cos(roll), np.sin(roll)
    shape = (b, size, size)
    x = np.broadcast_to((cos * (gx - dx) + sin * (gy - dy)) / zoom, shape).astype(np.float32)
    y = np.broadcast_to((-sin * (gx - dx) + cos * (gy - dy)) / zoom, shape).astype(np.float32)

    def band(lo, hi):
        """Rows that can hold face-space y in [lo, hi] under any pose jitter.

        The rows depend only on constants and the image size, never on the batch, so a
        face renders to the same pixels in any batch.
        """
        zooms = (_ZOOM * 0.96, _ZOOM * 1.04)
        g_lo = min(lo * z for z in zooms) - _BAND_MARGIN
        g_hi = max(hi * z for z in zooms) + _BAND_MARGIN
        r = np.flatnonzero((g >= g_lo) & (g <= g_hi))
        if r.size < 3:
            lo_row = int(np.clip(np.searchsorted(g, g_lo) - 1, 0, size - 3))
            return slice(lo_row, lo_row + 3)
        return slice(int(r[0]), int(r[-1]) + 1)

    au = {k: p[k] for k in ACTION_UNITS}
    jaw = au["AU26"]
    amb = np.array([L["ambient"] for L in light], np.float32).reshape(b, 1, 1)
    dif = np.array([L["diffuse"] for L in light], np.float32).reshape(b, 1, 1)
    lit = amb + dif  # shading of a surface facing the light

    # --- background -----------------------------------------------------------------------
    bg = _col(p, "background") * (1.05 - 0.06 * (gy[..., None] + 1.0)) \
        * (1.0 - 0.1 * (gx[..., None] ** 2 + gy[..., None] ** 2))
    canvas = _Canvas(bg, shape)
    skin = _col(p, "skin")
    hair_col = _col(p, "hair")

    # --- face outline, head and hair shapes ------------------------------------------------
    fw, fcy = p["face_w"], p["face_cy"]
    ftop, fbot = p["face_top"], p["face_bot"] + 0.085 * jaw
    eye_y = p["eye_y"]
    tip_y = p["nose_tip"] - 0.01 * au["AU9"]
    dyf = y - fcy
    ry = np.where(dyf < 0, ftop, fbot)
    jaw_t = np.clip(dyf / fbot, 0.0, 1.0)
    rx = fw * (1.0 - 0.16 * jaw_t ** 2)
    n = np.where(dyf < 0, 2.1, p["jaw_n"])
    face_f = (np.abs(x / rx) ** n + np.abs(dyf / ry) ** n) ** (1.0 / n) - 1.0
    face_a = _coverage(face_f)
    ax = np.abs(x)

    hx, hy = fw * p["hair_vol"], ftop * p["hair_vol"] + 0.03
    head_cy = fcy + 0.02
    theta = np.arctan2(y - head_cy, x)
    curl = 1.0 + p["hair_curl"] * 0.035 * np.sin(17.0 * theta) * p["hair_on"]
    head_f = np.sqrt((x / (hx * curl)) ** 2 + ((y - head_cy) / (hy * curl)) ** 2) - 1.0
    long_rx = hx * (1.0 + 0.12 * np.clip(y - head_cy, 0, None))
    long_f = np.maximum(np.maximum(ax / (long_rx * curl) - 1.0, (y - p["hair_len"]) / 0.15),
                        head_cy - y)
    # Irregular strands: several incommensurate frequencies, bent by the curl.
    wave = theta + 0.15 * p["hair_curl"] * np.sin(25.0 * y)
    strands = 0.92 + 0.045 * np.sin(67.0 * wave + 5.0 * np.sin(9.0 * theta) + 3.0 * y) \
        + 0.035 * np.sin(151.0 * wave + 2.0 * np.sin(23.0 * theta)) \
        + 0.02 * np.sin(233.0 * wave + 11.0 * y)
    hair_light = np.clip(-0.35 * x / hx - 0.6 * (y - head_cy) / hy, -0.6, 0.7)
    hair_shade = (amb + dif * (0.5 + 0.35 * hair_light)) * strands
    # Short hair stops around the ears; long hair is handled by long_f.
    back_f = np.maximum(head_f, (y - np.maximum(p["hair_len"], eye_y + 0.1)) / 0.3)
    canvas.over(_coverage(np.minimum(back_f, long_f)) * p["hair_on"], hair_col * 0.8,
                hair_shade * 0.8)

    # --- clothing and neck -----------------------------------------------------------------
    rows = band(0.45, 2.0)
    xs, ys = x[:, rows], y[:, rows]
    canvas.over(_coverage(_ellipse(xs, ys, 0.0, 1.62, 1.2, 0.75)), _col(p, "clothes"),
                lit * (0.6 + 0.3 * np.clip(1.0 - np.abs(xs), 0, 1)), rows=rows)
    rows = band(0.15, 2.0)
    xs, ys = x[:, rows], y[:, rows]
    neck_w = fw * 0.6
    neck_f = np.maximum(np.abs(xs) - neck_w * (1.0 + 0.4 * _smoothstep(0.8, 1.3, ys)),
                        fcy + 0.2 - ys)
    neck_shade = lit * (0.5 + 0.25 * _smoothstep(fcy + fbot, fcy + fbot + 0.3, ys)
                        - 0.15 * (np.abs(xs) / neck_w) ** 4)
    canvas.over(_coverage(neck_f), skin * 0.95, neck_shade, rows=rows)

    # --- ears --------------------------------------------------------------------------------
    ear_cy = eye_y + 0.09
    ear_rx, ear_ry = 0.065 * p["ear_size"], 0.12 * p["ear_size"]
    rows = band(-0.18, 0.28)
    axs, ys = ax[:, rows], y[:, rows]
    ear_cx = fw * 0.97
    inner = _gauss2(axs, ys, ear_cx + 0.005, ear_cy, ear_rx * 0.5, ear_ry * 0.6)
    canvas.over(_coverage(_ellipse(axs, ys, ear_cx, ear_cy, ear_rx, ear_ry)),
                skin * (1.0 - 0.1 * inner[..., None]), lit * (0.72 - 0.2 * inner), rows=rows)

    # --- the face's height field and its lighting --------------------------------------------
    r2 = (x / rx) ** 2 + (dyf / ry) ** 2
    height = 0.45 * np.sqrt(np.clip(1.0 - 0.85 * r2, 0.02, None))
    r_eye = band(-0.36, 0.38)
    xs, ys = x[:, r_eye], y[:, r_eye]
    h = height[:, r_eye]
    ridge = _smoothstep(eye_y - 0.03, tip_y - 0.03, ys) * (1.0 - _smoothstep(tip_y, tip_y + 0.04, ys))
    h += 0.06 * p["nose_ridge"] * ridge * np.exp(-(xs / 0.04) ** 2)
    h += 0.07 * _gauss2(xs, ys, 0.0, tip_y, 0.045, 0.04)
    h += 0.025 * np.exp(-((ys - eye_y + p["brow_up"] + 0.01) / 0.05) ** 2) \
        * np.exp(-(xs / 0.35) ** 2)
    for s in (-1.0, 1.0):
        h += 0.035 * _gauss2(xs, ys, s * p["nose_w"] * 0.85, tip_y + 0.012, 0.035, 0.03)
        h -= 0.035 * _gauss2(xs, ys, s * p["eye_dx"], eye_y, 0.09, 0.06)
        cheek_y = tip_y + 0.01 - 0.05 * au["AU6"]
        h += (0.02 + 0.04 * au["AU6"] + 0.02 * au["AU12"]) * _gauss2(
            xs, ys, s * (p["eye_dx"] + 0.04), cheek_y, 0.11, 0.09)
    r_mouth = band(0.25, 0.96)
    xs, ys = x[:, r_mouth], y[:, r_mouth]
    h = height[:, r_mouth]
    h += 0.02 * _gauss2(xs, ys, 0.0, p["mouth_y"], p["mouth_w"] * 1.1, 0.05)
    h += (0.02 + 0.02 * au["AU17"]) * _gauss2(xs, ys, 0.0, fcy + fbot - 0.09, 0.12, 0.06)

    px = (2.0 / size) / zoom
    gyh, gxh = np.gradient(height, axis=(1, 2))
    nx, ny = -gxh / px, -gyh / px
    inv_norm = 1.0 / np.sqrt(nx * nx + ny * ny + 1.0)
    lvecs, hvecs = [], []
    for L, d in zip(light, draws):
        lv = np.array(L["direction"], np.float32) + np.array([d["light"][0], d["light"][1], 0],
                                                            np.float32)
        lv /= np.linalg.norm(lv)
        hv = lv + np.array([0, 0, 1], np.float32)
        lvecs.append(lv)
        hvecs.append(hv / np.linalg.norm(hv))
    lvecs = np.array(lvecs, np.float32).reshape(b, 1, 1, 3)
    hvecs = np.array(hvecs, np.float32).reshape(b, 1, 1, 3)
    lambert = np.clip((nx * lvecs[..., 0] + ny * lvecs[..., 1] + lvecs[..., 2]) * inv_norm, 0, 1)
    n_dot_h = np.clip((nx * hvecs[..., 0] + ny * hvecs[..., 1] + hvecs[..., 2]) * inv_norm, 0, 1)

    # --- creases and occlusion that darken the skin, driven by the action units ---------------
    occl = np.ones(shape, np.float32)
    o = occl[:, r_eye]
    xs, ys = x[:, r_eye], y[:, r_eye]
    axs = np.abs(xs)
    o -= 0.22 * _gauss2(xs, ys, 0.0, tip_y + 0.05, 0.065, 0.018)
    # Nose sides (darker away from the light) and the creases around the nose wings.
    away = np.sign(lvecs[..., 0] + 1e-3)[..., None].reshape(b, 1, 1)
    for s in (-1.0, 1.0):
        side = 0.06 + 0.08 * (s * away < 0)
        o -= side * ridge * np.exp(-((xs - s * 0.05) / 0.014) ** 2)
        wx, wy = s * p["nose_w"] * 0.85, tip_y + 0.012
        rad = np.sqrt((xs - wx) ** 2 + (ys - wy) ** 2)
        outer = np.clip((xs - wx) * s / (rad + 1e-4) + 0.3, 0, 1)
        o -= 0.16 * np.exp(-((rad - 0.034) / 0.007) ** 2) * outer
    brow_y0 = eye_y - p["brow_up"]
    o -= 0.35 * au["AU4"] * np.exp(-((axs - 0.028) / 0.008) ** 2) \
        * np.exp(-((ys - brow_y0 - 0.02) / 0.035) ** 2)
    for k in range(3):
        o -= 0.3 * au["AU9"] * np.exp(-((ys - eye_y - 0.03 * k + 0.1 * axs - 0.015) / 0.006) ** 2) \
            * np.exp(-(xs / 0.055) ** 4)
    for s in (-1.0, 1.0):
        cx_ = s * (p["eye_dx"] + p["eye_w"] + 0.03)
        rad = np.sqrt((xs - cx_) ** 2 + (ys - eye_y) ** 2)
        ang = np.arctan2(ys - eye_y, (xs - cx_) * s)
        o -= 0.1 * au["AU6"] * np.exp(-(rad / 0.045) ** 2) * (0.5 + 0.5 * np.cos(14 * ang))
    rows = band(-0.48, -0.16)
    forehead = 0.5 * (au["AU1"] + au["AU2"]) + 0.3 * au["AU1"] * au["AU4"]
    xs, ys = x[:, rows], y[:, rows]
    for k in range(3):
        line_y = brow_y0 - 0.09 - 0.05 * k + 0.05 * xs ** 2
        occl[:, rows] -= 0.12 * forehead * np.exp(-((ys - line_y) / 0.007) ** 2) \
            * np.exp(-(xs / 0.26) ** 4)

    mouth_hw = p["mouth_w"] * (1.0 + 0.22 * au["AU12"] + 0.4 * au["AU20"] - 0.25 * au["AU24"]
                               - 0.25 * jaw * (1.0 - au["AU20"]))
    rows = band(0.13, 0.74)
    xs, ys = x[:, rows], y[:, rows]
    o = occl[:, rows]
    lower_lip_y = p["mouth_y"] + 0.06 + 0.1 * jaw
    o -= (0.1 + 0.14 * au["AU17"]) * _gauss2(xs, ys, 0.0, lower_lip_y + 0.02, 0.08, 0.018)
    fold = 0.06 + 0.22 * au["AU12"] + 0.18 * au["AU10"] + 0.1 * au["AU9"] + 0.06 * au["AU20"]
    y0, y1 = tip_y - 0.01, p["mouth_y"] + 0.06 + 0.05 * jaw
    t = np.clip((ys - y0) / (y1 - y0), 0.0, 1.0)
    x0, x1 = p["nose_w"] + 0.02, mouth_hw + 0.035 + 0.02 * au["AU12"]
    window = _smoothstep(y0, y0 + 0.03, ys) * (1.0 - _smoothstep(y1 - 0.03, y1, ys))
    fold_x = x0 + (x1 - x0) * np.sin(t * np.pi / 2) ** 0.8 + 0.02 * au["AU12"] * np.sin(t * np.pi)
    o -= fold * window * np.exp(-((np.abs(xs) - fold_x) / 0.012) ** 2)
    np.clip(occl, 0.3, 1.0, out=occl)

    face_shade = (amb + dif * lambert) * occl * (1.0 - 0.3 * _smoothstep(0.7, 1.0, r2))

    # Blush (stronger when smiling) and stubble.
    cheeks = _gauss2(ax, y, p["eye_dx"] + 0.03, tip_y - 0.01, 0.09, 0.07)
    skin_map = skin * (1.0 - (0.05 + 0.07 * au["AU6"])[..., None] * cheeks[..., None]
                       * np.array([0.0, 0.6, 0.7], np.float32))
    stubble = p["stubble"] * _smoothstep(p["mouth_y"] - 0.2 + 0.12 * (ax / fw) ** 2,
                                         p["mouth_y"] + 0.02, y) \
        * (1.0 - _smoothstep(-0.06, -0.01, face_f)) \
        * (1.0 - _gauss2(x, y, 0.0, p["mouth_y"] + 0.01, mouth_hw + 0.01, 0.035))
    skin_map = skin_map + (hair_col * 0.6 - skin_map) * stubble[..., None]
    rows = band(-0.77, 0.93)
    canvas.over(face_a[:, rows], skin_map[:, rows], face_shade[:, rows], 1.0, rows=rows)

    # --- eyes and brows ----------------------------------------------------------------------
    rows = band(-0.42, 0.1)
    xs, ys, fs = x[:, rows], y[:, rows], face_shade[:, rows]
    lid_up = p["eye_h"] * (1.0 + 0.6 * au["AU5"] - 0.55 * au["AU7"] - 0.4 * au["AU43"]
                           - 0.2 * au["AU6"] - 0.1 * au["AU9"])
    lid_lo = p["eye_h"] * 0.8 * (1.0 - 0.55 * au["AU6"] - 0.35 * au["AU7"] - 0.3 * au["AU9"]
                                 + 0.15 * au["AU5"])
    gaze_x, gaze_y = (np.array([d["gaze"][k] for d in draws], np.float32).reshape(b, 1, 1)
                      for k in (0, 1))
    for s in (-1.0, 1.0):
        ex = s * p["eye_dx"]
        u = (xs - ex) * s  # outwards positive
        v = ys - eye_y + p["eye_tilt"] * u
        w = p["eye_w"]
        t = np.clip(u / w, -1.0, 1.0)
        v_up = -lid_up * (1.0 - t * t) * (1.0 - 0.18 * t)
        v_lo = lid_lo * (1.0 - t * t) * (1.0 + 0.15 * t)
        eye_a = _coverage(np.maximum(np.maximum(v_up - v, v - v_lo), np.abs(u) - w))
        sclera = (0.75 + 0.25 * _smoothstep(0.0, 0.6, (v - v_up) / (lid_up + 1e-3))) \
            * (1.0 - 0.25 * t * t)
        canvas.over(eye_a, _SCLERA * (skin * 0.12 + 0.88), sclera * lit * 0.92, rows=rows)
        ir = p["eye_h"] * 1.3
        icx = ex + s * gaze_x * 0.3 * w
        icy = eye_y + gaze_y * 0.2 * p["eye_h"] + 0.003
        rr = np.sqrt((xs - icx) ** 2 + (ys - icy) ** 2)
        radial = np.clip(rr / ir, 0.0, 1.0)[..., None]
        fibres = (0.88 + 0.12 * np.sin(np.arctan2(ys - icy, xs - icx) * 23.0))[..., None]
        canvas.over(_coverage(rr - ir) * eye_a,
                    _col(p, "iris") * (1.2 - 0.6 * radial ** 3) * fibres, lit * 0.95, rows=rows)
        canvas.over(_coverage(rr - ir * 0.42) * eye_a, _PUPIL, 1.0, rows=rows)
        canvas.darken(0.4 * np.exp(-np.clip(v - v_up, 0, None) / 0.012) * eye_a, rows=rows)
        spark = np.sqrt((xs - icx + 0.35 * ir) ** 2 + (ys - icy + 0.35 * ir) ** 2) - ir * 0.22
        canvas.over(_coverage(spark) * eye_a * 0.9, _WHITE, 1.0, rows=rows)
        th = 0.006 + 0.006 * np.clip(t + 0.3, 0, 1.3)
        lash_f = np.maximum(np.abs(v - v_up + th * 0.4) - th, np.abs(u) - w * 1.05)
        canvas.over(_coverage(lash_f), hair_col * 0.3 + 0.02, lit * 0.8, rows=rows)
        low_f = np.maximum(np.abs(v - v_lo - 0.002) - 0.0035, np.abs(u) - w * 0.95)
        canvas.over(_coverage(low_f) * 0.4, skin * 0.55, fs, rows=rows)
        crease_v = v_up - 0.024 - 0.3 * lid_up * (1.0 - t * t) * au["AU5"]
        crease = np.exp(-((v - crease_v) / 0.005) ** 2) * np.clip(1.0 - t * t, 0, 1) \
            * (np.abs(u) < w * 1.05)
        canvas.darken(0.25 * crease * (1.0 - 0.5 * au["AU5"]), rows=rows)

    brow_gap = p["brow_gap"] - 0.035 * au["AU4"] - 0.01 * au["AU9"]
    dark = p["brow_dark"][..., None]
    brow_col = hair_col * dark + (1.0 - dark) * skin * 0.45
    inner_dy = -0.09 * au["AU1"] + 0.09 * au["AU4"] + 0.02 * au["AU9"] - 0.01 * au["AU2"]
    outer_dy = -0.07 * au["AU2"] + 0.012 * au["AU4"] - 0.015 * au["AU1"] + 0.01 * au["AU6"]
    arch = p["brow_arch"] + 0.025 * au["AU2"] - 0.01 * au["AU4"]
    for s in (-1.0, 1.0):
        bl = p["brow_len"]
        t = (xs * s - brow_gap) / bl
        tc = np.clip(t, 0.0, 1.0)
        yb = eye_y - p["brow_up"] - arch * np.sin(np.pi * tc ** 0.8) + inner_dy * (1 - tc) \
            + outer_dy * tc + 0.02 * tc ** 2
        thick = p["brow_thick"] * (1.15 - 0.55 * tc)
        brow_f = np.maximum(np.abs(ys - yb) - thick / 2, np.maximum(-t, t - 1.0) * bl)
        texture = 0.8 + 0.2 * np.sin(300.0 * (xs * s) + 60.0 * ys)
        canvas.over(_coverage(brow_f) * 0.95 * texture, brow_col, fs * 0.95, rows=rows)

    # --- nostrils -------------------------------------------------------------------------------
    rows = band(0.13, 0.34)
    xs, ys = x[:, rows], y[:, rows]
    for s in (-1.0, 1.0):
        nost_f = _ellipse(xs, ys, s * p["nose_w"] * (0.42 + 0.12 * au["AU9"]),
                          tip_y + 0.032 - 0.01 * au["AU10"], 0.022, 0.011 + 0.003 * au["AU9"])
        canvas.over(_coverage(nost_f) * 0.85, skin * 0.3, face_shade[:, rows] * 0.8, rows=rows)

    # --- mouth ----------------------------------------------------------------------------------
    rows = band(0.28, 0.75)
    xs, ys, fs = x[:, rows], y[:, rows], face_shade[:, rows]
    my = p["mouth_y"] - 0.012 * au["AU17"] - 0.008 * au["AU10"]
    corner = p["mouth_rest"] - 0.07 * au["AU12"] + 0.075 * au["AU15"] - 0.01 * au["AU10"] \
        + 0.008 * au["AU20"]
    t = xs / mouth_hw
    tc = np.clip(t, -1.0, 1.0)
    bell = 1.0 - tc * tc
    y_mid = my + corner * tc * tc
    open_up = 0.04 * au["AU10"] + 0.008 * au["AU25"] + 0.012 * au["AU12"] * au["AU25"] \
        + 0.012 * jaw
    open_lo = 0.006 * au["AU25"] + 0.11 * jaw + 0.012 * au["AU20"] * au["AU25"] \
        + 0.014 * au["AU12"] * au["AU25"]
    y_ui = y_mid - open_up * bell ** 0.6
    y_li = y_mid + open_lo * bell ** (0.9 - 0.4 * jaw)
    lip_u = p["lip_u"] * (1.0 - 0.6 * au["AU24"] - 0.35 * au["AU20"] - 0.3 * au["AU12"]
                          - 0.2 * au["AU10"])
    lip_l = p["lip_l"] * (1.0 - 0.55 * au["AU24"] - 0.3 * au["AU20"] - 0.2 * au["AU12"]
                          + 0.15 * au["AU17"])
    bow = 1.0 - 0.35 * np.exp(-(tc / 0.12) ** 2) + 0.15 * np.exp(-((np.abs(tc) - 0.3) / 0.15) ** 2)
    y_uo = y_ui - lip_u * bell ** 0.7 * bow - 0.004
    y_lo = y_li + lip_l * bell ** 0.6 + 0.003
    red = p["lip_red"][..., None]
    lip_col = (skin * (1.0 - 0.25 * red) + _LIPS * 0.3 * red) * 0.85
    lip_shade = fs * (0.8 + 0.3 * _smoothstep(y_li, y_lo, ys) * (ys > y_li)
                      + 0.1 * _smoothstep(y_ui, y_uo, ys))
    lips_f = np.maximum(np.maximum(y_uo - ys, ys - y_lo), (np.abs(t) - 1.0) * mouth_hw)
    canvas.over(_coverage(lips_f), lip_col, lip_shade, 0.6, rows=rows)
    open_f = np.maximum(np.maximum(y_ui - ys, ys - y_li), (np.abs(t) - 0.98) * mouth_hw)
    open_a = _coverage(open_f)
    depth = _smoothstep(y_ui, y_li + 1e-4, ys)
    canvas.over(open_a, _MOUTH, 0.75 * lit * (1.0 - 0.5 * depth), rows=rows)
    tongue_f = _ellipse(xs, ys, 0.0, y_li + 0.01, mouth_hw * 0.6, 0.04 + 0.02 * jaw)
    canvas.over(_coverage(tongue_f) * open_a * _smoothstep(0.02, 0.06, y_li - y_ui), _TONGUE,
                0.75 * lit, rows=rows)
    teeth_h = 0.03 + 0.005 * au["AU12"]
    teeth_f = np.maximum(ys - (y_ui + teeth_h * bell ** 0.3), (np.abs(t) - 0.8) * mouth_hw)
    gaps = 1.0 - 0.25 * np.exp(-((np.mod(xs + 0.0155, 0.031) - 0.0155) / 0.0022) ** 2) \
        * _smoothstep(0.0, 0.3, 1.0 - np.abs(tc))
    teeth_shade = lit * gaps * (0.95 - 0.35 * tc * tc)
    canvas.over(_coverage(teeth_f) * open_a, _TEETH, teeth_shade, rows=rows)
    low_teeth_f = np.maximum((y_li - 0.018 * bell) - ys, (np.abs(t) - 0.6) * mouth_hw)
    canvas.over(_coverage(low_teeth_f) * open_a * np.clip(jaw * 2.0, 0, 1), _TEETH * 0.95,
                teeth_shade * 0.85, rows=rows)
    line_f = np.maximum(np.abs(ys - y_mid) - 0.003, (np.abs(t) - 1.02) * mouth_hw)
    canvas.over(_coverage(line_f) * 0.5 * (1.0 - _smoothstep(0.0, 0.01, y_li - y_ui)),
                lip_col * 0.35, fs, rows=rows)
    for s in (-1.0, 1.0):
        dimple = _gauss2(xs, ys, s * (mouth_hw + 0.01), my + corner, 0.01, 0.014)
        canvas.darken((0.15 + 0.25 * au["AU12"] + 0.15 * au["AU15"]) * dimple
                      * face_a[:, rows], rows=rows)

    # --- hair in front of the forehead ---------------------------------------------------------
    fringe_f = y - (p["hairline"] + 0.3 * x ** 2 + p["hair_sweep"] * x)
    side_bottom = np.maximum(eye_y + 0.02, p["hair_len"] * p["hair_side"])
    side_f = np.maximum(fw * 0.86 - ax, y - side_bottom)
    long_front = np.maximum(np.maximum(ax / (long_rx * curl) - 1.0, y - p["hair_len"]),
                            head_cy - y)
    outer_f = np.minimum(head_f, np.where(p["hair_side"] > 0.5, long_front, 1.0))
    front_a = _coverage(np.maximum(outer_f, np.minimum(fringe_f, side_f))) * p["hair_on"]
    canvas.darken(0.3 * np.exp(-np.clip(fringe_f, 0, None) / 0.02) * (fringe_f > 0)
                  * face_a * p["hair_on"])
    sheen = 1.0 + 0.3 * np.exp(-((np.sqrt((x / hx) ** 2 + ((y - head_cy) / hy) ** 2) - 0.75)
                                 / 0.08) ** 2) * (y < head_cy)
    canvas.over(front_a, hair_col, hair_shade * sheen)

    # --- glasses ------------------------------------------------------------------------------
    if np.any(p["glasses"] > 0):
        rows = band(-0.2, 0.12)
        xs, ys = x[:, rows], y[:, rows]
        gl = p["glasses"]
        frame = _col(p, "glasses_colour")
        for s in (-1.0, 1.0):
            lens_f = _rounded_box(xs, ys, s * p["eye_dx"], eye_y + 0.008, 0.105, 0.07,
                                  p["glasses_round"])
            canvas.over(_coverage(lens_f) * gl * 0.15, _LENS, canvas.shade[:, rows], rows=rows)
            canvas.over(_coverage(np.abs(lens_f) - 0.008) * gl, frame, lit * 0.9, 1.0, rows=rows)
            arm_f = np.maximum(np.abs(ys - eye_y + 0.03) - 0.007,
                               np.maximum(p["eye_dx"] + 0.1 - np.abs(xs), np.abs(xs) - fw * 1.01))
            canvas.over(_coverage(arm_f) * gl, frame, lit * 0.8, rows=rows)
        bridge_f = np.maximum(np.abs(ys - eye_y + 0.01 + 0.01 * (1 - (xs / 0.1) ** 2)) - 0.006,
                              np.abs(xs) - p["eye_dx"] + 0.09)
        canvas.over(_coverage(bridge_f) * gl, frame, lit * 0.9, rows=rows)

    # --- final lighting --------------------------------------------------------------------------
    spec = np.array([L["specular"] for L in light], np.float32).reshape(b, 1, 1) \
        * n_dot_h ** 30 * canvas.gloss
    gain = np.array([L["gain"] * d["gain"] for L, d in zip(light, draws)],
                    np.float32).reshape(b, 1, 1, 1)
    cast = np.array([L["cast"] for L in light], np.float32).reshape(b, 1, 1, 3)
    return (canvas.albedo * canvas.shade[..., None] + spec[..., None]) * gain * cast
