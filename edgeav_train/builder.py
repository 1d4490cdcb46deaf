"""Training cache from unlabeled video: per clip, uint8 frames on a fixed grid and a float16 log-mel of the whole
soundtrack, in memory-mappable .npy shards, with a manifest (source, content hash, split, sizes).

Any window (visual frames at t + offsets, audio [t, t+1 s)) is a synchronized positive cut from these arrays;
negatives come from other clips or the same clip ≥ 2 s away (see edgeav_train.data). No labels are read.
Layouts: the gameplay corpus (splits.csv), VGG-Sound (its CSV of id, start, label, split beside the clips), or any
folder of videos (split by a hash of the path). Bad files are skipped and listed with the reason; an interrupted
build resumes: clips already in the manifest with the same content hash are not redone.
"""

from __future__ import annotations

import csv
import hashlib
import json
import time
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from edgeav.atomic import save_npy, sha1_file, write_json
from edgeav.errors import EdgeavError
from edgeav.frontends import MelSpec, log_mel
from edgeav.io.video import VIDEO_EXTENSIONS, VideoFile


@dataclass(frozen=True)
class CacheConfig:
    fps: float = 5.0
    """Frame grid of the cache (window starts lie on it)."""
    width: int = 128
    """Frame width kept (pixels)."""
    height: int = 96
    """Frame height kept (pixels)."""
    sample_rate: int = 16000
    """Soundtrack sample rate (Hz)."""
    mel_chunk_s: float = 60.0
    """Audio is read in chunks of this many seconds: constant memory on hour-long files."""


@dataclass(frozen=True)
class CacheJob:
    """`edgeav train cache`: which footage, where, and the cache's frame grid (defaults: CacheConfig's)."""

    footage: str
    """Folder of videos: the gameplay corpus, VGG-Sound, or your own."""
    out: str = ".cache/gameplay"
    """Cache folder to create or complete."""
    layout: str = "auto"
    """auto | gameplay | vggsound | folder."""
    workers: int = 2
    """Clips decoded in parallel."""
    vggsound_csv: str | None = None
    """VGG-Sound's CSV (layout vggsound)."""
    fps: float = CacheConfig.fps
    """Frame grid of the cache (window starts lie on it)."""
    width: int = CacheConfig.width
    """Frame width kept (pixels)."""
    height: int = CacheConfig.height
    """Frame height kept (pixels)."""

    def config(self) -> CacheConfig:
        return CacheConfig(fps=self.fps, width=self.width, height=self.height)


@dataclass(frozen=True)
class SourceVideo:
    key: str  # unique, filesystem-safe id
    path: str
    split: str  # train / val / test
    group: str  # game, VGG-Sound label is NOT used; for folders, the parent folder


def discover(root: str | Path, layout: str = "auto", vggsound_csv: str | None = None) -> list[SourceVideo]:
    root = Path(root)
    if not root.exists():
        raise EdgeavError(f"footage folder not found: {root}", "give an existing folder of videos")
    if layout == "auto":
        layout = "gameplay" if (root / "splits.csv").exists() else "vggsound" if vggsound_csv else "folder"
    if layout == "gameplay":
        out = []
        with open(root / "splits.csv") as f:
            for row in csv.DictReader(f):
                p = root / "clips" / row["game"] / f"{row['clip_id']}.mp4"
                out.append(SourceVideo(row["clip_id"], str(p), row["split"], row["game"]))
        return out
    if layout == "vggsound":
        # vggsound.csv rows: youtube_id, start_seconds, label, split (train/test); clips named <id>_<start:06d>.mp4
        csv_path = Path(vggsound_csv) if vggsound_csv else root / "vggsound.csv"
        files = {p.stem: p for p in root.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS}
        out = []
        with open(csv_path) as f:
            for row in csv.reader(f):
                if len(row) < 4:
                    continue
                ytid, start, split = row[0], int(float(row[1])), row[3].strip()
                key = f"{ytid}_{start:06d}"
                p = files.get(key) or files.get(f"{ytid}_{start}")
                if p is not None:
                    split = "test" if split == "test" else ("val" if _hash_frac(key) < 0.05 else "train")
                    out.append(SourceVideo(key, str(p), split, "vggsound"))
        return out
    if layout == "folder":
        vids = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS)
        if not vids:
            raise EdgeavError(f"no videos found under {root}", f"put {', '.join(VIDEO_EXTENSIONS[:5])} files there")
        out = []
        for p in vids:
            rel = p.relative_to(root).as_posix()
            key = rel.rsplit(".", 1)[0].replace("/", "__")
            split = "val" if _hash_frac(rel) < 0.1 else "train"
            out.append(SourceVideo(key, str(p), split, p.parent.name))
        return out
    raise EdgeavError(f"unknown layout {layout!r}", "use auto, gameplay, vggsound or folder")


def _hash_frac(s: str) -> float:
    return int(hashlib.md5(s.encode()).hexdigest()[:8], 16) / 2**32


