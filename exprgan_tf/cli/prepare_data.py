"""Write the built-in face set to disk in the Oulu-CASIA layout.

The default is Oulu-sized: 80 subjects x 6 expressions x 3 peak frames at 128x128,
P001-P072 for training and P073-P080 for testing, lighting mixed (strong / weak / dark),
with a ``manifest.csv`` of subject, expression, intensity and lighting per file.

Example:
    python scripts/prepare_data.py --out data/faces
    python scripts/prepare_data.py --out data/faces64 --size 64 --num-subjects 200
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import time

from exprgan_tf.data.builtin import write_builtin
from exprgan_tf.data.faces import LIGHTINGS


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="output folder (must be empty or new)")
    p.add_argument("--size", type=int, default=128, help="image height and width")
    p.add_argument("--num-subjects", type=int, default=80)
    p.add_argument("--frames", type=int, default=3,
                   help="frames per expression: up to 3 are the peak frames (intensity "
                        "0.8, 0.9, 1.0); more span neutral to peak")
    p.add_argument("--seed", type=int, default=0, help="seed of the face set")
    p.add_argument("--lighting", default="mixed", choices=("mixed",) + LIGHTINGS)
    p.add_argument("--no-jitter", action="store_true",
                   help="clean renders: no pose jitter, no noise")
    p.add_argument("--test-fraction", type=float, default=0.1,
                   help="share of subjects (the last ones) held out for testing")
    p.add_argument("--format", default="png", choices=("png", "jpeg"))
    p.add_argument("--overwrite", action="store_true", help="write into a non-empty folder")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    start = time.time()
    try:
        rows = write_builtin(args.out, size=args.size, seed=args.seed,
                             num_subjects=args.num_subjects, frames=args.frames,
                             lighting=args.lighting, jitter=not args.no_jitter,
                             test_fraction=args.test_fraction, image_format=args.format,
                             overwrite=args.overwrite)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # an --out that cannot be created or written
        print(f"error: cannot write the face set to {args.out}: {e}", file=sys.stderr)
        return 2
    splits = collections.Counter(r["split"] for r in rows)
    subjects = {s: sorted({r["subject"] for r in rows if r["split"] == s}) for s in splits}
    print(f"Wrote {len(rows)} images to {args.out} in {time.time() - start:.1f} s")
    for s in ("train", "test"):
        if s in subjects:
            print(f"  {s}: {splits[s]} images, subjects {subjects[s][0]}-{subjects[s][-1]}")
    print(f"  manifest: {os.path.join(args.out, 'manifest.csv')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
