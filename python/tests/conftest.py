"""Shared fixtures: the command-line tool the Python results are compared with."""

import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def pytest_addoption(parser):
    parser.addoption(
        "--linearnexus-cli",
        default=str(ROOT / "build" / "linearnexus"),
        help="the linearnexus executable to compare with (default: build/linearnexus)",
    )


@pytest.fixture(scope="session")
def cli(request):
    path = pathlib.Path(request.config.getoption("--linearnexus-cli"))
    if not path.is_file():
        raise FileNotFoundError(f"no linearnexus executable at {path}: build it (scripts/build.sh) or pass --linearnexus-cli")

    def run(*args):
        return subprocess.run([str(path), *map(str, args)], check=True, capture_output=True, text=True).stdout

    return run
