"""The torchvision photo encoders for real: trunks, weights files, features, and prepare -> train -> eval.

torchvision is not in the default venv (it needs its own 5.5 GB torch build), so this module skips
there; ``make test-torchvision`` runs it in a separate venv (torch==2.14.1, torchvision==0.29.1).
Nothing is downloaded: a state dict saved from a randomly initialised torchvision model stands in
for the ImageNet weights, and the images are tiny fixtures written with PIL.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from attn_cli.errors import AttnError
from attn_cli.io import read_json, read_jsonl
from attn_cli.pretrained import BACKBONES, extract_features, torchvision_backbone
from tests.conftest import ATTN_EXE, run_cli

tv = pytest.importorskip("torchvision")
pytestmark = pytest.mark.torchvision

SIZE = 64  # input side: a 2×2 ResNet grid, 4×4 for VGG — small enough for a 2-core CPU


def _model(name: str, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return getattr(tv.models, BACKBONES[name][0])(weights=None).eval()


@pytest.fixture(scope="module")
def resnet18_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("weights") / "resnet18.pth"
    torch.save(_model("resnet18").state_dict(), path)
    return path


def _photos(folder: Path, n: int, seed: int = 0) -> list[Path]:
    """``n`` small images of varied sizes and modes (RGB JPEG, grey PNG, RGBA PNG, palette PNG)."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        h, w = int(rng.integers(20, 90)), int(rng.integers(20, 90))
        rgb = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
        kind = i % 4
        img = (rgb, rgb.convert("L"), rgb.convert("RGBA"), rgb.convert("P"))[kind]
        path = folder / f"{i}.{'jpg' if kind == 0 else 'png'}"
        img.save(path)
        paths.append(path)
    return paths


def _one_line(message: str) -> str:
    message = message.strip()
    assert len(message.splitlines()) == 1, message
    return message


# -- trunks and weights ---------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "grid"), [("resnet18", 2), ("vgg16", 4)])
def test_trunk_gives_the_documented_grid(name: str, grid: int) -> None:
    torch.manual_seed(0)
    trunk = torchvision_backbone(name, pretrained=False)
    assert not trunk.training and not any(p.requires_grad for p in trunk.parameters())
    with torch.no_grad():
        fmap = trunk(torch.randn(3, 3, SIZE, SIZE))
    assert fmap.shape == (3, BACKBONES[name][2], grid, grid)
    assert torch.isfinite(fmap).all()


@pytest.mark.parametrize("name", ["resnet18", "vgg16"])
def test_a_state_dict_file_gives_that_models_trunk(name: str, tmp_path: Path) -> None:
    model = _model(name, seed=1)
    path = tmp_path / f"{name}.pth"
    torch.save(model.state_dict(), path)
    x = torch.randn(2, 3, SIZE, SIZE)
    with torch.no_grad():
        if name.startswith("vgg"):
            want = model.features[:-1](x)  # conv5_3 + ReLU, before the last max-pool
        else:
            m = model
            want = m.layer4(m.layer3(m.layer2(m.layer1(m.maxpool(m.relu(m.bn1(m.conv1(x))))))))
        got = torchvision_backbone(name, weights=str(path))(x)
        other = torchvision_backbone(name, pretrained=False)(x)  # another random init
    assert torch.equal(got, want)
    assert not torch.allclose(other, want)


def _bad_weights(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / f"{kind}.pth"
    state = _model("resnet18").state_dict()
    if kind == "garbage":
        path.write_bytes(b"not a checkpoint")
    elif kind == "tensor":
        torch.save(torch.zeros(3), path)
    elif kind == "shapes":
        state["fc.weight"] = torch.zeros(10, 512)
        torch.save(state, path)
    elif kind == "keys":
        torch.save({f"module.{k}": v for k, v in state.items()}, path)  # saved from a DDP wrapper
    return path


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("missing", r"encoder weights .*missing\.pth do not exist; pass a torchvision resnet18 state dict"),
        ("garbage", r"cannot be read as a state dict \(\w+\); save one with torch\.save"),
        ("tensor", r"holds a Tensor, not a state dict"),
        ("shapes", r"do not fit torchvision's resnet18 \(tensor shapes differ\)"),
        ("keys", r"do not fit torchvision's resnet18 \(\d+ missing, \d+ unexpected keys, e\.g\. 'conv1\.weight'\)"),
    ],
)
def test_unusable_weights_files_are_one_line_errors(kind: str, message: str, tmp_path: Path) -> None:
    path = _bad_weights(tmp_path, kind)
    with pytest.raises(AttnError, match=message) as err:
        torchvision_backbone("resnet18", weights=str(path))
    _one_line(str(err.value))


