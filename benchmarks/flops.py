"""Model FLOPs of encoder fine-tuning and this machine's peak, for model FLOP utilisation (MFU).

Model FLOPs count the matrix multiplications a BERT-style encoder needs for
the REAL tokens of each sequence (padding is waste, not work), the way MFU
is usually defined (PaLM, appendix B): per layer and sequence of n tokens,
hidden size h, feed-forward size f,

    projections  Q, K, V, output   4 x 2nh^2
    feed-forward two matrices      2 x 2nhf
    attention    QK^T and AV       2 x 2n^2h

plus the classifier head 2nhC; a training step is three forward passes
(forward, and backward for activations and weights). Embedding lookups,
LayerNorm, softmax and the optimizer are left out (under 2% here).

Peak: cores x clock x FP32 FLOPs per cycle per core, from /proc/cpuinfo.
FLOPs per cycle: two 256-bit FMA pipes (AMD Zen 2-4, and Intel without a
second 512-bit unit): 2 pipes x 8 lanes x 2 = 32; Intel server cores with
two 512-bit FMA units: 64. AVX-512 on Zen 4 is split over the same two
256-bit pipes, so it does not raise the peak. The clock is the nominal one
the kernel reports; a core boosting above it makes the true peak higher and
the MFU lower (both are printed).
"""

from __future__ import annotations

import os
import re
from pathlib import Path


def forward_flops(length: int, hidden: int, ffn: int, layers: int, labels: int) -> float:
    """Matrix-multiply FLOPs of one forward pass over one sequence of `length` real tokens."""
    n, h = length, hidden
    per_layer = 8 * n * h * h + 4 * n * h * ffn + 4 * n * n * h
    return layers * per_layer + 2 * n * h * labels


def training_flops(lengths, config, labels: int) -> float:
    """Model FLOPs of one training pass over sequences of these real lengths (3x forward)."""
    hidden, ffn, layers = config["hidden_size"], config["intermediate_size"], config["num_hidden_layers"]
    return 3.0 * sum(forward_flops(n, hidden, ffn, layers, labels) for n in lengths)


def cpu_peak() -> dict:
    """This machine's FP32 peak FLOP/s at the nominal clock, and how it was derived."""
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    mhz = [float(m) for m in re.findall(r"^cpu MHz\s*:\s*([\d.]+)", text, re.M)]
    flags = set((re.search(r"^flags\s*:(.*)$", text, re.M) or [None, ""])[1].split())
    vendor = (re.search(r"^vendor_id\s*:\s*(\S+)", text, re.M) or [None, ""])[1]
    model = (re.search(r"^model name\s*:\s*(.+)$", text, re.M) or [None, "unknown"])[1].strip()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    clock_hz = (max(mhz) if mhz else 0.0) * 1e6
    if "avx512f" in flags and vendor == "GenuineIntel":
        per_cycle, why = 64, "two 512-bit FMA units (Intel server core with AVX-512)"
    elif "fma" in flags:
        per_cycle, why = 32, "two 256-bit FMA pipes (AVX-512, where present, runs on them in two halves)"
    else:
        per_cycle, why = 8, "SSE: no FMA"
    return {"model": model, "vendor": vendor, "cores": cores, "clock_ghz": round(clock_hz / 1e9, 3),
            "flops_per_cycle_per_core": per_cycle, "why": why, "peak_flops": cores * clock_hz * per_cycle,
            "bf16_dot_product": "avx512_bf16" in flags}


def describe_peak(peak: dict) -> str:
    return (f"{peak['cores']} cores x {peak['clock_ghz']} GHz (nominal) x {peak['flops_per_cycle_per_core']} "
            f"FP32 FLOP/cycle ({peak['why']}) = {peak['peak_flops'] / 1e9:.1f} GFLOP/s on {peak['model']}")
