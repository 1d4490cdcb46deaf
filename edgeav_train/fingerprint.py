"""Where does each library sound start in the footage's soundtrack? Label-free detection by matched filtering.

A game's footage plays the game's own sound files, so a studio's library holds the very waveforms its footage
contains. Each library sound's opening (the first `template_s` seconds) is matched to the soundtrack as a
normalized cross-correlation (gain-invariant: a game plays effects at any volume). By default the landmark index
(edgeav.landmarks: hashed pairs or triplets of spectral peaks) proposes where which file may start, and the
correlation verifies each proposal within a hop of it (`floor`), on the whitened soundtrack with each start found
taken out before the next is judged (two sounds that start together are both found). The full scan instead slides
every template over the whole soundtrack and keeps peaks that clear the template's best score on the time-reversed
soundtrack (which cannot contain the sound) by `margin`; of its detections closer than `nms_s`, the strongest wins.
No event log is read: the input is the unlabeled soundtrack and the library, as in stage 2's neural targets — only
a sharper matcher, and one that needs the library's exact files in the mix (a stock library heard through someone
else's footage needs the neural targets).

    python -m edgeav_train.fingerprint --cache .cache/gameplay --sounds ../shared/data/gameplay/sounds \
        [--shard 0/2] [--full-scan]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from scipy import fft as sp_fft

from edgeav.atomic import write_json
from edgeav.io import audio_files


@dataclass(frozen=True)
class FingerprintConfig:
    sample_rate: int = 16000  # matching rate. 16 kHz keeps short clicks (the landmark index on 14 train clips:
    # angrydd's 32 ms rotate click 73% found, 7% at 8 kHz); a second index at 8 kHz beside it found no more
    template_s: float = 0.25  # the opening of each library sound that is matched
    margin: float = 0.1  # a peak must beat the template's best score on the reversed soundtrack by this
    floor: float = 0.3  # and reach at least this correlation
    nms_s: float = 0.06  # detections closer than this (any sounds) keep only the strongest
    landmarks: bool = True  # candidates from the landmark index (edgeav.landmarks), the matcher verifying only
    # those (the corpus's 206 files on 14 train clips: precision 0.99, recall 0.88, 140 footage minutes per
    # CPU-minute); False: every template over the whole soundtrack, its best on the reversed soundtrack as the null
    # (val: precision 0.85, recall 0.66, 10 footage minutes per CPU-minute)

    def landmark_fields(self) -> dict:
        """The landmark index's settings this config sets; the rest follow the library's size."""
        return {
            "sample_rate": self.sample_rate,
            "template_s": self.template_s,
            "floor": self.floor,
            "nms_s": self.nms_s,
        }


class Templates:
    """The library's openings, and their spectra at the FFT size of the soundtracks being searched (computed once
    per size: clips of one length share them)."""

    def __init__(self, folder: str | Path, cfg: FingerprintConfig = FingerprintConfig()) -> None:
        from edgeav.landmarks import LandmarkConfig, read_opening, unit_opening

        self.cfg = cfg
        self.ids, waves = [], []
        opening = LandmarkConfig(**cfg.landmark_fields())  # the same opening as the landmark index's verifier matches
        for p in audio_files(folder):
            if (a := read_opening(p, opening)) is not None:  # unreadable or silent files are just not matched
                self.ids.append(Path(p).relative_to(folder).as_posix())
                waves.append(unit_opening(a, opening).astype(np.float64))
        self.waves = waves
        self._spectra: dict[int, list[np.ndarray]] = {}  # by FFT size: clips of one length share them

    def spectra(self, n_fft: int) -> list[np.ndarray]:
        if n_fft not in self._spectra:
            # float32 spectra: half the memory traffic of float64, and correlations stay exact to ~1e-6
            self._spectra = {n_fft: [np.conj(sp_fft.rfft(w.astype(np.float32), n_fft)) for w in self.waves]}
        return self._spectra[n_fft]

    def correlations(self, x: np.ndarray) -> list[np.ndarray]:
        """Normalized cross-correlation of every template at every lag of `x` (one array per template)."""
        n_fft = 1 << int(np.ceil(np.log2(len(x) + self.cfg.template_s * self.cfg.sample_rate)))
        X = sp_fft.rfft(x.astype(np.float32), n_fft)
        energy = np.concatenate([[0.0], np.cumsum(x.astype(np.float64) ** 2)])
        out = []
        for w, S in zip(self.waves, self.spectra(n_fft)):
            n = len(x) - len(w) + 1
            num = sp_fft.irfft(X * S, n_fft)[:n]
            out.append(num / np.sqrt(np.maximum(energy[len(w) : len(w) + n] - energy[:n], 1e-12)))
        return out


def _peaks(c: np.ndarray, threshold: float, min_gap: int) -> list[int]:
    above = np.flatnonzero(c > threshold)
    out: list[int] = []
    for i in above:
        if out and i - out[-1] < min_gap:
            if c[i] > c[out[-1]]:
                out[-1] = i
            continue
        out.append(int(i))
    return out


def detect(x: np.ndarray, templates: Templates) -> list[tuple[float, int, float]]:
    """(start s, template index, margin over the null) of each library sound found in the soundtrack `x` (at the
    templates' sample rate), in time order."""
    cfg = templates.cfg
    null = [float(c.max(initial=0.0)) for c in templates.correlations(x[::-1].copy())]
    cands = []
    for j, c in enumerate(templates.correlations(x)):
        gap = len(templates.waves[j])  # one start per template length: a sound does not match its own tail
        cands += [
            (i / cfg.sample_rate, j, float(c[i]) - null[j])
            for i in _peaks(c, max(cfg.floor, null[j] + cfg.margin), gap)
        ]
    kept: list[tuple[float, int, float]] = []
    for d in sorted(cands, key=lambda d: -d[2]):
        if all(abs(d[0] - k[0]) >= cfg.nms_s for k in kept):
            kept.append(d)
    return sorted(kept)


def fingerprint_dir(cache: str | Path, matcher: LibraryMatcher) -> Path:
    """Where the detections of `matcher`'s library by its method are kept (a new folder when either changes)."""
    method = asdict(matcher.index.cfg) if matcher.cfg.landmarks else asdict(matcher.cfg)
    if matcher.two_pass:
        method["search"] = "survey, then the files present"
    key = hashlib.sha1(f"{matcher.ids}{method}".encode()).hexdigest()[:12]
    return Path(cache) / f"fingerprints-{key}"


class LibraryMatcher:
    """Finds the library's files in a soundtrack, by the method `cfg` names: `find(x) -> [(t, index, score)]`."""

    def __init__(self, sounds: str | Path, cfg: FingerprintConfig) -> None:
        if cfg.landmarks:
            from edgeav.atomic import sha1_file
            from edgeav.landmarks import FootageSearch, Openings, index_library

            files = {p.relative_to(sounds).as_posix(): p for p in audio_files(sounds)}
            digests = {i: sha1_file(p) for i, p in files.items()}
            self.index, _ = index_library(files, digests, **cfg.landmark_fields())
            openings = Openings(self.index, files)
            self.ids, self.search = self.index.ids, FootageSearch(self.index, openings, openings.heard)
        else:
            self.templates = Templates(sounds, cfg)
            self.ids = self.templates.ids
        self.cfg = cfg

    @property
    def two_pass(self) -> bool:
        """Whether the footage is surveyed for which files play before their starts are found (a large library)."""
        return self.cfg.landmarks and self.search.two_pass

    def survey(self, x: np.ndarray) -> None:
        if self.two_pass:
            self.search.survey(x)

    def find(self, x: np.ndarray) -> list[tuple[float, int, float]]:
        if self.cfg.landmarks:
            return self.search.find(x)
        return detect(np.asarray(x, np.float64), self.templates)


def _soundtrack(source: str, rate: int) -> np.ndarray:
    """A clip's soundtrack, mono at `rate`."""
    from scipy.signal import resample_poly

    from edgeav.io import VideoFile

    v = VideoFile(source, fps=None, sample_rate=16000, require_audio=True)
    x = v.audio(0, v.duration + 1)
    v.close()
    return resample_poly(x, rate, 16000) if rate != 16000 else x


def survey_footage(matcher: LibraryMatcher, sources: list[str], out: Path) -> None:
    """For a two-pass matcher: which library files play anywhere in the footage (every clip, whatever the shard),
    kept in OUT/present.json so a resumed run finds the same files."""
    path = out / "present.json"
    if path.exists():
        where = {s: j for j, s in enumerate(matcher.ids)}
        matcher.search.present = {where[s] for s in json.loads(path.read_text())["present"] if s in where}
        return
    t0 = time.perf_counter()
    for i, src in enumerate(sources):
        matcher.survey(_soundtrack(src, matcher.cfg.sample_rate))
        print(f"[survey {i + 1}/{len(sources)}] {len(matcher.search.present)} library files heard so far", flush=True)
    write_json(path, {"present": sorted(matcher.ids[j] for j in matcher.search.present)})
    print(f"survey: {len(matcher.search.present)} library files play in the footage ({time.perf_counter() - t0:.0f} s)")


def detect_footage(
    cache: str | Path,
    sounds: str | Path,
    cfg: FingerprintConfig = FingerprintConfig(),
    splits=("train",),
    shard: tuple[int, int] = (0, 1),
) -> Path:
    """Detections for every clip of `splits` in the cache, one JSON per clip (resumable; `shard` i/n splits the
    clips between processes): {"ids": library ids, "detections": [[t, index, score], ...]}."""
    matcher = LibraryMatcher(sounds, cfg)
    out = fingerprint_dir(cache, matcher)
    out.mkdir(parents=True, exist_ok=True)
    manifest = json.loads((Path(cache) / "manifest.json").read_text())
    every = sorted(k for k, e in manifest["clips"].items() if e["split"] in splits)
    keys = every[shard[0] :: shard[1]]
    if matcher.two_pass and not all((out / f"{k}.json").exists() for k in keys):
        survey_footage(matcher, [manifest["clips"][k]["source"] for k in every], out)
    t0 = time.perf_counter()
    for i, key in enumerate(keys):
        if (out / f"{key}.json").exists():
            continue
        found = matcher.find(_soundtrack(manifest["clips"][key]["source"], cfg.sample_rate))
        write_json(
            out / f"{key}.json",
            {"ids": matcher.ids, "detections": [[round(t, 4), j, round(m, 4)] for t, j, m in found]},
        )
        print(f"[{i + 1}/{len(keys)}] {key}: {len(found)} starts ({time.perf_counter() - t0:.0f} s)", flush=True)
    return out


def load_detections(folder: Path, keys: list[str]) -> tuple[list[str], dict[str, list]]:
    """(library ids, clip → detections) for the clips that have been fingerprinted."""
    ids, found = None, {}
    for k in keys:
        p = folder / f"{k}.json"
        if p.exists():
            d = json.loads(p.read_text())
            ids = ids or d["ids"]
            found[k] = d["detections"]
    return ids or [], found


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cache", default=".cache/gameplay")
    ap.add_argument("--sounds", required=True)
    ap.add_argument("--shard", default="0/1", help="i/n: this process takes every n-th clip from the i-th")
    ap.add_argument("--margin", type=float, default=FingerprintConfig.margin)
    ap.add_argument("--rate", type=int, default=FingerprintConfig.sample_rate)
    ap.add_argument("--full-scan", action="store_true", help="every template over the whole soundtrack")
    a = ap.parse_args()
    i, n = map(int, a.shard.split("/"))
    cfg = FingerprintConfig(sample_rate=a.rate, margin=a.margin, landmarks=not a.full_scan)
    print(detect_footage(a.cache, a.sounds, cfg, shard=(i, n)))
