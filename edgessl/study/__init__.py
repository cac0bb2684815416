"""How architectures rank across downstream sets: the study behind "one network doesn't rule
them all" (Girish et al., 2022), for a user's own sets.

>>> from edgessl.study import StudyConfig, run_study
>>> run_study(StudyConfig(variants="subnets.jsonl", supernet="RUN/last.ckpt",
...                       downstream=("digits", "fashion-mnist"), out="S"))
"""

from edgessl.study.run import StudyConfig, StudyResult, StudySession, run_study
from edgessl.study.sets import EvalSet, evaluate_on, prepare_sets
from edgessl.study.variants import Variant, family_table, resolve_variants

__all__ = ["EvalSet", "StudyConfig", "StudyResult", "StudySession", "Variant", "evaluate_on",
           "family_table", "prepare_sets", "resolve_variants", "run_study"]
