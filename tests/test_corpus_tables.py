"""Tests for the corpus adapters (VCTK, DESED, MAESTRO-Real), label maps and source tables."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from lalm_eval.corpora.desed import desed_background_table
from lalm_eval.corpora.labels import (
    LabelMap,
    apply_label_map,
    drop_event_labels,
    load_label_map,
    merge_intervals,
    scene_labels,
)
from lalm_eval.corpora.maestro import (
    clip_events,
    hard_events,
    maestro_background_table,
    read_soft_labels,
    segment_starts,
)
from lalm_eval.corpora.tables import (
    BACKGROUND_COLUMNS,
    SPEECH_COLUMNS,
    read_table,
    skipped_items,
    validate_background_table,
    validate_speech_table,
    write_table,
)
from lalm_eval.corpora.vctk import vctk_speech_table

# ---------------------------------------------------------------------------- fake corpora


def _write_audio(path: Path, seconds: float, rate: int, seed: int, fmt: str = "WAV") -> None:
    """Write a short noise file (content depends on ``seed`` so hashes differ)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    data = (rng.standard_normal(int(round(seconds * rate))) * 0.01).astype("float32")
    sf.write(str(path), data, rate, format=fmt)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture()
def vctk_root(tmp_path: Path) -> Path:
    """p225 (5 good utts, a text without audio, an audio without text), p280 (no mic2),
    p315 (no text at all), p226 (one empty transcript)."""
    root = tmp_path / "vctk"
    seed = 0

    def utt(spk: str, n: int, mics: tuple[str, ...], text: str | None) -> None:
        nonlocal seed
        for mic in mics:
            seed += 1
            name = f"{spk}_{n:03d}_{mic}.flac"
            _write_audio(root / "wav48_silence_trimmed" / spk / name, 0.05, 16000, seed, "FLAC")
        if text is not None:
            (root / "txt" / spk).mkdir(parents=True, exist_ok=True)
            (root / "txt" / spk / f"{spk}_{n:03d}.txt").write_text(text, encoding="utf-8")

    for n in range(1, 6):
        utt("p225", n, ("mic1", "mic2"), f"Please call  Stella {n}.\n")
    utt("p225", 6, (), "Text without audio.")
    utt("p225", 7, ("mic1",), None)
    utt("p280", 1, ("mic1",), "Ask her to bring these things.")
    utt("p280", 2, ("mic1",), "With her from the store.")
    utt("p315", 1, ("mic1", "mic2"), None)
    utt("p315", 2, ("mic1", "mic2"), None)
    utt("p226", 1, ("mic1", "mic2"), "   \n")
    utt("p226", 2, ("mic1", "mic2"), "Six spoons of fresh snow peas.")
    return root


DESED_TSV = (
    "filename\tonset\toffset\tevent_label\n"
    "Yab-c_30.000_40.000.wav\t0.5\t2.25\tDog\n"
    "Yab-c_30.000_40.000.wav\t1.0\t3.0\tSpeech\n"
    "b.wav\t0.0\t4.0\tSpeech\n"
    "c d.wav\t\t\t\n"
    "ghost.wav\t0.0\t1.0\tCat\n"
)


@pytest.fixture()
def desed_root(tmp_path: Path) -> Path:
    """Three clips (Dog+Speech, Speech only, none) and a label row without audio."""
    root = tmp_path / "desed"
    audio = root / "dataset" / "audio" / "eval" / "public"
    for i, name in enumerate(["Yab-c_30.000_40.000.wav", "b.wav", "c d.wav"]):
        _write_audio(audio / name, 0.1, 8000, 100 + i)
    meta = root / "dataset" / "metadata" / "eval"
    meta.mkdir(parents=True)
    (meta / "public.tsv").write_text(DESED_TSV, encoding="utf-8")
    return root


CAFE_LABELS = """onset offset label value
0 1 birds_singing 0.9
1 2 birds_singing 0.5
2 3 birds_singing 0.4
3 4 birds_singing 0.6
5 6 car 0.0
8 9 people talking 0.7
9 10 people talking 0.7
10 11 people talking 0.7
11 12 people talking 0.7
19 20 cutlery and dishes 0.8
20 21 cutlery and dishes 0.9
21 22 cutlery and dishes 0.2
"""
CITY_LABELS = "0.0\t1.0\tcar\t1.0\n1.0\t2.0\tcar\t1.0\n5.0\t6.0\tlarge_vehicle\t0.55\n"


