"""The landmark index (edgeav.landmarks): the library's files found in a soundtrack without scanning the library,
verified by the exact matcher, kept beside the bank and updated file by file."""

import collections
import copy
import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from edgeav.errors import EdgeavError
from edgeav.landmarks import (
    LandmarkConfig,
    LandmarkIndex,
    Openings,
    find_starts,
    index_library,
    landmarks_path,
    read_opening,
)

ASSETS = Path(__file__).resolve().parents[1] / "edgeav" / "assets"


def _library(folder: Path) -> tuple[dict, dict]:
    from edgeav.atomic import sha1_file
    from edgeav.io import audio_files

    files = {p.relative_to(folder).as_posix(): p for p in audio_files(folder)}
    return files, {i: sha1_file(p) for i, p in files.items()}


@pytest.fixture(scope="module")
def bundled():
    files, digests = _library(ASSETS / "sounds")
    index, _ = index_library(files, digests)
    return index, Openings(index, files)


@pytest.fixture(scope="module")
def bundled_in_triplets():
    """The bundled library hashed as a large library is (triplets)."""
    import edgeav.landmarks as lm

    files, digests = _library(ASSETS / "sounds")
    index, rep = index_library(files, digests, **lm.TRIPLETS)
    assert rep["hashes"] == "triplets" and index.cfg == LandmarkConfig.for_library(10**6)
    return index, Openings(index, files)


@pytest.mark.parametrize("library", ["bundled", "bundled_in_triplets"])
def test_finds_the_real_clips_effects_where_they_fire(library, request):
    """The bundled funnyboat clip (real gameplay: music, overlapping shots, AAC) against the bundled library of
    67 sounds from six games, hashed in pairs (its size's) and in triplets (a large library's): most logged starts
    found within 60 ms, and the detections are real ones."""
    from edgeav.io import VideoFile

    index, openings = request.getfixturevalue(library)
    clip = ASSETS / "clips" / "funnyboat-s12_20-35.mp4"
    events = json.loads(clip.with_name(clip.stem + ".events.json").read_text())["sound_events"]
    v = VideoFile(clip, fps=None, sample_rate=16000)
    x = v.audio(0, v.duration + 1)
    v.close()
    found = [(t, index.ids[j]) for t, j, _ in find_starts(x, index, openings)]
    hit = np.mean([any(s == e["sound_id"] and abs(t - e["t"]) < 0.06 for t, s in found) for e in events])
    real = np.mean([any(s == e["sound_id"] and abs(t - e["t"]) < 0.06 for e in events) for t, s in found])
    assert len(events) > 20 and hit > 0.8 and real > 0.8, (hit, real, len(found))


def test_a_large_librarys_search_finds_the_files_present_and_at_least_the_one_pass_starts(bundled_in_triplets):
    """Triplet-hashed, the footage is surveyed for which files play, then searched with an index of those alone
    (pairs): on the bundled funnyboat clip the survey names the sounds logged more than once and no other, the starts
    found are real ones, and none of the one-pass lookup's starts is lost."""
    from edgeav.io import VideoFile
    from edgeav.landmarks import FootageSearch

    index, openings = bundled_in_triplets
    clip = ASSETS / "clips" / "funnyboat-s12_20-35.mp4"
    events = json.loads(clip.with_name(clip.stem + ".events.json").read_text())["sound_events"]
    v = VideoFile(clip, fps=None, sample_rate=16000)
    x = v.audio(0, v.duration + 1)
    v.close()
    search = FootageSearch(index, openings, openings.heard)
    assert search.two_pass and search.find(x) == []  # nothing surveyed: no file is known to play
    search.survey(x)
    logged = collections.Counter(e["sound_id"] for e in events)  # pam 18, kraah 3, blub once (under the others)
    assert {s for s, n in logged.items() if n > 1} <= {index.ids[j] for j in search.present} <= set(logged)
    found = [(t, index.ids[j]) for t, j, _ in search.find(x)]
    once = [(t, index.ids[j]) for t, j, _ in find_starts(x, index, openings)]
    real = np.mean([any(s == e["sound_id"] and abs(t - e["t"]) < 0.06 for e in events) for t, s in found])
    assert real > 0.9 and all(any(s == k and abs(t - u) < 0.01 for u, k in found) for t, s in once), (real, once)


