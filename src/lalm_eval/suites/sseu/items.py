"""SSEU-Bench work items: ASR, acoustic scene classification (asc) and audio tagging (at)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from lalm_eval.inference import WorkItem
from lalm_eval.prompts import PromptSet, prompt_for

#: how each task is served, in order of preference, by adapter capability
TASK_REQUESTS = {
    "asr": ("transcribe", "generate"),
    "asc": ("classify", "generate"),
    "at": ("classify", "generate"),
}


def collect_labels(background_index: str | Path) -> dict[str, list[str]]:
    """Scene and event label sets of a suite, from its prepared background index."""
    table = pd.read_csv(background_index, keep_default_na=False)
    scenes = sorted({s for s in table["scene"] if s})
    events = sorted({e["label"] for cell in table["events"] for e in json.loads(cell or "[]")})
    return {"scenes": scenes, "events": events}


def clip_subset(manifest: pd.DataFrame, n_clips: int | None) -> pd.DataFrame:
    """The first ``n_clips`` clips of a split in scene round-robin order (the first clip of
    each scene, then the second, ...; scenes in order of first appearance), in manifest
    order. Every split of a suite lists the same clips, so the subset is the same at every
    SNR. ``None`` (or at least as many as there are) keeps them all."""
    if n_clips is None or n_clips >= len(manifest):
        return manifest
    scenes = manifest["scene"] if "scene" in manifest else pd.Series("", index=manifest.index)
    rank = scenes.groupby(scenes, sort=False).cumcount()
    first_seen = {scene: i for i, scene in enumerate(dict.fromkeys(scenes))}
    order = sorted(range(len(manifest)),
                   key=lambda i: (int(rank.iloc[i]), first_seen[scenes.iloc[i]]))
    return manifest.iloc[sorted(order[:n_clips])]


def choose_request(task: str, capabilities: Sequence[str]) -> str | None:
    """The adapter task that serves a benchmark task, or None if the model cannot."""
    for request in TASK_REQUESTS.get(task, ("generate",)):
        if request in capabilities:
            return request
    return None


def build_items(
    manifest: pd.DataFrame,
    prompts: PromptSet,
    mode: str,
    labels: dict[str, list[str]],
    capabilities: Sequence[str],
    model_tasks: Sequence[str] | None = None,
    prompt_overrides: dict[str, str] | None = None,
) -> tuple[list[WorkItem], list[str]]:
    """Work items for every task x clip of ``mode`` that the model can serve, task-major.

    Returns (items, skipped task names). Classification requests carry the label set;
    generation requests carry the rendered prompt (with the model's override, if any).
    """
    items: list[WorkItem] = []
    skipped: list[str] = []
    steps = []
    for step in prompts.mode(mode):
        request = choose_request(step.task, capabilities)
        if request is None or (model_tasks is not None and step.task not in model_tasks):
            skipped.append(step.task)
            continue
        steps.append((step, request))
    # task by task (every clip's ASR, then every clip's scene, ...): consecutive prompts
    # of an LLM then share the task's instructions, a prefix llama.cpp evaluates once
    for step, request in steps:
        for clip in manifest.itertuples():
            prompt_id, text, system, clip_labels, multi = None, None, None, None, False
            if request == "classify":
                clip_labels = tuple(labels["scenes"] if step.task == "asc" else labels["events"])
                multi = step.task == "at"
                prompt_id = f"labels:{step.task}"
            elif request == "generate":
                prompt_id, text = prompt_for(step, prompt_overrides or {}, labels)
                system = prompts.system
            items.append(WorkItem(
                item_id=f"{clip.clip_id}:{step.task}", clip_id=clip.clip_id, task=step.task,
                request=request, audio_path=clip.audio_path, prompt_id=prompt_id, prompt=text,
                system=system, labels=clip_labels, multi_label=multi,
            ))
    return items, skipped
