"""luke.kernels.cpu: what the CPU offers (parsed from injected /proc/cpuinfo and lscpu texts of three CPU
kinds), the GEMM peaks (each backend measured and finite; bf16 skipped without native bf16), the oneDNN
helpers they share with EncoderLinear, and the machine section of ``luke info --system``."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F

import luke.commands
import luke.kernels.cpu as cpu
from luke.cli import main as cli_main
from luke.kernels.linear import onednn_available, onednn_product, onednn_relayout
from luke.modeling import LukeModel
from test_modeling import tiny_config

# /proc/cpuinfo of an AVX2-only EPYC (two processors; only the first one's lines count)
AVX2_CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 7B13
flags\t\t: fpu vme sse sse2 ssse3 sse4_1 sse4_2 avx f16c fma avx2 bmi1 bmi2 sha_ni

processor\t: 1
model name\t: AMD EPYC 7B13
flags\t\t: fpu avx avx2 avx512f avx512_bf16
"""

# lscpu of a Zen 5 EPYC: AVX-512 with avx512_bf16, no AMX
AVX512_LSCPU = """Architecture:                         x86_64
CPU(s):                               2
Model name:                           AMD EPYC 9B45
Thread(s) per core:                   2
Flags:                                fpu sse2 avx fma avx2 avx512f avx512dq avx512bw avx512vl avx512_bf16 \
avx512vbmi avx512_vnni
"""

# /proc/cpuinfo of a Sapphire Rapids Xeon: AMX (tiles, bf16, int8)
AMX_CPUINFO = """processor\t: 0
model name\t: Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz
flags\t\t: fpu avx avx2 fma avx512f avx512bw avx512vl avx512_vnni avx512_bf16 avx512_fp16 amx_bf16 amx_tile \
amx_int8 avx_vnni
"""


def test_avx2_cpu_has_no_native_bf16():
    info = cpu.cpu_info(AVX2_CPUINFO)
    assert info.model == "AMD EPYC 7B13"
    assert info.flags == ("avx", "avx2", "fma")  # the second processor's flags are not read
    assert info.flags_known and not info.native_bf16
    text = "\n".join(cpu.describe(info))
    assert "flags: avx avx2 fma" in text
    assert "bf16: emulated" in text and "bf16 will be slow" in text


def test_avx512_bf16_cpu_from_lscpu():
    info = cpu.cpu_info(AVX512_LSCPU)
    assert info.model == "AMD EPYC 9B45"
    assert {"avx512f", "avx512bw", "avx512_vnni", "avx512_bf16"} <= set(info.flags)
    assert not {"amx_tile", "amx_bf16", "avx512_fp16"} & set(info.flags)
    assert info.native_bf16
    assert "bf16: native (avx512_bf16)" in cpu.describe(info)[-1]


def test_amx_cpu():
    info = cpu.cpu_info(AMX_CPUINFO)
    assert info.model.startswith("Intel(R) Xeon(R) Platinum 8481C")
    assert {"amx_tile", "amx_bf16", "amx_int8", "avx512_fp16", "avx_vnni", "avx512_bf16"} <= set(info.flags)
    assert info.native_bf16
    assert "avx512_bf16, amx_bf16" in cpu.bf16_verdict(info)
    # AMX's bf16 alone makes bf16 native
    only_amx = AMX_CPUINFO.replace("avx512_bf16 ", "")
    assert "avx512_bf16" not in cpu.cpu_info(only_amx).flags and cpu.cpu_info(only_amx).native_bf16


def test_unreadable_cpu_is_best_effort():
    info = cpu.cpu_info("")  # what a machine without /proc/cpuinfo or lscpu gives
    assert info.model  # platform's name, or "unknown"
    assert info.flags == () and not info.flags_known and not info.native_bf16
    assert "flags: unknown" in cpu.describe(info)
    assert "bf16: unknown" in cpu.describe(info)[-1]
    # torch's own view does not depend on the text
    assert info.torch_capability == torch.backends.cpu.get_cpu_capability()
    assert info.mkl == torch.backends.mkl.is_available()
    assert info.threads == torch.get_num_threads()
    json.dumps(info.to_dict())


def test_this_machine_parses():
    info = cpu.cpu_info()
    assert info.model and info.torch_capability
    assert info.onednn == (torch.backends.mkldnn.is_available() and onednn_available())


def test_onednn_helpers_equal_linear():
    if not onednn_available():
        pytest.fail("this torch has no oneDNN linear ops: the test machine should have them")
    g = torch.Generator().manual_seed(0)
    x, w, b = torch.randn(40, 24, generator=g), torch.randn(16, 24, generator=g), torch.randn(16, generator=g)
    with torch.no_grad():
        torch.testing.assert_close(onednn_product(x, onednn_relayout(w, 40), b), F.linear(x, w, b))


