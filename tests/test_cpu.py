"""oneDNN on by default on x86 (exprgan_tf.cpu) and the mixed_bfloat16 note."""

import os
import platform
import subprocess
import sys

import pytest

from exprgan_tf import cpu

AVX2 = "processor : 0\nflags : fpu sse4_2 avx avx2 fma\n"
SPR = "processor : 0\nflags : fpu avx2 fma avx512f avx512_vnni avx512_bf16 amx_tile amx_bf16\n"


@pytest.mark.parametrize("environ, modules, machine, expected", [
    ({}, {}, "x86_64", "1"),                                      # set on x86
    ({}, {}, "AMD64", "1"),                                       # Windows' name
    ({"TF_ENABLE_ONEDNN_OPTS": "0"}, {}, "x86_64", "0"),          # the user's off
    ({"TF_ENABLE_ONEDNN_OPTS": "1"}, {}, "x86_64", "1"),
    ({}, {"tensorflow": object()}, "x86_64", None),               # too late to set
    ({}, {}, "aarch64", None),                                    # not x86
])
def test_onednn_default_respects_the_user_and_an_imported_tensorflow(environ, modules,
                                                                      machine, expected):
    before = dict(environ)
    changed = cpu.default_onednn(environ, modules, machine)
    assert environ.get("TF_ENABLE_ONEDNN_OPTS") == expected
    assert changed == (expected is not None and "TF_ENABLE_ONEDNN_OPTS" not in before)


@pytest.mark.skipif(platform.machine().lower() not in cpu.X86, reason="x86 only")
def test_import_exprgan_tf_turns_onednn_on_in_a_fresh_process():
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    code = ("import os, exprgan_tf; from exprgan_tf import cpu; "
            "print('STATE', os.environ['TF_ENABLE_ONEDNN_OPTS'], cpu.onednn_set_by_package, "
            "cpu.onednn_enabled())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**env, "TF_CPP_MIN_LOG_LEVEL": "3"}, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert [l for l in out.stdout.splitlines() if l.startswith("STATE")] == \
        ["STATE 1 True True"]


def test_cpu_flags_and_bfloat16_units():
    assert cpu.cpu_flags(AVX2) == {"fpu", "sse4_2", "avx", "avx2", "fma"}
    assert cpu.cpu_flags("processor : 0\n") == frozenset()
    assert not cpu.bfloat16_units(cpu.cpu_flags(AVX2), {})
    assert cpu.bfloat16_units(cpu.cpu_flags(SPR), {})
    assert cpu.bfloat16_units(cpu.cpu_flags(SPR), {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_AMX"})
    assert not cpu.bfloat16_units(cpu.cpu_flags(SPR), {"ONEDNN_MAX_CPU_ISA": "avx2"})


def test_mixed_bfloat16_note_only_where_bfloat16_is_emulated():
    assert cpu.mixed_bfloat16_note(cpu.cpu_flags(SPR), {}, onednn=True) is None
    note = cpu.mixed_bfloat16_note(cpu.cpu_flags(AVX2), {}, onednn=True)
    assert note.startswith("note: training.precision=mixed_bfloat16 will not be faster")
    assert "no avx512_bf16 / amx_bf16" in note
    capped = cpu.mixed_bfloat16_note(cpu.cpu_flags(SPR), {"ONEDNN_MAX_CPU_ISA": "AVX2"},
                                     onednn=True)
    assert "ONEDNN_MAX_CPU_ISA=AVX2 keeps oneDNN from them" in capped
    off = cpu.mixed_bfloat16_note(cpu.cpu_flags(SPR), {}, onednn=False)
    assert "oneDNN off (TF_ENABLE_ONEDNN_OPTS=0)" in off
