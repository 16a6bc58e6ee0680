"""Edit the expression of the faces inside a photo of any size (client-side: detect,
align, edit, blend back; ``exprgan-generate --image`` uses it).

Steps, per face:

1. **Detect** with MTCNN through :class:`exprgan_tf.data.detect.FaceCropper` (the same
   detector and confidence threshold the data pipeline crops real datasets with), or
   take a box the caller gives.
2. **Align and crop** a square, resampled to the model size (parts outside the photo
   are edge-replicated, as ``FaceCropper`` does). Two layouts:

   - ``"eyes"`` (default when the detector gives eyes): rotated so the eyes are level,
     scaled and placed so the eyes land where they are in the built-in training faces
     (:data:`EYE_LAYOUT`, measured with MTCNN on renders of
     :class:`exprgan_tf.data.faces.FaceSet`: eye midpoint at (0.495, 0.463) of the
     side, eye distance 0.242 of the side, spread 1-5 %);
   - ``"box"``: side ``max(w, h) * (1 + 2 * margin)`` centred on the face box - the crop
     ``FaceCropper`` makes of real datasets for training.
3. **Edit** the crops with an :class:`~exprgan_tf.editor.ExpressionEditor` (one batch
   for every face and every requested (expression, intensity)).
4. **Blend back**: the edited crop is mapped back into the photo through the inverse
   transform and mixed in under a feathered elliptical mask that lies inside the crop.
   Every pixel where the mask is 0 - all of the photo outside the face ellipse - keeps
   its exact original value.

Example:
    >>> import numpy as np                                              # doctest: +SKIP
    >>> from exprgan_tf.editor_io import load_editor                       # doctest: +SKIP
    >>> from exprgan_tf.photo import PhotoEditor, read_photo            # doctest: +SKIP
    >>> photo = read_photo("me.jpg")                                    # doctest: +SKIP
    >>> tool = PhotoEditor(load_editor("checkpoints/proposed-small"))   # doctest: +SKIP
    >>> smiling = tool.edit(photo, "happiness", 0.8)                    # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from PIL import Image, UnidentifiedImageError

from exprgan_tf.config import expression_index


class PhotoError(ValueError):
    """A photo cannot be edited (unreadable, no face, face too small); the message says
    why and what to do."""


EYE_LAYOUT = {"eye_center": (0.495, 0.463), "eye_distance": 0.242,
              "face_center": (0.497, 0.557), "face_size": 0.733}
"""Where the face lies in a training crop of the built-in face set, as fractions of the
crop side: midpoint of MTCNN's eyes, their distance, centre and size (max(w, h)) of
MTCNN's face box. Measured on 56 renders (14 subjects x 4 expressions, 128 px)."""

CROP_MODES = ("eyes", "box")


@dataclasses.dataclass(frozen=True)
class Face:
    """One face in a photo.

    Args:
        box: ``(x, y, w, h)`` in photo pixels.
        confidence: detector score (1.0 for a box given by the caller).
        eyes: ``((x, y) of the eye on the image's left, (x, y) of the other)`` or
            ``None``; when present the crop is rotated so that they are level.
    """

    box: tuple
    confidence: float = 1.0
    eyes: tuple | None = None

    @property
    def size(self) -> int:
        return int(max(self.box[2], self.box[3]))


@dataclasses.dataclass(frozen=True)
class Alignment:
    """The similarity transform between a model-size crop and the photo.

    A point ``(u, v)`` of the crop (continuous pixel coordinates, ``[0, S]``) lies at
    ``(x, y) = centre + scale * R(angle) @ ((u, v) - S / 2)`` in the photo.
    ``face_center`` and ``face_size`` say where the face is inside the crop (fractions
    of the side); the blend mask is placed there.
    """

    center: tuple
    side: float
    angle: float
    size: int
    face_center: tuple = (0.5, 0.5)
    face_size: float = 0.8

    @property
    def scale(self) -> float:
        return self.side / self.size

    def to_photo(self, u, v):
        c, s, k = math.cos(self.angle), math.sin(self.angle), self.scale
        du, dv = u - self.size / 2.0, v - self.size / 2.0
        return (self.center[0] + k * (c * du - s * dv), self.center[1] + k * (s * du + c * dv))

    def to_crop(self, x, y):
        c, s, k = math.cos(self.angle), math.sin(self.angle), self.scale
        dx, dy = x - self.center[0], y - self.center[1]
        return ((c * dx + s * dy) / k + self.size / 2.0, (-s * dx + c * dy) / k + self.size / 2.0)

    def bounds(self, shape):
        """Integer ``(top, left, bottom, right)`` of the photo pixels the crop covers."""
        corners = [self.to_photo(u, v) for u in (0, self.size) for v in (0, self.size)]
        xs, ys = [p[0] for p in corners], [p[1] for p in corners]
        return (max(0, int(math.floor(min(ys)))), max(0, int(math.floor(min(xs)))),
                min(shape[0], int(math.ceil(max(ys)))), min(shape[1], int(math.ceil(max(xs)))))


