"""The uniform soup (edgeav_train.soup): the mean of the ingredients' weights, refused across starts or
architectures."""

import pytest
import torch

from edgeav import EdgeavError
from edgeav.models import ModelCard, create_model, load_model, save_model
from edgeav_train.soup import soup


def _ingredients(tmp_path, n=2, start="runs/stage1/model.safetensors"):
    torch.manual_seed(0)
    base = create_model("tiny")
    paths = []
    for i in range(n):
        m = create_model("tiny")
        m.load_state_dict(base.state_dict())
        with torch.no_grad():
            for p in m.parameters():
                p.add_(0.1 * (i + 1))  # a fine-tune's move, different per seed
        paths.append(
            str(save_model(m, tmp_path / f"m{i}", ModelCard(provenance={"bank_distill": {"model": start, "seed": i}})))
        )
    return paths


def test_soup_is_the_mean_of_the_weights(tmp_path):
    paths = _ingredients(tmp_path, 3)
    out = soup(paths, tmp_path / "soup")
    states = [load_model(p).state_dict() for p in paths]
    souped = load_model(str(out)).state_dict()
    floats = [k for k, v in souped.items() if v.is_floating_point()]
    assert floats
    for k in floats:
        torch.testing.assert_close(souped[k], sum(s[k] for s in states) / 3)
    assert not torch.equal(souped[floats[0]], states[0][floats[0]])
    assert load_model(str(out)).card.provenance["soup"] == paths


def test_soup_refuses_different_starts_and_architectures(tmp_path):
    a = _ingredients(tmp_path / "a", 1, start="runs/one/model.safetensors")
    b = _ingredients(tmp_path / "b", 1, start="runs/other/model.safetensors")
    with pytest.raises(EdgeavError, match="different starts"):
        soup(a + b, tmp_path / "x")
    other = str(
        save_model(
            create_model("student_small"),
            tmp_path / "s",
            ModelCard(provenance={"bank_distill": {"model": "runs/one/model.safetensors"}}),
        )
    )
    with pytest.raises(EdgeavError, match="not the same architecture"):
        soup(a + [other], tmp_path / "y")
    with pytest.raises(EdgeavError, match="at least two"):
        soup(a, tmp_path / "z")
