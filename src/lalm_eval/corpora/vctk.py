"""VCTK 0.92 adapter: the speech source table.

Layout (no top folder inside the archive)::

    txt/pNNN/pNNN_XXX.txt
    wav48_silence_trimmed/pNNN/pNNN_XXX_mic1.flac   (and _mic2)

Known gaps, all reported in ``df.attrs["skipped"]`` and in the log, never dropped silently:

* p315 has audio but no text: all its utterances are skipped (reason ``no transcript``).
* p280 has no mic2 recordings: with ``mic="mic2"`` its utterances are skipped
  (reason ``no <mic> audio``), or, with ``fallback_mic=True``, the other microphone's file
  is used instead (listed with reason ``used <other mic> instead of <mic>``; the ``origin``
  column shows the file actually used).
* A text without any audio, an audio without a text, or an empty text is skipped.

Subsampling (``max_per_speaker``) is deterministic: each speaker's draw depends only on
``seed`` and the speaker id, not on which other speakers are selected.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import pandas as pd

from lalm_eval.corpora.tables import (
    SPEECH_COLUMNS,
    Skip,
    attach_skips,
    new_table,
    validate_speech_table,
)
from lalm_eval.hashing import file_sha256

VCTK_VERSION = "0.92"
VCTK_LICENCE = "CC-BY-4.0"
TEXT_DIR = "txt"
AUDIO_DIR = "wav48_silence_trimmed"
MICS = ("mic1", "mic2")
_AUDIO_NAME = re.compile(r"^(?P<utt>(?P<spk>[ps]\d+)_\d+)_(?P<mic>mic\d)\.flac$")


def _read_text(path: Path) -> str:
    """A transcript file's text (UTF-8, Latin-1 fallback), whitespace-normalised."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    return " ".join(text.split())


def _scan_audio(root: Path) -> dict[str, dict[str, dict[str, Path]]]:
    """speaker -> utterance -> mic -> audio path."""
    found: dict[str, dict[str, dict[str, Path]]] = {}
    audio_root = root / AUDIO_DIR
    if not audio_root.is_dir():
        return found
    for path in sorted(audio_root.glob("*/*.flac")):
        match = _AUDIO_NAME.match(path.name)
        if match is None or match["spk"] != path.parent.name:
            continue
        found.setdefault(match["spk"], {}).setdefault(match["utt"], {})[match["mic"]] = path
    return found


def _scan_text(root: Path) -> dict[str, dict[str, Path]]:
    """speaker -> utterance -> transcript path."""
    found: dict[str, dict[str, Path]] = {}
    text_root = root / TEXT_DIR
    if not text_root.is_dir():
        return found
    for path in sorted(text_root.glob("*/*.txt")):
        if path.stem.startswith(path.parent.name + "_"):
            found.setdefault(path.parent.name, {})[path.stem] = path
    return found


def _pick(utts: list[str], speaker: str, k: int | None, seed: int) -> list[str]:
    """Deterministic subsample of at most ``k`` utterances (sorted)."""
    utts = sorted(utts)
    if k is None or k >= len(utts):
        return utts
    rng = random.Random(f"vctk:{seed}:{speaker}")
    return sorted(rng.sample(utts, k))


def vctk_speech_table(
    root: Path,
    *,
    mic: str = "mic1",
    speakers: list[str] | None = None,
    max_per_speaker: int | None = None,
    seed: int = 0,
    hash_files: bool = True,
    fallback_mic: bool = False,
) -> pd.DataFrame:
    """Build the speech table for VCTK 0.92 under ``root``.

    ``speakers`` limits the speakers (an unknown one is an error); ``max_per_speaker``
    draws that many usable utterances per speaker with ``seed``. Paths are absolute.
    Skipped items are in ``df.attrs["skipped"]`` (see module doc).
    """
    root = Path(root).resolve()
    if mic not in MICS:
        raise ValueError(f"vctk: mic must be one of {MICS}, got {mic!r}")
    if max_per_speaker is not None and max_per_speaker < 1:
        raise ValueError("vctk: max_per_speaker must be >= 1")
    audio, texts = _scan_audio(root), _scan_text(root)
    if not audio and not texts:
        raise FileNotFoundError(f"vctk: no {AUDIO_DIR}/ or {TEXT_DIR}/ data under {root}")
    all_speakers = sorted(set(audio) | set(texts))
    if speakers is not None:
        unknown = sorted(set(speakers) - set(all_speakers))
        if unknown:
            raise ValueError(f"vctk: speaker(s) not found under {root}: {unknown}")
        all_speakers = sorted(set(speakers))
    other_mic = MICS[1 - MICS.index(mic)]
    rows: list[dict[str, object]] = []
    skips: list[Skip] = []
    for spk in all_speakers:
        spk_audio, spk_text = audio.get(spk, {}), texts.get(spk, {})
        usable: dict[str, tuple[Path, str]] = {}
        for utt in sorted(set(spk_audio) | set(spk_text)):
            mics = spk_audio.get(utt, {})
            text_path = spk_text.get(utt)
            member = f"{TEXT_DIR}/{spk}/{utt}.txt"
            if not mics:
                skips.append(Skip(member, "no audio"))
                continue
            audio_path = mics.get(mic)
            if audio_path is None and fallback_mic and other_mic in mics:
                audio_path = mics[other_mic]
                skips.append(
                    Skip(_rel(audio_path, root), f"used {other_mic} instead of {mic} (kept)")
                )
            if audio_path is None:
                skips.append(Skip(_rel(next(iter(mics.values())), root), f"no {mic} audio"))
                continue
            if text_path is None:
                skips.append(Skip(_rel(audio_path, root), "no transcript"))
                continue
            transcript = _read_text(text_path)
            if not transcript:
                skips.append(Skip(_rel(text_path, root), "empty transcript"))
                continue
            usable[utt] = (audio_path, transcript)
        for utt in _pick(list(usable), spk, max_per_speaker, seed):
            audio_path, transcript = usable[utt]
            rel = _rel(audio_path, root)
            rows.append(
                {
                    "source_id": f"vctk_{utt}",
                    "path": str(audio_path),
                    "start_s": None,
                    "end_s": None,
                    "transcript": transcript,
                    "speaker": spk,
                    "origin": f"vctk={VCTK_VERSION}:{rel}",
                    "licence": VCTK_LICENCE,
                    "sha256": file_sha256(audio_path) if hash_files else "",
                }
            )
    df = new_table(rows, SPEECH_COLUMNS)
    validate_speech_table(df, "vctk speech table")
    return attach_skips(df, skips, "vctk")


def _rel(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` with forward slashes."""
    return path.relative_to(root).as_posix()
