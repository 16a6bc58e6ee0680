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


def add_edit_time_arguments(parser, verb: str = "edit") -> None:
    """The flags of the editor's edit-time settings
    (:data:`exprgan_tf.editor.EDIT_TIME_SETTINGS`): ``--edit-regions P``,
    ``--paste-gate TAU``, ``--intensity-scale K``, each "``verb`` with that setting
    instead of the model's own"; :func:`edit_time_settings` reads them back."""
    what = {"edit_regions": ("P", "G's face pasted into the input through the map of "
                                  "where expressions change at that percentile; 0: G's "
                                  "whole face"),
            "paste_gate": ("TAU", "paste only where the code changes G's drawing; 0: "
                                  "through the whole map"),
            "intensity_scale": ("K", "a requested intensity s drawn with G's code at K * s")}
    for name, (metavar, meaning) in what.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=float, default=None,
                            metavar=metavar,
                            help=f"{verb} with model.{name}={metavar} ({meaning}) instead "
                                 "of the model's own setting")


def edit_time_settings(args) -> dict:
    """``{setting: value}`` of the :func:`add_edit_time_arguments` flags given."""
    from exprgan_tf.editor import EDIT_TIME_SETTINGS

    return {k: getattr(args, k) for k in EDIT_TIME_SETTINGS if getattr(args, k) is not None}

