"""The sound bank: a user's sound library embedded by the audio encoder, searched by cosine similarity.

Entry ids are paths relative to the indexed folder (`solarwolf/explode.wav`). Indexing is incremental: files are
keyed by content hash, so unchanged files are skipped, new ones added and deleted ones dropped. Saved atomically
as one .npz (no pickle).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edgeav.backends.base import Backend

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgeav.atomic import atomic_path, sha1_file
from edgeav.errors import EdgeavError
from edgeav.io.audio import AUDIO_EXTENSIONS, audio_files


@dataclass
class SoundBank:
    ids: list[str]
    categories: list[str]
    embeddings: np.ndarray  # (N, D) float32, L2-normalized
    hashes: list[str]
    meta: dict = field(default_factory=dict)
    _faiss: object = None

    def __len__(self) -> int:
        return len(self.ids)

    # ---- persistence --------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        path = Path(path)
        with atomic_path(path, suffix=".npz") as tmp:
            with open(tmp, "wb") as f:
                np.savez(
                    f,
                    embeddings=self.embeddings.astype(np.float32),
                    ids=np.array(self.ids, dtype=str),
                    categories=np.array(self.categories, dtype=str),
                    hashes=np.array(self.hashes, dtype=str),
                    meta=np.array(json.dumps(self.meta)),
                )
        return path

    @classmethod
    def load(cls, path: str | Path) -> SoundBank:
        path = Path(path)
        if not path.exists():
            raise EdgeavError(f"sound bank not found: {path}", "build one with `edgeav index SOUNDS_DIR -o BANK.npz`")
        try:
            with np.load(path, allow_pickle=False) as z:
                return cls(
                    [str(s) for s in z["ids"]],
                    [str(s) for s in z["categories"]],
                    z["embeddings"].astype(np.float32),
                    [str(s) for s in z["hashes"]],
                    json.loads(str(z["meta"])),
                )
        except Exception as e:
            raise EdgeavError(
                f"{path} is not an edgeav sound bank ({type(e).__name__})", "rebuild it with `edgeav index`"
            ) from None

    # ---- search -------------------------------------------------------------------------------------------
    def search(self, queries: np.ndarray, k: int, backend: str = "auto") -> tuple[np.ndarray, np.ndarray]:
        """(scores, indices), each (Q, k), best first. Exact cosine either way. `auto` is numpy: one query at a
        time (a live stream), it measured faster than FAISS's exact index at every bank size from 10k to 1M sounds
        on CPU (benchmarks/results/bank_scale.md: 20 ms against 48 ms at 1M); `faiss` stays for FAISS GPU builds."""
        if backend not in ("auto", "numpy", "faiss"):
            raise EdgeavError(f"unknown search backend {backend!r}", "use auto, numpy or faiss")
        q = np.atleast_2d(queries).astype(np.float32)
        k = min(k, len(self))
        if backend == "faiss":
            return self._faiss_search(q, k)
        s = q @ self.embeddings.T
        idx = np.argpartition(-s, k - 1, axis=1)[:, :k]
        part = np.take_along_axis(s, idx, 1)
        order = np.argsort(-part, axis=1)
        return np.take_along_axis(part, order, 1), np.take_along_axis(idx, order, 1)

    def _faiss_search(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        try:
            import faiss
        except ImportError:
            raise EdgeavError(
                "FAISS search asked for but faiss is not installed", "pip install 'edgeav[faiss]'"
            ) from None
        if self._faiss is None:
            index = faiss.IndexFlatIP(self.embeddings.shape[1])  # exact inner product = cosine on unit vectors
            index.add(np.ascontiguousarray(self.embeddings))
            self._faiss = index
        return self._faiss.search(np.ascontiguousarray(q), k)


def read_categories(csv_path: str | Path | None) -> dict[str, str]:
    """`file,category` rows, file relative to the indexed folder (a header row is optional)."""
    if csv_path is None:
        return {}
    p = Path(csv_path)
    if not p.exists():
        raise EdgeavError(f"categories file not found: {p}", "give a CSV of file,category")
    out = {}
    with open(p, newline="") as f:
        for row in csv.reader(f):
            if len(row) >= 2 and row[0] not in ("file", "sound_id"):
                out[row[0].strip()] = row[-1].strip() if len(row) == 2 else row[1].strip()
    return out


def index_sounds(
    encoder: Backend,
    roots: list[str | Path],
    out: str | Path,
    categories_csv: str | Path | None = None,
    progress: bool = True,
    model_id: str = "",
) -> tuple[SoundBank, dict]:
    """Embed every audio file under `roots` into the bank at `out` (updating it if it exists). `encoder` is a
    backend: `encode_audio(mels (N,100,64)) -> (N,D)` and `cfg.embed_dim`.
    Returns the bank and a report {added, kept, dropped, skipped: {id: reason}}."""
    from tqdm import tqdm

    from edgeav.embed import embed_sound_file
    from edgeav.landmarks import update_bank_landmarks

    files: dict[str, Path] = {}
    for root in map(Path, roots):
        if not root.is_dir():
            raise EdgeavError(f"sound folder not found: {root}", "give folders of audio files")
        for p in audio_files(root):
            files[p.relative_to(root).as_posix()] = p
    if not files:
        raise EdgeavError(
            f"no audio files under {', '.join(map(str, roots))}", f"supported: {', '.join(AUDIO_EXTENSIONS)}"
        )
    cats = read_categories(categories_csv)
    old = SoundBank.load(out) if Path(out).exists() else None
    if old is not None and old.meta.get("model_id") != model_id:
        old = None  # another model: embeddings are not comparable, re-embed everything
    previous = (
        {} if old is None else {i: (h, c, e) for i, h, c, e in zip(old.ids, old.hashes, old.categories, old.embeddings)}
    )
    ids, hashes, categories, embs, report = [], [], [], [], {"added": 0, "kept": 0, "dropped": 0, "skipped": {}}
    for rel, path in tqdm(files.items(), desc="index", unit="file", disable=not progress):
        digest = sha1_file(path)
        category = cats.get(rel) or (rel.split("/")[-2] if "/" in rel else "")
        if rel in previous and previous[rel][0] == digest:
            ids.append(rel), hashes.append(digest), categories.append(category or previous[rel][1])
            embs.append(previous[rel][2])
            report["kept"] += 1
            continue
        try:
            embs.append(embed_sound_file(encoder.encode_audio, path, max_seconds=60.0))
        except EdgeavError as e:
            report["skipped"][rel] = str(e)
            continue
        ids.append(rel), hashes.append(digest), categories.append(category)
        report["added"] += 1
    report["dropped"] = len(set(previous) - set(ids))
    bank = SoundBank(
        ids,
        categories,
        np.stack(embs).astype(np.float32) if embs else np.zeros((0, encoder.cfg.embed_dim), np.float32),
        hashes,
        {"model_id": model_id, "roots": [str(Path(r).resolve()) for r in roots]},
    )
    if report["added"] or report["dropped"] or old is None:
        bank.save(out)
    # the same files' fingerprints, so finding them in footage (edgeav adapt) needs no pass over the library
    report["landmarks"] = update_bank_landmarks(out, {i: files[i] for i in ids}, dict(zip(ids, hashes)))
    return bank, report


def bank_encoder(backend: Backend, warn: Callable[[str], None] = print) -> Backend:
    """The encoder that indexes sound banks for `backend`'s model. A distilled student embeds into its teacher's
    space, so its banks are indexed by the teacher's audio encoder — indexing is offline, and the teacher's audio
    side is the stronger one (measured on the corpus: student_small top-5 0.275 against the teacher-indexed bank,
    0.168 against its own audio encoder's). The teacher must be the very one distilled from (weights hash); if it
    is not available the student's own audio encoder is used, and `warn` says so. The check is on the teacher's
    audio side (`teacher_audio_sha1`), so a teacher re-shipped with another visual calibration still serves; older
    students record only the whole file's hash (`teacher_sha1`)."""
    card = backend.card
    teacher = card.teacher
    if not teacher:
        return backend
    from edgeav.backends.torch_backend import TorchBackend

    try:
        tb = TorchBackend(teacher)
    except EdgeavError:
        warn(
            f"edgeav: teacher {teacher!r} of this student is not available; the bank is indexed with the student's "
            f"own audio encoder (less accurate)"
        )
        return backend
    if card.teacher_audio_sha1:
        same = tb.audio_sha1 == card.teacher_audio_sha1
    else:
        same = card.teacher_sha1 is None or tb.weights_sha1 == card.teacher_sha1
    if not same:
        warn(
            f"edgeav: teacher {teacher!r} is not the one this student was distilled from (weights differ); the bank "
            f"is indexed with the student's own audio encoder"
        )
        return backend
    return tb
