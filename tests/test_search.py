"""`featx search` / `featx index` over folders written by `featx embed`, with a tiny real ViT."""

import json

import numpy as np
import pyarrow as pa
import pytest

from featx.cli import EXIT_OK, EXIT_USAGE, main
from featx.engine.state import prepare_output
from featx.engine.writer import ShardWriter
from featx.search import exact_search, index_search, index_state, search

from .engine._helpers import photo


@pytest.fixture(scope="module")
def collection(tiny_checkpoint, tmp_path_factory):
    """20 distinct photos + a resized copy and a re-encoded JPEG copy of one of them, embedded."""
    vit = str(tiny_checkpoint("vit"))
    root = tmp_path_factory.mktemp("search")
    folder = root / "photos"
    folder.mkdir()
    for i in range(20):
        photo(100 + i, (64, 48)).save(folder / f"p{i:02d}.png")
    query = folder / "p07.png"
    original = photo(107, (64, 48))
    original.resize((96, 72)).save(folder / "p07_resized.png")
    original.save(folder / "p07_reencoded.jpg", quality=70)
    out = root / "emb"
    assert main(["embed", str(folder), "--model", vit, "--output", str(out), "--shard-size", "7",
                 "--progress", "none", "--dtype", "float32"]) == 0
    return vit, folder, out, query


def test_query_file_finds_itself_then_its_near_duplicates(collection, capsys, tmp_path):
    vit, folder, out, query = collection
    # a copy outside the collection: embedded with the model and options recorded in OUT
    outside = tmp_path / "query.png"
    outside.write_bytes(query.read_bytes())
    assert main(["search", str(out), str(outside), "-k", "5", "--json"]) == EXIT_OK
    (result,) = json.loads(capsys.readouterr().out)
    hits = result["results"]
    assert result["query"] == str(outside) and len(hits) == 5
    assert hits[0]["path"] == str(query) and hits[0]["score"] == pytest.approx(1.0, abs=1e-5)
    assert {h["path"] for h in hits[1:3]} == {str(folder / "p07_resized.png"), str(folder / "p07_reencoded.jpg")}
    assert hits[2]["score"] > hits[3]["score"]
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)


def test_query_by_row_path_text_output(collection, capsys):
    _, folder, out, query = collection
    assert main(["search", str(out), str(query), str(folder / "p03.png"), "-k", "3"]) == EXIT_OK
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"query: {query}" and lines[1].split()[2] == str(query)
    assert lines[4] == f"query: {folder / 'p03.png'}" and lines[5].split()[2] == str(folder / "p03.png")
    assert lines[1].split()[1] == "1.0000"


def test_bad_queries_and_folders(collection, tmp_path, capsys):
    _, _, out, query = collection
    assert main(["search", str(out), str(tmp_path / "nothing.png")]) == EXIT_USAGE
    assert "neither a row" in capsys.readouterr().err
    assert main(["search", str(tmp_path), "x.png"]) == EXIT_USAGE
    assert "not a featx output folder" in capsys.readouterr().err
    assert main(["search", str(out), str(query), "--index"]) == EXIT_USAGE
    assert "index is missing" in capsys.readouterr().err


def _synthetic(out, n=3000, dim=32, clusters=40, seed=0):
    """Clustered random vectors written through the shard writer (as `featx embed` writes them)."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((clusters, dim))
    vectors = (centers[rng.integers(0, clusters, n)] + 0.35 * rng.standard_normal((n, dim))).astype(np.float32)
    manifest = {"kind": "embeddings", "model": "synthetic", "pool": "cls", "normalize": False, "dim": dim,
                "modality": "image"}
    prepare_output(out, manifest, overwrite=False)
    schema = pa.schema([("path", pa.string()), ("embedding", pa.list_(pa.float32(), dim)), ("error", pa.string())])
    writer = ShardWriter(out, schema, metadata=manifest, shard_size=700)
    for i, v in enumerate(vectors):
        if i % 97 == 5:
            writer.add_rows([{"path": f"v{i}", "embedding": None, "error": "bad file"}])
        else:
            writer.add_rows([{"path": f"v{i}", "embedding": v}])
    writer.close()
    return vectors


def test_exact_search_matches_brute_force(tmp_path):
    out = tmp_path / "syn"
    vectors = _synthetic(out, n=1200)
    valid = np.array([i % 97 != 5 for i in range(len(vectors))])
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    queries = vectors[[3, 400, 1100]] + 0.01
    hits = exact_search(out, queries, k=8)
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    scores = np.where(valid, q @ unit.T, -np.inf)
    for i in range(3):
        want = np.argsort(-scores[i])[:8]
        assert [h.path for h in hits[i]] == [f"v{j}" for j in want]
        np.testing.assert_allclose([h.score for h in hits[i]], scores[i][want], rtol=1e-5)


def test_index_recall_against_exact(tmp_path, capsys):
    out = tmp_path / "syn"
    vectors = _synthetic(out)
    assert main(["index", str(out)]) == EXIT_OK
    assert "indexed" in capsys.readouterr().out and index_state(out) == "fresh"
    rng = np.random.default_rng(1)
    queries = vectors[rng.choice(len(vectors), 100, replace=False)] + 0.05 * rng.standard_normal((100, 32)).astype(np.float32)
    k = 10
    exact = exact_search(out, queries, k)
    approx = index_search(out, queries, k)
    recall = np.mean([len({h.path for h in a} & {h.path for h in e}) / k for a, e in zip(approx, exact)])
    print(f"index recall@{k} vs exact search: {recall:.3f}")
    assert recall >= 0.95
    for a, e in zip(approx[:5], exact[:5]):  # scores are cosine similarities either way
        common = {h.path: h.score for h in e}
        for h in a:
            if h.path in common:
                assert h.score == pytest.approx(common[h.path], abs=1e-4)
    assert not any(h.path == "v5" for hits in approx for h in hits)  # error rows are not indexed
    # search() picks the fresh index; new shards make it stale -> exact search with a warning
    assert [h.path for h in search(out, ["v10"], k=3)[0]][0] == "v10"
    writer = ShardWriter(out, pa.schema([("path", pa.string()), ("embedding", pa.list_(pa.float32(), 32)),
                                         ("error", pa.string())]), metadata={}, start_index=99)
    writer.add_rows([{"path": "late", "embedding": vectors[10]}])
    writer.close()
    assert index_state(out) == "stale"
    with pytest.warns(UserWarning, match="older than the shards"):
        hits = search(out, ["v10"], k=2)[0]
    assert {h.path for h in hits} == {"v10", "late"}
    assert main(["search", str(out), "v10", "--index"]) == EXIT_USAGE
