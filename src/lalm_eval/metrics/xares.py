"""XARES-LLM's metrics as upstream computes them (faithful mode), ours beside them, and the
challenge score (docs/xares.md).

Faithful to xiaomi-research/xares-llm@105be68 ``metrics.py`` (read, not copied):

* text normalisation: NFKC, lower case, "-" to a space, ASCII punctuation stripped
  (``string.punctuation``), whitespace squeezed. Chinese punctuation is not ASCII and stays
  (。、), except the full-width forms NFKC folds to ASCII (，！？：；) which are then cut;
  mAP labels get the same treatment but keep their punctuation;
* accuracy: exact match of the normalised strings;
* mAP: reference and answer split on ";" into label sets, binary multi-hot vectors of width
  ``num_classes``, where only labels present in the references get a column; scikit-learn's
  macro ``average_precision_score`` then also averages the all-zero columns of absent classes
  (scikit-learn 1.9.1 scores such a column 0 with a warning, so a perfect answer on 2 of 4
  classes scores 0.5). Answer labels that no reference has are ignored. More distinct
  reference labels than ``num_classes`` is an error (upstream: an IndexError);
* iWER = max(0, 1 - corpus WER), iCER = max(0, 1 - corpus CER) (jiwer, normalised text).

Ours, named as ours: ``map_present`` (macro AP over the classes present in the references),
``caption_similarity`` (mean cosine similarity of all-MiniLM-L6-v2 sentence embeddings
between answer and reference: an offline stand-in for captions, not FENSE). FENSE and DATE
need the ``mecat`` package and its downloaded models (full runs).
"""

from __future__ import annotations

import re
import string
import unicodedata
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

_ASCII_PUNCTUATION = str.maketrans("", "", string.punctuation)
SEPARATOR = ";"


def normalise_text(text: str | None, remove_punctuation: bool = True) -> str:
    """Upstream's normalisation of answers and references."""
    text = unicodedata.normalize("NFKC", text or "").lower().replace("-", " ")
    if remove_punctuation:
        text = text.translate(_ASCII_PUNCTUATION)
    return re.sub(r"\s+", " ", text).strip()


def accuracy(predictions: Sequence[str], references: Sequence[str]) -> float:
    """Exact match after normalisation."""
    if not references:
        return float("nan")
    hits = [normalise_text(p) == normalise_text(r)
            for p, r in zip(predictions, references, strict=True)]
    return float(np.mean(hits))


def _label_sets(texts: Sequence[str]) -> list[list[str]]:
    return [normalise_text(t, remove_punctuation=False).split(SEPARATOR) for t in texts]


def map_faithful(predictions: Sequence[str], references: Sequence[str],
                 num_classes: int) -> float:
    """Upstream's mAP: absent classes are all-zero columns averaged in (see the module)."""
    from sklearn.metrics import average_precision_score

    truth, answers = _label_sets(references), _label_sets(predictions)
    labels = sorted({label for labels in truth for label in labels})
    if len(labels) > num_classes:
        raise ValueError(f"mAP: the references hold {len(labels)} distinct labels but the task "
                         f"has num_classes {num_classes}")
    index = {label: i for i, label in enumerate(labels)}
    target = np.zeros((len(truth), num_classes), dtype=np.float32)
    answer = np.zeros((len(answers), num_classes), dtype=np.float32)
    for row, labels_of in enumerate(truth):
        target[row, [index[x] for x in labels_of if x in index]] = 1.0
    for row, labels_of in enumerate(answers):
        answer[row, [index[x] for x in labels_of if x in index]] = 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "No positive class found in y_true": upstream's case
        return float(average_precision_score(target, answer))


def map_present(predictions: Sequence[str], references: Sequence[str]) -> float:
    """Ours: macro AP of the same binary answers over the classes present only."""
    from sklearn.metrics import average_precision_score

    truth, answers = _label_sets(references), _label_sets(predictions)
    labels = sorted({label for labels in truth for label in labels})
    if not labels:
        return float("nan")
    index = {label: i for i, label in enumerate(labels)}
    target = np.zeros((len(truth), len(labels)), dtype=np.float32)
    answer = np.zeros_like(target)
    for row, labels_of in enumerate(truth):
        target[row, [index[x] for x in labels_of if x in index]] = 1.0
    for row, labels_of in enumerate(answers):
        answer[row, [index[x] for x in labels_of if x in index]] = 1.0
    return float(average_precision_score(target, answer))