@pytest.mark.parametrize("library", ["bundled", "bundled_in_triplets"])
def test_a_sound_is_found_at_any_gain_to_the_sample_and_never_in_its_absence(library, request):
    from edgeav.io.audio import read_audio

    index, openings = request.getfixturevalue(library)
    j = index.ids.index("funnyboat/kraah.ogg")
    wave = read_audio(ASSETS / "sounds" / index.ids[j], 16000)
    noise = 0.01 * np.random.default_rng(0).standard_normal(16000 * 6).astype(np.float32)
    x = noise.copy()
    for t, gain in ((1.0, 0.2), (3.5, 1.0)):
        i = int(t * 16000) + 3  # off the hop grid: the verifier places it to the sample
        x[i : i + len(wave)] += gain * wave[: len(x) - i]
    starts = [t for t, k, _ in find_starts(x, index, openings) if k == j]
    assert len(starts) == 2 and abs(starts[0] - 1.0) < 0.001 and abs(starts[1] - 3.5) < 0.001, starts
    assert not [k for _, k, _ in find_starts(noise, index, openings) if k == j]


def test_reindexing_hashes_only_new_and_changed_files_and_equals_a_fresh_index(tmp_path):
    lib = tmp_path / "lib"
    shutil.copytree(ASSETS / "sounds" / "funnyboat", lib / "funnyboat")
    files, digests = _library(lib)
    first, rep = index_library(files, digests)
    assert rep["added"] == len(files) and rep["kept"] == 0
    path = first.save(tmp_path / "bank.landmarks.npz")
    victims = sorted(files)
    (lib / victims[0]).unlink()  # removed
    shutil.copy(ASSETS / "sounds" / "solarwolf" / "shoot.wav", lib / victims[1])  # changed in place
    shutil.copy(ASSETS / "sounds" / "solarwolf" / "boxhit.wav", lib / "funnyboat" / "new.wav")  # added
    files, digests = _library(lib)
    again, rep = index_library(files, digests, LandmarkIndex.load(path))
    assert (rep["added"], rep["kept"], rep["dropped"]) == (2, len(files) - 2, 2)
    fresh, _ = index_library(files, digests)

    def rows(ix: LandmarkIndex) -> set:
        return {(int(h), ix.ids[f], int(t)) for h, f, t in zip(ix.hashes, ix.files, ix.frames)}

    assert sorted(again.ids) == sorted(fresh.ids) and rows(again) == rows(fresh)


def test_a_damaged_or_foreign_index_is_a_one_line_error(tmp_path):
    bad = tmp_path / "bank.landmarks.npz"
    bad.write_bytes(b"not an index")
    with pytest.raises(EdgeavError, match="not a landmark index"):
        LandmarkIndex.load(bad)
    index = LandmarkIndex(LandmarkConfig(fan_out=3))
    index.add_many(["a"], [np.random.default_rng(0).standard_normal(4000).astype(np.float32)])
    index.save(bad)
    assert LandmarkIndex.load(bad).cfg == LandmarkConfig(fan_out=3)  # loaded with the settings it was built with
    with pytest.raises(EdgeavError, match="other settings"):
        LandmarkIndex.load(bad, LandmarkConfig())
    np.savez(bad, hashes=index.hashes, config=np.array("[('no_such_setting', 1)]"))  # another version's
    with pytest.raises(EdgeavError, match="other settings"):
        LandmarkIndex.load(bad)
    assert read_opening(tmp_path / "missing.wav") is None  # not matched, not a crash


def test_a_library_that_grows_large_is_hashed_again_in_triplets(tmp_path, monkeypatch):
    import edgeav.landmarks as lm

    assert LandmarkConfig.for_library(lm.TRIPLETS_FROM - 1).peaks_per_hash == 2
    assert LandmarkConfig.for_library(lm.TRIPLETS_FROM).peaks_per_hash == 3
    lib = tmp_path / "lib"
    shutil.copytree(ASSETS / "sounds" / "funnyboat", lib)
    files, digests = _library(lib)
    bank = tmp_path / "bank.npz"
    rep = lm.update_bank_landmarks(bank, files, digests)
    assert rep["hashes"] == "pairs" and not rep["rebuilt"]
    monkeypatch.setattr(lm, "TRIPLETS_FROM", len(files) + 1)  # one more file makes it a large library
    shutil.copy(ASSETS / "sounds" / "solarwolf" / "boxhit.wav", lib / "new.wav")
    files, digests = _library(lib)
    rep = lm.update_bank_landmarks(bank, files, digests)
    assert rep["hashes"] == "triplets" and rep["rebuilt"] and rep["added"] == len(files)
    assert LandmarkIndex.load(landmarks_path(bank)).cfg.peaks_per_hash == 3
    rep = lm.update_bank_landmarks(bank, files, digests)  # and from then on updated file by file
    assert rep["added"] == 0 and rep["kept"] == len(files) and not rep["rebuilt"]


