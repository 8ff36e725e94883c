"""Reading checkpoints safely: config.json, safetensors weights (sharded too), dtype choice.

Nothing here ever unpickles: ``pytorch_model.bin``, ``.pt`` and ``.ckpt`` files are pickles that
can run arbitrary code when loaded, so they are refused with instructions to convert them.
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from ..errors import ConfigError, ModelLoadError
from ..hub import HubOptions, is_offline, offline_hint, resolve_file
from .configs import ModelConfigError
from .keys import layer_count_problem

__all__ = [
    "EncoderModel",
    "load_weights",
    "SAFE_WEIGHTS_NAME",
    "SAFE_WEIGHTS_INDEX_NAME",
    "UNSAFE_WEIGHTS_NAMES",
    "read_config",
    "load_state_dict",
    "resolve_dtype",
    "cpu_has_native_bf16",
    "cpu_flags",
    "CONVERT_HINT",
    "MAX_CONFIG_BYTES",
]

#: config.json files larger than this are refused (real ones are a few kB; the largest, with
#: label maps of ImageNet-21k, well under 2 MiB)
MAX_CONFIG_BYTES = 16 << 20
SAFE_WEIGHTS_NAME = "model.safetensors"
SAFE_WEIGHTS_INDEX_NAME = "model.safetensors.index.json"
UNSAFE_WEIGHTS_NAMES = ("pytorch_model.bin", "pytorch_model.bin.index.json")
_UNSAFE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")

CONVERT_HINT = """\
featx loads safetensors only: {what} is a pickle, and unpickling can run arbitrary code, so featx
never opens it. Convert it once, on a machine where you trust the file, for example:

    from transformers import AutoModel
    model = AutoModel.from_pretrained("{source}")  # unpickles: only for files you trust
    model.save_pretrained("{target}", safe_serialization=True)

