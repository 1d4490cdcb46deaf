"""The research's evaluation on the corpus test split (sound events are ground truth here, never in training).

- correlation accuracy: balanced synchronized / unsynchronized (same clip ≥ 2 s away, or another clip) window
  pairs; the cosine threshold is chosen on val and applied to test.
- recommendation accuracy: each test sound event is a query (visual window starting pre_roll s before it); the
  bank is every effect of sounds.csv embedded from its clean file; top-k file and category accuracy, over events and
  macro over effects, beside chance and the blind prior (the game's effects ranked by train frequency).
- retrieval: video→audio and audio→video recall@k among test windows.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from edgeav.atomic import save_npy
from edgeav.bank import SoundBank
from edgeav.embed import embed_mels, embed_sound_file
from edgeav.frontends import MelSpec, log_mel, preprocess_frames
from edgeav.io import VideoFile
from edgeav_train.corpus import Query, corpus_root, event_counts, load_clips, load_queries, load_sounds
from edgeav_train.data import pick_negatives

KS = (1, 5, 10)


# ---------------------------------------------------------------- inputs shared by all models of one frame size
@dataclass
class EvalInputs:
    queries: list[Query]
    query_frames: np.ndarray  # (Q, T, H, W, 3) uint8
    windows: dict  # split → {"frames": (N,T,H,W,3), "mel": (N,100,64), "clip": (N,), "t": (N,)}


def _stack_at(frames_25: np.ndarray, times: list[float], fps: float = 25.0) -> np.ndarray:
    idx = np.clip(np.floor(np.asarray(times) * fps + 1e-3).astype(int), 0, len(frames_25) - 1)
    return frames_25[idx]


def load_inputs(
    root=None,
    frame_size=(128, 96),
    frame_offsets=(0.2, 0.4),
    pre_roll=0.2,
    window_step_s=1.0,
    cache_dir: str | Path = ".cache/eval",
    games: set[str] | None = None,
) -> EvalInputs:
    """Decode query stacks and evaluation windows once; cached as .npz keyed by the arguments."""
    key = (
        f"{frame_size[0]}x{frame_size[1]}-{'_'.join(map(str, frame_offsets))}-{pre_roll}-{window_step_s}-"
        f"{'_'.join(sorted(games)) if games else 'all'}"
    )
    path = Path(cache_dir) / f"inputs-{key}.npz"
    queries = load_queries(root, "test", games)
    if path.exists():
        z = np.load(path)
        windows = {s: {k: z[f"{s}_{k}"] for k in ("frames", "mel", "clip", "t")} for s in ("val", "test")}
        return EvalInputs(queries, z["query_frames"], windows)
    spec = MelSpec()
    qframes, windows = [], {}
    for split in ("val", "test"):
        fr, me, cl, ts = [], [], [], []
        for ci, clip in enumerate(c for c in load_clips(root, split) if not games or c.game in games):
            v = VideoFile(clip.video, fps=None, size=frame_size)
            f25 = np.stack([img for _, img in v.frames()])
            audio = v.audio(0, v.duration + 1)
            v.close()
            if split == "test":
                for q in (q for q in queries if q.clip_id == clip.clip_id):
                    qframes.append(_stack_at(f25, [q.t - pre_roll + o for o in frame_offsets]))
            for s in np.arange(0, v.duration - 1.0 - max(frame_offsets), window_step_s):
                fr.append(_stack_at(f25, [s + o for o in frame_offsets]))
                a0 = int(round(s * 16000))
                me.append(log_mel(audio[a0 : a0 + 16000], spec, n_frames=100))
                cl.append(ci), ts.append(s)
        windows[split] = {
            "frames": np.stack(fr),
            "mel": np.stack(me).astype(np.float32),
            "clip": np.array(cl),
            "t": np.array(ts),
        }
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, query_frames=np.stack(qframes), **{f"{s}_{k}": v for s, d in windows.items() for k, v in d.items()})
    return EvalInputs(queries, np.stack(qframes), windows)


class VisualCache:
    """Frozen-trunk features of the evaluation frame stacks, computed once and kept on disk (float16), shared by
    every model with the same frozen trunk: the ablation's evals then cost seconds, not minutes."""

    def __init__(self, folder: str | Path = ".cache/eval") -> None:
        self.folder = Path(folder)
        self.store: dict = {}

    def _features(self, model, stacks: np.ndarray, tag: str, batch: int) -> list[np.ndarray]:
        key = f"trunk-{model.cfg.visual_backbone}-{tag}-{len(stacks)}-{stacks.shape[2]}x{stacks.shape[3]}"
        if key in self.store:
            return self.store[key]
        paths = sorted(self.folder.glob(f"{key}.l*.npy"))
        if paths:
            self.store[key] = [np.load(p, mmap_mode="r") for p in paths]
            return self.store[key]
        levels: list[list[np.ndarray]] = []
        with torch.no_grad():
            for i in range(0, len(stacks), batch):
                feats = model.visual.backbone_features(torch.from_numpy(preprocess_frames(stacks[i : i + batch])))
                levels = levels or [[] for _ in feats]
                for lv, f in zip(levels, feats):
                    lv.append(f.numpy().astype(np.float16))
        self.folder.mkdir(parents=True, exist_ok=True)
        out = []
        for j, lv in enumerate(levels):
            arr = np.concatenate(lv)
            save_npy(self.folder / f"{key}.l{j}.npy", arr)
            out.append(arr)
        self.store[key] = out
        return out

    @torch.no_grad()
    def embed(self, model, stacks: np.ndarray, tag: str, batch: int = 64) -> np.ndarray:
        stacks = resize_stacks(stacks, model.cfg.frame_size)
        if not getattr(model.visual.backbone, "frozen", False):
            return np.concatenate(
                [
                    model.encode_visual(torch.from_numpy(preprocess_frames(stacks[i : i + batch]))).numpy()
                    for i in range(0, len(stacks), batch)
                ]
            )
        feats = self._features(model, stacks, tag, batch)
        return np.concatenate(
            [
                model.encode_visual_features(
                    [torch.from_numpy(np.asarray(f[i : i + 256], np.float32)) for f in feats]
                ).numpy()
                for i in range(0, len(stacks), 256)
            ]
        )


