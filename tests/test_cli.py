"""The command line as a user meets it: the README's default run, and one-line errors (exit 2, no traceback)."""

import json
import os
import subprocess
import sys

import pytest

EDGEAV = [sys.executable, "-m", "edgeav.cli"]


def _run(args, tmp_path, timeout=300):
    env = {**os.environ, "EDGEAV_CACHE": str(tmp_path / "cache")}
    return subprocess.run(EDGEAV + args, capture_output=True, text=True, timeout=timeout, cwd=tmp_path, env=env)


def test_default_run_uses_bundled_clip_bank_and_shipped_model(tmp_path):
    r = _run(["run", "--jsonl", "out.jsonl", "--max-seconds", "6", "--quiet"], tmp_path)
    assert r.returncode == 0, r.stderr[-1500:]
    assert "bundled clip" in r.stderr and "windows/s" in r.stderr
    recs = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert len(recs) >= 10 and all(len(x["recommendations"]) == 5 for x in recs)


def test_an_events_only_run_reports_its_events_and_no_window_figures(tmp_path):
    r = _run(["run", "--events-only", "--max-seconds", "6", "--quiet"], tmp_path)
    assert r.returncode == 0, r.stderr[-1500:]
    summary = r.stderr.strip().splitlines()[-1]
    assert "events over 151 frames" in summary and "took" in summary
    assert "windows" not in summary and "latency ms" not in summary


@pytest.mark.parametrize(
    "args,needle",
    [
        (["run", "missing.mp4"], "missing.mp4"),
        (["run", "--model", "no-such-model"], "no-such-model"),
        (["run", "--bank", "nobank.npz"], "nobank.npz"),
        (["run", "notes.mp4"], "notes.mp4"),
        (["index", "nofolder", "-o", "b.npz"], "nofolder"),
        (["train", "cache", "nofootage", "-o", "c"], "nofootage"),
        (["cache", "nofootage", "-o", "c"], "nofootage"),  # the earlier top-level name, kept as a hidden alias
        (["train", "footage", "--recorder", "norecorder", "-o", "f", "--seeds", "1001"], "norecorder"),
        (["train", "footage", "--recorder", "r", "-o", "f", "--seeds", "15-20"], "15-20"),
    ],
)
def test_errors_are_one_line(tmp_path, args, needle):
    (tmp_path / "notes.mp4").write_text("not a video")
    r = _run(args, tmp_path)
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("edgeav: error:") and needle in lines[0], r.stderr
    assert "Traceback" not in r.stderr


def test_ctrl_c_ends_cleanly_with_outputs_flushed(tmp_path):
    import signal
    import time

    from edgeav.models import create_model, save_model

    model = save_model(create_model("tiny"), tmp_path / "tiny")
    env = {**os.environ, "EDGEAV_CACHE": str(tmp_path / "cache")}
    # a shell without job control starts background jobs with SIGINT ignored, and children inherit that; a user's
    # terminal delivers Ctrl-C with the default disposition, so the child gets it back
    p = subprocess.Popen(
        EDGEAV + ["run", "--model", str(model), "--realtime", "--quiet", "--jsonl", "out.jsonl"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.time() + 120
    while time.time() < deadline and (
        not (tmp_path / "out.jsonl").exists() or len((tmp_path / "out.jsonl").read_text().splitlines()) < 3
    ):
        time.sleep(0.2)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err[-1500:]
    assert "ended: interrupted" in err and "Traceback" not in err
    lines = (tmp_path / "out.jsonl").read_text().splitlines()
    assert 3 <= len(lines) < 59 and all(json.loads(x) for x in lines)  # stopped early, every line whole
