"""Pretrained conv stages for the digit-caption encoder: model.encoder_weights / model.freeze_encoder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from attn_cli import records, run
from attn_cli.errors import AttnError
from attn_cli.io import record_file, sha256_file
from attn_cli.models.sat import ShowAttendTell, ShowTell
from attn_cli.models.vision_baselines import GridClassifier
from attn_cli.pretrained import load_pretrained
from tests.conftest import run_cli

RESULTS = Path(__file__).resolve().parent.parent / "results"
PRE_RECORDS = sorted(
    p
    for p in RESULTS.glob("caption/*/*/result.json")
    if (yaml.safe_load(record_file(p.parent, "recipe.yaml").read_text()).get("model") or {}).get("encoder_weights")
)

META = {"pad_id": 0, "unk_id": 1, "bos_id": 2, "eos_id": 3, "vocab_size": 11, "input_kind": "image"}
META = {**META, "input_shape": [1, 20, 28]}
CHANNELS = (5, 7)


def _classifier_ckpt(path: Path, channels: tuple[int, ...] = CHANNELS) -> GridClassifier:
    """A GridClassifier saved the way attn's Lightning checkpoints store it (state_dict keys 'model.*')."""
    torch.manual_seed(1)
    clf = GridClassifier(GridClassifier.Config(channels=channels), image_shape=[1, 28, 28], classes=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": {f"model.{k}": v for k, v in clf.state_dict().items()}}, path)
    return clf


def _sat(**kw: object) -> ShowAttendTell:
    torch.manual_seed(0)
    cfg = ShowAttendTell.Config(channels=CHANNELS, emb_dim=11, hidden=13, attn_dim=7, position=True, **kw)
    return ShowAttendTell(cfg, **META)


def test_trunk_weights_load_from_a_checkpoint_file(tmp_path: Path) -> None:
    clf = _classifier_ckpt(tmp_path / "clf.ckpt")
    m = _sat(encoder_weights=str(tmp_path / "clf.ckpt"))
    assert not torch.equal(m.encoder.body[0].weight, clf.trunk.body[0].weight)
    info = load_pretrained(m, tmp_path)
    for a, b in zip(m.encoder.body.state_dict().values(), clf.trunk.body.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)
    assert info["tensors"] == 4 and len(info["sha256"]) == 64
    assert load_pretrained(ShowAttendTell(_sat().cfg, **META), tmp_path) is None  # nothing named, nothing loaded


def test_vision_recipe_spec_takes_the_newest_finished_run(tmp_path: Path) -> None:
    base = tmp_path / "vision" / "grid-cnn-28"
    for stamp in ("old", "new"):
        _classifier_ckpt(base / stamp / "checkpoints" / "best.ckpt")
        (base / stamp / "train_done.json").write_text("{}")
    _classifier_ckpt(base / "unfinished" / "checkpoints" / "best.ckpt")  # no train_done.json: ignored
    info = load_pretrained(_sat(encoder_weights="vision/grid-cnn-28"), tmp_path)
    assert Path(info["encoder_weights"]).parent.parent.name in ("old", "new")
    info = load_pretrained(_sat(encoder_weights=str(base / "old")), tmp_path)  # a run directory
    assert info["encoder_weights"] == str(base / "old" / "checkpoints" / "best.ckpt")


@pytest.mark.parametrize(
    ("make", "spec", "msg"),
    [
        (None, "vision/grid-cnn-28", "train it first: attn train vision --recipe grid-cnn-28"),
        (None, "missing.ckpt", "does not exist"),
        ("garbage", "bad.ckpt", "corrupt or not a checkpoint"),
        ("no-trunk", "bad.ckpt", "holds no GridCNN trunk"),
        ("wider", "bad.ckpt", "does not fit model.channels"),
    ],
)
def test_encoder_weights_errors(tmp_path: Path, make: str | None, spec: str, msg: str) -> None:
    path = tmp_path / spec
    if make == "garbage":
        path.write_bytes(b"not a checkpoint")
    elif make == "no-trunk":
        torch.save({"state_dict": {"model.out.weight": torch.zeros(2, 2)}}, path)
    elif make == "wider":
        _classifier_ckpt(path, channels=(6, 7))
    cwd_spec = spec if spec.startswith("vision/") else str(path)
    with pytest.raises(AttnError, match=msg):
        load_pretrained(_sat(encoder_weights=cwd_spec), tmp_path)


def test_a_frozen_encoder_keeps_its_stages_and_learns_its_positions() -> None:
    m = _sat(freeze_encoder=True)
    assert not any(p.requires_grad for p in m.encoder.body.parameters())
    assert m.encoder.position.requires_grad
    x = torch.rand(2, 1, 20, 28)
    tok_out = torch.randint(4, 11, (2, 4))
    tok_in = torch.cat([torch.full((2, 1), 2), tok_out[:, :-1]], 1)
    loss, _ = m.loss(x, tok_in, tok_out)
    loss.backward()
    assert all(p.grad is None for p in m.encoder.body.parameters())
    assert m.encoder.position.grad is not None and m.encoder.position.grad.abs().sum() > 0


def test_encoder_options_need_a_pixel_encoder() -> None:
    feats = {**META, "input_kind": "features", "input_shape": [4, 6]}
    with pytest.raises(AttnError, match="needs a pixel encoder"):
        ShowTell(ShowTell.Config(freeze_encoder=True), **feats)
    m = ShowTell(ShowTell.Config(encoder_weights="x.ckpt"), **feats)
    with pytest.raises(AttnError, match="precomputed features"):
        load_pretrained(m, Path("."))


def test_train_loads_the_trunk_and_records_it(tmp_path: Path, generated_data: Path) -> None:
    recipe = yaml.safe_load(Path("recipes/tiny/caption/sat-soft.yaml").read_text())
    channels = tuple(recipe.get("model", {}).get("channels", (32, 64, 64)))
    in_ch = 1
    torch.manual_seed(2)
    clf = GridClassifier(GridClassifier.Config(channels=channels), image_shape=[in_ch, 28, 28], classes=10)
    ckpt = tmp_path / "clf.ckpt"
    torch.save({"state_dict": {f"model.{k}": v for k, v in clf.state_dict().items()}}, ckpt)
    summary = run.train(
        "caption",
        "tiny/sat-soft",
        runs_dir=tmp_path / "runs",
        data_dir=generated_data,
        progress=False,
        overrides=["train.threads=1", f"model.encoder_weights={ckpt}", "model.freeze_encoder=true"],
    )
    run_dir = Path(summary["run_dir"])
    assert json.loads((run_dir / "run.json").read_text())["pretrained"]["encoder_weights"] == str(ckpt)
    state = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["state_dict"]
    trained = {k.split("encoder.body.", 1)[1]: v for k, v in state.items() if "encoder.body." in k}
    for k, v in clf.trunk.body.state_dict().items():
        torch.testing.assert_close(trained[k], v)  # loaded, then kept fixed through training


def test_a_caption_record_names_the_recorded_encoder_it_started_from(tmp_path: Path, generated_data: Path) -> None:
    """The -pre rows' provenance: the caption record gives the sha256 of the trunk it loaded and the encoder's record,
    found by that sha256 among the records' scored checkpoints; weights nobody recorded give the sha256 alone."""
    common = {"runs_dir": tmp_path / "runs", "data_dir": generated_data, "progress": False}
    encoder = Path(
        run.train("vision", "tiny/grid-cnn", overrides=["train.threads=1", "model.channels=[5,7]"], **common)["run_dir"]
    )
    run.evaluate("vision", encoder, data_dir=generated_data, progress=False)
    results = tmp_path / "results"
    enc_rec = json.loads(records.record("vision", encoder, results_dir=results).read_text())
    assert enc_rec["checkpoint"]["sha256"] == sha256_file(encoder / "checkpoints" / "best.ckpt")
    overrides = ["train.threads=1", f"model.encoder_weights={encoder}", "model.freeze_encoder=true"]
    captioner = Path(run.train("caption", "tiny/sat-soft", overrides=overrides, **common)["run_dir"])
    run.evaluate("caption", captioner, data_dir=generated_data, progress=False)
    pre = json.loads(records.record("caption", captioner, results_dir=results).read_text())["pretrained"]
    assert pre["encoder_weights"] == str(encoder / "checkpoints" / "best.ckpt")
    assert pre["sha256"] == enc_rec["checkpoint"]["sha256"]
    assert pre["record"] == f"vision/{enc_rec['dataset']}/{enc_rec['recipe'].replace('/', '-')}"
    elsewhere = records.record("caption", captioner, results_dir=tmp_path / "elsewhere")  # the encoder's record absent
    alone = json.loads(elsewhere.read_text())["pretrained"]
    assert alone["sha256"] == pre["sha256"] and "record" not in alone


def test_a_missing_trunk_is_one_line_exit_2_and_leaves_no_run(dirs: dict[str, Path]) -> None:
    """`attn train` of a -pre recipe before its trunk exists: the command to make it, and no run directory."""
    from attn_cli import run as attn_run

    attn_run.prepare("glyphs-captions", data_dir=dirs["data"], overrides=["train=16", "val=4", "test=6"])
    code, out, err = run_cli(
        "train", "caption", "--recipe", "tiny/sat-soft", "--set", "model.encoder_weights=vision/grid-cnn-28"
    )
    message = (out + err).strip()
    assert code == 2 and len(message.splitlines()) == 1
    assert "attn train vision --recipe grid-cnn-28" in message
    assert not any(dirs["runs"].rglob("*"))


@pytest.mark.parametrize("path", PRE_RECORDS, ids=[p.parent.name for p in PRE_RECORDS])
def test_every_recorded_row_on_a_pretrained_trunk_names_its_recorded_encoder(path: Path) -> None:
    """A -pre row traces to the trunk it loaded: the encoder's record, from committed code, scored the very bytes."""
    pre = json.loads(path.read_text())["pretrained"]
    encoder = json.loads((RESULTS / pre["record"] / "result.json").read_text())
    assert encoder["checkpoint"]["sha256"] == pre["sha256"]
    assert not encoder["git_sha"].endswith("-dirty")


def test_the_xu_tables_pretrained_rows_are_among_the_checked_records() -> None:
    names = {p.parent.name for p in PRE_RECORDS}
    six = ("show-tell-pre", "sat-soft-pre", "sat-soft-nods-pre", "sat-hard-pre", "sat-soft-pre@3000")
    assert {*six, "sat-soft-supervised-pre"} <= names
