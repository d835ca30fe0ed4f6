"""CalibratedDelegationCascade: behaviour, guarantees in use, and scikit-learn integration."""

import pickle
import warnings

import joblib
import numpy as np
import pytest
import sklearn
from scipy.special import expit
from sklearn.base import clone
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import accuracy_score
from sklearn.model_selection import (
    GridSearchCV,
    GroupKFold,
    StratifiedKFold,
    cross_val_predict,
    cross_val_score,
)
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import InvalidParameterError

from skctd import (
    CalibratedDelegationCascade,
    ExpertError,
    FunctionExpert,
    PrecomputedExpert,
    delegation_value,
)
from skctd.experts import BaseExpert
from skctd.probes import make_dv_probe, make_safety_probe, probe_features


def make_hard_region_data(n, seed):
    """Labels follow x0, except in a hard region (x1 > 0.8, about 21% of rows) where
    they follow x3 through a rule a linear probe misses; an expert that knows the
    rule helps exactly there, and the region is visible to a linear DV probe."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    y = (hidden_logit(X) > 0).astype(int)
    return X, y


def hidden_logit(X):
    X = np.asarray(X, dtype=float)
    hard = X[:, 1] > 0.8
    return np.where(hard, X[:, 3] * np.sign(X[:, 2]), X[:, 0])


def strong_expert(X):
    """A deterministic expert that (nearly) knows the label."""
    return expit(20.0 * hidden_logit(X))


def perfect_expert_for(X, y):
    return PrecomputedExpert(y.astype(float), keys=X)


def random_expert_for(X, seed=0):
    return PrecomputedExpert(np.random.default_rng(seed).uniform(size=len(X)), keys=X)


class CountingExpert(BaseExpert):
    """Records every row it is asked to score."""

    def __init__(self, func):
        super().__init__()
        self.func = func
        self.seen = []

    def _score(self, X, report):
        self.seen.extend(map(tuple, np.asarray(X)))
        return self.func(X)


def make(expert, **params):
    """A cascade with a plain LogisticRegression probe, fast to fit.

    The default probe tunes C by cross-validation and is cross-fitted, (cv + 1)
    grid searches per fit; the tests of the defaults use it explicitly.
    """
    return CalibratedDelegationCascade(expert, **{"probe": LogisticRegression(), **params})


def sigmoid_first(X):
    return 1.0 / (1.0 + np.exp(-3.0 * np.asarray(X)[:, 0]))


@pytest.fixture(scope="module")
def data():
    X, y = make_hard_region_data(6000, seed=0)
    return X[:4000], y[:4000], X[4000:], y[4000:]


def test_perfect_expert_uses_the_budget_and_helps(data):
    X, y, X_eval, y_eval = data
    X_all = np.vstack([X, X_eval])
    y_all = np.concatenate([y, y_eval])
    cascade = make(
        perfect_expert_for(X_all, y_all), alpha=0.2, delta=0.1, random_state=0
    ).fit(X, y)
    routed = cascade.route(X_eval)
    rate = routed.delegated.mean()
    assert 0.1 < rate <= 0.2 + 0.03  # uses most of the budget, within sampling noise
    probe_wrong = (routed.probe_scores >= 0.5) != y_eval
    gain = accuracy_score(y_eval, cascade.predict(X_eval)) - (1 - probe_wrong.mean())
    # delegating the same number of rows at random would fix rate * error rows
    assert gain > 2 * rate * probe_wrong.mean()
    # the delegated rows are the hard ones: the DV probe learnt where the expert helps
    assert (
        X_eval[routed.delegated, 1].mean() > X_eval[~routed.delegated, 1].mean() + 0.5
    )


def test_useless_expert_is_rarely_called_and_does_not_hurt(data):
    X, y, X_eval, y_eval = data
    X_all = np.vstack([X, X_eval])
    cascade = make(
        random_expert_for(X_all), alpha=0.5, delta=0.1, random_state=0
    ).fit(X, y)
    routed = cascade.route(X_eval)
    assert routed.delegated.mean() < 0.1
    probe_acc = accuracy_score(y_eval, routed.probe_scores >= 0.5)
    assert accuracy_score(y_eval, cascade.predict(X_eval)) >= probe_acc - 0.02


def test_threshold_is_the_calibrated_one(data):
    X, y, X_eval, y_eval = data
    cascade = make(strong_expert, random_state=0).fit(X, y)
    result = cascade.calibration_
    assert cascade.threshold_ == result.threshold
    assert result.alpha == 0.2 and result.delta == 0.1
    np.testing.assert_array_equal(
        cascade.delegate(X_eval), cascade.delegation_signal(X_eval) > cascade.threshold_
    )


def test_rows_are_independent(data):
    X, y, X_eval, _ = data
    cascade = make(
        FunctionExpert(strong_expert), alpha=0.3, random_state=0
    ).fit(X, y)
    batch = cascade.predict_proba(X_eval[:40])
    one_by_one = np.vstack(
        [cascade.predict_proba(X_eval[i : i + 1]) for i in range(40)]
    )
    np.testing.assert_allclose(batch, one_by_one, rtol=0, atol=1e-12)
    assert cascade.delegate(X_eval[:40]).any()


def test_expert_called_once_per_row_in_fit_and_only_on_delegated_rows(data):
    X, y, X_eval, _ = data
    expert = CountingExpert(strong_expert)
    cascade = make(expert, alpha=0.3, random_state=0).fit(X, y)
    assert len(expert.seen) == len(set(expert.seen)) == len(X)
    assert cascade.expert_report_.n_rows == len(X)
    expert.seen.clear()
    routed = cascade.route(X_eval)
    assert len(expert.seen) == routed.delegated.sum() == routed.expert_report.n_rows
    assert set(expert.seen) == set(map(tuple, X_eval[routed.delegated]))
    assert np.isnan(routed.expert_scores[~routed.delegated]).all()


def test_precomputed_expert_scores_in_fit_skip_the_expert(data):
    X, y, _, _ = data
    expert = CountingExpert(strong_expert)
    a = make(expert, random_state=0).fit(
        X, y, expert_scores=strong_expert(X)
    )
    assert expert.seen == []
    b = make(FunctionExpert(strong_expert), random_state=0).fit(
        X, y
    )
    assert a.threshold_ == b.threshold_
    np.testing.assert_allclose(a.dv_estimator_[-1].coef_, b.dv_estimator_[-1].coef_)


def test_calibrate_on_held_out_data(data):
    X, y, X_eval, y_eval = data
    cascade = make(
        strong_expert, calibration_size=None, random_state=0
    ).fit(X, y)
    assert cascade.threshold_ == np.inf and cascade.calibration_ is None
    assert not cascade.delegate(X_eval).any()
    cascade.calibrate(X_eval, y_eval)
    assert np.isfinite(cascade.threshold_)
    result = cascade.calibration_
    assert result.n_test + len(result.opt_indices) == len(X_eval)
    with pytest.raises(ValueError, match="not among the known classes"):
        cascade.calibrate(X_eval[:10], np.full(10, 7))


def test_too_few_calibration_rows_warns_and_keeps_the_probe():
    X, y = make_hard_region_data(40, seed=1)
    with pytest.warns(UserWarning, match="calibration rows|certif"):
        cascade = make(strong_expert, calibration_size=3, cv=2, random_state=0).fit(X, y)
    assert cascade.threshold_ == np.inf
    np.testing.assert_allclose(
        cascade.predict_proba(X)[:, 1], cascade.probe_.predict_proba(X)[:, 1]
    )


def test_string_labels(data):
    X, y, X_eval, _ = data
    labels = np.where(y == 1, "unsafe", "safe")
    cascade = make(strong_expert, random_state=0).fit(X, labels)
    assert cascade.classes_.tolist() == ["safe", "unsafe"]
    assert set(cascade.predict(X_eval)) <= {"safe", "unsafe"}


def test_expert_failures_fall_back_to_the_probe(data):
    X, y, X_eval, _ = data
    e_fit = strong_expert(X)
    failing = PrecomputedExpert(e_fit, keys=X, on_error="fallback")  # eval rows unknown
    cascade = make(failing, alpha=0.3, random_state=0).fit(
        X, y, expert_scores=e_fit
    )
    routed = cascade.route(X_eval)
    assert routed.delegated.any()
    np.testing.assert_array_equal(routed.expert_failed, routed.delegated)
    np.testing.assert_allclose(routed.scores, routed.probe_scores)
    assert routed.expert_report.n_failed == routed.delegated.sum()
    assert routed.expert_report.failed_rows == np.flatnonzero(routed.delegated).tolist()
    strict = make(PrecomputedExpert(e_fit, keys=X), alpha=0.3, random_state=0).fit(
        X, y, expert_scores=e_fit
    )
    with pytest.raises(ExpertError, match="no precomputed score"):
        strict.predict(X_eval)


def test_combine_average(data):
    X, y, X_eval, _ = data
    cascade = make(
        strong_expert, combine="average", alpha=0.3, random_state=0
    ).fit(X, y)
    r = cascade.route(X_eval)
    d = r.delegated
    np.testing.assert_allclose(
        r.scores[d], 0.5 * (r.probe_scores[d] + r.expert_scores[d])
    )


def test_uncertainty_signal_baseline(data):
    X, y, X_eval, _ = data
    expert = CountingExpert(strong_expert)
    cascade = make(
        expert, signal="uncertainty", alpha=0.2, random_state=0
    ).fit(X, y)
    assert cascade.dv_estimator_ is None
    signal = cascade.delegation_signal(X_eval)
    assert signal.max() <= 0 and signal.min() >= -0.5
    # the expert is needed only on calibration rows, not to train a DV probe
    assert len(expert.seen) == round(0.3 * len(X))


def test_frozen_probe_is_not_refitted(data):
    X, y, X_eval, _ = data
    probe = LogisticRegression(C=0.01).fit(X[:500], y[:500])
    coef = probe.coef_.copy()
    cascade = make(
        strong_expert, probe=FrozenEstimator(probe), random_state=0
    ).fit(X, y)
    np.testing.assert_array_equal(probe.coef_, coef)
    np.testing.assert_allclose(
        cascade.route(X_eval).probe_scores, probe.predict_proba(X_eval)[:, 1]
    )


def test_pipeline_grid_search_cross_val_clone_pickle(data, tmp_path):
    X, y, X_eval, y_eval = data
    X, y = X[:1500], y[:1500]
    cascade = make(FunctionExpert(strong_expert), random_state=0)
    pipe = make_pipeline(StandardScaler(), cascade)
    assert pipe.fit(X, y).predict(X_eval).shape == (len(X_eval),)
    search = GridSearchCV(
        cascade,
        {
            "alpha": [0.1, 0.3],
            "probe": [LogisticRegression(C=0.1), LogisticRegression(C=1.0)],
        },
        cv=3,
        scoring="roc_auc",
    ).fit(X, y)
    # the strong expert knows the hard region (~21% of rows): a budget of 0.3
    # covers it, 0.1 does not, so alpha=0.3 scores higher with either probe
    by_alpha = {
        a: search.cv_results_["mean_test_score"][
            np.asarray(search.cv_results_["param_alpha"]) == a
        ]
        for a in (0.1, 0.3)
    }
    assert np.all(by_alpha[0.3] > by_alpha[0.1] + 0.02)
    assert search.best_params_["alpha"] == 0.3
    scores = cross_val_score(cascade, X, y, cv=3, scoring="accuracy")
    assert scores.shape == (3,) and (scores > 0.6).all()
    fitted = clone(cascade).fit(X, y)
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(
        restored.predict_proba(X_eval), fitted.predict_proba(X_eval)
    )
    joblib.dump(fitted, tmp_path / "cascade.joblib")
    again = joblib.load(tmp_path / "cascade.joblib")
    np.testing.assert_array_equal(again.predict(X_eval), fitted.predict(X_eval))


def test_grid_search_over_nested_probe_param(data):
    X, y, _, _ = data
    cascade = make(FunctionExpert(strong_expert), random_state=0)
    search = GridSearchCV(cascade, {"probe__C": [0.1, 1.0]}, cv=2).fit(X[:800], y[:800])
    # each candidate's fold scores are those of a cascade built with that probe
    for i, c in enumerate([0.1, 1.0]):
        direct = cross_val_score(
            make(FunctionExpert(strong_expert), probe=LogisticRegression(C=c),
                 random_state=0),
            X[:800], y[:800], cv=2,
        )
        found = [search.cv_results_[f"split{k}_test_score"][i] for k in range(2)]
        np.testing.assert_array_equal(found, direct)
    assert search.best_estimator_.probe_.C == search.best_params_["probe__C"]


def test_fit_params_are_routed_by_grid_search(data):
    X, y, _, _ = data
    X, y = X[:900], y[:900]
    expert = CountingExpert(strong_expert)
    search = GridSearchCV(
        make(expert, random_state=0), {"alpha": [0.2, 0.4]}, cv=3
    ).fit(X, y, expert_scores=strong_expert(X))
    # fits used the given scores; the expert was only called to score the folds
    assert search.best_estimator_.expert_report_.n_rows == 0
    assert len(expert.seen) < len(X)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"alpha": 0.0}, "alpha"),
        ({"alpha": 1.5}, "alpha"),
        ({"delta": 1.0}, "delta"),
        ({"signal": "entropy"}, "signal"),
        ({"calibration_size": 0.0}, "calibration_size"),
    ],
)
def test_bad_parameters(params, match):
    X, y = make_hard_region_data(100, seed=2)
    with pytest.raises(InvalidParameterError, match=match):
        make(strong_expert, **params).fit(X, y)


def test_bad_data():
    X, y = make_hard_region_data(200, seed=3)
    cascade = make(strong_expert, random_state=0)
    X_nan = X.copy()
    X_nan[5, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        cascade.fit(X_nan, y)
    with pytest.raises(ValueError, match="only one class"):
        cascade.fit(X, np.zeros(200, dtype=int))
    with pytest.raises(ValueError, match="Unknown label type"):
        cascade.fit(X, np.arange(200) % 3)
    with pytest.raises(ValueError, match="Unknown label type"):
        cascade.fit(X, np.linspace(0, 1, 200))
    with pytest.raises(ValueError, match="expert_scores has 3 values"):
        cascade.fit(X, y, expert_scores=[0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match=r"expert_scores must be probabilities"):
        cascade.fit(X, y, expert_scores=np.full(200, 1.5))
    fitted = cascade.fit(X, y)
    with pytest.raises(ValueError, match="features"):
        fitted.predict(X[:, :2])


def test_no_warning_on_a_normal_fit(data):
    X, y, _, _ = data
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make(strong_expert, random_state=0).fit(X, y)


def test_calibrate_validates_the_parameters(data):
    X, y, X_eval, y_eval = data
    cascade = make(strong_expert, calibration_size=None, random_state=0).fit(X, y)
    with pytest.raises(InvalidParameterError, match="alpha"):
        cascade.set_params(alpha=1.5).calibrate(X_eval, y_eval)


# --------------------------------------------------------------------------------------
# the expert is required (like the estimator of scikit-learn's meta-estimators)
# --------------------------------------------------------------------------------------
def test_expert_is_a_required_parameter():
    X, y = make_hard_region_data(200, seed=3)
    with pytest.raises(TypeError, match="expert"):
        CalibratedDelegationCascade()
    with pytest.raises(InvalidParameterError, match="'expert' parameter"):
        CalibratedDelegationCascade(None).fit(X, y)
    assert "expert" in CalibratedDelegationCascade(strong_expert).get_params()


# --------------------------------------------------------------------------------------
# the default probes are the shared recipes
# --------------------------------------------------------------------------------------
def test_default_probes_are_the_recipes(data):
    X, y, X_eval, y_eval = data
    X, y = X[:1200], y[:1200]
    a = CalibratedDelegationCascade(strong_expert, cv=3, random_state=0).fit(X, y)
    assert isinstance(a.probe_, Pipeline) and isinstance(a.dv_estimator_, Pipeline)
    seed = a.probe_[-1].cv.random_state  # drawn from random_state
    assert isinstance(seed, int)
    recipe = make_safety_probe(random_state=seed)
    assert repr(a.probe_.get_params()) == repr(recipe.get_params())
    dv_recipe = make_dv_probe(n_probe_features=2)  # dv_features="activations+probe"
    assert repr(a.dv_estimator_.get_params()) == repr(dv_recipe.get_params())
    assert a.dv_estimator_.n_features_in_ == X.shape[1] + 2
    paper = CalibratedDelegationCascade(
        strong_expert, cv=3, dv_features="activations", random_state=0
    ).fit(X, y)
    assert repr(paper.dv_estimator_.get_params()) == repr(make_dv_probe().get_params())
    assert paper.dv_estimator_.n_features_in_ == X.shape[1]
    # without a calibration part the probes are the recipes fitted on all rows:
    # the probe on (X, y), the DV probe on the delegation value of its 3-fold
    # out-of-fold scores (StratifiedKFold(3), as check_cv makes of cv=3); the
    # hyper-parameters each one chose are those of the same search run by hand
    c = CalibratedDelegationCascade(
        strong_expert, cv=3, calibration_size=None, dv_features="activations",
        random_state=0,
    ).fit(X, y)  # fmt: skip
    recipe = make_safety_probe(random_state=c.probe_[-1].cv.random_state)
    probe = clone(recipe).fit(X, y)
    assert c.probe_[-1].best_params_ == probe[-1].best_params_
    np.testing.assert_allclose(
        c.probe_.predict_proba(X_eval), probe.predict_proba(X_eval), rtol=1e-12
    )
    oof = cross_val_predict(clone(recipe), X, y, cv=3, method="predict_proba")[:, 1]
    dv = make_dv_probe().fit(X, delegation_value(y, oof, strong_expert(X)))
    assert c.dv_estimator_[-1].alpha_ == dv[-1].alpha_
    np.testing.assert_allclose(
        c.dv_estimator_.predict(X_eval), dv.predict(X_eval), rtol=1e-10, atol=1e-12
    )
    # the same random_state, the same cascade
    b = CalibratedDelegationCascade(strong_expert, cv=3, random_state=0).fit(X, y)
    np.testing.assert_array_equal(a.predict_proba(X_eval), b.predict_proba(X_eval))
    assert a.threshold_ == b.threshold_
    # the threshold calibration draws the same seed as with any other probe
    c = make(strong_expert, cv=3, random_state=0).fit(X, y)
    np.testing.assert_array_equal(
        a.calibration_.opt_indices, c.calibration_.opt_indices
    )


# --------------------------------------------------------------------------------------
# a frozen probe is not cross-fitted
# --------------------------------------------------------------------------------------
class ExplodingCV:
    """A splitter that fails if the cascade tries to cross-fit."""

    def get_n_splits(self, X=None, y=None, groups=None):
        return 3

    def split(self, X, y=None, groups=None):
        raise RuntimeError("cross-fitting was attempted")


def test_frozen_probe_is_not_cross_fitted(data):
    X, y, _, _ = data
    probe = LogisticRegression(C=0.01).fit(X[:1000], y[:1000])
    X_fit, y_fit = X[1000:2500], y[1000:2500]
    e_fit = strong_expert(X_fit)
    cascade = CalibratedDelegationCascade(
        strong_expert, probe=FrozenEstimator(probe), dv_estimator=Ridge(),
        cv=ExplodingCV(), calibration_size=None, random_state=0,
    ).fit(X_fit, y_fit, expert_scores=e_fit)
    # the DV targets and probe features use the frozen probe's own scores:
    # out-of-sample already
    p_fit = probe.predict_proba(X_fit)[:, 1]
    v = delegation_value(y_fit, p_fit, e_fit)
    np.testing.assert_allclose(
        cascade.dv_estimator_.coef_,
        Ridge().fit(np.hstack([X_fit, probe_features(p_fit)]), v).coef_,
    )
    # a probe that is fitted here is cross-fitted with cv
    with pytest.raises(RuntimeError, match="cross-fitting was attempted"):
        make(strong_expert, cv=ExplodingCV(), calibration_size=None).fit(
            X_fit, y_fit, expert_scores=e_fit
        )


# --------------------------------------------------------------------------------------
# route without calling the expert
# --------------------------------------------------------------------------------------
def test_route_without_calling_the_expert(data):
    X, y, X_eval, _ = data
    expert = CountingExpert(strong_expert)
    cascade = make(expert, alpha=0.3, random_state=0).fit(
        X, y, expert_scores=strong_expert(X)
    )
    quiet = cascade.route(X_eval, call_expert=False)
    assert expert.seen == [] and quiet.expert_report.n_rows == 0
    full = cascade.route(X_eval)
    assert full.delegated.any() and len(expert.seen) == full.delegated.sum()
    for key in ("probe_scores", "signal", "delegated"):
        np.testing.assert_array_equal(quiet[key], full[key])
    assert np.isnan(quiet.expert_scores).all() and not quiet.expert_failed.any()
    np.testing.assert_array_equal(quiet.scores, quiet.probe_scores)
    assert quiet.threshold == full.threshold == cascade.threshold_
    np.testing.assert_array_equal(cascade.delegate(X_eval), full.delegated)
    np.testing.assert_array_equal(cascade.delegation_signal(X_eval), full.signal)


# --------------------------------------------------------------------------------------
# metadata routing: sample_weight reaches the probe, its cross-fitting, the DV probe
# --------------------------------------------------------------------------------------
class RecordingLogisticRegression(LogisticRegression):
    """Keeps the sample weights it was fitted with."""

    def fit(self, X, y, sample_weight=None):
        self.weights_seen_ = None if sample_weight is None else np.array(sample_weight)
        return super().fit(X, y, sample_weight=sample_weight)


def test_sample_weight_needs_metadata_routing(data):
    X, y, _, _ = data
    with pytest.raises(ValueError, match="enable_metadata_routing=True"):
        make(strong_expert).fit(X[:300], y[:300], sample_weight=np.ones(300))


def test_sample_weight_is_routed_to_the_probes(data):
    X, y, _, _ = data
    X, y = X[:1500], y[:1500]
    e = strong_expert(X)
    w = np.random.default_rng(0).uniform(0.2, 3.0, len(y))
    with sklearn.config_context(enable_metadata_routing=True):
        cascade = CalibratedDelegationCascade(
            strong_expert,
            probe=LogisticRegression().set_fit_request(sample_weight=True),
            dv_estimator=Ridge().set_fit_request(sample_weight=True),
            calibration_size=None,
            random_state=0,
        ).fit(X, y, expert_scores=e, sample_weight=w)
        weighted = LogisticRegression().set_fit_request(sample_weight=True)
        p_oof = cross_val_predict(
            weighted, X, y, cv=StratifiedKFold(5), method="predict_proba",
            params={"sample_weight": w},
        )[:, 1]
    np.testing.assert_allclose(
        cascade.probe_.coef_, LogisticRegression().fit(X, y, sample_weight=w).coef_
    )
    v = delegation_value(y, p_oof, e)
    np.testing.assert_allclose(
        cascade.dv_estimator_.coef_,
        Ridge().fit(np.hstack([X, probe_features(p_oof)]), v, sample_weight=w).coef_,
    )
    unweighted = make(strong_expert, dv_estimator=Ridge(), calibration_size=None).fit(
        X, y, expert_scores=e
    )
    assert not np.allclose(unweighted.probe_.coef_, cascade.probe_.coef_)


def test_sample_weight_is_sliced_to_the_training_part(data):
    X, y, _, _ = data
    X, y = X[:1000], y[:1000]
    w = np.arange(1.0, 1001.0)  # increasing: the rows a fit received are readable
    with sklearn.config_context(enable_metadata_routing=True):
        cascade = CalibratedDelegationCascade(
            strong_expert,
            probe=RecordingLogisticRegression().set_fit_request(sample_weight=True),
            dv_estimator=Ridge().set_fit_request(sample_weight=False),
            calibration_size=0.3,
            random_state=0,
        ).fit(X, y, sample_weight=w)
        seen = cascade.probe_.weights_seen_
        assert seen.shape == (700,) and np.all(np.diff(seen) > 0)
        assert np.isin(seen, w).all()
        # the default probe does not request the weights: a clear error
        with pytest.raises(ValueError, match="sample_weight"):
            CalibratedDelegationCascade(strong_expert).fit(X, y, sample_weight=w)


def test_metadata_routing_lists_what_the_inner_estimators_take():
    with sklearn.config_context(enable_metadata_routing=True):
        routing = CalibratedDelegationCascade(
            strong_expert,
            probe=LogisticRegression().set_fit_request(sample_weight=True),
            dv_estimator=Ridge().set_fit_request(sample_weight=False),
            cv=GroupKFold(3),
        ).get_metadata_routing()
        assert routing.consumes("fit", ["sample_weight", "groups", "other"]) == {
            "sample_weight",
            "groups",
        }
        # groups reach the cross-fitting splitter (GroupKFold fails without them)
        X, y = make_hard_region_data(300, seed=4)
        groups = np.arange(300) % 6
        fitted = make(strong_expert, dv_estimator=Ridge(), cv=GroupKFold(3),
                      random_state=0).fit(X, y, groups=groups)
        assert np.isfinite(fitted.delegation_signal(X)).all()
    with pytest.raises(ValueError, match="groups"):
        make(strong_expert, cv=GroupKFold(3), random_state=0).fit(X, y)
