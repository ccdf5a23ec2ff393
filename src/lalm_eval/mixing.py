"""Speech-in-scene mixtures at a target SNR.

SNR definition (documented in docs/mixing.md): with speech ``s`` (its own utterance, after
loudness normalisation) and background ``b`` (the whole background clip, after loudness
normalisation), SNR_dB = 10 log10( mean(s^2) / mean((g*b)^2) ), each mean taken over that
signal's own samples. The speech keeps its normalised level and the background gain ``g``
is solved for the target. +inf adds no background; -inf adds no speech (the background
keeps its normalised level). A clipping guard scales the whole mixture down when its peak
would exceed the configured ceiling; this changes both components equally, so SNR holds.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lalm_eval.audio import power, to_pcm16, write_audio
from lalm_eval.parallel import ordered_map
from lalm_eval.source_store import SourceStore

#: an SNR split name: ``snr`` then a signed infinity or a decimal number of dB
SNR_SPLIT_RE = re.compile(r"snr(?P<snr>[+-]inf|[+-]?\d+(?:\.\d+)?)")


def parse_snr(value: float | int | str) -> float:
    """Turn a config SNR (number, '+inf', '-inf', 'inf') into a float."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip().lower()
    if text in ("inf", "+inf"):
        return math.inf
    if text == "-inf":
        return -math.inf
    try:
        return float(text)
    except ValueError as exc:
        raise ValueError(f"SNR {value!r} is not a number, '+inf' or '-inf'") from exc


def snr_split_name(snr_db: float) -> str:
    """Filename-safe split name for an SNR: snr+inf, snr+10, snr0, snr-5, snr-inf."""
    if math.isinf(snr_db):
        return "snr+inf" if snr_db > 0 else "snr-inf"
    text = f"{snr_db:g}"
    return f"snr+{text}" if snr_db > 0 else f"snr{text}"


def snr_of_split(split: str) -> float | None:
    """The SNR in dB a split name stands for, None when it is not an SNR split name.

    The one parser of split names (mixing, report tables and figures all use it). Accepted:
    ``snr`` followed by ``+inf`` or ``-inf`` (the sign is required: the mixer only ever
    writes ``snr+inf`` / ``snr-inf``, so a bare ``snrinf`` is not taken for clean speech) or
    by a decimal number with an optional sign (``snr+10``, ``snr10``, ``snr0``, ``snr-2.5``).
    The whole string must match: no surrounding whitespace, no trailing newline, no
    exponent notation.
    """
    match = SNR_SPLIT_RE.fullmatch(split)
    return None if match is None else parse_snr(match["snr"])


def split_snr(split: str) -> float:
    """Inverse of :func:`snr_split_name` (ValueError for a name that is not an SNR split)."""
    value = snr_of_split(split)
    if value is None:
        raise ValueError(f"split {split!r} is not an SNR split (expected e.g. 'snr+10', 'snr-inf')")
    return value


def background_gain(speech_power: float, background_power: float, snr_db: float) -> float:
    """Linear gain on the background that gives ``snr_db`` (0 for +inf)."""
    if snr_db == math.inf:
        return 0.0
    if snr_db == -math.inf:
        return 1.0
    if speech_power <= 0 or background_power <= 0:
        raise ValueError("SNR is undefined for a silent speech or background signal")
    return math.sqrt(speech_power / (background_power * 10.0 ** (snr_db / 10.0)))


@dataclass(frozen=True)
class MixResult:
    mixture: np.ndarray  # int16, as written
    speech_gain: float
    background_gain: float
    guard_gain_db: float
    measured_snr_db: float


