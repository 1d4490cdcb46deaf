import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("OMP_NUM_THREADS", "2")
# banks the tests index land in a throw-away folder, never in the user's ~/.cache
os.environ["EDGEAV_CACHE"] = tempfile.mkdtemp(prefix="edgeav-test-cache-")
atexit.register(shutil.rmtree, os.environ["EDGEAV_CACHE"], ignore_errors=True)

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "gameplay"
ASSETS = REPO / "edgeav" / "assets"
os.environ.setdefault("EDGEAV_CORPUS", str(SHARED))  # the workspace's corpus, where corpus-reading code finds it

needs_corpus = pytest.mark.skipif(
    not (SHARED / "splits.csv").exists(), reason="../shared/data/gameplay is absent (fresh clone without the corpus)"
)


def make_mini_corpus(root: Path) -> Path:
    """A corpus in the gameplay layout from the bundled assets alone (so corpus-reading code runs on a fresh clone):
    each bundled clip appears in train, val and test under its own id, with its real event log; the bank is every
    bundled sound with its category."""
    import csv
    import shutil

    root.mkdir(parents=True, exist_ok=True)
    shutil.copytree(ASSETS / "sounds", root / "sounds", dirs_exist_ok=True)
    with open(ASSETS / "sounds" / "categories.csv") as f, open(root / "sounds.csv", "w", newline="") as out:
        w = csv.writer(out)
        w.writerow(["sound_id", "game", "file", "duration_s", "category"])
        for row in csv.DictReader(f):
            w.writerow([row["file"], row["file"].split("/")[0], f"sounds/{row['file']}", 0, row["category"]])
    with open(root / "splits.csv", "w", newline="") as out:
        w = csv.writer(out)
        w.writerow(["clip_id", "game", "split"])
        for clip in sorted((ASSETS / "clips").glob("*.mp4")):
            game = clip.stem.split("-")[0]
            for split in ("train", "val", "test"):
                cid = f"{clip.stem}-{split}"
                for sub, src, ext in (("clips", clip, ".mp4"), ("events", clip.with_suffix(".events.json"), ".json")):
                    (root / sub / game).mkdir(parents=True, exist_ok=True)
                    shutil.copy(src, root / sub / game / f"{cid}{ext}")
                w.writerow([cid, game, split])
    return root


@pytest.fixture(scope="session")
def mini_corpus(tmp_path_factory):
    return make_mini_corpus(tmp_path_factory.mktemp("corpus"))


def tiny_model_and_bank(folder: Path) -> tuple[str, Path]:
    """A seeded untrained `tiny` model and the bundled sounds indexed by it: fast stand-ins for run-level tests."""
    import torch

    from edgeav.backends.torch_backend import TorchBackend
    from edgeav.bank import index_sounds
    from edgeav.models import create_model, save_model

    torch.manual_seed(0)
    model = str(save_model(create_model("tiny"), folder / "tiny"))
    be = TorchBackend(model)
    bank = folder / "bank.npz"
    index_sounds(
        be, [ASSETS / "sounds"], bank, ASSETS / "sounds" / "categories.csv", progress=False, model_id=be.model_id
    )
    return model, bank
