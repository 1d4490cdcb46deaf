"""`edgeav index` and `edgeav run`: bank updates, JSONL schema, auto-foley video, live-source behaviour."""

import functools
import http.server
import json
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from edgeav import EdgeavError
from edgeav.backends.torch_backend import TorchBackend
from edgeav.bank import SoundBank, index_sounds
from edgeav.io import VideoFile
from edgeav.io.sources import LiveSource
from edgeav.models import create_model, save_model
from edgeav.pipeline import RunConfig, WindowAssembler, run

from conftest import ASSETS
from media import make_audio

CLIP = ASSETS / "clips" / "solarwolf-s11_10-40.mp4"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    torch.manual_seed(0)
    return str(save_model(create_model("tiny"), tmp_path_factory.mktemp("m") / "tiny"))


@pytest.fixture()
def sounds(tmp_path):
    d = tmp_path / "lib"
    shutil.copytree(ASSETS / "sounds" / "funnyboat", d / "boat")
    make_audio(d / "tones" / "a.flac", rate=48000, channels=2)
    (d / "tones" / "broken.wav").write_bytes(b"RIFF\x00\x00garbage")
    return d


def test_index_is_incremental_and_lists_bad_files(tiny, sounds, tmp_path):
    be = TorchBackend(tiny)
    out = tmp_path / "bank.npz"
    bank, rep = index_sounds(be, [sounds], out, progress=False, model_id=be.model_id)
    assert rep["added"] == 5 and list(rep["skipped"]) == ["tones/broken.wav"]
    assert "broken.wav" in rep["skipped"]["tones/broken.wav"] and "\n" not in rep["skipped"]["tones/broken.wav"]
    assert "boat/kraah.ogg" in bank.ids and bank.categories[bank.ids.index("boat/kraah.ogg")] == "boat"
    mtime = out.stat().st_mtime_ns
    bank2, rep2 = index_sounds(be, [sounds], out, progress=False, model_id=be.model_id)
    assert rep2["added"] == 0 and rep2["kept"] == 5 and out.stat().st_mtime_ns == mtime  # no work, no write
    (sounds / "boat" / "kraah.ogg").unlink()
    make_audio(sounds / "tones" / "b.wav", freq=880)
    bank3, rep3 = index_sounds(be, [sounds], out, progress=False, model_id=be.model_id)
    assert (rep3["added"], rep3["dropped"], rep3["kept"]) == (1, 1, 4)
    assert "tones/b.wav" in SoundBank.load(out).ids and "boat/kraah.ogg" not in SoundBank.load(out).ids
    s, i = bank3.search(bank3.embeddings[:2], 3)
    assert (i[:, 0] == [0, 1]).all() and np.allclose(s[:, 0], 1, atol=1e-5)  # exact search finds itself first


def test_index_errors_are_one_line(tiny, tmp_path):
    be = TorchBackend(tiny)
    (tmp_path / "empty").mkdir()
    for roots in ([tmp_path / "empty"], [tmp_path / "missing"]):
        with pytest.raises(EdgeavError) as e:
            index_sounds(be, roots, tmp_path / "b.npz", progress=False)
        assert "\n" not in str(e.value)
    (tmp_path / "notabank.npz").write_text("x")
    with pytest.raises(EdgeavError):
        SoundBank.load(tmp_path / "notabank.npz")


def _check_schema(lines, top_k):
    assert lines
    prev = -1
    for rec in map(json.loads, lines):
        assert set(rec) - {"placed"} == {"type", "t", "t_end", "recommendations", "latency_ms"}
        assert rec["type"] == "window"
        if "placed" in rec:  # the window's top sound placed by auto-foley, 0.2 s into the window
            p = rec["placed"]
            assert set(p) == {"t", "sound", "file", "category", "score", "duration"}
            assert p["sound"] == rec["recommendations"][0]["sound"] and p["t"] == pytest.approx(rec["t"] + 0.2)
        assert rec["t"] > prev and rec["t_end"] == pytest.approx(rec["t"] + 1.0)
        prev = rec["t"]
        assert len(rec["recommendations"]) == top_k
        scores = [r["score"] for r in rec["recommendations"]]
        assert scores == sorted(scores, reverse=True)
        assert all(set(r) == {"sound", "category", "score"} and "/" in r["sound"] for r in rec["recommendations"])
        assert set(rec["latency_ms"]) == {"decode", "preprocess", "encode", "search", "total"}