def read_photo(path) -> np.ndarray:
    """Read an image file as uint8 RGB ``[H, W, 3]`` (EXIF rotation applied).

    Raises:
        PhotoError: the file is missing or not an image.
    """
    from PIL import ImageOps

    from exprgan_tf.data.readers import to_rgb8

    try:
        with Image.open(path) as image:
            image = ImageOps.exif_transpose(image)
            return to_rgb8(image)
    except FileNotFoundError:
        raise PhotoError(f"{path}: no such file.") from None
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise PhotoError(f"{path} is not an image file that can be read "
                         f"(JPEG, PNG, BMP, GIF, WebP, ...): {e}") from None


class PhotoEditor:
    """Detect, align, edit and blend back the faces of photos.

    Args:
        editor: an :class:`~exprgan_tf.editor.ExpressionEditor`.
        detector: an object with ``detect_faces(uint8 RGB image)`` returning dicts with
            ``"box"`` ``[x, y, w, h]``, ``"confidence"`` and optionally ``"keypoints"``
            with ``"left_eye"``/``"right_eye"`` (the ``mtcnn.MTCNN`` interface). ``None``
            creates an MTCNN detector on first use (needs ``pip install mtcnn``).
        crop: ``"eyes"`` (the built-in faces' layout, needs eye landmarks; faces
            without them fall back to ``"box"``) or ``"box"`` (``FaceCropper``'s crop).
        margin: ``"box"`` crops: border around the face box per side, as a fraction
            of the box (0.25 = ``FaceCropper``'s default).
        min_confidence: detections below this score are ignored.
        min_face_size: faces whose box is smaller (in pixels) are refused: the edit
            would be an upscaled blur.
        feather: width of the mask's soft edge, as a fraction of the ellipse radius.
        align: rotate crops so the eyes are level (when the detector gives eyes).
    """

    def __init__(self, editor, detector=None, crop: str = "eyes", margin: float = 0.25,
                 min_confidence: float = 0.9, min_face_size: int = 32,
                 feather: float = 0.25, align: bool = True):
        if crop not in CROP_MODES:
            raise ValueError(f"crop must be one of {list(CROP_MODES)}. Received: crop={crop!r}")
        if margin < 0:
            raise ValueError(f"margin must be >= 0. Received: margin={margin!r}")
        if not 0 < feather <= 1:
            raise ValueError(f"feather must be in (0, 1]. Received: feather={feather!r}")
        if min_face_size < 1:
            raise ValueError(f"min_face_size must be >= 1. Received: min_face_size={min_face_size!r}")
        self.editor = editor
        self.size = int(editor.image_size)
        self.crop_mode = crop
        self.margin = float(margin)
        self.min_confidence = float(min_confidence)
        self.min_face_size = int(min_face_size)
        self.feather = float(feather)
        self.align = bool(align)
        self._detector = detector
        self._cropper = None
        self.num_detected = 0  # faces found by the last detection

    # --- detection ------------------------------------------------------------------
    def detect(self, photo: np.ndarray) -> list[Face]:
        """Every face above ``min_confidence``, largest first."""
        from exprgan_tf.data import detect as detect_lib

        if self._cropper is None:
            raw = self._detector if self._detector is not None else detect_lib._load_mtcnn()
            self._detector = _RememberDetections(raw)
            self._cropper = detect_lib.FaceCropper(
                margin=self.margin, min_confidence=self.min_confidence, on_missing="skip",
                detector=self._detector)
        boxes = self._cropper.detect(photo)
        self.num_detected = len(boxes)
        # FaceCropper keeps boxes only; the eyes come from the same (remembered) detections.
        raw = self._detector.last
        faces = []
        for x, y, w, h, conf in boxes:
            eyes = None
            for d in raw:
                bx, by, bw, bh = (int(v) for v in d["box"])
                kp = d.get("keypoints") or {}
                if ((max(bx, 0), max(by, 0), bw, bh) == (x, y, w, h)
                        and "left_eye" in kp and "right_eye" in kp):
                    a = tuple(float(v) for v in kp["left_eye"])
                    b = tuple(float(v) for v in kp["right_eye"])
                    eyes = (a, b) if a[0] <= b[0] else (b, a)
                    break
            faces.append(Face((x, y, w, h), conf, eyes))
        return sorted(faces, key=lambda f: -f.box[2] * f.box[3])

    def faces_to_edit(self, photo, faces="largest", name="the photo") -> list[Face]:
        """Detect (unless ``faces`` is a list of :class:`Face`) and check the faces.

        Args:
            photo: uint8 ``[H, W, 3]``.
            faces: ``"largest"``, ``"all"`` or a list of :class:`Face`.
            name: how error messages call the photo.

        Raises:
            PhotoError: no face, or the faces are smaller than ``min_face_size``.
        """
        if isinstance(faces, str):
            if faces not in ("largest", "all"):
                raise ValueError(f"faces must be 'largest', 'all' or a list of Face. "
                                 f"Received: faces={faces!r}")
            found = self.detect(photo)
            if not found:
                raise PhotoError(f"No face found in {name} (detector confidence >= "
                                 f"{self.min_confidence}). Give the face box yourself "
                                 "(--face-box X,Y,W,H) if there is one.")
            chosen = found[:1] if faces == "largest" else found
        else:
            chosen = list(faces)
            if not chosen:
                raise ValueError("faces is an empty list. Received: faces=[]")
        small = [f for f in chosen if f.size < self.min_face_size]
        if small:
            sizes = ", ".join(f"{f.size} px at (x={f.box[0]}, y={f.box[1]})" for f in small)
            raise PhotoError(f"The face in {name} is too small to edit ({sizes}); faces need "
                             f"at least {self.min_face_size} px (--min-face-size), the model "
                             f"works at {self.size}x{self.size}.")
        return chosen

    # --- alignment ------------------------------------------------------------------
    def alignment(self, face: Face) -> Alignment:
        """The crop of ``face`` (see the module doc for the two layouts)."""
        if self.crop_mode == "eyes" and face.eyes is not None:
            (lx, ly), (rx, ry) = face.eyes
            distance = math.hypot(rx - lx, ry - ly)
            if distance > 0:
                angle = math.atan2(ry - ly, rx - lx) if self.align else 0.0
                side = distance / EYE_LAYOUT["eye_distance"]
                ex, ey = EYE_LAYOUT["eye_center"]
                dx, dy = (0.5 - ex) * side, (0.5 - ey) * side   # eyes -> crop centre
                c, s = math.cos(angle), math.sin(angle)
                center = ((lx + rx) / 2.0 + c * dx - s * dy, (ly + ry) / 2.0 + s * dx + c * dy)
                return Alignment(center, side, angle, self.size,
                                 EYE_LAYOUT["face_center"], EYE_LAYOUT["face_size"])
        x, y, w, h = face.box
        side = max(w, h) * (1.0 + 2.0 * self.margin)
        angle = 0.0
        if self.align and face.eyes is not None:
            (lx, ly), (rx, ry) = face.eyes
            angle = math.atan2(ry - ly, rx - lx)
        return Alignment((x + w / 2.0, y + h / 2.0), side, angle, self.size,
                         (0.5, 0.5), 1.0 / (1.0 + 2.0 * self.margin))

    def crop(self, photo: np.ndarray, al: Alignment) -> np.ndarray:
        """The model-size uint8 crop of ``al`` (edge-replicated outside the photo)."""
        native = max(self.size, int(round(al.side)))
        # Rotate/cut at the photo's own resolution, then downscale with antialiasing.
        pad = int(math.ceil(al.side)) + 2
        padded = Image.fromarray(np.pad(photo, ((pad, pad), (pad, pad), (0, 0)), mode="edge"))
        k = al.side / native
        c, s = math.cos(al.angle), math.sin(al.angle)
        cx, cy = al.center[0] + pad, al.center[1] + pad
        half = native / 2.0
        coeffs = (k * c, -k * s, cx - k * (c * half - s * half),
                  k * s, k * c, cy - k * (s * half + c * half))
        big = padded.transform((native, native), Image.AFFINE, coeffs,
                               resample=Image.BICUBIC)
        if native != self.size:
            big = big.resize((self.size, self.size), Image.BICUBIC, reducing_gap=None)
        return np.asarray(big)

    def mask(self, u, v, al: Alignment) -> np.ndarray:
        """Blend weight in [0, 1] at crop coordinates ``(u, v)``: a feathered ellipse
        over the face (1 inside, 0 at and beyond its rim, which stays inside the crop)."""
        cu, cv = al.face_center
        # Semi-axes as fractions of the side: a bit narrower and taller than the face box.
        ax = min(0.475 * al.face_size, cu - 0.01, 0.99 - cu)
        ay = min(0.575 * al.face_size, cv - 0.01, 0.99 - cv)
        ru = (u / al.size - cu) / ax
        rv = (v / al.size - cv) / ay
        r = np.sqrt(ru * ru + rv * rv)
        return np.clip((1.0 - r) / self.feather, 0.0, 1.0)

    def blend(self, photo: np.ndarray, edited: np.ndarray, al: Alignment) -> np.ndarray:
        """Photo with ``edited`` (model-size uint8 crop of ``al``) mixed in; pixels where
        the mask is 0 are returned unchanged."""
        from scipy import ndimage

        out = photo.copy()
        top, left, bottom, right = al.bounds(photo.shape)
        if bottom <= top or right <= left:
            return out
        ys, xs = np.mgrid[top:bottom, left:right].astype(np.float64)
        u, v = al.to_crop(xs + 0.5, ys + 0.5)          # pixel centres -> crop coordinates
        weight = self.mask(u, v, al)
        inside = weight > 0
        if not inside.any():
            return out
        # Sample the edited crop (pixel i covers [i, i+1): centre at i + 0.5).
        coords = np.stack([v[inside] - 0.5, u[inside] - 0.5])
        sampled = np.stack([ndimage.map_coordinates(edited[..., ch].astype(np.float64), coords,
                                                    order=1, mode="nearest")
                            for ch in range(3)], axis=-1)
        region = out[top:bottom, left:right].astype(np.float64)
        w = weight[inside][:, None]
        mixed = region[inside] * (1.0 - w) + sampled * w
        patch = out[top:bottom, left:right]
        patch[inside] = np.clip(np.round(mixed), 0, 255).astype(np.uint8)
        return out

    # --- editing --------------------------------------------------------------------
    def edit_many(self, photo, settings, faces="largest", name="the photo"):
        """Edit ``photo`` once per ``(expression, intensity)`` in ``settings``.

        Args:
            photo: uint8 ``[H, W, 3]`` (or ``[H, W]``/``[H, W, 4]``, converted).
            settings: list of ``(expression, intensity)``; expression a name or index,
                intensity in [0, 1].
            faces: ``"largest"``, ``"all"`` or a list of :class:`Face`.
            name: how error messages call the photo.

        Returns:
            ``(photos, faces)``: one uint8 photo of the input's size per setting, and
            the faces that were edited.
        """
        photo = _as_rgb(photo)
        settings = [(expression_index(e), float(s)) for e, s in settings]
        for _, s in settings:
            if not 0.0 <= s <= 1.0:
                raise ValueError(f"intensity must be in [0, 1]. Received: intensity={s}")
        chosen = self.faces_to_edit(photo, faces, name)
        aligns = [self.alignment(f) for f in chosen]
        crops = np.stack([self.crop(photo, a) for a in aligns])
        n_faces, n_set = len(chosen), len(settings)
        images = np.repeat(crops, n_set, axis=0)                 # face-major
        expression = np.tile([e for e, _ in settings], n_faces).astype(np.int32)
        intensity = np.tile([s for _, s in settings], n_faces).astype(np.float32)
        edited = self.editor.predict([images, expression, intensity],
                                     batch_size=32, verbose=0)
        edited = np.clip(np.round((edited + 1.0) * 127.5), 0, 255).astype(np.uint8)
        results = []
        for j in range(n_set):
            out = photo
            for i, al in enumerate(aligns):
                out = self.blend(out, edited[i * n_set + j], al)
            results.append(out)
        return results, chosen

    def edit(self, photo, expression, intensity: float = 1.0, faces="largest",
             name="the photo") -> np.ndarray:
        """One edited photo of the input's size (see :meth:`edit_many`)."""
        return self.edit_many(photo, [(expression, intensity)], faces, name)[0][0]

    def face_region(self, photo_shape, face: Face):
        """``(top, left, bottom, right)`` of the square photo region around ``face``
        (the crop's bounding box), for grids and previews."""
        return self.alignment(face).bounds(photo_shape)


class _RememberDetections:
    """Detector proxy keeping the last raw result (boxes *and* landmarks)."""

    def __init__(self, detector):
        self.detector = detector
        self.last = []

    def detect_faces(self, image):
        self.last = list(self.detector.detect_faces(image))
        return self.last


def _as_rgb(photo) -> np.ndarray:
    photo = np.asarray(photo)
    if photo.ndim == 2:
        photo = np.stack([photo] * 3, axis=-1)
    if photo.ndim != 3 or photo.shape[-1] not in (3, 4) or photo.dtype != np.uint8:
        raise ValueError("photo must be uint8 [H, W, 3] (or [H, W] / [H, W, 4]). Received: "
                         f"photo.shape={photo.shape}, dtype={photo.dtype}")
    return np.ascontiguousarray(photo[..., :3])


__all__ = ["CROP_MODES", "EYE_LAYOUT", "Alignment", "Face", "PhotoEditor", "PhotoError",
           "read_photo"]
