"""JASCO / What Are They Doing: clip table, instructions, judge template and work items.

The upstream release (BenoitWang/What_Are_They_Doing) ships ``dataset/v0/v0.csv`` (one row per
clip) and evaluates a 640-row table (80 clips x 8 instructions) shaped like
``evaluation/example.csv``. The instructions and the judge template live only in the
README, so they are extracted from it at run time and pinned by their sha256.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from lalm_eval.hashing import text_sha256
from lalm_eval.inference import EMPTY_OUTPUT, WorkItem
from lalm_eval.jsonl import read_jsonl, write_jsonl

#: our wording of the faithful mode's second call (upstream asks a similar question in
#: eval.py; its prompt is code, not data, so it is not fetched); an input of judge jobs
from lalm_eval.suites.jasco import ORIENTATION_PROMPT_RESOURCE

#: columns of upstream dataset/v0/v0.csv, in file order
V0_COLUMNS = (
    "audio_id",
    "Audio",
    "Speech",
    "Audio-Only Answer",
    "Speech-Only Answer",
    "Correct Answer",
    "Correct Answer Keyword",
)

#: columns of upstream evaluation/example.csv, in file order
ITEM_COLUMNS = (
    "id",
    "audio",
    "n_frames",
    "audio_sound",
    "spoken_text",
    "prompt",
    "with_speech",
    "audio_only_target",
    "speech_only_target",
    "target_keywords",
    "tgt_text",
    "allm_output",
)

#: v0.csv column -> example.csv column
_V0_TO_ITEM = {
    "Audio": "audio_sound",
    "Speech": "spoken_text",
    "Audio-Only Answer": "audio_only_target",
    "Speech-Only Answer": "speech_only_target",
    "Correct Answer Keyword": "target_keywords",
    "Correct Answer": "tgt_text",
}

N_INSTRUCTIONS = 8
#: README heading words of the section holding the instructions / the judge template
INSTRUCTION_SECTION = "inference"
JUDGE_SECTION = "evaluation"
#: placeholders the judge template must contain (those eval.py fills in)
JUDGE_FIELDS = (
    "audio_sound",
    "spoken_text",
    "question",
    "audio_only_target",
    "speech_only_target",
    "reference",
    "keywords",
    "prediction",
)

_WS = re.compile(r"\s+")


class JascoFormatError(ValueError):
    """An upstream file does not have the expected shape."""


def _norm(value: object) -> str:
    """Collapse runs of whitespace and strip; NaN / None become ''."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return _WS.sub(" ", str(value)).strip()


def read_v0_csv(path: str | Path) -> pd.DataFrame:
    """Read upstream ``v0.csv``: check its columns, normalise whitespace, audio_id as str."""
    path = Path(path)
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    table.columns = [_norm(c) for c in table.columns]
    missing = [c for c in V0_COLUMNS if c not in table.columns]
    if missing:
        raise JascoFormatError(f"{path}: missing column(s) {', '.join(missing)}")
    table = table[list(V0_COLUMNS)].copy()
    for column in V0_COLUMNS:
        table[column] = table[column].map(_norm)
    table = table[table["audio_id"] != ""].reset_index(drop=True)
    dupes = sorted(set(table["audio_id"][table["audio_id"].duplicated()]))
    if dupes:
        raise JascoFormatError(f"{path}: duplicate audio_id(s) {', '.join(dupes)}")
    return table


def _sections(markdown: str) -> list[tuple[str, list[list[str]]]]:
    """(heading, fenced code blocks) per markdown section; '#' lines inside fences ignored."""
    sections: list[tuple[str, list[list[str]]]] = [("", [])]
    block: list[str] | None = None
    for line in markdown.splitlines():
        if line.lstrip().startswith("```"):
            if block is None:
                block = []
            else:
                sections[-1][1].append(block)
                block = None
        elif block is not None:
            block.append(line)
        elif line.startswith("#"):
            sections.append((line.lstrip("#").strip(), []))
    if block is not None:
        raise JascoFormatError("README: unterminated code block")
    return sections


def _first_block(markdown: str, word: str) -> list[str]:
    for heading, blocks in _sections(markdown):
        if word in heading.lower() and blocks:
            return blocks[0]
    raise JascoFormatError(f"README: no code block under a heading containing {word!r}")


