"""Which `edgeav adapt` setting, chosen on the held-out games' val clips? Every held-out game adapted once per setting
(`benchmarks.adapt_events`, one result folder per setting: event-head steps, how verdicts are drawn), compared on
the games' val clips — the choice — with their test clips beside. Each figure is the adapted model as a user runs
it (`edgeav run --events-only`, the footage prior at the weight the model carries): detection F1, found & right at
top-1 over all events and macro top-1 at found events (of the adapted row, or with --shown of the row adapted with
verdicts), and the games meeting the adaptation aim at found events (top-1 at or above the blind prior's, macro
top-1 ≥ 2× the prior's), adapted and adapted + verdicts.

    python -m research.adapt_event_steps --row '150 steps=research/results/adapt_events-steps150' \
        --row '300 steps=benchmarks/results'
"""

from __future__ import annotations

import argparse

from benchmarks.adapt_events import game_results, meets_aim
from benchmarks.common import command_line, write_result
from research import RESULTS

NAMED = ("adapted", "adapted + verdicts")


def split_rows(res: dict, split: str) -> dict:
    return res["val_rows"] if split == "val" else res["rows"]


def figures(games: dict, split: str, shown: str = "adapted") -> dict:
    """Per game F1, found & right and macro top-1 of the `shown` row, the aim met (adapted, + verdicts); and their
    means and counts."""
    per_game = {}
    for g, res in games.items():
        rows = split_rows(res, split)
        per_game[g] = {
            "f1": rows[shown]["f1"],
            "found_right": rows[shown]["found_right"],
            "macro_top1_at_found": rows[shown]["macro_top1_at_found"],
            "f1_vs_adapted": round(rows[shown]["f1"] - rows["adapted"]["f1"], 4),
            "met": [name for name in NAMED if meets_aim(rows[name])],
        }
    n = len(per_game)
    return {
        "games": per_game,
        "mean_f1": round(sum(r["f1"] for r in per_game.values()) / max(n, 1), 4),
        "mean_found_right": round(sum(r["found_right"] for r in per_game.values()) / max(n, 1), 4),
        "met": {name: sorted(g for g, r in per_game.items() if name in r["met"]) for name in NAMED},
    }


def markdown(res: dict, cmd: str) -> str:
    labels = list(res["rows"])
    games = sorted(set().union(*(res["rows"][k]["val"]["games"] for k in labels)))
    lines = [
        f"{res['about']} in `edgeav adapt`, every held-out game (its head trained without it, adapted on its train "
        "clips, unlabeled). Per cell: detection F1 / found & right at top-1 / macro top-1 at found events, "
        f"{res['shown']}{' (F1 change from adapted)' if res['shown'] != 'adapted' else ''} (`edgeav run "
        "--events-only`, the footage prior at the model's weight); ✓ where adapted and "
        "v✓ where adapted with verdicts meets the aim (top-1 at found events ≥ the prior's, macro ≥ 2× the "
        "prior's). The choice is made on val; test beside it.",
        "",
        "| held-out game | " + " | ".join(f"{k}: val | {k}: test" for k in labels) + " |",
        "|---|" + "---|---|" * len(labels),
    ]

    def cell(r: dict | None) -> str:
        if r is None:
            return "—"
        mark = (" ✓" if "adapted" in r["met"] else "") + (" v✓" if "adapted + verdicts" in r["met"] else "")
        change = f" ({r['f1_vs_adapted']:+.2f})" if res["shown"] != "adapted" else ""
        return f"{r['f1']:.2f}{change} / {r['found_right']:.3f} / {r['macro_top1_at_found']:.3f}{mark}"

    for g in games:
        cells = [cell(res["rows"][k][s]["games"].get(g)) for k in labels for s in ("val", "test")]
        lines.append(f"| {g} | " + " | ".join(cells) + " |")
    totals = []
    for k in labels:
        for s in ("val", "test"):
            f = res["rows"][k][s]
            n = len(f["games"])
            totals.append(
                f"mean {f['mean_f1']:.2f} / {f['mean_found_right']:.3f}; aim met {len(f['met']['adapted'])} of {n}, "
                f"with verdicts {len(f['met']['adapted + verdicts'])} of {n}"
            )
    lines += ["| all | " + " | ".join(totals) + " |", "", f"Command: `{cmd}`"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--row", action="append", required=True, help="LABEL=FOLDER of adapt_events-GAME.json results")
    ap.add_argument("--shown", choices=NAMED, default="adapted", help="the row whose figures the cells give")
    ap.add_argument("--about", default="Event-head steps", help="what the rows vary, as the table's caption says")
    ap.add_argument("--name", default="adapt_event_steps")
    ap.add_argument("--out", default=str(RESULTS))
    a = ap.parse_args(argv)
    rows = {}
    for spec in a.row:
        label, folder = spec.split("=", 1)
        games = game_results(folder)
        rows[label] = {"folder": folder, "val": figures(games, "val", a.shown), "test": figures(games, "test", a.shown)}
    res = {"about": a.about, "shown": a.shown, "rows": rows}
    write_result(a.name, res, markdown(res, command_line("research.adapt_event_steps", argv)), a.out)
    return res


if __name__ == "__main__":
    main()
