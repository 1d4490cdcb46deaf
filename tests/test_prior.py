"""The footage prior: an adapted model's counts of the sounds its footage plays, as a bounded ranking bias that
`edgeav run` applies (and `--prior-weight 0` switches off)."""

import numpy as np
import pytest

from edgeav import EdgeavError
from edgeav.bank import SoundBank
from edgeav.models.card import ModelCard
from edgeav.prior import prior_bias
from edgeav.steps import rank_window


def test_the_bias_favours_the_sounds_the_footage_plays_and_is_off_without_weight_or_counts():
    ids = ["a", "b", "c"]
    b = prior_bias({"a": 30, "b": 3}, ids, 0.07)
    assert b[0] == 0 and b[0] > b[1] > b[2]  # the most played sound is not moved; unplayed ones least favoured
    # add-one smoothing: an unplayed sound keeps a finite floor, weight · log((0 + 1) / (30 + 1))
    assert b[2] == pytest.approx(0.07 * np.log(1 / 31), rel=1e-5)
    assert np.allclose(prior_bias({"a": 30, "b": 3}, ids, 0.14), 2 * b)
    assert prior_bias({"a": 30}, ids, 0.0) is None and prior_bias({}, ids, 0.07) is None


def test_ranking_with_the_prior_moves_a_close_call_but_not_a_clear_one():
    bank = SoundBank(["a", "b"], ["", ""], np.eye(2, dtype=np.float32), ["", ""])
    bias = prior_bias({"b": 50}, bank.ids, 0.07)  # a: 0.07 · log(1/51) ≈ −0.28
    close = np.array([[0.72, 0.69]], np.float32)
    clear = np.array([[0.9, 0.3]], np.float32)
    assert [j for j, _ in rank_window(close, bank, 2, "numpy")] == [0, 1]
    assert [j for j, _ in rank_window(close, bank, 2, "numpy", prior=bias)] == [1, 0]
    assert [j for j, _ in rank_window(clear, bank, 2, "numpy", prior=bias)] == [0, 1]


def test_the_card_holds_counts_and_a_weight_and_refuses_anything_else():
    card = ModelCard(footage_starts={"funnyboat/pam.ogg": 12}, prior_weight=0.07)
    assert ModelCard.from_json(card.to_json()) == card
    with pytest.raises(EdgeavError, match="footage_starts"):
        ModelCard(footage_starts={"funnyboat/pam.ogg": -1})
    with pytest.raises(EdgeavError, match="prior_weight"):
        ModelCard(prior_weight=-0.1)


def test_run_applies_the_models_prior_unless_told_otherwise(tmp_path):
    from edgeav.models import load_model, save_model
    from edgeav.pipeline import RunConfig, open_parts

    from conftest import tiny_model_and_bank

    model, bank_path = tiny_model_and_bank(tmp_path)
    bank = SoundBank.load(bank_path)
    m = load_model(model)
    adapted = str(
        save_model(m, tmp_path / "adapted", m.card.replace(footage_starts={bank.ids[0]: 9}, prior_weight=0.1))
    )
    parts = open_parts(RunConfig(model=adapted, bank=bank_path))
    assert parts.prior is not None and parts.prior[0] == 0 and (parts.prior[1:] < 0).all()
    assert open_parts(RunConfig(model=adapted, bank=bank_path, prior_weight=0.0)).prior is None
    assert open_parts(RunConfig(model=model, bank=bank_path)).prior is None  # a model not adapted has none
    with pytest.raises(EdgeavError, match="prior-weight"):
        open_parts(RunConfig(model=adapted, bank=bank_path, prior_weight=-1.0))


def test_adapt_refuses_a_negative_prior_weight_before_any_work(tmp_path):
    from edgeav.adapt import AdaptConfig
    from edgeav_train.adapt import adapt

    with pytest.raises(EdgeavError, match="prior-weight"):
        adapt(AdaptConfig(footage=str(tmp_path), sounds=str(tmp_path), out=str(tmp_path / "out"), prior_weight=-1))
    assert not (tmp_path / "out").exists()