def extract_instructions(readme_text: str) -> tuple[list[str], str]:
    """The 8 instructions (first code block of the inference section) and their sha256.

    Each non-blank line of the block is one instruction (blank lines only group them).
    The hash covers the instructions joined by newlines.
    """
    lines = [_norm(x) for x in _first_block(readme_text, INSTRUCTION_SECTION)]
    instructions = [x for x in lines if x]
    if len(instructions) != N_INSTRUCTIONS:
        raise JascoFormatError(
            f"README: expected {N_INSTRUCTIONS} instructions, found {len(instructions)}"
        )
    return instructions, text_sha256("\n".join(instructions))


def extract_judge_template(readme_text: str) -> tuple[str, str]:
    """The judge prompt template (first code block of the evaluation section) and its sha256.

    The text is the block's lines joined by newlines, unchanged; it must contain every
    ``{field}`` placeholder the judge fills in.
    """
    template = "\n".join(_first_block(readme_text, JUDGE_SECTION))
    missing = [f for f in JUDGE_FIELDS if "{" + f + "}" not in template]
    if missing:
        raise JascoFormatError(f"README: judge template lacks placeholder(s) {missing}")
    return template, text_sha256(template)


def _n_frames(path: Path) -> float | int:
    """Frame count from the audio header (native rate), NaN if the file is absent."""
    if not path.exists():
        return math.nan
    import soundfile

    return int(soundfile.info(str(path)).frames)


def expand_items(v0: pd.DataFrame, instructions: list[str], audio_dir: Path) -> pd.DataFrame:
    """Clip x instruction table shaped like upstream ``evaluation/example.csv``.

    Rows go clip by clip, instructions in README order; ``id`` is the clip's audio_id
    (repeated for its 8 rows), ``audio`` the path ``<audio_dir>/<audio_id>.wav``,
    ``with_speech`` True and ``allm_output`` empty.
    """
    audio_dir = Path(audio_dir)
    rows: list[dict[str, object]] = []
    for clip in v0.to_dict("records"):
        audio_id = str(clip["audio_id"])
        wav = audio_dir / f"{audio_id}.wav"
        frames = _n_frames(wav)
        for instruction in instructions:
            row: dict[str, object] = {
                "id": audio_id,
                "audio": str(wav),
                "n_frames": frames,
                "prompt": instruction,
                "with_speech": True,
                "allm_output": "",
            }
            row.update({dst: clip[src] for src, dst in _V0_TO_ITEM.items()})
            rows.append(row)
    return pd.DataFrame(rows, columns=list(ITEM_COLUMNS))


def items_to_work(items: pd.DataFrame) -> list[WorkItem]:
    """One "generate" WorkItem per table row; prompt k (1-based, per clip) is ``jasco-<k>``."""
    k = items.groupby("id", sort=False).cumcount() + 1
    work: list[WorkItem] = []
    for (_, row), index in zip(items.iterrows(), k, strict=True):
        clip_id = str(row["id"])
        work.append(
            WorkItem(
                item_id=f"jasco-{clip_id}-{index}",
                clip_id=clip_id,
                task="jasco",
                request="generate",
                audio_path=str(row["audio"]),
                prompt_id=f"jasco-{index}",
                prompt=str(row["prompt"]),
            )
        )
    return work


# --------------------------------------------------------------------------- judging


def judge_fields(row: Mapping[str, Any], answer: str) -> dict[str, str]:
    """The values of the judge template's placeholders for one item and answer."""
    return {
        "audio_sound": _norm(row["audio_sound"]),
        "spoken_text": _norm(row["spoken_text"]),
        "question": _norm(row["prompt"]),
        "audio_only_target": _norm(row["audio_only_target"]),
        "speech_only_target": _norm(row["speech_only_target"]),
        "reference": _norm(row["tgt_text"]),
        "keywords": _norm(row["target_keywords"]),
        "prediction": str(answer).strip(),
    }


def fill_judge_template(template: str, fields: Mapping[str, str]) -> str:
    """Replace each ``{field}`` of :data:`JUDGE_FIELDS`; other braces are left alone."""
    missing = [f for f in JUDGE_FIELDS if f not in fields]
    if missing:
        raise JascoFormatError(f"judge template values missing: {missing}")
    text = template
    for name in JUDGE_FIELDS:
        text = text.replace("{" + name + "}", fields[name])
    return text


