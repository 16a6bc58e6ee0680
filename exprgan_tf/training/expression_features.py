"""The frozen expression network behind ``L_expr_pair`` (``losses.expression``).

The paired L1 compares G's edit with the partner face pixel by pixel, so a stroke G
draws a pixel away from where the partner has it costs twice what leaving it out
costs, and a G unsure of a line's place is paid to draw it faint or not at all (recipe
log, reports 163 and 187). ``L_expr_pair`` compares the two in the hidden layer of a
frozen expression classifier instead, where what tells one expression and intensity
from another (a smile's wide mouth and cheek arcs against disgust's raised upper lip)
is what the features were trained to carry, and a pixel's shift or the sensor noise
barely count. On 96 training faces of the built-in set, in units of that layer's mean
activation (``benchmarks/expression_features.py``): a capture's sensor noise 0.14 and
the whole face a pixel lower 0.18, against 0.62 for a smile turned into the same
face's disgust and 0.67 for a smile turned into half a smile. The pixel L1 ranks them
the other way round (0.0107 and 0.0194 against 0.0073 and 0.0037).

The network is the Fig. 4 architecture at other widths (:data:`EXPRESSION_NETWORK`:
24-48-96-96 filters, dense 128, another seed) trained like the judge
(:func:`~exprgan_tf.evaluation.classifier.train_judge`) on the built-in set's training
subjects only (report 191's copy: 96.5% on them, 97.2% on the held-out ones), so it
is not the judge that scores the edits. Each compared map is divided by its mean over
the training faces. ``"builtin-grey"`` trains the same network on the faces in grey and
shows it G's faces in grey, so a colour tint cannot stand in for an expression's
shapes (report 191's colour network let G carry smiles partly in a green tint).

Example:
    >>> import numpy as np
    >>> from exprgan_tf.evaluation.classifier import build_expression_classifier
    >>> net = build_expression_classifier(64, filters=(8, 8, 8, 8), dense_units=8, seed=0)
    >>> faces = np.random.default_rng(0).uniform(0, 255, (4, 64, 64, 3)).astype("uint8")
    >>> features = expression_feature_model(net, ("relu1", "relu2"), faces)
    >>> [tuple(m.shape) for m in features(np.zeros((2, 64, 64, 3), "float32"))]
    [(2, 32, 32, 8), (2, 16, 16, 8)]
"""

from __future__ import annotations

import os

import numpy as np

EXPRESSION_NETWORK = dict(filters=(24, 48, 96, 96), dense_units=128, seed=1, layers=("dense",))
"""The expression network ``training.expression_network="builtin"`` trains (widths and
seed) and the layers ``L_expr_pair`` compares (the hidden dense layer, 128 units)."""

FILE_NAME = "expression_network.keras"
"""Where in a run directory the built-in expression network is kept."""

BUILTIN = {"builtin": FILE_NAME, "builtin-grey": "expression_network_grey.keras"}
"""The built-in networks of ``training.expression_network``: their files in a run
directory (``"builtin-grey"`` reads faces in grey, :func:`~exprgan_tf.preprocessing.grey`)."""