def test_run_bundled_clip_jsonl_and_foley_video(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEAV_CACHE", str(tmp_path / "cache"))
    jl, mp4 = tmp_path / "out.jsonl", tmp_path / "foley.mp4"
    res = run(RunConfig(str(CLIP), model=tiny, top_k=3, jsonl=str(jl), save=str(mp4), threshold=-1.0, quiet=True))
    lines = jl.read_text().splitlines()
    _check_schema(lines, 3)
    assert len(lines) == res.windows == 60  # 30 s clip, hop 0.5: starts 0.0 … 29.5 (frames at +0.2, +0.4 s)
    assert res.placements and all(
        b[0] - a[0] >= 1.0 for a, b in zip(res.placements, res.placements[1:]) if a[1] == b[1]
    )
    v = VideoFile(mp4, fps=5)
    assert v.info.has_audio and abs(v.duration - 30) < 0.2 and len(list(v.frames())) >= 149
    # the effects are audible: the mix is louder than the original around the first placement
    t0 = res.placements[0][0]
    orig = VideoFile(CLIP).audio(t0, t0 + 0.2)
    assert np.abs(v.audio(t0, t0 + 0.2)).mean() > np.abs(orig).mean()


def test_a_file_run_embeds_its_windows_in_runs_and_writes_what_one_at_a_time_writes(tiny, tmp_path, monkeypatch):
    """Read as fast as possible, a file's windows go to the window encoder WINDOW_BATCH at a time (the last run
    shorter, handed on when the source ends); the lines are those of embedding each window alone."""
    import edgeav.pipeline
    from edgeav.steps import WindowStep

    sizes: list[int] = []
    many = WindowStep.many
    monkeypatch.setattr(WindowStep, "many", lambda self, ws: sizes.append(len(ws)) or many(self, ws))

    def lines(batch: int) -> list[dict]:
        monkeypatch.setattr(edgeav.pipeline, "WINDOW_BATCH", batch)
        out = tmp_path / f"b{batch}.jsonl"
        run(RunConfig(str(CLIP), model=tiny, top_k=3, jsonl=str(out), quiet=True, max_seconds=6.0))
        return [json.loads(x) for x in out.read_text().splitlines()]

    batched = lines(edgeav.pipeline.WINDOW_BATCH)
    assert len(batched) > 8 and sizes[:-1] == [8] * (len(sizes) - 1) and sum(sizes) == len(batched)
    sizes.clear()
    alone = lines(1)
    assert sizes == [1] * len(alone) and [r["t"] for r in alone] == [r["t"] for r in batched]
    for a, b in zip(alone, batched):
        assert [r["sound"] for r in a["recommendations"]] == [r["sound"] for r in b["recommendations"]]
        assert np.allclose(
            [r["score"] for r in a["recommendations"]], [r["score"] for r in b["recommendations"]], atol=1e-3
        )


def test_ctrl_c_still_writes_the_windows_of_every_frame_read_before_it(tiny, tmp_path, monkeypatch):
    """Windows waiting for their run of WINDOW_BATCH when Ctrl-C comes are embedded and written, like those of a run
    that stops at that frame by itself."""
    from edgeav.io.sources import FileSource

    frames = FileSource._frames
    seen: list[float] = []

    def interrupted(self):
        for t, frame in frames(self):
            if len(seen) == 37:
                raise KeyboardInterrupt
            seen.append(t)
            yield t, frame

    def lines(name: str, **kw) -> tuple:
        out = tmp_path / name
        res = run(RunConfig(str(CLIP), model=tiny, top_k=3, jsonl=str(out), quiet=True, **kw))
        return res, [json.loads(x)["t"] for x in out.read_text().splitlines()]

    monkeypatch.setattr(FileSource, "_frames", interrupted)
    res, got = lines("interrupted.jsonl")
    monkeypatch.undo()
    _, expected = lines("stopped.jsonl", max_seconds=seen[-1])
    assert res.ended_by == "interrupted" and len(got) % 8 and got == expected


def test_bad_sources_and_options_are_one_line(tiny, tmp_path):
    for cfg in (
        RunConfig(str(tmp_path / "nope.mp4"), model=tiny),
        RunConfig(str(CLIP), model=tiny, backend="cuda"),
        RunConfig(str(CLIP), model=tiny, precision="int8"),
        RunConfig(str(CLIP), model=tiny, bank=str(tmp_path / "nobank.npz")),
        RunConfig(str(CLIP), model=tiny, hop=0),
    ):
        with pytest.raises(EdgeavError) as e:
            run(cfg)
        assert "\n" not in str(e.value)


def test_assembler_latest_frame_windows():
    asm = WindowAssembler((0.2, 0.4), hop=0.5)
    got = []
    for k in range(30):  # 10 fps for 3 s
        got += [(s, st[:, 0, 0, 0].tolist()) for s, st in asm.push(k / 10, np.full((2, 2, 3), k, np.uint8))]
    assert [s for s, _ in got] == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5]
    assert got[1][1] == [7, 9]  # window 0.5: frames on screen at 0.7 and 0.9
    asm = WindowAssembler((0.2, 0.4), hop=0.5)
    asm.push(0.0, np.zeros((2, 2, 3), np.uint8))
    out = asm.push(60.0, np.zeros((2, 2, 3), np.uint8))  # a live source jumped a minute: no burst of stale windows
    assert len(out) <= 1


