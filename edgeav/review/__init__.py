"""`edgeav review SOURCE`: a local page to review a run's suggestions over the video — play them at their time,
swap in another of the top 5, nudge the time, accept or reject (into the verdicts store `edgeav adapt` and
`--feedback` read), see where the model looked, and export the accepted cues in any cue sheet format. The cards come
least certain first (the closest call between the top two sounds): where the model is least sure, so a user's
first verdicts are the ones most likely to correct it.

The run streams through the video once in a background thread (constant memory, so a long clip is fine); the page
shows suggestions as they come. The verdicts store is the one state the page has: every tab reads it back, so a
second tab or a reload loses nothing."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from edgeav.cues import Cue
from edgeav.defaults import DEFAULT_MODEL
from edgeav.errors import EdgeavError


@dataclass
class ReviewConfig:
    source: str
    """The video to review (a file)."""
    bank: str | None = None
    """Sound bank (.npz from `edgeav index`). Default: the bundled sounds."""
    model: str = DEFAULT_MODEL
    """Registry name, .safetensors path or an export."""
    feedback: str = "verdicts.jsonl"
    """Verdicts store the accepts and rejects are appended to (created if missing)."""
    host: str = "127.0.0.1"
    """Address to serve on (127.0.0.1: this machine only)."""
    port: int = 8765
    """Port to serve on (0: any free one)."""
    order: str = "uncertain"
    """Card order: uncertain (closest call between the top two sounds first) | time."""


ORDERS = ("uncertain", "time")


def margin(recommendations: list[dict]) -> float:
    """How sure a suggestion is: its top sound's score above the runner-up's (a lone sound: its own score)."""
    scores = [r["score"] for r in recommendations[:2]]
    return scores[0] - scores[1] if len(scores) == 2 else (scores[0] if scores else 0.0)


def review_order(suggestions: list, order: str = "uncertain") -> list[int]:
    """The indices of `suggestions` (each with .t and .recommendations) in the page's card order."""
    if order == "time":
        return sorted(range(len(suggestions)), key=lambda i: suggestions[i].t)
    return sorted(range(len(suggestions)), key=lambda i: (margin(suggestions[i].recommendations), suggestions[i].t))


@dataclass
class Suggestion:
    """One placed suggestion: its moment, the window it came from and the model's top 5 there."""

    t: float
    window_t: float
    recommendations: list[dict]


