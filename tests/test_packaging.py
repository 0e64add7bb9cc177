"""A regular (non-editable) install ships every subpackage: pyproject.toml lists them one by one."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_every_subpackage_of_flows_is_listed_in_pyproject():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["packages"])
    found = {
        ".".join(path.parent.relative_to(ROOT).parts)
        for path in (ROOT / "flows").rglob("__init__.py")
        if "__pycache__" not in path.parts and "static" not in path.parts
    }
    assert listed == found, listed ^ found
