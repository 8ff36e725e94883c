"""Native PyTorch encoders that load Hugging Face checkpoints, and `load_model`.

Which encoder class reads which ``config.json`` model type is said by the model families
(`featx.families`); this package holds the modules and the loading code only.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from ..errors import ConfigError, ModelLoadError
from ..hub import HubOptions
from ..families import encoder_types, family_for, text_family_for
from .configs import ModelConfig, ModelConfigError, parse_config
from .keys import remap_keys
from .layers import EncoderOutput
from .loading import EncoderModel, load_state_dict, load_weights, read_config, resolve_dtype

__all__ = [
    "load_model",
    "resolve_device",
    "resolve_dtype",
    "read_config",
    "load_state_dict",
    "EncoderModel",
    "EncoderOutput",
    "ModelConfig",
    "ModelConfigError",
    "parse_config",
    "remap_keys",
    "TransformersEncoder",
    "supported_model_types",
]

def supported_model_types() -> list[str]:
    """The config.json ``model_type`` values featx implements natively."""
    return encoder_types()


def load_model(
    name_or_path: str | os.PathLike[str],
    dtype: str | torch.dtype | None = "auto",
    device: str | torch.device | None = None,
    *,
    fallback: str | None = None,
    weights: bool = True,
    text: bool = False,
    backend: str = "torch",
    **hub_options: Any,
) -> nn.Module:
    """Load an encoder from a folder or hub id holding ``config.json`` and safetensors weights.

    Returns the model in eval mode on ``device`` (default CPU) in ``dtype`` (``"auto"``: see
    `resolve_dtype`), with attributes ``featx_dtype_reason``, ``name_or_path`` and ``config``.
    A config.json value featx refuses (wrong type, out of range) raises `ModelConfigError` naming the
    field, before anything is built; a layer count that the checkpoint does not match raises
    `ModelLoadError`. Hub options (``revision``, ``cache_dir``, ``token``, ``local_files_only``,
    ``subfolder``, ``force_download``) are passed on to the hub. A model type featx does not
    implement raises `ConfigError`, unless ``fallback="transformers"`` asks to wrap
    ``transformers.AutoModel``.
    ``device="auto"`` picks CUDA when available. ``weights=False`` reads only config.json and
    returns the architecture on the meta device (for describing a job without loading it).
    ``text=True`` loads the checkpoint's text tower (CLIP/SigLIP; `ConfigError` "... has no text
    tower" for other checkpoints) instead of its main encoder.
    ``backend``: "torch", "onnx", "openvino", "inductor" or "auto" (see `featx.backends`); ``dtype="int8"``
    runs on the onnx backend. The model says what runs it in ``featx_backend``.
    """
    options = HubOptions.pop_from(hub_options)
    if hub_options:
        raise TypeError(f"load_model() got unexpected arguments: {', '.join(sorted(hub_options))}")
    if fallback not in (None, "transformers"):
        raise ConfigError(f"fallback must be None or 'transformers', got {fallback!r}")
    source = os.fspath(name_or_path)
    config = read_config(name_or_path, options)
    model_type = config.get("model_type")
    if not isinstance(model_type, str) or not model_type:
        raise ConfigError(f"the config.json of {source} has no model_type")
    torch_device = resolve_device(device)
    runtime = _runtime(backend, dtype, torch_device)
    # The exported-graph runtimes take a float32 module (they run their own precisions).
    torch_dtype, reason = resolve_dtype(runtime[1] if runtime[0] in ("torch", "inductor") else "float32", torch_device)

    spec = None
    try:
        spec = text_family_for(model_type, source) if text else family_for(model_type)
        cls = spec.encoder_class(model_type)
    except ConfigError:
        if text:
            raise
        cls = None
    if cls is None:
        spec = None
        if fallback == "transformers":
            model: nn.Module = TransformersEncoder.load(source, torch_dtype, options)
        else:
            raise ConfigError(
                f"featx has no native encoder for model_type {model_type!r} ({source}); it supports: "
                f"{', '.join(supported_model_types())}. To run it through transformers.AutoModel instead, "
                "pass fallback='transformers' (needs transformers installed)."
            ) from None
    else:
        model = _build(cls, config, source, options, weights)

    model.eval()
    if weights:
        model.to(device=torch_device, dtype=torch_dtype)
    else:
        model.to(dtype=torch_dtype)
    model.featx_device = torch_device
    model.featx_family = spec  # what the rest of featx asks about this model (None: fallback)
    model.featx_dtype_reason = reason
    model.name_or_path = source
    model.config = config
    model.featx_backend = "torch"
    if runtime[0] != "torch" and weights:
        from ..backends import apply_backend

        apply_backend(model, runtime[0], runtime[1])
        model.featx_dtype_reason = runtime[2] if runtime[0] != "inductor" else f"{reason}; {runtime[2]}"
    return model


def _runtime(backend: str, dtype: str | torch.dtype | None, device: torch.device) -> tuple[Any, ...]:
    """(backend, dtype, reason) to load with; torch unless a backend is asked for."""
    if backend == "torch" and dtype != "int8":
        return ("torch", dtype, "")
    from ..backends import choose_backend

    name = "auto" if dtype is None else str(dtype).replace("torch.", "")
    return choose_backend(backend, name, device)


def _build(cls: Any, config: dict[str, Any], source: str, options: HubOptions, weights: bool) -> nn.Module:
    """A native encoder: its config checked, built on the meta device, then (``weights``) filled."""
    try:  # each family checks its config (parse_config) before building anything
        with torch.device("meta"):
            model = cls.from_config(config)
    except ModelConfigError as exc:
        raise exc.at(_config_label(source, options)) from None
    if weights:
        # a model that needs part of a checkpoint (LLaVA's visual path) reads only that part
        read = getattr(model, "read_checkpoint", None)
        raw = read(source, options) if read is not None else load_state_dict(source, options)
        state = model.remap_state_dict(raw)
        load_weights(model, state, source)
    return model


def _config_label(source: str, options: HubOptions) -> str:
    """Where config.json came from, for error messages: ``<folder or hub id>/config.json``."""
    if source.lower().endswith(".json"):
        return source
    if source.lower().endswith(".safetensors"):
        return os.path.join(os.path.dirname(source), "config.json")
    parts = [source.rstrip("/"), options.subfolder, "config.json"]
    return "/".join(p for p in parts if p)


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None`` -> CPU; ``"auto"`` -> CUDA when available, else CPU; anything else as torch reads it."""
    if device is None:
        return torch.device("cpu")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', not {device!r}") from exc


