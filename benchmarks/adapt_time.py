"""How long `edgeav adapt` takes, as a user runs it: its defaults on `--minutes` of one game's train clips
(unlabeled) with the corpus's whole sound library, from nothing cached; wall time per stage from its report.

    python -m benchmarks.adapt_time --game monsterz --minutes 10
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path

from benchmarks.common import RESULTS, command_line, write_result


def markdown(res: dict, cmd: str) -> str:
    from edgeav.adapt import AdaptConfig

    stages = ", ".join(f"{k.removesuffix('_s')} {v:.0f} s" for k, v in res["stages_s"].items())
    steps, event_steps = res["steps"]
    changed = [f"{steps} steps"] * (steps != AdaptConfig.steps)
    changed += [f"{event_steps} event steps"] * (event_steps != AdaptConfig.event_steps)
    how = f"with {' and '.join(changed)} (its other defaults, " if changed else "with its defaults ("
    return (
        f"`edgeav adapt` {how}model `{res['model']}`) on {res['footage_minutes']:.0f} min of "
        f"{res['game']} footage ({res['clips']} train clips, unlabeled) and the corpus's {res['library_files']} "
        f"sounds, on {res['cores']} cores{res['beside']}: **{res['total_s']:.0f} s** ({res['total_s'] / 60:.1f} min; "
        f"{stages}). It found {res['playing']} of the library's files playing, {res['starts']:,} starts.\n\n"
        f"Reproduce: `{cmd}`\n"
    )


def main(argv: list[str] | None = None) -> dict:
    from benchmarks.adapt import _link_files
    from edgeav.adapt import AdaptConfig
    from edgeav_train.adapt import adapt
    from edgeav_train.corpus import corpus_root, load_clips

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--game", default="monsterz")
    ap.add_argument("--minutes", type=int, default=10, help="train clips of the game (one minute each)")
    ap.add_argument("--model", default=AdaptConfig.model)
    ap.add_argument("--corpus", default=None)
    ap.add_argument("--work", default="runs/adapt-time")
    ap.add_argument("--beside", default="", help="what else ran on the machine meanwhile (said in the result)")
    ap.add_argument("--steps", type=int, default=AdaptConfig.steps, help="adapt's window steps (its default)")
    ap.add_argument("--event-steps", type=int, default=AdaptConfig.event_steps, help="adapt's event steps (default)")
    ap.add_argument("--out", default=str(RESULTS))
    a = ap.parse_args(argv)
    root = corpus_root(a.corpus)
    work = Path(a.work) / a.game
    shutil.rmtree(work, ignore_errors=True)  # from nothing cached: the time a user waits
    clips = [c for c in load_clips(root, "train") if c.game == a.game][: a.minutes]
    footage = _link_files([c.video for c in clips], work / "footage", root / "clips" / a.game)
    t0 = time.perf_counter()
    cfg = AdaptConfig(
        footage=str(footage),
        sounds=str(root / "sounds"),
        model=a.model,
        out=str(work / "out"),
        steps=a.steps,
        event_steps=a.event_steps,
    )
    rep = adapt(cfg)
    res = {
        "game": a.game,
        "model": a.model,
        "steps": [a.steps, a.event_steps],
        "clips": rep["clips"],
        "footage_minutes": rep["footage_minutes"],
        "library_files": rep["library"]["files"],
        "playing": len(rep["library"]["playing"]),
        "starts": rep["library"]["starts"],
        "cores": os.cpu_count(),
        "beside": f", beside {a.beside}" if a.beside else "",
        "total_s": round(time.perf_counter() - t0, 1),
        "stages_s": rep["seconds"],
    }
    write_result(f"adapt_time-{a.game}", res, markdown(res, command_line("adapt_time", argv)), a.out)
    return res


if __name__ == "__main__":
    main()
