import json
import os
import socket
import subprocess
import sys
import time

import pytest

from featx import hub
from featx.errors import ModelLoadError
from featx.hub import HUB_TIMEOUT_ENV, HubOptions, looks_like_local_path, recorded_source, resolve_file

from .engine._helpers import REPO


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


@pytest.mark.parametrize("given", ["./nope", "../nope/deeper", "nope/deeper/still", "{tmp}/nope", "~/nope-featx",
                                   "nope/preprocessor_config.json"])
def test_missing_local_path_is_not_sent_to_the_hub(tmp_path, monkeypatch, given):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelLoadError, match="local folder not found: /"):
        resolve_file(given.format(tmp=tmp_path), "config.json")


@pytest.mark.parametrize("text, local", [
    ("google/vit-base-patch16-224", False), ("gpt2", False), ("models/vit-demo", False),  # owner/name: a hub id
    ("./models/vit-demo", True), ("../vit", True), ("/abs/vit", True), ("~/vit", True), ("a/b/c", True),
    ("ckpt/config.json", True), ("my model/x", True), ("org/na--me", True), ("", True),
])
def test_what_looks_like_a_local_path(text, local):
    assert looks_like_local_path(text) is local


def test_recorded_source_is_absolute_for_local_paths(tmp_path, monkeypatch):
    (tmp_path / "models" / "vit-demo").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert recorded_source("models/vit-demo") == str(tmp_path / "models" / "vit-demo")  # exists: local
    assert recorded_source("./gone") == str(tmp_path / "gone")  # clearly a path, even when missing
    assert recorded_source("google/vit-base-patch16-224") == "google/vit-base-patch16-224"


def _assert_helpful(message, repo_id):
    assert "HF_HUB_OFFLINE" in message and f"hf download {repo_id} --local-dir" in message
    assert "local folder" in message and "huggingface-cli" not in message


def test_offline_hub_id_gives_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    opts = HubOptions(cache_dir=str(tmp_path))
    with pytest.raises(ModelLoadError, match="offline") as info:
        resolve_file("someone/some-model", "preprocessor_config.json", opts)
    _assert_helpful(str(info.value), "someone/some-model")
    assert resolve_file("someone/some-model", "config.json", opts, required=False) is None


def test_local_files_only_option(tmp_path):
    opts = HubOptions(cache_dir=str(tmp_path), local_files_only=True)
    with pytest.raises(ModelLoadError, match="not in the Hugging Face cache"):
        resolve_file("someone/some-model", "preprocessor_config.json", opts)


@pytest.fixture
def endpoint(monkeypatch):
    """``endpoint(url)`` points huggingface_hub (already imported) at ``url``, network mode on."""
    import huggingface_hub.constants as constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # read from the environment at its import

    def point(url):
        monkeypatch.setenv("HF_ENDPOINT", url)
        monkeypatch.setattr(constants, "ENDPOINT", url)
        monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", url + "/{repo_id}/resolve/{revision}/{filename}")
        hub._probes.pop(url, None)
        return url

    yield point
    hub._probes.clear()


def test_unreachable_hub_fails_fast_with_what_to_do(endpoint, tmp_path):
    endpoint("http://127.0.0.1:9")  # a closed local port: the test never leaves the machine
    start = time.perf_counter()
    with pytest.raises(ModelLoadError, match="cannot be reached") as info:
        resolve_file("someone/some-model", "preprocessor_config.json", HubOptions(cache_dir=str(tmp_path)))
    assert time.perf_counter() - start < 5
    _assert_helpful(str(info.value), "someone/some-model")
    # an optional file cannot be told absent while the hub is unreachable: still an error
    with pytest.raises(ModelLoadError, match="cannot be reached"):
        resolve_file("someone/some-model", "config.json", HubOptions(cache_dir=str(tmp_path)), required=False)


def test_a_silent_hub_fails_within_the_probe_deadline(endpoint, monkeypatch, tmp_path):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)  # connections are accepted by the kernel, but nothing ever answers
    try:
        endpoint(f"http://127.0.0.1:{server.getsockname()[1]}")
        monkeypatch.setenv(HUB_TIMEOUT_ENV, "1")
        start = time.perf_counter()
        with pytest.raises(ModelLoadError, match="cannot be reached"):
            resolve_file("someone/some-model", "config.json", HubOptions(cache_dir=str(tmp_path)))
        assert 0.9 < time.perf_counter() - start < 3
    finally:
        server.close()


def test_unreachable_hub_still_serves_the_cache(endpoint, tmp_path):
    endpoint("http://127.0.0.1:9")
    snapshot = tmp_path / "models--someone--cached" / "snapshots" / ("a" * 40)
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    (tmp_path / "models--someone--cached" / "refs").mkdir()
    (tmp_path / "models--someone--cached" / "refs" / "main").write_text("a" * 40)
    found = resolve_file("someone/cached", "config.json", HubOptions(cache_dir=str(tmp_path)))
    assert found == snapshot / "config.json"


def test_cli_with_a_hub_id_fails_fast_on_an_unreachable_hub(endpoint, tmp_path, capsys):
    from featx.cli import main

    endpoint("http://127.0.0.1:9")
    start = time.perf_counter()
    rc = main(["embed", str(REPO / "featx" / "data"), "--model", "someone/some-model", "--output",
               str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache")])
    assert rc == 1 and time.perf_counter() - start < 5
    err = capsys.readouterr().err
    _assert_helpful(err, "someone/some-model")
    assert str(tmp_path / "cache") in err and not (tmp_path / "out").exists()


@pytest.mark.parametrize("offline", [True, False])
def test_cli_process_with_a_hub_id_fails_fast(tmp_path, offline):
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env["HF_ENDPOINT"] = "http://127.0.0.1:9"  # read by huggingface_hub at import: a fresh process
    env["PYTHONPATH"] = str(REPO)
    if offline:
        env["HF_HUB_OFFLINE"] = "1"
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "featx", "info", "someone/some-model", "--cache-dir",
                           str(tmp_path)], capture_output=True, text=True, env=env, cwd=tmp_path)
    seconds = time.perf_counter() - start
    assert proc.returncode == 1, proc.stderr
    _assert_helpful(proc.stderr, "someone/some-model")
    assert ("offline mode is on" in proc.stderr) is offline
    assert seconds < 5 + 10  # the import of torch & co. takes a few seconds of its own
    assert "Retry" not in proc.stderr


def test_pop_from_leaves_other_kwargs():
    kwargs = {"revision": "v1", "cache_dir": "/c", "size": 3, "trust_remote_code": True}
    opts = HubOptions.pop_from(kwargs)
    assert opts.revision == "v1" and opts.cache_dir == "/c"
    assert kwargs == {"size": 3}