def load_orientation_prompt() -> tuple[str, str]:
    """The packaged orientation-call prompt (``{explanation}`` placeholder) and its sha256.

    Read by :func:`lalm_eval.prompts.load_prompt_file`; ``template`` must contain the literal
    ``{explanation}`` (it is filled with ``str.replace``, so other braces are allowed).
    The sha256 returned is that of the template text, not of the file: it is what judgement
    records carry as ``orientation_prompt_sha256``. Errors are :class:`JascoFormatError`.
    """
    from lalm_eval.prompts import load_prompt_file

    file = load_prompt_file(ORIENTATION_PROMPT_RESOURCE, markers={"template": ("explanation",)},
                            what="orientation prompt", error=JascoFormatError)
    template = str(file.data["template"])
    return template, text_sha256(template)


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """Records of a JSONL file written by the inference engine or a judge job."""
    return read_jsonl(path, JascoFormatError)


def judge_work_items(items: pd.DataFrame, answers: Sequence[Mapping[str, Any]],
                     template: str, system: str | None) -> list[WorkItem]:
    """One text-only judge request per answered item (failed answers get none).

    The prompt is the filled template, so the engine's cache key covers the judge's
    fingerprint, the template, the item and the answer text.
    """
    rows = {f"jasco-{r['id']}-{k}": r for r, k in _with_index(items)}
    work: list[WorkItem] = []
    for answer in answers:
        if answer.get("error"):
            continue
        row = rows.get(answer["item_id"])
        if row is None:
            raise JascoFormatError(f"answer for unknown item {answer['item_id']!r}")
        prompt = fill_judge_template(template, judge_fields(row, answer.get("output_text") or ""))
        work.append(WorkItem(item_id=answer["item_id"], clip_id=str(row["id"]),
                             task="jasco_judge", request="generate", prompt_id="judge",
                             prompt=prompt, system=system))
    return work


def orientation_work_items(calls: Sequence[Mapping[str, Any]], template: str
                           ) -> list[WorkItem]:
    """Second calls for judge outputs whose orientation the faithful parser cannot read."""
    from lalm_eval.answers.verdicts import orientation_call_input, parse_verdict_faithful

    work = []
    for call in calls:
        if call.get("error") and call["error"] != EMPTY_OUTPUT:
            continue
        if parse_verdict_faithful(call.get("output_text"), None).needs_orientation_call:
            text = orientation_call_input(call.get("output_text"))
            work.append(WorkItem(item_id=call["item_id"], clip_id=call["clip_id"],
                                 task="jasco_orientation", request="generate",
                                 prompt_id="orientation",
                                 prompt=template.replace("{explanation}", text)))
    return work


def _with_index(items: pd.DataFrame) -> Iterator[tuple[dict[str, Any], int]]:
    k = items.groupby("id", sort=False).cumcount() + 1
    for row, index in zip(items.to_dict("records"), k, strict=True):
        yield row, int(index)


def read_items(path: str | Path) -> pd.DataFrame:
    """An items table written by :func:`expand_items` (all text columns as str)."""
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in ITEM_COLUMNS if c not in table.columns]
    if missing:
        raise JascoFormatError(f"{path}: missing column(s) {', '.join(missing)}")
    return table


def run_judge_job(*, items_path: str | Path, protocol_path: str | Path,
                  answers_path: str | Path, judge_name: str, models: dict, run: int,
                  seed: int, cache_dir: str | Path, out_path: str | Path,
                  system: str | None, retries: int, orientation_call: bool,
                  threads: int = 1, progress: bool = True) -> dict[str, Any]:
    """Rate one system's answers (one run) with one judge; write one record per item.

    Judge calls go through the inference engine (cached, resumable, ``retries`` extra
    attempts for failed calls). With ``orientation_call`` the outputs whose orientation
    does not parse get the faithful mode's second call. Items whose answer failed get
    ``status`` ``no_answer``; failed judge calls ``judge_failed`` (lost, never carried over).
    """
    from lalm_eval.inference import run_job
    from lalm_eval.models.registry import build_model
    from lalm_eval.parallel import limit_threads

    limit_threads(threads)
    items = read_items(items_path)
    protocol = json.loads(Path(protocol_path).read_text())
    answers = read_records(answers_path)
    judge = build_model(judge_name, models)
    if not judge.supports("generate"):
        raise JascoFormatError(f"judge {judge_name!r} cannot generate text "
                               f"(supports {sorted(judge.capabilities)})")
    cache_dir = Path(cache_dir)
    common = dict(model_name=judge_name, model_revision=judge.entry.revision, run=run,
                  seed=seed, sample_rate=None, batch_size=judge.entry.batch_size,
                  progress=progress, max_attempts=1 + retries)
    work = judge_work_items(items, answers, protocol["judge_template"], system)
    calls_path = cache_dir / "calls.jsonl"
    summary = run_job(lambda: judge, judge.fingerprint(), work, cache_dir / "cache.jsonl",
                      calls_path, mode="judge", **common)
    calls = {r["item_id"]: r for r in read_records(calls_path)}
    second: dict[str, dict] = {}
    orientation_sha = None
    if orientation_call:
        template, orientation_sha = load_orientation_prompt()
        extra = orientation_work_items(list(calls.values()), template)
        if extra:
            second_path = cache_dir / "orientation.jsonl"
            run_job(lambda: judge, judge.fingerprint(), extra,
                    cache_dir / "orientation_cache.jsonl", second_path,
                    mode="orientation", **common)
            second = {r["item_id"]: r for r in read_records(second_path)}
    records = [_judgement(a, calls.get(a["item_id"]), second.get(a["item_id"]), judge_name,
                          judge.entry.revision, protocol, orientation_sha) for a in answers]
    write_jsonl(out_path, records)
    counts = pd.Series([r["status"] for r in records]).value_counts().to_dict()
    return {"judge": judge_name, "items": len(records), "statuses": counts,
            "calls_computed": summary.n_computed, "calls_cached": summary.n_cached}


