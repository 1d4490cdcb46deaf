"""The lab's questions: scripts that measured what shaped the product, each writing into research/results/."""

from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
