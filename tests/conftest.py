import os
import tempfile
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("OMP_NUM_THREADS", "2")
# banks the tests index land in a throw-away folder, never in the user's ~/.cache
os.environ["EDGEAV_CACHE"] = tempfile.mkdtemp(prefix="edgeav-test-cache-")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "gameplay"
ASSETS = REPO / "edgeav" / "assets"

needs_corpus = pytest.mark.skipif(not (SHARED / "splits.csv").exists(),
                                  reason="../shared/data/gameplay is absent (fresh clone without the corpus)")