def test_gemm_peaks_tiny_size_all_backends():
    before = torch.get_num_threads()
    peaks = cpu.gemm_peaks(threads=1, size=(64, 32, 48), seconds=0.01, emulated_bf16=True)
    assert torch.get_num_threads() == before
    assert set(peaks) == {"fp32-mkl", "fp32-onednn", "bf16"}
    for name, peak in peaks.items():
        if name == "fp32-onednn" and not onednn_available():
            assert peak.gflops is None and "not available" in peak.note
            continue
        assert peak.gflops is not None and math.isfinite(peak.gflops) and peak.gflops > 0, name
    assert ("emulated" in peaks["bf16"].note) != cpu.cpu_info().native_bf16
    line = cpu.describe_peaks(peaks)
    assert "fp32-mkl" in line and "GFLOP/s" in line


def test_gemm_peaks_skip_bf16_without_native_bf16(monkeypatch):
    monkeypatch.setattr(cpu, "cpu_info", _avx2)
    peaks = cpu.gemm_peaks(size=(16, 16, 16), seconds=0.0)
    assert peaks["bf16"].gflops is None and "no native bf16" in peaks["bf16"].note
    assert peaks["fp32-mkl"].gflops > 0


def _avx2(real=cpu.cpu_info) -> cpu.CpuInfo:
    """The AVX2 CPU's info (through the real parser, whatever a test patched)."""
    return real(AVX2_CPUINFO)


def test_info_system_machine_section(capsys, monkeypatch):
    assert cli_main(["info", "--system"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("machine:\n")
    assert f"CPU capability {torch.backends.cpu.get_cpu_capability()}" in text and "bf16: " in text
    monkeypatch.setattr(luke.commands, "cpu_info", _avx2)
    assert cli_main(["info", "--system"]) == 0
    text = capsys.readouterr().out
    assert "CPU: AMD EPYC 7B13" in text and "flags: avx avx2 fma" in text
    assert "bf16 will be slow" in text
    assert cli_main(["info", "--system", "--json"]) == 0
    system = json.loads(capsys.readouterr().out)["system"]
    assert system["model"] == "AMD EPYC 7B13" and system["native_bf16"] is False
    assert system["flags"] == ["avx", "avx2", "fma"]


def test_info_checkpoint_with_system(tmp_path, capsys, monkeypatch):
    LukeModel(tiny_config()).save_pretrained(tmp_path)
    monkeypatch.setattr(luke.commands, "cpu_info", lambda real=cpu.cpu_info: real(AMX_CPUINFO))
    assert cli_main(["info", str(tmp_path), "--system"]) == 0
    text = capsys.readouterr().out
    assert "LukeModel" in text.split("machine:")[0] and "amx_bf16" in text.split("machine:")[1]
    assert cli_main(["info", str(tmp_path), "--system", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["class"] == "LukeModel" and info["system"]["native_bf16"] is True
    assert cli_main(["info", str(tmp_path)]) == 0
    assert "machine:" not in capsys.readouterr().out  # only with --system
    assert cli_main(["info"]) == 2
    err = capsys.readouterr().err
    assert "give a CHECKPOINT" in err and "--system" in err


def test_machine_report_is_the_benchmarks_header():
    from luke.kernels.cpu import machine_report

    lines, peaks = machine_report(peaks=False)
    assert lines[0].startswith("CPU: ") and peaks == {}
    assert lines[-1] == "GEMM peaks: not measured (--no-peaks)"
    lines, peaks = machine_report(device="cuda")
    assert lines[-1] == "GEMM peaks: not measured (device cuda)" and peaks == {}


def test_bf16_on_a_cpu_without_it_is_a_warning(monkeypatch, caplog):
    """--mixed-precision bf16 / precision: bf16 say what bf16 is on this CPU: a warning when emulated."""
    import logging

    from luke import training

    cases = [(cpu.cpu_info(AVX2_CPUINFO), False), (cpu.cpu_info(AVX512_LSCPU), True)]
    for info, native in cases:
        monkeypatch.setattr(cpu, "cpu_info", lambda info=info: info)
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="luke.training"):
            training.log_bf16_choice("cpu")
        (record,) = [r for r in caplog.records if r.name == "luke.training"]
        assert record.levelno == (logging.INFO if native else logging.WARNING)
        assert ("native" if native else "will be slow") in record.getMessage()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="luke.training"):
        training.log_bf16_choice("cuda")
    assert not [r for r in caplog.records if r.name == "luke.training"]
