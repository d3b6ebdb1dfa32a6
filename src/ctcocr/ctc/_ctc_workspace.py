"""Work buffers reused between calls: fresh multi-megabyte buffers cost thousands of page faults.

Buffers are per thread, per name, dtype and device, and grow to the largest size requested. A
buffer handed out is valid until the next request for the same name: callers never let one escape.
"""

from __future__ import annotations

import threading

import torch
from torch import Tensor


class _Workspace(threading.local):
    def __init__(self) -> None:
        self.buffers: dict[tuple[str, torch.dtype, torch.device], Tensor] = {}


_WORKSPACE = _Workspace()


def work_buffer(
    name: str, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device
) -> Tensor:
    """An uninitialised contiguous tensor of ``shape`` backed by the reusable buffer ``name``."""
    numel = 1
    for size in shape:
        numel *= size
    key = (name, dtype, torch.device(device))
    buffer = _WORKSPACE.buffers.get(key)
    if buffer is None or buffer.numel() < numel:
        buffer = torch.empty(numel, dtype=dtype, device=device)
        _WORKSPACE.buffers[key] = buffer
    return buffer[:numel].view(shape)
