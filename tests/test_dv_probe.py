"""The DV probe options: probe features, recipes, expert recalibration, combine="auto"."""

import warnings

import numpy as np
import pytest
from scipy.special import expit
from scipy.stats import spearmanr
from sklearn.base import clone
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from skctd import (
    CalibratedDelegationCascade,
    choose_combine,
    combined_scores,
    delegation_value,
    uncertainty_signal,
)
from skctd.probes import (
    N_PROBE_FEATURES,
    DVFeatureScaler,
    make_dv_probe,
    probe_features,
)
from skctd.recalibration import ScoreCalibrator


# --------------------------------------------------------------------------------------
# probe features and the recipes
# --------------------------------------------------------------------------------------
def test_probe_features_by_hand():
    F = probe_features([0.5, 0.9, 0.0, 1.0])
    assert F.shape == (4, N_PROBE_FEATURES)
    np.testing.assert_allclose(F[:2, 0], [0.0, np.log(9)])
    np.testing.assert_allclose(F[:2, 1], [1.0, 4 * 0.9 * 0.1])
    # certain scores are clipped, not infinite
    np.testing.assert_allclose(F[2:, 0], [np.log(1e-6 / (1 - 1e-6)), np.log((1 - 1e-6) / 1e-6)])
    assert np.all(np.isfinite(F))
    with pytest.raises(ValueError, match="probe_scores"):
        probe_features([0.2, 1.5])


def test_dv_feature_scaler_by_hand():
    X = np.array([[1.0, 10.0, 0.0], [3.0, 10.0, 4.0], [5.0, 10.0, 8.0]])
    out = DVFeatureScaler(n_probe_features=1, probe_weight=5.0).fit_transform(X)
    z = np.array([-1.0, 0.0, 1.0]) * np.sqrt(1.5)  # standardised 3 evenly spaced values
    np.testing.assert_allclose(out[:, 0], z)
    np.testing.assert_allclose(out[:, 1], 0.0)  # a constant column stays 0, no NaN
    np.testing.assert_allclose(out[:, 2], 5.0 * z)
    plain = DVFeatureScaler(n_probe_features=0).fit_transform(X)
    np.testing.assert_allclose(plain[:, 2], z)
    with pytest.raises(ValueError, match="n_probe_features=4"):
        DVFeatureScaler(n_probe_features=4).fit(X)


def test_weight_divides_the_penalty_of_the_probe_features():
    """Ridge on [A, w * F] is ridge with penalty alpha on A and alpha / w^2 on F."""
    rng = np.random.default_rng(0)
    A = rng.normal(size=(200, 30))
    F = rng.normal(size=(200, 2))
    v = F @ [1.0, -0.5] + 0.1 * A[:, 0] + rng.normal(0, 0.3, 200)
    X = np.hstack([A, F])
    Xs = DVFeatureScaler(n_probe_features=2, probe_weight=10.0).fit_transform(X)
    coef = Ridge(alpha=50.0).fit(Xs, v).coef_
    # the same solution written with separate penalties (closed form on centred data)
    S = (X - X.mean(0)) / X.std(0)
    pen = np.r_[np.full(30, 50.0), np.full(2, 50.0 / 100.0)]
    beta = np.linalg.solve(S.T @ S + np.diag(pen), S.T @ (v - v.mean()))
    np.testing.assert_allclose(coef[:30], beta[:30], rtol=1e-6, atol=1e-10)
    np.testing.assert_allclose(coef[30:] * 10.0, beta[30:], rtol=1e-6)