def mix_clip(
    speech: np.ndarray,
    background: np.ndarray,
    offset: int,
    snr_db: float,
    peak_ceiling: float = 0.89125,
    speech_power: float | None = None,
    background_power: float | None = None,
) -> MixResult:
    """Mix ``speech`` into ``background`` at sample ``offset`` and target ``snr_db``.

    Output length equals the background's. Powers may be passed in when known (the source
    store caches them). ``measured_snr_db`` is computed from the int16 mixture as written,
    with the speech component subtracted to get the background one.
    """
    if offset < 0 or offset + len(speech) > len(background):
        raise ValueError(
            f"speech of {len(speech)} samples at offset {offset} does not fit a background "
            f"of {len(background)} samples"
        )
    p_speech = power(speech) if speech_power is None else speech_power
    p_background = power(background) if background_power is None else background_power
    bg_gain = background_gain(p_speech, p_background, snr_db)
    speech_gain = 0.0 if snr_db == -math.inf else 1.0
    mix = np.multiply(background, np.float32(bg_gain), dtype=np.float32)
    end = offset + len(speech)
    if speech_gain:
        mix[offset:end] += speech
    peak = max(float(mix.max()), -float(mix.min())) if len(mix) else 0.0
    guard = min(1.0, peak_ceiling / peak) if peak > 0 else 1.0
    if guard < 1.0:
        mix *= np.float32(guard)
    written = to_pcm16(mix)
    if math.isinf(snr_db):
        measured = snr_db
    else:
        speech_part = speech * np.float32(guard)
        residual = written.astype(np.float32) / np.float32(32767.0)
        residual[offset:end] -= speech_part
        measured = 10.0 * math.log10(power(speech_part) / power(residual))
    return MixResult(written, speech_gain * guard, bg_gain * guard, 20 * math.log10(guard),
                     measured)


def plan_pairs(
    speech_index: pd.DataFrame,
    background_index: pd.DataFrame,
    sample_rate: int,
    seed: int,
    n_clips: int | None = None,
    margin_s: float = 0.25,
    clip_prefix: str = "clip",
) -> pd.DataFrame:
    """Seeded pairing: each background clip gets one speech item and a placement offset.

    Backgrounds are taken in a seeded order (all of them, or the first ``n_clips``);
    speech items are drawn from a seeded cycle, skipping those too long for the
    background. The plan is shared by every SNR split, so only the gain differs.
    """
    rng = np.random.default_rng(seed)
    bg_order = rng.permutation(len(background_index))
    if n_clips is not None:
        if n_clips > len(bg_order):
            raise ValueError(f"n_clips={n_clips} but only {len(bg_order)} background clips exist")
        bg_order = bg_order[:n_clips]
    speech_order = list(rng.permutation(len(speech_index)))
    margin = int(round(margin_s * sample_rate))
    speech_len = speech_index["n_samples"].astype(int).to_numpy()
    rows = []
    cursor = 0
    for clip_no, b in enumerate(bg_order):
        bg = background_index.iloc[int(b)]
        room = int(bg["n_samples"]) - 2 * margin
        for tried in range(len(speech_order)):
            s = speech_order[(cursor + tried) % len(speech_order)]
            if speech_len[s] <= room:
                cursor = cursor + tried + 1
                break
        else:
            raise ValueError(
                f"no speech item fits background {bg['source_id']} "
                f"({int(bg['n_samples']) / sample_rate:.2f} s with {margin_s} s margins)"
            )
        sp = speech_index.iloc[int(s)]
        offset = margin + int(rng.integers(0, room - int(sp["n_samples"]) + 1))
        rows.append(
            {
                "clip_id": f"{clip_prefix}_{clip_no:05d}",
                "speech_id": sp["source_id"],
                "background_id": bg["source_id"],
                "offset_samples": offset,
                "seed": seed,
            }
        )
    return pd.DataFrame(rows)


MANIFEST_COLUMNS = [
    "clip_id", "suite", "split", "audio_path", "speech_id", "background_id", "scene",
    "events", "transcript", "speaker", "snr_target_db", "snr_measured_db", "speech_lufs",
    "background_lufs", "guard_gain_db", "speech_onset_s", "speech_offset_s", "duration_s",
    "sample_rate", "seed", "sources_origin", "sources_licence",
]


