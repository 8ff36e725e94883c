"""featx.adapters: shapes, save/load round trips, LLaVA's projector loaded directly, training."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from featx.adapters import LinearAdaptor, MLPAdaptor, fit_adaptor, load_adaptor
from featx.errors import ConfigError, ModelLoadError


def _randomized(adaptor, seed=0):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in adaptor.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.1)
    return adaptor


@pytest.mark.parametrize("make", [
    lambda: LinearAdaptor(12, 7),
    lambda: LinearAdaptor(12, 7, norm=False, bias=False),
    lambda: MLPAdaptor(12, 7),
    lambda: MLPAdaptor(12, 7, hidden=20, act="relu", bias=False),
    lambda: MLPAdaptor(24, 5, act="gelu_pytorch_tanh", stack=2),
])
def test_save_load_round_trip(tmp_path, make):
    adaptor = _randomized(make())
    adaptor.save(tmp_path / "a")
    config = json.loads((tmp_path / "a" / "adaptor.json").read_text())
    assert config["kind"] == adaptor.kind and config["in_dim"] == adaptor.in_dim
    loaded = load_adaptor(tmp_path / "a")
    assert type(loaded) is type(adaptor) and loaded.config() == adaptor.config()
    x = torch.randn(3, 4, adaptor.in_dim)
    with torch.no_grad():
        assert torch.equal(loaded(x), adaptor(x))
    assert loaded(x).shape == (3, 4, adaptor.out_dim)


def test_linear_adaptor_is_layernorm_then_linear():
    adaptor = _randomized(LinearAdaptor(6, 3))
    x = torch.randn(5, 6)
    expected = adaptor.linear(torch.nn.functional.layer_norm(x, (6,), adaptor.norm.weight, adaptor.norm.bias, 1e-5))
    assert torch.allclose(adaptor(x), expected)


def test_mlp_adaptor_loads_llava_projector_directly(tmp_path):
    pytest.importorskip("transformers")
    from tests.models._llava_fixtures import build_llava

    ref = build_llava(tmp_path, projector_hidden_act="gelu")
    adaptor = MLPAdaptor.from_llava(tmp_path)
    proj = ref.model.multi_modal_projector
    x = torch.randn(2, 5, adaptor.in_dim)
    with torch.no_grad():
        assert (adaptor(x) - proj(x)).abs().max().item() <= 1e-6
    assert adaptor.config()["act"] == "gelu" and adaptor.hidden == adaptor.out_dim == 48


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(ModelLoadError, match="adaptor.json"):
        load_adaptor(tmp_path)
    (tmp_path / "adaptor.json").write_text(json.dumps({"kind": "transformer", "in_dim": 3}))
    with pytest.raises(ConfigError, match="kind"):
        load_adaptor(tmp_path)
    LinearAdaptor(4, 2).save(tmp_path / "x")
    (tmp_path / "x" / "adaptor.json").write_text(json.dumps({"kind": "linear", "in_dim": 5, "out_dim": 2}))
    with pytest.raises(ModelLoadError, match="does not fit"):
        load_adaptor(tmp_path / "x")


@pytest.mark.parametrize("bad", [dict(in_dim=0, out_dim=2), dict(in_dim=3, out_dim=True), dict(in_dim=3, out_dim=2, act="nope")])
def test_bad_arguments(bad):
    with pytest.raises(ConfigError):
        MLPAdaptor(**bad)


def test_fit_reduces_mse_on_a_toy_problem():
    gen = torch.Generator().manual_seed(0)
    tokens = torch.randn(256, 8, 32, generator=gen)
    targets = tokens @ torch.randn(32, 16, generator=gen)
    adaptor = LinearAdaptor(32, 16, norm=False)
    losses = fit_adaptor(adaptor, tokens, targets, epochs=20, lr=5e-2, batch_size=32)
    assert len(losses) == 20 and losses[-1] < 0.05 * losses[0]
    assert not adaptor.training


def test_fit_contrastive_aligns_pairs():
    gen = torch.Generator().manual_seed(1)
    tokens = torch.randn(128, 4, 16, generator=gen)
    targets = tokens.mean(dim=1) @ torch.randn(16, 8, generator=gen)
    adaptor = MLPAdaptor(16, 8, hidden=32)
    losses = fit_adaptor(adaptor, list(tokens.numpy()), targets.numpy(), loss="contrastive", epochs=15, lr=3e-3,
                         batch_size=32)
    assert losses[-1] < 0.5 * losses[0]


def test_fit_checks_its_inputs():
    adaptor = LinearAdaptor(4, 2)
    with pytest.raises(ConfigError, match="pair up"):
        fit_adaptor(adaptor, torch.zeros(3, 4), torch.zeros(2, 2))
    with pytest.raises(ConfigError, match="loss"):
        fit_adaptor(adaptor, torch.zeros(3, 4), torch.zeros(3, 2), loss="l1")
    with pytest.raises(ConfigError, match="different shapes"):
        fit_adaptor(adaptor, [np.zeros((2, 4)), np.zeros((3, 4))], torch.zeros(2, 2))


def test_documented_example_runs(tmp_path, monkeypatch):
    from featx.adapters import train

    monkeypatch.chdir(tmp_path)
    example = train.__doc__.split("Example::", 1)[1]
    code = "\n".join(line[4:] for line in example.splitlines())
    exec(compile(code, "example", "exec"), {})
    assert (tmp_path / "my-adaptor" / "adaptor.safetensors").is_file()
