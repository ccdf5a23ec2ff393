"""Linear probes beside the LALM ranking (X-ARES, the previous challenge's protocol): per
closed-set task, a classifier on the same cached frozen features, scored with the same
metrics; then how well the probe ranking of the encoders agrees with the LALM ranking.

* Features: each clip's cached encoder frames ``[L, T', D]`` pooled to one vector (the mean
  over frames of every tapped layer; ``mean_max`` appends the maximum), standardised on the
  train rows.
* ``linear``: logistic regression (scikit-learn; one-vs-rest for mAP tasks); ``mlp``: one
  hidden layer of 256 as X-ARES's MLP probe. Train and valid rows train the probe.
* mAP tasks: labels whose probability is at least 0.5 form the answer, scored as the
  LALM's answers are (binary sets, upstream's mAP and ours).
* Open tasks (iWER, iCER, captions) have no probe: left out, said in the table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lalm_eval.suites.xares.data import read_items
from lalm_eval.suites.xares.scoring import task_rows

CLOSED_METRICS = ("accuracy", "map")


def pooled(features: np.ndarray, pooling: str) -> np.ndarray:
    """One vector per clip from ``[L, T', D]`` frames."""
    frames = np.asarray(features, dtype=np.float64)
    mean = frames.mean(axis=1).reshape(-1)
    if pooling == "mean_max":
        return np.concatenate([mean, frames.max(axis=1).reshape(-1)])
    return mean


def _classifier(kind: str, max_iter: int, seed: int) -> Any:
    if kind == "mlp":
        from sklearn.neural_network import MLPClassifier

        return MLPClassifier(hidden_layer_sizes=(256,), max_iter=max_iter, random_state=seed)
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=max_iter)


def probe_task(kind: str, metric: str, x_train: np.ndarray, y_train: Sequence[str],
               x_test: np.ndarray, max_iter: int, seed: int) -> list[str]:
    """The probe's answers (label text; ``;``-joined for mAP tasks) for the test rows."""
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(x_train)
    x_train, x_test = scaler.transform(x_train), scaler.transform(x_test)
    if metric == "map":
        from sklearn.multiclass import OneVsRestClassifier
        from sklearn.preprocessing import MultiLabelBinarizer

        binarizer = MultiLabelBinarizer()
        y = binarizer.fit_transform([[s.strip() for s in t.split(";") if s.strip()]
                                     for t in y_train])
        model = OneVsRestClassifier(_classifier(kind, max_iter, seed)).fit(x_train, y)
        chosen = model.predict_proba(x_test) >= 0.5
        return [";".join(binarizer.classes_[row]) for row in chosen]
    labels = sorted(set(y_train))
    if len(labels) == 1:
        return [labels[0]] * len(x_test)
    model = _classifier(kind, max_iter, seed).fit(x_train, list(y_train))
    return [str(p) for p in model.predict(x_test)]


def run_probes(suite: str, encoder_name: str, encoder_spec: Mapping[str, Any], items: str,
               task_set: str, feature_cache: str | Path, settings: Mapping[str, Any],
               n_boot: int, seed: int) -> pd.DataFrame:
    """Score rows of one encoder's probes on every closed-set task."""
    from lalm_eval.encoders import build_encoder, encoder_id
    from lalm_eval.features import cached_features
    from lalm_eval.suites.xares.tasks import load_task_set

    tasks = load_task_set(task_set).tasks
    rows = [r for r in read_items(items, tasks)
            if tasks[r.task].metric in CLOSED_METRICS]
    if not rows:
        return pd.DataFrame()
    encoder = build_encoder(encoder_spec, name=encoder_name)
    features = cached_features(encoder, encoder_id(encoder_spec, name=encoder_name),
                               [r.audio for r in rows], Path(feature_cache), progress=False)
    pooling = settings.get("pooling", "mean")
    vectors = {r.item_id: pooled(f, pooling) for r, f in zip(rows, features, strict=True)}
    out: list[dict[str, Any]] = []
    for task_name, task in tasks.items():
        task_items = [r for r in rows if r.task == task_name]
        train = [r for r in task_items if r.split != "test"]
        test = [r for r in task_items if r.split == "test"]
        if not train or not test:
            continue
        answers = probe_task(settings.get("kind", "linear"), task.metric,
                             np.stack([vectors[r.item_id] for r in train]),
                             [r.target for r in train],
                             np.stack([vectors[r.item_id] for r in test]),
                             int(settings.get("max_iter", 500)), seed)
        out += task_rows(suite, encoder_name, f"probe_{settings.get('kind', 'linear')}",
                         task_name, task, answers, [r.target for r in test], 0, n_boot, seed)
    return pd.DataFrame(out)


def rank_agreement(lalm: Mapping[str, float], probe: Mapping[str, float]) -> dict[str, Any]:
    """Kendall tau and Spearman rho between two scorings of the same encoders (n = encoders
    scored by both; undefined below 3)."""
    from scipy.stats import kendalltau, spearmanr

    common = [e for e in lalm if e in probe and np.isfinite(lalm[e]) and np.isfinite(probe[e])]
    result: dict[str, Any] = {"n": len(common), "kendall_tau": float("nan"),
                              "kendall_p": float("nan"), "spearman_rho": float("nan"),
                              "spearman_p": float("nan")}
    if len(common) >= 3:
        a, b = [lalm[e] for e in common], [probe[e] for e in common]
        tau = kendalltau(a, b)
        rho = spearmanr(a, b)
        result.update(kendall_tau=float(tau.statistic), kendall_p=float(tau.pvalue),
                      spearman_rho=float(rho.statistic), spearman_p=float(rho.pvalue))
    return result