def cache_clip(src: SourceVideo, out: Path, cfg: CacheConfig) -> dict:
    """Decode one clip into its shards. Returns its manifest entry; raises EdgeavError for a bad file."""
    spec = MelSpec(sample_rate=cfg.sample_rate)
    v = VideoFile(src.path, fps=cfg.fps, size=(cfg.width, cfg.height), sample_rate=cfg.sample_rate, require_audio=True)
    frames = np.stack([img for _, img in v.frames()]) if v.duration > 0 else np.zeros((0,))
    if frames.ndim != 4 or len(frames) < 2:
        raise EdgeavError(f"no decodable frames in {src.path}", "re-encode the file")
    duration = len(frames) / cfg.fps
    n_mel = int(round(duration * cfg.sample_rate / spec.hop))
    mels, pad = [], spec.n_fft // 2
    per_chunk = int(cfg.mel_chunk_s * cfg.sample_rate / spec.hop)
    for k0 in range(0, n_mel, per_chunk):
        n = min(per_chunk, n_mel - k0)
        a0 = (k0 * spec.hop - pad) / cfg.sample_rate
        a1 = ((k0 + n - 1) * spec.hop + spec.n_fft - pad) / cfg.sample_rate
        mels.append(log_mel(v.audio(a0, a1), spec, n_frames=n, center=False))
    v.close()
    mel = np.concatenate(mels).astype(np.float16)
    save_npy(out / "shards" / f"{src.key}.frames.npy", frames)
    save_npy(out / "shards" / f"{src.key}.mel.npy", mel)
    return {
        "source": src.path,
        "sha1": None,
        "split": src.split,
        "group": src.group,
        "n_frames": int(len(frames)),
        "n_mel": int(len(mel)),
        "duration_s": duration,
        "truncated": v.truncated,
    }


def _work(args):
    src, out, cfg, digest = args
    t = time.perf_counter()
    try:
        entry = cache_clip(src, Path(out), cfg)
        entry["sha1"] = digest
        entry["seconds"] = round(time.perf_counter() - t, 2)
        return src, entry, None
    except EdgeavError as e:
        return src, None, str(e)
    except Exception as e:  # an unexpected decoder failure is still one bad file, not a dead build
        return src, None, f"{type(e).__name__}: {' '.join(str(e).split())[:160]}"


def build_cache(
    root: str | Path,
    out: str | Path,
    cfg: CacheConfig = CacheConfig(),
    layout: str = "auto",
    workers: int = 2,
    vggsound_csv: str | None = None,
    progress: bool = True,
    limit: int | None = None,
) -> dict:
    out = Path(out)
    (out / "shards").mkdir(parents=True, exist_ok=True)
    man_path = out / "manifest.json"
    manifest = json.loads(man_path.read_text()) if man_path.exists() else {}
    if manifest.get("config") not in (None, asdict(cfg)):
        raise EdgeavError(
            f"cache {out} was built with another config {manifest['config']}",
            "use a new output folder or the same --fps/--size",
        )
    manifest.setdefault("config", asdict(cfg))
    manifest.setdefault("clips", {})
    manifest["bad"] = {}
    sources = discover(root, layout, vggsound_csv)[:limit]
    todo = []
    for src in sources:
        if not Path(src.path).exists():
            manifest["bad"][src.path] = "file missing"
            continue
        digest = sha1_file(src.path)
        done = manifest["clips"].get(src.key)
        if done and done.get("sha1") == digest and (out / "shards" / f"{src.key}.mel.npy").exists():
            continue  # resume: this clip is already cached
        todo.append((src, str(out), cfg, digest))
    t0 = time.perf_counter()
    from tqdm import tqdm

    bar = tqdm(total=len(todo), desc="cache", unit="clip", disable=not progress)
    ctx = get_context("spawn")
    with ctx.Pool(max(1, workers)) as pool:
        for src, entry, err in pool.imap_unordered(_work, todo):
            if err:
                manifest["bad"][src.path] = err
            else:
                manifest["clips"][src.key] = entry
            write_json(man_path, manifest)  # after every clip: an interrupted build resumes from here
            bar.update(1)
    bar.close()
    write_json(man_path, manifest)
    manifest["_built"] = len(todo)
    manifest["_seconds"] = time.perf_counter() - t0
    return manifest


def coarser_cache(fine: str | Path, out: str | Path, fps: float) -> dict | None:
    """The cache `fine` on a coarser frame grid, without decoding again: when its grid is k × `fps`, frame k·j of
    the fine grid is the frame on screen at j / fps, the one decoding at `fps` keeps (the soundtrack is the same).
    None when the grids do not nest. Resumes like build_cache: clips there with the same content hash are kept."""
    fine, out = Path(fine), Path(out)
    man = json.loads((fine / "manifest.json").read_text())
    k = man["config"]["fps"] / fps
    if k < 1 or abs(k - round(k)) > 1e-9:
        return None
    k = int(round(k))
    cfg = {**man["config"], "fps": fps}
    man_path = out / "manifest.json"
    coarse = json.loads(man_path.read_text()) if man_path.exists() else {"config": cfg, "clips": {}}
    if coarse["config"] != cfg:
        raise EdgeavError(f"cache {out} was built with another config {coarse['config']}", "use a new output folder")
    (out / "shards").mkdir(parents=True, exist_ok=True)
    coarse["bad"] = dict(man.get("bad", {}))
    for key, entry in man["clips"].items():
        if coarse["clips"].get(key, {}).get("sha1") == entry["sha1"]:
            continue
        frames = np.load(fine / "shards" / f"{key}.frames.npy", mmap_mode="r")[::k]
        save_npy(out / "shards" / f"{key}.frames.npy", np.ascontiguousarray(frames))
        save_npy(out / "shards" / f"{key}.mel.npy", np.load(fine / "shards" / f"{key}.mel.npy"))
        coarse["clips"][key] = {**entry, "n_frames": int(len(frames)), "duration_s": len(frames) / fps}
        write_json(man_path, coarse)
    write_json(man_path, coarse)
    return coarse
