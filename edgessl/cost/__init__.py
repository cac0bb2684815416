"""Cost model: exact MACs/params (analytic for Archs, counted for baselines) and latency."""

from edgessl.cost.flops import ModelCost, count_macs, model_cost

__all__ = ["ModelCost", "count_macs", "model_cost"]
