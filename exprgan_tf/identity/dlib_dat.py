"""Reader for dlib's binary DNN serialisation (``dlib_face_recognition_resnet_model_v1.dat``).

dlib writes a network with its own portable format (``dlib/serialize.h``):

* integers: one byte holding the byte count (bit 7 set for negative numbers), then that
  many little-endian magnitude bytes;
* strings: an integer length, then the bytes;
* ``bool``: one ASCII character, ``'0'`` or ``'1'``;
* ``float``/``double`` scalars: integer mantissa, then integer exponent
  (value = mantissa * 2**exponent);
* tensors (version 2): integer version, ``num_samples, k, nr, nc``, then the values as
  raw little-endian float32 in NCHW order.

A network is written outermost layer first, but every wrapper serialises its subnetwork
*before* its own details, so after a run of wrapper version numbers the file lists the
input layer and then every computational layer bottom-up, i.e. in forward order.
:func:`read_dlib_dnn` returns that ordered list; it only understands the layer types the
face-recognition ResNet uses and raises a ``ValueError`` for anything else. Tag and skip
layers carry no data of their own and therefore do not appear in the list.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

_INPUT_LAYERS = ("input_rgb_image_sized", "input_rgb_image")


@dataclasses.dataclass
class DlibLayer:
    """One computational layer read from a dlib ``.dat`` file.

    Args:
        kind: dlib's type tag, e.g. ``"con"``, ``"affine"``, ``"relu"``, ``"max_pool"``,
            ``"avg_pool"``, ``"add_prev"``, ``"fc"``, ``"input_rgb_image_sized"``.
        attrs: scalar settings (filter counts, kernel sizes, strides, paddings, means).
        params: the layer's float32 parameters in dlib's layout (``None`` if it has none).
    """

    kind: str
    attrs: dict
    params: "np.ndarray | None" = None


class _Reader:
    def __init__(self, data: bytes, path: str):
        self.data = data
        self.pos = 0
        self.path = path

    def fail(self, what):
        raise ValueError(f"{self.path}: not a dlib DNN file this reader understands "
                         f"({what} at byte {self.pos}).")

    def int(self):
        if self.pos >= len(self.data):
            self.fail("unexpected end of file")
        head = self.data[self.pos]
        size, negative = head & 0x0F, bool(head & 0x80)
        if size > 8:
            self.fail(f"integer of {size} bytes")
        raw = self.data[self.pos + 1:self.pos + 1 + size]
        self.pos += 1 + size
        value = int.from_bytes(raw, "little")
        return -value if negative else value

    def peek_str(self):
        pos = self.pos
        try:
            n = self.int()
            if n <= 0 or n > 64:
                return None
            s = self.data[self.pos:self.pos + n]
            return s.decode("ascii") if s.isascii() else None
        except (ValueError, UnicodeDecodeError):
            return None
        finally:
            self.pos = pos

    def str(self):
        n = self.int()
        s = self.data[self.pos:self.pos + n]
        self.pos += n
        try:
            return s.decode("ascii")
        except UnicodeDecodeError:
            self.fail("a non-text layer name")

    def bool(self):
        c = self.data[self.pos:self.pos + 1]
        self.pos += 1
        if c not in (b"0", b"1"):
            self.fail(f"bool byte {c!r}")
        return c == b"1"

    def float(self):
        mantissa = self.int()
        exponent = self.int()
        return float(mantissa) * 2.0 ** exponent

    def tensor(self):
        version = self.int()
        if version != 2:
            self.fail(f"tensor version {version} (expected 2)")
        shape = tuple(self.int() for _ in range(4))
        count = int(np.prod(shape))
        end = self.pos + 4 * count
        if end > len(self.data):
            self.fail("truncated tensor")
        values = np.frombuffer(self.data, dtype="<f4", count=count, offset=self.pos)
        self.pos = end
        return values.reshape(shape).astype(np.float32)

    def alias_tensor(self):
        version = self.int()
        if version != 1:
            self.fail(f"alias_tensor version {version} (expected 1)")
        return tuple(self.int() for _ in range(4))


def _read_details(r: _Reader, name: str) -> DlibLayer:
    if name in ("con_4", "con_5", "con_6"):
        params = r.tensor().reshape(-1)
        attrs = dict(num_filters=r.int(), nr=r.int(), nc=r.int(), stride_y=r.int(),
                     stride_x=r.int(), padding_y=r.int(), padding_x=r.int())
        filters = r.alias_tensor()
        r.alias_tensor()  # biases
        for _ in range(4):  # learning-rate / weight-decay multipliers
            r.float()
        attrs["use_bias"] = r.bool() if name in ("con_5", "con_6") else True
        if name == "con_6":
            attrs["use_relu"] = r.bool()
        attrs["filters_shape"] = filters
        return DlibLayer("con", attrs, params)
    if name == "affine_":
        params = r.tensor().reshape(-1)
        gamma = r.alias_tensor()
        r.alias_tensor()
        mode = r.int()
        return DlibLayer("affine", dict(mode=mode, channels=int(np.prod(gamma))), params)
    if name == "relu_":
        return DlibLayer("relu", {})
    if name == "add_prev_":
        return DlibLayer("add_prev", {})
    if name in ("max_pool_2", "avg_pool_2"):
        attrs = dict(nr=r.int(), nc=r.int(), stride_y=r.int(), stride_x=r.int(),
                     padding_y=r.int(), padding_x=r.int())
        return DlibLayer(name[:-2], attrs)
    if name == "fc_2":
        num_outputs, num_inputs = r.int(), r.int()
        params = r.tensor().reshape(-1)
        r.alias_tensor()
        r.alias_tensor()
        bias_mode = r.int()
        for _ in range(4):
            r.float()
        return DlibLayer("fc", dict(num_outputs=num_outputs, num_inputs=num_inputs,
                                    use_bias=bias_mode == 0), params)
    r.fail(f"unsupported layer type {name!r}")


def read_dlib_dnn(path: str | os.PathLike) -> list:
    """Read a dlib DNN ``.dat`` file into its ordered list of layers.

    Args:
        path: the ``.dat`` file, e.g. ``dlib_face_recognition_resnet_model_v1.dat``.

    Returns:
        A list of :class:`DlibLayer` in forward order, starting with the input layer
        (``attrs`` holds ``mean`` (RGB) and ``size``) and ending with the last layer
        below the loss.

    Raises:
        ValueError: the file is not a dlib DNN of the supported layer types.
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        r = _Reader(f.read(), path)
    r.int()  # add_loss_layer version
    loss = r.str()
    if not loss.startswith("loss_metric_"):
        r.fail(f"loss layer {loss!r} (expected loss_metric_*)")
    r.float()  # margin
    r.float()  # distance threshold
    # Wrapper versions (add_layer / add_tag_layer / add_skip_layer) come next, one per
    # wrapper, until the input layer's name.
    while r.peek_str() not in _INPUT_LAYERS:
        if r.pos >= len(r.data) or r.int() not in (1, 2, 3):
            r.fail("an unexpected layer-wrapper version")
    input_name = r.str()
    mean = [r.float() for _ in range(3)]
    attrs = dict(mean=tuple(mean))
    if input_name == "input_rgb_image_sized":
        attrs["size"] = (r.int(), r.int())
    layers = [DlibLayer(input_name, attrs)]
    while r.pos < len(r.data):
        layers.append(_read_details(r, r.str()))
        for _ in range(3):  # setup-called / gradient-stale / output-disabled flags
            r.bool()
        for _ in range(3):  # x_grad, cached_output, params_grad (or grad_final)
            r.tensor()
        if len(layers) == 2:
            # The layer that holds the input (add_layer version 3) also stores the
            # sample expansion factor.
            r.int()
    return layers
