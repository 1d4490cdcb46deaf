"""How far is the label-free event head from what its architecture reaches with the true labels? A diagnostic,
never shipped: the same head, data, sampling, losses and schedule as `edgeav train events` (a new head, trained
from the start: --fresh), but its start frames and files come from the TRUE train-split event logs instead of the
fingerprinted soundtrack. Scored by benchmarks.events (offline rows; its threshold calibrated on val like the
product's); the gap to the label-free head is what better targets could still win, this row's level what the head
allows.

    python -m research.event_ceiling --model student --sounds ../shared/data/gameplay/sounds -o runs/events/ceiling
"""

from __future__ import annotations

import argparse
import json

from benchmarks.common import command_line, write_result
from research import RESULTS


def logged_starts(cfg, clips, ids: list[str]) -> list[dict[int, int]]:  # noqa: ANN001
    """Per clip, {frame: bank index} of the event log's effects (the first where two share a frame)."""
    from edgeav_train.corpus import load_clips

    where = {s: j for j, s in enumerate(ids)}
    logs = {c.clip_id: c.events for c in load_clips(cfg.corpus or None)}
    out = []
    for key in clips.keys:
        starts: dict[int, int] = {}
        for e in json.loads(logs[key].read_text())["sound_events"]:
            f = int(round(e["t"] * clips.fps))
            if e["sound_id"] in where:
                starts.setdefault(f, where[e["sound_id"]])
        out.append(starts)
    return out


def main(argv: list[str] | None = None) -> None:
    from benchmarks import events as bench
    from edgeav_train.events import EventTrainConfig, train_events

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="student")
    ap.add_argument("--sounds", required=True)
    ap.add_argument("-o", "--out", default="runs/events/ceiling")
    ap.add_argument("--steps", type=int, default=EventTrainConfig.steps)
    ap.add_argument("--threads", type=int, default=EventTrainConfig.threads)
    ap.add_argument("--corpus", default="")
    ap.add_argument("--cache", default=EventTrainConfig.cache, help="frame-rate cache (edgeav train cache --fps 25)")
    ap.add_argument("--results", default=str(RESULTS))
    ap.add_argument("--bank-cache", default=".cache/value")
    a = ap.parse_args(argv)
    cfg = EventTrainConfig(
        model=a.model,
        sounds=a.sounds,
        out=a.out,
        steps=a.steps,
        corpus=a.corpus,
        cache=a.cache,
        calibrate=True,
        fresh=True,
        threads=a.threads,
    )
    path = train_events(cfg, targets=logged_starts)
    if path.name != "checkpoint.pt":
        corpus = ["--corpus", a.corpus] if a.corpus else []
        res = bench.main(
            [*("--model", str(path), "--name", "event_ceiling", "--cache", a.cache, "--out", a.results)]
            + ["--offline-only", "--bank-cache", a.bank_cache, *corpus]
        )
        cmd = command_line("research.event_ceiling", argv)  # this script's command, not the benchmark's inside it
        write_result("event_ceiling", res, bench.markdown(res, cmd), a.results)


if __name__ == "__main__":
    main()
