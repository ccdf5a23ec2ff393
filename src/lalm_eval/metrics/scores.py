"""SSEU-Bench scores: WER (ASR), macro accuracy (scene), mAP (event tagging), in %.

Scene classification (ASC): c_i = softmax_i(cos(emb(predicted scene), emb(S_i)) / T) over
the N scene labels (T = 1 in the paper); the predicted class is the argmax (on an exact tie
``argmax`` picks the first label in ``scene_labels`` order); the score is the macro
accuracy: the mean over the classes present in the references of each class's recall.

Audio tagging (AT): F[m, n] = sigmoid(cos(emb(predicted event m), emb(class n))),
p_n = max_m F[m, n]; the score is the mean over classes with at least one positive of
sklearn's ``average_precision_score`` (its tie handling: tied scores form one threshold).

Missing answers (documented choices):

* scene None / blank: a uniform probability row, counted in ``n_failed`` and scored as
  *wrong* (predicted class -1), so a silent model gets no credit through argmax picking
  the first label;
* events None: an all-zero score row (below any sigmoid, which is > 0.26), counted in
  ``n_failed``; an empty list ``[]`` is a valid "no events" answer (e.g. speech only):
  the same zero row, not failed. Blank strings inside a list are dropped. Predicted
  events need not be labels: any text is embedded as it is (only surrounding whitespace
  is stripped; case and wording are the parser's business).

Every distinct string is embedded once per call (``dedup=True``); wrap the embedder in
:class:`~lalm_eval.metrics.embedding.CachedEmbedder` to share that across calls. Cosines
are matrix products on the distinct strings, then indexed per item.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score

from lalm_eval.metrics.embedding import TextEmbedder, unit_rows
from lalm_eval.metrics.wer import WerResult, corpus_wer

# ---------------------------------------------------------------------------- helpers


def _clean(text: object) -> str | None:
    """Stripped text, or None for a missing / blank / non-string answer."""
    if isinstance(text, str):
        stripped = text.strip()
        return stripped or None
    return None


def _check_labels(labels: Sequence[str], what: str) -> list[str]:
    """Labels as a list: non-empty, strings, unique."""
    labels = list(labels)
    if not labels:
        raise ValueError(f"{what}: empty label set")
    if any(not isinstance(label, str) or not label.strip() for label in labels):
        raise ValueError(f"{what}: labels must be non-blank strings")
    if len(set(labels)) != len(labels):
        raise ValueError(f"{what}: duplicate labels")
    return labels


def _embed_rows(
    texts: list[str], embedder: TextEmbedder, dedup: bool
) -> tuple[np.ndarray, np.ndarray]:
    """(unit vectors, row of each text): the distinct texts once, or every text as given."""
    if dedup:
        row_of: dict[str, int] = {}
        rows = np.fromiter((row_of.setdefault(t, len(row_of)) for t in texts),
                           dtype=np.int64, count=len(texts))
        return unit_rows(embedder.embed(list(row_of))), rows
    return unit_rows(embedder.embed(texts)), np.arange(len(texts), dtype=np.int64)


def _label_vectors(labels: list[str], embedder: TextEmbedder) -> np.ndarray:
    """Unit embeddings of the class labels."""
    return unit_rows(embedder.embed(labels))


def _softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, numerically stable."""
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function."""
    return 1.0 / (1.0 + np.exp(-x))


def label_indices(values: Sequence[str | int], labels: Sequence[str], what: str) -> np.ndarray:
    """Class index of every reference (a label string or an index); unknown ones raise."""
    labels = list(labels)
    index = {label: i for i, label in enumerate(labels)}
    out = np.empty(len(values), dtype=np.int64)
    for row, value in enumerate(values):
        if isinstance(value, str):
            if value not in index:
                raise ValueError(f"{what}: reference {value!r} (item {row}) is not a label")
            out[row] = index[value]
        elif isinstance(value, (int, np.integer)) and 0 <= int(value) < len(labels):
            out[row] = int(value)
        else:
            raise ValueError(f"{what}: reference {value!r} (item {row}) is not a label")
    return out


def multi_hot(true_events: Sequence[Sequence[str]], event_labels: Sequence[str]) -> np.ndarray:
    """[n_items, n_labels] 0/1 matrix of reference event lists; unknown labels raise."""
    labels = list(event_labels)
    index = {label: i for i, label in enumerate(labels)}
    truth = np.zeros((len(true_events), len(labels)), dtype=np.int8)
    for row, events in enumerate(true_events):
        if isinstance(events, str):
            raise TypeError(f"multi_hot: item {row} events must be a list, not a string")
        for event in events:
            if event not in index:
                raise ValueError(f"multi_hot: reference event {event!r} (item {row}) "
                                 "is not an event label")
            truth[row, index[event]] = 1
    return truth


# ---------------------------------------------------------------------------- scenes


def _scene_probabilities(
    pred_scenes: Sequence[str | None], scene_labels: list[str], embedder: TextEmbedder,
    temperature: float, dedup: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities [n, N], answered mask [n])."""
    if temperature <= 0:
        raise ValueError(f"scene_probabilities: temperature must be > 0, got {temperature}")
    cleaned = [_clean(p) for p in pred_scenes]
    answered = np.fromiter((c is not None for c in cleaned), dtype=bool, count=len(cleaned))
    n_labels = len(scene_labels)
    probs = np.full((len(cleaned), n_labels), 1.0 / n_labels)
    texts = [c for c in cleaned if c is not None]
    if texts:
        label_vecs = _label_vectors(scene_labels, embedder)
        vectors, rows = _embed_rows(texts, embedder, dedup)
        probs[answered] = _softmax((vectors @ label_vecs.T).astype(np.float64) / temperature)[rows]
    return probs, answered


