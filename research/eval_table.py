"""One results table from several `edgeav train eval --out` JSON files: test-split metrics per row, and the val-split
numbers a centred model's JSON records for its chosen λ (what the choice between rows was made on).

    python -m research.eval_table --name stage2_visual --title "..." \
        --row "student, distilled=runs/center/student-c-eval.json:runs/center/student-c.json" ...
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from benchmarks.common import command_line, write_result
from edgeav.models.store import read_card
from research import RESULTS

TEST = ("top1_file", "top1_file_macro", "top5_file", "top10_file")


def row(label: str, eval_json: str, model_json: str | None) -> dict:
    res = json.loads(Path(eval_json).read_text())
    out = {
        "row": label,
        "eval": eval_json,
        "test": {k: round(res["model"][k], 4) for k in TEST},
        "correlation_acc": round(res["correlation"]["correlation_acc"], 4),
    }
    if model_json:
        center = read_card(json.loads(Path(model_json).read_text()), model_json).provenance.get("center")
        if center:
            out["center_weight"] = center["weight"]
            out["val"] = center["val"][str(float(center["weight"]))]
    return out


def markdown(result: dict) -> str:
    lines = [
        result["title"],
        "",
        "| row | val top-1 / macro / top-5 (λ) | test top-1 | macro top-1 | top-5 | top-10 | corr. acc |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        v = r.get("val")
        val = (
            f"{v['top1_file']:.3f} / {v['top1_file_macro']:.3f} / {v['top5_file']:.3f} ({r['center_weight']})"
            if v
            else "–"
        )
        t = r["test"]
        lines.append(
            f"| {r['row']} | {val} | {t['top1_file']:.3f} | {t['top1_file_macro']:.3f} | {t['top5_file']:.3f} "
            f"| {t['top10_file']:.3f} | {r['correlation_acc']:.3f} |"
        )
    lines += ["", f"Command: `{result['command']}`"]
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--name", required=True, help="results/NAME.{json,md}")
    ap.add_argument("--title", required=True, help="the table's first sentence: what the rows are")
    ap.add_argument(
        "--row",
        action="append",
        required=True,
        help="LABEL=EVAL.json[:MODEL.json] (MODEL.json: the centred model, for its val numbers)",
    )
    ap.add_argument("--out", default=str(RESULTS))
    a = ap.parse_args(argv)
    rows = []
    for spec in a.row:
        label, files = spec.rsplit("=", 1)
        eval_json, _, model_json = files.partition(":")
        rows.append(row(label, eval_json, model_json or None))
    result = {"title": a.title, "rows": rows, "command": command_line("research.eval_table", argv)}
    write_result(a.name, result, markdown(result), a.out)


if __name__ == "__main__":
    main()
