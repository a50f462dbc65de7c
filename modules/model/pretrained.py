"""Pretrained backbone weights from the Hugging Face hub: the local cache first, a download when
the hub answers, and otherwise one line that says where we looked and how to fix it.

Compute nodes of many clusters have no network. Asked for a pretrained backbone, timm would try
the hub with retries for about a minute and end in a long traceback; here the cache is read
first (no network at all when the weights are there), the hub is asked once with a short
timeout, and `python -m app weights fetch` fills the cache from a machine that has network.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import timm
from huggingface_hub import constants, get_hf_file_metadata, hf_hub_download, hf_hub_url, try_to_load_from_cache
from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError

from modules.registry import ConfigError, first_line

PROBE_TIMEOUT = 5.0  # seconds the hub gets to answer before we call it unreachable


class WeightsUnavailable(ConfigError):
    """Pretrained weights that are neither in the local cache nor reachable on the hub."""


@dataclass(frozen=True)
class HubWeights:
    """Where timm publishes a model's pretrained weights: a hub repository, the files it may hold
    them in (safetensors first, as timm prefers), and an optional revision."""

    repo_id: str
    files: tuple[str, ...]
    revision: str | None = None

    def describe(self) -> str:
        return f"{self.repo_id}: {' or '.join(self.files)}"


def safe_alternative(filename: str) -> str | None:
    """timm's safetensors twin of a pickled weights file."""
    if filename == "pytorch_model.bin":
        return "model.safetensors"
    if filename == "open_clip_pytorch_model.bin":
        return "open_clip_model.safetensors"
    return filename.removesuffix(".bin") + ".safetensors" if filename.endswith(".bin") else None


def hub_weights(timm_name: str) -> HubWeights | None:
    """The hub location of `timm_name`'s pretrained weights; None when timm has them elsewhere (a URL)."""
    config = timm.models.get_pretrained_cfg(timm_name)
    if config is None or not config.hf_hub_id:
        return None
    repo_id, _, revision = config.hf_hub_id.partition("@")
    filename = config.hf_hub_filename or "pytorch_model.bin"
    files = tuple(f for f in (safe_alternative(filename), filename) if f)
    return HubWeights(repo_id, files, revision or None)


def cached_file(weights: HubWeights) -> Path | None:
    """The weights file in the local Hugging Face cache (`HF_HOME`, `HF_HUB_CACHE`), if there."""
    for filename in weights.files:
        found = try_to_load_from_cache(weights.repo_id, filename, revision=weights.revision)
        if isinstance(found, str):
            return Path(found)
    return None


def cache_dir() -> str:
    return constants.HF_HUB_CACHE


def download(weights: HubWeights) -> Path:
    """Fetch the first of `weights.files` that the hub has into the cache. Raises
    `WeightsUnavailable` when the hub is off (`HF_HUB_OFFLINE`) or does not answer within
    `PROBE_TIMEOUT` seconds, instead of retrying for a minute."""
    if constants.HF_HUB_OFFLINE:
        raise WeightsUnavailable("HF_HUB_OFFLINE is set")
    for filename in weights.files:
        url = hf_hub_url(weights.repo_id, filename, revision=weights.revision)
        try:
            get_hf_file_metadata(url, timeout=PROBE_TIMEOUT, retry_on_errors=False)
        except EntryNotFoundError:
            continue  # not this file name: try the next
        except (RepositoryNotFoundError, RevisionNotFoundError) as error:
            raise WeightsUnavailable(f"the hub has no repository {weights.repo_id}: {first_line(error)}") from error
        except Exception as error:  # connection refused, DNS, timeout, proxy: the hub is unreachable
            raise WeightsUnavailable(
                f"the hub ({constants.ENDPOINT}) cannot be reached: {first_line(error)}"
            ) from error
        return Path(hf_hub_download(weights.repo_id, filename, revision=weights.revision))
    raise WeightsUnavailable(f"the hub repository {weights.repo_id} has none of {', '.join(weights.files)}")


def local_file(what: str, weights: HubWeights, fetch: str) -> Path:
    """The local file of `weights` (cached, or downloaded now); otherwise one WeightsUnavailable line
    that names `what` was asked for, where we looked, and how to fill the cache (`fetch`: the
    `python -m app weights fetch` argument)."""
    found = cached_file(weights)
    if found is not None:
        return found
    try:
        return download(weights)
    except WeightsUnavailable as error:
        raise WeightsUnavailable(
            f"{what} ({weights.describe()}) are not in the local cache {cache_dir()} and {error}; fix: run "
            f"`python -m app weights fetch {fetch}` on a machine with network (same HF_HOME), point HF_HOME at "
            "a cache that has them, or give --model.weights FILE"
        ) from error


def pretrained_file(backbone: str, timm_name: str) -> Path | None:
    """The local file holding `timm_name`'s pretrained weights (cached, or downloaded now), or
    None when timm fetches them from elsewhere than the hub. `backbone`: the name the user gave."""
    weights = hub_weights(timm_name)
    if weights is None:
        return None
    return local_file(f"pretrained weights of backbone {backbone!r}", weights, backbone)
