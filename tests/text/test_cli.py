"""The command line's text parts end to end: embed images with a trained tiny CLIP, search them by
text, classify them, embed text files; and the refusals."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.dataset as ds
import pytest

from featx.cli import EXIT_FAILED_INPUTS, EXIT_OK, EXIT_USAGE, main

from .conftest import COLORS, SHAPES

pytest.importorskip("transformers")


def run(*args):
    return main([str(a) for a in args])


@pytest.fixture(scope="module")
def embedded(trained_clip, colour_images, tmp_path_factory):
    out = tmp_path_factory.mktemp("colours_out") / "out"
    assert run("embed", colour_images, "--model", trained_clip, "--output", out, "--dtype", "float32",
               "--progress", "none") == EXIT_FAILED_INPUTS  # broken.jpg
    return out


def _names(hits):
    return [h["path"].rsplit("/", 1)[-1].split("_")[0] for h in hits]


@pytest.mark.parametrize("colour", list(COLORS))
def test_text_finds_its_colour_first(embedded, colour, capsys):
    assert run("search", embedded, "--text", f"a photo of a {colour} square", "-k", 3, "--json") == EXIT_OK
    (answer,) = json.loads(capsys.readouterr().out)
    assert answer["text"] == f"a photo of a {colour} square"
    assert _names(answer["results"]) == [colour] * len(SHAPES)


def test_joint_is_the_default_and_recorded(embedded, trained_clip):
    manifest = json.loads((embedded / "_featx.json").read_text())
    assert manifest["pool"] == "joint" and manifest["dim"] == 16
    table = ds.dataset(embedded).to_table()
    assert table.num_rows == len(COLORS) * len(SHAPES) + 1


def test_mixed_queries_rank_separately(embedded, colour_images, capsys):
    query = colour_images / "blue_circle.png"
    assert run("search", embedded, query, "--text", "a photo of a red square", "-k", 2) == EXIT_OK
    out = capsys.readouterr().out
    head, rest = out.split("text: a photo of a red square")
    assert head.startswith(f"query: {query}") and "blue_circle.png" in head.splitlines()[1]
    assert all("red_" in line for line in rest.strip().splitlines())


def test_text_over_the_index(embedded, capsys):
    pytest.importorskip("usearch")
    assert run("index", embedded) == EXIT_OK
    capsys.readouterr()
    assert run("search", embedded, "--index", "--text", "a photo of a green square", "-k", 2, "--json") == EXIT_OK
    assert _names(json.loads(capsys.readouterr().out)[0]["results"]) == ["green", "green"]


def test_text_search_refusals(tiny_checkpoint, trained_clip, colour_images, tmp_path, capsys):
    vit = tmp_path / "vit"
    assert run("embed", colour_images, "--model", tiny_checkpoint("vit"), "--output", vit, "--progress", "none",
               "--dtype", "float32") == EXIT_FAILED_INPUTS
    capsys.readouterr()
    assert run("search", vit, "--text", "red") == EXIT_USAGE
    assert "has no text tower" in capsys.readouterr().err
    cls = tmp_path / "cls"
    assert run("embed", colour_images, "--model", trained_clip, "--pool", "cls", "--output", cls, "--progress",
               "none", "--dtype", "float32") == EXIT_FAILED_INPUTS
    capsys.readouterr()
    assert run("search", cls, "--text", "red") == EXIT_USAGE
    err = capsys.readouterr().err
    assert "--pool cls" in err and "--pool joint" in err
    assert run("search", cls) == EXIT_USAGE  # no query at all
    assert "no query" in capsys.readouterr().err


def test_classify_prints(trained_clip, colour_images, capsys):
    assert run("classify", colour_images, "--model", trained_clip, "--labels", "red,green,blue,yellow",
               "--template", "a photo of a {} square", "--dtype", "float32", "-k", 1, "--json") == EXIT_FAILED_INPUTS
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == len(COLORS) * len(SHAPES) + 1
    for line in lines:
        name = line["path"].rsplit("/", 1)[-1]
        if name == "broken.jpg":
            assert "error" in line
        else:
            assert line["results"][0]["label"] == name.split("_")[0]


def test_classify_writes_parquet_and_resumes(trained_clip, colour_images, tmp_path, capsys):
    out = tmp_path / "labels"
    args = ["classify", colour_images, "--model", trained_clip, "--labels", "red,green,blue,yellow", "--template",
            "a photo of a {} square", "--dtype", "float32", "--output", out, "--progress", "none"]
    assert run(*args) == EXIT_FAILED_INPUTS
    table = ds.dataset(out).to_table().to_pylist()
    assert len(table) == len(COLORS) * len(SHAPES) + 1
    for row in table:
        name = row["path"].rsplit("/", 1)[-1]
        if name == "broken.jpg":
            assert row["error"] and row["scores"] is None and row["label"] is None
            continue
        assert row["error"] is None and row["label"] == name.split("_")[0]
        assert len(row["scores"]) == 4 and abs(sum(row["scores"]) - 1) < 1e-5  # CLIP: softmax
        assert row["score"] == max(row["scores"])
    manifest = json.loads((out / "_featx.json").read_text())
    assert manifest["kind"] == "classification" and manifest["labels"] == ["red", "green", "blue", "yellow"]
    capsys.readouterr()
    assert run(*args) == EXIT_FAILED_INPUTS  # resumed: nothing new, the earlier failure counts
    assert "skipped 13" in capsys.readouterr().err
    other = [a if a != "red,green,blue,yellow" else "red,green" for a in args]
    assert run(*other) == EXIT_USAGE
    assert "labels" in capsys.readouterr().err


def test_classify_bad_arguments(trained_clip, colour_images, tiny_checkpoint, capsys):
    base = ["classify", colour_images, "--model", trained_clip]
    assert run(*base, "--labels", "red,,blue") == EXIT_USAGE
    assert run(*base, "--labels", "red,red") == EXIT_USAGE
    assert run(*base, "--labels", "red", "--template", "no placeholder") == EXIT_USAGE
    capsys.readouterr()
    assert run("classify", colour_images, "--model", tiny_checkpoint("vit"), "--labels", "a,b") == EXIT_USAGE
    assert "has no text tower" in capsys.readouterr().err


def test_embed_text_files(trained_clip, embedded, tmp_path, capsys):
    lines = tmp_path / "captions.txt"
    lines.write_text("\ufeffa photo of a red square\n\n   \na photo of a blue square\r\nUnicode: café 😀\n"
                     "a photo of a green square", encoding="utf-8")
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine line\n\xff\xfe not utf-8\n")
    out = tmp_path / "captions"
    assert run("embed", "--text-file", lines, "--text-file", bad, "--model", trained_clip, "--output", out,
               "--dtype", "float32", "--progress", "none") == EXIT_FAILED_INPUTS
    rows = {r["path"]: r for r in ds.dataset(out).to_table().to_pylist()}
    assert sorted(rows) == sorted([f"{lines}#L1", f"{lines}#L4", f"{lines}#L5", f"{lines}#L6", f"{bad}#L1",
                                   f"{bad}#L2"])
    assert rows[f"{lines}#L1"]["text"] == "a photo of a red square"
    assert rows[f"{lines}#L5"]["text"] == "Unicode: café 😀"
    assert "UTF-8" in rows[f"{bad}#L2"]["error"] and rows[f"{bad}#L2"]["embedding"] is None
    from featx.text import load_text_embedder

    expected = load_text_embedder(trained_clip, dtype="float32").embed(["a photo of a red square"])[0]
    got = np.asarray(rows[f"{lines}#L1"]["embedding"])
    assert np.allclose(got / np.linalg.norm(got), expected, atol=1e-6)
    manifest = json.loads((out / "_featx.json").read_text())
    assert manifest["modality"] == "text" and manifest["pool"] == "joint"
    # image -> caption search: the query image goes through the vision tower
    capsys.readouterr()
    image = next(p for p in (embedded.parent.parent).rglob("blue_square.png"))
    assert run("search", out, image, "-k", 1, "--json") == EXIT_OK
    assert json.loads(capsys.readouterr().out)[0]["results"][0]["text"] == "a photo of a blue square"
    # .txt INPUTs do the same; a rerun skips the lines already written
    assert run("embed", lines, "--model", trained_clip, "--output", out, "--dtype", "float32", "--progress",
               "none") == EXIT_OK  # the failed line was bad.txt's
    assert "skipped 4" in capsys.readouterr().err


def test_text_job_refuses_other_files(trained_clip, colour_images, tmp_path, capsys):
    lines = tmp_path / "l.txt"
    lines.write_text("a\n")
    out = tmp_path / "o"
    assert run("embed", colour_images / "red_square.png", "--text-file", lines, "--model", trained_clip,
               "--output", out, "--progress", "none", "--dtype", "float32") == EXIT_FAILED_INPUTS
    rows = {r["path"]: r for r in ds.dataset(out).to_table().to_pylist()}
    assert "not a text file" in rows[str(colour_images / "red_square.png")]["error"]


def test_search_api_with_texts(embedded):
    from featx.search import search

    results = search(embedded, [], k=3, texts=["a photo of a yellow square", "a photo of a blue square"],
                     method="exact")
    assert [_names([h.to_dict() for h in hits]) for hits in results] == [["yellow"] * 3, ["blue"] * 3]
