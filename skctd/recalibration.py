"""Recalibration of an expert's scores: Platt scaling or isotonic regression.

LLM judges often rank inputs well but are badly calibrated: a judge may put
nearly every input above 0.5, so that its verdicts at the 0.5 cut are no better
than chance although its scores order the inputs correctly. The cascade uses the
expert's score twice -- as the final score of a delegated row, and in the
delegation value ``v = P_e(y|x) - P_p(y|x)`` that trains the DV probe -- so a
miscalibrated expert hurts both. :class:`ScoreCalibrator` maps raw scores to
calibrated probabilities, learned on labelled rows;
:class:`~skctd.CalibratedDelegationCascade` fits it on the rows that train the
DV probe (``expert_calibration``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_is_fitted, validate_data

__all__ = ["ScoreCalibrator"]

# scores are clipped to [_EPS, 1 - _EPS] before the logit of Platt scaling
_EPS = 1e-6


class ScoreCalibrator(ClassifierMixin, BaseEstimator):
    """Map a model's scores to calibrated probabilities (Platt or isotonic).

    A classifier whose single feature is a score in [0, 1] (e.g. an LLM judge's
    ``P(unsafe)``): ``predict_proba`` returns the calibrated probability of each
    class.

    - ``method="sigmoid"`` (Platt scaling): a logistic regression on the logit of
      the score, ``P(y=1) = 1 / (1 + exp(-(a * logit(s) + b)))``; monotone, two
      parameters, safe on few rows.
    - ``method="isotonic"``: the non-decreasing step function of the score that
      fits the labels best (:class:`~sklearn.isotonic.IsotonicRegression`); more
      flexible, needs more rows.

    Both are non-decreasing in the score, so they keep the expert's ranking
    (Platt exactly when ``a > 0``; isotonic up to ties it creates); what changes is
    where the scores sit relative to 0.5 and how far apart they are. On a hard 0/1
    expert both map the two verdicts to the observed rate of positives behind
    each verdict.

    Parameters
    ----------
    method : {"sigmoid", "isotonic"}, default="sigmoid"

    Attributes
    ----------
    classes_ : ndarray of shape (2,)
        The two labels; ``predict_proba(X)[:, 1]`` is the probability of
        ``classes_[1]``.
    calibrator_ : LogisticRegression or IsotonicRegression
        The fitted map.
    n_features_in_ : int
        Always 1.

    See Also
    --------
    sklearn.calibration.CalibratedClassifierCV : The same maps around a classifier.

    Examples
    --------
    A judge that puts almost everything above 0.5 but ranks well:

    >>> import numpy as np
    >>> from skctd.recalibration import ScoreCalibrator
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 1000)
    >>> raw = 1 / (1 + np.exp(-(3.0 + 1.5 * (2 * y - 1) + rng.normal(0, 1, 1000))))
    >>> float(np.mean((raw >= 0.5) == y))  # accuracy of the raw verdicts
    0.576
    >>> cal = ScoreCalibrator("sigmoid").fit(raw[:, None], y)
    >>> calibrated = cal.predict_proba(raw[:, None])[:, 1]
    >>> float(np.mean((calibrated >= 0.5) == y))
    0.947
    """

    _parameter_constraints: dict = {"method": [StrOptions({"sigmoid", "isotonic"})]}

    def __init__(self, method: str = "sigmoid") -> None:
        self.method = method

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: Any, y: Any) -> ScoreCalibrator:
        """Learn the map from scores to probabilities.

        Parameters
        ----------
        X : array-like of shape (n_samples, 1)
            The scores, in [0, 1].
        y : array-like of shape (n_samples,)
            Binary labels.

        Returns
        -------
        self : object
        """
        X, y = validate_data(self, X, y, dtype=np.float64)
        s = self._scores(X)
        if type_of_target(y, input_name="y") != "binary":
            raise ValueError(
                "ScoreCalibrator needs binary labels with both classes present; got "
                f"labels {np.unique(y)[:5].tolist()}."
            )
        self.classes_, y01 = np.unique(y, return_inverse=True)
        if self.method == "sigmoid":
            self.calibrator_ = LogisticRegression(C=1e4).fit(_logit(s)[:, None], y01)
        else:
            self.calibrator_ = IsotonicRegression(
                y_min=0.0, y_max=1.0, out_of_bounds="clip"
            ).fit(s, y01)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Calibrated class probabilities.

        Parameters
        ----------
        X : array-like of shape (n_samples, 1)
            Scores in [0, 1].

        Returns
        -------
        proba : ndarray of shape (n_samples, 2)
            Columns follow ``classes_``.
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        s = self._scores(X)
        if self.method == "sigmoid":
            p1 = self.calibrator_.predict_proba(_logit(s)[:, None])[:, 1]
        else:
            p1 = np.clip(self.calibrator_.predict(s), 0.0, 1.0)
        return np.column_stack([1.0 - p1, p1])

    def predict(self, X: Any) -> np.ndarray:
        """The label whose calibrated probability is at least 0.5.

        Parameters
        ----------
        X : array-like of shape (n_samples, 1)

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
        """
        return self.classes_[(self.predict_proba(X)[:, 1] >= 0.5).astype(int)]

    def _scores(self, X: np.ndarray) -> np.ndarray:
        if X.shape[1] != 1:
            raise ValueError(
                f"ScoreCalibrator takes one column of scores, got {X.shape[1]} columns; "
                "pass scores[:, None]."
            )
        s = X[:, 0]
        if np.any((s < 0) | (s > 1)):
            raise ValueError("The scores must be probabilities in [0, 1].")
        return s


def _logit(s: np.ndarray) -> np.ndarray:
    s = np.clip(s, _EPS, 1 - _EPS)
    return np.log(s) - np.log1p(-s)
