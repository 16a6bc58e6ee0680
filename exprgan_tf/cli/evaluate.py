"""Evaluate trained models the way the paper's Table I does, plus identity and truth.

    python scripts/evaluate.py --checkpoint runs/exprgan-small \
        --checkpoint runs/proposed_no_unsharp-small --checkpoint runs/proposed-small

writes to ``--out`` (default ``evaluation/``):

    table1.md, table1.csv      Table I, a column per model
    details.json               every number (per-class accuracy, PCA curve, ...)
    fig6_<model>.png           one test subject: truth and the model in six expressions
    fig7_<model>.png           every test subject: input + six expressions
    intensity_<model>.png      one subject, each expression at intensity 0 ... 1
    fig8_<model>.png           the run's loss curves
    classifier.keras           the expression classifier (reuse with --classifier)

FID needs ImageNet InceptionV3 weights (downloaded by Keras where the internet is
reachable); offline give --fid-weights FILE, or --no-fid. See docs/evaluation.md.
"""

from __future__ import annotations

import argparse
import os
import sys


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--checkpoint", action="append", required=True, metavar="RUN_DIR",
                   help="a run directory written by scripts/train.py (repeat for more "
                        "models; one table column each)")
    p.add_argument("--out", default="evaluation", help="output folder")
    p.add_argument("--data", default=None,
                   help="dataset folder; default: the built-in face set")
    p.add_argument("--classifier", default=None,
                   help="a saved expression classifier (.keras) to reuse; if the file does "
                        "not exist it is trained and saved there")
    p.add_argument("--classifier-epochs", type=int, default=12)
    fid = p.add_mutually_exclusive_group()
    fid.add_argument("--fid-weights", default="imagenet",
                     help="'imagenet' (Keras cache or download), a local InceptionV3 no-top "
                          "weights file, or 'random' (tests; not a real FID)")
    fid.add_argument("--no-fid", action="store_true", help="skip the FID row")
    p.add_argument("--identity", default="dlib_resnet",
                   choices=("dlib_resnet", "vgg_face", "none"),
                   help="identity network for the identity-similarity rows (skipped with a "
                        "note when its weights are missing)")
    p.add_argument("--identity-weights", default=None, help="its weights file")
    p.add_argument("--pca-persons", type=int, default=6)
    p.add_argument("--grid-subject", type=int, default=0,
                   help="index of the test subject in Fig. 6 and the intensity sweep")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    for run_dir in args.checkpoint:
        if not os.path.isdir(run_dir):
            print(f"error: {run_dir} is not a directory (expected a run directory written by "
                  "scripts/train.py)", file=sys.stderr)
            return 2
    from exprgan_tf.evaluation.fid import InceptionWeightsError
    from exprgan_tf.evaluation.protocol import EvaluationOptions, evaluate

    options = EvaluationOptions(
        data=args.data, out_dir=args.out, classifier=args.classifier,
        classifier_epochs=args.classifier_epochs,
        fid_weights=None if args.no_fid else args.fid_weights,
        identity_network=args.identity, identity_weights=args.identity_weights,
        pca_persons=args.pca_persons, grid_subject=args.grid_subject,
        batch_size=args.batch_size, seed=args.seed)
    try:
        result = evaluate(args.checkpoint, options)
    except InceptionWeightsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as e:  # FileNotFoundError, NotADirectoryError, ...
        print(f"error: {e}", file=sys.stderr)
        return 2
    from exprgan_tf.evaluation.table import markdown_table
    print()
    print(markdown_table(result["columns"], result["rows"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
