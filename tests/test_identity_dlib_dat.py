"""The dlib .dat reader on a tiny network written here in dlib's serialisation format
(the real file is checked in the network test)."""

import struct

import numpy as np
import pytest

from exprgan_tf.identity import dlib_resnet as dr
from exprgan_tf.identity.dlib_dat import read_dlib_dnn


def _int(v):
    raw = abs(v).to_bytes(8, "little").rstrip(b"\0") or b"\0"
    return bytes([len(raw) | (0x80 if v < 0 else 0)]) + raw


def _str(s):
    return _int(len(s)) + s.encode()


def _float(x):
    mantissa, exponent = float(x).as_integer_ratio()
    exp = -(exponent.bit_length() - 1)  # denominator is a power of two
    return _int(mantissa) + _int(exp)


def _tensor(values, shape):
    return _int(2) + b"".join(_int(d) for d in shape) + struct.pack(f"<{len(values)}f", *values)


def _alias(shape):
    return _int(1) + b"".join(_int(d) for d in shape)


def _empty():
    return _tensor([], (0, 0, 0, 0))


def _tail(first=False):
    return b"110" + _empty() * 3 + (_int(1) if first else b"")


def tiny_network_bytes(conv_w, conv_b, fc_w):
    """loss_metric<fc_no_bias<2, relu<con<2, 1x1, input_rgb_image_sized<4>>>>>."""
    out = _int(1) + _str("loss_metric_2") + _float(0.04) + _float(0.6)
    out += _int(2) + _int(2) + _int(3)  # add_layer wrappers: fc, relu, con (input level)
    out += _str("input_rgb_image_sized") + _float(122.75) + _float(117.0) + _float(104.25)
    out += _int(4) + _int(4)
    out += _str("con_4") + _tensor(list(conv_w) + list(conv_b), (8, 1, 1, 1))
    out += _int(2) + _int(1) + _int(1) + _int(1) + _int(1) + _int(0) + _int(0)
    out += _alias((2, 3, 1, 1)) + _alias((1, 2, 1, 1)) + _float(1) * 3 + _float(0)
    out += _tail(first=True)
    out += _str("relu_") + _tail()
    out += _str("fc_2") + _int(2) + _int(2) + _tensor(list(fc_w), (2, 2, 1, 1))
    out += _alias((2, 2, 1, 1)) + _alias((0, 0, 0, 0)) + _int(1) + _float(1) * 3 + _float(0)
    out += _tail()
    return out


def test_reader_lists_layers_in_forward_order(tmp_path):
    conv_w = np.arange(6, dtype=np.float32) / 8  # [filters=2, k=3]
    path = tmp_path / "tiny.dat"
    path.write_bytes(tiny_network_bytes(conv_w, [0.5, -0.5], [1.0, 2.0, 3.0, 4.0]))
    layers = read_dlib_dnn(path)
    assert [l.kind for l in layers] == ["input_rgb_image_sized", "con", "relu", "fc"]
    assert layers[0].attrs == {"mean": (122.75, 117.0, 104.25), "size": (4, 4)}
    con = layers[1]
    assert con.attrs["filters_shape"] == (2, 3, 1, 1) and con.attrs["stride_y"] == 1
    np.testing.assert_array_equal(con.params, np.r_[conv_w, 0.5, -0.5])
    assert layers[3].attrs == {"num_outputs": 2, "num_inputs": 2, "use_bias": False}
    np.testing.assert_array_equal(layers[3].params, [1.0, 2.0, 3.0, 4.0])


def test_reader_and_converter_reject_other_files(tmp_path):
    good = tiny_network_bytes(np.zeros(6), [0, 0], [0, 0, 0, 0])
    truncated = tmp_path / "truncated.dat"
    truncated.write_bytes(good[:-40])
    with pytest.raises(ValueError, match=r"truncated\.dat: not a dlib DNN file"):
        read_dlib_dnn(truncated)
    other = tmp_path / "other.dat"
    other.write_bytes(_int(1) + _str("loss_mmod_") + b"\0" * 16)
    with pytest.raises(ValueError, match="loss layer 'loss_mmod_'"):
        read_dlib_dnn(other)
    tiny = tmp_path / "tiny.dat"
    tiny.write_bytes(good)
    with pytest.raises(ValueError, match=r"tiny\.dat: expected dlib's face-recognition ResNet"):
        dr.weights_from_dat(tiny)
    with pytest.raises(FileNotFoundError, match="fetch_weights.py dlib_resnet"):
        dr.load_dlib_weights(dr.dlib_resnet(), tmp_path / "absent.dat")