def expression_feature_model(classifier, layers, reference_images, grey: bool = False):
    """A frozen ``keras.Model``: G's ``[-1, 1]`` images ``[N, S, S, 3]`` -> the list of
    ``classifier``'s ``layers`` outputs, each divided by its mean over the uint8
    ``reference_images`` (so each is about 1 on real faces).

    ``classifier`` takes 0-255 images (:func:`~exprgan_tf.evaluation.classifier.
    build_expression_classifier`); it runs in inference mode. ``grey``: it is shown the
    images' luma in all three channels (:data:`~exprgan_tf.preprocessing.LUMA`), the
    reference faces too."""
    import keras

    from exprgan_tf.preprocessing import LUMA, grey as to_grey

    missing = [n for n in layers if n not in {l.name for l in classifier.layers}]
    if missing or not layers:
        raise ValueError(f"layers must name layers of the expression network "
                         f"({[l.name for l in classifier.layers]}). Received: {list(layers)}")
    inner = keras.Model(classifier.inputs, [classifier.get_layer(n).output for n in layers])
    inner.trainable = False
    reference = np.asarray(to_grey(reference_images) if grey else reference_images,
                           np.float32)
    maps = inner.predict(reference, batch_size=256, verbose=0)
    maps = maps if isinstance(maps, list) else [maps]
    scales = [float(np.mean(m)) for m in maps]
    if not all(np.isfinite(s) and s > 0 for s in scales):
        raise ValueError(f"The expression network's layers {list(layers)} are all zero on "
                         f"the reference faces (mean activations {scales}).")
    size = classifier.input_shape[1]
    images = keras.Input((size, size, 3), name="image")
    shown = (images + 1.0) * 127.5
    if grey:
        luma = keras.ops.sum(shown * keras.ops.convert_to_tensor(LUMA, shown.dtype), -1,
                             keepdims=True)
        shown = keras.ops.repeat(luma, 3, axis=-1)
    outputs = inner(shown, training=False)
    outputs = outputs if isinstance(outputs, list) else [outputs]
    outputs = [o * (1.0 / s) for o, s in zip(outputs, scales)]
    model = keras.Model(images, outputs, name="expression_features")
    model.trainable = False
    return model


def build_expression_features(network: str, run_dir, image_size: int, reference=None,
                              log=print):
    """The frozen feature model of ``training.expression_network``.

    ``"builtin"``: the network in ``run_dir``/:data:`FILE_NAME`, trained there first
    (:data:`EXPRESSION_NETWORK`, the judge's recipe, the built-in set's training
    subjects; a few minutes on a CPU) when it is missing, so every stage of a run and
    a resumed run use the same one. ``"builtin-grey"``: the same in its own file
    (:data:`BUILTIN`), trained on the faces in grey and shown faces in grey. A path: a
    classifier saved by :func:`~exprgan_tf.evaluation.classifier.save_classifier`
    (0-255 images in, its :data:`EXPRESSION_NETWORK` layers compared). The maps are
    normalised on the uint8 faces ``reference`` (at most 2048 of them; ``None``: the
    built-in training faces)."""
    import keras

    from exprgan_tf.evaluation.classifier import judge_training_faces, train_judge
    from exprgan_tf.preprocessing import grey as to_grey

    images = None      # the built-in training faces, loaded only when needed
    grey = network == "builtin-grey"
    if network in BUILTIN:
        path = os.path.join(os.fspath(run_dir), BUILTIN[network])
        if os.path.isfile(path):
            classifier = keras.saving.load_model(path, compile=False)
        else:
            images, labels = judge_training_faces(image_size)
            log(f"Training the expression network for L_expr_pair ({len(images)} training "
                f"faces{', in grey' if grey else ''}, {EXPRESSION_NETWORK}) -> {path}")
            spec = {k: v for k, v in EXPRESSION_NETWORK.items() if k != "layers"}
            classifier = train_judge(to_grey(images) if grey else images, labels,
                                     save_path=path, log=log, name="expression network",
                                     **spec)
    elif os.path.isfile(network):
        classifier = keras.saving.load_model(network, compile=False)
    else:
        raise FileNotFoundError(f"training.expression_network={network!r}: no such file (give "
                                "'builtin', 'builtin-grey' or the path of a .keras "
                                "expression classifier).")
    if classifier.input_shape[1] != image_size:
        raise ValueError(f"The expression network takes {classifier.input_shape[1]}x"
                         f"{classifier.input_shape[1]} images, the model {image_size}x"
                         f"{image_size}.")
    if reference is None:
        reference = images if images is not None else judge_training_faces(image_size)[0]
    reference = np.asarray(reference)
    log(f"L_expr_pair: the paired decode against its partner in the {network} expression "
        f"network's layers {list(EXPRESSION_NETWORK['layers'])}.")
    return expression_feature_model(classifier, EXPRESSION_NETWORK["layers"],
                                    reference[:2048], grey=grey)
