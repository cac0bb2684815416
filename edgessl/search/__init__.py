"""Budgeted multi-objective search of a trained supernet (NSGA-II, proxy accuracy)."""

from edgessl.search.budget import Budget, Constraints
from edgessl.search.results import Candidate, SearchResult
from edgessl.search.run import SearchConfig, default_supernet, run_search

__all__ = ["Budget", "Constraints", "Candidate", "SearchConfig", "SearchResult",
           "default_supernet", "run_search"]
