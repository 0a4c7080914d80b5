"""The Pythons the project runs on: the ones CI tests are the ones pyproject.toml allows and
the image uses, and scripts/ensure-python (which `make` asks for each venv's interpreter)
finds them, or says why not."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

from packaging.specifiers import SpecifierSet
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
ENSURE_PYTHON = str(ROOT / "scripts" / "ensure-python")


def ci_pythons() -> list[str]:
    """X.Y of each Python .ci/run runs the suite on (the Makefile's default first)."""
    default = re.search(r"^PYTHON \?= python(\d+\.\d+)$", (ROOT / "Makefile").read_text(), re.M)
    others = re.findall(
        r"^make test PYTHON=python(\d+\.\d+) ", (ROOT / ".ci/run").read_text(), re.M
    )
    assert default and others, "the Makefile's default Python or .ci/run's second run is gone"
    return [default[1], *others]


def ensure_python(command: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [ENSURE_PYTHON, command],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(Path.home()), **env},
    )


def test_ci_runs_the_image_python_and_only_pythons_pyproject_allows():
    allowed = SpecifierSet(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    )
    image = re.search(r"^FROM python:(\d+\.\d+)-", (ROOT / "Dockerfile").read_text(), re.M)
    tested = ci_pythons()
    assert image and image[1] in tested, f"the image's Python {image} is not one CI tests"
    assert image[1] == max(tested, key=Version), "the image runs an older Python than CI tests"
    for version in tested:
        assert Version(version) in allowed, f"CI tests {version}, requires-python is {allowed}"


def test_ensure_python_finds_every_python_ci_runs():
    for version in ci_pythons():
        found = ensure_python(f"python{version}")
        assert found.returncode == 0, found.stderr
        path = found.stdout.strip()
        ran = subprocess.run(
            [path, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            check=True,
        )
        assert ran.stdout.strip() == version, f"{path} is not Python {version}"


def test_ensure_python_takes_a_build_of_its_own_under_its_prefix(tmp_path):
    """Where no pyenv build is found, an earlier build under PYTHON_PREFIX is used, not
    built again."""
    real = ensure_python("python3.13").stdout.strip()
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "python3.13").symlink_to(real)
    found = ensure_python(
        "python3.13", PYENV_ROOT=str(tmp_path / "no-pyenv"), PYTHON_PREFIX=str(tmp_path)
    )
    assert found.returncode == 0, found.stderr
    assert found.stdout.strip() == str(tmp_path / "bin" / "python3.13")


def test_ensure_python_says_what_it_cannot_install():
    refused = ensure_python("python-of-no-version")
    assert refused.returncode != 0
    assert "only a pythonX.Y can be installed" in refused.stderr
