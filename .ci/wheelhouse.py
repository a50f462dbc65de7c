"""Build the wheelhouse an offline node needs on top of a stock PyTorch image.

    .venv/bin/python .ci/wheelhouse.py WHEELHOUSE [--stock torch torchvision lightning timm tensorboard]

Run it where there is a package index, with the project's environment (the versions installed
there are the versions fetched). It writes the project's wheel and a wheel of every dependency
that the stock packages (and what they depend on) do not already bring, and prints their names.
On the node: `pip install --no-index --find-links WHEELHOUSE robust-finetune`.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
PROJECT = "robust-finetune"
STOCK = ("torch", "torchvision", "lightning", "timm", "tensorboard")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def closure(names: list[str]) -> dict[str, str]:
    """Installed distributions needed by `names` (requirement strings, extras followed), name -> version."""
    found: dict[str, str] = {}
    todo = [Requirement(name) for name in names]
    seen: set[tuple[str, frozenset[str]]] = set()
    while todo:
        requirement = todo.pop()
        name, extras = canonical(requirement.name), frozenset(requirement.extras)
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # a requirement this platform does not need (its marker is false)
        found[name] = dist.version
        for text in dist.requires or []:
            needed = Requirement(text)
            if needed.marker is None or any(needed.marker.evaluate({"extra": e}) for e in ("", *extras)):
                todo.append(needed)
    return found


def missing(stock: list[str]) -> dict[str, str]:
    """What the project needs beyond the stock packages' closure, and setuptools: a venv made by Python
    3.11 brings its own (65), older than torch asks for, and pip must find a newer one offline."""
    have = closure(stock)
    need = {name: version for name, version in closure([PROJECT]).items() if name not in have and name != PROJECT}
    return dict(sorted((need | {"setuptools": metadata.version("setuptools")}).items()))


def pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", *args], check=True, stdout=subprocess.DEVNULL)


def project_wheel(out: Path) -> None:
    """The project's wheel, built from a copy (setuptools leaves build/ and *.egg-info in the tree it builds)."""
    skip = shutil.ignore_patterns(".*", "build", "runs", "data", "tests", "notebooks", "*.egg-info", "__pycache__")
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "source"
        shutil.copytree(ROOT, source, ignore=skip)
        pip("wheel", "--no-deps", "-w", str(out.resolve()), str(source))


def build(out: Path, stock: list[str]) -> dict[str, str]:
    out.mkdir(parents=True, exist_ok=True)
    project_wheel(out)
    extra = missing(stock)
    for name, version in extra.items():
        try:
            pip("download", "--no-deps", "--only-binary=:all:", "-d", str(out), f"{name}=={version}")
        except subprocess.CalledProcessError:  # published as a source distribution only: build its wheel
            pip("wheel", "--no-deps", "-w", str(out), f"{name}=={version}")
    return extra


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--stock", nargs="+", default=list(STOCK), help="what the node's image already has")
    args = parser.parse_args()
    extra = build(args.out, args.stock)
    print(f"{PROJECT} and {len(extra)} wheels beyond {', '.join(args.stock)}: " + ", ".join(extra))
    return 0


if __name__ == "__main__":
    sys.exit(main())
