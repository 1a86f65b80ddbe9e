"""The reference build environment: the processor features the pinned dev splits are built with.

Numerical libraries pick kernels by processor: OpenBLAS (SkylakeX vs Haswell), PyTorch's ATen
(AVX-512 vs AVX2) and NumPy's SIMD loops give results that differ in the last bits, and some
generators (optimiser-based reference fits, thresholds tuned by bisection) turn those bits into
different bytes. Pinning every kernel choice to the AVX2 level that any x86-64 processor from the
last decade has makes ``phasebench data build`` byte-identical across such machines. The choice
is read when each library loads, so it must be in the environment before numpy or torch is
imported: the CLI re-executes itself with it, and the test suite's conftest sets it first thing.
Other architectures build with their own kernels and cannot match the x86-64 pins.

One vendor limit: MKL honours MKL_CBWR=AVX2 on Intel processors only and uses its AUTO branch on
others (Intel's CNR documentation), so torch's float32 matmuls differ by rounding on AMD. The
planted-features and rare-behavior pins still reproduce there (measured on an AMD EPYC); the
grokking-onset training does not, because it amplifies that rounding chaotically, so its committed
files are reproduced byte for byte on Intel only (its dataset card and committed-data test say more).
"""
from __future__ import annotations

import os
import platform
from collections.abc import Mapping

__all__ = ["REFERENCE_BUILD_ENV", "apply_reference_env", "missing_reference_env", "reference_env_in_effect"]

# NumPy's AVX-512 dispatch targets under both namings: up to 2.2 one per feature (AVX512F ... AVX512_SKX),
# from 2.3 the x86-64-v4 group "X86_V4" (then AVX512_ICL, AVX512_SPR). A name this NumPy does not
# dispatch on is ignored with an ImportWarning, so listing both is safe. Without X86_V4, NumPy 2.4 kept
# its AVX-512 loops on AVX-512 machines: the scaling-exponents pin, built on one, did not reproduce on
# an AMD EPYC without AVX-512 (its optimiser-based reference fits turn last bits into bytes). With
# X86_V4 listed, every pin reproduced on both that AMD EPYC and an Intel Xeon with AVX-512.
_AVX512 = "X86_V4 AVX512F AVX512CD AVX512_SKX AVX512_CLX AVX512_CNL AVX512_ICL AVX512_SPR"

REFERENCE_BUILD_ENV: dict[str, str] = {
    "OPENBLAS_CORETYPE": "Haswell",          # numpy's and scipy's BLAS
    "NPY_DISABLE_CPU_FEATURES": _AVX512,     # numpy's own SIMD loops
    "ATEN_CPU_CAPABILITY": "avx2",           # torch's element-wise and reduction kernels
    "MKL_CBWR": "AVX2",                      # torch's matmuls (MKL): conditional numerical reproducibility
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",            # torch's oneDNN paths
}


def _applies() -> bool:
    return platform.machine().lower() in ("x86_64", "amd64")


def missing_reference_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables to set (or correct) for a reference build; empty when already in it."""
    if not _applies():
        return {}
    environ = os.environ if environ is None else environ
    return {k: v for k, v in REFERENCE_BUILD_ENV.items() if environ.get(k) != v}


def apply_reference_env() -> None:
    """Set the reference environment in this process: only effective before numpy/torch load."""
    os.environ.update(missing_reference_env())


def reference_env_in_effect() -> tuple[bool, str]:
    """Whether the libraries loaded in this process run with the reference kernels."""
    if not _applies():
        return False, f"the pins are x86-64 builds; this is {platform.machine()}"
    missing = missing_reference_env()
    if missing:
        return False, f"not set before numpy/torch loaded: {', '.join(sorted(missing))}"
    return True, ""
