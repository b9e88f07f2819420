"""Run-time set-up shared by every chapter: seeding, device choice, versions."""
from __future__ import annotations

import importlib.metadata
import os
import platform
import random

import numpy as np


def seed_everything(seed: int = 0) -> None:
    """Seed Python, NumPy and (if installed) PyTorch: a chapter runs alike each time."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed)
    # for subprocesses; this process's own hash seed is already fixed
    os.environ["PYTHONHASHSEED"] = str(seed)
    try:
        import torch
    except ImportError:
        return
    torch.manual_seed(seed)  # seeds CUDA too when present


def pick_device():
    """``cuda`` when a GPU is present, else ``cpu``: chapters run unchanged on both."""
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def versions(*packages: str) -> str:
    """One line with Python's and each package's version, for the top of a chapter."""
    parts = [f"python {platform.python_version()}"]
    for name in packages:
        try:
            parts.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            raise ValueError(f"package {name!r} is not installed; "
                             "see requirements.txt") from None
    return " | ".join(parts)
