"""Results as markdown tables."""

from __future__ import annotations


def format_eval(res: dict) -> str:
    rows = [
        "top1_file",
        "top1_file_macro",
        "top5_file",
        "top5_file_macro",
        "top10_file",
        "top10_file_macro",
        "top1_category",
        "top1_category_macro",
        "top5_category",
        "top5_category_macro",
    ]
    lines = ["| metric | model | blind prior | chance |", "|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r} | {res['model'][r]:.3f} | {res['blind_prior'][r]:.3f} | {res['chance'][r]:.3f} |")
    c = res["correlation"]
    lines.append(f"| correlation_acc | {c['correlation_acc']:.3f} | – | 0.500 |")
    for k, v in res["retrieval"].items():
        lines.append(f"| {k} | {v:.3f} | – | {res['retrieval_chance_R@1'] * int(k.split('@')[1]):.3f} |")
    return "\n".join(lines)