@pytest.fixture()
def maestro_root(tmp_path: Path) -> Path:
    """Two 25 s recordings in two scenes, an orphan annotation and a stray wav."""
    root = tmp_path / "maestro"
    audio = root / "development_audio"
    _write_audio(audio / "cafe_restaurant" / "cafe_restaurant_00.wav", 25.0, 1000, 1)
    _write_audio(audio / "city_center" / "city_center_01.wav", 25.0, 1000, 2)
    _write_audio(audio / "misc" / "notes_00.wav", 1.0, 1000, 3)
    ann = root / "development_annotation"
    (ann / "soft_labels_cafe_restaurant").mkdir(parents=True)
    (ann / "soft_labels_city_center").mkdir(parents=True)
    (ann / "soft_labels_cafe_restaurant" / "cafe_restaurant_00.txt").write_text(CAFE_LABELS)
    (ann / "soft_labels_city_center" / "city_center_01.txt").write_text(CITY_LABELS)
    (ann / "soft_labels_city_center" / "city_center_09.txt").write_text(CITY_LABELS)
    return root


def _events(df: pd.DataFrame, source_id: str) -> list[tuple[str, float, float]]:
    cell = df.loc[df["source_id"] == source_id, "events"].item()
    return [(e["label"], e["onset"], e["offset"]) for e in json.loads(cell)]


def _reasons(df: pd.DataFrame) -> dict[str, str]:
    return {s.item: s.reason for s in skipped_items(df)}


# ---------------------------------------------------------------------------------- VCTK


def test_vctk_rows_and_skips(vctk_root: Path) -> None:
    df = vctk_speech_table(vctk_root)
    assert list(df.columns) == list(SPEECH_COLUMNS)
    assert df["source_id"].tolist() == [
        "vctk_p225_001", "vctk_p225_002", "vctk_p225_003", "vctk_p225_004", "vctk_p225_005",
        "vctk_p226_002", "vctk_p280_001", "vctk_p280_002",
    ]  # fmt: skip
    row = df.iloc[0]
    assert row["transcript"] == "Please call Stella 1."
    assert row["speaker"] == "p225"
    assert row["origin"] == "vctk=0.92:wav48_silence_trimmed/p225/p225_001_mic1.flac"
    assert row["licence"] == "CC-BY-4.0"
    assert Path(row["path"]).is_absolute() and Path(row["path"]).is_file()
    assert row["sha256"] == _sha(Path(row["path"]))
    assert df["start_s"].isna().all() and df["end_s"].isna().all()
    reasons = _reasons(df)
    assert reasons["wav48_silence_trimmed/p315/p315_001_mic1.flac"] == "no transcript"
    assert reasons["wav48_silence_trimmed/p315/p315_002_mic1.flac"] == "no transcript"
    assert reasons["txt/p225/p225_006.txt"] == "no audio"
    assert reasons["wav48_silence_trimmed/p225/p225_007_mic1.flac"] == "no transcript"
    assert reasons["txt/p226/p226_001.txt"] == "empty transcript"
    assert len(reasons) == 5


def test_vctk_mic2_skip_or_fallback(vctk_root: Path) -> None:
    df = vctk_speech_table(vctk_root, mic="mic2", hash_files=False)
    assert not df["speaker"].eq("p280").any()
    assert _reasons(df)["wav48_silence_trimmed/p280/p280_001_mic1.flac"] == "no mic2 audio"
    assert (df["sha256"] == "").all()
    fb = vctk_speech_table(vctk_root, mic="mic2", fallback_mic=True, hash_files=False)
    p280 = fb[fb["speaker"] == "p280"]
    assert p280["origin"].str.endswith("_mic1.flac").all() and len(p280) == 2
    assert fb[fb["speaker"] == "p225"]["origin"].str.endswith("_mic2.flac").all()
    reasons = _reasons(fb)
    assert reasons["wav48_silence_trimmed/p280/p280_002_mic1.flac"].startswith("used mic1")