def test_make_dv_probe_recipes():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 40))
    v = X[:, -1] + rng.normal(0, 0.1, 300)
    paper = make_dv_probe()
    assert type(paper[0]).__name__ == "StandardScaler"
    ridge = make_dv_probe(n_probe_features=2, probe_weight=7.0)
    assert ridge[0].get_params() == {"n_probe_features": 2, "probe_weight": 7.0}
    boost = make_dv_probe("boosting", n_probe_features=2, n_components=8, random_state=0)
    pred = boost.fit(X, v).predict(X)
    assert spearmanr(pred, v).statistic > 0.9  # the passthrough column is used
    assert boost[0].transformers_[0][2] == slice(0, -2)
    again = clone(boost).fit(X, v).predict(X)
    np.testing.assert_array_equal(pred, again)  # seeded
    with pytest.raises(ValueError, match="kind must be one of"):
        make_dv_probe("forest")
    with pytest.raises(ValueError, match="n_probe_features"):
        make_dv_probe(n_probe_features=-1)


# --------------------------------------------------------------------------------------
# known answers: where the best DV ranking is known
# --------------------------------------------------------------------------------------
def _uncertainty_world(n, seed):
    """The expert is right everywhere, so v = 0.95 - P_probe(y|x): all that is
    predictable about v is a function of the probe's uncertainty, symmetric in the
    activation that drives the label -- invisible to a linear model of the
    activations, one column away with the probe features."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 10))
    y = (X[:, 0] + rng.normal(0, 0.7, n) > 0).astype(int)
    e = np.where(y == 1, 0.95, 0.05)
    return X, y, e


def test_probe_features_recover_a_ranking_the_activations_cannot():
    X, y, e = _uncertainty_world(4000, 0)
    probe = LogisticRegression().fit(X[:1000], y[:1000])
    kw = dict(probe=FrozenEstimator(probe), calibration_size=None, random_state=0)
    fit, ev = slice(1000, 2500), slice(2500, None)
    with_probe = CalibratedDelegationCascade(lambda r: r, **kw).fit(
        X[fit], y[fit], expert_scores=e[fit])
    paper = CalibratedDelegationCascade(lambda r: r, dv_features="activations", **kw).fit(
        X[fit], y[fit], expert_scores=e[fit])
    p = probe.predict_proba(X[ev])[:, 1]
    v = delegation_value(y[ev], p, e[ev])
    u = uncertainty_signal(p, np.sort(p))
    d_new = with_probe.delegation_signal(X[ev])
    d_paper = paper.delegation_signal(X[ev])
    # the best ranking here is the probe's uncertainty; the new DV probe finds it
    assert spearmanr(d_new, u).statistic > 0.95
    assert spearmanr(d_new, v).statistic > 0.5
    assert abs(spearmanr(d_paper, v).statistic) < 0.15
    # and the top 20% it picks are worth what the uncertainty's top 20% are worth,
    # far more than the paper's DV probe's
    k = v.size // 5
    top_new, top_u = np.argsort(-d_new)[:k], np.argsort(-u)[:k]
    top_paper = np.argsort(-d_paper)[:k]
    assert v[top_new].mean() > v[top_u].mean() - 0.01
    assert v[top_new].mean() > v[top_paper].mean() + 0.1


def test_activations_still_find_where_the_expert_helps():
    """The expert helps only in a region the activations reveal (x1 > 0.8, 21% of
    rows) and is confidently wrong elsewhere: uncertainty is blind to it. The
    paper's DV probe (activations only) ranks exactly that region first; with the
    probe features the region still dominates its top rows, diluted by uncertain
    rows just outside it (the linear model adds the two effects), and it stays far
    above uncertainty."""
    rng = np.random.default_rng(2)
    n = 5000
    X = rng.normal(size=(n, 6))
    y = (X[:, 0] + rng.normal(0, 0.8, n) > 0).astype(int)
    helps = X[:, 1] > 0.8
    e = np.where(helps, np.where(y == 1, 0.95, 0.05), np.where(y == 1, 0.1, 0.9))
    probe = LogisticRegression().fit(X[:1000], y[:1000])
    ev = slice(3000, None)
    p = probe.predict_proba(X[ev])[:, 1]
    v = delegation_value(y[ev], p, e[ev])
    u = uncertainty_signal(p, np.sort(p))
    k = int(helps[ev].sum())
    top_u = np.argsort(-u)[:k]
    share, mean_v = {}, {}
    for features in ("activations+probe", "activations"):
        cascade = CalibratedDelegationCascade(
            lambda r: r, probe=FrozenEstimator(probe), dv_features=features,
            calibration_size=None, random_state=0,
        ).fit(X[1000:3000], y[1000:3000], expert_scores=e[1000:3000])
        top = np.argsort(-cascade.delegation_signal(X[ev]))[:k]
        share[features], mean_v[features] = helps[ev][top].mean(), v[top].mean()
    assert share["activations"] > 0.95
    assert share["activations+probe"] > 0.55 > 2.5 * helps[ev].mean()
    assert helps[ev][top_u].mean() < 0.3
    assert mean_v["activations+probe"] > v[top_u].mean() + 0.2
    assert mean_v["activations"] > mean_v["activations+probe"]


# --------------------------------------------------------------------------------------
# the cascade feeds the DV probe the same features at fit, calibrate and predict
# --------------------------------------------------------------------------------------
class RecordingRidge(Ridge):
    """Ridge that keeps the matrices it is given (fit and predict)."""

    def fit(self, X, y, sample_weight=None):
        self.fit_X_ = np.array(X)
        return super().fit(X, y, sample_weight=sample_weight)

    def predict(self, X):
        self.seen_ = getattr(self, "seen_", []) + [np.array(X)]
        return super().predict(X)


def test_dv_features_are_consistent_between_fit_calibrate_and_predict():
    X, y, _ = _uncertainty_world(1500, 3)
    cv = StratifiedKFold(4)

    def expert(rows):
        return np.where(rows[:, 0] > 0, 0.95, 0.05)

    cascade = CalibratedDelegationCascade(
        expert, probe=LogisticRegression(), dv_estimator=RecordingRidge(), cv=cv,
        calibration_size=None, random_state=0,
    ).fit(X[:900], y[:900])
    dv = cascade.dv_estimator_
    # at fit: the features, then the probe features of the out-of-fold probe scores
    p_oof = cross_val_predict(LogisticRegression(), X[:900], y[:900], cv=cv,
                              method="predict_proba")[:, 1]
    np.testing.assert_allclose(dv.fit_X_, np.hstack([X[:900], probe_features(p_oof)]))
    # at calibrate: the fitted probe's scores of the calibration rows
    dv.seen_ = []
    cascade.calibrate(X[900:1500], y[900:1500])
    (X_cal,) = dv.seen_
    p_cal = cascade.probe_.predict_proba(X[900:1500])[:, 1]
    np.testing.assert_allclose(X_cal, np.hstack([X[900:1500], probe_features(p_cal)]))
    # at predict: the same
    dv.seen_ = []
    signal = cascade.delegation_signal(X[:50])
    (X_pred,) = dv.seen_
    p = cascade.probe_.predict_proba(X[:50])[:, 1]
    np.testing.assert_allclose(X_pred, np.hstack([X[:50], probe_features(p)]))
    np.testing.assert_allclose(signal, Ridge.predict(dv, X_pred))
    # the paper's DV probe reads the features only
    paper = clone(cascade).set_params(dv_features="activations").fit(X[:900], y[:900])
    np.testing.assert_allclose(paper.dv_estimator_.fit_X_, X[:900])


# --------------------------------------------------------------------------------------
# expert-score recalibration
# --------------------------------------------------------------------------------------
def test_score_calibrator_on_a_hard_expert_is_the_rate_behind_each_verdict():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 2000)
    e = np.where(rng.uniform(size=2000) < 0.8, y, 1 - y).astype(float)
    iso = ScoreCalibrator("isotonic").fit(e[:, None], y)
    out = iso.predict_proba(np.array([[0.0], [1.0]]))[:, 1]
    np.testing.assert_allclose(out, [y[e == 0].mean(), y[e == 1].mean()])
    platt = ScoreCalibrator("sigmoid").fit(e[:, None], y)
    np.testing.assert_allclose(
        platt.predict_proba(np.array([[0.0], [1.0]]))[:, 1], out, atol=0.01
    )
    assert list(iso.classes_) == [0, 1]
    with pytest.raises(ValueError, match="one column of scores"):
        ScoreCalibrator().fit(np.ones((4, 2)), [0, 1, 0, 1])
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\]"):
        ScoreCalibrator().fit([[1.5], [0.2]], [0, 1])


def _biased_world(n, seed):
    """An expert that ranks well but says "unsafe" to almost everything."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    y = (X[:, 0] + rng.normal(0, 1.0, n) > 0).astype(int)
    raw = expit(2.5 + 2.0 * X[:, 0] + rng.normal(0, 0.5, n))
    return X, y, raw


