"""Export an expression editor as a SavedModel that TensorFlow Serving serves.

Writes ``<export-dir>/<version>/`` (TF Serving's layout; the version defaults to one
more than the newest present) with the signatures ``serving_default`` (uint8 images,
int32 expression, float32 intensity -> uint8 images) and ``edit_bytes`` (JPEG/PNG bytes
-> PNG bytes). See docs/serving.md.

``--compact FILE.npz`` also (or instead) writes the editor as one small file with
float16 weights (``exprgan_tf.editor_io.save_compact``; ``load_editor`` and
``generate.py --checkpoint`` read it) - how a pretrained model is shipped in
``checkpoints/`` within the size limit.

Examples:
    python scripts/export.py --export-dir exported/exprgan
    python scripts/export.py --checkpoint checkpoints/proposed-small --compact checkpoints/proposed-small.npz
    python scripts/export.py --checkpoint runs/proposed-small --export-dir exported/exprgan --version 3
    python scripts/export.py --checkpoint runs/proposed-small --paste-gate 0.03 --compact gated.npz
    docker run -p 8501:8501 -v $PWD/exported/exprgan:/models/exprgan \\
        -e MODEL_NAME=exprgan tensorflow/serving
"""

from __future__ import annotations

import argparse
import os
import sys


def parse_args(argv=None):
    from exprgan_tf.cli import add_edit_time_arguments

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", default=None,
                   help="training run directory, .keras or .npz file, or "
                        "pretrained:NAME (default: $EXPRGAN_TF_CHECKPOINT, else the "
                        "shipped pretrained model)")
    p.add_argument("--export-dir", default=None,
                   help="model base directory; the SavedModel goes to <export-dir>/<version>")
    p.add_argument("--compact", default=None, metavar="FILE.npz",
                   help="write the editor as one .npz file with float16 weights")
    p.add_argument("--version", type=int, default=None,
                   help="version number (default: newest present + 1)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing version")
    add_edit_time_arguments(p, "export")
    args = p.parse_args(argv)
    if not args.export_dir and not args.compact:
        p.error("give --export-dir (SavedModel), --compact FILE.npz, or both")
    if args.version is not None and args.version < 1:
        p.error(f"--version must be a positive integer; got {args.version}")
    return args


def _settings(editor) -> str:
    """``" (edit_regions=90, paste_gate=0.03)"``: the editor's edit-time settings that
    are on."""
    from exprgan_tf.editor import EDIT_TIME_SETTINGS

    on = [f"{k}={getattr(editor, k):g}" for k, off in EDIT_TIME_SETTINGS.items()
          if getattr(editor, k) != off]
    return f" ({', '.join(on)})" if on else ""


def main(argv=None) -> int:
    args = parse_args(argv)
    from exprgan_tf.cli import edit_time_settings
    from exprgan_tf.editor_io import find_checkpoint, load_editor, save_compact
    from exprgan_tf.serving.export import export_saved_model

    checkpoint = args.checkpoint or find_checkpoint()
    try:
        editor = load_editor(checkpoint)   # None: the error says where it looked
        settings = edit_time_settings(args)
        if settings:
            editor = editor.with_settings(**settings)
        if args.compact:
            if os.path.exists(args.compact) and not args.overwrite:
                raise FileExistsError(f"{args.compact} exists (--overwrite replaces it).")
            save_compact(editor, args.compact)
            mb = os.path.getsize(args.compact) / 1e6
            print(f"{args.compact}: editor of {checkpoint}{_settings(editor)}, float16 "
                  f"weights, {mb:.1f} MB")
        path = (export_saved_model(editor, args.export_dir, version=args.version,
                                   overwrite=args.overwrite) if args.export_dir else None)
    except (OSError, ValueError) as e:  # FileNotFoundError, NotADirectoryError, ...
        print(f"error: {e}", file=sys.stderr)
        return 1
    if path is None:
        return 0
    size = editor.image_size
    print(f"{path}: SavedModel of {checkpoint}{_settings(editor)} ({size}x{size} faces)\n"
          "  serving_default: images uint8 [N,H,W,3], expression int32 [N], "
          "intensity float32 [N] -> images uint8 [N,H,W,3]\n"
          "  edit_bytes:      image_bytes string [N] (JPEG/PNG), expression, intensity "
          "-> image_bytes string [N] (PNG)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