def test_vctk_subsampling_is_deterministic(vctk_root: Path) -> None:
    a = vctk_speech_table(vctk_root, max_per_speaker=2, seed=3, hash_files=False)
    b = vctk_speech_table(vctk_root, max_per_speaker=2, seed=3, hash_files=False)
    pd.testing.assert_frame_equal(a, b)
    assert a.groupby("speaker").size().max() == 2
    only = vctk_speech_table(
        vctk_root, speakers=["p225"], max_per_speaker=2, seed=3, hash_files=False
    )
    assert only["source_id"].tolist() == a[a["speaker"] == "p225"]["source_id"].tolist()
    picks = {
        tuple(
            vctk_speech_table(
                vctk_root, speakers=["p225"], max_per_speaker=2, seed=s, hash_files=False
            )["source_id"]
        )
        for s in range(8)
    }
    assert len(picks) > 1


def test_vctk_errors(vctk_root: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="p999"):
        vctk_speech_table(vctk_root, speakers=["p225", "p999"])
    with pytest.raises(ValueError, match="mic"):
        vctk_speech_table(vctk_root, mic="mic3")
    with pytest.raises(FileNotFoundError):
        vctk_speech_table(tmp_path / "empty")


# --------------------------------------------------------------------------------- DESED


def test_desed_default_drops_speech_events(desed_root: Path) -> None:
    df = desed_background_table(desed_root)
    assert list(df.columns) == list(BACKGROUND_COLUMNS)
    assert df["source_id"].tolist() == [
        "desed_Yab-c_30.000_40.000", "desed_b", "desed_c_d",
    ]  # fmt: skip
    assert (df["scene"] == "home").all()
    assert _events(df, "desed_Yab-c_30.000_40.000") == [("Dog", 0.5, 2.25)]
    assert _events(df, "desed_b") == [] and _events(df, "desed_c_d") == []
    first = df.iloc[0]
    member = "dataset/audio/eval/public/Yab-c_30.000_40.000.wav"
    assert first["origin"] == f"desed=zenodo4560759:{member}"
    assert first["licence"] == "see-DESED-licence"
    assert first["sha256"] == _sha(Path(first["path"]))
    assert _reasons(df) == {"metadata/eval/public.tsv:ghost.wav": "labels but no audio"}


def test_desed_clip_policies(desed_root: Path) -> None:
    only = desed_background_table(desed_root, clip_policy="drop_if_only_dropped")
    assert only["source_id"].tolist() == ["desed_Yab-c_30.000_40.000", "desed_c_d"]
    assert "desed_b" in _reasons(only)
    anyd = desed_background_table(desed_root, clip_policy="drop_if_any_dropped")
    assert anyd["source_id"].tolist() == ["desed_c_d"]
    keep_all = desed_background_table(desed_root, drop_labels=set(), hash_files=False)
    assert _events(keep_all, "desed_Yab-c_30.000_40.000") == [
        ("Dog", 0.5, 2.25), ("Speech", 1.0, 3.0),
    ]  # fmt: skip
    with pytest.raises(ValueError, match="clip_policy"):
        desed_background_table(desed_root, clip_policy="sometimes")  # type: ignore[arg-type]


def test_desed_root_can_be_dataset_folder_and_bad_tsv(desed_root: Path) -> None:
    df = desed_background_table(desed_root / "dataset", hash_files=False)
    assert len(df) == 3
    tsv = desed_root / "dataset" / "metadata" / "eval" / "public.tsv"
    tsv.write_text(DESED_TSV + "b.wav\tx\t1.0\tDog\n")
    with pytest.raises(ValueError, match="public.tsv:7"):
        desed_background_table(desed_root)
    tsv.write_text("a.wav\t0\t1\tDog\n")
    with pytest.raises(ValueError, match="must start with"):
        desed_background_table(desed_root)


# ------------------------------------------------------------------------------- MAESTRO


