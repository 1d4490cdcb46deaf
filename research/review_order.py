"""Does the review page's card order matter for what verdicts teach? For a held-out game `benchmarks.adapt_events`
has run (its work folder kept), the same number of verdicts on the adapted model's review cards of the train clips
taken in time order, adapted on and scored exactly as the benchmark's least-certain-first verdicts are (`edgeav run
--events-only --feedback` on the game's val and test clips), beside them.

    python -m research.review_order --game funnyboat --work runs/logo-fb --bench runs/logo-fb/results
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from benchmarks.common import command_line, write_result
from research import RESULTS

ROW = "adapted + reviewed verdicts"


def time_order_row(a: argparse.Namespace, res: dict) -> dict:
    """The benchmark's reviewed row again, its verdicts given on the cards in time order: {val, test, verdicts}."""
    from benchmarks.adapt_events import adapted, feedback_file, held_out_game, reviewed_verdicts, scored
    from benchmarks.value import corpus_bank
    from edgeav.feedback import FeedbackStore
    from edgeav_train.corpus import corpus_root

    root = corpus_root(a.corpus)
    work = Path(a.work) / a.game
    clips, prior = held_out_game(root, a.game)
    plain = json.loads((work / "adapted" / "adapt.json").read_text())["model"]
    verdict_file = work / "verdicts-reviewed-time.jsonl"
    if not verdict_file.exists():
        bank = corpus_bank(plain, root, Path(a.bank_cache))
        n = res["reviewed_verdicts"]
        FeedbackStore(verdict_file).append(reviewed_verdicts(plain, bank, clips["train"], n, order="time"))
    settings = argparse.Namespace(
        adapt_steps=res["adapt_steps"], event_steps=res["event_steps"], seed=res["seed"], score_only=False
    )
    without = str(work / "without.safetensors")
    run = adapted(without, work / "footage", root, work / "adapted-reviewed-time", settings, str(verdict_file))
    bank = corpus_bank(run["model"], root, Path(a.bank_cache))
    verdicts = FeedbackStore(verdict_file).load()
    return {
        "val": scored(run["model"], bank, clips["val"], prior, feedback_file(run)),
        "test": scored(run["model"], bank, clips["test"], prior, feedback_file(run)),
        "verdicts": len(verdicts),
        "accepted": sum(v.verdict == "accept" for v in verdicts),
        "adapt_seconds": run["seconds"],
    }


def cell(row: dict) -> str:
    return f"{row['top1_at_found']:.3f} / {row['macro_top1_at_found']:.3f}"


def markdown(games: dict, cmd: str) -> str:
    lines = [
        "Verdicts on the adapted model's review cards of a held-out game's train clips (`benchmarks.adapt_events "
        "--reviewed`: a card's top sound accepted where it is the logged one, else rejected and the logged one "
        "swapped in from the top 5 where it is there), the same number in each order; the model adapted on them and "
        "run with `--feedback`. Top-1 / macro top-1 at the found events, val then test:",
        "",
        "| game | least certain first: accepted of verdicts | val | test | time order: accepted of verdicts | val "
        "| test |",
        "|---|---|---|---|---|---|---|",
    ]
    for g, r in games.items():
        u, t = r["least_certain_first"], r["time_order"]
        lines.append(
            f"| {g} | {u['accepted']} of {u['verdicts']} | {cell(u['val'])} | {cell(u['test'])} "
            f"| {t['accepted']} of {t['verdicts']} | {cell(t['val'])} | {cell(t['test'])} |"
        )
    return "\n".join(lines + ["", f"Reproduce: `{cmd}` (per game)"]) + "\n"


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--game", required=True)
    ap.add_argument("--work", default="runs/logo-fb", help="benchmarks.adapt_events' --work")
    ap.add_argument("--bench", default="runs/logo-fb/results", help="benchmarks.adapt_events' --out")
    ap.add_argument("--corpus", default=None)
    ap.add_argument("--bank-cache", default=".cache/value")
    ap.add_argument("--out", default=str(RESULTS))
    a = ap.parse_args(argv)
    res = json.loads((Path(a.bench) / f"adapt_events-{a.game}.json").read_text())
    if ROW not in res["rows"]:
        raise SystemExit(f"{a.bench}: {a.game} was run without reviewed verdicts (benchmarks.adapt_events --reviewed)")
    accepted = sum(res["reviewed_accepted"].values())
    uncertain = {"val": res["val_rows"][ROW], "test": res["rows"][ROW], "verdicts": res["reviewed_verdicts"]}
    game = {"least_certain_first": {**uncertain, "accepted": accepted}, "time_order": time_order_row(a, res)}
    done = Path(a.out) / "review_order.json"
    games = json.loads(done.read_text())["games"] if done.exists() else {}
    games[a.game] = game
    games = dict(sorted(games.items()))
    write_result("review_order", {"games": games}, markdown(games, command_line("research.review_order", argv)), a.out)
    return game


if __name__ == "__main__":
    main()
