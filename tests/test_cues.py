"""Cue sheets of the bundled clip in every format, each read back by its own library (OpenTimelineIO's adapters; the
Reaper project by a small parser) with the same times and sound paths; `edgeav cues` from a run's JSONL; the value
report against the clip's real event log."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from edgeav import EdgeavError

from conftest import ASSETS

CLIP = ASSETS / "clips" / "solarwolf-s11_10-40.mp4"
EVENTS = ASSETS / "clips" / "solarwolf-s11_10-40.events.json"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The bundled clip through the default model, as `edgeav run --jsonl --cues` makes it."""
    from edgeav.pipeline import RunConfig
    from edgeav.pipeline import run as run_pipeline

    d = tmp_path_factory.mktemp("run")
    res = run_pipeline(RunConfig(str(CLIP), jsonl=str(d / "run.jsonl"), cues=str(d / "cues.csv"), quiet=True))
    assert len(res.cues) >= 3 and len(res.cues) == len(res.placements)
    return d, res


def _parse_rpp(path: Path) -> list[tuple[float, str, str]]:
    """(position, source kind, file) of every item of a Reaper project: an independent reading of the format."""
    text = path.read_text()
    assert text.startswith("<REAPER_PROJECT") and text.count("<") == text.count(">")
    return [
        (float(p), kind, f)
        for p, kind, f in re.findall(r"POSITION ([\d.]+).*?<SOURCE (\w+)\s+FILE \"([^\"]+)\"", text, flags=re.S)
    ]


@pytest.mark.parametrize("ext", [".otio", ".edl", ".xml", ".fcpxml", ".aaf", ".rpp", ".csv", ".txt"])
def test_every_format_reads_back_with_the_same_times_and_sounds(run, tmp_path, ext):
    pytest.importorskip("opentimelineio")
    from edgeav.cues import Footage, write_cues

    _, res = run
    footage = Footage.probe(str(CLIP))
    out = write_cues(res.cues, tmp_path / f"cues{ext}", footage)
    half_frame = 0.5 / footage.fps + 1e-6  # timelines count whole frames at the footage's rate
    want = sorted(res.cues, key=lambda c: c.t)
    if ext in (".otio", ".edl", ".xml", ".fcpxml", ".aaf"):
        import opentimelineio as otio

        kw = {"rate": footage.fps} if ext == ".edl" else {}
        tl = otio.adapters.read_from_file(str(out), **kw)
        sounds = [c for c in tl.find_clips() if not c.media_reference.target_url.endswith(".mp4")]
        assert [c.name for c in sorted(sounds, key=lambda c: c.name)] == sorted(c.sound for c in want)
        assert {c.media_reference.target_url for c in sounds} == {Path(c.file).as_uri() for c in want}
        if ext != ".edl":  # an EDL read back drops the lead-in before its first event (edgeav.cues reads it)
            starts = sorted(c.range_in_parent().start_time.to_seconds() for c in sounds)
            assert all(abs(a - c.t) <= half_frame for a, c in zip(starts, want))
            assert CLIP.resolve().as_uri() in {c.media_reference.target_url for c in tl.find_clips()}  # the footage
            assert all(round(c.range_in_parent().start_time.rate) == 25 for c in sounds)
    elif ext == ".rpp":
        items = _parse_rpp(out)
        assert items[0] == (0.0, "VIDEO", str(CLIP.resolve()))
        assert [(round(p, 3), f) for p, _, f in items[1:]] == [(c.t, c.file) for c in want]
    from edgeav.cues import read_cues

    back = read_cues(out, fps=footage.fps)
    assert [c.sound for c in back] == [c.sound for c in want]
    assert all(abs(a.t - c.t) <= half_frame for a, c in zip(back, want))
    if ext != ".txt":  # Audacity labels carry a label, not a file
        assert [c.file for c in back] == [c.file for c in want]


def test_jsonl_carries_the_placements_and_cues_rebuilds_the_sheet(run, tmp_path):
    d, res = run
    recs = [json.loads(x) for x in (d / "run.jsonl").read_text().splitlines()]
    placed = [r["placed"] for r in recs if "placed" in r]
    assert [(p["t"], p["sound"]) for p in placed] == [(c.t, c.sound) for c in res.cues]
    assert all(Path(p["file"]).exists() and p["duration"] > 0 for p in placed)
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "edgeav.cli",
            "cues",
            str(d / "run.jsonl"),
            "-o",
            str(tmp_path / "again.csv"),
            "--source",
            str(CLIP),
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "again.csv").read_text() == (d / "cues.csv").read_text()


def test_unknown_format_is_refused_before_the_run(tmp_path):
    from edgeav.pipeline import RunConfig
    from edgeav.pipeline import run as run_pipeline

    with pytest.raises(EdgeavError, match="unknown cue sheet format"):
        run_pipeline(RunConfig(str(CLIP), cues=str(tmp_path / "cues.docx"), quiet=True))


def test_value_report_against_the_real_event_log(run, tmp_path):
    from edgeav.cues import Cue, read_cues
    from edgeav.score import score, write_report

    truth = read_cues(EVENTS)
    assert len(truth) == len(json.loads(EVENTS.read_text())["sound_events"])
    # exact: a cue on every event is a perfect report; shifted past the tolerance, nothing matches
    perfect = score(truth, truth, 80.0)
    assert perfect["precision"] == perfect["recall"] == perfect["f1"] == perfect["top1_at_matched"] == 1.0
    late = [Cue(c.t + 0.1, c.sound) for c in truth]
    assert score(late, truth, 80.0)["matched"] == 0 and score(late, truth, 120.0)["recall"] == 1.0
    one = score([Cue(truth[0].t + 0.05, "other.wav", alternatives=(truth[0].sound,))], truth, 80.0, minutes=0.5)
    assert one["matched"] == 1 and one["top1_at_matched"] == 0.0 and one["top5_at_matched"] == 1.0
    assert one["false_alarms_per_minute"] == 0.0 and one["recall"] == round(1 / len(truth), 4)
    _, res = run
    rep = score(res.cues, truth, 80.0, minutes=0.5)
    assert rep["predicted"] == len(res.cues) and 0 <= rep["matched"] <= len(res.cues)
    assert sum(v["events"] for v in rep["per_sound"].values()) == len(truth)
    js, page = write_report(rep, res.cues, truth, tmp_path / "report", "test")
    assert json.loads(js.read_text())["true_events"] == len(truth) and "<svg" in page.read_text()


def test_score_command_reads_any_truth(run, tmp_path):
    d, _ = run
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "edgeav.cli",
            "score",
            str(d / "cues.csv"),
            "--truth",
            str(EVENTS),
            "--categories",
            str(ASSETS / "sounds" / "categories.csv"),
            "-o",
            str(tmp_path / "rep"),
            "--source",
            str(CLIP),
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    rep = json.loads((tmp_path / "rep.json").read_text())
    assert rep["minutes"] == 0.5 and rep["per_category"] and "events matched" in r.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "edgeav.cli", "score", str(d / "cues.csv"), "--truth", str(tmp_path / "none.json")],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and bad.stderr.startswith("edgeav: error:") and "Traceback" not in bad.stderr
