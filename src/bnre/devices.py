"""The device a job computes on."""

from __future__ import annotations

import torch


def pick_device(name: str | None = None) -> torch.device:
    """``auto`` (or None) picks CUDA when available, else the CPU."""
    if name is None or name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but CUDA is not available")
    return device
