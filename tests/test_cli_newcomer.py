"""What a new user meets first: argument checks before the model loads, no inputs, help lines,
hub options passed through, paths recorded so that OUT works from any directory, scores, progress."""

import argparse
import json
import os

import numpy as np
import pyarrow as pa
import pytest

from featx import hub
from featx.cli import EXIT_ERROR, EXIT_OK, EXIT_USAGE, build_parser, main
from featx.engine.state import prepare_output
from featx.engine.writer import ShardWriter
from featx.errors import ModelLoadError
from featx.search import exact_search, index_search

from .engine._helpers import write_photos


@pytest.fixture(scope="module")
def vit(tiny_checkpoint):
    return str(tiny_checkpoint("vit"))


def run(*args):
    return main([str(a) for a in args])


@pytest.fixture
def no_model_load(monkeypatch):
    """Fail the test if the model's weights would be loaded."""
    import featx.embedding

    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded before the arguments were checked")

    monkeypatch.setattr(featx.embedding.Embedder, "__init__", refuse)


# ---- checks before the model loads ---------------------------------------------------------------
def test_output_that_is_a_file_fails_before_the_model_loads(vit, tmp_path, capsys, no_model_load):
    photos = write_photos(tmp_path / "in", 1)
    (tmp_path / "file").write_text("x")
    assert run("embed", *photos, "--model", vit, "--output", tmp_path / "file") == EXIT_USAGE
    assert "--output" in (err := capsys.readouterr().err) and "is a file, not a folder" in err
    assert run("features", *photos, "--processor", vit, "--output", tmp_path / "file") == EXIT_USAGE


@pytest.mark.parametrize("extra, message", [
    (["-p", "size=abc"], "-p size=\"abc\""),
    (["-p", "image_mean=[1, 2]"], "-p image_mean=[1, 2]"),
    (["--format", "npy", "--pool", "none"], "--format npy"),
    (["--windows"], "--windows applies to audio models only"),
])
def test_bad_options_fail_before_the_model_loads(vit, tmp_path, capsys, no_model_load, extra, message):
    photos = write_photos(tmp_path / "in", 1)
    assert run("embed", *photos, "--model", vit, "--output", tmp_path / "out", *extra) == EXIT_USAGE
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_missing_input_fails_before_the_model_loads(vit, tmp_path, capsys, no_model_load):
    assert run("embed", tmp_path / "missing.png", "--model", vit, "--output", tmp_path / "out") == EXIT_USAGE
    assert "input not found" in capsys.readouterr().err


def test_empty_folder_is_a_usage_error(vit, tmp_path, capsys, no_model_load):
    (tmp_path / "empty").mkdir()
    assert run("embed", tmp_path / "empty", "--model", vit, "--output", tmp_path / "out") == EXIT_USAGE
    err = capsys.readouterr().err
    assert "no inputs found in" in err and ".jpg" in err and ".png" in err
    assert not (tmp_path / "out").exists()


def test_folder_without_files_of_the_models_kind(vit, tmp_path, capsys, no_model_load):
    folder = tmp_path / "sounds"
    folder.mkdir()
    (folder / "a.wav").write_bytes(b"RIFF")
    (folder / "notes.txt").write_text("x")
    assert run("embed", folder, "--model", vit, "--output", tmp_path / "out") == EXIT_USAGE
    err = capsys.readouterr().err
    assert "image files ending in" in err and "a.wav" in err and "--extensions" in err
    assert run("features", folder, "--processor", vit, "--output", tmp_path / "f") == EXIT_USAGE
    assert "no inputs found" in capsys.readouterr().err


def test_a_glob_matching_nothing_is_a_usage_error(vit, tmp_path, capsys):
    assert run("embed", str(tmp_path / "*.jpg"), "--model", vit, "--output", tmp_path / "out") == EXIT_USAGE
    assert "no inputs found" in capsys.readouterr().err


