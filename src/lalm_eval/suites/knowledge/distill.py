"""The audio-grounded arm's training data: DeSTA-style self-distillation, stage 1.

Each backbone text LLM reads every training clip's seed description with one instruction
(:data:`lalm_eval.prompts` file ``distill_demo``: system, template, instruction pool) and
writes a response. This is an ordinary inference job (mode ``distill``, split = the
distillation corpus) through :func:`lalm_eval.inference.run_job`: cached per request,
resumable, batched. :func:`training_rows` then turns the clips and that backbone's responses
into the trainer's rows (``lalm_eval.training.data``): audio, the instruction as the prompt,
the response as the target, the clip's transcript (DeSTA feeds it after the audio queries).
A clip whose response failed or came back empty is left out and listed with its reason in
the set's summary, never replaced.

Clip sources: our demo set (:mod:`lalm_eval.corpora.distill_demo`, ``distill.jsonl``) or,
in full runs, DeSTA-AQA5M manifests (:func:`read_desta_manifest`: ``id``, ``seed_description``,
``prompt`` and ``messages[].audios[] = {audio, text}``; the released Llama-3.1 responses are
not used, every backbone writes its own).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lalm_eval.hashing import text_sha256
from lalm_eval.inference import WorkItem

__all__ = ["DistillPrompts", "distill_work_items", "instruction_for", "load_distill_prompts",
           "read_clip_source", "read_clip_table", "read_desta_manifest", "training_rows",
           "write_clip_table", "write_training_set"]

TASK = "distill"


class DistillError(ValueError):
    """A distillation source or prompt file that breaks its contract."""


@dataclass(frozen=True)
class DistillPrompts:
    """Stage-1 prompt file: system text, template, instruction pool."""

    name: str
    version: str
    source: str
    system: str | None
    template: str
    instructions: tuple[str, ...]
    sha256: str


def load_distill_prompts(name_or_path: str = "distill_demo") -> DistillPrompts:
    """A packaged stage-1 prompt file by name or a YAML path; the template must use exactly
    ``{seed_description}`` and ``{instruction}``, the pool must be a non-empty list."""
    from lalm_eval.prompts import load_prompt_file

    file = load_prompt_file(name_or_path, required=("name", "version", "source", "instructions"),
                            templates={"template": ("seed_description", "instruction")},
                            what="distillation prompt file", error=DistillError)
    raw = file.data
    pool = raw["instructions"]
    if not isinstance(pool, list) or not all(isinstance(p, str) and p.strip() for p in pool):
        raise DistillError(f"{file.path}: instructions must be a list of non-empty strings")
    system = raw.get("system")
    return DistillPrompts(str(raw["name"]), str(raw["version"]), str(raw["source"]),
                          str(system).strip() if system else None, str(raw["template"]).strip(),
                          tuple(p.strip() for p in pool), file.sha256)


def instruction_for(record: Mapping[str, Any], prompts: DistillPrompts, seed: int) -> str:
    """The clip's own ``prompt`` when it has one, else a seeded pick from the pool (the same
    clip, pool and seed always get the same instruction, whichever backbone asks)."""
    own = record.get("prompt")
    if isinstance(own, str) and own.strip():
        return own.strip()
    digest = int(text_sha256(f"{seed}:{record['id']}")[:8], 16)
    return prompts.instructions[digest % len(prompts.instructions)]


def distill_work_items(records: Sequence[Mapping[str, Any]], prompts: DistillPrompts,
                       seed: int) -> list[WorkItem]:
    """One text-only ``generate`` request per clip (no audio: the backbone reads text)."""
    return [WorkItem(item_id=str(r["id"]), clip_id=str(r["id"]), task=TASK, request="generate",
                     audio_path=None, prompt_id=f"{prompts.name}:stage1",
                     prompt=prompts.template.format(
                         seed_description=str(r["seed_description"]).strip(),
                         instruction=instruction_for(r, prompts, seed)),
                     system=prompts.system)
            for r in records]


# --------------------------------------------------------------------------- sources


def read_clip_table(path: str | Path) -> list[dict[str, Any]]:
    """The clips of a ``distill.jsonl`` (see :mod:`lalm_eval.corpora.distill_demo`)."""
    from lalm_eval.corpora.distill_demo import read_distill_table

    try:
        return read_distill_table(path)
    except ValueError as exc:
        raise DistillError(str(exc)) from exc


def read_desta_manifest(paths: Iterable[str | Path], audio_root: str | Path, *,
                        heldout_fraction: float = 0.01, max_items: int | None = None,
                        seed: int = 0) -> list[dict[str, Any]]:
    """Clips of DeSTA-AQA5M JSON Lines manifests in the common clip shape.

    Per line: ``id``, ``seed_description``, ``prompt``, ``messages`` whose ``audios`` hold
    ``{"audio": relative path, "text": transcript}`` (one audio per line is supported, as in
    every AQA5M record; more raise naming the line). The held-out split is a seeded fraction
    of the clips; ``max_items`` keeps the first lines (in file order).
    """
    root = Path(audio_root)
    records: list[dict[str, Any]] = []
    for path in paths:
        path = Path(path)
        with open(path, encoding="utf-8") as handle:
            for n, line in enumerate(handle, 1):
                if max_items is not None and len(records) >= max_items:
                    break
                if not line.strip():
                    continue
                where = f"{path}:{n}"
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DistillError(f"{where}: not JSON ({exc})") from exc
                audios = [a for m in row.get("messages") or [] for a in m.get("audios") or []]
                if len(audios) != 1:
                    raise DistillError(f"{where}: {len(audios)} audios (one is supported)")
                for key in ("id", "seed_description"):
                    if not isinstance(row.get(key), str) or not row[key].strip():
                        raise DistillError(f"{where}: field {key!r} must be a non-empty string")
                text = str(audios[0].get("text") or "").strip()
                records.append({"id": row["id"],
                                "audio": str((root / audios[0]["audio"]).resolve()),
                                "dataset": row.get("dataset"),
                                "seed_description": row["seed_description"],
                                "prompt": row.get("prompt"), "transcript": text,
                                "split": "train"})
    rng = np.random.default_rng(seed)
    n_heldout = int(round(heldout_fraction * len(records)))
    for index in rng.permutation(len(records))[:n_heldout]:
        records[int(index)]["split"] = "heldout"
    return records


def read_clip_source(inputs: Mapping[str, str], params: Mapping[str, Any], seed: int
                     ) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """The clips of a distillation corpus (demo table or DeSTA-AQA5M manifests) in the
    common shape, and the clips left out because their audio file is missing (listed with
    the path, never silently dropped; none usable is an error)."""
    if params["kind"] == "distill_demo":
        records = read_clip_table(inputs["table"])
    else:
        manifests = sorted(Path(params["root"]).glob("*.jsonl"))
        if not manifests:
            raise DistillError(f"no *.jsonl manifests in {params['root']}")
        records = read_desta_manifest(manifests, params["audio_root"],
                                      heldout_fraction=float(params["heldout_fraction"]),
                                      max_items=params.get("max_items"), seed=seed)
    kept = [r for r in records if Path(r["audio"]).is_file()]
    missing = [{"item_id": str(r["id"]), "reason": f"audio file not found: {r['audio']}"}
               for r in records if not Path(r["audio"]).is_file()]
    if not kept:
        raise DistillError(f"none of the {len(records)} distillation clips has its audio file"
                           + (f" (e.g. {missing[0]['reason']})" if missing else ""))
    return kept, missing


def write_clip_table(records: Sequence[Mapping[str, Any]], left_out: Sequence[Mapping[str, str]],
                     path: str | Path, summary_path: str | Path) -> None:
    """The common clip table (JSON Lines, absolute audio paths) the stage-1 jobs read, and
    its summary (counts per split, the clips left out with their reason)."""
    from lalm_eval.jsonl import write_jsonl

    write_jsonl(path, records)
    counts = {split: sum(r["split"] == split for r in records) for split in ("train", "heldout")}
    Path(summary_path).write_text(json.dumps({"clips": counts, "left_out": list(left_out)},
                                             indent=1, ensure_ascii=False) + "\n",
                                  encoding="utf-8")


# --------------------------------------------------------------------------- stage 2 rows


def training_rows(records: Sequence[Mapping[str, Any]], responses: Iterable[Mapping[str, Any]],
                  prompts: DistillPrompts, seed: int
                  ) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """(trainer rows, left-out clips with reasons) from the clips and one backbone's stage-1
    prediction records (``item_id``, ``output_text``, ``error``)."""
    by_id = {str(r["item_id"]): r for r in responses}
    rows: list[dict[str, Any]] = []
    left_out: list[dict[str, str]] = []
    for record in records:
        clip_id = str(record["id"])
        response = by_id.get(clip_id)
        text = (response or {}).get("output_text")
        if response is None:
            left_out.append({"item_id": clip_id, "reason": "no stage-1 record"})
        elif response.get("error"):
            left_out.append({"item_id": clip_id, "reason": f"stage 1 failed: "
                                                           f"{response['error']}"})
        elif not isinstance(text, str) or not text.strip():
            left_out.append({"item_id": clip_id, "reason": "empty stage-1 response"})
        else:
            transcript = str(record.get("transcript") or "").strip()
            rows.append({"item_id": clip_id, "audio": str(Path(record["audio"]).resolve()),
                         "prompt": instruction_for(record, prompts, seed),
                         "target": text.strip(), "split": str(record["split"]),
                         "transcript": transcript or None})
    return rows, left_out


def write_training_set(rows: Sequence[Mapping[str, Any]], left_out: Sequence[Mapping[str, str]],
                       path: str | Path, summary_path: str | Path,
                       about: Mapping[str, Any]) -> None:
    """The trainer's JSON Lines file and a summary (counts, left-out clips, ``about``)."""
    from lalm_eval.jsonl import write_jsonl

    if not any(r["split"] == "train" for r in rows):
        reasons = sorted({r["reason"] for r in left_out})
        raise DistillError(f"{path}: no training clip has a usable stage-1 response "
                           f"({len(left_out)} left out: {'; '.join(reasons[:3])})")
    write_jsonl(path, [{k: v for k, v in r.items() if v is not None} for r in rows])
    counts = {split: sum(r["split"] == split for r in rows) for split in ("train", "heldout")}
    Path(summary_path).write_text(json.dumps(
        {**about, "rows": counts, "left_out": list(left_out)}, indent=1, ensure_ascii=False)
        + "\n", encoding="utf-8")
