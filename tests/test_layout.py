"""The house's plan, tested: the runtime starts without training code, the model card is typed and validated, CLI
options come from the config dataclasses, the recipes parse against the real command line, and a backend that needs
an export makes it on first use."""

import dataclasses
import json
import subprocess
import sys

import pytest

from edgeav import EdgeavError

from conftest import REPO

LAB = ("edgeav_train", "benchmarks", "research")


def test_run_help_loads_no_training_module():
    code = (
        "import sys\nfrom edgeav.cli import main\ntry:\n    main(['run', '--help'])\nexcept SystemExit:\n    pass\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({LAB!r})))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert r.returncode == 0, r.stderr[-1500:]
    assert "--precision" in r.stdout and r.stdout.strip().splitlines()[-1] == "[]"


def test_help_keeps_the_extras_names():
    """--help renders rich markup, where a bare "[train]" is a style tag and vanishes: the install hint must survive."""
    from typer.testing import CliRunner

    from edgeav.cli import app

    runner = CliRunner()
    for args in (["--help"], ["train", "--help"]):
        out = runner.invoke(app, args, env={"COLUMNS": "200"}).output
        assert "pip install 'edgeav[train]'" in out, out


def test_model_card_is_validated_naming_the_field(tmp_path):
    from edgeav.models import ModelCard, create_model, load_model, save_model

    card = ModelCard(teacher="teacher", teacher_audio_sha1="a" * 40, foley_rate=0.27, provenance={"train": {}})
    path = save_model(create_model("tiny"), tmp_path / "m", card)
    assert load_model(str(path)).card == card
    meta = json.loads(path.with_suffix(".json").read_text())
    for field, bad in (("foley_rate", 1.5), ("teacher_audio_sha1", "xyz"), ("nonsense", 1)):
        broken = {**meta, "card": {**meta["card"], field: bad}}
        path.with_suffix(".json").write_text(json.dumps(broken))
        with pytest.raises(EdgeavError, match=f"'{field}'"):
            load_model(str(path))
    # a model file from before the card: the runtime's keys of its "extra" dict become the card
    legacy = {k: v for k, v in meta.items() if k != "card"} | {"extra": {"teacher": "teacher", "foley_rate": 0.3}}
    path.with_suffix(".json").write_text(json.dumps(legacy))
    m = load_model(str(path))
    assert m.card.teacher == "teacher" and m.card.foley_rate == 0.3


def test_every_shipped_model_has_a_valid_card_naming_its_recipe():
    from edgeav.models import load_model
    from edgeav.models.store import ASSET_MODELS
    from edgeav_train.recipes import list_recipes

    for path in sorted(ASSET_MODELS.glob("*.safetensors")):
        card = load_model(str(path)).card
        assert card.trained_by == f"edgeav train recipe {path.stem}" and path.stem in list_recipes()
        assert card.foley_rate is not None and card.test_metrics["model"]["top1_file"] > 0


def _configs():
    from edgeav.adapt import AdaptConfig
    from edgeav.pipeline import RunConfig
    from edgeav.review import ReviewConfig
    from edgeav_train.bank_distill import BankDistillConfig
    from edgeav_train.builder import CacheJob
    from edgeav_train.student import DistillConfig
    from edgeav_train.train import TrainConfig

    return [RunConfig, AdaptConfig, ReviewConfig, CacheJob, TrainConfig, DistillConfig, BankDistillConfig]


@pytest.mark.parametrize("cls", _configs(), ids=lambda c: c.__name__)
def test_cli_options_are_the_config_fields(cls):
    """Every field of a command's config is an option with the field's default and its docstring as help: each
    default exists once."""
    import typer

    from edgeav.configcli import config_command, field_docs

    docs = field_docs(cls)
    assert set(docs) == {f.name for f in dataclasses.fields(cls)}, "every field has a docstring"
    app = typer.Typer()
    app.command("x")(config_command(cls, lambda c: c, doc="test"))
    app.command("y")(lambda: None)
    click_cmd = typer.main.get_command(app).commands["x"]
    params = {p.name: p for p in click_cmd.params}
    for f in dataclasses.fields(cls):
        p = params[f.name]
        if f.default is not dataclasses.MISSING:
            want = list(f.default) if isinstance(f.default, tuple) else f.default
            assert p.default == want or (p.default in ((), None) and want in ([], None)), f.name
        elif f.default_factory is not dataclasses.MISSING:
            assert json.loads(p.default) == f.default_factory(), f.name  # dicts travel as JSON
        else:
            assert p.required, f.name
        assert docs[f.name].split()[0] in (p.help or ""), f.name


def _train_cli():
    import typer

    from edgeav.cli import friendly, train_app
    from edgeav_train.cli import register

    if not train_app.registered_commands:
        register(train_app, friendly)
    return typer.main.get_command(train_app)


@pytest.mark.parametrize("name", ["student", "teacher", "student_small", "student_mobile"])
def test_each_recipe_parses_against_the_real_command_line(name):
    """A recipe is data: each step is an `edgeav train` command whose options the command line accepts."""
    from edgeav_train.recipes import load_recipe

    group = _train_cli()
    recipe = load_recipe(name)
    values = {"corpus": "/corpus", "cache": ".cache/x", "runs": "runs/x"}
    assert recipe.steps and recipe.description
    for step in recipe.steps:
        argv = [part.format(**values) for part in step.command]
        assert argv[0] == "train", step.name
        cmd = group.commands[argv[1]]
        ctx = cmd.make_context(argv[1], argv[2:])  # raises on an unknown option or a missing required one
        assert ctx.params, step.name


def test_recipe_dry_run_lists_its_steps_and_skips_finished_ones(tmp_path, monkeypatch):
    from edgeav_train.recipes import load_recipe, run_recipe

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "splits.csv").write_text("clip_id,game,split\n")
    (tmp_path / "runs" / "student" / "stage1").mkdir(parents=True)
    (tmp_path / "runs" / "student" / "stage1" / "model.safetensors").write_bytes(b"")
    lines = []
    run_recipe(load_recipe("student"), str(corpus), runs=str(tmp_path / "runs"), dry_run=True, echo=lines.append)
    assert any("stage1: done" in x for x in lines)
    assert any("stage2-seed0: edgeav train stage2 --model" in x and "--seed 0" in x for x in lines)
    with pytest.raises(EdgeavError, match="no step"):
        run_recipe(load_recipe("student"), str(corpus), only=("nope",))
    with pytest.raises(EdgeavError, match="no recipe"):
        load_recipe("nope")