def test_maestro_helpers_hand_computed() -> None:
    assert segment_starts(25.0, 10.0, 10.0) == [0.0, 10.0]
    assert segment_starts(25.0, 10.0, 5.0) == [0.0, 5.0, 10.0, 15.0]
    assert segment_starts(9.5, 10.0, 10.0) == []
    assert segment_starts(30.0, 10.0, 10.0) == [0.0, 10.0, 20.0]
    soft = [(0.0, 1.0, "a", 0.9), (1.0, 2.0, "a", 0.5), (2.0, 3.0, "a", 0.49),
            (3.0, 4.0, "a", 0.6), (1.0, 2.0, "b", 0.7)]  # fmt: skip
    events = hard_events(soft, 0.5)
    assert sorted((e["label"], e["onset"], e["offset"]) for e in events) == [
        ("a", 0.0, 2.0), ("a", 3.0, 4.0), ("b", 1.0, 2.0),
    ]  # fmt: skip
    clipped = clip_events([{"label": "a", "onset": 8.0, "offset": 12.0}], 10.0, 20.0)
    assert clipped == [{"label": "a", "onset": 0.0, "offset": 2.0}]
    assert clip_events([{"label": "a", "onset": 8.0, "offset": 10.0}], 10.0, 20.0) == []


def test_maestro_soft_label_parsing(maestro_root: Path) -> None:
    ann = maestro_root / "development_annotation"
    cafe = read_soft_labels(ann / "soft_labels_cafe_restaurant" / "cafe_restaurant_00.txt")
    assert cafe[0] == (0.0, 1.0, "birds_singing", 0.9)
    assert (19.0, 20.0, "cutlery and dishes", 0.8) in cafe
    city = read_soft_labels(ann / "soft_labels_city_center" / "city_center_01.txt")
    assert city[-1] == (5.0, 6.0, "large_vehicle", 0.55)
    bad = ann / "bad.txt"
    bad.write_text("0 1 car 0.5\n2 x car 0.5\n")
    with pytest.raises(ValueError, match="bad.txt:2"):
        read_soft_labels(bad)


def test_maestro_segments_and_events(maestro_root: Path) -> None:
    df = maestro_background_table(maestro_root)
    assert list(df.columns) == list(BACKGROUND_COLUMNS)
    assert df["source_id"].tolist() == [
        "maestro_cafe_restaurant_00_0000000ms", "maestro_cafe_restaurant_00_0010000ms",
        "maestro_city_center_01_0000000ms", "maestro_city_center_01_0010000ms",
    ]  # fmt: skip
    assert df["start_s"].tolist() == [0.0, 10.0, 0.0, 10.0]
    assert df["end_s"].tolist() == [10.0, 20.0, 10.0, 20.0]
    assert df["scene"].tolist() == ["cafe_restaurant"] * 2 + ["city_center"] * 2
    assert _events(df, "maestro_cafe_restaurant_00_0000000ms") == [
        ("birds_singing", 0.0, 2.0), ("birds_singing", 3.0, 4.0), ("people talking", 8.0, 10.0),
    ]  # fmt: skip
    assert _events(df, "maestro_cafe_restaurant_00_0010000ms") == [
        ("people talking", 0.0, 2.0), ("cutlery and dishes", 9.0, 10.0),
    ]  # fmt: skip
    assert _events(df, "maestro_city_center_01_0000000ms") == [
        ("car", 0.0, 2.0), ("large_vehicle", 5.0, 6.0),
    ]  # fmt: skip
    assert _events(df, "maestro_city_center_01_0010000ms") == []
    row = df.iloc[0]
    assert row["origin"] == (
        "maestro-real=zenodo7244360:development_audio/cafe_restaurant/cafe_restaurant_00.wav"
    )
    assert row["sha256"] == _sha(Path(row["path"]))
    orphan = "development_annotation/soft_labels_city_center/city_center_09.txt"
    assert _reasons(df) == {
        "development_audio/misc/notes_00.wav": "file name matches no MAESTRO-Real scene",
        orphan: "annotation but no audio",
    }


