"""Training-set layouts and evaluation queries."""

import builtins
import csv
import json

import numpy as np
import pytest

from edgeav import EdgeavError
from edgeav_train.builder import CacheConfig, build_cache, coarser_cache, discover

from conftest import needs_corpus
from media import make_clip


def test_vggsound_layout(tmp_path):
    clips = tmp_path / "vgg" / "video"
    clips.mkdir(parents=True)
    for name in ("abc_000010", "xyz_000030"):
        make_clip(clips / f"{name}.mp4", seconds=3.0)
    with open(tmp_path / "vgg" / "vggsound.csv", "w", newline="") as f:
        csv.writer(f).writerows(
            [["abc", 10, "dog barking", "train"], ["xyz", 30, "rain", "test"], ["missing", 0, "wind", "train"]]
        )
    srcs = discover(tmp_path / "vgg", "vggsound", str(tmp_path / "vgg" / "vggsound.csv"))
    assert {(s.key, s.split) for s in srcs} == {("abc_000010", "train"), ("xyz_000030", "test")}
    m = build_cache(
        tmp_path / "vgg",
        tmp_path / "cache",
        CacheConfig(fps=5, width=32, height=24),
        "vggsound",
        workers=1,
        vggsound_csv=str(tmp_path / "vgg" / "vggsound.csv"),
        progress=False,
    )
    assert set(m["clips"]) == {"abc_000010", "xyz_000030"}
    e = m["clips"]["abc_000010"]
    assert e["n_frames"] == 15 and e["n_mel"] == 300 and len(e["sha1"]) == 40 and "label" not in e  # no labels kept
    frames = np.load(tmp_path / "cache" / "shards" / "abc_000010.frames.npy", mmap_mode="r")
    assert frames.shape == (15, 24, 32, 3) and frames.dtype == np.uint8


def test_coarser_cache_equals_decoding_at_its_rate(tmp_path):
    """A 5 fps cache taken from a 25 fps one holds what decoding at 5 fps holds (adapt decodes footage once)."""
    (tmp_path / "footage").mkdir()
    make_clip(tmp_path / "footage" / "a.mp4", seconds=3.0, flash_frame=30)
    make_clip(tmp_path / "footage" / "b.mp4", seconds=2.0, flash_frame=10)
    size = dict(width=32, height=24)
    build_cache(tmp_path / "footage", tmp_path / "c25", CacheConfig(fps=25, **size), "folder", 1, progress=False)
    decoded = build_cache(
        tmp_path / "footage", tmp_path / "c5", CacheConfig(fps=5, **size), "folder", 1, progress=False
    )
    derived = coarser_cache(tmp_path / "c25", tmp_path / "d5", 5)
    assert derived["config"] == decoded["config"] and set(derived["clips"]) == set(decoded["clips"]) == {"a", "b"}
    for key, entry in decoded["clips"].items():
        assert {k: derived["clips"][key][k] for k in ("n_frames", "duration_s", "sha1")} == {
            k: entry[k] for k in ("n_frames", "duration_s", "sha1")
        }
        for part in ("frames", "mel"):
            a, b = (np.load(tmp_path / c / "shards" / f"{key}.{part}.npy") for c in ("c5", "d5"))
            assert np.array_equal(a, b), (key, part)
    assert np.load(tmp_path / "d5" / "shards" / "a.frames.npy")[6].mean() > 200  # frame 30 of 25 fps: the flash
    assert coarser_cache(tmp_path / "c25", tmp_path / "d10", 10) is None  # 25 / 10 does not nest
    # a resumed derivation keeps what is there; the same config is required
    assert coarser_cache(tmp_path / "c25", tmp_path / "d5", 5)["clips"] == derived["clips"]


def test_empty_and_missing_folders(tmp_path):
    (tmp_path / "empty").mkdir()
    for p in (tmp_path / "empty", tmp_path / "missing"):
        with pytest.raises(EdgeavError) as e:
            discover(p)
        assert str(p) in str(e.value) and "\n" not in str(e.value)


