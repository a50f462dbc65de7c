"""Config files composed from others, so that each fact of the study lives in one file.

A config file may list others under its `config` key (paths relative to it):

    config: [../study.yaml, ../protocol/fft50.yaml]

They are read first, in order (and what they list before them), then the file itself, exactly as
if each had been given with its own `--config`. jsonargparse ignores a `config` key inside a
file, so the app expands it before parsing, wherever a config file is read: the command line and
the sweep."""

from __future__ import annotations

from pathlib import Path

import yaml

from modules.registry import ConfigError

KEY = "config"


def composed(path: Path, chain: tuple[Path, ...] = ()) -> list[Path]:
    """The files `path` stands for: what it lists (recursively), then itself."""
    if not path.is_file():
        return [path]  # a YAML string, or a missing file: jsonargparse says what is wrong with it
    here = path.resolve()
    if here in chain:
        raise ConfigError(
            f"config file {path} lists itself under `{KEY}`: {' -> '.join(str(p) for p in (*chain, here))}"
        )
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"config file {path} is not valid YAML: {' '.join(str(error).split())}") from error
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {path} must hold a mapping of options, got a {type(raw).__name__}")
    listed = raw.get(KEY, [])
    listed = [listed] if isinstance(listed, str) else listed
    if not isinstance(listed, list) or not all(isinstance(item, str) for item in listed):
        raise ConfigError(f"config file {path}: `{KEY}` must be a list of config file paths, got {listed!r}")
    files: list[Path] = []
    for item in listed:
        included = here.parent / item
        if not included.is_file():
            raise ConfigError(f"config file {path} lists {item!r} under `{KEY}`, but {included} does not exist")
        files += composed(included, (*chain, here))
    return [*files, path]


def expand_config_arguments(argv: list[str]) -> list[str]:
    """`--config FILE` (or `--config=FILE`) -> one `--config` per file it is composed of."""
    out: list[str] = []
    args = iter(argv)
    for arg in args:
        if arg == "--config":
            value = next(args, None)
            if value is None:
                out.append(arg)
                continue
        elif arg.startswith("--config="):
            value = arg.removeprefix("--config=")
        else:
            out.append(arg)
            continue
        for file in composed(Path(value)):
            out += ["--config", str(file)]
    return out
