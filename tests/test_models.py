"""Every registered model: forward/backward on tiny inputs, save/load round trip, attention maps exposed."""

import pytest
import torch

from edgeav import EdgeavError
from edgeav.models import create_model, list_models, load_model, save_model


@pytest.mark.parametrize("name", list_models())
def test_forward_backward(name):
    m = create_model(name, pretrained=False) if name != "teacher_paper" else create_model(name, frame_size=(64, 64))
    c = m.cfg
    w, h = c.frame_size
    frames = torch.randn(2, c.visual_frames, 3, h, w)
    mel = torch.randn(2, c.audio_frames, c.n_mels)
    v, attn = m.encode_visual(frames, return_attention=True)
    a = m.encode_audio(mel)
    assert v.shape == a.shape == (2, c.embed_dim)
    assert torch.allclose(v.norm(dim=1), torch.ones(2), atol=1e-5)
    if c.attention:
        assert len(attn) == 3 and all(torch.allclose(x.flatten(1).sum(1), torch.ones(2), atol=1e-5) for x in attn)
    (v * a).sum().backward()
    trainable = [p for p in m.parameters() if p.requires_grad]
    assert trainable and all(p.grad is not None for p in m.projector.parameters())


def test_save_load_round_trip(tmp_path):
    m = create_model("tiny").eval()
    path = save_model(m, tmp_path / "m")
    m2 = load_model(str(path))
    x = torch.randn(1, 100, 64)
    assert torch.allclose(m.encode_audio(x), m2.encode_audio(x))


def test_wrong_model_files_are_refused(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a model")
    (tmp_path / "bad.json").write_text('{"name": "tiny", "visual_backbone": "convstack"}')
    with pytest.raises(EdgeavError) as e:
        load_model(str(bad))
    assert "bad.safetensors" in str(e.value)
    path = save_model(create_model("tiny"), tmp_path / "t")
    (tmp_path / "t.json").write_text('{"name": "tiny", "visual_backbone": "convstack", "embed_dim": 32}')
    with pytest.raises(EdgeavError):
        load_model(str(path))
    with pytest.raises(EdgeavError):
        load_model("no-such-model")


def test_teacher_paper_has_the_papers_scale():
    """The research's released encoders: ~45M parameters in all, ~23 GMAC per 224² frame (attention included)."""
    from edgeav.models.profile import encoder_costs

    m = create_model("teacher_paper")
    costs = encoder_costs(m)
    assert 40e6 < sum(p.numel() for p in m.parameters()) < 48e6
    assert 21e9 < costs["visual"]["macs"] < 26e9
    assert m.visual.head.dense_global and m.audio.head.dense_global  # g from a dense conv over the last map


def test_model_names_with_dots(tmp_path):
    """`-o runs/bd-t0.25-k100` names the model; only a .safetensors/.json ending is an extension."""
    torch.manual_seed(0)
    path = save_model(create_model("tiny"), tmp_path / "bd-t0.25-k100")
    assert path.name == "bd-t0.25-k100.safetensors" and (tmp_path / "bd-t0.25-k100.json").exists()
    assert load_model(str(tmp_path / "bd-t0.25-k100")).cfg.name == "tiny"
    assert load_model(str(path)).cfg.name == "tiny"


def test_a_tuned_trunk_level_is_recomputed_from_cached_maps(tmp_path):
    """`visual_tune_levels=1`: only Lite0's stride-32 blocks learn, and an embedding from cached maps (whose last
    level is the pretrained trunk's, stale once those blocks moved) equals one from the frames; the setting is
    saved with the model."""
    torch.manual_seed(0)
    m = create_model("teacher", pretrained=False, visual_tune_levels=1)
    trunk = m.visual.backbone
    tuned = {id(p) for p in trunk.tuned_parameters()}
    assert tuned and all(p.requires_grad == (id(p) in tuned) for p in trunk.parameters())
    with torch.no_grad():  # stand-in for fine-tuning: the tuned blocks no longer compute the cached map
        for p in trunk.tuned_parameters():
            p.mul_(1.1)
    m.eval()
    frames = torch.randn(2, 2, 3, 96, 128)
    with torch.no_grad():
        feats = m.visual.backbone_features(frames)
        stale = feats[:-1] + [torch.full_like(feats[-1], 3.0)]
        assert torch.allclose(m.encode_visual_features(stale), m.encode_visual(frames), atol=1e-5)
    assert load_model(str(save_model(m, tmp_path / "tuned"))).visual.backbone.tune_levels == 1
    with pytest.raises(ValueError):
        create_model("teacher", pretrained=False, visual_tune_levels=3)


def _with_random_batchnorm(m):
    """Non-trivial BatchNorm statistics, so folding them is tested, not just identities."""
    g = torch.Generator().manual_seed(1)
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.copy_(torch.rand(mod.num_features, generator=g) - 0.5)
            mod.running_var.copy_(torch.rand(mod.num_features, generator=g) + 0.5)
            mod.weight.data.copy_(torch.rand(mod.num_features, generator=g) + 0.5)
            mod.bias.data.copy_(torch.rand(mod.num_features, generator=g) - 0.5)
    return m.eval()


@pytest.mark.parametrize("name", list_models())
def test_deploy_form_computes_the_trained_function(name):
    """edgeav.models.rep.deploy_form (what export and the torch backend run): Rep branches, the frame difference and
    the attention heads folded, with the same embeddings and attention maps as the model as trained."""
    from edgeav.models.rep import deploy_form

    torch.manual_seed(0)
    m = _with_random_batchnorm(
        create_model(name, pretrained=False) if name != "teacher_paper" else create_model(name, frame_size=(64, 64))
    )
    d = deploy_form(m)
    c = m.cfg
    w, h = c.frame_size
    frames, mel = torch.randn(3, c.visual_frames, 3, h, w), torch.randn(3, c.audio_frames, c.n_mels) * 2 - 6
    with torch.no_grad():
        (v, maps), (dv, dmaps) = (
            m.encode_visual(frames, return_attention=True),
            d.encode_visual(frames, return_attention=True),
        )
        assert torch.allclose(v, dv, atol=1e-5) and torch.allclose(m.encode_audio(mel), d.encode_audio(mel), atol=1e-5)
    assert len(maps) == len(dmaps) and all(torch.allclose(a, b, atol=1e-5) for a, b in zip(maps, dmaps))
    if c.attention:  # the head folded: no global branch, no per-position projection
        assert not hasattr(d.visual.head, "pools") and d.projector_folded
    if c.visual_backbone == "rep":
        from edgeav.models.rep import RepConv

        assert not any(isinstance(x, RepConv) for x in d.modules())
        assert not any(isinstance(x, torch.nn.BatchNorm2d) for x in d.visual.modules())


def test_a_deploy_copy_is_not_saved(tmp_path):
    from edgeav.models.rep import deploy_form

    with pytest.raises(ValueError, match="deploy copy"):
        save_model(deploy_form(create_model("tiny")), tmp_path / "d")


def test_default_student_budget():
    """`student` keeps ≥ 20× fewer visual MACs than `teacher` (both counted on what runs: the deploy forms)."""
    from edgeav.models.profile import encoder_costs

    ratio = (
        encoder_costs(create_model("teacher", pretrained=False))["visual"]["macs"]
        / encoder_costs(create_model("student"))["visual"]["macs"]
    )
    assert ratio >= 20, ratio
