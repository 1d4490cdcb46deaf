"""Training-side commands, reached lazily from `edgeav` (the runtime never imports this at module level)."""
from __future__ import annotations

from pathlib import Path


def build_cache_cmd(root: str, out: str, fps: float, width: int, height: int, layout: str, workers: int,
                    vggsound_csv: str | None) -> None:
    from distill.builder import CacheConfig, build_cache

    m = build_cache(root, out, CacheConfig(fps=fps, width=width, height=height), layout, workers, vggsound_csv)
    size = sum(p.stat().st_size for p in Path(out, "shards").glob("*.npy"))
    print(f"cache {out}: {len(m['clips'])} clips ({m['_built']} built now in {m['_seconds']:.0f} s), "
          f"{size / 1e9:.2f} GB, {len(m['bad'])} bad")
    for path, why in m["bad"].items():
        print(f"  skipped {path}: {why}")