def _judgement(answer: Mapping[str, Any], call: Mapping[str, Any] | None,
               second: Mapping[str, Any] | None, judge: str, revision: str | None,
               protocol: Mapping[str, Any], orientation_sha: str | None) -> dict[str, Any]:
    if answer.get("error"):
        status = "no_answer"
    elif call is None or (call.get("error") and call["error"] != EMPTY_OUTPUT):
        status = "judge_failed"
    else:
        status = "judged"  # an empty verdict is a verdict: the parsers decide
    return {
        "item_id": answer["item_id"], "clip_id": answer["clip_id"],
        "prompt_id": answer["prompt_id"], "model": answer["model"], "run": answer["run"],
        "judge": judge, "judge_revision": revision, "status": status,
        "answer_text": answer.get("output_text"), "answer_error": answer.get("error"),
        "judge_output": call.get("output_text") if call else None,
        "judge_error": call.get("error") if call else None,
        "judge_attempts": call.get("attempts") if call else None,
        "orientation_output": second.get("output_text") if second else None,
        "orientation_error": second.get("error") if second else None,
        "judge_template_sha256": protocol["judge_template_sha256"],
        "orientation_prompt_sha256": orientation_sha if second else None,
        "judge_cache_key": call.get("cache_key") if call else None,
    }




# --------------------------------------------------------------------------- data


def prepare_items(root: str | Path, *, n_clips: int | None = None,
                  instructions_sha256: str | None = None,
                  judge_template_sha256: str | None = None,
                  source: str = "") -> tuple[pd.DataFrame, dict[str, Any]]:
    """Items table and protocol from a release tree (``README.md`` + ``dataset/v0/``).

    The instructions and the judge template are read from the README; a configured sha256
    that differs from the file's is an error naming both hashes. ``n_clips`` keeps the
    first clips of v0.csv. The protocol records texts, hashes and where they came from.
    """
    root = Path(root)
    readme = root / "README.md"
    v0_path = root / "dataset" / "v0" / "v0.csv"
    for path in (readme, v0_path):
        if not path.is_file():
            raise JascoFormatError(f"{path}: missing (expected the upstream release layout)")
    text = readme.read_text(encoding="utf-8")
    instructions, instructions_hash = extract_instructions(text)
    template, template_hash = extract_judge_template(text)
    for what, pinned, found in (("instructions", instructions_sha256, instructions_hash),
                                ("judge template", judge_template_sha256, template_hash)):
        if pinned and pinned != found:
            raise JascoFormatError(f"{readme}: {what} sha256 {found} differs from the pinned "
                                   f"{pinned}; the upstream text changed or the pin is wrong")
    v0 = read_v0_csv(v0_path)
    if n_clips is not None:
        v0 = v0.head(n_clips)
    items = expand_items(v0, instructions, v0_path.parent)
    missing_audio = sorted({a for a in items["audio"] if not Path(a).is_file()})
    protocol = {
        "source": source, "readme": str(readme),
        "readme_sha256": text_sha256(text), "v0_sha256": text_sha256(v0_path.read_text("utf-8")),
        "instructions": instructions, "instructions_sha256": instructions_hash,
        "instructions_pinned": bool(instructions_sha256),
        "judge_template": template, "judge_template_sha256": template_hash,
        "judge_template_pinned": bool(judge_template_sha256),
        "n_clips": int(v0.shape[0]), "n_items": int(items.shape[0]),
        "missing_audio": missing_audio,
    }
    return items, protocol
