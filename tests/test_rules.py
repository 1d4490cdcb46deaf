"""House rules are honoured by every output; mistakes in the rules file are clear errors."""

import json

import pytest
import torch

from edgeav import EdgeavError
from edgeav.backends.torch_backend import TorchBackend
from edgeav.bank import index_sounds
from edgeav.models import create_model, save_model
from edgeav.pipeline import RunConfig, run

from conftest import ASSETS, tiny_model_and_bank

CLIP = ASSETS / "clips" / "solarwolf-s11_10-40.mp4"


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("rules")
    model, bank = tiny_model_and_bank(d)
    base = d / "base.jsonl"
    run(RunConfig(str(CLIP), bank=str(bank), model=model, jsonl=str(base), quiet=True, max_seconds=10))
    return d, model, bank, [json.loads(x) for x in base.read_text().splitlines()]


def _run(setup, toml, **kw):
    d, model, bank, _ = setup
    rules = d / "r.toml"
    rules.write_text(toml)
    out = d / "out.jsonl"
    res = run(
        RunConfig(
            str(CLIP), bank=str(bank), model=model, jsonl=str(out), rules=str(rules), quiet=True, max_seconds=10, **kw
        )
    )
    return res, [json.loads(x) for x in out.read_text().splitlines()]


def test_banned_category_never_appears_in_jsonl_or_foley(setup, tmp_path):
    _, _, _, base = setup
    top_cat = base[0]["recommendations"][0]["category"]
    res, recs = _run(setup, f'deny_categories = ["{top_cat}"]\n', save=str(tmp_path / "f.mp4"), threshold=-1.0)
    cats = {r["category"] for rec in recs for r in rec["recommendations"]}
    assert top_cat not in cats and len(recs) == len(base)
    assert res.placements and all(
        p[1] not in {r["sound"] for rec in base for r in rec["recommendations"] if r["category"] == top_cat}
        for p in res.placements
    )


def test_boosted_sound_rises_and_deny_sounds_and_allow(setup):
    _, _, _, base = setup
    last = base[0]["recommendations"][-1]["sound"]  # 5th place without rules
    _, recs = _run(setup, f'[boost]\n"{last}" = 0.5\n')
    assert recs[0]["recommendations"][0]["sound"] == last
    assert recs[0]["recommendations"][0]["score"] == pytest.approx(
        base[0]["recommendations"][-1]["score"] + 0.5, abs=1e-3
    )
    first = base[0]["recommendations"][0]["sound"]
    _, recs = _run(setup, f'deny_sounds = ["{first}"]\n')
    assert all(first != r["sound"] for rec in recs for r in rec["recommendations"])
    _, recs = _run(setup, 'allow_categories = ["shoot"]\n')
    assert {r["category"] for rec in recs for r in rec["recommendations"]} == {"shoot"}


def test_min_repeat(setup):
    _, recs = _run(setup, "min_repeat_s = 3.0\n")
    tops = [(rec["t"], rec["recommendations"][0]["sound"]) for rec in recs]
    for i, (t, s) in enumerate(tops):
        for t2, s2 in tops[i + 1 :]:
            if t2 - t < 3.0:
                assert s2 != s
        # and it is left out of the list entirely, not just moved down
    for i, rec in enumerate(recs):
        recent = {s for t, s in tops[:i] if rec["t"] - t < 3.0}
        assert not recent & {r["sound"] for r in rec["recommendations"]}


@pytest.mark.parametrize(
    "toml,needle",
    [
        ('colour = "red"\n', "colour"),
        ('deny_sounds = ["nope/none.wav"]\n', "nope/none.wav"),
        ('[boost]\n"x.wav" = 1\n', "x.wav"),
        ('deny_categories = ["music"]\n', "music"),
        ("deny_sounds = [\n", "not valid TOML"),
    ],
)
def test_rules_mistakes_are_clear_errors(setup, toml, needle):
    with pytest.raises(EdgeavError) as e:
        _run(setup, toml)
    assert needle in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("name", ["teacher", "teacher_baseline"])
def test_explanations_are_written_for_each_window(tmp_path, name):
    import cv2

    torch.manual_seed(0)
    m = create_model(name, pretrained=False)
    model = str(save_model(m, tmp_path / name))
    be = TorchBackend(model)
    bank = tmp_path / "bank.npz"
    index_sounds(be, [ASSETS / "sounds" / "funnyboat"], bank, progress=False, model_id=be.model_id)
    run(RunConfig(str(CLIP), bank=str(bank), model=model, explain=str(tmp_path / "ex"), quiet=True, max_seconds=2))
    lines = [json.loads(x) for x in (tmp_path / "ex" / "explanations.jsonl").read_text().splitlines()]
    assert len(lines) >= 4 and lines[0]["method"] == ("attention" if name == "teacher" else "occlusion")
    img = cv2.imread(str(tmp_path / "ex" / lines[0]["image"]))
    assert img is not None and img.shape[1] == 2 * 4 * 128