def test_no_audio_track_is_listed_not_fatal(tmp_path):
    folder = tmp_path / "f"
    folder.mkdir()
    make_clip(folder / "ok.mp4", seconds=2.0)
    make_clip(folder / "mute.mp4", seconds=2.0, audio_rate=None)
    m = build_cache(folder, tmp_path / "c", CacheConfig(fps=5, width=32, height=24), workers=1, progress=False)
    assert list(m["clips"]) == ["ok"]
    assert "no audio track" in m["bad"][str(folder / "mute.mp4")]


def test_microphone_without_sounddevice_is_one_line(monkeypatch):
    real_import = builtins.__import__

    def fake(name, *a, **k):
        if name == "sounddevice":
            raise ImportError("no sounddevice")
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", fake)
    from edgeav.io.mic import Microphone

    with pytest.raises(EdgeavError) as e:
        Microphone()
    assert "edgeav[mic]" in str(e.value)


@needs_corpus
def test_queries_come_from_event_logs_of_test_clips():
    from edgeav_train.corpus import load_clips, load_queries, load_sounds

    qs = load_queries(split="test")
    clips = load_clips(split="test")
    assert len(clips) == 21 and {c.split for c in clips} == {"test"}
    ids = {s["sound_id"] for s in load_sounds()}
    assert len(qs) > 2000 and all(q.sound_id in ids for q in qs)
    ev = json.loads(clips[0].events.read_text())["sound_events"]
    assert [q.t for q in qs if q.clip_id == clips[0].clip_id] == [e["t"] for e in ev]


def test_more_footage_never_rerecords_the_corpus_seeds(tmp_path):
    """Extra training footage comes from new recorder seeds: the corpus's seeds (val and test among them) are
    refused, and a missing recorder is a one-line error, not a traceback."""
    from edgeav_train.more_footage import more_footage, parse_seeds

    assert parse_seeds("1001-1003,1010") == [1001, 1002, 1003, 1010]
    with pytest.raises(EdgeavError, match="overlap"):
        parse_seeds("15-25")
    with pytest.raises(EdgeavError, match="recorder not found"):
        more_footage(str(tmp_path / "out"), [1001], recorder=tmp_path / "nowhere")


def test_more_footage_links_the_corpus_clips_with_their_splits_beside_the_new_ones(tmp_path):
    """With a corpus, the out folder lists the corpus's clips (linked, splits kept) and the new seeds as train, so
    one cache holds all the footage; a recorder that wrote nothing adds no row."""
    import csv

    from edgeav_train.builder import discover
    from edgeav_train.more_footage import more_footage

    corpus = tmp_path / "corpus"
    for clip_id in ("solarwolf-s1", "solarwolf-s2"):
        (corpus / "clips" / "solarwolf").mkdir(parents=True, exist_ok=True)
        (corpus / "clips" / "solarwolf" / f"{clip_id}.mp4").write_bytes(b"x")
    (corpus / "splits.csv").write_text("clip_id,game,split\nsolarwolf-s1,solarwolf,train\nsolarwolf-s2,solarwolf,val\n")
    recorder = tmp_path / "recorder"
    recorder.mkdir()
    (recorder / "record.sh").write_text(
        '#!/bin/sh\nmkdir -p "$4/clips/$1" "$4/events/$1"\n[ "$2" = 1001 ] || exit 1\n'
        'echo > "$4/clips/$1/$1-s$2.mp4"; echo {} > "$4/events/$1/$1-s$2.json"\n'
    )
    (recorder / "record.sh").chmod(0o755)
    out = more_footage(str(tmp_path / "out"), [1001, 1002], ("solarwolf",), recorder=recorder, corpus=corpus)
    rows = list(csv.reader(open(out / "splits.csv")))
    assert rows[1:] == [
        ["solarwolf-s1", "solarwolf", "train"],
        ["solarwolf-s2", "solarwolf", "val"],
        ["solarwolf-s1001", "solarwolf", "train"],
    ]
    assert (
        out / "clips" / "solarwolf" / "solarwolf-s2.mp4"
    ).resolve() == corpus / "clips" / "solarwolf" / "solarwolf-s2.mp4"
    assert [(v.key, v.split) for v in discover(out)][1] == ("solarwolf-s2", "val")