class TransformersEncoder(EncoderModel):
    """A ``transformers.AutoModel`` behind featx's encoder contract (``fallback="transformers"``).

    Loads safetensors only (``use_safetensors=True``). ``num_prefix_tokens`` is unknown for
    arbitrary architectures and left at 0, so mean pooling includes any class token.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.main_input_name = getattr(model, "main_input_name", "pixel_values")  # type: ignore[misc]
        self.modality = "audio" if self.main_input_name in ("input_features", "input_values") else "image"  # type: ignore[misc]
        cfg = model.config
        self.hidden_size = int(getattr(cfg, "hidden_size", 0) or getattr(cfg, "d_model", 0) or 0)
        self.has_pooler = getattr(model, "pooler", None) is not None

    @classmethod
    def load(cls, source: str, dtype: torch.dtype, options: HubOptions) -> TransformersEncoder:
        from ..errors import require

        transformers = require("transformers", "test", "fallback='transformers'")
        try:
            model = transformers.AutoModel.from_pretrained(
                source,
                dtype=dtype,
                use_safetensors=True,
                revision=options.revision,
                cache_dir=options.cache_dir,
                token=options.token,
                local_files_only=options.local_files_only,
                subfolder=options.subfolder,
            )
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"transformers could not load {source} from safetensors: {exc}") from exc
        return cls(model)

    def forward(self, **inputs: Tensor) -> EncoderOutput:
        out = self.model(**inputs)
        return EncoderOutput(
            last_hidden_state=out.last_hidden_state,
            pooler_output=getattr(out, "pooler_output", None),
        )

    def remap_state_dict(self, state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
        return dict(state_dict)
