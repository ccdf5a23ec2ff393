"""Scoring: WER behind one shared normaliser, embedding-based scene and event scores."""

from lalm_eval.metrics.embedding import (
    CachedEmbedder,
    HashingTextEmbedder,
    SentenceTransformerTextEmbedder,
    TextEmbedder,
    embedder_id,
)
from lalm_eval.metrics.scores import (
    bootstrap_ci,
    event_scores,
    from_label_scores,
    macc,
    macc_ci,
    map_ci,
    mean_average_precision,
    multi_hot,
    scene_probabilities,
    score_asc,
    score_asc_from_scores,
    score_asr,
    score_at,
    score_at_from_scores,
    wer_ci,
)
from lalm_eval.metrics.stats import mean_std
from lalm_eval.metrics.wer import JIWER_ID, NORMALISER_ID, WerResult, corpus_wer, normalise

__all__ = [
    "JIWER_ID",
    "NORMALISER_ID",
    "CachedEmbedder",
    "HashingTextEmbedder",
    "SentenceTransformerTextEmbedder",
    "TextEmbedder",
    "WerResult",
    "bootstrap_ci",
    "corpus_wer",
    "embedder_id",
    "event_scores",
    "from_label_scores",
    "macc",
    "macc_ci",
    "map_ci",
    "mean_average_precision",
    "mean_std",
    "multi_hot",
    "normalise",
    "scene_probabilities",
    "score_asc",
    "score_asc_from_scores",
    "score_asr",
    "score_at",
    "score_at_from_scores",
    "wer_ci",
]