class _Server:
    """Serves a folder on 127.0.0.1; `stop()` ends it mid-stream."""

    def __init__(self, folder: Path, throttle_bytes_per_s: float | None = None):
        handler = functools.partial(_ThrottledHandler, directory=str(folder))
        _ThrottledHandler.rate = throttle_bytes_per_s
        _ThrottledHandler.stopped = threading.Event()
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        _ThrottledHandler.stopped.set()  # cut the transfers in flight, not only new connections
        self.httpd.shutdown()
        self.httpd.server_close()


class _ThrottledHandler(http.server.SimpleHTTPRequestHandler):
    rate = None
    stopped = threading.Event()

    def log_message(self, *a):
        pass

    def copyfile(self, source, outputfile):
        while chunk := source.read(16384):
            if self.stopped.is_set():
                self.close_connection = True
                return
            outputfile.write(chunk)
            if self.rate:
                time.sleep(len(chunk) / self.rate)


def test_network_stream_that_stops_ends_cleanly_with_complete_jsonl(tiny, tmp_path):
    be = TorchBackend(tiny)
    bank = tmp_path / "bank.npz"
    index_sounds(be, [ASSETS / "sounds" / "funnyboat"], bank, progress=False, model_id=be.model_id)
    shutil.copy(CLIP, tmp_path / "clip.mp4")
    size = (tmp_path / "clip.mp4").stat().st_size
    srv = _Server(tmp_path, throttle_bytes_per_s=size / 6)  # the 30 s clip arrives over ~6 s
    threading.Timer(2.5, srv.stop).start()  # the stream dies mid-run
    jl = tmp_path / "live.jsonl"
    t0 = time.time()
    res = run(RunConfig(f"http://127.0.0.1:{srv.port}/clip.mp4", model=tiny, bank=str(bank), jsonl=str(jl), quiet=True))
    assert time.time() - t0 < 60
    lines = jl.read_text().splitlines()
    assert lines and all(json.loads(x) for x in lines)  # every line complete
    assert res.source_stats["captured"] > 0 and res.ended_by != "interrupted"
    last = json.loads(lines[-1])["t"]
    assert 3.0 < last < 25.0  # windows follow the stream's own clock, and it really stopped mid-clip


def test_slow_consumer_drops_frames_and_keeps_latency_bounded(tmp_path):
    shutil.copy(CLIP, tmp_path / "clip.mp4")
    srv = _Server(tmp_path)
    src = LiveSource(f"http://127.0.0.1:{srv.port}/clip.mp4", size=(64, 48))
    ages = []
    try:
        for i, (t, _frame) in enumerate(src):
            ages.append(time.perf_counter() - src._t0 - t)  # how old the frame we get is
            time.sleep(0.05)  # a consumer slower than the decoder
            if i >= 20:
                break
    finally:
        src.close()
        srv.stop()
    assert src.stats["dropped"] > 0 and src.stats["delivered"] >= 20
    assert max(ages) < 0.5  # never a growing queue: the frame handed out is always the latest


def test_show_without_gui_is_one_line(tiny, tmp_path, monkeypatch):
    import cv2

    def no_gui(*a, **k):
        raise cv2.error("The function is not implemented")

    monkeypatch.setattr(cv2, "namedWindow", no_gui)
    with pytest.raises(EdgeavError) as e:
        run(RunConfig(str(CLIP), model=tiny, show=True, bank=None))
    assert "--show" in str(e.value) and "\n" not in str(e.value)