def test_expert_calibration_is_cross_fitted_for_the_dv_targets():
    X, y, raw = _biased_world(1200, 4)
    probe = LogisticRegression().fit(X[:400], y[:400])
    cv = StratifiedKFold(5)
    X_fit, y_fit, e_fit = X[400:], y[400:], raw[400:]
    cascade = CalibratedDelegationCascade(
        lambda r: r, probe=FrozenEstimator(probe), dv_estimator=Ridge(),
        dv_features="activations", expert_calibration="isotonic", cv=cv,
        calibration_size=None, random_state=0,
    ).fit(X_fit, y_fit, expert_scores=e_fit)
    p = probe.predict_proba(X_fit)[:, 1]
    oof = cross_val_predict(ScoreCalibrator("isotonic"), e_fit[:, None], y_fit, cv=cv,
                            method="predict_proba")[:, 1]
    v = delegation_value(y_fit, p, oof)
    np.testing.assert_allclose(cascade.dv_estimator_.coef_, Ridge().fit(X_fit, v).coef_)
    # in-sample recalibrated targets would be a different (leaky) fit
    in_sample = ScoreCalibrator("isotonic").fit(e_fit[:, None], y_fit)
    leak = delegation_value(y_fit, p, in_sample.predict_proba(e_fit[:, None])[:, 1])
    assert not np.allclose(cascade.dv_estimator_.coef_, Ridge().fit(X_fit, leak).coef_)
    # the map used afterwards is the one fitted on the whole training part
    np.testing.assert_allclose(
        cascade.transform_expert_scores(raw[:400]),
        in_sample.predict_proba(raw[:400, None])[:, 1],
    )
    nan = cascade.transform_expert_scores([np.nan, 0.9])
    assert np.isnan(nan[0]) and np.isfinite(nan[1])


