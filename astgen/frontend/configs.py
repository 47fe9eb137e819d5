"""Config acquisition: find a Hugging Face ``config.json`` for a model id
(``Qwen/Qwen3-8B``) or an architecture name (``Qwen3ForCausalLM``).

Sources, in order: the Hugging Face cache, local directories of configs, the
Hugging Face Hub (``huggingface_hub``), ModelScope (``modelscope``). What a
hub returned is copied into astgen's cache, so the next lookup is local.
When nothing is found, :class:`ConfigNotFound` lists every source tried and
why it failed. Config text is parsed as JSON, never evaluated.

The hub clients are injectable (``hf_download``, ``ms_download``): the tests
use offline fakes, since neither hub is reachable from CI.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from astgen.atomic import write_atomic

Download = Callable[[str, str], str]  # (model id, filename) -> local path


class ConfigNotFound(Exception):
    def __init__(self, name: str, attempts: list[tuple[str, str]]) -> None:
        self.name, self.attempts = name, attempts
        tried = "; ".join(f"{source}: {why}" for source, why in attempts)
        super().__init__(f"no config found for {name} (tried {tried})")


@dataclass(frozen=True)
class Found:
    source: str  # "hf-cache" | "local" | "hf-hub" | "modelscope" | "astgen-cache"
    path: Path
    config: dict[str, Any]


@dataclass
class ConfigFinder:
    local_dirs: list[Path] = field(default_factory=list)
    hf_cache: Path | None = None  # default: $HF_HUB_CACHE or ~/.cache/huggingface/hub
    cache_dir: Path | None = None  # where fetched configs are kept
    offline: bool = False
    hf_download: Download | None = None
    ms_download: Download | None = None

    def find(self, name: str) -> Found:
        """A config for a model id or an architecture name."""
        attempts: list[tuple[str, str]] = []
        is_id = "/" in name
        local = [("astgen-cache", [self.cache_dir] if self.cache_dir else []), ("hf-cache", [self._hf_cache()]),
                 ("local", self.local_dirs)]
        for source, dirs in local:
            hit = self._search(source, dirs, name, is_id, attempts)
            if hit is not None:
                return hit
        for source, client in (("hf-hub", self._hf_client), ("modelscope", self._ms_client)):
            hit = self._fetch(source, client, name, is_id, attempts)
            if hit is not None:
                return hit
        raise ConfigNotFound(name, attempts)

    # -- local sources ---------------------------------------------------
    def _hf_cache(self) -> Path:
        return self.hf_cache if self.hf_cache is not None else hf_cache_dir()

    def _search(self, source: str, dirs: Iterable[Path], name: str, is_id: bool,
                attempts: list[tuple[str, str]]) -> Found | None:
        dirs = [Path(d) for d in dirs if d is not None]
        existing = [d for d in dirs if d.is_dir()]
        if not existing:
            attempts.append((source, "no such directory" if dirs else "not configured"))
            return None
        for path in sorted(p for d in existing for p in _candidates(d, name, is_id)):
            config = _read_json(path)
            if config is not None and (is_id or name in config.get("architectures", ())):
                return Found(source, path, config)
        what = "no config.json for this model id" if is_id else "no config whose architectures name it"
        attempts.append((source, f"{what} in {', '.join(str(d) for d in existing)}"))
        return None

    # -- hubs ------------------------------------------------------------
    def _fetch(self, source: str, client: Callable[[], Download | None], name: str, is_id: bool,
               attempts: list[tuple[str, str]]) -> Found | None:
        if not is_id:
            attempts.append((source, "needs a model id (org/name), not an architecture name"))
            return None
        if self.offline:
            attempts.append((source, "offline"))
            return None
        try:
            download = client()
            if download is None:
                attempts.append((source, "client library not installed"))
                return None
            path = Path(download(name, "config.json"))
        except Exception as exc:  # noqa: BLE001 - any client failure is one attempt's reason
            attempts.append((source, f"{type(exc).__name__}: {exc}".strip()))
            return None
        config = _read_json(path)
        if config is None:
            attempts.append((source, f"{path} is not a JSON object"))
            return None
        return Found(source, self._keep(name, config) or path, config)

    def _hf_client(self) -> Download | None:
        if self.hf_download is not None:
            return self.hf_download
        try:
            from huggingface_hub import hf_hub_download
        except ImportError:
            return None
        return lambda repo, filename: hf_hub_download(repo_id=repo, filename=filename)

    def _ms_client(self) -> Download | None:
        if self.ms_download is not None:
            return self.ms_download
        try:
            from modelscope.hub.file_download import model_file_download
        except ImportError:
            return None
        return lambda repo, filename: model_file_download(model_id=repo, file_path=filename)

    def _keep(self, name: str, config: dict[str, Any]) -> Path | None:
        """Copy a fetched config into astgen's cache (atomically)."""
        if self.cache_dir is None:
            return None
        target = Path(self.cache_dir) / _flat_name(name)
        try:
            write_atomic(target, json.dumps(config, indent=2, sort_keys=True) + "\n")
        except OSError:
            return None
        return target


def hf_cache_dir() -> Path:
    """The Hugging Face hub cache: $HF_HUB_CACHE, $HF_HOME/hub, else ~/.cache/huggingface/hub."""
    env = os.environ.get("HF_HUB_CACHE") or (
        os.path.join(os.environ["HF_HOME"], "hub") if "HF_HOME" in os.environ else None)
    return Path(env) if env else Path.home() / ".cache" / "huggingface" / "hub"


def local_configs(directory: Path) -> Iterator[tuple[Path, dict[str, Any]]]:
    """Every config in ``directory`` (``*.json``, ``*/config.json``, Hugging
    Face cache snapshots), in path order, with its JSON object."""
    for path in sorted(_candidates(directory, "", is_id=False)):
        config = _read_json(path)
        if config is not None:
            yield path, config


def _flat_name(model_id: str) -> str:
    return model_id.replace("/", "__") + ".json"


def _candidates(directory: Path, name: str, is_id: bool) -> list[Path]:
    if not is_id:
        return [*directory.glob("*.json"), *directory.glob("*/config.json"),
                *directory.glob("models--*/snapshots/*/config.json")]
    org, _, model = name.partition("/")
    return [p for p in (
        directory / _flat_name(name),
        directory / f"{org}--{model}.json",
        directory / org / model / "config.json",
        *sorted(directory.glob(f"models--{org}--{model}/snapshots/*/config.json")),
    ) if p.is_file()]


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text("utf-8-sig"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def missing_keys(config: dict[str, Any], keys: Iterable[str]) -> tuple[str, ...]:
    """The dotted keys (``text_config.hidden_size``) absent from ``config``."""
    out = []
    for key in keys:
        node: Any = config
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                out.append(key)
                break
            node = node[part]
    return tuple(sorted(out))
