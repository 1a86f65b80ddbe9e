"""What an evaluation ran on: hardware and library versions, recorded with every score."""
from __future__ import annotations

import importlib.metadata
import os
import platform
import sys
from typing import Any

import psutil

__all__ = ["hardware", "library_versions"]

_LIBRARIES = ("numpy", "scipy", "torch", "scikit-learn", "safetensors", "phasebench")


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
    return versions
