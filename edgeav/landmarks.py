"""Which library files play in a soundtrack, found without scanning the library: landmark hashing (Wang 2003).

Each library sound's opening is reduced to its spectral peaks; each peak with one (a pair) or two (a triplet) of
the next peaks close to it in time and frequency (anchor frequency, and each later peak's frequency and time from
it) is hashed and kept in a table sorted by hash, beside the file and the anchor's frame. A soundtrack's own peaks,
hashed the same way, look that table up, and a library file whose hashes line up at one time offset in the
soundtrack is a candidate start there. Lookup costs the soundtrack's hashes times the hits per hash, not the
library's size; the exact matcher (matched filtering of the waveform) then verifies only the candidates. Pairs find
the most in a small library; in a large one a pair's 20-bit hash is held by many openings, a triplet's 31 bits by a
few, so large libraries are hashed in triplets (`LandmarkConfig.for_library`). A footage plays few of a large
library's files: `FootageSearch` surveys its soundtracks for which (triplets), then finds every start of those
with a pair-hashed index of them alone.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from edgeav.errors import EdgeavError


@dataclass(frozen=True)
class LandmarkConfig:
    """The index's settings. `LandmarkConfig()` is a small library's; `for_library(n)` chooses by the library's size."""

    peaks_per_hash: int = 2  # 2: an anchor and one later peak (20-bit hashes); 3: and two (31 bits)
    sample_rate: int = 16000
    n_fft: int = 512  # 32 ms frames: a 32 ms click still spans a frame
    hop: int = 128  # 8 ms: offsets are voted at this step, the verifier refines them to the sample
    template_s: float = 0.25  # the opening of each library sound that is hashed (the matcher's template)
    library_peaks: int = 3  # spectral peaks kept per frame of a library sound
    footage_peaks: int = 8  # and of the soundtrack: more, since music takes some of them
    fan_out: int = 4  # later peaks per anchor in a library sound that hash with it (triplets: each two of them)
    footage_fan_out: int = 4  # and in the soundtrack
    max_dt: int = 24  # frames from an anchor to a later peak it hashes with (192 ms)
    max_df: int = 31  # frequency bins between them (~970 Hz)
    min_votes: float = 6.0  # hashes agreeing on one file and offset (±1 frame) to make a candidate
    min_share: float = 0.5  # or this share of the file's own hashes, if fewer (a 30 ms click has a handful)
    min_hashes: int = 24  # an opening with fewer hashes is hashed again with the soundtrack's peaks per frame
    common: int = 50  # a hash held by more library openings than this is common: each of its hits votes common/n
    too_common: int = 400  # and one held by more than this does not vote (it would cost more than it tells)
    floor: float = 0.3  # a candidate is a start if its opening's normalized cross-correlation reaches this
    nms_s: float = 0.06  # a start this close to a better one (any sound) must be confirmed on the residual
    overlap_floor: float = 0.4  # its correlation there, with the better one's opening subtracted
    whiten_order: int = 16  # the verifier correlates through a linear predictor of this order fitted to the
    # soundtrack (0: the raw waveform): music's strong low bands no longer drown a quiet click
    residual_lookups: int = 1  # lookups again around the starts found, with them taken out
    retry_floor: float = 0.15  # a candidate below this on the soundtrack is not tried on a residual either
    survey_fan_out: int = 5  # a triplet-hashed library's survey for which files play (FootageSearch) hashes each
    # soundtrack anchor with this many later peaks: a file plays many times, a survey needs to hear it once (train
    # clips, 100k files: 4 → recall 0.853 at 103 footage min per CPU-min, 5 → 0.864 at 76, 6 → 0.871 at 61)

    def hashes_like(self, other: LandmarkConfig) -> bool:
        """Whether an index hashed with `other` holds the hashes these settings make (the other fields only change
        how a soundtrack is looked up and verified: an index is kept across them)."""
        return all(getattr(self, f) == getattr(other, f) for f in HASHING_FIELDS)

    @property
    def hashing(self) -> str:
        """What a hash holds: "pairs" or "triplets" of peaks."""
        return "triplets" if self.peaks_per_hash == 3 else "pairs"

    @classmethod
    def for_library(cls, files: int, **fields: object) -> LandmarkConfig:
        """The settings for a library of `files` sounds: pairs below `TRIPLETS_FROM` files, where they find the
        most; triplets from there, where a pair's hash is held by so many openings that lookups slow down and true
        starts drown (benchmarks/results/fingerprint_scale.md). `fields` override either."""
        return cls(**{**(TRIPLETS if files >= TRIPLETS_FROM else {}), **fields})