@dataclass
class ReviewSession:
    """What the page is served from: the model, the bank, the suggestions found so far, the verdicts store."""

    cfg: ReviewConfig
    backend: object = None
    bank: object = None
    suggestions: list[Suggestion] = field(default_factory=list)
    done: bool = False
    error: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def open(cls, cfg: ReviewConfig) -> ReviewSession:
        """Load the model and bank, and refuse a bank another model indexed (its scores would mean nothing)."""
        from edgeav.backends import load_backend
        from edgeav.bank import SoundBank, bank_encoder
        from edgeav.defaults import default_bank

        if not Path(cfg.source).is_file():
            raise EdgeavError(f"video not found: {cfg.source}", "give a video file to review")
        if cfg.order not in ORDERS:
            raise EdgeavError(f"unknown card order {cfg.order!r}", f"use one of: {', '.join(ORDERS)}")
        backend = load_backend(cfg.model)
        if cfg.bank is None:
            bank = default_bank(backend)
        else:
            bank = SoundBank.load(cfg.bank)
            indexed_by, ours = bank.meta.get("model_id"), bank_encoder(backend, warn=lambda m: None).model_id
            if indexed_by and indexed_by != ours:
                raise EdgeavError(
                    f"bank {cfg.bank} was indexed by another model ({indexed_by}, this one needs {ours})",
                    f"re-index it for this model: edgeav index SOUNDS -o {cfg.bank} --model {cfg.model}",
                )
        return cls(cfg, backend, bank)

    def start(self) -> threading.Thread:
        """Run the model over the video in the background; suggestions appear as it goes."""
        thread = threading.Thread(target=self._run, daemon=True)
        thread.start()
        return thread

    def _run(self) -> None:
        from edgeav.feedback import window_start
        from edgeav.pipeline import RunConfig, run

        def on_window(rec: dict) -> None:
            placed = rec.get("placed")
            if placed:  # an event's window (for "why?") is the one whose sound starts at the event
                start = window_start(rec)
                with self.lock:
                    self.suggestions.append(Suggestion(placed["t"], start, rec["recommendations"]))

        try:
            run(
                RunConfig(source=self.cfg.source, bank=self.cfg.bank, model=self.cfg.model, quiet=True),
                on_window=on_window,
            )
        except EdgeavError as e:
            self.error = str(e)
        finally:
            self.done = True

    # ---- verdicts: the page's only state, read back from the store --------------------------------------------
    def record(self, index: int, sound: str, verdict: str, t: float) -> None:
        """Append a verdict on suggestion `index` (its sound possibly swapped, its time possibly nudged to `t`)."""
        from edgeav.feedback import FeedbackStore, Verdict, embed_moments
        from edgeav.frontends import WindowSpec

        if verdict not in ("accept", "reject"):
            raise EdgeavError(f"verdict must be accept or reject, not {verdict!r}", "send accept or reject")
        with self.lock:
            if not 0 <= index < len(self.suggestions):
                raise EdgeavError(f"no suggestion {index}", "reload the page")
        window_t = max(0.0, t - WindowSpec().pre_roll_s)
        emb = embed_moments(self.backend, self.cfg.source, [window_t])[0]
        FeedbackStore(self.cfg.feedback).append(
            [
                Verdict(
                    str(Path(self.cfg.source).resolve()),
                    round(window_t, 3),
                    sound,
                    verdict,
                    emb.tolist(),
                    self.backend.model_id,
                    time.time(),
                )
            ]
        )

    def verdicts(self) -> list[dict]:
        """This video's verdicts in the store, latest per (moment, sound) winning."""
        from edgeav.feedback import FeedbackStore
        from edgeav.frontends import WindowSpec

        if not Path(self.cfg.feedback).exists():
            return []
        mine = str(Path(self.cfg.source).resolve())
        latest: dict[tuple[float, str], dict] = {}
        for v in FeedbackStore(self.cfg.feedback).load():
            if v.source in (mine, self.cfg.source):
                t = round(v.t + WindowSpec().pre_roll_s, 3)
                latest[(t, v.sound)] = {"t": t, "sound": v.sound, "verdict": v.verdict}
        return sorted(latest.values(), key=lambda d: d["t"])

    def accepted_cues(self) -> list[Cue]:
        from edgeav.cues import sound_duration
        from edgeav.foley import _sound_path

        cat = dict(zip(self.bank.ids, self.bank.categories))
        out = []
        for v in self.verdicts():
            if v["verdict"] != "accept":
                continue
            try:
                file = str(_sound_path(self.bank, v["sound"]))
            except EdgeavError:
                file = ""
            out.append(
                Cue(v["t"], v["sound"], file, cat.get(v["sound"], ""), 0.0, sound_duration(file) if file else 0.5)
            )
        return out


def serve(cfg: ReviewConfig, ready: object = None) -> None:
    """Open the session, start the run, serve the page until Ctrl-C; `ready(url)` is called once it listens."""
    import uvicorn

    from edgeav.review.app import create_app

    session = ReviewSession.open(cfg)
    session.start()
    server = uvicorn.Server(uvicorn.Config(create_app(session), host=cfg.host, port=cfg.port, log_level="warning"))
    if ready is not None:
        threading.Thread(target=_announce, args=(server, cfg, ready), daemon=True).start()
    server.run()


def _announce(server: object, cfg: ReviewConfig, ready: object) -> None:
    while not server.started:
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1] if cfg.port == 0 else cfg.port
    ready(f"http://{cfg.host}:{port}/")