def test_expert_calibration_is_used_at_calibrate_and_predict():
    X, y, raw = _biased_world(3000, 5)

    def expert(rows):
        return expit(2.5 + 2.0 * rows[:, 0])

    cascade = CalibratedDelegationCascade(
        expert, probe=LogisticRegression(), expert_calibration="sigmoid", alpha=0.5,
        combine="replace", random_state=0,
    ).fit(X[:2000], y[:2000])
    routed = cascade.route(X[2000:])
    d = routed.delegated
    assert d.any()
    np.testing.assert_allclose(routed.expert_raw_scores[d], expert(X[2000:][d]))
    calibrated = cascade.expert_calibrator_.predict_proba(expert(X[2000:][d])[:, None])[:, 1]
    np.testing.assert_allclose(routed.expert_scores[d], calibrated)
    np.testing.assert_allclose(routed.scores[d], calibrated)  # combine="replace"
    # the raw expert is useless at 0.5, the recalibrated one is not
    assert np.mean((expert(X[2000:]) >= 0.5) == y[2000:]) < 0.65
    e_cal = cascade.transform_expert_scores(expert(X[2000:]))
    assert np.mean((e_cal >= 0.5) == y[2000:]) > 0.7
    # calibrate() uses the recalibrated scores too: the same as the cascade's own
    # calibration on the same rows
    rows = slice(2000, 2600)
    a = clone(cascade).set_params(calibration_size=None).fit(X[:2000], y[:2000])
    b = clone(a)
    b.__dict__.update(a.__dict__)
    a.calibrate(X[rows], y[rows])
    b.calibrate(X[rows], y[rows], expert_scores=expert(X[rows]))
    assert a.threshold_ == b.threshold_
    np.testing.assert_allclose(
        a.calibration_.performance_risk_opt, b.calibration_.performance_risk_opt
    )


