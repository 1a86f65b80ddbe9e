"""What an evaluation ran on: hardware and library versions, recorded with every score."""
from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import platform
import sys
from pathlib import Path
from typing import Any

import psutil

from .submission import code_sha256

__all__ = ["BASELINES_LIBRARY", "BASELINES_SHA256", "StaleLibraryError", "baselines_library_sha256", "hardware",
           "library_versions"]

#: The baselines' shared library (evaluator/baselines_library), which every sandbox provides.
BASELINES_LIBRARY = "phasebench-baselines"
#: Its entry in ``library_versions``: the sha256 of the installed package's files. A stored result is
#: reused only where this entry is the same (evaluator/runner.py), as a version number may not move.
BASELINES_SHA256 = "phasebench-baselines-sha256"
_BASELINES_PACKAGE = "phasebench_baselines"
_BASELINES_SOURCE = Path(__file__).resolve().parent / "baselines_library" / _BASELINES_PACKAGE

_LIBRARIES = ("numpy", "scipy", "torch", "scikit-learn", "safetensors", "phasebench", BASELINES_LIBRARY)


class StaleLibraryError(RuntimeError):
    """The installed baselines' library is not the source next to this evaluator."""


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware(device: str) -> dict[str, Any]:
    info: dict[str, Any] = {"cpu": _cpu_model(), "cores": len(os.sched_getaffinity(0)),
                            "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
                            "platform": platform.platform()}
    if device == "cuda":
        import torch
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
            info["cuda"] = torch.version.cuda
    return info


def library_versions() -> dict[str, str]:
    versions = {"python": sys.version.split()[0]}
    for lib in _LIBRARIES:
        try:
            versions[lib] = importlib.metadata.version(lib)
        except importlib.metadata.PackageNotFoundError:
            versions[lib] = "absent"
    versions[BASELINES_SHA256] = baselines_library_sha256()
    return versions


def baselines_library_sha256() -> str:
    """The sha256 of the installed phasebench_baselines package (what the sandbox imports), or
    "absent". Where this evaluator's source tree holds the library and the installed copy differs,
    StaleLibraryError: the scores would come from code that is not the checkout's."""
    spec = importlib.util.find_spec(_BASELINES_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return "absent"
    installed = Path(next(iter(spec.submodule_search_locations)))
    digest = code_sha256(installed)
    if _BASELINES_SOURCE.is_dir() and installed.resolve() != _BASELINES_SOURCE and code_sha256(_BASELINES_SOURCE) != digest:
        raise StaleLibraryError(f"the installed {BASELINES_LIBRARY} ({installed}) differs from its source "
                                f"{_BASELINES_SOURCE}: run `make install` to install the edited library")
    return digest
