import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """``tiny_checkpoint(kind)`` -> folder of a tiny random HF checkpoint (built once per session)."""
    from .checkpoints import build

    made: dict[str, object] = {}

    def get(kind: str):
        if kind not in made:
            made[kind] = build(kind, tmp_path_factory.mktemp(kind.replace("-", "_")))
        return made[kind]

    return get