def test_onnx_backend_exports_on_first_use_and_reuses_it(tmp_path, monkeypatch):
    """`--backend onnx --precision int8` on a PyTorch model: exported once into the cache, in the CPU form on a
    CPU, said so; the second call reuses it; an export runs at its own precision, a conflicting one is an error."""
    pytest.importorskip("onnxruntime")
    from edgeav.backends import load_backend
    from edgeav.models import create_model, save_model

    monkeypatch.setenv("EDGEAV_CACHE", str(tmp_path / "cache"))
    model = str(save_model(create_model("tiny"), tmp_path / "tiny"))
    said = []
    be = load_backend(model, "onnx", "int8", say=said.append)
    assert be.name == "onnx" and be.precision == "int8" and be.side["quant_target"] == "cpu"
    assert len(said) == 1 and "int8-cpu" in said[0]
    again = load_backend(model, "onnx", "int8", say=said.append)
    assert len(said) == 1 and again.side["files"] == be.side["files"]
    sidecar = next((tmp_path / "cache" / "exports").glob("*/*-int8-cpu.onnx.json"))
    assert load_backend(str(sidecar)).precision == "int8"  # the file's own precision is the default
    with pytest.raises(EdgeavError, match="int8 model but fp32"):
        load_backend(str(sidecar), precision="fp32")
    with pytest.raises(EdgeavError, match="cannot run"):
        load_backend(str(sidecar), backend="torch")


def test_wheel_ships_the_runtime_and_training_only(tmp_path):
    """`pip install .` ships edgeav and edgeav_train (with its recipes), never benchmarks/ or research/."""
    r = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(REPO)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-1500:]
    import zipfile

    names = zipfile.ZipFile(next(tmp_path.glob("edgeav-*.whl"))).namelist()
    tops = {n.split("/")[0] for n in names if not n.startswith("edgeav-")}
    assert tops == {"edgeav", "edgeav_train"} and "edgeav_train/recipes/student.toml" in names