# ---- help ------------------------------------------------------------------------------------------
def _subparsers(parser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices
    return {}


def test_every_option_has_a_help_line_with_its_default():
    parser = build_parser()
    commands = _subparsers(parser)
    assert {"embed", "features", "search", "index", "info", "serve"} <= set(commands)
    for name, sub in commands.items():
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            label = f"featx {name} {'/'.join(action.option_strings) or action.dest}"
            assert action.help and action.help != argparse.SUPPRESS, f"{label} has no help"
            if action.option_strings and not action.required:
                assert "default" in action.help, f"{label} does not say its default"
        sub.format_help()  # every %(default)s expands


@pytest.mark.parametrize("command, options", [
    ("embed", {"--cache-dir", "--revision"}), ("features", {"--cache-dir", "--revision"}),
    ("info", {"--cache-dir", "--revision"}), ("search", {"--cache-dir"}),
])
def test_commands_taking_a_model_take_hub_options(command, options):
    sub = _subparsers(build_parser())[command]
    assert options <= {o for a in sub._actions for o in a.option_strings}


@pytest.fixture
def fake_hub(monkeypatch, tmp_path):
    """Record the hub options featx passes to huggingface_hub, then fail like a missing repository."""
    calls = []

    def download(repo_id, filename, options, required):
        calls.append((repo_id, filename, options.revision, options.cache_dir))
        raise ModelLoadError(f"fake hub: no {repo_id}")

    monkeypatch.setattr(hub, "_download", download)
    return calls


@pytest.mark.parametrize("args", [
    ["embed", "{photo}", "--model", "someone/model", "--output", "{tmp}/out"],
    ["features", "{photo}", "--processor", "someone/model", "--output", "{tmp}/out"],
    ["info", "someone/model"],
])
def test_hub_options_reach_the_hub(fake_hub, tmp_path, args):
    photo = write_photos(tmp_path / "in", 1)[0]
    argv = [a.format(photo=photo, tmp=tmp_path) for a in args] + ["--revision", "v2", "--cache-dir", str(tmp_path)]
    assert main(argv) == EXIT_ERROR
    assert fake_hub and fake_hub[0] == ("someone/model", fake_hub[0][1], "v2", str(tmp_path))


# ---- recorded paths ------------------------------------------------------------------------------
def test_relative_model_is_recorded_absolute_and_search_works_elsewhere(vit, tmp_path, monkeypatch, capsys):
    work = tmp_path / "work"
    (work / "models").mkdir(parents=True)
    os.symlink(vit, work / "models" / "vit")
    photos = write_photos(work / "photos", 3)
    monkeypatch.chdir(work)
    assert run("embed", "photos", "--model", "models/vit", "--output", "out", "--progress", "none") == EXIT_OK
    manifest = json.loads((work / "out" / "_featx.json").read_text())
    assert manifest["model"] == str(work / "models" / "vit")
    assert manifest["inputs"] == [{"given": "photos", "absolute": str(work / "photos")}]
    assert manifest["working_dir"] == str(work)
    # from another directory, a query file is embedded with the recorded model
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    capsys.readouterr()
    assert run("search", work / "out", photos[1], "-k", "1", "--json") == EXIT_OK
    (result,) = json.loads(capsys.readouterr().out)
    assert result["results"][0]["path"] == os.path.join("photos", os.path.basename(photos[1]))


def test_a_recorded_model_that_is_gone_is_a_missing_local_folder(vit, tmp_path, capsys):
    photos = write_photos(tmp_path / "photos", 2)
    out = tmp_path / "out"
    assert run("embed", *photos, "--model", vit, "--output", out, "--progress", "none") == EXIT_OK
    manifest = json.loads((out / "_featx.json").read_text())
    manifest["model"] = str(tmp_path / "moved-away")
    (out / "_featx.json").write_text(json.dumps(manifest))
    query = tmp_path / "query.png"
    query.write_bytes(open(photos[0], "rb").read())
    assert run("search", out, query) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "local folder not found" in err and "moved-away" in err and "_featx.json" in err
    assert "offline" not in err and "cannot be reached" not in err  # never sent to the hub


def test_output_written_with_a_relative_model_path_still_resumes(vit, tmp_path, monkeypatch, capsys):
    work = tmp_path / "work"
    (work / "models").mkdir(parents=True)
    os.symlink(vit, work / "models" / "vit")
    write_photos(work / "photos", 3)
    monkeypatch.chdir(work)
    common = ["--output", "out", "--progress", "none", "--limit", "2"]
    assert run("embed", "photos", "--model", "models/vit", *common) == EXIT_OK
    manifest = json.loads((work / "out" / "_featx.json").read_text())
    manifest["model"] = "models/vit"  # as featx 0.1 recorded it
    (work / "out" / "_featx.json").write_text(json.dumps(manifest))
    capsys.readouterr()
    assert run("embed", "photos", "--model", "models/vit", "--output", "out", "--progress", "none") == EXIT_OK
    assert "done 1, failed 0, skipped 2" in capsys.readouterr().err
    assert run("embed", "photos", "--model", vit, "--output", "out", "--progress", "none") == EXIT_OK  # same folder


# ---- search scores and the progress of a re-run --------------------------------------------------
def test_scores_stay_within_minus_one_and_one(tmp_path):
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((600, 256)).astype(np.float32)
    out = tmp_path / "syn"
    manifest = {"kind": "embeddings", "model": "synthetic", "pool": "cls", "normalize": False, "dim": 256}
    prepare_output(out, manifest, overwrite=False)
    writer = ShardWriter(out, pa.schema([("path", pa.string()), ("embedding", pa.list_(pa.float32(), 256)),
                                         ("error", pa.string())]), metadata=manifest, shard_size=200)
    for i, v in enumerate(vectors):
        writer.add_rows([{"path": f"v{i}", "embedding": v}])
    writer.close()
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    assert (np.einsum("ij,ij->i", unit, unit) > 1).any()  # float rounding: unclipped, some exceed 1
    for hits in exact_search(out, vectors, k=2) + exact_search(out, -vectors, k=600):
        assert all(-1.0 <= h.score <= 1.0 for h in hits)
    assert main(["index", str(out)]) == EXIT_OK
    found = index_search(out, vectors[:100], k=3)
    for hits in found:
        assert all(-1.0 <= h.score <= 1.0 for h in hits)
    # HNSW is approximate: on random 256-d data an odd query may miss itself
    selves = [hits[0] for i, hits in enumerate(found) if hits[0].path == f"v{i}"]
    assert len(selves) >= 90 and all(h.score == pytest.approx(1.0, abs=1e-3) for h in selves)


def test_rerun_progress_shows_what_was_skipped(vit, tmp_path, capsys):
    photos = write_photos(tmp_path / "in", 3)
    common = ["--model", vit, "--output", tmp_path / "out", "--progress", "bar"]
    assert run("embed", *photos, *common) == EXIT_OK
    assert "3/3" in capsys.readouterr().err
    assert run("embed", *photos, *common) == EXIT_OK
    err = capsys.readouterr().err
    assert "0/0 (3 skipped, already written)" in err and "/?" not in err


# ---- install hints -------------------------------------------------------------------------------
def test_install_hints_give_the_checkout_form_too(capsys):
    from featx.errors import DependencyError, install_hint, require

    assert install_hint("index") == "pip install 'featx[index]' (or, from a checkout, pip install -e '.[index]')"
    with pytest.raises(DependencyError) as info:
        require("featx_no_such_module", "index", "featx index")
    assert install_hint("index") in str(info.value)
    embed_help = _subparsers(build_parser())["embed"].format_help()
    assert "pip install -e '.[ray]'" in " ".join(embed_help.split())
