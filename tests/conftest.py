import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

# CPU kinds the suite can pretend to run on. `dtype="auto"` picks bfloat16 on the first and float32
# on the second, so a test that compares numbers without pinning its dtype fails on every machine
# under the default, not only on the machines that happen to have AVX512-BF16.
FAKE_CPUS = {
    "bf16": frozenset({"sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16"}),
    "avx2": frozenset({"sse4_2", "avx", "avx2", "fma"}),
}


def pytest_addoption(parser):
    parser.addoption(
        "--fake-cpu", choices=[*FAKE_CPUS, "real"], default="bf16",
        help="CPU flags featx sees in this process (default: bf16, a CPU with AVX512-BF16); "
             "'real' reads /proc/cpuinfo",
    )


@pytest.fixture(scope="session", autouse=True)
def fake_cpu(request):
    """Pretend to run on the CPU kind chosen by ``--fake-cpu``; yields its name."""
    kind = request.config.getoption("--fake-cpu")
    if kind == "real":
        yield kind
        return
    from featx.models import loading

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(loading, "cpu_flags", lambda: FAKE_CPUS[kind])
        yield kind


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


@pytest.fixture(scope="session")
def text_checkpoint(tmp_path_factory):
    """``text_checkpoint("clip" | "siglip")`` -> folder of a tiny random full checkpoint with its
    tokenizer (tests/text_checkpoints.py), built once per session."""
    from .text_checkpoints import tiny_clip, tiny_siglip

    made: dict[str, object] = {}

    def get(kind: str):
        if kind not in made:
            made[kind] = {"clip": tiny_clip, "siglip": tiny_siglip}[kind](tmp_path_factory.mktemp(f"text_{kind}"))
        return made[kind]

    return get