def resize_stacks(stacks: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(N, T, H, W, 3) uint8 frame stacks at another (width, height), as the run pipeline resizes frames."""
    if stacks.shape[3] == size[0] and stacks.shape[2] == size[1]:
        return stacks
    from edgeav.frontends import resize_frame

    return np.stack([[resize_frame(f, size) for f in st] for st in stacks])


class BackendModel:
    """A runtime backend (ONNX Runtime fp32/int8, TensorRT) seen through the model interface evaluate() uses, so
    an exported or quantized model is measured on exactly the same queries, bank and pairs as its PyTorch source."""

    class _Unfrozen:
        frozen = False

    def __init__(self, backend) -> None:
        self.backend, self.cfg, self.card = backend, backend.cfg, backend.card
        self.visual = type("V", (), {"backbone": self._Unfrozen()})()

    def eval(self):
        return self

    def encode_visual(self, frames: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(np.asarray(self.backend.encode_preprocessed(frames.numpy()), np.float32))

    def encode_audio(self, mel: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(np.asarray(self.backend.encode_audio(mel.numpy()), np.float32))


# ---------------------------------------------------------------- bank
def corpus_bank(model, root=None, cache_dir: str | Path | None = ".cache/eval") -> SoundBank:
    """Every effect of sounds.csv embedded from its clean file. A PyTorch model's bank is kept on disk, keyed by its
    audio-side hash and sounds.csv, so evaluating many visual variants of one audio encoder embeds the library once;
    a runtime backend (ONNX, INT8, TensorRT) always embeds through itself."""
    import hashlib

    from edgeav.models.store import audio_sha1

    r = corpus_root(root)
    rows = load_sounds(root)
    path = None
    if cache_dir is not None and hasattr(model, "state_dict"):
        files = "".join(f"{s['file']}:{(r / s['file']).stat().st_size};" for s in rows if (r / s["file"]).exists())
        key = hashlib.sha1((audio_sha1(model) + str(rows) + files).encode()).hexdigest()[:16]
        path = Path(cache_dir) / f"bank-{key}.npz"
        if path.exists():
            return SoundBank.load(path)
    embs = [embed_sound_file(lambda m: embed_mels(model, m), r / s["file"], max_seconds=30) for s in rows]
    bank = SoundBank(
        [s["sound_id"] for s in rows],
        [s["category"] for s in rows],
        np.stack(embs),
        [""] * len(rows),
        {"source": str(r / "sounds")},
    )
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        bank.save(path)
    return bank


def search_bank(model, root=None, cache_dir: str | Path | None = ".cache/eval") -> SoundBank:
    """The corpus bank `model` is searched against: a student's is indexed by its teacher's audio encoder (one bank
    serves both when the student lives in the teacher's space), anyone else's by its own."""
    from edgeav.models import load_model

    teacher = model.card.teacher
    return corpus_bank(load_model(teacher).eval() if teacher else model, root, cache_dir)


# ---------------------------------------------------------------- metrics
def bank_metrics(bank: SoundBank, embeddings: np.ndarray, queries: list[Query]) -> dict:
    """ranking_metrics of the bank's top max(KS) sounds for each query embedding."""
    _, idx = bank.search(np.asarray(embeddings, np.float32), max(KS), backend="numpy")
    return ranking_metrics([[bank.ids[j] for j in row] for row in idx], queries, dict(zip(bank.ids, bank.categories)))


def ranking_metrics(ranked: list[list[str]], queries: list[Query], category_of: dict[str, str]) -> dict:
    """top-k file / category accuracy over events and macro over effects (the sound that really fired)."""
    out = {}
    for k in KS:
        hit_f = np.array([q.sound_id in r[:k] for q, r in zip(queries, ranked)])
        hit_c = np.array([any(category_of.get(s) == q.category for s in r[:k]) for q, r in zip(queries, ranked)])
        effects = sorted({q.sound_id for q in queries})
        by = {e: np.array([i for i, q in enumerate(queries) if q.sound_id == e]) for e in effects}
        out[f"top{k}_file"] = float(hit_f.mean())
        out[f"top{k}_file_macro"] = float(np.mean([hit_f[ix].mean() for ix in by.values()]))
        out[f"top{k}_category"] = float(hit_c.mean())
        out[f"top{k}_category_macro"] = float(np.mean([hit_c[ix].mean() for ix in by.values()]))
    return out


def blind_prior_ranking(queries: list[Query], bank: SoundBank, root=None) -> list[list[str]]:
    counts = event_counts(root, "train")
    game_of = {s["sound_id"]: s["game"] for s in load_sounds(root)}
    per_game = {}
    for g in {q.game for q in queries}:
        fired = sorted(counts.get(g, {}).items(), key=lambda kv: -kv[1])
        rest = [i for i in bank.ids if game_of.get(i) == g and i not in counts.get(g, {})]
        per_game[g] = [s for s, _ in fired] + rest + [i for i in bank.ids if game_of.get(i) != g]
    return [per_game[q.game] for q in queries]


def chance_metrics(queries: list[Query], bank: SoundBank) -> dict:
    n = len(bank)
    cat_sizes = {c: bank.categories.count(c) for c in set(bank.categories)}

    def p_cat(c, k):
        m = cat_sizes.get(c, 0)
        return 1 - math.comb(n - m, k) / math.comb(n, k)

    out = {}
    effects = sorted({q.sound_id for q in queries})
    for k in KS:
        out[f"top{k}_file"] = out[f"top{k}_file_macro"] = k / n
        pc = np.array([p_cat(q.category, k) for q in queries])
        out[f"top{k}_category"] = float(pc.mean())
        out[f"top{k}_category_macro"] = float(
            np.mean([np.mean([p_cat(q.category, k) for q in queries if q.sound_id == e]) for e in effects])
        )
    return out


def correlation_accuracy(sim_pos_val, sim_neg_val, sim_pos_test, sim_neg_test) -> dict:
    s = np.concatenate([sim_pos_val, sim_neg_val])
    y = np.concatenate([np.ones(len(sim_pos_val)), np.zeros(len(sim_neg_val))])
    cands = np.unique(s)
    accs = [((s >= t) == y).mean() for t in cands]
    thr = float(cands[int(np.argmax(accs))])
    acc = 0.5 * ((sim_pos_test >= thr).mean() + (sim_neg_test < thr).mean())
    return {"correlation_acc": float(acc), "threshold": thr, "val_acc": float(max(accs))}


def recall_at_k(v: np.ndarray, a: np.ndarray) -> dict:
    s = v @ a.T
    rank_v2a = (s > np.diag(s)[:, None]).sum(1)
    rank_a2v = (s.T > np.diag(s)[:, None]).sum(1)
    return {
        **{f"v2a_R@{k}": float((rank_v2a < k).mean()) for k in KS},
        **{f"a2v_R@{k}": float((rank_a2v < k).mean()) for k in KS},
    }


def calibrate_foley(v: np.ndarray, inputs: EvalInputs, bank: SoundBank, root=None, frame_size=None) -> dict:
    """The auto-foley calibration, on val only (the test split stays untouched).

    Rate-matched: of all val windows, the fraction whose query point (window start + pre_roll ± 0.1 s) has an
    effect starting is the event rate (`rate`, what `run --save` places at). Two gates are measured at that rate by
    how well they separate onset windows from windows with no effect nearby (balanced accuracy; 0.5 = it cannot
    tell): the model's top-1 score above a threshold (`threshold`, `balanced_acc`), and the picture's change in the
    top `rate` of the recent windows of the same clip (edgeav.foley.ChangeGate at the model's frame size;
    `change_balanced_acc`), which is what `run --save` gates on."""
    import json as _json

    from edgeav.foley import ChangeGate

    w = inputs.windows["val"]
    games = {q.game for q in inputs.queries}
    clips = [c for c in load_clips(root, "val") if c.game in games]
    events = [np.array([e["t"] for e in _json.loads(c.events.read_text())["sound_events"]]) for c in clips]
    onset = np.array([np.any((events[ci] >= s + 0.1) & (events[ci] <= s + 0.3)) for ci, s in zip(w["clip"], w["t"])])
    quiet = np.array(
        [not np.any((events[ci] >= s - 0.3) & (events[ci] <= s + 1.0)) for ci, s in zip(w["clip"], w["t"])]
    )
    top = bank.search(v, 1, backend="numpy")[0][:, 0]  # v: the model's embeddings of the val windows
    rate = float(onset.mean())
    thr = float(np.quantile(top, 1 - rate))
    bal = 0.5 * ((top[onset] >= thr).mean() + (top[quiet] < thr).mean())
    stacks = resize_stacks(w["frames"], frame_size) if frame_size else w["frames"]
    placed = np.zeros(len(stacks), bool)
    for c in np.unique(w["clip"]):  # each clip's windows in time order, as a run sees them
        gate = ChangeGate(rate)
        for i in sorted(np.nonzero(w["clip"] == c)[0], key=lambda i: w["t"][i]):
            placed[i] = gate(stacks[i])
    cbal = 0.5 * (placed[onset].mean() + (~placed[quiet]).mean())
    return {
        "threshold": thr,
        "event_rate": rate,
        "balanced_acc": float(bal),
        "change_balanced_acc": float(cbal),
        "change_placed": float(placed.mean()),
        "n_onset": int(onset.sum()),
        "n_quiet": int(quiet.sum()),
    }


@torch.no_grad()
def evaluate(
    model, inputs: EvalInputs, root=None, vcache: VisualCache | None = None, seed: int = 0, bank_model=None
) -> dict:
    """`bank_model`: embed the library with another model's audio encoder (a student searched against the bank its
    teacher indexed: one bank serves both when the student lives in the teacher's space)."""
    t0 = time.perf_counter()
    model.eval()
    vcache = vcache or VisualCache()
    bank = corpus_bank(bank_model.eval() if bank_model is not None else model, root, vcache.folder)
    category_of = dict(zip(bank.ids, bank.categories))
    qv = vcache.embed(model, inputs.query_frames, "queries")
    res = {
        "model": bank_metrics(bank, qv, inputs.queries),
        "blind_prior": ranking_metrics(blind_prior_ranking(inputs.queries, bank, root), inputs.queries, category_of),
        "chance": chance_metrics(inputs.queries, bank),
    }
    rng = np.random.default_rng(seed)
    sims, embedded = {}, {}
    for split in ("val", "test"):
        w = inputs.windows[split]
        v = embedded[split] = vcache.embed(model, w["frames"], f"windows-{split}")
        a = embed_mels(model, w["mel"])
        neg = pick_negatives(w["clip"], w["t"], rng)
        sims[split] = ((v * a).sum(1), (v * a[neg]).sum(1))
        if split == "test":
            res["retrieval"] = recall_at_k(v, a)
            res["retrieval_chance_R@1"] = 1 / len(v)
    res["correlation"] = correlation_accuracy(*sims["val"], *sims["test"])
    res["foley"] = calibrate_foley(embedded["val"], inputs, bank, root, model.cfg.frame_size)
    res["n_queries"], res["n_effects"], res["bank_size"] = (
        len(inputs.queries),
        len({q.sound_id for q in inputs.queries}),
        len(bank),
    )
    res["seconds"] = round(time.perf_counter() - t0, 1)
    return res