def scene_probabilities(
    pred_scenes: Sequence[str | None], scene_labels: Sequence[str], embedder: TextEmbedder,
    temperature: float = 1.0, dedup: bool = True,
) -> np.ndarray:
    """[n_items, n_scenes] softmax over the cosines of each predicted scene to every label.

    A None / blank prediction gets a uniform row (see the module notes: scored as failed).
    """
    labels = _check_labels(scene_labels, "scene_probabilities")
    return _scene_probabilities(pred_scenes, labels, embedder, temperature, dedup)[0]


def macc(pred_idx: Sequence[int] | np.ndarray, true_idx: Sequence[int] | np.ndarray,
         n_classes: int) -> float:
    """Macro accuracy in %: mean per-class recall over classes present in ``true_idx``.

    A predicted index outside 0..n_classes-1 (e.g. -1 for a failed answer) is never
    correct. NaN when there are no references.
    """
    pred = np.asarray(pred_idx, dtype=np.int64)
    true = np.asarray(true_idx, dtype=np.int64)
    if pred.shape != true.shape or pred.ndim != 1:
        raise ValueError(f"macc: shapes {pred.shape} and {true.shape} differ or are not 1-D")
    if true.size and (true.min() < 0 or true.max() >= n_classes):
        raise ValueError(f"macc: reference index outside 0..{n_classes - 1}")
    support = np.bincount(true, minlength=n_classes)
    correct = np.bincount(true[pred == true], minlength=n_classes)
    present = support > 0
    if not present.any():
        return float("nan")
    return float(100.0 * np.mean(correct[present] / support[present]))


def _predicted_classes(scores: np.ndarray, answered: np.ndarray) -> np.ndarray:
    """Argmax per row (first on ties); -1 where unanswered."""
    pred = scores.argmax(axis=1) if scores.shape[0] else np.zeros(0, dtype=np.int64)
    return np.where(answered, pred, -1)


def score_asc(
    pred_scenes: Sequence[str | None], true_scenes: Sequence[str | int],
    scene_labels: Sequence[str], embedder: TextEmbedder, temperature: float = 1.0,
    dedup: bool = True,
) -> dict[str, Any]:
    """Scene macro accuracy (%) of free-text scene predictions."""
    labels = _check_labels(scene_labels, "score_asc")
    if len(pred_scenes) != len(true_scenes):
        raise ValueError(f"score_asc: {len(pred_scenes)} predictions, {len(true_scenes)} "
                         "references")
    true = label_indices(true_scenes, labels, "score_asc")
    probs, answered = _scene_probabilities(pred_scenes, labels, embedder, temperature, dedup)
    pred = _predicted_classes(probs, answered)
    return {"metric": "macc", "value": macc(pred, true, len(labels)), "n_items": len(true),
            "n_failed": int((~answered).sum()),
            "n_classes_present": int(np.unique(true).size)}


# ---------------------------------------------------------------------------- events


