"""SSL training: the sandwich rule with in-place distillation on a supernet, or one standalone
network with the same recipe; checkpoints, resume, DDP.

>>> from edgessl.train import train
>>> summary = train({"data": "digits", "out": "RUN", "epochs": 1, "resolution": 32})
"""

from edgessl.train.config import TrainConfig
from edgessl.train.loop import CKPT_NAME, default_resolution, train
from edgessl.train.model import SSLModel, build_ssl_model, sample_students

__all__ = ["CKPT_NAME", "SSLModel", "TrainConfig", "build_ssl_model", "default_resolution",
           "sample_students", "train"]
