"""What the CPU offers TensorFlow, and oneDNN on by default on x86.

TensorFlow's x86 wheels carry two sets of CPU kernels for convolutions and matmuls:
Eigen's and oneDNN's. TensorFlow turns oneDNN on by itself only on CPUs with AVX-512
VNNI / BF16 or AMX; on AVX2 CPUs it stays off unless ``TF_ENABLE_ONEDNN_OPTS=1`` is set
before TensorFlow is imported, and the Eigen convolutions there made the training step
about 1.7x slower (issue 18). So ``import exprgan_tf`` (and every command of the package,
which imports it first) sets ``TF_ENABLE_ONEDNN_OPTS=1`` on x86 when:

- the variable is not set already: ``TF_ENABLE_ONEDNN_OPTS=0`` turns oneDNN off and is
  respected, as is an explicit ``1``;
- TensorFlow is not imported yet: TensorFlow reads the variable once, so changing it
  later would only make the environment lie about the running process.

oneDNN changes the order of floating-point sums, so results differ from Eigen's in the
last bits.

Nothing here imports TensorFlow.

Example:
    >>> flags = cpu_flags("flags : fpu avx2 avx512f avx512_bf16")
    >>> bfloat16_units(flags, environ={})    # no ONEDNN_MAX_CPU_ISA cap
    True
    >>> bfloat16_units(cpu_flags("flags : fpu avx2 fma"))
    False
"""

from __future__ import annotations

import os
import platform
import sys

ONEDNN_VARIABLE = "TF_ENABLE_ONEDNN_OPTS"
X86 = ("x86_64", "amd64", "i386", "i686", "x86")
# The flags the benchmarks record (Linux /proc/cpuinfo names).
REPORTED_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile",
                  "amx_bf16")
# oneDNN ISA caps (ONEDNN_MAX_CPU_ISA) below the first ISA with bfloat16 instructions.
_NO_BF16_ISAS = ("SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE",
                 "AVX512_CORE_VNNI")

#: True when ``import exprgan_tf`` set ``TF_ENABLE_ONEDNN_OPTS=1`` in this process.
onednn_set_by_package = False


def default_onednn(environ=None, modules=None, machine=None) -> bool:
    """Set ``TF_ENABLE_ONEDNN_OPTS=1`` on x86 unless it is set or TensorFlow is
    imported already (see the module docstring). Returns whether it set it.

    Args:
        environ: the environment to change (default ``os.environ``).
        modules: the imported modules (default ``sys.modules``).
        machine: ``platform.machine()`` (default: this machine's).
    """
    environ = os.environ if environ is None else environ
    modules = sys.modules if modules is None else modules
    machine = (platform.machine() if machine is None else machine).lower()
    if ONEDNN_VARIABLE in environ or "tensorflow" in modules or machine not in X86:
        return False
    environ[ONEDNN_VARIABLE] = "1"
    return True


def cpu_flags(cpuinfo: str | None = None) -> frozenset:
    """The flags of the first processor in ``/proc/cpuinfo`` (or of the text
    ``cpuinfo``); empty where there is no such file (macOS, Windows)."""
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
                cpuinfo = f.read()
        except OSError:
            return frozenset()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def bfloat16_units(flags, environ=None) -> bool:
    """Whether oneDNN can use bfloat16 instructions here: the CPU has ``avx512_bf16``
    or ``amx_bf16`` and ``ONEDNN_MAX_CPU_ISA`` does not cap oneDNN below them."""
    environ = os.environ if environ is None else environ
    cap = environ.get("ONEDNN_MAX_CPU_ISA", "").strip().upper()
    return bool({"avx512_bf16", "amx_bf16"} & set(flags)) and cap not in _NO_BF16_ISAS


def onednn_enabled():
    """Whether the running TensorFlow uses its oneDNN kernels (imports TensorFlow;
    ``None`` if this TensorFlow cannot tell)."""
    try:  # imports TensorFlow; the flag is final once it is loaded
        from tensorflow.python.util import _pywrap_util_port
        return bool(_pywrap_util_port.IsMklEnabled())
    except (ImportError, AttributeError):
        return None


def mixed_bfloat16_note(flags=None, environ=None, onednn=None):
    """The note the train command prints when ``training.precision=mixed_bfloat16`` is
    unlikely to be faster than float32 here (``None`` when it is expected to help).

    Measured (benchmarks/results/speed/bf16_cpu.md, bf16_cpu_avx2.md): faster than
    float32 only where oneDNN runs bfloat16 instructions (AVX512_BF16 / AMX); slower
    without them (14x slower on an AVX2-only CPU), and much slower with oneDNN off.
    """
    flags = cpu_flags() if flags is None else flags
    environ = os.environ if environ is None else environ
    if onednn is False:
        return ("note: training.precision=mixed_bfloat16 with oneDNN off "
                f"({ONEDNN_VARIABLE}=0) runs bfloat16 through slow generic kernels; "
                "float32 is faster here.")
    if not bfloat16_units(flags, environ):
        cap = environ.get("ONEDNN_MAX_CPU_ISA")
        why = (f"ONEDNN_MAX_CPU_ISA={cap} keeps oneDNN from them" if cap
               and {"avx512_bf16", "amx_bf16"} & set(flags)
               else "this CPU has no avx512_bf16 / amx_bf16 units")
        return (f"note: training.precision=mixed_bfloat16 will not be faster than float32 "
                f"here ({why}): bfloat16 is emulated and the step gets slower. Use "
                "float32 (the default) on this machine.")
    return None