def test_expert_calibration_needs_both_classes():
    X, y, raw = _biased_world(300, 6)
    with pytest.raises(ValueError, match="expert_calibration='sigmoid' needs"):
        CalibratedDelegationCascade(
            lambda r: r, probe=LogisticRegression(), expert_calibration="sigmoid",
            calibration_size=None,
        ).fit(X, y, expert_scores=np.full(300, np.nan))


# --------------------------------------------------------------------------------------
# combine
# --------------------------------------------------------------------------------------
def test_combined_scores():
    np.testing.assert_allclose(combined_scores([0.2, 0.6], [1.0, 0.0], "replace"), [1, 0])
    np.testing.assert_allclose(combined_scores([0.2, 0.6], [1.0, 0.0], "average"),
                               [0.6, 0.3])
    with pytest.raises(ValueError, match="combine"):
        combined_scores([0.2], [0.1], "max")


def test_choose_combine_known_answers():
    rng = np.random.default_rng(0)
    n = 1000
    y = rng.integers(0, 2, n)
    p = np.clip(0.5 + (2 * y - 1) * rng.normal(0.1, 0.3, n), 0.01, 0.99)
    s = rng.uniform(size=n)
    # a perfect graded expert on the rows ranked first: replacing is best
    perfect = np.where(y == 1, 0.99, 0.01)
    assert choose_combine(s, y, p, perfect, alpha=0.3) == "replace"
    # an expert that is a coin flip but graded: averaging keeps the probe's signal
    coin = rng.uniform(size=n)
    assert choose_combine(s, y, p, coin, alpha=0.3, performance_risk="auroc") == "average"
    # a budget too small to delegate anything on these rows: a tie -> replace
    assert choose_combine(s, y, p, coin, alpha=1e-4) == "replace"
    out = choose_combine(s, y, p, coin, alpha=[1e-4, 0.5], performance_risk="auroc")
    np.testing.assert_array_equal(out, ["replace", "average"])
    # a callable risk
    def risk(y_, scores):
        return float(np.mean((scores >= 0.5) != y_))
    assert choose_combine(s, y, p, perfect, alpha=0.3, performance_risk=risk) == "replace"
    with pytest.raises(ValueError, match="performance_risk"):
        choose_combine(s, y, p, coin, alpha=0.3, performance_risk="f1")


def test_combine_auto_never_looks_at_the_testing_rows():
    rng = np.random.default_rng(7)
    n = 1600
    X = rng.normal(size=(n, 4))
    y = (X[:, 0] + rng.normal(0, 0.6, n) > 0).astype(int)
    right = rng.uniform(size=n) < 0.75
    e = np.where(right, y, 1 - y).astype(float)  # a hard 0/1 expert
    cascade = CalibratedDelegationCascade(
        lambda r: r, probe=LogisticRegression(), combine="auto", alpha=0.3,
        calibration_size=None, random_state=0,
    ).fit(X[:800], y[:800], expert_scores=e[:800])
    Xc, yc, ec = X[800:], y[800:], e[800:].copy()
    cascade.calibrate(Xc, yc, expert_scores=ec)
    cr = cascade.calibration_
    p = cascade.probe_.predict_proba(Xc)[:, 1]
    sig = cascade.delegation_signal(Xc)
    o = cr.opt_indices
    assert cascade.combine_ == choose_combine(sig[o], yc[o], p[o], ec[o], alpha=0.3)
    first = (cascade.combine_, cascade.threshold_)
    # scramble the expert's verdicts on the testing rows: nothing changes
    scrambled = ec.copy()
    scrambled[cr.test_indices] = 1.0 - scrambled[cr.test_indices]
    cascade.calibrate(Xc, yc, expert_scores=scrambled)
    assert (cascade.combine_, cascade.threshold_) == first
    # the optimisation rows do decide: make the expert perfect there
    best = ec.copy()
    best[o] = np.where(yc[o] == 1, 0.99, 0.01)
    cascade.calibrate(Xc, yc, expert_scores=best)
    assert cascade.combine_ == "replace"
    routed = cascade.route(Xc[:300], call_expert=False)
    assert routed.scores.shape == (300,)


