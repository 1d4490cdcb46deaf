"""Backbone features of every cached frame, for models whose visual backbone is frozen (the `teacher` family).

A frozen trunk in eval mode is a fixed function, so computing its maps once is exact: each epoch then costs only
the attention heads and the audio encoder. Stored per clip and resolution as float16 .npy beside the frame cache.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from edgeav.atomic import save_npy, write_json
from edgeav.frontends import preprocess_frames


def feature_dir(cache: Path, backbone: str) -> Path:
    return Path(cache) / f"features-{backbone}"


@torch.no_grad()
def build_features(
    cache: str | Path, backbone: str = "lite0", batch: int = 64, splits=("train", "val"), progress: bool = True
) -> Path:
    from tqdm import tqdm

    from edgeav.models.backbones import EfficientNetLite0Trunk

    cache = Path(cache)
    manifest = json.loads((cache / "manifest.json").read_text())
    out = feature_dir(cache, backbone)
    out.mkdir(exist_ok=True)
    trunk = EfficientNetLite0Trunk(pretrained=True, frozen=True).eval()
    done_path = out / "done.json"
    done = json.loads(done_path.read_text()) if done_path.exists() else {}
    keys = [k for k, e in manifest["clips"].items() if e["split"] in splits and done.get(k) != e["sha1"]]
    t0, n = time.perf_counter(), 0
    for key in tqdm(keys, desc=f"features {backbone}", unit="clip", disable=not progress):
        frames = np.load(cache / "shards" / f"{key}.frames.npy", mmap_mode="r")
        levels: list[list[np.ndarray]] = [[] for _ in trunk.taps]
        for i in range(0, len(frames), batch):
            x = torch.from_numpy(preprocess_frames(np.asarray(frames[i : i + batch])))
            for lv, f in zip(levels, trunk.forward_intermediates(x)):
                lv.append(f.numpy().astype(np.float16))
        for j, lv in enumerate(levels):
            save_npy(out / f"{key}.l{j}.npy", np.concatenate(lv))
        n += len(frames)
        done[key] = manifest["clips"][key]["sha1"]
        write_json(done_path, done)  # resumable
    dt = time.perf_counter() - t0
    if progress and n:
        print(f"features: {n} frames in {dt:.0f} s ({n / dt:.1f} frames/s)")
    return out
