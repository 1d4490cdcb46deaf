"""Hubness reduction (edgeav_train.center): the mean embedding of training footage, λ chosen on val events, applied
inside the model so every runtime and export carries it."""

import pytest
import torch
import torch.nn.functional as F

from edgeav.models import create_model, load_model, save_model
from edgeav_train.builder import CacheConfig, build_cache
from edgeav_train.center import center, footage_center


@pytest.fixture(scope="module")
def corpus_and_cache(mini_corpus, tmp_path_factory):
    cache = tmp_path_factory.mktemp("center-cache")
    build_cache(
        mini_corpus, cache, CacheConfig(fps=5, width=64, height=48), layout="gameplay", workers=1, progress=False
    )
    return mini_corpus, cache


def _centre_tiny(corpus_and_cache, folder, seed: int, weights, n: int):
    """(untrained tiny model, its centred copy) with λ chosen among `weights`."""
    corpus, cache = corpus_and_cache
    torch.manual_seed(seed)
    src = save_model(create_model("tiny"), folder / "tiny")
    return src, center(
        str(src), str(folder / "c"), str(cache), root=corpus, weights=weights, n=n, eval_cache=folder / "eval"
    )


def test_centred_model_subtracts_the_footage_mean(corpus_and_cache, tmp_path):
    src, out = _centre_tiny(corpus_and_cache, tmp_path, 0, (1.0,), 64)
    cache = corpus_and_cache[1]
    plain, centred = load_model(str(src)), load_model(str(out))
    assert centred.cfg.center_weight == 1.0 and centred.card.provenance["center"]["val"]["1.0"]["top1_file"] >= 0
    mu = centred.visual_center
    assert torch.allclose(mu, torch.from_numpy(footage_center(plain, cache, n=64)), atol=1e-6)
    frames = torch.randn(3, plain.cfg.visual_frames, 3, 48, 64)
    with torch.no_grad():
        expect = F.normalize(plain.encode_visual(frames) - mu, dim=-1)
        assert torch.allclose(centred.encode_visual(frames), expect, atol=1e-6)
        mel = torch.randn(3, 100, 64) * 2 - 6
        assert torch.equal(centred.encode_audio(mel), plain.encode_audio(mel))  # banks stay valid
    from edgeav.models.store import audio_sha1

    assert audio_sha1(centred) == audio_sha1(plain)


def test_weight_is_chosen_on_val_and_zero_means_unchanged(corpus_and_cache, tmp_path):
    _, out = _centre_tiny(corpus_and_cache, tmp_path, 1, (0.0, 0.5), 32)
    m = load_model(str(out))
    table = m.card.provenance["center"]["val"]
    assert set(table) == {"0.0", "0.5"}
    best = max(table, key=lambda w: table[w]["top1_file"] + table[w]["top1_file_macro"])
    assert m.cfg.center_weight == float(best)
    assert hasattr(m, "visual_center") == bool(m.cfg.center_weight)  # an uncentred model carries no buffer


def test_centred_model_exports_with_parity(corpus_and_cache, tmp_path):
    from edgeav.export.onnx_export import export_onnx

    _, out = _centre_tiny(corpus_and_cache, tmp_path, 2, (1.0,), 32)
    side = export_onnx(str(out), tmp_path / "x")
    assert max(side["parity_max_abs_err"].values()) < 1e-4
    assert side["model"]["center_weight"] == 1.0