@dataclass(frozen=True)
class SplitJob:
    suite: str
    split: str
    speech_store: str
    background_store: str
    audio_dir: str
    subtype: str = "PCM_16"
    peak_ceiling: float = 0.89125


_STORES: dict[str, SourceStore] = {}


def _store(prefix: str) -> SourceStore:
    if prefix not in _STORES:
        _STORES[prefix] = SourceStore(prefix)
    return _STORES[prefix]


def _mix_rows(args: tuple[SplitJob, list[dict]]) -> list[dict]:
    job, pairs = args
    speech_store, bg_store = _store(job.speech_store), _store(job.background_store)
    rate = speech_store.sample_rate
    snr = split_snr(job.split)
    out = []
    for pair in pairs:
        sp_row, bg_row = speech_store.row(pair["speech_id"]), bg_store.row(pair["background_id"])
        speech = speech_store.samples(pair["speech_id"])
        background = bg_store.samples(pair["background_id"])
        offset = int(pair["offset_samples"])
        result = mix_clip(speech, background, offset, snr, job.peak_ceiling,
                          float(sp_row["power"]), float(bg_row["power"]))
        audio_path = Path(job.audio_dir) / f"{pair['clip_id']}.wav"
        write_audio(audio_path, result.mixture, rate, job.subtype)
        has_speech = result.speech_gain > 0
        has_bg = result.background_gain > 0
        out.append(
            {
                "clip_id": pair["clip_id"],
                "suite": job.suite,
                "split": job.split,
                "audio_path": str(audio_path),
                "speech_id": pair["speech_id"],
                "background_id": pair["background_id"],
                "scene": bg_row.get("scene", ""),
                "events": bg_row.get("events", "[]") if has_bg else "[]",
                "transcript": sp_row.get("transcript", "") if has_speech else "",
                "speaker": sp_row.get("speaker", ""),
                "snr_target_db": snr,
                "snr_measured_db": round(result.measured_snr_db, 4),
                "speech_lufs": _component_lufs(sp_row, result.speech_gain),
                "background_lufs": _component_lufs(bg_row, result.background_gain),
                "guard_gain_db": round(result.guard_gain_db, 4),
                "speech_onset_s": round(offset / rate, 6),
                "speech_offset_s": round((offset + len(speech)) / rate, 6),
                "duration_s": round(len(background) / rate, 6),
                "sample_rate": rate,
                "seed": int(pair["seed"]),
                "sources_origin": f"{sp_row.get('origin', '')} | {bg_row.get('origin', '')}",
                "sources_licence": f"{sp_row.get('licence', '')} | {bg_row.get('licence', '')}",
            }
        )
    return out


def _component_lufs(row: dict, gain: float) -> float:
    """Loudness of a component in the mixture (BS.1770 loudness scales with gain)."""
    if gain <= 0:
        return -math.inf
    return round(float(row["lufs"]) + 20 * math.log10(gain), 4)


def build_split(
    job: SplitJob,
    pairs: pd.DataFrame,
    manifest_path: str | Path,
    threads: int = 1,
    chunk: int = 16,
    progress: bool = False,
) -> pd.DataFrame:
    """Write every mixture of one SNR split and its manifest (one row per clip)."""
    from tqdm import tqdm

    records = pairs.to_dict("records")
    chunks = [records[i : i + chunk] for i in range(0, len(records), chunk)]
    tasks = [(job, c) for c in chunks]
    rows: list[dict] = []
    bar = tqdm(total=len(records), disable=not progress, unit="clip", mininterval=2.0)
    for part in _ordered(tasks, threads):
        rows.extend(part)
        bar.update(len(part))
    bar.close()
    manifest = pd.DataFrame(rows, columns=MANIFEST_COLUMNS)
    Path(manifest_path).parent.mkdir(parents=True, exist_ok=True)
    manifest.to_csv(manifest_path, index=False)
    return manifest


def _ordered(tasks: Sequence, threads: int) -> Iterable[list[dict]]:
    """Chunks over forked worker processes (each opens the stores once), in order."""
    return ordered_map(_mix_rows, tasks, threads)