def _error_rate(kind: str, predictions: Sequence[str], references: Sequence[str]) -> float:
    import jiwer

    refs = [normalise_text(r) for r in references]
    hyps = [normalise_text(p) for p in predictions]
    kept = [(r, h) for r, h in zip(refs, hyps, strict=True) if r]
    if not kept:
        return float("nan")
    refs, hyps = [k[0] for k in kept], [k[1] for k in kept]
    return float((jiwer.wer if kind == "wer" else jiwer.cer)(refs, hyps))


def iwer(predictions: Sequence[str], references: Sequence[str]) -> float:
    """max(0, 1 - corpus WER) of the normalised texts (empty references left out)."""
    return max(0.0, 1.0 - _error_rate("wer", predictions, references))


def icer(predictions: Sequence[str], references: Sequence[str]) -> float:
    """max(0, 1 - corpus CER); Chinese punctuation kept (only ASCII punctuation is cut)."""
    return max(0.0, 1.0 - _error_rate("cer", predictions, references))


_EMBEDDER: list[Any] = []


def caption_similarity(predictions: Sequence[str], references: Sequence[str]) -> float:
    """Ours: mean cosine similarity of answer and reference sentence embeddings (the
    packaged all-MiniLM-L6-v2), clipped at 0. Not FENSE (no error checker, other model)."""
    from lalm_eval.metrics.embedding import SentenceTransformerTextEmbedder, unit_rows

    if not references:
        return float("nan")
    if not _EMBEDDER:
        _EMBEDDER.append(SentenceTransformerTextEmbedder())
    embedder = _EMBEDDER[0]
    a = unit_rows(embedder.embed([p or "" for p in predictions]))
    b = unit_rows(embedder.embed(list(references)))
    return float(np.mean(np.clip(np.sum(a * b, axis=1), 0.0, 1.0)))


def mecat_metric(metric: str, predictions: Sequence[str], references: Sequence[str]) -> float:
    """FENSE or DATE through the ``mecat`` package (full runs: it downloads its models)."""
    try:
        import mecat  # noqa: F401
    except ImportError as exc:
        raise RuntimeError(f"metric {metric} needs the mecat package (pip install mecat; it "
                           "downloads SBERT and the echecker at run time, so it cannot run "
                           "offline)") from exc
    from mecat import evaluate

    result = evaluate(predicted_data={str(i): p for i, p in enumerate(predictions)},
                      reference_data={str(i): [r] for i, r in enumerate(references)},
                      task="caption", subtask="long")
    return float(result[metric.upper()] if metric.upper() in result else result[metric])


def task_score(metric: str, predictions: Sequence[str], references: Sequence[str],
               task: Any) -> float:
    """The value of ``metric`` for one task's answers (``task`` gives num_classes)."""
    if metric == "accuracy":
        return accuracy(predictions, references)
    if metric == "map":
        return map_faithful(predictions, references, int(task.num_classes))
    if metric == "map_present":
        return map_present(predictions, references)
    if metric == "iwer":
        return iwer(predictions, references)
    if metric == "icer":
        return icer(predictions, references)
    if metric == "caption_similarity":
        return caption_similarity(predictions, references)
    if metric in ("fense", "date"):
        return mecat_metric(metric, predictions, references)
    raise ValueError(f"unknown XARES metric {metric!r}")


def normalised(value: float, worst: float, best: float, chance: float | None = None) -> float:
    """Linear map worst -> 0, best -> 1; with ``chance`` the chance level maps to 0 and
    values below it clip to 0."""
    low = worst if chance is None else chance
    if not np.isfinite(value):
        return float("nan")
    scaled = (value - low) / (best - low)
    return float(max(0.0, scaled)) if chance is not None else float(scaled)


def track_scores(values: Mapping[str, float], tasks: Mapping[str, Any],
                 weights: str | Mapping[str, float] = "equal") -> dict[str, float]:
    """The (weighted) mean of the normalised task values per track."""
    out: dict[str, float] = {}
    for track in sorted({tasks[t].track for t in values}):
        names = [t for t in values if tasks[t].track == track and np.isfinite(values[t])]
        w = np.array([1.0 if weights == "equal" else float(weights.get(t, 0.0))
                      for t in names])
        if not names or w.sum() == 0:
            out[track] = float("nan")
            continue
        out[track] = float(np.dot(w, [values[t] for t in names]) / w.sum())
    return out


def combine(public: float, hidden: float | None, weights: Mapping[str, float] | None = None
            ) -> float:
    """The final score: (public + hidden) / 2 by default; the public score alone when no
    hidden score is available."""
    if hidden is None or not np.isfinite(hidden):
        return float(public)
    w = weights or {"public": 0.5, "hidden": 0.5}
    return float((w["public"] * public + w["hidden"] * hidden) / (w["public"] + w["hidden"]))
