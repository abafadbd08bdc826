"""LinearNexus from Python: linear-attention, state-space and hybrid language models on the CPU.

    import linearnexus as lnx
    o, state = lnx.ops.gla(q, k, v, g)            # any registered mechanism, NumPy or PyTorch
    model = lnx.Model.load("runs/default/last")   # models, generation, sessions (models.py)
    lnx.train("configs/hybrid-tiny.yaml", {"train.steps": 20}, callback=print)

The C++ library does the work (``linearnexus._core``); arrays cross without copies. Errors are
the library's, with its messages, all ``linearnexus.Error``: ``ShapeError`` and ``ValueError``
also derive from Python's ``ValueError``, ``DTypeError`` from ``TypeError``, ``IOError`` from
``OSError``.
"""

from . import _core, ops
from .models import Model, PosttrainResult, Session, State, TrainResult, grpo, ppo, sft, train
from ._core import (
    AutogradError,
    DistributedError,
    DTypeError,
    Error,
    IOError,
    ShapeError,
    ValueError,
    load_safetensors,
    num_threads,
    save_safetensors,
    set_num_threads,
)

__all__ = [
    "ops",
    "Model",
    "Session",
    "State",
    "TrainResult",
    "train",
    "sft",
    "PosttrainResult",
    "grpo",
    "ppo",
    "Error",
    "ShapeError",
    "DTypeError",
    "ValueError",
    "IOError",
    "AutogradError",
    "DistributedError",
    "load_safetensors",
    "save_safetensors",
    "num_threads",
    "set_num_threads",
]