def test_offline_without_a_weights_file_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATTN_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))  # no cached ImageNet weights
    with pytest.raises(AttnError, match=r"offline \(ATTN_OFFLINE\) and no local weights for resnet18") as err:
        torchvision_backbone("resnet18")
    assert "--set encoder_weights=FILE" in _one_line(str(err.value))


def test_offline_uses_torchvisions_cached_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATTN_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    model = _model("resnet18", seed=2)
    url = tv.models.get_model_weights("resnet18").DEFAULT.url
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name
    cached.parent.mkdir(parents=True)
    torch.save(model.state_dict(), cached)
    x = torch.randn(1, 3, SIZE, SIZE)
    with torch.no_grad():
        assert torch.equal(torchvision_backbone("resnet18")(x), nn.Sequential(*list(model.children())[:-2])(x))


def test_a_failed_download_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ATTN_OFFLINE", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))

    def no_network(*args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    with pytest.raises(
        AttnError, match=r"cannot download ImageNet weights for resnet18 \(URLError\); offline\?"
    ) as err:
        torchvision_backbone("resnet18")
    _one_line(str(err.value))


# -- features -------------------------------------------------------------------------------------


def test_extract_features_shapes_batches_and_determinism(resnet18_file: Path, tmp_path: Path) -> None:
    paths = _photos(tmp_path / "img", 5)
    feats = extract_features(paths, "resnet18", weights=str(resnet18_file), size=SIZE, batch=2)
    assert feats.shape == (5, 4, 512) and feats.dtype == np.float16  # nothing skipped, L = 2×2
    assert np.isfinite(feats).all() and len({f.tobytes() for f in feats}) == 5
    # the same features again, one batch at a time, and written straight into a .npy file
    net = torchvision_backbone("resnet18", weights=str(resnet18_file))
    again = extract_features(paths, "resnet18", weights=None, size=SIZE, batch=2, net=net)
    assert np.array_equal(again, feats)
    one = np.stack([extract_features([p], "resnet18", weights=None, size=SIZE, net=net)[0] for p in paths])
    np.testing.assert_allclose(one.astype(np.float32), feats.astype(np.float32), atol=2e-2, rtol=1e-2)
    out = tmp_path / "feats.npy"
    extract_features(paths, "resnet18", weights=None, size=SIZE, batch=2, out=out, net=net)
    assert np.array_equal(np.load(out), feats)
    empty = extract_features([], "resnet18", weights=None, size=SIZE, out=tmp_path / "empty.npy", net=net)
    assert empty.shape == np.load(tmp_path / "empty.npy").shape == (0, 4, 512) and empty.dtype == np.float16


def test_an_image_that_does_not_decode_is_a_one_line_error_in_extract_features(
    resnet18_file: Path, tmp_path: Path
) -> None:
    paths = _photos(tmp_path / "img", 2)
    paths[1].write_bytes(paths[1].read_bytes()[:40])
    with pytest.raises(AttnError, match=r"image .*1\.png cannot be decoded") as err:
        extract_features(paths, "resnet18", weights=str(resnet18_file), size=SIZE)
    _one_line(str(err.value))


# -- prepare -> train -> eval through the console script ------------------------------------------


def _flickr8k(root: Path) -> Path:
    """Karpathy's JSON for 12 images (8 train, 2 val, 2 test) and the image folder, with one broken image."""
    words = ["dog", "cat", "man", "girl"]
    images = []
    for i in range(12):
        split = "train" if i < 8 else "val" if i < 10 else "test"
        w = words[i % 4]
        sents = [{"raw": f"A {w} runs on the grass."}, {"raw": f"The {w} is outside."}]
        images.append({"filename": f"{i}.jpg", "split": split, "sentences": sents, "imgid": i})
    root.mkdir(parents=True)
    (root / "dataset_flickr8k.json").write_text(json.dumps({"images": images, "dataset": "flickr8k"}))
    folder = root / "Flicker8k_Dataset"
    for i, path in enumerate(_photos(folder, 12, seed=3)):
        path.rename(folder / f"{i}.jpg")  # .jpg names whatever the format, as real folders have
    (folder / "5.jpg").write_bytes((folder / "5.jpg").read_bytes()[:60])  # truncated
    return root


def _attn(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([ATTN_EXE, *args], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_prepare_train_eval_on_photos_through_the_cli(resnet18_file: Path, tmp_path: Path) -> None:
    src = _flickr8k(tmp_path / "flickr8k")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ATTN_OFFLINE": "1", "TORCH_HOME": str(tmp_path / "torch-home")}
    env.update({f"ATTN_{d.upper()}": str(tmp_path / d) for d in ("data", "runs", "results")})
    prepare = [
        "prepare", "caption", "--dataset", "flickr8k", "--source", str(src),
        "--set", "encoder=resnet18", "--set", f"encoder_weights={resnet18_file}",
        "--set", f"image_size={SIZE}", "--set", "min_freq=1",
    ]  # fmt: skip
    proc = _attn(env, *prepare)
    warning = [ln for ln in proc.stderr.splitlines() if ln.startswith("warning:")]
    assert len(warning) == 1 and "1 of 12 images do not decode" in warning[0] and "5.jpg" in warning[0]
    data = tmp_path / "data" / "flickr8k-resnet18"
    manifest = read_json(data / "manifest.json")
    assert manifest["kind"] == "features" and manifest["encoder"] == "resnet18"
    assert manifest["counts"] == {"train": 7, "val": 2, "test": 2} and manifest["undecodable_skipped"] == 1
    assert "5.jpg" not in {Path(r["file"]).name for r in read_jsonl(data / "train.jsonl")}
    feats = np.load(data / "train_feats.npy")
    assert feats.shape == (7, 4, 512) and feats.dtype == np.float16

    # the feature cache: the same command reuses it; --force computes the very same bytes again
    stamp = (data / "train_feats.npy").stat().st_mtime_ns
    _attn(env, *prepare)
    assert (data / "train_feats.npy").stat().st_mtime_ns == stamp and read_json(data / "manifest.json") == manifest
    _attn(env, *prepare, "--force")
    again = read_json(data / "manifest.json")
    assert again["files"] == manifest["files"]  # sha256 of every prepared file, features included
    assert np.array_equal(np.load(data / "train_feats.npy"), feats)

    train = [
        "train", "caption", "--recipe", "sat-soft-flickr8k", "--set", "data.dataset=flickr8k-resnet18",
        "--set", "model.emb_dim=16", "--set", "model.hidden=32", "--set", "model.attn_dim=16",
        "--set", "train.batch_size=4", "--set", "train.max_steps=3", "--set", "train.threads=1",
        "--set", "data.eval_batch_size=2", "--set", "eval.meteor=false",
    ]  # fmt: skip
    _attn(env, *train)
    (run_dir,) = (tmp_path / "runs" / "caption" / "sat-soft-flickr8k").iterdir()
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    _attn(env, "eval", "caption", "--run", str(run_dir), "--split", "test", "--beam", "2")
    metrics = read_json(run_dir / "eval" / "test" / "metrics.json")["metrics"]
    assert {"bleu4", "cider", "ppl"} <= set(metrics) and all(np.isfinite(v) for v in metrics.values())
    preds = read_jsonl(run_dir / "eval" / "test" / "predictions.jsonl")
    assert len(preds) == 2 and all(isinstance(p["hyp"], str) for p in preds)


def test_prepare_offline_without_weights_is_exit_code_2(
    tmp_path: Path, dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ATTN_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    src = _flickr8k(tmp_path / "flickr8k")
    code, out, err = run_cli("prepare", "caption", "--dataset", "flickr8k", "--source", str(src))
    assert code == 2
    assert "offline (ATTN_OFFLINE) and no local weights for resnet50" in _one_line(out + err)
    assert not (dirs["data"] / "flickr8k").exists()
