"""Stand-in for Ming-er/MGA-CLAP@887b624 ``tools/utils.py`` (not its code): its module-level
imports (``tools/utils.py:15-20``: ``wandb``, ``loguru.logger``, ``sentence_transformers.util``,
``sed_scores_eval``, ``sed_scores_eval.utils.scores.create_score_dataframe``), used only by its
training and SED-scoring helpers (``log_results``, ``compute_psds_from_scores``)."""

import sed_scores_eval
import wandb
from loguru import logger
from sed_scores_eval.utils.scores import create_score_dataframe
from sentence_transformers import util

__all__ = ["logger", "util", "log_results", "compute_psds_from_scores",
           "create_score_dataframe"]


def log_results(results):
    wandb.log(results)


def compute_psds_from_scores(scores, ground_truth_file, durations_file):
    return sed_scores_eval.intersection_based.psds(scores=scores, ground_truth=ground_truth_file,
                                                   audio_durations=durations_file)
