"""XARES-LLM's metrics as upstream computes them (faithful mode), ours beside them, and the
challenge score (docs/xares.md).

Faithful to xiaomi-research/xares-llm@105be68 ``src/xares_llm/metrics.py`` (read, not copied):

* text normalisation of answers and references: NFKC, lower case, "-" to a space, ASCII
  punctuation (``string.punctuation``) stripped, whitespace squeezed. Chinese punctuation is
  not ASCII and stays (。、), except the full-width forms NFKC folds to ASCII (，！？：；),
  which are then cut. mAP labels get the same treatment but keep their punctuation;
* accuracy: exact match of the normalised strings;
* mAP: reference and answer split on ";" (no stripping around the separator) into label
  sets, binary multi-hot vectors of width ``num_classes``, where only labels present in the
  references get a column; scikit-learn's macro ``average_precision_score`` then also
  averages the all-zero columns of the absent classes. Measured with scikit-learn 1.9.1: such
  a column scores AP 0 (with the warning "No positive class found in y_true, recall is set to
  one for all thresholds"), so a perfect answer on 2 of 4 classes scores 0.5. Answer labels no
  reference has are ignored. More distinct reference labels than ``num_classes`` is an error
  here (upstream fails with an IndexError);
* iWER = max(0, 1 - corpus WER), iCER = max(0, 1 - corpus CER) (jiwer, normalised text, every
  pair passed as it is, empty references included, as upstream);
* FENSE / DATE: ``mecat.evaluate(task="caption", subtask="long")`` on one normalised
  prediction and one normalised reference per item, the ``content_long`` row.

Ours, named as ours: ``map_present`` (macro AP over the classes present in the references)
and ``caption_similarity`` (mean cosine similarity of all-MiniLM-L6-v2 sentence embeddings
between answer and reference, clipped at 0: an offline caption metric, not FENSE: no error
checker, another model). FENSE and DATE need the ``mecat`` package and the models it
downloads at run time (full runs only); DATE depends on the reference corpus, so a subset's
DATE is not comparable with a full-set number.

The score: each task's value mapped linearly worst -> 0, best -> 1 (:func:`normalised`, the
identity for every current metric; a chance-level floor optional), the (weighted) mean per
track (:func:`track_scores`), public and hidden combined (:func:`combine`). Bootstrap
intervals over items: :func:`lalm_eval.metrics.scores.bootstrap_ci` (shared).
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


def _check_lengths(what: str, predictions: Sequence[Any], references: Sequence[Any]) -> None:
    if len(predictions) != len(references):
        raise ValueError(f"{what}: {len(predictions)} predictions for {len(references)} "
                         "references")


def accuracy(predictions: Sequence[str], references: Sequence[str]) -> float:
    """Exact match after normalisation (NaN for no items)."""
    _check_lengths("accuracy", predictions, references)
    if not references:
        return float("nan")
    return float(np.mean([normalise_text(p) == normalise_text(r)
                          for p, r in zip(predictions, references, strict=True)]))


def _label_sets(texts: Sequence[str]) -> list[list[str]]:
    """Each text's labels: normalised with punctuation kept, split on ";" as it is."""
    return [normalise_text(t, remove_punctuation=False).split(SEPARATOR) for t in texts]


def _multi_hot(label_sets: list[list[str]], index: Mapping[str, int], width: int) -> np.ndarray:
    """Binary rows; labels without a column are ignored."""
    out = np.zeros((len(label_sets), width), dtype=np.float32)
    for row, labels in enumerate(label_sets):
        out[row, [index[x] for x in labels if x in index]] = 1.0
    return out


def map_faithful(predictions: Sequence[str], references: Sequence[str],
                 num_classes: int) -> float:
    """Upstream's mAP: ``num_classes`` columns, only the reference labels indexed, so every
    absent class is an all-zero column that counts as AP 0 in the macro mean."""
    from sklearn.metrics import average_precision_score

    _check_lengths("mAP", predictions, references)
    if not references:
        return float("nan")
    truth = _label_sets(references)
    labels = sorted({label for labels in truth for label in labels})
    if len(labels) > num_classes:
        raise ValueError(f"mAP: the references hold {len(labels)} distinct labels but the task "
                         f"has num_classes {num_classes} (upstream fails here with an "
                         "IndexError)")
    index = {label: i for i, label in enumerate(labels)}
    target = _multi_hot(truth, index, num_classes)
    answer = _multi_hot(_label_sets(predictions), index, num_classes)
    with warnings.catch_warnings():
        # "No positive class found in y_true": the absent classes, upstream's behaviour
        warnings.simplefilter("ignore", UserWarning)
        return float(average_precision_score(target, answer))


def map_present(predictions: Sequence[str], references: Sequence[str]) -> float:
    """Ours: macro AP of the same binary answers over the classes present in the
    references only (no all-zero columns)."""
    from sklearn.metrics import average_precision_score

    _check_lengths("mAP", predictions, references)
    truth = _label_sets(references)
    labels = sorted({label for labels in truth for label in labels})
    if not labels:
        return float("nan")
    index = {label: i for i, label in enumerate(labels)}
    return float(average_precision_score(_multi_hot(truth, index, len(labels)),
                                         _multi_hot(_label_sets(predictions), index,
                                                    len(labels))))


