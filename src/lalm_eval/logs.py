"""Logging for workflow steps: everything a step prints goes to its rule's log file."""

from __future__ import annotations

import contextlib
import logging
import sys
import traceback
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TextIO

#: the console streams of the steps in progress (innermost last): what Snakemake shows
_CONSOLES: list[TextIO] = []


@contextlib.contextmanager
def log_to(path: str | Path | None) -> Iterator[logging.Logger]:
    """Send stderr and the ``lalm_eval`` logger to ``path`` for the duration of a step.

    An exception is written to the log with its traceback and re-raised, so Snakemake
    marks the job failed and the log says why.
    """
    logger = logging.getLogger("lalm_eval")
    if path is None:
        logging.basicConfig(level=logging.INFO)
        yield logger
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", buffering=1) as handle:
        handler = logging.StreamHandler(handle)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logger.addHandler(handler)
        old_level = logger.level
        logger.setLevel(logging.INFO)
        old_stderr, sys.stderr = sys.stderr, handle
        _CONSOLES.append(old_stderr)
        try:
            yield logger
        except BaseException:
            traceback.print_exc(file=handle)
            raise
        finally:
            _CONSOLES.pop()
            sys.stderr = old_stderr
            logger.removeHandler(handler)
            logger.setLevel(old_level)


def notice(message: str) -> None:
    """Say ``message`` on the console (Snakemake's output) and in the step's log: for what
    a user must not miss, such as rejected sources and failed items."""
    logging.getLogger("lalm_eval").warning(message)
    console = _CONSOLES[-1] if _CONSOLES else sys.stderr
    print(f"lalm-eval: {message}", file=console, flush=True)


def notice_failures(what: str, n_failed: int, n_total: int, where: str,
                    reasons: Mapping[str, int] | None = None) -> None:
    """One console line when some items of a step failed: how many, why, where listed."""
    if n_failed <= 0:
        return
    why = ""
    if reasons:
        top = sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
        why = " (" + "; ".join(f"{reason}: {count}" for reason, count in top) + ")"
    notice(f"{what}: {n_failed} of {n_total} items failed{why}; they are listed in {where} "
           "and count as failed in the scores")
