"""Build hook: the top-level ``recipes/`` tree ships inside the wheel as ``attn_cli/recipes/``.

``recipes/`` stays where it is (a fixed point of the project layout, read in place by a source
tree and an editable install); a built wheel carries a copy next to the package, where
:func:`attn_cli.config.shipped_recipes` finds it, so an installed `attn` lists and trains the
recipes from any directory. Everything else is configured in pyproject.toml.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildPyWithRecipes(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:  # an editable install reads recipes/ in place
            return
        source = Path("recipes")
        target = Path(self.build_lib) / "attn_cli" / "recipes"
        for path in sorted(source.rglob("*.yaml")):
            dest = target / path.relative_to(source)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, dest)


setup(cmdclass={"build_py": BuildPyWithRecipes})