# chosen on the train clips' soundtracks against 1k to 100k files, looked up in one pass (a survey takes
# `survey_fan_out` instead of `footage_fan_out`): music's peaks come between a sound's own, so the soundtrack hashes
# each anchor with more later peaks; a bucket of more than 30 openings does not vote (it costs more lookups than it
# tells); the residual is not looked up again (at 100k files it found 1.6% more of the logged starts for a third
# more lookup time)
TRIPLETS: dict = {
    "peaks_per_hash": 3,
    "footage_fan_out": 6,
    "min_votes": 5.0,
    "common": 30,
    "too_common": 30,
    "residual_lookups": 0,
}
HASHING_FIELDS = (
    "peaks_per_hash",
    "sample_rate",
    "n_fft",
    "hop",
    "template_s",
    "library_peaks",
    "footage_peaks",  # a short opening is hashed with the soundtrack's peaks per frame
    "fan_out",
    "max_dt",
    "max_df",
    "min_hashes",
)
# at 2,000 files pairs still find more (train: recall 0.874 against 0.804) but are 4× slower; at 10,000 they find less
TRIPLETS_FROM = 2000


def _log_spectrogram(x: np.ndarray, cfg: LandmarkConfig) -> np.ndarray:
    """(..., frames, n_fft/2 + 1) log magnitude of each row of `x`, frames starting at 0, hop, 2·hop, ... (zero-
    padded at the end)."""
    x = np.asarray(x, np.float32)
    n = max(1, int(np.ceil(x.shape[-1] / cfg.hop)))
    padded = np.zeros((*x.shape[:-1], (n - 1) * cfg.hop + cfg.n_fft), np.float32)
    padded[..., : x.shape[-1]] = x
    frames = np.lib.stride_tricks.sliding_window_view(padded, cfg.n_fft, axis=-1)[..., :: cfg.hop, :][..., :n, :]
    spec = np.abs(np.fft.rfft(frames * np.hanning(cfg.n_fft).astype(np.float32), axis=-1))
    return np.log(spec + 1e-4)


def spectral_peaks(x: np.ndarray, per_frame: int, cfg: LandmarkConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, frame, bin) of the `per_frame` strongest local maxima of each frame's log spectrum (±1 frame, ±2 bins)
    of each row of `x` (one signal, or a batch of equal-length ones), ordered by row, frame and bin."""
    s = _log_spectrogram(np.atleast_2d(x), cfg)
    is_peak = (s == _local_max(s)) & (s > np.log(1e-3))
    masked = np.where(is_peak, s, -np.inf)
    k = min(per_frame, s.shape[-1])
    top = np.argpartition(-masked, k - 1, axis=-1)[..., :k]
    top = np.sort(top, axis=-1)  # by frequency within a frame, so same-frame peaks hash the same everywhere
    keep = np.isfinite(np.take_along_axis(masked, top, axis=-1))
    row, t, _ = np.nonzero(keep)
    return row.astype(np.int32), t.astype(np.int32), top[keep].astype(np.int32)


def _local_max(s: np.ndarray) -> np.ndarray:
    """Each value's neighbourhood maximum over ±1 frame and ±2 bins (edges repeated), numpy alone: the runtime's
    `edgeav index` builds the index without the training extra's scipy."""
    out = s.copy()
    for axis, reach in ((1, 1), (2, 2)):  # separable: the frames' maximum first, then the bins'
        padded = np.pad(out, [(reach, reach) if a == axis else (0, 0) for a in range(3)], mode="edge")
        n = out.shape[axis]
        for d in range(2 * reach + 1):
            np.maximum(out, padded.take(np.arange(d, d + n), axis=axis), out=out)
    return out


