"""Batches of synchronized (visual, audio) windows from the cache, no labels.

A batch is `clips_per_batch` clips × `windows_per_clip` windows spaced ≥ `min_gap_s` apart in each clip, so the
other windows of the same clip are true negatives (the same game and scene, another moment): the contrastive loss
must tell moments apart, not only games. Correspondence negatives pair a visual window with audio from the same
clip ≥ min_gap_s away (half) or from another clip (half).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from edgeav.frontends import preprocess_frames, resize_frame


@dataclass
class Batch:
    visual: list[np.ndarray] | np.ndarray  # features per level (B, T, C, h, w) or frames (B, T, 3, H, W)
    mel: np.ndarray  # (B, 100, 64) float32
    neg_index: np.ndarray  # (B,) index of the audio used as each row's correspondence negative
    clip: np.ndarray  # (B,) clip index
    t: np.ndarray  # (B,) window start seconds


class WindowSampler:
    @classmethod
    def for_model(cls, cache: str | Path, model, splits=("train",), games: tuple[str, ...] = ()) -> WindowSampler:  # noqa: ANN001
        """The windows `model` takes: its frame offsets and size, and a frozen trunk's cached maps for the pixels."""
        frozen = getattr(model.visual.backbone, "frozen", False)
        features = model.cfg.visual_backbone if frozen else None
        return cls(
            cache, splits, model.cfg.frame_offsets, features=features, frame_size=model.cfg.frame_size, games=games
        )

    def __init__(
        self,
        cache: str | Path,
        splits=("train",),
        frame_offsets=(0.2, 0.4),
        features: str | None = None,
        frame_size: tuple[int, int] | None = None,
        window_s: float = 1.0,
        min_gap_s: float = 2.0,
        games: tuple[str, ...] = (),
    ) -> None:
        self.cache = Path(cache)
        man = json.loads((self.cache / "manifest.json").read_text())
        self.fps = man["config"]["fps"]
        self.mel_rate = man["config"]["sample_rate"] / 160
        # `games`: only clips of these groups (the corpus's game; a folder cache's top-level folder)
        self.keys = sorted(
            k for k, e in man["clips"].items() if e["split"] in splits and (not games or e.get("group") in games)
        )
        if not self.keys:
            raise ValueError(f"no clips of split {splits}{f' and games {games}' if games else ''} in {cache}")
        self.offsets = [int(round(o * self.fps)) for o in frame_offsets]
        self.win_mel = int(round(window_s * self.mel_rate))
        self.gap = int(round(min_gap_s * self.fps))
        self.features, self.frame_size = features, frame_size
        self.mels = [np.load(self.cache / "shards" / f"{k}.mel.npy", mmap_mode="r") for k in self.keys]
        if features:
            fdir = self.cache / f"features-{features}"
            self.visual = [[np.load(p, mmap_mode="r") for p in sorted(fdir.glob(f"{k}.l*.npy"))] for k in self.keys]
        else:
            self.visual = [np.load(self.cache / "shards" / f"{k}.frames.npy", mmap_mode="r") for k in self.keys]
        # valid window starts (frame-grid index) per clip
        self.n_starts = []
        for k, mel in zip(self.keys, self.mels):
            n_frames = len(self.visual[self.keys.index(k)][0]) if features else len(self.visual[self.keys.index(k)])
            by_frames = n_frames - max(self.offsets)
            by_mel = int((len(mel) - self.win_mel) / self.mel_rate * self.fps) + 1
            self.n_starts.append(max(0, min(by_frames, by_mel)))

    def all_rows(self) -> np.ndarray:
        """(N, 2) array of (clip, start) for every window of every clip, in clip then time order."""
        return np.array([(c, k) for c in range(len(self.keys)) for k in range(self.n_starts[c])], dtype=int)

    def starts(self, clip: int, count: int, rng: np.random.Generator) -> np.ndarray:
        """`count` window starts in one clip, pairwise ≥ gap apart (fewer if the clip is short)."""
        n = self.n_starts[clip]
        slots = max(1, min(count, n // self.gap))
        # one start per equal segment, jittered inside it, keeps the gap without rejection sampling
        seg = n / slots
        base = (np.arange(slots) * seg).astype(int)
        jitter = rng.integers(0, max(1, int(seg) - self.gap + 1), size=slots) if seg > self.gap else 0
        return np.minimum(base + jitter, n - 1)

    def audio_window(self, clip: int, k: int) -> np.ndarray:
        m0 = int(round(k / self.fps * self.mel_rate))
        return np.asarray(self.mels[clip][m0 : m0 + self.win_mel], np.float32)

    def window(self, clip: int, k: int):
        return self.visuals([(clip, k)])[0], self.audio_window(clip, k)

    def visuals(self, rows) -> list | np.ndarray:  # noqa: ANN001
        """The visuals of many windows, rows of (clip, start): cached trunk maps per window, or one (B, T, 3, H, W)
        batch of frame stacks preprocessed at once (per window, the conversion dominates a step's input cost)."""
        if self.features:
            return [
                [np.asarray(lv[[k + o for o in self.offsets]], np.float32) for lv in self.visual[c]] for c, k in rows
            ]
        stacks = [
            [resize_frame(np.asarray(self.visual[c][k + o]), self.frame_size) for o in self.offsets] for c, k in rows
        ]
        return preprocess_frames(np.array(stacks))

    def sample(self, rng: np.random.Generator, clips_per_batch: int, windows_per_clip: int) -> Batch:
        clips = rng.choice(len(self.keys), size=min(clips_per_batch, len(self.keys)), replace=False)
        rows = [(c, k) for c in clips for k in self.starts(c, windows_per_clip, rng)]
        vis, mel = zip(*(self.window(c, k) for c, k in rows))
        clip_of = np.array([c for c, _ in rows])
        t = np.array([k / self.fps for _, k in rows])
        visual = [np.stack([v[j] for v in vis]) for j in range(len(vis[0]))] if self.features else np.stack(vis)
        # windows of one clip in a batch are already ≥ min_gap apart (see `starts`)
        return Batch(visual, np.stack(mel), pick_negatives(clip_of, t, rng, self.gap / self.fps), clip_of, t)


def encode_window_visuals(model, vis):
    """Visual embeddings (B, D) of a batch of `WindowSampler.window` visuals: cached trunk maps per resolution (a
    frozen trunk; each item a list) or preprocessed frame stacks. Gradients flow; wrap in no_grad to embed only."""
    if isinstance(vis, np.ndarray):  # WindowSampler.visuals: the batch is stacked already
        return model.encode_visual(torch.from_numpy(vis))
    if isinstance(vis[0], list):
        return model.encode_visual_features(
            [torch.from_numpy(np.stack([v[j] for v in vis])) for j in range(len(vis[0]))]
        )
    return model.encode_visual(torch.from_numpy(np.stack(vis)))


def pick_negatives(clip: np.ndarray, t: np.ndarray, rng: np.random.Generator, min_gap_s: float = 2.0) -> np.ndarray:
    """For each window, the index of an unsynchronized partner: half the time a window of the same clip at least
    `min_gap_s` away (same scene, another moment), otherwise one of another clip."""
    n = len(clip)
    neg = np.empty(n, int)
    for i in range(n):
        same = np.flatnonzero((clip == clip[i]) & (np.abs(t - t[i]) >= min_gap_s - 1e-6))
        other = np.flatnonzero(clip != clip[i])
        pool = same if (len(same) and (rng.random() < 0.5 or not len(other))) else other
        neg[i] = rng.choice(pool) if len(pool) else (i + 1) % n
    return neg


class BankMixer:
    """Label-free robustness to the mix: clean windows of the user's own sound library, mixed into real gameplay
    audio windows in the mel-power domain (powers of uncorrelated sources add). The loss then pulls a mix towards
    the clean sound it contains, so the audio encoder learns to hear an effect through music and clutter — the gap
    between the clean files in the bank and the soundtrack of footage. No event logs are used."""

    def __init__(self, sounds_dir: str | Path, max_files: int | None = None) -> None:
        from edgeav.embed import sound_windows
        from edgeav.io.audio import audio_files, read_audio

        files = audio_files(sounds_dir)[:max_files]
        mels = []
        for p in files:
            try:
                mels.append(sound_windows(read_audio(p, 16000, max_seconds=2.0))[0])
            except Exception:
                continue  # unreadable files are the index's business; here they are just not used
        if not mels:
            raise ValueError(f"no readable sounds under {sounds_dir}")
        self.mels = np.stack(mels).astype(np.float32)

    def sample(self, rng: np.random.Generator, background: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(clean (n,100,64), mixed (n,100,64)): distinct sounds over random backgrounds at random gains."""
        n = min(n, len(self.mels), len(background))
        idx = rng.choice(len(self.mels), n, replace=False)
        bg = background[rng.choice(len(background), n, replace=False)]
        gain_db = rng.uniform(-18.0, 6.0, size=(n, 1, 1))
        mixed = np.log(np.exp(bg) + np.exp(self.mels[idx]) * 10 ** (gain_db / 10))
        return self.mels[idx], mixed.astype(np.float32)