def _error_rate(kind: str, predictions: Sequence[str], references: Sequence[str]) -> float:
    """Corpus WER or CER of the normalised texts (NaN for no items)."""
    import jiwer

    if len(predictions) != len(references):
        raise ValueError(f"{kind}: {len(predictions)} predictions for {len(references)} "
                         "references")
    if not references:
        return float("nan")
    refs = [normalise_text(r) for r in references]
    hyps = [normalise_text(p) for p in predictions]
    return float((jiwer.wer if kind == "wer" else jiwer.cer)(refs, hyps))


def iwer(predictions: Sequence[str], references: Sequence[str]) -> float:
    """max(0, 1 - corpus WER) of the normalised texts."""
    return max(0.0, 1.0 - _error_rate("wer", predictions, references))


def icer(predictions: Sequence[str], references: Sequence[str]) -> float:
    """max(0, 1 - corpus CER); Chinese punctuation kept (only ASCII punctuation is cut)."""
    return max(0.0, 1.0 - _error_rate("cer", predictions, references))


_EMBEDDER: list[Any] = []


def caption_similarity(predictions: Sequence[str], references: Sequence[str],
                       embedder: Any = None) -> float:
    """Ours: mean over items of the cosine similarity between the answer's and the
    reference's sentence embeddings (by default the packaged all-MiniLM-L6-v2, offline),
    each clipped at 0; both texts normalised first, as upstream does before FENSE. Not
    FENSE: no fluency-error checker, another model. Every distinct string is embedded once
    per process (a cache), so bootstrap replicates are cheap."""
    from lalm_eval.metrics.embedding import (
        CachedEmbedder,
        SentenceTransformerTextEmbedder,
        unit_rows,
    )

    _check_lengths("caption_similarity", predictions, references)
    if not references:
        return float("nan")
    if embedder is None:
        if not _EMBEDDER:
            _EMBEDDER.append(CachedEmbedder(SentenceTransformerTextEmbedder()))
        embedder = _EMBEDDER[0]
    a = unit_rows(embedder.embed([normalise_text(p) for p in predictions]))
    b = unit_rows(embedder.embed([normalise_text(r) for r in references]))
    return float(np.mean(np.clip(np.sum(a * b, axis=1), 0.0, 1.0)))


def mecat_metric(metric: str, predictions: Sequence[str], references: Sequence[str]) -> float:
    """FENSE or DATE as upstream calls the ``mecat`` package (full runs only: it downloads
    SBERT and the echecker at run time)."""
    if metric not in ("fense", "date"):
        raise ValueError(f"mecat_metric: {metric!r} is not fense or date")
    try:
        from mecat import evaluate
    except ImportError as exc:
        raise RuntimeError(
            f"metric {metric} needs the mecat package, which is not installed (pip install "
            "mecat; it downloads its SBERT and echecker models at run time, so it cannot run "
            "offline); the demo's caption task uses caption_similarity") from exc
    table = evaluate(predicted_data=[[normalise_text(p)] for p in predictions],
                     reference_data=[[normalise_text(r)] for r in references],
                     task="caption", metrics=metric, subtask="long")
    return float(table[table["subtask"] == "content_long"][metric].iloc[0])


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
    """``value`` mapped linearly worst -> 0, best -> 1 (the identity for a metric in [0, 1]).

    With ``chance`` the chance level maps to 0 instead of ``worst`` and values below it clip
    to 0 (the chance-floor option). NaN stays NaN.
    """
    low = worst if chance is None else chance
    if best == low:
        raise ValueError(f"normalised: best ({best}) equals the lower bound ({low})")
    if value is None or not np.isfinite(value):
        return float("nan")
    scaled = (float(value) - low) / (best - low)
    return max(0.0, scaled) if chance is not None else scaled


def track_scores(values: Mapping[str, float], tasks: Mapping[str, Any],
                 weights: str | Mapping[str, float] = "equal") -> dict[str, float]:
    """Per track ("A", "B"), the weighted mean of the (already normalised) task values.

    ``weights``: "equal" (the current rules) or a weight per task (the superseded formula
    sum(n_i M_i) / sum(n_i); no weights were ever published, so every task of ``values``
    needs one). Tasks with a NaN value are left out of their track's mean.
    """
    if isinstance(weights, str):
        if weights != "equal":
            raise ValueError(f"track_scores: weights {weights!r} is not 'equal' or a mapping")
    else:
        missing = sorted(set(values) - set(weights))
        if missing:
            raise ValueError(f"track_scores: no weight for task {missing[0]!r}")
    out: dict[str, float] = {}
    for track in sorted({tasks[t].track for t in values}):
        names = [t for t in values if tasks[t].track == track and np.isfinite(values[t])]
        w = np.array([1.0 if isinstance(weights, str) else float(weights[t]) for t in names])
        if not names or w.sum() <= 0:
            out[track] = float("nan")
            continue
        out[track] = float(np.dot(w, [values[t] for t in names]) / w.sum())
    return out


def combine(public: float, hidden: float | None,
            weights: Mapping[str, float] | None = None) -> float:
    """The final score of a track: weighted public and hidden scores, by default
    (public + hidden) / 2 (CH@7f3023c docs/result.html); without a hidden score (as in every
    run we can do) the public score alone."""
    if hidden is None or not np.isfinite(hidden):
        return float(public)
    w = {"public": 0.5, "hidden": 0.5, **(weights or {})}
    total = w["public"] + w["hidden"]
    if total <= 0:
        raise ValueError("combine: the public and hidden weights sum to 0")
    return float((w["public"] * public + w["hidden"] * hidden) / total)