def _event_scores(
    pred_events: Sequence[Sequence[str] | None], event_labels: list[str],
    embedder: TextEmbedder, dedup: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """(scores [n, N], answered mask [n])."""
    answered = np.ones(len(pred_events), dtype=bool)
    texts: list[str] = []
    counts = np.zeros(len(pred_events), dtype=np.int64)
    for row, events in enumerate(pred_events):
        if events is None:
            answered[row] = False
            continue
        if isinstance(events, str):
            raise TypeError(f"event_scores: item {row} events must be a list, not a string")
        kept = [c for c in (_clean(e) for e in events) if c is not None]
        counts[row] = len(kept)
        texts.extend(kept)
    scores = np.zeros((len(pred_events), len(event_labels)))
    if texts:
        label_vecs = _label_vectors(event_labels, embedder)
        vectors, rows = _embed_rows(texts, embedder, dedup)
        per_string = _sigmoid((vectors @ label_vecs.T).astype(np.float64))
        has_events = counts > 0
        starts = np.concatenate(([0], np.cumsum(counts[has_events])[:-1]))
        scores[has_events] = np.maximum.reduceat(per_string[rows], starts, axis=0)
    return scores, answered


def event_scores(
    pred_events: Sequence[Sequence[str] | None], event_labels: Sequence[str],
    embedder: TextEmbedder, dedup: bool = True,
) -> np.ndarray:
    """[n_items, n_events] p_n = max over predicted events of sigmoid(cosine to label n).

    None (failed) and ``[]`` (no events) give all-zero rows; see the module notes.
    """
    labels = _check_labels(event_labels, "event_scores")
    return _event_scores(pred_events, labels, embedder, dedup)[0]


def mean_average_precision(scores: np.ndarray, truth_multi_hot: np.ndarray) -> float:
    """mAP in %: sklearn average precision per class, mean over classes with a positive.

    NaN when no class has a positive.
    """
    scores = np.asarray(scores, dtype=np.float64)
    truth = np.asarray(truth_multi_hot)
    if scores.shape != truth.shape or scores.ndim != 2:
        raise ValueError(f"mean_average_precision: shapes {scores.shape} and {truth.shape}")
    if not np.isin(truth, (0, 1)).all():
        raise ValueError("mean_average_precision: truth must be 0/1")
    if not np.isfinite(scores).all():
        raise ValueError("mean_average_precision: scores must be finite")
    truth = truth.astype(np.int8)
    scored = np.flatnonzero(truth.sum(axis=0) > 0)
    if scored.size == 0:
        return float("nan")
    # one multilabel call (validation once); sklearn loops over the columns itself
    aps = np.atleast_1d(average_precision_score(truth[:, scored], scores[:, scored],
                                                average=None))
    return float(100.0 * np.mean(aps))


def score_at(
    pred_events: Sequence[Sequence[str] | None], true_events: Sequence[Sequence[str]],
    event_labels: Sequence[str], embedder: TextEmbedder, dedup: bool = True,
) -> dict[str, Any]:
    """Event-tagging mAP (%) of free-text event-list predictions."""
    labels = _check_labels(event_labels, "score_at")
    if len(pred_events) != len(true_events):
        raise ValueError(f"score_at: {len(pred_events)} predictions, {len(true_events)} "
                         "references")
    truth = multi_hot(true_events, labels)
    scores, answered = _event_scores(pred_events, labels, embedder, dedup)
    return {"metric": "map", "value": mean_average_precision(scores, truth),
            "n_items": len(truth), "n_failed": int((~answered).sum()),
            "n_classes_scored": int((truth.sum(axis=0) > 0).sum())}


# ---------------------------------------------------------------------------- ASR


def score_asr(refs: Sequence[str], hyps: Sequence[str | None]) -> dict[str, Any]:
    """Normalised corpus WER (%) as ``value`` plus the raw WER as ``value_raw``.

    ``n_items`` counts scored items (non-empty normalised references), ``n_excluded`` the
    others; ``n_failed`` the None / blank hypotheses (scored as all deletions).
    """
    norm: WerResult = corpus_wer(refs, hyps, normalise=True)
    raw: WerResult = corpus_wer(refs, hyps, normalise=False)
    return {"metric": "wer", "value": norm.wer, "n_items": norm.n_items,
            "n_failed": norm.n_failed, "n_excluded": norm.n_excluded,
            "substitutions": norm.substitutions, "deletions": norm.deletions,
            "insertions": norm.insertions, "hits": norm.hits, "n_ref_words": norm.n_ref_words,
            "value_raw": raw.wer, "n_items_raw": raw.n_items}


# ---------------------------------------------------------------------------- CLAP-style


def from_label_scores(
    score_dicts: Sequence[Mapping[str, float] | None], labels: Sequence[str]
) -> np.ndarray:
    """[n_items, n_labels] matrix from per-item ``{label: score}`` dicts (CLAP baselines).

    A dict missing any label raises (naming the item); keys outside ``labels`` are
    ignored. A None item (failed inference) gives a NaN row, which the
    ``score_*_from_scores`` functions count as failed.
    """
    labels = _check_labels(labels, "from_label_scores")
    matrix = np.full((len(score_dicts), len(labels)), np.nan)
    for row, scores in enumerate(score_dicts):
        if scores is None:
            continue
        missing = [label for label in labels if label not in scores]
        if missing:
            raise ValueError(f"from_label_scores: item {row} has no score for {missing}")
        matrix[row] = [float(scores[label]) for label in labels]
        if not np.isfinite(matrix[row]).all():
            raise ValueError(f"from_label_scores: item {row} has a non-finite score")
    return matrix


def score_asc_from_scores(
    scores: np.ndarray, true_scenes: Sequence[str | int], scene_labels: Sequence[str]
) -> dict[str, Any]:
    """Scene macro accuracy (%) from audio-label scores: argmax (first on ties)."""
    labels = _check_labels(scene_labels, "score_asc_from_scores")
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != (len(true_scenes), len(labels)):
        raise ValueError(f"score_asc_from_scores: scores shape {scores.shape}")
    true = label_indices(true_scenes, labels, "score_asc_from_scores")
    answered = np.isfinite(scores).all(axis=1)
    pred = _predicted_classes(np.where(answered[:, None], scores, 0.0), answered)
    return {"metric": "macc", "value": macc(pred, true, len(labels)), "n_items": len(true),
            "n_failed": int((~answered).sum()),
            "n_classes_present": int(np.unique(true).size)}


def score_at_from_scores(
    scores: np.ndarray, true_events: Sequence[Sequence[str]], event_labels: Sequence[str]
) -> dict[str, Any]:
    """Event mAP (%) from audio-label scores; failed (NaN) rows rank below every score."""
    labels = _check_labels(event_labels, "score_at_from_scores")
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != (len(true_events), len(labels)):
        raise ValueError(f"score_at_from_scores: scores shape {scores.shape}")
    truth = multi_hot(true_events, labels)
    answered = np.isfinite(scores).all(axis=1)
    floor = scores[answered].min() - 1.0 if answered.any() else 0.0
    filled = np.where(answered[:, None], scores, floor)
    return {"metric": "map", "value": mean_average_precision(filled, truth),
            "n_items": len(truth), "n_failed": int((~answered).sum()),
            "n_classes_scored": int((truth.sum(axis=0) > 0).sum())}


# ---------------------------------------------------------------------------- uncertainty


def _resample_indices(n_items: int, n_boot: int, seed: int, chunk: int) -> Iterator[np.ndarray]:
    """Bootstrap index matrices [<=chunk, n_items], deterministic given the seed."""
    rng = np.random.default_rng(seed)
    done = 0
    while done < n_boot:
        size = min(chunk, n_boot - done)
        yield rng.integers(0, n_items, size=(size, n_items))
        done += size


def _resample_counts(n_items: int, n_boot: int, seed: int, chunk: int) -> Iterator[np.ndarray]:
    """How often each item is drawn, [<=chunk, n_items], from the same draws as the indices."""
    for idx in _resample_indices(n_items, n_boot, seed, chunk):
        flat = idx + (np.arange(idx.shape[0])[:, None] * n_items)
        yield np.bincount(flat.ravel(), minlength=idx.size).reshape(idx.shape).astype(np.float64)


def _chunk(n_items: int) -> int:
    """Replicates per chunk, keeping each index matrix near 4 M entries."""
    return max(1, min(1000, 4_000_000 // max(n_items, 1)))


def _percentile_interval(values: np.ndarray, confidence: float) -> tuple[float, float]:
    """Percentile interval of the finite replicate values (NaN if none)."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    values = values[np.isfinite(values)]
    if values.size == 0:
        return float("nan"), float("nan")
    tail = 100.0 * (1 - confidence) / 2
    low, high = np.percentile(values, [tail, 100.0 - tail])
    return float(low), float(high)


def bootstrap_ci(
    statistic: Callable[..., float], *arrays: np.ndarray, n_boot: int = 1000, seed: int = 0,
    confidence: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic(*arrays)`` resampling items (rows).

    Every array is resampled with the same row indices; replicates where the statistic is
    undefined (NaN) are dropped. Deterministic given ``seed``; draws the same replicates
    as :func:`wer_ci`, :func:`macc_ci` and :func:`map_ci` for the same seed and size.
    """
    arrays = tuple(np.asarray(a) for a in arrays)
    if not arrays or any(len(a) != len(arrays[0]) for a in arrays):
        raise ValueError("bootstrap_ci: give one or more arrays of equal length")
    n_items = len(arrays[0])
    if n_items == 0:
        return float("nan"), float("nan")
    values = [
        statistic(*(a[rows] for a in arrays))
        for idx in _resample_indices(n_items, n_boot, seed, _chunk(n_items))
        for rows in idx
    ]
    return _percentile_interval(np.asarray(values, dtype=np.float64), confidence)


def wer_ci(result: WerResult, n_boot: int = 1000, seed: int = 0,
           confidence: float = 0.95) -> tuple[float, float]:
    """Bootstrap interval of a corpus WER: items resampled, WER from per-item counts."""
    errors = result.per_item_errors.astype(np.float64)
    words = result.per_item_ref_words.astype(np.float64)
    n = len(errors)
    if n == 0:
        return float("nan"), float("nan")
    values = [100.0 * (c @ errors) / (c @ words) for c in _resample_counts(n, n_boot, seed,
                                                                         _chunk(n))]
    return _percentile_interval(np.concatenate(values), confidence)


def macc_ci(pred_idx: np.ndarray, true_idx: np.ndarray, n_classes: int, n_boot: int = 1000,
            seed: int = 0, confidence: float = 0.95) -> tuple[float, float]:
    """Bootstrap interval of the macro accuracy (classes present in each resample)."""
    pred = np.asarray(pred_idx, dtype=np.int64)
    true = np.asarray(true_idx, dtype=np.int64)
    n = len(true)
    if n == 0:
        return float("nan"), float("nan")
    onehot = np.zeros((n, n_classes))
    onehot[np.arange(n), true] = 1.0
    hits = onehot * (pred == true)[:, None]
    values = []
    for counts in _resample_counts(n, n_boot, seed, _chunk(n)):
        support = counts @ onehot
        correct = counts @ hits
        present = support > 0
        recall = np.divide(correct, support, out=np.zeros_like(correct), where=present)
        values.append(100.0 * recall.sum(axis=1) / present.sum(axis=1))
    return _percentile_interval(np.concatenate(values), confidence)


def _weighted_ap(order_scores: np.ndarray, order_truth: np.ndarray,
                 counts: np.ndarray) -> np.ndarray:
    """Average precision per replicate for one class, sklearn's definition with weights.

    ``order_*`` are sorted by descending score; tied scores form one threshold, as in
    sklearn. ``counts`` [n_rep, n] are the items' bootstrap multiplicities in that order.
    NaN for replicates without a positive.
    """
    last_of_tie = np.r_[np.flatnonzero(np.diff(order_scores)), order_scores.size - 1]
    tp = np.cumsum(counts * order_truth, axis=1)[:, last_of_tie]
    total = np.cumsum(counts, axis=1)[:, last_of_tie]
    positives = tp[:, -1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(total > 0, tp / np.where(total > 0, total, 1), 0.0)
        recall = tp / positives
    gain = np.diff(np.concatenate([np.zeros((tp.shape[0], 1)), recall], axis=1), axis=1)
    ap = np.sum(gain * precision, axis=1)
    return np.where(positives[:, 0] > 0, ap, np.nan)


def map_ci(scores: np.ndarray, truth_multi_hot: np.ndarray, n_boot: int = 1000, seed: int = 0,
           confidence: float = 0.95) -> tuple[float, float]:
    """Bootstrap interval of the mAP (classes with a positive in each resample).

    Equivalent to sklearn's average precision on each resample (a resample is the same
    as weighting items by their multiplicity), computed with one sort per class.
    """
    scores = np.asarray(scores, dtype=np.float64)
    truth = np.asarray(truth_multi_hot, dtype=np.float64)
    n = scores.shape[0]
    if n == 0:
        return float("nan"), float("nan")
    classes = [j for j in range(scores.shape[1]) if truth[:, j].any()]
    if not classes:
        return float("nan"), float("nan")
    orders = {j: np.argsort(-scores[:, j], kind="stable") for j in classes}
    values = []
    for counts in _resample_counts(n, n_boot, seed, _chunk(n)):
        per_class = np.stack([
            _weighted_ap(scores[orders[j], j], truth[orders[j], j], counts[:, orders[j]])
            for j in classes
        ], axis=1)
        finite = np.isfinite(per_class)
        n_scored = finite.sum(axis=1)
        total = np.where(finite, per_class, 0.0).sum(axis=1)
        values.append(np.where(n_scored > 0, 100.0 * total / np.maximum(n_scored, 1), np.nan))
    return _percentile_interval(np.concatenate(values), confidence)
