"""Each benchmark script runs on a tiny configuration, so none of them rots."""
import json
import os
import subprocess
import sys

import torch

from conftest import REPO
from edgeav.models import create_model, save_model


def test_latency_benchmark_tiny(tmp_path):
    torch.manual_seed(0)
    model = save_model(create_model("tiny"), tmp_path / "tiny")
    r = subprocess.run([sys.executable, "-m", "benchmarks.latency", "--model", str(model), "--runs", "3", "--warmup", "1",
                        "--exports", str(tmp_path / "exp"), "--out", str(tmp_path / "lat"), "--calib-windows", "8",
                        "--threads", "1"], cwd=REPO, capture_output=True, text=True, timeout=600,
                       env={**os.environ, "EDGEAV_CACHE": str(tmp_path / "cache")})
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads((tmp_path / "lat.json").read_text())
    assert set(res["encoders"]) == {"torch fp32", "onnxruntime fp32", "onnxruntime int8"}
    assert all(v["visual"]["p50_ms"] > 0 for v in res["encoders"].values())
    assert "| torch fp32 |" in (tmp_path / "lat.md").read_text()