def test_edgeav_index_keeps_the_fingerprints_beside_the_bank(tmp_path):
    import torch

    from edgeav.backends.torch_backend import TorchBackend
    from edgeav.bank import index_sounds
    from edgeav.models import create_model, save_model

    lib = tmp_path / "lib"
    shutil.copytree(ASSETS / "sounds" / "funnyboat", lib)
    torch.manual_seed(0)
    encoder = TorchBackend(str(save_model(create_model("tiny"), tmp_path / "tiny")))
    bank, rep = index_sounds(encoder, [lib], tmp_path / "bank.npz", progress=False)
    stored = LandmarkIndex.load(landmarks_path(tmp_path / "bank.npz"))
    assert sorted(stored.ids) == sorted(bank.ids) and rep["landmarks"]["added"] == len(bank)
    _, rep = index_sounds(encoder, [lib], tmp_path / "bank.npz", progress=False)
    assert rep["landmarks"]["added"] == 0 and rep["landmarks"]["kept"] == len(bank)


def test_the_runtime_indexes_without_the_training_extra(tmp_path):
    """`edgeav index` is runtime: hashing a library must not need scipy (only the [train] extra has it)."""
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['scipy'] = None\n"
        "from pathlib import Path\n"
        "from edgeav.landmarks import index_library\n"
        f"lib = Path({str(ASSETS / 'sounds' / 'funnyboat')!r})\n"
        "files = {p.name: p for p in lib.iterdir()}\n"
        "index, rep = index_library(files, {i: '' for i in files})\n"
        "print(rep['added'], len(index.hashes))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-1500:]
    added, hashes = map(int, r.stdout.split())
    assert added == len(list((ASSETS / "sounds" / "funnyboat").iterdir())) and hashes > 0


def test_a_click_of_a_few_frames_is_found_under_music_like_noise():
    """A 25 ms click spans a few frames: it is hashed with more peaks than a longer sound, and a handful of votes
    (half its hashes) makes it a candidate; the verifier keeps the precision."""
    rng = np.random.default_rng(1)
    n = 400  # 25 ms at 16 kHz
    click = (rng.standard_normal(n) * np.exp(-np.arange(n) / 80.0)).astype(np.float32)
    tone = rng.standard_normal(4000).astype(np.float32)  # another library file, to share the index
    x = 0.02 * rng.standard_normal(16000 * 6).astype(np.float32)
    x += 0.05 * np.sin(2 * np.pi * 330 * np.arange(len(x)) / 16000).astype(np.float32)  # a held note under it
    for t in (1.0, 2.5, 4.2):
        i = int(t * 16000) + 5
        x[i : i + n] += 0.5 * click

    def found(cfg: LandmarkConfig) -> list[float]:
        index = LandmarkIndex(cfg)
        index.add_many(["click", "noise"], [click, tone])
        assert index.counts[0] >= min(cfg.min_hashes, 10)
        openings = {0: click, 1: tone}
        from edgeav.landmarks import unit_opening

        return [t for t, j, _ in find_starts(x, index, lambda j: unit_opening(openings[j], cfg)) if j == 0]

    # one falling half a hop off the frame grid shows other peaks and is missed; hashing half-hop-shifted copies
    # found it but cost precision on the corpus's clips, so a click there stays the index's known miss
    starts = found(LandmarkConfig())
    assert len(starts) == 2 and all(min(abs(s - t) for t in (1.0, 2.5, 4.2)) < 0.001 for s in starts), starts
    x[:] = 0.02 * rng.standard_normal(len(x)).astype(np.float32)
    assert not found(LandmarkConfig())  # and never where it does not play