def test_faiss_search_matches_exact_search():
    pytest.importorskip("faiss", reason="faiss-cpu is the optional large-bank backend (edgeav[faiss])")
    rng = np.random.default_rng(0)
    emb = rng.standard_normal((2000, 32)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    bank = SoundBank([f"s{i}" for i in range(2000)], ["c"] * 2000, emb, [""] * 2000)
    q = emb[:10] + 0.05 * rng.standard_normal((10, 32)).astype(np.float32)
    s1, i1 = bank.search(q, 10, backend="numpy")
    s2, i2 = bank.search(q, 10, backend="faiss")
    assert (i1 == i2).all() and np.allclose(s1, s2, atol=1e-5)


def test_source_slower_than_real_time_keeps_latency_bounded_and_counts_drops(tiny, tmp_path):
    """A stream arriving at ~half speed (and, as network video does, in bursts): windows follow the stream clock,
    every frame is accounted for (delivered or counted as dropped), nothing piles up."""
    be = TorchBackend(tiny)
    bank = tmp_path / "bank.npz"
    index_sounds(be, [ASSETS / "sounds" / "funnyboat"], bank, progress=False, model_id=be.model_id)
    clip = ASSETS / "clips" / "funnyboat-s12_20-35.mp4"
    shutil.copy(clip, tmp_path / "slow.mp4")
    srv = _Server(tmp_path, throttle_bytes_per_s=(tmp_path / "slow.mp4").stat().st_size / 30)  # 15 s clip over 30 s
    t0 = time.time()
    try:
        res = run(
            RunConfig(
                f"http://127.0.0.1:{srv.port}/slow.mp4",
                model=tiny,
                bank=str(bank),
                quiet=True,
                max_seconds=3.0,
                search="numpy",
            )
        )
    finally:
        srv.stop()
    st = res.source_stats
    assert res.windows >= 2 and st["delivered"] >= res.windows
    assert st["captured"] - 1 <= st["delivered"] + st["dropped"] <= st["captured"]  # every frame accounted for
    assert time.time() - t0 > 4.0  # it really waited for the slow source (3 s of video at half speed)
    assert max(res.latency_ms["encode"]) < 2000  # waiting shows up as decode time, not as a growing backlog


def test_foley_gates_on_picture_change():
    """Auto-foley places an effect where the window's picture changes more than in most recent windows; a model
    calibrated with a foley rate has no score gate unless one is asked for; no calibration at all refuses --save."""
    from edgeav.foley import ChangeGate, frame_change
    from edgeav.pipeline import foley_gates
    from edgeav.steps import places_effect

    still = np.zeros((2, 48, 64, 3), np.uint8)
    flash = still.copy()
    flash[1, :24] = 255  # the top half turns white
    assert frame_change(still) == 0.0 and frame_change(flash) == 0.5
    from edgeav.models import ModelCard

    calibrated = ModelCard(foley_threshold=0.5, foley_rate=0.25)
    score, gate = foley_gates(RunConfig("x.mp4"), calibrated)
    assert score is None and gate.rate == 0.25
    assert foley_gates(RunConfig("x.mp4", threshold=0.3), calibrated)[0] == 0.3
    assert foley_gates(RunConfig("x.mp4"), ModelCard(foley_threshold=0.5)) == (0.5, None)  # a score gate only
    with pytest.raises(EdgeavError, match="no calibrated auto-foley threshold"):
        foley_gates(RunConfig("x.mp4", save="o.mp4"), ModelCard())
    with pytest.raises(EdgeavError, match="no calibrated auto-foley threshold"):
        foley_gates(RunConfig("x.mp4", cues="o.csv"), ModelCard())
    with pytest.raises(EdgeavError, match="foley-rate"):
        foley_gates(RunConfig("x.mp4", foley_rate=1.5), ModelCard())
    # relative to the footage: a flash among still windows is placed, the still windows are not
    gate = ChangeGate(0.25)
    placed = [places_effect(0.2, st, None, gate) for st in [still] * 6 + [flash] + [still] * 3]
    assert placed == [False] * 6 + [True] + [False] * 3
    busy = flash.copy()  # footage that always moves this much: only the windows moving more than usual are placed
    busy[1, :30] = 255
    gate = ChangeGate(0.25)
    assert [gate(st) for st in [flash] * 8 + [busy]][-1] and not ChangeGate(0.25)(still)
    assert not places_effect(0.9, flash, None, None)
    assert not places_effect(0.2, busy, 0.3, ChangeGate(0.5, warmup=1))  # the score gate still applies when asked