def test_combine_auto_scores_delegated_rows_with_the_chosen_rule():
    rng = np.random.default_rng(8)
    n = 1600
    X = rng.normal(size=(n, 4))
    y = (X[:, 0] + rng.normal(0, 0.6, n) > 0).astype(int)

    def expert(rows):  # hard verdicts, right 70% of the time (seeded by the row)
        h = np.abs(np.sin(rows[:, 1] * 1e4))
        truth = (rows[:, 0] > 0).astype(float)
        return np.where(h < 0.7, truth, 1.0 - truth)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        cascade = CalibratedDelegationCascade(
            expert, probe=LogisticRegression(), combine="auto", alpha=0.4,
            random_state=0,
        ).fit(X, y)
    routed = cascade.route(X[:400])
    d = routed.delegated
    assert cascade.combine_ in ("replace", "average")
    want = combined_scores(routed.probe_scores[d], routed.expert_scores[d], cascade.combine_)
    np.testing.assert_allclose(routed.scores[d], want)


def test_evaluate_cascade_reads_the_recalibrated_expert_scores():
    from skctd.evaluation import evaluate_cascade, evaluate_scores

    X, y, raw = _biased_world(2000, 9)

    def expert(rows):
        return expit(2.5 + 2.0 * rows[:, 0])

    cascade = CalibratedDelegationCascade(
        expert, probe=LogisticRegression(), expert_calibration="sigmoid", alpha=0.3,
        calibration_size=None, random_state=0,
    ).fit(X[:1000], y[:1000])
    Xt, yt = X[1000:], y[1000:]
    kw = dict(alphas=[0.3], batch_sizes=[64], n_splits=20, n_repeats=3, random_state=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ev = evaluate_cascade(cascade, Xt, yt, expert_scores=expert(Xt), **kw)
        routed = cascade.route(Xt, call_expert=False)
        direct = evaluate_scores(
            yt, routed.probe_scores, cascade.transform_expert_scores(expert(Xt)),
            routed.signal, alpha=0.3, combine=cascade.combine, **kw,
        )
    np.testing.assert_allclose(ev.sweep.table["auroc"], direct.sweep.table["auroc"])
    assert ev.reference["expert_accuracy"] > 0.7  # the recalibrated expert
    assert np.mean((expert(Xt) >= 0.5) == yt) < 0.65  # the raw one


def test_prefitted_dv_probe_of_the_wrong_width_names_dv_features():
    """A frozen DV probe fitted on the features alone, fed the probe features too,
    gets an error that names dv_features and the fix, not scikit-learn's."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 3))
    y = (X[:, 0] > 0).astype(int)
    dv = FrozenEstimator(LinearRegression().fit(X, X[:, 1]))
    cascade = CalibratedDelegationCascade(
        lambda rows: (rows[:, 0] > 0).astype(float), probe=LogisticRegression(),
        dv_estimator=dv, random_state=0,
    )
    with pytest.raises(ValueError, match=r"fitted on 3 columns .* feeds it 5 .*"
                       r"dv_features='activations'"):
        cascade.fit(X, y)
    fitted = cascade.set_params(dv_features="activations").fit(X, y)
    np.testing.assert_allclose(
        fitted.delegation_signal(X[:5]), dv.predict(X[:5])
    )
