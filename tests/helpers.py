"""What many test modules share: the tiny configuration and data, and one check every
custom Keras layer goes through.

Test functions get ``tiny_config`` and ``tiny_data`` as fixtures (``conftest.py``); code
that runs outside pytest (a subprocess script) imports them from here.
"""

import numpy as np

import keras
from exprgan_tf.config import get_preset

# 32x32 faces and a few filters per layer: every network of a preset in seconds.
TINY = ["model.image_size=32", "model.encoder_filters=[8,8,16,16,16]",
        "model.decoder_start_filters=16", "model.decoder_filters=[16,16,8,8,8]",
        "model.decoder_final_filters=4", "model.dimg_filters=[4,8,8,8]", "model.dimg_dense=16",
        "model.q_shared_units=16", "model.q_head_units=8", "training.sample_every=100",
        # the paired term and the expression regions need subjects, which tiny_data has
        # not; they have their own tests
        "training.stage2.losses.paired=0", "training.stage3.losses.paired=0",
        "training.expression_regions=0",
        # the weight average has its own test; here the editor is the trained networks
        "training.ema_momentum=0",
        # so is the paste of G's face into the input: here an edit is G's whole face
        "model.edit_regions=0",
        # and the -small recipe's partners from the built-in set's subjects and
        # intensities
        "training.codes=sampled", "training.pair_pose=clean", "training.pair_change=0",
        "training.pair_intensities=[]", "training.stage3.pair_intensities=null",
        "training.stage3.pair_shares=null"]

# The -small recipe's G draws into a hole of the face it sees and reads the code at its
# output; these settings give the plain G of the original instead, which reads z and
# the code alone from its first layer on (each option has its own tests).
PLAIN_G = ["model.decoder_sees_face=false", "model.decoder_face_hole=false",
           "model.decoder_hole_blur=0", "model.decoder_hole_blur_above=1",
           "model.decoder_hole_blur_below=0", "model.code_at=layers"]
TINY += PLAIN_G


def plain_small(preset="proposed-small", extra=()):
    """A ``-small`` preset at its own size with the plain G (:data:`PLAIN_G`, 16 channels
    in its last layer) and the overrides ``extra`` on top."""
    return get_preset(preset).override(PLAIN_G + ["model.decoder_final_filters=16"]
                                       + list(extra))


def tiny_config(preset="proposed-small", extra=()):
    """``preset`` at the tiny size, with the overrides ``extra`` on top."""
    return get_preset(preset).override(TINY + list(extra))


def tiny_data(n=24, seed=0):
    """``(images uint8 [n, 32, 32, 3], labels [n])``: smooth images (a colour plus a ramp
    per image), so that L1 can go down within a few steps."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 1, 32)[None, :, None, None] * rng.uniform(-80, 80, (n, 1, 1, 3))
    images = rng.uniform(60, 190, (n, 1, 1, 3)) + ramp + np.zeros((n, 32, 32, 3))
    return images.round().clip(0, 255).astype(np.uint8), rng.integers(0, 6, n)


def weights_of(trainer):
    """Copies of every network's weights, by network name."""
    return {name: [w.numpy().copy() for w in net.weights]
            for name, net in trainer.nets.as_dict().items()}


def assert_same_weights(expected, got):
    """Every network's weights equal, bit for bit (dicts of :func:`weights_of`)."""
    for name in sorted(expected):
        assert len(expected[name]) == len(got[name]), name
        for a, b in zip(expected[name], got[name]):
            np.testing.assert_array_equal(a, b, err_msg=name)


def quiet(*args):
    """A ``log`` that drops its messages."""


def check_layer(layer, inputs, expected_shape, tmp_path):
    """The checks every custom layer passes (as keras-hub's ``run_layer_test``):

    - the output has ``expected_shape`` and ``compute_output_shape`` agrees (called
      with Keras 3's keyword ``input_shape=``, as ``summary()`` does);
    - ``from_config(get_config())`` builds a layer that computes the same output
      with the same weights;
    - a functional model holding it saves to ``.keras`` and loads with
      ``safe_mode=True`` (no Lambda, the class registered) to the same output.

    Args:
        layer: the layer, not yet built.
        inputs: one array or a list of arrays (batch included).
        expected_shape: the output shape.
        tmp_path: a folder for the ``.keras`` file.

    Returns:
        The layer's output, for value checks of the caller's own.
    """
    many = isinstance(inputs, (list, tuple))
    out = np.asarray(layer(inputs))
    assert out.shape == tuple(expected_shape)
    shapes = [tuple(x.shape) for x in inputs] if many else tuple(inputs.shape)
    assert tuple(layer.compute_output_shape(input_shape=shapes)) == tuple(expected_shape)

    clone = type(layer).from_config(layer.get_config())
    clone(inputs)
    clone.set_weights(layer.get_weights())
    assert clone.get_config() == layer.get_config()
    np.testing.assert_array_equal(np.asarray(clone(inputs)), out)

    symbolic = [keras.Input(x.shape[1:], dtype=x.dtype) for x in inputs] if many else \
        keras.Input(inputs.shape[1:], dtype=inputs.dtype)
    model = keras.Model(symbolic, type(layer).from_config(layer.get_config())(symbolic))
    model.layers[-1].set_weights(layer.get_weights())
    path = tmp_path / f"{layer.name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert type(loaded.layers[-1]) is type(layer)
    np.testing.assert_array_equal(np.asarray(loaded(inputs)), out)
    return out


def load_benchmark(name):
    """The script ``benchmarks/<name>.py`` as a module (its ``main`` not run), for tests
    of a benchmark's own logic. Loaded once per process."""
    import importlib.util
    import os
    import sys

    key = f"benchmark_{name}"
    if key not in sys.modules:
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir,
                            "benchmarks", f"{name}.py")
        spec = importlib.util.spec_from_file_location(key, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module
        spec.loader.exec_module(module)
    return sys.modules[key]
