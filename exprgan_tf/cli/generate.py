"""Change the facial expression of a face in a photo.

The face is detected (MTCNN; ``pip install mtcnn``) or given with ``--face-box``,
aligned and cropped the way the training faces were, edited, and blended back into the
photo: the output has the photo's size and every pixel outside the face is unchanged.

Examples:
    python scripts/generate.py --image me.jpg --expression happiness --intensity 0.8
    python scripts/generate.py --image me.jpg --expression all --sweep 3    # 6 x 3 grid
    python scripts/generate.py --image group.jpg --expression surprise --faces all
    python scripts/generate.py --image me.jpg --expression fear --face-box 120,80,200,240

Expressions: anger, disgust, fear, happiness, sadness, surprise (or 0-5; prefixes work),
or ``all``. One expression at one intensity writes the edited photo; ``all`` or several
intensities write a grid of the face region: one row per intensity (labelled on the
left), the input first and then one column per expression (labelled on top).

Exit status: 0 on success, 1 when the photo cannot be edited (not an image, no face,
face too small) or no model is found, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

from exprgan_tf.config import EXPRESSIONS


def _intensities(text):
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number or comma-separated numbers: {text!r}")
    if not values or any(not 0.0 <= v <= 1.0 for v in values):
        raise argparse.ArgumentTypeError(f"intensities must be in [0, 1]; got {text!r}")
    return values


def _box(text):
    try:
        x, y, w, h = (int(round(float(v))) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected X,Y,W,H in pixels; got {text!r}")
    if w <= 0 or h <= 0 or x < 0 or y < 0:
        raise argparse.ArgumentTypeError(f"X, Y must be >= 0 and W, H > 0; got {text!r}")
    return x, y, w, h


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description="Change the facial expression of a face in a photo.",
        epilog="Expressions: " + ", ".join(f"{i}={e}" for i, e in enumerate(EXPRESSIONS)))
    p.add_argument("--image", required=True, help="the photo (JPEG, PNG, ...) of any size")
    p.add_argument("--expression", default="all",
                   help="target expression name or index, or 'all' (default: all)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--intensity", type=_intensities, default=None,
                   help="intensity in [0, 1], or a comma-separated list (default: 1.0)")
    g.add_argument("--sweep", type=int, default=None, metavar="N",
                   help="N intensities evenly spaced over [0, 1] (N >= 2)")
    p.add_argument("--checkpoint", default=None,
                   help="training run directory, .keras or .npz file, or "
                        "pretrained:NAME (default: $EXPRGAN_TF_CHECKPOINT, else the "
                        "shipped pretrained model)")
    p.add_argument("--output", "-o", default=None,
                   help="output file (default: <image name>_<expression>.png, or "
                        "<image name>_grid.png for grids, in the current directory)")
    p.add_argument("--faces", choices=("largest", "all"), default="largest",
                   help="with several faces: edit the largest (default) or each")
    p.add_argument("--face-box", type=_box, default=None, metavar="X,Y,W,H",
                   help="the face box in pixels; skips detection")
    p.add_argument("--crop", choices=("eyes", "box"), default="eyes",
                   help="crop layout: 'eyes' places the eyes where the built-in training "
                        "faces have them (default; --face-box uses 'box'), 'box' crops "
                        "around the face box like data.detect.FaceCropper")
    p.add_argument("--margin", type=float, default=0.25,
                   help="'box' crops: border per side as a fraction of the face box "
                        "(default 0.25)")
    p.add_argument("--min-face-size", type=int, default=32,
                   help="refuse faces smaller than this many pixels (default 32)")
    p.add_argument("--min-confidence", type=float, default=0.9,
                   help="face detector score threshold (default 0.9)")
    p.add_argument("--no-align", action="store_true",
                   help="do not rotate the crop to level the eyes")
    p.add_argument("--cell-size", type=int, default=160, help="grid cell size in pixels")
    args = p.parse_args(argv)
    if args.sweep is not None and args.sweep < 2:
        p.error(f"--sweep needs N >= 2; got {args.sweep}")
    if args.expression.strip().lower() == "all":
        args.expressions = list(range(len(EXPRESSIONS)))
    else:
        from exprgan_tf.config import expression_index
        try:
            args.expressions = [expression_index(args.expression)]
        except ValueError:
            p.error(f"unknown expression {args.expression!r}; choose one of "
                    f"{', '.join(EXPRESSIONS)} (or 0-5), or 'all'")
    if args.sweep is not None:
        args.intensities = [float(v) for v in np.linspace(0.0, 1.0, args.sweep)]
    else:
        args.intensities = args.intensity or [1.0]
    return args


LABEL_HEIGHT, LABEL_WIDTH = 18, 48


def _grid_image(photo, results, faces, tool, args):
    """Face regions in a grid: a header of expression names, a column of intensities."""
    from exprgan_tf.visualize import labelled_grid

    top, left, bottom, right = tool.face_region(photo.shape, faces[0])
    n_int = len(args.intensities)
    rows = []
    for i in range(n_int):
        row = [photo[top:bottom, left:right]]
        for k in range(len(args.expressions)):
            row.append(results[k * n_int + i][top:bottom, left:right])
        rows.append(row)
    return labelled_grid(rows, [f"{s:g}" for s in args.intensities],
                         ["input"] + [EXPRESSIONS[e] for e in args.expressions],
                         cell=args.cell_size, label_width=LABEL_WIDTH,
                         label_height=LABEL_HEIGHT, corner="intensity")


def main(argv=None) -> int:
    args = parse_args(argv)
    from PIL import Image

    from exprgan_tf.editor_io import find_checkpoint, load_editor
    from exprgan_tf.photo import Face, PhotoEditor, PhotoError, read_photo

    stem = os.path.splitext(os.path.basename(args.image))[0]
    try:
        photo = read_photo(args.image)
    except PhotoError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if args.face_box:
        x, y, w, h = args.face_box
        height, width = photo.shape[:2]
        if x + w > width or y + h > height:
            print(f"error: --face-box {x},{y},{w},{h} reaches x={x + w}, y={y + h}, outside "
                  f"the {width}x{height} photo {args.image}; give a box inside it "
                  "(X + W <= width, Y + H <= height).", file=sys.stderr)
            return 2
    checkpoint = args.checkpoint or find_checkpoint()
    try:
        editor = load_editor(checkpoint)   # None: the error says where it looked
    except (FileNotFoundError, ValueError) as e:
        print(f"error: cannot load the model: {e}", file=sys.stderr)
        return 1

    tool = PhotoEditor(editor, crop=args.crop, margin=args.margin, min_confidence=args.min_confidence,
                       min_face_size=args.min_face_size, align=not args.no_align)
    faces = [Face(args.face_box)] if args.face_box else args.faces
    settings = [(e, s) for e in args.expressions for s in args.intensities]
    try:
        results, edited = tool.edit_many(photo, settings, faces=faces, name=args.image)
    except ImportError as e:
        print(f"error: {e} Or give the face with --face-box X,Y,W,H.", file=sys.stderr)
        return 1
    except PhotoError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if not args.face_box and args.faces == "largest" and tool.num_detected > 1:
        print(f"note: {tool.num_detected} faces found; edited the largest "
              "(--faces all edits each).", file=sys.stderr)

    single = len(settings) == 1
    if args.output:
        output = args.output
    elif single:
        output = f"{stem}_{EXPRESSIONS[args.expressions[0]]}.png"
    else:
        output = f"{stem}_grid.png"
    image = results[0] if single else _grid_image(photo, results, edited, tool, args)
    try:
        Image.fromarray(image).save(output)
    except (OSError, ValueError) as e:
        print(f"error: cannot write {output}: {e}", file=sys.stderr)
        return 1
    boxes = "; ".join(f"x={f.box[0]} y={f.box[1]} w={f.box[2]} h={f.box[3]}" for f in edited)
    what = (f"{EXPRESSIONS[args.expressions[0]]} at {args.intensities[0]:g}" if single else
            f"grid of {len(args.intensities)} intensities x {len(args.expressions)} "
            "expressions")
    print(f"{output}: {what}; {len(edited)} face(s) edited ({boxes}); model {checkpoint}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
