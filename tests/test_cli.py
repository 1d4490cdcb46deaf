"""The command line as a user meets it: the README's default run, and one-line errors (exit 2, no traceback)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

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


@pytest.mark.parametrize("args,needle", [
    (["run", "missing.mp4"], "missing.mp4"),
    (["run", "--model", "no-such-model"], "no-such-model"),
    (["run", "--bank", "nobank.npz"], "nobank.npz"),
    (["run", "notes.mp4"], "notes.mp4"),
    (["index", "nofolder", "-o", "b.npz"], "nofolder"),
    (["cache", "nofootage", "-o", "c"], "nofootage"),
])
def test_errors_are_one_line(tmp_path, args, needle):
    (tmp_path / "notes.mp4").write_text("not a video")
    r = _run(args, tmp_path)
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("edgeav: error:") and needle in lines[0], r.stderr
    assert "Traceback" not in r.stderr
