"""Fixtures of the serve tests: a tiny ViT, photos, their `featx embed` output, and a service on it."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi", reason="the serve tests need the serve extra (pip install -e '.[serve,test]')")

from tests.engine._helpers import write_photos  # noqa: E402

from ._helpers import embed_folder  # noqa: E402


@pytest.fixture(scope="session")
def vit(tiny_checkpoint):
    return str(tiny_checkpoint("vit"))


@pytest.fixture(scope="session")
def photos(tmp_path_factory):
    """(folder, paths): 10 photos, 3 of them in a subfolder."""
    folder = tmp_path_factory.mktemp("serve_photos")
    return folder, write_photos(folder, 7) + write_photos(folder / "sub", 3, start=7)


@pytest.fixture(scope="session")
def out(vit, photos, tmp_path_factory):
    """`featx embed` of the photos (float32, 4 rows per shard: 3 shards)."""
    folder, _ = photos
    return embed_folder(vit, [folder], tmp_path_factory.mktemp("serve_out") / "out", "--shard-size", "4")


@pytest.fixture(scope="session")
def embedder(vit):
    from featx.embedding import Embedder

    return Embedder(vit, dtype="float32")


def make_service(out=None, embedder=None, **options):
    from featx.serve.service import ServeConfig, Service

    return Service(ServeConfig(out=str(out) if out is not None else None, dtype="float32", **options),
                   embedder=embedder)


@pytest.fixture(scope="session")
def service(out, embedder):
    svc = make_service(out, embedder)
    yield svc
    svc.close()


@pytest.fixture(scope="session")
def client(service):
    from fastapi.testclient import TestClient

    from featx.serve.app import create_app

    with TestClient(create_app(service)) as c:
        yield c


@pytest.fixture(scope="session")
def clip(tmp_path_factory):
    """A tiny full CLIP checkpoint with a tokenizer: image and text towers, 16-dim joint space."""
    from tests.text_checkpoints import tiny_clip

    return str(tiny_clip(tmp_path_factory.mktemp("serve_clip") / "clip"))


@pytest.fixture(scope="session")
def clip_out(clip, photos, tmp_path_factory):
    """`featx embed` of the photos with the CLIP checkpoint (joint space by default)."""
    folder, _ = photos
    return embed_folder(clip, [folder], tmp_path_factory.mktemp("serve_clip_out") / "out")


@pytest.fixture(scope="session")
def live_server(clip_out):
    """A real `featx serve` process on the CLIP output (image and text search)."""
    from ._helpers import Server

    server = Server(clip_out, "--dtype", "float32", "--max-wait-ms", "5", "--workers", "2")
    yield server
    server.stop()
