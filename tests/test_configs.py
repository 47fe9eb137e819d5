"""Config acquisition against local directories, a fake Hugging Face cache
and offline fakes of the two hub clients (neither hub is reachable in CI)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from astgen.cli import main
from astgen.frontend.configs import ConfigFinder, ConfigNotFound, missing_keys
from tests.helpers import HF_CONFIGS

QWEN3 = {"architectures": ["Qwen3ForCausalLM"], "hidden_size": 4096, "model_type": "qwen3"}


def hf_cache_with(root: Path, model_id: str, config: dict) -> Path:
    org, name = model_id.split("/")
    snap = root / f"models--{org}--{name}" / "snapshots" / "0123abcd"
    snap.mkdir(parents=True)
    (snap / "config.json").write_text(json.dumps(config))
    return root


class FakeHub:
    """Stands in for hf_hub_download / model_file_download: serves files from
    a dict, or raises what an unreachable hub raises."""

    def __init__(self, tmp: Path, files: dict[str, dict] | None = None, error: Exception | None = None):
        self.tmp, self.files, self.error, self.calls = tmp, files or {}, error, []

    def __call__(self, repo: str, filename: str) -> str:
        self.calls.append((repo, filename))
        if self.error is not None:
            raise self.error
        if repo not in self.files:
            raise FileNotFoundError(f"404 {repo}/{filename}")
        path = self.tmp / repo.replace("/", "_") / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.files[repo]))
        return str(path)


def test_hf_cache_comes_first(tmp_path):
    cache = hf_cache_with(tmp_path / "hf", "Qwen/Qwen3-8B", QWEN3)
    hub = FakeHub(tmp_path / "dl", error=OSError("unreachable"))
    finder = ConfigFinder(local_dirs=[HF_CONFIGS], hf_cache=cache, hf_download=hub, ms_download=hub)
    found = finder.find("Qwen/Qwen3-8B")
    assert (found.source, found.config["hidden_size"], hub.calls) == ("hf-cache", 4096, [])
    # by architecture name, too
    assert finder.find("Qwen3ForCausalLM").source == "hf-cache"


def test_local_directory_by_id_and_by_architecture(tmp_path):
    finder = ConfigFinder(local_dirs=[HF_CONFIGS], hf_cache=tmp_path / "empty", offline=True)
    found = finder.find("deepseek-ai/DeepSeek-V2-Lite")
    assert (found.source, found.path.name, found.config["kv_lora_rank"]) == (
        "local", "deepseek-ai__DeepSeek-V2-Lite.json", 512)
    # two shared configs name MixtralForCausalLM? one does; the first in path order wins
    found = finder.find("MixtralForCausalLM")
    assert (found.source, found.path.name) == ("local", "mistralai__Mixtral-8x7B-v0.1.json")


def test_hub_then_modelscope_and_the_fetched_config_is_kept(tmp_path):
    hf = FakeHub(tmp_path / "hf-dl", error=ConnectionError("Hugging Face Hub unreachable"))
    ms = FakeHub(tmp_path / "ms-dl", files={"org/Model-1B": QWEN3})
    finder = ConfigFinder(hf_cache=tmp_path / "empty", cache_dir=tmp_path / "kept", hf_download=hf,
                          ms_download=ms)
    found = finder.find("org/Model-1B")
    assert (found.source, found.path) == ("modelscope", tmp_path / "kept" / "org__Model-1B.json")
    assert hf.calls == [("org/Model-1B", "config.json")] and ms.calls == hf.calls
    # the next lookup is served from astgen's cache without touching either hub
    again = ConfigFinder(hf_cache=tmp_path / "empty", cache_dir=tmp_path / "kept", hf_download=hf,
                         ms_download=ms).find("org/Model-1B")
    assert again.source == "astgen-cache" and again.config == QWEN3 and len(ms.calls) == 1


def test_offline_failure_names_every_source_and_why(tmp_path):
    hf = FakeHub(tmp_path, error=ConnectionError("Max retries exceeded with url: huggingface.co"))
    ms = FakeHub(tmp_path, error=ConnectionError("modelscope.cn unreachable"))
    finder = ConfigFinder(local_dirs=[tmp_path / "nowhere"], hf_cache=tmp_path / "empty",
                          hf_download=hf, ms_download=ms)
    with pytest.raises(ConfigNotFound) as info:
        finder.find("org/Missing-7B")
    assert info.value.attempts == [
        ("astgen-cache", "not configured"),
        ("hf-cache", "no such directory"),
        ("local", "no such directory"),
        ("hf-hub", "ConnectionError: Max retries exceeded with url: huggingface.co"),
        ("modelscope", "ConnectionError: modelscope.cn unreachable"),
    ]
    assert str(info.value).startswith("no config found for org/Missing-7B (tried astgen-cache: not configured;")


def test_offline_mode_and_architecture_names_do_not_call_hubs(tmp_path):
    hub = FakeHub(tmp_path, files={"a/b": QWEN3})
    finder = ConfigFinder(hf_cache=tmp_path / "empty", hf_download=hub, ms_download=hub, offline=True)
    with pytest.raises(ConfigNotFound) as info:
        finder.find("a/b")
    assert info.value.attempts[-2:] == [("hf-hub", "offline"), ("modelscope", "offline")]
    with pytest.raises(ConfigNotFound) as info:
        ConfigFinder(hf_cache=tmp_path / "empty", hf_download=hub).find("NoSuchForCausalLM")
    assert info.value.attempts[-1] == ("modelscope", "needs a model id (org/name), not an architecture name")
    assert hub.calls == []


def test_a_hub_answer_that_is_not_json_is_a_failed_attempt(tmp_path):
    bad = tmp_path / "config.json"
    bad.write_text("<html>rate limited</html>")
    finder = ConfigFinder(hf_cache=tmp_path / "empty", hf_download=lambda repo, f: str(bad),
                          ms_download=lambda repo, f: (_ for _ in ()).throw(ImportError("no modelscope")))
    with pytest.raises(ConfigNotFound) as info:
        finder.find("a/b")
    assert info.value.attempts[-2:] == [("hf-hub", f"{bad} is not a JSON object"),
                                        ("modelscope", "ImportError: no modelscope")]


def test_missing_keys_are_dotted_paths():
    config = {"hidden_size": 1, "text_config": {"vocab_size": 2}}
    assert missing_keys(config, ["hidden_size", "text_config.vocab_size", "text_config.hidden_size",
                                 "num_experts"]) == ("num_experts", "text_config.hidden_size")


def test_scan_checks_config_keys_and_lowers_status(tmp_path):
    configs = tmp_path / "configs"
    configs.mkdir()
    dense = {"architectures": ["DenseForCausalLM"], "hidden_size": 64, "num_attention_heads": 4,
             "num_hidden_layers": 2, "intermediate_size": 128, "vocab_size": 256}  # no tie_word_embeddings
    (configs / "dense.json").write_text(json.dumps(dense))
    shutil.copy(HF_CONFIGS / "Qwen__Qwen3-8B.json", configs)
    report = tmp_path / "r.json"
    assert main(["scan", "-q", "--no-cache", "--configs", str(configs), "--report", str(report)]) == 1
    entries = {e["name"]: e for e in json.loads(report.read_text())["entries"]}
    assert entries["DenseForCausalLM"]["config"] == {"source": "local:dense.json", "missing": ["tie_word_embeddings"]}
    assert entries["DenseForCausalLM"]["status"] == "PARTIALLY"
    assert entries["InheritForCausalLM"]["config"] is None and entries["InheritForCausalLM"]["status"] == "FULLY"