def _later_peaks(row: np.ndarray, t: np.ndarray, f: np.ndarray, cfg: LandmarkConfig, fan_out: int) -> np.ndarray:
    """(peaks, fan_out) indices of each peak's first `fan_out` later peaks of the same row within `max_dt` frames
    and `max_df` bins (−1 where there are fewer). Peaks come in time order: later ones are the next in the arrays."""
    n = len(t)
    later = np.full((n, fan_out), -1, np.int64)
    taken = np.zeros(n, np.int64)
    for step in range(1, 8 * fan_out):
        a = np.arange(n - step)
        b = a + step
        dt, df = t[b] - t[a], f[b] - f[a]
        ok = (row[a] == row[b]) & ((dt > 0) | (df > 0)) & (dt <= cfg.max_dt) & (np.abs(df) <= cfg.max_df)
        ok &= taken[a] < fan_out
        a, b = a[ok], b[ok]
        later[a, taken[a]] = b
        taken[a] += 1
    return later


def peak_hashes(
    row: np.ndarray, t: np.ndarray, f: np.ndarray, cfg: LandmarkConfig, fan_out: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(hash, row, anchor frame) of each anchor peak with each of its first `fan_out` later peaks (pairs) or every two
    of them (triplets). A hash packs the anchor's bin (9 bits) and, per later peak, its bin difference (6 bits) and
    frame difference (5 bits)."""
    later = _later_peaks(row, t, f, cfg, fan_out)

    def part(b: np.ndarray, a: np.ndarray) -> np.ndarray:
        return ((f[b] - f[a] + cfg.max_df).astype(np.uint32) << 5) | (t[b] - t[a]).astype(np.uint32)

    hashes, rows, anchors = [np.zeros(0, np.uint32)], [np.zeros(0, np.int32)], [np.zeros(0, np.int32)]
    for i in range(fan_out):
        if cfg.peaks_per_hash == 2:
            a = np.flatnonzero(later[:, i] >= 0)
            hashes.append((f[a].astype(np.uint32) << 11) | part(later[a, i], a))
            rows.append(row[a])
            anchors.append(t[a])
            continue
        for j in range(i + 1, fan_out):
            a = np.flatnonzero(later[:, j] >= 0)  # a j-th later peak implies an i-th
            hashes.append((f[a].astype(np.uint32) << 22) | (part(later[a, i], a) << 11) | part(later[a, j], a))
            rows.append(row[a])
            anchors.append(t[a])
    return np.concatenate(hashes), np.concatenate(rows), np.concatenate(anchors).astype(np.int32)


class LandmarkIndex:
    """Peak-pair hashes of a library's openings, sorted by hash, each with its file and anchor frame; per file its
    content hash, so re-indexing a library hashes only new or changed files. Saved as one .npz (no pickle)."""

    def __init__(self, cfg: LandmarkConfig = LandmarkConfig()) -> None:
        self.cfg = cfg
        self.ids: list[str] = []
        self.digests: list[str] = []
        self.hashes = np.zeros(0, np.uint32)
        self.files = np.zeros(0, np.int32)
        self.frames = np.zeros(0, np.int16)
        self.counts = np.zeros(0, np.int32)  # hashes per file: how many could agree at a true start

    def keep(self, ids: set[str]) -> None:
        """Forget every file not in `ids` (removed or changed ones)."""
        kept = np.array([i in ids for i in self.ids], bool)
        renumber = np.cumsum(kept) - 1
        rows = kept[self.files] if len(self.files) else np.zeros(0, bool)
        self.hashes, self.frames = self.hashes[rows], self.frames[rows]
        self.files = renumber[self.files[rows]].astype(np.int32)
        self.ids = [i for i, k in zip(self.ids, kept) if k]
        self.digests = [d for d, k in zip(self.digests, kept) if k]
        self.counts = self.counts[kept]

    def add_many(
        self, sound_ids: list[str], waves: list[np.ndarray], digests: list[str] | None = None, batch: int = 2048
    ) -> None:
        """Hash library sounds (their openings, at the config's rate), `batch` at a time in one spectrogram."""
        cfg = self.cfg
        # the soundtrack's frames that start before a sound also hold its first samples: the opening is analysed
        # from (n_fft − hop) samples before it (a whole number of hops), so a 30 ms click spans 7 frames, not 4
        lead = (cfg.n_fft - cfg.hop) // cfg.hop
        length = int(cfg.template_s * cfg.sample_rate)
        hs, fs, ts, counts = [self.hashes], [self.files], [self.frames], [self.counts]
        for i0 in range(0, len(waves), batch):
            chunk = waves[i0 : i0 + batch]
            x = np.zeros((len(chunk), lead * cfg.hop + length), np.float32)
            for i, w in enumerate(chunk):
                w = np.asarray(w, np.float32)[:length]
                x[i, lead * cfg.hop : lead * cfg.hop + len(w)] = w
            h, row, anchor = self._hashes(x)
            hs.append(h)
            fs.append((row + len(self.ids) + i0).astype(np.int32))
            ts.append((anchor - lead).astype(np.int16))
            counts.append(np.bincount(row, minlength=len(chunk)).astype(np.int32))
        self.ids += list(sound_ids)
        self.digests += list(digests) if digests is not None else [""] * len(sound_ids)
        order = np.argsort(np.concatenate(hs), kind="stable")
        self.hashes = np.concatenate(hs)[order]
        self.files, self.frames = np.concatenate(fs)[order], np.concatenate(ts)[order]
        self.counts = np.concatenate(counts)

    def _hashes(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(hash, row, anchor frame) of the openings `x`: `library_peaks` per frame, and for an opening short of
        `min_hashes` hashes that way (a click of a few frames), as many peaks per frame as the soundtrack keeps."""
        cfg = self.cfg
        h, row, anchor = peak_hashes(*spectral_peaks(x, cfg.library_peaks, cfg), cfg, cfg.fan_out)
        few = np.flatnonzero(np.bincount(row, minlength=len(x)) < cfg.min_hashes)
        if not len(few) or cfg.footage_peaks <= cfg.library_peaks:
            return h, row, anchor
        h2, row2, anchor2 = peak_hashes(*spectral_peaks(x[few], cfg.footage_peaks, cfg), cfg, cfg.fan_out)
        rest = ~np.isin(row, few)
        return (
            np.concatenate([h[rest], h2]),
            np.concatenate([row[rest], few[row2].astype(row.dtype)]),
            np.concatenate([anchor[rest], anchor2]),
        )

    def candidates(self, x: np.ndarray, fan_out: int | None = None) -> list[tuple[float, int, float]]:
        """(start s, file index, votes) where a library file's hashes line up in the soundtrack `x` (at the config's
        rate), strongest first; votes of neighbouring offsets (±1 frame, the hop's rounding) are pooled. `fan_out`:
        the soundtrack's later peaks per anchor, if not `footage_fan_out`."""
        cfg = self.cfg
        fan_out = cfg.footage_fan_out if fan_out is None else fan_out
        h, _, anchor = peak_hashes(*spectral_peaks(x, cfg.footage_peaks, cfg), cfg, fan_out)
        order = np.argsort(h)  # looked up in sorted order, the binary searches walk the table forwards
        h, anchor = h[order], anchor[order]
        lo, hi = np.searchsorted(self.hashes, h, "left"), np.searchsorted(self.hashes, h, "right")
        n = np.where(hi - lo > cfg.too_common, 0, hi - lo)
        if not n.sum():
            return []
        rows = np.repeat(lo - np.cumsum(n) + n, n) + np.arange(n.sum())
        offset = np.repeat(anchor, n) - self.frames[rows].astype(np.int64)
        ok = offset >= 0
        key = self.files[rows][ok].astype(np.int64) << 32 | offset[ok]
        # a hash that many openings share (a low hum, a plain tone) says little about which one plays
        weight = None  # where no hash that votes is common, every hit counts one
        if cfg.common < cfg.too_common:
            weight = np.repeat(np.minimum(1.0, cfg.common / np.maximum(n, 1)), n)[ok]
        keys, votes = _tally(key, weight)
        need = np.minimum(cfg.min_votes, cfg.min_share * self.counts[keys >> 32])
        # votes one frame either side count too (a start falls between two hops); pooled over three offsets they
        # reach `need` only around an offset holding a third of it, so only those and their neighbours are pooled
        # (in a large library most offsets hold a chance vote or two)
        seed = np.flatnonzero(3 * votes >= need)
        near = np.unique(np.concatenate([seed, *(_offset_neighbour(keys, d, seed)[1] for d in (-1, 1))]))
        pooled = votes[near].copy()
        for d in (-1, 1):
            hit, j = _offset_neighbour(keys, d, near)
            pooled[hit] += votes[j]
        keys, need = keys[near], need[near]
        # an offset outside `near` pools under its file's `need`: it cannot outvote one that reaches it
        best = (pooled >= need) & (pooled >= _neighbour_max(keys, pooled))
        out = [
            (float(k & 0xFFFFFFFF) * cfg.hop / cfg.sample_rate, int(k >> 32), float(v))
            for k, v in zip(keys[best], pooled[best])
        ]
        return sorted(out, key=lambda c: -c[2])

    def save(self, path: str | Path) -> Path:
        from edgeav.atomic import atomic_path

        path = Path(path)
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(
                    fh,
                    hashes=self.hashes,
                    files=self.files,
                    frames=self.frames,
                    counts=self.counts,
                    ids=np.array(self.ids, dtype=np.str_),
                    digests=np.array(self.digests, dtype=np.str_),
                    config=np.array(repr(sorted(asdict(self.cfg).items()))),
                )
        return path

    @classmethod
    def load(cls, path: str | Path, cfg: LandmarkConfig | None = None) -> LandmarkIndex:
        """The index saved at `path`, with the settings it was built with (they must be `cfg`, if given)."""
        import ast

        try:
            z = dict(np.load(path, allow_pickle=False))
        except (OSError, ValueError, EOFError) as e:
            raise EdgeavError(f"not a landmark index: {path} ({e})", "rebuild it with edgeav index") from None
        try:
            built = LandmarkConfig(**dict(ast.literal_eval(str(z["config"]))))
        except (KeyError, ValueError, TypeError, SyntaxError):
            built = None  # saved by another version
        keys = {"hashes", "files", "frames", "counts", "ids", "digests"}
        if built is None or not keys <= set(z) or (cfg is not None and built != cfg):
            raise EdgeavError(f"landmark index {path} was built with other settings", "rebuild it with edgeav index")
        idx = cls(built)
        idx.hashes, idx.files, idx.frames, idx.counts = z["hashes"], z["files"], z["frames"], z["counts"]
        idx.ids, idx.digests = [str(s) for s in z["ids"]], [str(s) for s in z["digests"]]
        return idx


def _neighbour_max(keys: np.ndarray, votes: np.ndarray, reach: int = 2) -> np.ndarray:
    """Per (file, offset) key, the most votes among the same file's offsets within ±reach (itself included)."""
    out = votes.copy()
    for d in range(-reach, reach + 1):
        if d:
            hit, j = _offset_neighbour(keys, d)
            out[hit] = np.maximum(out[hit], votes[j])
    return out


def _offset_neighbour(keys: np.ndarray, d: int, where: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Which of the sorted (file, offset) keys (those at `where`, or all) have the same file's key `d` frames on,
    and where it is in `keys`."""
    probe = (keys if where is None else keys[where]) + d
    j = np.searchsorted(keys, probe)
    hit = (j < len(keys)) & (keys[np.minimum(j, len(keys) - 1)] == probe)
    return hit, j[hit]


def _tally(key: np.ndarray, weight: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """The distinct keys, sorted, and the summed weight (or count, without weights) of each."""
    if weight is None:
        key = np.sort(key)
        starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
        return key[starts], np.diff(np.r_[starts, len(key)]).astype(np.float64)
    keys, inv = np.unique(key, return_inverse=True)
    return keys, np.bincount(inv, weights=weight)


def unit_opening(wave: np.ndarray, cfg: LandmarkConfig) -> np.ndarray:
    """A library sound's opening as the exact matcher's template: zero mean, unit norm (float32)."""
    w = np.asarray(wave, np.float64)[: int(cfg.template_s * cfg.sample_rate)]
    w = w - w.mean()
    return (w / max(np.linalg.norm(w), 1e-12)).astype(np.float32)


def verify(
    x: np.ndarray, cands: list[tuple[float, int, float]], opening: Callable[[int], np.ndarray], cfg: LandmarkConfig
) -> list[tuple[float, int, float]]:
    """(start s to the sample, file index, normalized cross-correlation) of each candidate: its template slid over
    the soundtrack within a hop either side of the voted start (gain-invariant, as the exact matcher)."""
    x = np.asarray(x, np.float32)
    out = []
    for t, j, _ in cands:
        w = opening(j)
        start = int(round(t * cfg.sample_rate)) - cfg.hop
        lo = max(0, start)
        seg = x[lo : start + 2 * cfg.hop + len(w) + 1]
        if len(seg) < len(w):
            continue
        num = np.correlate(seg, w, "valid")
        c2 = np.concatenate([[0.0], np.cumsum(seg.astype(np.float64) ** 2)])
        ncc = num / np.sqrt(np.maximum(c2[len(w) :] - c2[: len(c2) - len(w)], 1e-12))
        i = int(np.argmax(ncc))
        out.append(((lo + i) / cfg.sample_rate, j, float(ncc[i])))
    return out


def whitening_filter(x: np.ndarray, order: int) -> np.ndarray:
    """The prediction-error filter (order + 1 taps, the first 1) of a linear predictor fitted to `x`: `x` through it
    has a flat spectrum. Matched filtering after it weighs each band by how little the soundtrack holds there, the
    matched filter for a sound under coloured noise (music, other effects)."""
    x = np.asarray(x, np.float64)
    if order <= 0 or len(x) <= order:
        return np.ones(1)
    r = np.array([np.dot(x[: len(x) - k], x[k:]) for k in range(order + 1)])
    if r[0] <= 1e-12:  # silence: nothing to flatten
        return np.ones(1)
    r[0] *= 1 + 1e-3  # a little white noise keeps the system well-posed for tonal soundtracks
    toeplitz = r[np.abs(np.subtract.outer(np.arange(order), np.arange(order)))]
    return np.r_[1.0, -np.linalg.solve(toeplitz, r[1:])]


def _filtered(a: np.ndarray, x: np.ndarray) -> np.ndarray:
    return np.convolve(np.asarray(x, np.float32), a.astype(np.float32))[: len(x)]


def _subtract(x: np.ndarray, start: float, w: np.ndarray, rate: int) -> None:
    """Take the unit template `w`'s least-squares fit at `start` out of `x` (in place)."""
    i = int(round(start * rate))
    seg = x[i : i + len(w)]
    seg -= np.dot(seg, w[: len(seg)]) * w[: len(seg)]


def _start(d: tuple[float, int, float]) -> float:
    return d[0]


class _Residual:
    """A soundtrack with each start found so far taken out (its opening's least-squares fit): whitened, where the
    verifier correlates, and as heard, where a lookup hashes peaks again."""

    def __init__(self, x: np.ndarray, opening: Callable[[int], np.ndarray], cfg: LandmarkConfig) -> None:
        self.cfg, self.opening = cfg, opening
        self.a = whitening_filter(x, cfg.whiten_order)
        self.white = _filtered(self.a, x)
        self.heard = np.array(x, np.float32)
        self.kept: list[tuple[float, int, float]] = []  # the starts found (start s, file index, correlation), by time
        self._templates: dict[int, np.ndarray] = {}

    def template(self, j: int) -> np.ndarray:
        if j not in self._templates:
            self._templates[j] = unit_opening(_filtered(self.a, self.opening(j)), self.cfg)
        return self._templates[j]

    def overlapping(self, t: float, j: int) -> list[tuple[float, int, float]]:
        """The starts found whose openings overlap file `j`'s opening at `t`."""
        rate = self.cfg.sample_rate
        lo = bisect.bisect_right(self.kept, t - self.cfg.template_s, key=_start)
        hi = bisect.bisect_left(self.kept, t + len(self.template(j)) / rate, key=_start)
        return [k for k in self.kept[lo:hi] if t < k[0] + len(self.template(k[1])) / rate]

    def take(self, cands: list[tuple[float, int, float]]) -> list[tuple[float, int, float]]:
        """Verify the candidates best first; keep and subtract each that passes: the starts it added."""
        cfg, new = self.cfg, []
        for d in sorted(verify(self.white, cands, self.template, cfg), key=lambda d: -d[2]):
            if d[2] < cfg.retry_floor:
                break  # best first: none after it reaches the floor, even on a residual
            touched = self.overlapping(d[0], d[1])
            if touched:  # verified before the starts it overlaps were taken out: again, on the residual
                again = verify(self.white, [d], self.template, cfg)
                if not again:
                    continue
                d = again[0]
                close = any(abs(d[0] - k[0]) < cfg.nms_s for k in touched)
                if self.holds(d, touched) or d[2] < (cfg.overlap_floor if close else cfg.floor):
                    continue
            elif d[2] < cfg.floor:
                continue  # (one that overlaps a start found later may still reach it on the residual)
            bisect.insort(self.kept, d, key=_start)
            new.append(d)
            _subtract(self.white, d[0], self.template(d[1]), cfg.sample_rate)
            _subtract(self.heard, d[0], self.opening(d[1]), cfg.sample_rate)
        return new

    def holds(self, d: tuple[float, int, float], near: list[tuple[float, int, float]]) -> bool:
        """Whether `d`'s file is among the starts `near` it within two hops of it (the same start)."""
        reach = 2 * self.cfg.hop / self.cfg.sample_rate
        return any(k[1] == d[1] and abs(d[0] - k[0]) < reach for k in near)

    def heard_around(self, starts: list[tuple[float, int, float]], pad_s: float = 0.1) -> np.ndarray:
        """The residual as heard around `starts` (their openings and `pad_s` either side), silence elsewhere."""
        rate, near = self.cfg.sample_rate, np.zeros(len(self.heard), bool)
        for t, _, _ in starts:
            near[max(0, int((t - pad_s) * rate)) : int((t + self.cfg.template_s + pad_s) * rate)] = True
        return np.where(near, self.heard, 0).astype(np.float32)


def find_starts(
    x: np.ndarray, index: LandmarkIndex, opening: Callable[[int], np.ndarray]
) -> list[tuple[float, int, float]]:
    """(start s, file index, correlation) of each library sound found in the soundtrack `x`, in time order.

    The index's candidates are verified by the exact matcher on the whitened soundtrack (`whiten_order`), best
    first, and each start found is subtracted from it (its opening's fit): a candidate that overlaps a found start
    is verified again on that residual, so two sounds that start together are both found, while a variant that only
    matched the louder sound's waveform is not. A start within `nms_s` of a found one needs `overlap_floor` there.
    A sound masked by a louder one that starts with it has few peaks of its own in the soundtrack: the residual
    around the starts found is looked up again (`residual_lookups` times)."""
    residual = _Residual(x, opening, index.cfg)
    new = residual.take(index.candidates(x))
    for _ in range(index.cfg.residual_lookups):
        if not new:
            break
        cands = [
            c
            for c in index.candidates(residual.heard_around(new))
            if not residual.holds(c, residual.overlapping(c[0], c[1]))
        ]
        new = residual.take(cands)
    return sorted(residual.kept)


def read_opening(path: str | Path, cfg: LandmarkConfig = LandmarkConfig()) -> np.ndarray | None:
    """A library file's opening at the config's rate, or None if it is unreadable or silent (not matched)."""
    from edgeav.io.audio import read_audio

    try:
        a = read_audio(path, cfg.sample_rate, max_seconds=cfg.template_s).astype(np.float32)
    except Exception:  # noqa: BLE001 -- an unreadable file is the bank's to report; here it is just not matched
        return None
    return a if len(a) >= 16 and np.linalg.norm(a - a.mean()) > 1e-6 else None


def index_library(
    files: dict[str, Path], digests: dict[str, str], previous: LandmarkIndex | None = None, **fields: object
) -> tuple[LandmarkIndex, dict]:
    """The landmark index of `files` (id → path) with the settings for their number (`LandmarkConfig.for_library`,
    `fields` overriding), reusing `previous` for files whose content hash is unchanged if it hashes alike (its
    lookup settings become these): (index, {"added", "kept", "dropped", "unmatchable", "hashes": "pairs" |
    "triplets"})."""
    cfg = LandmarkConfig.for_library(len(files), **fields)
    index = previous if previous is not None and previous.cfg.hashes_like(cfg) else LandmarkIndex(cfg)
    index.cfg = cfg
    before = dict(zip(index.ids, index.digests))
    same = {i for i, d in before.items() if digests.get(i) == d and i in files}
    index.keep(same)
    new_ids, waves, new_digests, unmatchable = [], [], [], []
    for sid in sorted(set(files) - same):
        w = read_opening(files[sid], index.cfg)
        if w is None:
            unmatchable.append(sid)
            continue
        new_ids.append(sid), waves.append(w), new_digests.append(digests.get(sid, ""))
    index.add_many(new_ids, waves, new_digests)
    return index, {
        "added": len(new_ids),
        "kept": len(same),
        "dropped": len(set(before) - same),
        "unmatchable": unmatchable,
        "hashes": cfg.hashing,
    }


class Openings:
    """The index's files' openings as matcher templates, read when first asked for (a lookup verifies a few)."""

    def __init__(self, index: LandmarkIndex, files: dict[str, Path]) -> None:
        self.index, self.files, self._cache = index, files, {}

    def __call__(self, j: int) -> np.ndarray:
        if j not in self._cache:
            self._cache[j] = unit_opening(self.heard(j), self.index.cfg)
        return self._cache[j]

    def heard(self, j: int) -> np.ndarray:
        """File `j`'s opening as it sounds (what the index hashes)."""
        w = read_opening(self.files[self.index.ids[j]], self.index.cfg)
        return w if w is not None else np.zeros(16, np.float32)


def subset_index(index: LandmarkIndex, files: list[int], heard: Callable[[int], np.ndarray]) -> LandmarkIndex:
    """An index of `index`'s files `files` alone (their openings as heard: `heard(j)`), hashed with the settings
    for their number, its files numbered as in `index` (the same templates verify them)."""
    files = sorted(files)
    sub = LandmarkIndex(LandmarkConfig.for_library(len(files)))
    sub.add_many([index.ids[j] for j in files], [heard(j) for j in files])
    counts = np.zeros(len(index.ids), np.int32)
    counts[files] = sub.counts
    sub.files = np.asarray(files, np.int32)[sub.files]
    sub.ids, sub.digests, sub.counts = list(index.ids), [""] * len(index.ids), counts
    return sub


class FootageSearch:
    """Every start of a library's files in the soundtracks of one footage.

    A footage plays few of a large library's files. A library hashed in triplets is searched in two passes:
    `survey` each soundtrack for which files play in it (a file's strongest candidates verified until one passes;
    a file already known is not verified again), then `find` every start of those files alone with an index of
    them hashed as the small library they are (pairs): a sound's pairs survive music that breaks its triplets, and
    a small index's hashes are not crowded out. A library hashed in pairs is searched directly (`survey` is a
    no-op). `present` holds the files surveyed so far (save it to resume)."""

    def __init__(
        self, index: LandmarkIndex, opening: Callable[[int], np.ndarray], heard: Callable[[int], np.ndarray]
    ) -> None:
        self.index, self.opening, self.heard = index, opening, heard
        self.present: set[int] = set()
        self.two_pass = index.cfg.peaks_per_hash == 3
        self._focused: LandmarkIndex | None = None
        self._focused_on: frozenset[int] = frozenset()

    def survey(self, x: np.ndarray, tries: int = 2) -> None:
        """Add the library files that play in soundtrack `x` to `present` (each file's `tries` strongest candidates
        verified at most)."""
        if not self.two_pass:
            return
        residual, tried = _Residual(x, self.opening, self.index.cfg), dict.fromkeys(self.present, tries)
        for t, j, votes in self.index.candidates(x, self.index.cfg.survey_fan_out):  # strongest first
            if tried.get(j, 0) >= tries:
                continue
            tried[j] = tried.get(j, 0) + 1
            d = verify(residual.white, [(t, j, votes)], residual.template, self.index.cfg)
            if d and d[0][2] >= self.index.cfg.floor:
                self.present.add(j)
                tried[j] = tries

    def find(self, x: np.ndarray) -> list[tuple[float, int, float]]:
        """(start s, file index, correlation) of each start in `x` of the library's files (two-pass: of the files
        surveyed in the footage so far), in time order."""
        if not self.two_pass:
            return find_starts(x, self.index, self.opening)
        if not self.present:
            return []
        if self._focused is None or self._focused_on != self.present:
            self._focused = subset_index(self.index, sorted(self.present), self.heard)
            self._focused_on = frozenset(self.present)
        return find_starts(x, self._focused, self.opening)


def landmarks_path(bank: str | Path) -> Path:
    """Where a bank keeps its library's landmark index: BANK.landmarks.npz beside BANK.npz."""
    return Path(bank).with_suffix(".landmarks.npz")


def update_bank_landmarks(bank: str | Path, files: dict[str, Path], digests: dict[str, str]) -> dict:
    """Bring the bank's landmark index up to date with its files (only new or changed ones are hashed): the report
    of index_library, and whether an unreadable or outdated index was rebuilt."""
    path = landmarks_path(bank)
    previous, saved, rebuilt = None, None, False
    if path.exists():
        try:
            previous = LandmarkIndex.load(path)
            saved = previous.cfg
        except EdgeavError:
            rebuilt = True  # another version's settings or a damaged file: hash the library again
    index, report = index_library(files, digests, previous)
    if previous is not None and index is not previous:
        rebuilt = True  # the library grew past the size that hashes in triplets (or shrank below it)
    if report["added"] or report["dropped"] or rebuilt or previous is None or index.cfg != saved:
        index.save(path)
    return {**report, "rebuilt": rebuilt, "path": str(path)}
