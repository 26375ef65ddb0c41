"""Every data file in the package ships in the wheel.

An editable install reads files straight from the source tree, so a `package-data` glob that no
longer matches (after a file moves) goes unnoticed until someone installs a wheel.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "debate"


def _package_data_globs() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return config["tool"]["setuptools"]["package-data"]["debate"]


def _data_files() -> set[Path]:
    return {
        path
        for path in PACKAGE.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix not in {".py", ".pyc", ".pyo"}
    }


def test_every_non_python_file_under_the_package_matches_a_package_data_glob() -> None:
    shipped = {path for pattern in _package_data_globs() for path in PACKAGE.glob(pattern)}
    data = _data_files()
    assert data, "the package has data files (templates, sample KB, migrations' script template)"
    missing = sorted(str(path.relative_to(ROOT)) for path in data - shipped)
    assert not missing, f"not matched by [tool.setuptools.package-data]: {missing}"


def test_every_package_data_glob_matches_something() -> None:
    stale = [pattern for pattern in _package_data_globs() if not any(PACKAGE.glob(pattern))]
    assert not stale, f"package-data globs that match no file: {stale}"
