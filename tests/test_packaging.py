"""A built wheel is a working `attn`: recipes ship inside it and are found from any directory.

The wheel is built from a copy of the sources (a stale ``build/`` in the tree could otherwise
smuggle old files in), installed with ``--no-deps`` into a fresh virtual environment that
borrows the test interpreter's packages (torch, typer, ...) through a ``.pth`` line, and run
from a directory that is not the repository.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

from tests.conftest import REPO

SOURCES = ("attn_cli", "data_prep", "recipes", "setup.py", "pyproject.toml", "MANIFEST.in", "README.md")


def _run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel installed (no dependencies; the test interpreter's borrowed)."""
    root = tmp_path_factory.mktemp("wheel")
    src = root / "src"
    for name in SOURCES:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            src.mkdir(exist_ok=True)
            shutil.copy2(path, src / name)
    built = _run(
        sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", root / "dist", src, cwd=root
    )
    assert built.returncode == 0, built.stderr[-2000:]
    wheel = next((root / "dist").glob("attn-*.whl"))
    env_dir = root / "env"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    site = _run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=root).stdout.strip()
    Path(site, "borrowed.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    done = _run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", wheel, cwd=root)
    assert done.returncode == 0, done.stderr[-2000:]
    return env_dir


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("ATTN_") and k != "PYTHONPATH"}


@pytest.mark.slow
def test_installed_wheel_lists_its_recipes_from_any_directory(installed: Path, tmp_path: Path) -> None:
    where = _run(
        installed / "bin" / "python",
        "-c",
        "import attn_cli, attn_cli.config as c; print(attn_cli.__file__); print(c.shipped_recipes())",
        cwd=tmp_path,
        env=_clean_env(),
    )
    package, recipes = where.stdout.split()
    assert Path(package).is_relative_to(installed), "the wheel's attn_cli, not the source tree's, is imported"
    assert Path(recipes) == Path(package).parent / "recipes"
    listed = _run(installed / "bin" / "attn", "recipes", "nmt", cwd=tmp_path, env={**_clean_env(), "COLUMNS": "200"})
    assert listed.returncode == 0, listed.stderr
    for name in ("luong-local-p", "bahdanau", "tiny/seq2seq"):
        assert name in listed.stdout, listed.stdout
    assert "broken" not in listed.stdout


@pytest.mark.slow
def test_installed_wheel_finds_a_users_own_recipes_and_paths(installed: Path, tmp_path: Path) -> None:
    own = tmp_path / "recipes" / "nmt" / "my-luong.yaml"
    own.parent.mkdir(parents=True)
    own.write_text("base: luong-global-general\ndescription: mine\ntrain: {max_steps: 7}\n", encoding="utf-8")
    env = {**_clean_env(), "COLUMNS": "200"}
    listed = _run(installed / "bin" / "attn", "recipes", "nmt", cwd=tmp_path, env=env)
    assert "my-luong" in listed.stdout and "7 steps" in listed.stdout, listed.stdout + listed.stderr
    assert "luong-local-p" in listed.stdout  # the shipped recipes are still there beside the user's
    bad = _run(
        installed / "bin" / "attn",
        "train",
        "nmt",
        "--recipe",
        str(own),
        "--set",
        "train.lr=fast",
        cwd=tmp_path,
        env=env,
    )
    assert bad.returncode == 2 and "train.lr expects a number" in bad.stderr, bad.stderr
    version = _run(installed / "bin" / "attn", "--version", cwd=tmp_path, env=env)
    assert version.stdout.split() == [
        "attn",
        _run(sys.executable, "-c", "import attn_cli; print(attn_cli.__version__)", cwd=REPO).stdout.strip(),
    ]