def _mix(sounds: list[tuple[np.ndarray, float, float]], seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Quiet noise with each (wave, start s, gain) added at its start."""
    x = 0.01 * rng.standard_normal(int(seconds * 16000)).astype(np.float32)
    for wave, t, gain in sounds:
        i = int(t * 16000)
        x[i : i + len(wave)] += gain * wave[: len(x) - i]
    return x


@pytest.mark.parametrize(
    "names", [("solarwolf/shoot.wav", "funnyboat/kraah.ogg"), ("angrydd/break.wav", "whichwayisup/boing.ogg")]
)
def test_two_sounds_that_start_together_are_both_found(bundled, names):
    """Two effects the game plays on the same frame or one apart (a hit and the monster's cry): the louder one takes
    most of the soundtrack's peaks, so the other is found by looking the residual up again, once the louder one's
    opening is taken out, and verified there."""
    from edgeav.io.audio import read_audio

    index, openings = bundled
    waves = [read_audio(ASSETS / "sounds" / n, 16000) for n in names]
    rng = np.random.default_rng(3)
    for dt in (0.0, 0.02, 0.045):
        for gain in (1.0, 0.5):
            x = _mix([(waves[0], 1.0, 1.0), (waves[1], 1.0 + dt, gain)], 3.0, rng)
            found = {index.ids[j]: t for t, j, _ in find_starts(x, index, openings)}
            assert set(names) <= set(found), (dt, gain, found)
            assert abs(found[names[0]] - 1.0) < 0.001 and abs(found[names[1]] - 1.0 - dt) < 0.001, (dt, found)
    once = copy.copy(index)  # the same hashes, looked up once
    once.cfg = dataclasses.replace(index.cfg, residual_lookups=0)
    x = _mix([(waves[0], 1.0, 1.0), (waves[1], 1.0, 1.0)], 3.0, rng)
    assert names[1] not in {index.ids[j] for _, j, _ in find_starts(x, once, openings)}  # one lookup: masked


def test_a_variant_that_only_echoes_the_louder_sound_is_not_a_second_start(bundled):
    """solarwolf's yboxhit is boxhit's close variant: where boxhit plays alone, the variant correlates with it too,
    but not with what is left once boxhit's fit is subtracted — one start, not two."""
    from edgeav.io.audio import read_audio

    index, openings = bundled
    box = read_audio(ASSETS / "sounds" / "solarwolf" / "boxhit.wav", 16000)
    x = _mix([(box, 0.7, 1.0), (box, 2.0, 0.4)], 3.0, np.random.default_rng(4))
    found = [(round(t, 2), index.ids[j]) for t, j, _ in find_starts(x, index, openings)]
    assert found == [(0.7, "solarwolf/boxhit.wav"), (2.0, "solarwolf/boxhit.wav")], found


def test_the_whitening_filter_flattens_a_coloured_soundtrack():
    """Noise through a resonant filter (music-like: most energy in a low band) comes out of the fitted prediction-
    error filter with a flat spectrum; silence gets the identity."""
    from edgeav.landmarks import whitening_filter

    rng = np.random.default_rng(5)
    e = rng.standard_normal(16000 * 4)
    x = np.zeros_like(e)
    for i in range(2, len(e)):  # an AR(2) resonance at ~500 Hz
        x[i] = e[i] + 1.8 * np.cos(2 * np.pi * 500 / 16000) * x[i - 1] - 0.81 * x[i - 2]

    def band_spread(y: np.ndarray) -> float:
        p = np.abs(np.fft.rfft(y.reshape(-1, 512) * np.hanning(512), axis=1)) ** 2
        bands = p.mean(0)[1:].reshape(16, -1).mean(1)
        return float(bands.max() / bands.min())

    a = whitening_filter(x, 16)
    assert a[0] == 1.0 and len(a) == 17
    flat = np.convolve(x, a)[: len(x)]
    assert band_spread(x) > 1000 and band_spread(flat) < 3, (band_spread(x), band_spread(flat))
    assert whitening_filter(np.zeros(1000), 16).tolist() == [1.0]


def test_an_index_with_other_lookup_settings_is_kept_and_only_its_settings_change(tmp_path):
    """A bank's index saved by a version that looked soundtracks up or verified them otherwise holds the same hashes:
    it is kept (nothing hashed again), and saved with today's settings."""
    import edgeav.landmarks as lm

    lib = tmp_path / "lib"
    shutil.copytree(ASSETS / "sounds" / "funnyboat", lib)
    files, digests = _library(lib)
    bank = tmp_path / "bank.npz"
    old, _ = index_library(files, digests, min_votes=9.0, whiten_order=0, residual_lookups=0)
    old.save(landmarks_path(bank))
    rep = lm.update_bank_landmarks(bank, files, digests)
    assert (rep["added"], rep["kept"], rep["rebuilt"]) == (0, len(files), False)
    assert LandmarkIndex.load(landmarks_path(bank)).cfg == LandmarkConfig.for_library(len(files))
    other, _ = index_library(files, digests, fan_out=3)  # hashed otherwise: hashed again
    other.save(landmarks_path(bank))
    rep = lm.update_bank_landmarks(bank, files, digests)
    assert rep["added"] == len(files) and rep["kept"] == 0 and rep["rebuilt"]
