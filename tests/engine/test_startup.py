"""Start-up stays cheap: importing featx and its command line (and parsing a command) imports no heavy
optional module, starts no thread and changes no environment variable; `featx embed` pays only for
what the job uses."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# Each costs from 0.1 s (pyarrow) to several seconds (torch, transformers) at import; none may be
# imported before a command needs it.
HEAVY = ("torch", "transformers", "onnxruntime", "onnx", "openvino", "ray", "av", "pyarrow", "numba", "scipy",
         "PIL", "soundfile", "soxr", "usearch", "fastapi", "uvicorn", "tokenizers", "sentencepiece",
         "huggingface_hub", "safetensors", "pandas", "jax", "tensorflow")

_PROBE = """
import json, os, sys, threading
env = dict(os.environ)
{imports}
print(json.dumps({{"heavy": sorted(m for m in {heavy!r} if m in sys.modules),
                   "threads": threading.active_count(), "env_changed": dict(os.environ) != env}}))
"""


def _probe(imports: str) -> dict:
    code = _PROBE.format(imports=imports, heavy=HEAVY)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("imports", [
    "import featx",
    "import featx.cli",
    "from featx.cli import build_parser\n"
    "build_parser().parse_args(['embed', 'x', '--model', 'm', '--output', 'o'])",
    "import featx.engine, featx.engine.local, featx.engine.workers, featx.engine.budget",
    "import featx.image.io, featx.image.draft",
])
def test_import_is_light(imports):
    got = _probe(imports)
    assert got["heavy"] == [], f"{imports!r} imported {got['heavy']}"
    assert got["threads"] == 1, "a thread was started at import"
    assert not got["env_changed"], "an environment variable was changed at import"


def test_featx_is_the_first_to_need_torch():
    # the model's own modules need torch, but still none of the optional runtimes
    got = _probe("import featx.embedding, featx.models")
    assert "torch" in got["heavy"]
    assert not set(got["heavy"]) & {"transformers", "onnxruntime", "onnx", "openvino", "ray", "av", "numba",
                                     "usearch", "fastapi", "tensorflow", "jax"}, got["heavy"]