def test_maestro_hop_and_threshold(maestro_root: Path) -> None:
    df = maestro_background_table(maestro_root, hop_s=5.0, hash_files=False)
    cafe = df[df["scene"] == "cafe_restaurant"]
    assert cafe["start_s"].tolist() == [0.0, 5.0, 10.0, 15.0]
    assert _events(df, "maestro_cafe_restaurant_00_0005000ms") == [("people talking", 3.0, 7.0)]
    assert _events(df, "maestro_cafe_restaurant_00_0015000ms") == [
        ("cutlery and dishes", 4.0, 6.0),
    ]  # fmt: skip
    strict = maestro_background_table(maestro_root, threshold=0.95, hash_files=False)
    assert _events(strict, "maestro_cafe_restaurant_00_0000000ms") == []
    assert _events(strict, "maestro_city_center_01_0000000ms") == [("car", 0.0, 2.0)]
    (maestro_root / "development_annotation" / "soft_labels_city_center" /
     "city_center_01.txt").unlink()  # fmt: skip
    missing = maestro_background_table(maestro_root, hash_files=False)
    reasons = _reasons(missing)
    assert reasons["development_audio/city_center/city_center_01.wav"] == (
        "no soft-label annotation"
    )


# -------------------------------------------------------------------------------- labels


def test_default_label_map() -> None:
    lm = load_label_map()
    assert len(lm.event_classes) == 18
    assert len(lm.scene_classes) == 6
    assert scene_labels()["cafe_restaurant"] == "cafe or restaurant"
    desed = (
        "Alarm_bell_ringing,Blender,Cat,Dishes,Dog,Electric_shaver_toothbrush,Frying,"
        "Running_water,Speech,Vacuum_cleaner"
    ).split(",")
    maestro = (
        "cutlery and dishes,furniture dragging,people talking,children voices,coffee machine,"
        "footsteps,large_vehicle,car,brakes_squeaking,cash register beeping,announcement,"
        "shopping cart,metro leaving,metro approaching,door opens/closes,wind_blowing,"
        "birds_singing"
    ).split(",")
    assert len(desed) == 10 and len(maestro) == 17
    for raw in desed + maestro:
        assert (raw in lm.events) != (raw in lm.drop), raw
    assert lm.map_event("Speech") is None and lm.map_event("people talking") is None
    assert lm.map_event("Alarm_bell_ringing") == "alarm bell ringing"


def test_apply_label_map_to_tables(desed_root: Path, maestro_root: Path) -> None:
    lm = load_label_map()
    maestro = apply_label_map(maestro_background_table(maestro_root, hash_files=False), lm)
    assert maestro["scene"].tolist()[:2] == ["cafe or restaurant"] * 2
    assert _events(maestro, "maestro_cafe_restaurant_00_0000000ms") == [
        ("birds singing", 0.0, 2.0), ("birds singing", 3.0, 4.0),
    ]  # fmt: skip
    assert _events(maestro, "maestro_city_center_01_0000000ms") == [
        ("car", 0.0, 2.0), ("large vehicle", 5.0, 6.0),
    ]  # fmt: skip
    validate_background_table(maestro, "mapped maestro")
    free = apply_label_map(
        maestro_background_table(maestro_root, hash_files=False),
        lm,
        clip_policy="drop_if_any_dropped",
    )
    assert free["source_id"].tolist() == [
        "maestro_city_center_01_0000000ms", "maestro_city_center_01_0010000ms",
    ]  # fmt: skip
    desed = apply_label_map(desed_background_table(desed_root, drop_labels=()), lm)
    assert _events(desed, "desed_Yab-c_30.000_40.000") == [("dog", 0.5, 2.25)]
    assert set(desed["scene"]) == {"home"}


def test_apply_label_map_unknown_label_and_scene(desed_root: Path) -> None:
    table = desed_background_table(desed_root, drop_labels=(), hash_files=False)
    lm = LabelMap(events={"Dog": "dog"}, drop=frozenset(), scenes={"home": "home"})
    with pytest.raises(ValueError, match=r"'Speech' \(e\.g\. \['desed_Yab-c"):
        apply_label_map(table, lm, where="desed")
    lm2 = LabelMap(events={"Dog": "dog"}, drop=frozenset({"Speech"}), scenes={"x": "y"})
    with pytest.raises(ValueError, match="scene.*home"):
        apply_label_map(table, lm2)
    assert len(apply_label_map(table, lm2, map_scenes=False)) == 3


