"""SSL training: the sandwich rule with in-place distillation on a supernet, or one standalone
network with the same recipe; checkpoints, resume, DDP.

>>> from edgessl.train import train
>>> summary = train({"data": "digits", "out": "RUN", "epochs": 1, "resolution": 32})

The names below are imported on first use (PEP 562), so that ``edgessl.train.optim`` (the
CLI's ``--optimizer`` choices) does not pull in the data pipeline and torchvision.
"""

import importlib
from typing import Any

_WHERE = {"TrainConfig": "config", "CKPT_NAME": "loop", "default_resolution": "loop",
          "train": "loop", "SSLModel": "model", "build_ssl_model": "model",
          "sample_students": "model"}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'edgessl.train' has no attribute {name!r}")
    return getattr(importlib.import_module(f"edgessl.train.{_WHERE[name]}"), name)