then load "{target}" (it holds config.json and model.safetensors). Many hub repositories
already have a model.safetensors on another revision (see the repository's "refs/pr" branches)."""


def _hint(what: str, source: str) -> str:
    target = f"{Path(source).name or 'model'}-safetensors"
    return CONVERT_HINT.format(what=what, source=source, target=target)


def read_config(name_or_path: str | os.PathLike[str], options: HubOptions | None = None) -> dict[str, Any]:
    """The checkpoint's ``config.json`` as a dict (a path to a JSON file works too).

    A file over `MAX_CONFIG_BYTES`, nested too deeply for the JSON parser, or not a JSON object raises
    `ModelConfigError` (a `ConfigError` and a `ModelLoadError`).
    """
    path = resolve_file(name_or_path, "config.json", options)
    assert path is not None
    if path.suffix.lower() != ".json":
        # A direct path to a weights file: its config lives next to it.
        path = path.parent / "config.json"
        if not path.is_file():
            raise ModelLoadError(f"no config.json next to {name_or_path}")
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ModelConfigError(f"cannot read the model config {path}: {exc}") from exc
    if len(raw) > MAX_CONFIG_BYTES:
        raise ModelConfigError(f"{path}: config.json is larger than {MAX_CONFIG_BYTES >> 20} MiB; "
                               "featx refuses it (model configs are a few kB)")
    try:
        data = json.loads(raw.decode("utf-8"))
    except RecursionError:
        raise ModelConfigError(f"{path}: config.json is nested too deeply") from None
    except (UnicodeDecodeError, ValueError) as exc:  # ValueError: bad JSON, or an integer too long
        raise ModelConfigError(f"cannot read the model config {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ModelConfigError(f"the model config {path} is not a JSON object")
    return data


def _load_safetensors(path: Path) -> dict[str, Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise ModelLoadError(f"cannot read the safetensors file {path}: {exc}") from exc


def _load_sharded(index_path: Path, name_or_path: str | os.PathLike[str], options: HubOptions) -> dict[str, Tensor]:
    try:
        with open(index_path, encoding="utf-8") as fh:
            weight_map = json.load(fh)["weight_map"]
        shards = sorted(set(weight_map.values()))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ModelLoadError(f"cannot read the shard index {index_path}: {exc}") from exc
    state: dict[str, Tensor] = {}
    for shard in shards:
        # The index comes from the checkpoint: keep its shard names inside the checkpoint folder.
        if not isinstance(shard, str) or Path(shard).name != shard or not shard.endswith(".safetensors"):
            raise ModelLoadError(f"{index_path} names an unexpected shard file {shard!r}")
        if index_path.parent.joinpath(shard).is_file():
            shard_path: Path | None = index_path.parent / shard
        else:
            shard_path = resolve_file(name_or_path, shard, options)
        assert shard_path is not None
        state.update(_load_safetensors(shard_path))
    missing = set(weight_map) - set(state)
    if missing:
        raise ModelLoadError(
            f"the shards of {name_or_path} lack {len(missing)} tensors listed in {index_path.name}, "
            f"e.g. {sorted(missing)[:5]}"
        )
    return state


def load_state_dict(
    name_or_path: str | os.PathLike[str], options: HubOptions | None = None
) -> dict[str, Tensor]:
    """All tensors of a checkpoint, from ``model.safetensors`` or its sharded index.

    ``name_or_path`` is a folder, a hub id, or a path to a ``.safetensors`` file. A checkpoint
    that has only pickle weights (``pytorch_model.bin``, ``.pt``, ``.ckpt``) raises
    `ModelLoadError` explaining why and how to convert; it is never opened.
    """
    options = options or HubOptions()
    path = Path(os.fspath(name_or_path)).expanduser()
    if path.is_file():
        if path.suffix.lower() == ".safetensors":
            return _load_safetensors(path)
        if path.name.endswith(SAFE_WEIGHTS_INDEX_NAME):
            return _load_sharded(path, path.parent, options)
        if path.suffix.lower() in _UNSAFE_SUFFIXES:
            raise ModelLoadError(_hint(path.name, str(path)))
        raise ModelLoadError(f"{path} is not a safetensors file")

    single = resolve_file(name_or_path, SAFE_WEIGHTS_NAME, options, required=False)
    if single is not None:
        return _load_safetensors(single)
    index = resolve_file(name_or_path, SAFE_WEIGHTS_INDEX_NAME, options, required=False)
    if index is not None:
        return _load_sharded(index, name_or_path, options)

    source = os.fspath(name_or_path)
    if path.is_dir():
        folder = path / options.subfolder if options.subfolder else path
        unsafe = sorted(
            p.name for p in folder.iterdir() if p.is_file() and p.suffix.lower() in _UNSAFE_SUFFIXES
        )
        if unsafe:
            raise ModelLoadError(f"{folder} has no {SAFE_WEIGHTS_NAME}. " + _hint(", ".join(unsafe), source))
        raise ModelLoadError(
            f"{folder} has neither {SAFE_WEIGHTS_NAME} nor {SAFE_WEIGHTS_INDEX_NAME}"
        )
    # A hub id: we do not download pickle files just to name them.
    if is_offline() or options.local_files_only:
        raise ModelLoadError(
            f"cannot get {SAFE_WEIGHTS_NAME} or {SAFE_WEIGHTS_INDEX_NAME} of {source!r}: offline mode is on "
            f"and they are not in the Hugging Face cache. {offline_hint(source, offline=True)}."
        )
    raise ModelLoadError(
        f"cannot get {SAFE_WEIGHTS_NAME} or {SAFE_WEIGHTS_INDEX_NAME} of {source!r}. "
        "If the repository has only pytorch_model.bin: " + _hint("pytorch_model.bin", source)
    )


_DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "float": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
    "half": torch.float16,
}


_BF16_FLAGS = ("amx_bf16", "avx512_bf16")


def cpu_flags() -> frozenset[str] | None:
    """The CPU's feature flags as /proc/cpuinfo lists them; None where that file is unavailable.

    The one place featx reads the CPU: tests fake a CPU kind by replacing this function.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return None


def cpu_has_native_bf16(flags: frozenset[str] | set[str] | None = None) -> tuple[bool, str]:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX), and what showed it.

    ``flags`` defaults to `cpu_flags()`; without flags (not Linux) oneDNN's own check decides.
    """
    if flags is None:
        flags = cpu_flags()
    if flags is not None:
        found = [f for f in _BF16_FLAGS if f in flags]
        if found:
            return True, "/".join(found)
        return False, "no avx512_bf16/amx_bf16 in /proc/cpuinfo"
    try:  # oneDNN's own check, where /proc/cpuinfo is not available
        if torch.ops.mkldnn._is_mkldnn_bf16_supported():
            capability = torch.backends.cpu.get_cpu_capability()
            if capability.upper().startswith(("AVX512", "AMX")):
                return True, f"oneDNN bf16 support ({capability})"
    except (AttributeError, RuntimeError):
        pass
    return False, "no native bfloat16 instructions detected"


def resolve_dtype(
    dtype: str | torch.dtype | None = "auto",
    device: str | torch.device | None = None,
) -> tuple[torch.dtype, str]:
    """The torch dtype to run in, and a sentence saying why.

    ``"auto"``: bfloat16 on a CPU with AVX512-BF16 or AMX, or a CUDA GPU that supports it;
    float32 otherwise (bfloat16 without hardware support is slower than float32).
    """
    device = torch.device(device) if device is not None else torch.device("cpu")
    if isinstance(dtype, torch.dtype):
        if not dtype.is_floating_point:
            raise ConfigError(f"dtype must be a floating point type, got {dtype}")
        return dtype, f"{str(dtype).replace('torch.', '')} (asked for)"
    name = "auto" if dtype is None else str(dtype).lower().replace("torch.", "")
    if name in _DTYPES:
        return _DTYPES[name], f"{name} (asked for)"
    if name != "auto":
        raise ConfigError(f"unknown dtype {dtype!r}; use 'auto', 'float32', 'bfloat16' or 'float16'")
    if device.type == "cuda":
        if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return torch.bfloat16, "auto: bfloat16, the CUDA device supports it"
        return torch.float32, "auto: float32, the CUDA device has no bfloat16 support"
    if device.type == "cpu":
        native, why = cpu_has_native_bf16()
        if native:
            return torch.bfloat16, f"auto: bfloat16, the CPU has native bfloat16 ({why})"
        return torch.float32, f"auto: float32, the CPU lacks native bfloat16 ({why}), where bfloat16 is slower"
    return torch.float32, f"auto: float32 on {device.type}"


class EncoderModel(nn.Module):
    """Base of the featx encoders: the contract `featx.models.load_model` and the pipelines use.

    Subclasses set the class attributes, build themselves in `from_config` (which `load_model`
    runs under ``torch.device("meta")``: parameters are created without memory and then replaced
    by the checkpoint's tensors, so keep constants either in the checkpoint or compute them in
    `post_load`), and map checkpoint names onto theirs in `remap_state_dict`.
    """

    modality: ClassVar[str] = "image"
    main_input_name: ClassVar[str] = "pixel_values"
    #: class/distillation/register tokens in front of the patch tokens (excluded from mean pooling)
    num_prefix_tokens: int = 0
    has_pooler: bool = False
    #: state-dict prefixes of the pooler; a checkpoint without them loads with the pooler left out
    pooler_prefixes: ClassVar[tuple[str, ...]] = ()
    #: prefixes of other extras (e.g. CLIP's visual_projection) a checkpoint may lack; left out then
    optional_prefixes: ClassVar[tuple[str, ...]] = ()
    #: True when the architecture has a pooler but the checkpoint has no weights for it (the
    #: reference would use random ones); featx then leaves it out and returns no pooler_output
    pooler_is_random: bool = False
    hidden_size: int = 0
    #: stacks of numbered layers, as {state-dict prefix: the config.json key that counts them}
    #: (``{"encoder.layers.": "num_hidden_layers"}``); `load_weights` checks that the checkpoint
    #: holds exactly the layers the config declares
    layer_stacks: ClassVar[Mapping[str, str]] = {}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> EncoderModel:
        raise NotImplementedError

    def remap_state_dict(self, state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Checkpoint names to this module's names; drops weights that are not the encoder's."""
        return dict(state_dict)

    def output_attention_mask(self, attention_mask: Tensor) -> Tensor | None:
        """The padding mask at the output's token rate for an input mask; None: no padding to skip."""
        return None

    def drop_modules(self, prefixes: tuple[str, ...]) -> None:
        """Set the top-level submodules named by ``prefixes`` (``"pooler."``) to None."""
        for prefix in prefixes:
            name = prefix.rstrip(".")
            if "." not in name and isinstance(getattr(self, name, None), nn.Module):
                setattr(self, name, None)

    def drop_pooler(self) -> None:
        """Remove the pooler (its weights are missing from the checkpoint)."""
        self.drop_modules(self.pooler_prefixes)
        self.has_pooler = False
        self.pooler_is_random = True

    def post_load(self) -> None:
        """Hook run after the weights are in place (e.g. to build non-checkpoint buffers)."""


def _list(keys: list[str], limit: int = 8) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def _check_layer_stacks(
    model: EncoderModel, own: Mapping[str, Tensor], state_dict: Mapping[str, Tensor], source: str
) -> str:
    """Raise when the checkpoint has layers beyond those config.json declares; describe missing layers."""
    notes = []
    for prefix, field in model.layer_stacks.items():
        problem = layer_count_problem(own, state_dict, prefix, field)
        if problem is not None and problem[1]:
            raise ModelLoadError(f"{source}: {problem[0]}")
        if problem is not None:
            notes.append(problem[0])
    return "; ".join(notes)


def load_weights(model: EncoderModel, state_dict: Mapping[str, Tensor], source: str = "the checkpoint") -> None:
    """Put checkpoint tensors (already remapped) into ``model``, checking the encoder's keys strictly.

    A checkpoint with more numbered layers than config.json declares (``model.layer_stacks``),
    missing encoder weights and shape mismatches raise `ModelLoadError`; a pooler absent from the
    checkpoint is dropped (``model.pooler_is_random``); extra keys only warn. Tensors are assigned,
    not copied, so a model built on the meta device gets real storage here.
    """
    own = model.state_dict(keep_vars=True)
    layer_notes = _check_layer_stacks(model, own, state_dict, source)
    missing = {k for k in own if k not in state_dict}
    for prefix in model.optional_prefixes:
        keys = {k for k in own if k.startswith(prefix)}
        if keys and keys <= missing:
            model.drop_modules((prefix,))
    pooler = {k for k in own if model.pooler_prefixes and k.startswith(model.pooler_prefixes)}
    if pooler and pooler <= missing:
        model.drop_pooler()
    own = model.state_dict(keep_vars=True)
    missing = sorted(k for k in own if k not in state_dict)
    if missing:
        raise ModelLoadError(
            f"{source} lacks {len(missing)} weights of the {type(model).__name__} encoder: {_list(missing)}. "
            + (f"{layer_notes}. " if layer_notes else "")
            + "Is config.json the one that belongs to these weights?"
        )
    bad = [
        f"{k} {tuple(state_dict[k].shape)} vs {tuple(v.shape)}"
        for k, v in own.items()
        if tuple(state_dict[k].shape) != tuple(v.shape)
    ]
    if bad:
        raise ModelLoadError(f"weights of {source} do not match its config (checkpoint vs model): {_list(bad, 5)}")
    unexpected = sorted(k for k in state_dict if k not in own)
    if unexpected:
        warnings.warn(
            f"{source}: {len(unexpected)} weights unused by {type(model).__name__}: {_list(unexpected)}",
            stacklevel=3,
        )
    model.load_state_dict({k: state_dict[k] for k in own}, strict=True, assign=True)
    model.post_load()
    on_meta = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if on_meta:  # a bug in the model class, not in the checkpoint
        raise RuntimeError(f"{type(model).__name__} left tensors without data after loading: {_list(on_meta)}")
