import json

import pytest

from featx.errors import ModelLoadError
from featx.hub import HubOptions, resolve_file


def test_folder_and_file(tmp_path):
    (tmp_path / "preprocessor_config.json").write_text("{}")
    assert resolve_file(tmp_path, "preprocessor_config.json") == tmp_path / "preprocessor_config.json"
    direct = tmp_path / "preprocessor_config.json"
    assert resolve_file(direct, "anything.json") == direct
    assert resolve_file(tmp_path, "config.json", required=False) is None
    with pytest.raises(ModelLoadError, match="config.json not found"):
        resolve_file(tmp_path, "config.json")


def test_subfolder(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.json").write_text(json.dumps({}))
    assert resolve_file(tmp_path, "a.json", HubOptions(subfolder="sub")) == tmp_path / "sub" / "a.json"


def test_missing_local_path_is_not_sent_to_the_hub(tmp_path):
    with pytest.raises(ModelLoadError, match="neither an existing file or folder"):
        resolve_file(str(tmp_path / "nope" / "deeper"), "config.json")


def test_offline_hub_id_gives_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    opts = HubOptions(cache_dir=str(tmp_path))
    with pytest.raises(ModelLoadError, match="offline"):
        resolve_file("someone/some-model", "preprocessor_config.json", opts)
    assert resolve_file("someone/some-model", "config.json", opts, required=False) is None


def test_local_files_only_option(tmp_path):
    opts = HubOptions(cache_dir=str(tmp_path), local_files_only=True)
    with pytest.raises(ModelLoadError, match="not in the cache"):
        resolve_file("someone/some-model", "preprocessor_config.json", opts)


def test_unreachable_hub_gives_clear_error(monkeypatch, tmp_path):
    # Point the client at a closed local port so the test never leaves the machine.
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    import importlib

    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", "http://127.0.0.1:9/{repo_id}/resolve/{revision}/{filename}")
    importlib.import_module("featx.hub")
    with pytest.raises(ModelLoadError, match="could not be reached|cannot get"):
        resolve_file("someone/some-model", "preprocessor_config.json", HubOptions(cache_dir=str(tmp_path)))


def test_pop_from_leaves_other_kwargs():
    kwargs = {"revision": "v1", "cache_dir": "/c", "size": 3, "trust_remote_code": True}
    opts = HubOptions.pop_from(kwargs)
    assert opts.revision == "v1" and opts.cache_dir == "/c"
    assert kwargs == {"size": 3}
