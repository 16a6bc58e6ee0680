"""The command-line tools, one module each with ``main(argv=None) -> exit status``.

Installed as console commands (``setup.cfg``, ``[options.entry_points]``); in a source
checkout ``python scripts/<module>.py`` runs the same ``main``:

=========================  ==================================  ==============================
command                    module                              what
=========================  ==================================  ==============================
``exprgan-train``          :mod:`exprgan_tf.cli.train`         train one stage of a run
``exprgan-generate``       :mod:`exprgan_tf.cli.generate`      edit the face in a photo
``exprgan-export``         :mod:`exprgan_tf.cli.export`        SavedModel / compact ``.npz``
``exprgan-evaluate``       :mod:`exprgan_tf.cli.evaluate`      the paper's Table I
``exprgan-prepare-data``   :mod:`exprgan_tf.cli.prepare_data`  write the built-in face set
``exprgan-fetch-weights``  :mod:`exprgan_tf.cli.fetch_weights` identity-network weights
=========================  ==================================  ==============================
"""