def test_apply_label_map_merges_same_text_label() -> None:
    events = json.dumps(
        [
            {"label": "Dishes", "onset": 0.0, "offset": 2.0},
            {"label": "cutlery and dishes", "onset": 1.5, "offset": 3.0},
            {"label": "Dog", "onset": 5.0, "offset": 6.0},
        ]
    )
    table = pd.DataFrame([{
        "source_id": "x", "path": "x.wav", "start_s": np.nan, "end_s": np.nan, "scene": "home",
        "events": events, "origin": "t=1:x.wav", "licence": "CC0-1.0", "sha256": "",
    }])  # fmt: skip
    lm = LabelMap.from_dict({
        "events": {"desed": {"Dishes": "dishes", "Dog": "dog"},
                   "maestro_real": {"cutlery and dishes": "dishes"}},
        "scenes": {"home": "home"},
        "expected_event_classes": 2,
    })  # fmt: skip
    out = apply_label_map(table, lm)
    assert _events(out, "x") == [("dishes", 0.0, 3.0), ("dog", 5.0, 6.0)]
    assert merge_intervals([]) == []


def test_label_map_config_errors() -> None:
    with pytest.raises(ValueError, match="both mapped and dropped"):
        LabelMap.from_dict({"events": {"Dog": "dog"}, "drop": ["Dog"]})
    with pytest.raises(ValueError, match="expected 3 event classes"):
        LabelMap.from_dict({"events": {"Dog": "dog"}, "expected_event_classes": 3})
    with pytest.raises(ValueError, match="mapped to both"):
        LabelMap.from_dict({"events": {"a": {"Dog": "dog"}, "b": {"Dog": "canine"}}})
    with pytest.raises(ValueError, match="unknown key"):
        LabelMap.from_dict({"events": {}, "evnets": {}})
    with pytest.raises(ValueError, match="non-empty text"):
        LabelMap.from_dict({"events": {"Dog": ""}})


def test_drop_event_labels_records_skips(desed_root: Path) -> None:
    table = desed_background_table(desed_root, drop_labels=(), hash_files=False)
    out = drop_event_labels(table, {"Dog"}, clip_policy="drop_if_any_dropped")
    assert "desed_Yab-c_30.000_40.000" not in set(out["source_id"])
    assert "drop_if_any_dropped" in _reasons(out)["desed_Yab-c_30.000_40.000"]
    assert "metadata/eval/public.tsv:ghost.wav" in _reasons(out)  # earlier skips kept


# -------------------------------------------------------------------------------- tables


def _speech_row(**over: object) -> dict[str, object]:
    row: dict[str, object] = {
        "source_id": "s1", "path": "a.wav", "start_s": np.nan, "end_s": np.nan,
        "transcript": "hello", "speaker": "p1", "origin": "demo=1:a.wav",
        "licence": "CC0-1.0", "sha256": "",
    }  # fmt: skip
    row.update(over)
    return row


def _bg_row(**over: object) -> dict[str, object]:
    row: dict[str, object] = {
        "source_id": "b1", "path": "b.wav", "start_s": 0.0, "end_s": 10.0, "scene": "home",
        "events": '[{"label":"dog","onset":0.5,"offset":1.0}]', "origin": "demo=1:b.wav",
        "licence": "CC0-1.0", "sha256": "a" * 64,
    }  # fmt: skip
    row.update(over)
    return row


@pytest.mark.parametrize(
    ("over", "column", "message"),
    [
        ({"source_id": "bad id"}, "source_id", "must match"),
        ({"source_id": ""}, "source_id", "must match"),
        ({"events": "[{"}, "events", "not valid JSON"),
        ({"events": '{"label":"dog"}'}, "events", "must be a list"),
        ({"events": '[{"label":"dog","onset":2,"offset":1}]'}, "events", "offset 1.0 < onset"),
        ({"events": '[{"label":"dog","onset":-1,"offset":1}]'}, "events", "negative onset"),
        ({"events": '[{"label":"dog","onset":0}]'}, "events", "exactly the keys"),
        ({"events": '[{"label":"","onset":0,"offset":1}]'}, "events", "empty or non-string"),
        ({"events": '[{"label":"dog","onset":0,"offset":"x"}]'}, "events", "finite numbers"),
        ({"events": '[{"label":"dog","onset":0,"offset":11}]'}, "events", "after the clip"),
        ({"end_s": 0.0}, "end_s", "> start_s"),
        ({"start_s": -1.0}, "start_s", ">= 0"),
        ({"scene": ""}, "scene", "must not be empty"),
        ({"origin": "nowhere"}, "origin", "<corpus>=<version>"),
        ({"sha256": "XYZ"}, "sha256", "64 lower-case hex"),
        ({"path": ""}, "path", "must not be empty"),
    ],
)
def test_validate_background_errors(over: dict[str, object], column: str, message: str) -> None:
    df = pd.DataFrame([_bg_row(source_id="ok"), _bg_row(**over)])
    sid = over.get("source_id", "b1")
    with pytest.raises(ValueError) as info:
        validate_background_table(df, "bg.csv")
    text = str(info.value)
    assert text.startswith("bg.csv: row 2 ")  # rows count from 1 under the header
    assert f"source_id={sid!r}" in text and f"column {column!r}" in text and message in text


