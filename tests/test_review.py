"""The review page in a real headless browser (Debian's chromium driven by Playwright): load, play a suggestion at
its time, swap and nudge, accept and reject (into the verdicts store, seen by a second tab), an explanation on
demand, a missing sound file, and the export of the accepted cues. EDGEAV_SCREENSHOTS=DIR keeps the screenshots."""

import os
import shutil
import threading
import time
from pathlib import Path

import pytest

from edgeav import EdgeavError

from conftest import ASSETS

CLIP = ASSETS / "clips" / "solarwolf-s11_10-40.mp4"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--autoplay-policy=no-user-gesture-required",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--mute-audio",
]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    pytest.importorskip("fastapi")
    import uvicorn

    from edgeav.review import ReviewConfig, ReviewSession
    from edgeav.review.app import create_app

    d = tmp_path_factory.mktemp("review")
    session = ReviewSession.open(ReviewConfig(str(CLIP), feedback=str(d / "verdicts.jsonl"), port=0))
    session.start().join(timeout=300)
    assert session.done and not session.error and len(session.suggestions) >= 3
    # each suggestion's window is the one whose sound starts at it (an event's too): what "why?" and verdicts use
    assert all(abs(s.window_t + 0.2 - s.t) < 1e-6 for s in session.suggestions if s.t >= 0.2)
    srv = uvicorn.Server(uvicorn.Config(create_app(session), host="127.0.0.1", port=0, log_level="warning"))
    threading.Thread(target=srv.run, daemon=True).start()
    for _ in range(200):
        if srv.started:
            break
        time.sleep(0.05)
    port = srv.servers[0].sockets[0].getsockname()[1]
    yield session, f"http://127.0.0.1:{port}/", d
    srv.should_exit = True


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (.ci/setup dev installs Debian's chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def _shot(page, tmp: Path, name: str) -> None:
    page.screenshot(path=str(tmp / name))
    keep = os.environ.get("EDGEAV_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(tmp / name, Path(keep) / name)


def test_review_page_load_play_accept_export(server, browser):
    session, url, tmp = server
    page = browser.new_page(viewport={"width": 1300, "height": 820})
    page.goto(url)
    page.wait_for_function(f"document.querySelectorAll('.card').length == {len(session.suggestions)}")
    assert page.locator("img").first.evaluate("i => i.complete") is not None
    page.wait_for_function("[...document.querySelectorAll('.card img')].slice(0, 3).every(i => i.naturalWidth > 0)")
    _shot(page, tmp, "review-timeline.png")

    # play: the first suggestion's sound starts when the video reaches its time
    first = session.suggestions[0]
    page.evaluate(
        f"v => {{ const x = document.getElementById('video'); x.muted = true; "
        f"x.currentTime = {max(0.0, first.t - 0.6)}; return x.play(); }}",
        None,
    )
    page.wait_for_function("window.__played.some(p => p.index === 0)", timeout=15000)
    at = page.evaluate("document.getElementById('video').currentTime")
    assert abs(at - first.t) < 0.5, at
    page.evaluate("document.getElementById('video').pause()")

    # swap in the 2nd suggestion, nudge one frame later, accept
    card = page.locator("#card-0")
    second = first.recommendations[1]["sound"]
    card.locator("select.sound").select_option(second)
    card.locator("button.later").click()
    page.locator("#card-0 button.accept").click()
    page.wait_for_selector("#card-0.accept")
    stored = session.verdicts()
    assert stored == [{"t": round(first.t + 0.04, 3), "sound": second, "verdict": "accept"}]

    # an explanation on demand
    page.locator("#card-0 button.why").click()
    page.wait_for_function(
        "document.querySelector('#explain img') && document.querySelector('#explain img').naturalWidth > 0"
    )
    _shot(page, tmp, "review-explanation.png")

    # a second tab sees the verdict, and its own reject reaches the first tab
    other = browser.new_page(viewport={"width": 1300, "height": 820})
    other.goto(url)
    other.wait_for_selector("#card-0.accept")
    other.locator("#card-1 button.reject").click()
    other.wait_for_selector("#card-1.reject")
    page.wait_for_selector("#card-1.reject", timeout=10000)  # the first tab polls the store
    _shot(page, tmp, "review-accepted.png")

    # export the accepted cues: one, the swapped sound at the nudged time
    page.locator("#format").select_option("otio")
    with page.expect_download() as dl:
        page.locator("#export-link button").click()
    path = tmp / dl.value.suggested_filename
    dl.value.save_as(str(path))
    from edgeav.cues import read_cues

    cues = read_cues(path)
    assert [(c.sound, c.t) for c in cues] == [(second, round(first.t + 0.04, 2))]
    other.close()
    page.close()


def test_an_export_leaves_no_folder_behind(server, monkeypatch, tmp_path):
    import tempfile
    import urllib.request

    _, url, _ = server
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the server runs in this process: its exports land here
    with urllib.request.urlopen(url + "api/export?format=otio") as r:
        assert r.status == 200 and r.read()
    for _ in range(100):  # the folder goes in a task after the response
        if not list(tmp_path.glob("edgeav-export-*")):
            break
        time.sleep(0.02)
    assert not list(tmp_path.glob("edgeav-export-*"))


def test_review_page_says_when_a_sound_file_is_missing(server, browser, tmp_path):
    session, url, _ = server
    copy = tmp_path / "sounds"
    shutil.copytree(ASSETS / "sounds", copy)
    top = session.suggestions[2].recommendations[0]["sound"]
    (copy / top).unlink()
    roots = session.bank.meta["roots"]
    session.bank.meta["roots"] = [str(copy)]
    try:
        page = browser.new_page()
        page.goto(url)
        page.wait_for_selector("#card-2")
        page.locator("#card-2 button.play").click()
        page.wait_for_function("document.querySelector('#card-2 .missing').textContent.includes('missing')")
        page.close()
    finally:
        session.bank.meta["roots"] = roots


def test_a_bank_from_another_model_is_refused(tmp_path):
    from edgeav.backends import load_backend
    from edgeav.bank import index_sounds
    from edgeav.models import create_model, save_model
    from edgeav.review import ReviewConfig, ReviewSession

    tiny = str(save_model(create_model("tiny", embed_dim=128), tmp_path / "tiny"))
    be = load_backend(tiny)
    index_sounds(be, [ASSETS / "sounds" / "funnyboat"], tmp_path / "b.npz", progress=False, model_id=be.model_id)
    with pytest.raises(EdgeavError, match="indexed by another model"):
        ReviewSession.open(ReviewConfig(str(CLIP), bank=str(tmp_path / "b.npz")))


def test_cards_come_least_certain_first_and_in_time_order_on_request(server, browser):
    from edgeav.review import margin, review_order

    session, url, _ = server
    margins = [margin(s.recommendations) for s in session.suggestions]
    assert len(set(margins)) > 1  # the order is tested on suggestions that differ in certainty
    page = browser.new_page(viewport={"width": 1300, "height": 820})
    page.goto(url)
    page.wait_for_function(f"document.querySelectorAll('.card').length == {len(session.suggestions)}")
    shown = page.evaluate("[...document.querySelectorAll('.card')].map(c => +c.id.slice(5))")
    assert shown == review_order(session.suggestions, "uncertain")
    assert [margins[i] for i in shown] == sorted(margins)
    page.locator("#order").select_option("time")
    shown = page.evaluate("[...document.querySelectorAll('.card')].map(c => +c.id.slice(5))")
    assert [session.suggestions[i].t for i in shown] == sorted(s.t for s in session.suggestions)
    page.close()


def test_margin_is_the_top_sound_above_the_runner_up_and_an_unknown_order_is_refused():
    from edgeav.review import ReviewConfig, ReviewSession, margin

    assert margin([{"score": 0.9}, {"score": 0.6}, {"score": 0.5}]) == pytest.approx(0.3)
    assert margin([{"score": 0.4}]) == pytest.approx(0.4)
    with pytest.raises(EdgeavError, match="unknown card order 'loud'"):
        ReviewSession.open(ReviewConfig(str(CLIP), order="loud"))
