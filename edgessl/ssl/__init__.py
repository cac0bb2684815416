"""Self-supervised objectives (SimCLR, BYOL, MoCo v3, VICReg), their losses and heads.

``OBJECTIVES`` is the registry the CLI's ``--ssl`` choices come from; ``build_objective``
makes one; ``distill_loss`` is the in-place distillation loss of the sandwich rule.
"""

from edgessl.ssl.byol import BYOLLoss, cosine_regression
from edgessl.ssl.heads import ElasticLinear, MLPHead
from edgessl.ssl.mocov3 import MoCoV3Loss
from edgessl.ssl.ntxent import NTXentLoss
from edgessl.ssl.objectives import OBJECTIVES, Objective, build_objective, distill_loss
from edgessl.ssl.vicreg import VICRegLoss

__all__ = ["BYOLLoss", "ElasticLinear", "MLPHead", "MoCoV3Loss", "NTXentLoss", "OBJECTIVES",
           "Objective", "VICRegLoss", "build_objective", "cosine_regression",
           "distill_loss"]
