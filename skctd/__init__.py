"""skctd: Calibrate-Then-Delegate cascades for LLM safety monitoring, scikit-learn style.

A cheap linear probe reads the monitored model's hidden activations; a delegation-value
(DV) probe predicts how much an expensive expert would help on each input; a threshold
on the DV signal, calibrated by Learn-then-Test, keeps the expert-call rate below a
budget ``alpha`` with probability at least ``1 - delta``.

Public names are imported lazily (PEP 562), so ``import skctd`` needs only numpy,
scipy, scikit-learn and joblib; the LLM parts import torch and transformers when
first used.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0.dev0"

# public name -> module that defines it
_PUBLIC = {
    # statistics (pure numpy / scipy)
    "binomial_pvalues": "calibration",
    "hoeffding_bentkus_pvalues": "calibration",
    "betting_pvalues": "calibration",
    "sign_test_pvalues": "calibration",
    "fixed_sequence_test": "calibration",
    "bonferroni_test": "calibration",
    "pareto_efficient": "calibration",
    "candidate_thresholds": "calibration",
    "calibrate_threshold": "calibration",
    "calibrate_budget_sweep": "calibration",
    "min_test_size": "calibration",
    "CalibrationResult": "calibration",
    "Risk": "calibration",
    "delegation_value": "delegation",
    "effective_delegation_capacity": "delegation",
    "uncertainty_signal": "delegation",
    "topk_delegation_mask": "delegation",
    "choose_combine": "delegation",
    "combined_scores": "delegation",
    # experts
    "BaseExpert": "experts",
    "FunctionExpert": "experts",
    "ClassifierExpert": "experts",
    "PrecomputedExpert": "experts",
    "ExpertError": "experts",
    "ExpertReport": "experts",
    "as_expert": "experts",
    "TransformersJudge": "experts",
    "OpenAIJudge": "experts",
    # estimators
    "CalibratedDelegationCascade": "cascade",
    "ActivationTransformer": "llm",
    # saving and loading fitted cascades (loading a model file runs code)
    "save": "_persistence",
    "load": "_persistence",
    "read_manifest": "_persistence",
    # deployment monitoring
    "DelegationMonitor": "monitor",
    "MonitorAlarm": "monitor",
    # evaluation reports
    "evaluate_cascade": "evaluation",
    "CascadeEvaluation": "evaluation",
    "load_demo": "datasets",
}

__all__ = sorted(_PUBLIC) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'skctd' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"skctd.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC))
