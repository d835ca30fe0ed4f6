"""The paper's evaluation protocol: on cached arrays, or on a fitted cascade.

The protocol functions take plain arrays -- labels, probe scores, expert scores,
delegation-value (DV) predictions, group labels -- so a full protocol runs in
seconds once the activations and the expert scores are cached:

- :func:`budget_sweep`: AUROC, accuracy, realised delegation rate and mean
  delegation value of the delegated rows per method and budget (Figures 3-4);
- :func:`validate_guarantee`: realised delegation rates over many random
  calibration/evaluation splits, budget-only vs Pareto LTT (Appendix D, Figure 11);
- :func:`group_analysis` / :func:`group_table`: per-group delegation rates and
  mean delegation values (Table 1);
- :func:`dv_ranking_curve`: mean delegation value of the top-k rows by each signal
  vs k/N (Figure 5);
- :func:`binary_vs_continuous`: DV probes trained on the binary vs the continuous
  delegation value (Appendix A).

The protocol: the test pool is split into a calibration half and an evaluation
half. The calibrated methods (CTD on the DV signal, "Unc. calibrated" on the
uncertainty signal whose ECDF comes from the calibration half's probe scores)
calibrate on the calibration half and are scored on the evaluation half; the
batched top-k baselines run on the evaluation half as a stream, shuffled (seeded)
unless asked otherwise. A model predicts the positive class when its score is
``>= 0.5``.

Many splits: every curve and every claim is computed on ``n_repeats`` (default
20) random calibration/evaluation splits (the optimisation/testing split inside
each calibration half and the order of the stream are redrawn each time) and
reported as the mean with its standard error (:func:`mean_and_se`); methods are
compared by paired per-split differences, which count only beyond a noise band
(:func:`noise_band`, see :func:`check_claims`). ``n_repeats=1`` with a fixed
``calibration_mask`` is the paper's single-split protocol.

Results are small dataclasses holding a tidy table (a dict of equal-length
columns); ``to_frame()`` returns a :class:`pandas.DataFrame` (the ``report``
extra) and ``to_dict()`` a JSON-serialisable dict.

:func:`evaluate_cascade` (a fitted cascade and test data) and :func:`evaluate_scores`
(cached arrays) run the whole protocol in one call and :func:`check_claims` checks the
paper's claims on the numbers; :func:`skctd.report.write_report` writes the report.
"""

from skctd.evaluation._binary import BinaryContinuousResult, binary_vs_continuous
from skctd.evaluation._cascade import (
    CascadeEvaluation,
    evaluate_cascade,
    evaluate_scores,
)
from skctd.evaluation._claims import CLAIMS, check_claims, noise_band
from skctd.evaluation._groups import GroupResult, group_analysis, group_table
from skctd.evaluation._guarantee import GuaranteeResult, validate_guarantee
from skctd.evaluation._metrics import cascade_metrics
from skctd.evaluation._ranking import (
    RankingCurveResult,
    average_ranking_curves,
    dv_ranking_curve,
)
from skctd.evaluation._splits import calibration_masks
from skctd.evaluation._sweep import (
    DEFAULT_ALPHAS,
    METHOD_LABELS,
    METHODS,
    SweepResult,
    budget_sweep,
    mean_and_se,
)

__all__ = [
    "BinaryContinuousResult",
    "CLAIMS",
    "CascadeEvaluation",
    "DEFAULT_ALPHAS",
    "GroupResult",
    "GuaranteeResult",
    "METHODS",
    "METHOD_LABELS",
    "RankingCurveResult",
    "SweepResult",
    "average_ranking_curves",
    "binary_vs_continuous",
    "budget_sweep",
    "calibration_masks",
    "cascade_metrics",
    "check_claims",
    "dv_ranking_curve",
    "evaluate_cascade",
    "evaluate_scores",
    "group_analysis",
    "group_table",
    "mean_and_se",
    "noise_band",
    "validate_guarantee",
]