def test_validate_speech_errors() -> None:
    validate_speech_table(pd.DataFrame([_speech_row()]), "speech.csv")
    duplicate = r"row 2 \(source_id='s1'\), column 'source_id': duplicate of row 1"
    with pytest.raises(ValueError, match=duplicate):
        validate_speech_table(pd.DataFrame([_speech_row(), _speech_row()]), "speech.csv")
    with pytest.raises(ValueError, match="column 'transcript'"):
        validate_speech_table(pd.DataFrame([_speech_row(transcript=" ")]), "speech.csv")
    with pytest.raises(ValueError, match=r"speech.csv: missing required column\(s\) \['sha256'\]"):
        validate_speech_table(pd.DataFrame([_speech_row()]).drop(columns="sha256"), "speech.csv")


def test_write_read_round_trip(tmp_path: Path, vctk_root: Path, maestro_root: Path) -> None:
    speech = vctk_speech_table(vctk_root)
    path = write_table(speech, tmp_path / "speech.csv")
    back = read_table(path)
    pd.testing.assert_frame_equal(back, speech, check_dtype=False)
    bg = maestro_background_table(maestro_root, hop_s=2.5, hash_files=False)
    bg["zz_extra"] = "x"
    bg["aa_extra"] = "y"
    bg_path = write_table(bg, tmp_path / "background.csv")
    first = bg_path.read_bytes()
    header = first.decode().splitlines()[0]
    assert header == ",".join(list(BACKGROUND_COLUMNS) + ["aa_extra", "zz_extra"])
    line = first.decode().splitlines()[2]
    assert line.startswith("maestro_cafe_restaurant_00_0002500ms,") and ",2.5,12.5," in line
    back_bg = read_table(bg_path)
    assert back_bg["start_s"].tolist() == bg["start_s"].tolist()
    assert back_bg["events"].tolist() == bg["events"].tolist()
    write_table(back_bg, bg_path)
    assert bg_path.read_bytes() == first  # stable bytes after a round trip
    bad = tmp_path / "bad.csv"
    bad.write_text(",".join(SPEECH_COLUMNS) + "\nbad id,a.wav,,,hi,p,demo=1:a,CC0-1.0,\n")
    with pytest.raises(ValueError, match="bad.csv: row 1 "):
        read_table(bad)
    assert read_table(bad, validate=False)["source_id"].tolist() == ["bad id"]
    with pytest.raises(ValueError, match="column 'events'"):
        write_table(pd.DataFrame([_bg_row(events="[")]), tmp_path / "x.csv")


def test_build_source_table_dispatches_and_maps_labels(
    vctk_root: Path, desed_root: Path, maestro_root: Path, tmp_path: Path
) -> None:
    from lalm_eval.config import load_config
    from lalm_eval.corpora.build import build_source_table
    from lalm_eval.corpora.labels import load_label_map

    corpora = load_config(Path(__file__).parents[1] / "config" / "config.yaml")["corpora"]
    known = set(load_label_map().event_classes)
    speech = build_source_table(corpora["vctk"], vctk_root, seed=0)
    validate_speech_table(speech, "vctk")
    for name, root in (("desed_public_eval", desed_root), ("maestro_real", maestro_root)):
        table = build_source_table(corpora[name], root, seed=0)
        validate_background_table(table, name)
        labels = {e["label"] for cell in table["events"] for e in json.loads(cell)}
        assert labels and labels <= known, labels - known
        write_table(table, tmp_path / f"{name}.csv")
        assert read_table(tmp_path / f"{name}.csv").shape == table.shape
