"""Optional face detection and crop for real photos, with MTCNN.

``mtcnn`` (pip, TensorFlow 2, its weights inside the wheel) is an optional extra:
``pip install "exprgan_tf[detect]"``. It is imported only when a :class:`FaceCropper` is
created without an explicit detector, so the rest of the package never needs it.

Example:
    >>> from exprgan_tf.data.detect import FaceCropper   # doctest: +SKIP
    >>> crop = FaceCropper(margin=0.3)                    # doctest: +SKIP
    >>> face = crop(photo)  # uint8 [H, W, 3] -> square face crop   # doctest: +SKIP
"""

from __future__ import annotations

import numpy as np


class FaceNotFoundError(ValueError):
    """No face was detected in an image (with ``on_missing="skip"``)."""


def _load_mtcnn():
    try:
        from mtcnn import MTCNN
    except ImportError as e:
        raise ImportError("Face detection needs the optional 'mtcnn' package: "
                          "pip install 'exprgan_tf[detect]' (or pip install mtcnn).") from e
    return MTCNN()


class FaceCropper:
    """Crop a photo to a square around its most confident, largest face.

    Args:
        margin: extra border around the detected box, as a fraction of the box size on
            each side (ExprGAN-style crops include the whole face and some hair).
        min_confidence: detections below this score are ignored.
        on_missing: ``"keep"`` returns the image unchanged when no face is found (and
            counts it in ``num_missing``); ``"skip"`` raises :class:`FaceNotFoundError`,
            which :func:`exprgan_tf.data.readers.read_images` reports as a skipped file.
        detector: any object with ``detect_faces(uint8 RGB image) -> list of dicts with
            "box" [x, y, w, h] and "confidence"`` (the ``mtcnn.MTCNN`` interface);
            ``None`` creates an ``mtcnn.MTCNN``.
    """

    def __init__(self, margin: float = 0.25, min_confidence: float = 0.9,
                 on_missing: str = "keep", detector=None):
        if margin < 0:
            raise ValueError(f"margin must be >= 0. Received: margin={margin!r}")
        if on_missing not in ("keep", "skip"):
            raise ValueError("on_missing must be 'keep' or 'skip'. "
                             f"Received: on_missing={on_missing!r}")
        self.margin = float(margin)
        self.min_confidence = float(min_confidence)
        self.on_missing = on_missing
        self.num_missing = 0
        self._detector = detector if detector is not None else _load_mtcnn()

    def detect(self, image: np.ndarray):
        """Face boxes ``(x, y, w, h, confidence)`` above ``min_confidence``, best first
        (by confidence times area)."""
        image = _as_rgb(image)
        found = []
        for face in self._detector.detect_faces(image):
            x, y, w, h = (int(v) for v in face["box"])
            conf = float(face.get("confidence", 1.0))
            if conf >= self.min_confidence and w > 0 and h > 0:
                found.append((max(x, 0), max(y, 0), w, h, conf))
        return sorted(found, key=lambda f: -f[4] * f[2] * f[3])

    def box(self, image: np.ndarray):
        """The square crop box ``(top, left, size)`` around the best face, or ``None``."""
        faces = self.detect(image)
        if not faces:
            return None
        x, y, w, h, _ = faces[0]
        side = int(round(max(w, h) * (1.0 + 2.0 * self.margin)))
        cx, cy = x + w / 2.0, y + h / 2.0
        return int(round(cy - side / 2.0)), int(round(cx - side / 2.0)), side

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """Crop ``image`` (uint8 [H, W, 3] or [H, W]) to the face; out-of-image parts of the
        square are filled by edge replication."""
        image = _as_rgb(image)
        b = self.box(image)
        if b is None:
            if self.on_missing == "skip":
                raise FaceNotFoundError("No face found in the image "
                                        f"(min_confidence={self.min_confidence}).")
            self.num_missing += 1
            return image
        top, left, side = b
        h, w = image.shape[:2]
        pad = max(0, -top, -left, top + side - h, left + side - w)
        if pad:
            image = np.pad(image, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
            top, left = top + pad, left + pad
        return np.ascontiguousarray(image[top:top + side, left:left + side])


def _as_rgb(image) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    if image.ndim != 3 or image.shape[-1] not in (3, 4):
        raise ValueError("image must be [H, W], [H, W, 3] or [H, W, 4]. "
                         f"Received: image.shape={image.shape}")
    return np.ascontiguousarray(image[..., :3].astype(np.uint8))
