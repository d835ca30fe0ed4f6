"""Featurize and score on a Ray cluster; calibrate on one machine.

The expensive parts of a cascade are per input and embarrassingly parallel: the
monitored model's forward pass (:class:`~skctd.ActivationTransformer`) and the
expert's verdicts. :func:`featurize` and :func:`score` map them over a
``ray.data.Dataset`` with a pool of actors, each holding one copy of the model;
:func:`collect_features` and :func:`collect_scores` bring the results (a Dataset
or its Parquet shards) back to numpy in a given id order, with the expert's
accounting derived from the rows themselves. Calibration and the report then run
on one machine as usual.

Needs the ``ray`` extra (``pip install "skctd[ray]"``); nothing else in skctd
imports Ray.
"""

from skctd.ray._collect import collect_features, collect_scores
from skctd.ray._map import featurize, score

__all__ = ["collect_features", "collect_scores", "featurize", "score"]
