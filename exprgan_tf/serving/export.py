"""Export an :class:`~exprgan_tf.editor.ExpressionEditor` as a SavedModel for TF Serving.

The SavedModel is written into TensorFlow Serving's versioned layout,
``<export_dir>/<version>/saved_model.pb`` (+ ``variables/``), and has two signatures:

``serving_default`` (tensors; gRPC ``PredictRequest`` or REST ``instances``/``inputs``)
    - ``images``: uint8 ``[N, H, W, 3]``, any ``H, W`` >= 8. Images that are not
      ``S x S`` (the model size, 64 or 128) are resized to it (bilinear), edited and
      resized back, so the output always has the input's shape. The whole image is the
      face crop: send a face cropped the way the training faces were (roughly eyes to
      chin, centred). To edit a face inside a larger photo use ``scripts/generate.py``
      or :mod:`exprgan_tf.photo` on the client.
    - ``expression``: int32 ``[N]``, class index in [0, 6)
      (anger, disgust, fear, happiness, sadness, surprise).
    - ``intensity``: float32 ``[N]`` in [0, 1].
    - output ``images``: uint8 ``[N, H, W, 3]``.

``edit_bytes`` (encoded images; REST clients post base64)
    - ``image_bytes``: string ``[N]``, each a JPEG, PNG, GIF or BMP file of any size
      (sizes may differ within a batch).
    - ``expression``, ``intensity``: as above.
    - output ``image_bytes``: string ``[N]``, PNG files of each input's size. TF
      Serving's REST API base64-encodes string outputs whose name ends in ``_bytes``.

The same two endpoints are attributes of the loaded object taking one dict, so Keras
can wrap the SavedModel as a layer::

    layer = keras.layers.TFSMLayer("<export_dir>/<version>", call_endpoint="serving_default")
    layer({"images": uint8_images, "expression": int32_labels, "intensity": floats})
    # -> {"images": uint8 images}

Every input is validated inside the graph (batch sizes agree, expression in range,
intensity in [0, 1], images at least 8x8, decodable bytes); a bad request fails with an
``InvalidArgumentError`` whose message names the input, and the server keeps serving.
A wrong rank fails inside the graph too ("Shape of tensor images [2,64,64] is not
compatible with expected shape [?,?,?,3]"); a wrong dtype is refused when the request
is bound to the signature.

Example:
    >>> from exprgan_tf.config import get_preset
    >>> from exprgan_tf.editor import ExpressionEditor
    >>> from exprgan_tf.serving import export_saved_model
    >>> editor = ExpressionEditor.from_config_tree(get_preset("exprgan-small"))
    >>> path = export_saved_model(editor, "/tmp/exprgan_export")   # doctest: +SKIP
    >>> path                                                          # doctest: +SKIP
    '/tmp/exprgan_export/1'
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile

import tensorflow as tf

from exprgan_tf import preprocessing
from exprgan_tf.config import EXPRESSIONS

DEFAULT_SIGNATURE = "serving_default"
BYTES_SIGNATURE = "edit_bytes"
METADATA_FILE = "exprgan_tf.json"  # written into <version>/assets.extra/
MIN_IMAGE_SIZE = 8


def _require_shape(tensor, shape):
    """A runtime shape check that survives graph optimisation.

    The signature's placeholders have a static shape, so Grappler folds ``tf.rank`` and
    ``tf.ensure_shape`` of them away, yet a served graph receives whatever a client
    sends. The raw ``EnsureShape`` op stays and fails with
    "Shape of tensor <name> [..] is not compatible with expected shape [..]".
    """
    return tf.raw_ops.EnsureShape(input=tensor, shape=tf.TensorShape(shape))


def _check_inputs(images, expression, intensity):
    return (_require_shape(images, [None, None, None, 3]) if images.dtype == tf.uint8
            else _require_shape(images, [None]),
            _require_shape(expression, [None]), _require_shape(intensity, [None]))


def _check_min_size(size, name, minimum):
    return tf.debugging.assert_greater_equal(
        tf.reduce_min(size), minimum,
        message=f"{name} must be at least {minimum}x{minimum} pixels")


class EditorServingModule(tf.Module):
    """A ``tf.Module`` whose ``tf.function`` methods are the SavedModel's signatures.

    Args:
        editor: the :class:`~exprgan_tf.editor.ExpressionEditor` to serve.
        min_image_size: smallest accepted image side, in pixels.
    """

    def __init__(self, editor, min_image_size: int = MIN_IMAGE_SIZE):
        super().__init__(name="exprgan_editor")
        self.editor = editor
        self.image_size = int(editor.image_size)
        self.min_image_size = int(min_image_size)

    def _to_model_size(self, image):
        """uint8 ``[N, h, w, 3]`` -> uint8 ``[N, S, S, 3]`` (unchanged if already S x S)."""
        size = tf.shape(image)[1:3]
        target = tf.constant([self.image_size, self.image_size])
        same = tf.reduce_all(tf.equal(size, target))

        def resize():
            resized = tf.image.resize(tf.cast(image, tf.float32), target, antialias=True)
            return tf.cast(tf.clip_by_value(tf.round(resized), 0.0, 255.0), tf.uint8)

        out = tf.cond(same, lambda: image, resize)
        return tf.ensure_shape(out, [None, self.image_size, self.image_size, 3])

    def _back_to_size(self, edited, size):
        """float [-1, 1] ``[N, S, S, 3]`` -> uint8 ``[N, h, w, 3]``."""
        target = tf.constant([self.image_size, self.image_size])
        same = tf.reduce_all(tf.equal(size, target))
        out = tf.cond(same, lambda: edited,
                      lambda: tf.image.resize(edited, size, antialias=True))
        return preprocessing.to_display(out)

    def edit_uint8(self, images, expression, intensity):
        """The computation of ``serving_default`` (see the module doc)."""
        size = tf.shape(images)[1:3]
        with tf.control_dependencies([_check_min_size(size, "images", self.min_image_size)]):
            small = self._to_model_size(images)
        edited = self.editor([small, expression, intensity])
        return self._back_to_size(edited, size)

    # Each endpoint takes one dict of tensors. As a signature it has the named inputs
    # TF Serving and `signatures[...](images=..., ...)` use; as an attribute of the
    # loaded object it is what keras.layers.TFSMLayer(path, call_endpoint=...) calls
    # with a dict (Keras finds attributes before signatures, whose functions take
    # keyword arguments only).
    @tf.function(input_signature=[{
        "images": tf.TensorSpec([None, None, None, 3], tf.uint8, name="images"),
        "expression": tf.TensorSpec([None], tf.int32, name="expression"),
        "intensity": tf.TensorSpec([None], tf.float32, name="intensity"),
    }])
    def serving_default(self, inputs):
        """uint8 images in, uint8 images of the same shape out."""
        images, expression, intensity = _check_inputs(
            inputs["images"], inputs["expression"], inputs["intensity"])
        return {"images": self.edit_uint8(images, expression, intensity)}

    @tf.function(input_signature=[{
        "image_bytes": tf.TensorSpec([None], tf.string, name="image_bytes"),
        "expression": tf.TensorSpec([None], tf.int32, name="expression"),
        "intensity": tf.TensorSpec([None], tf.float32, name="intensity"),
    }])
    def edit_bytes(self, inputs):
        """Encoded images in, PNG files of the same sizes out."""
        image_bytes, expression, intensity = _check_inputs(
            inputs["image_bytes"], inputs["expression"], inputs["intensity"])
        s = self.image_size

        def decode(data):
            image = tf.io.decode_image(data, channels=3, expand_animations=False)
            size = tf.shape(image)[0:2]
            check = _check_min_size(size, "decoded images", self.min_image_size)
            with tf.control_dependencies([check]):
                small = self._to_model_size(image[tf.newaxis])[0]
            return small, size

        small, sizes = tf.map_fn(
            decode, image_bytes,
            fn_output_signature=(tf.TensorSpec([s, s, 3], tf.uint8),
                                 tf.TensorSpec([2], tf.int32)))
        edited = self.editor([small, expression, intensity])

        def encode(args):
            image, size = args
            return tf.io.encode_png(self._back_to_size(image[tf.newaxis], size)[0])

        encoded = tf.map_fn(encode, (edited, sizes),
                            fn_output_signature=tf.TensorSpec([], tf.string))
        return {"image_bytes": encoded}

    def signatures(self) -> dict:
        """The signatures to pass to ``tf.saved_model.save``."""
        return {DEFAULT_SIGNATURE: self.serving_default.get_concrete_function(),
                BYTES_SIGNATURE: self.edit_bytes.get_concrete_function()}


def next_version(export_dir) -> int:
    """1 + the largest integer sub-directory of ``export_dir`` (1 if there is none)."""
    export_dir = os.fspath(export_dir)
    if not os.path.isdir(export_dir):
        return 1
    versions = [int(d) for d in os.listdir(export_dir)
                if d.isdigit() and os.path.isdir(os.path.join(export_dir, d))]
    return max(versions, default=0) + 1


def export_saved_model(editor, export_dir, version: int | None = None,
                       overwrite: bool = False) -> str:
    """Write ``editor`` as a SavedModel to ``<export_dir>/<version>/``.

    The version directory is written under a temporary name and renamed when complete,
    so a TF Serving instance watching ``export_dir`` never loads half a model.

    Args:
        editor: an :class:`~exprgan_tf.editor.ExpressionEditor`.
        export_dir: the model's base directory (TF Serving's ``--model_base_path``).
        version: positive integer version; ``None`` = one more than the newest present.
        overwrite: replace an existing ``<version>`` directory instead of failing.

    Returns:
        The path of the version directory.

    Raises:
        ValueError: ``version`` is not a positive integer.
        FileExistsError: the version exists and ``overwrite`` is False.
    """
    if version is None:
        version = next_version(export_dir)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"version must be a positive integer. Received: version={version!r}")
    export_dir = os.fspath(export_dir)
    target = os.path.join(export_dir, str(version))
    if os.path.exists(target) and not overwrite:
        raise FileExistsError(f"{target} exists: pass another version, or overwrite=True "
                              "(scripts/export.py --overwrite).")
    os.makedirs(export_dir, exist_ok=True)
    module = EditorServingModule(editor)
    tmp = tempfile.mkdtemp(prefix=f".tmp-{version}-", dir=export_dir)
    try:
        tf.saved_model.save(module, tmp, signatures=module.signatures())
        extra = os.path.join(tmp, "assets.extra")
        os.makedirs(extra, exist_ok=True)
        with open(os.path.join(extra, METADATA_FILE), "w", encoding="utf-8") as f:
            json.dump({"image_size": module.image_size, "expressions": list(EXPRESSIONS),
                       "signatures": [DEFAULT_SIGNATURE, BYTES_SIGNATURE],
                       "unsharp_mask": editor.unsharp_mask}, f, indent=2)
        if os.path.exists(target):
            shutil.rmtree(target)
        os.rename(tmp, target)
    finally:
        if os.path.exists(tmp):
            shutil.rmtree(tmp)
    return target


__all__ = ["BYTES_SIGNATURE", "DEFAULT_SIGNATURE", "EditorServingModule",
           "export_saved_model", "next_version"]
