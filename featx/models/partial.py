"""Reading part of a checkpoint: only the tensors a model needs, by name, from its safetensors.

A multimodal checkpoint (LLaVA) holds a vision tower, a projector and a language model of billions
of parameters; featx's visual path needs the first two. ``safe_open`` maps the file and reads one
tensor at a time, so the tensors that are not asked for are never read into memory. `read_tensors`
counts the bytes of the tensors it returns (what was read), and names them, so callers (and tests)
can show that no language-model tensor was touched. Sharded checkpoints open only the shards that
hold a wanted tensor.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from torch import Tensor

from ..errors import ModelLoadError
from ..hub import HubOptions, resolve_file
from .loading import SAFE_WEIGHTS_INDEX_NAME, SAFE_WEIGHTS_NAME

__all__ = ["PartialRead", "checkpoint_files", "read_tensors"]


@dataclass
class PartialRead:
    """The tensors read (checkpoint names), how many bytes they hold, and the names left unread."""

    tensors: dict[str, Tensor] = field(default_factory=dict)
    bytes_read: int = 0
    skipped: list[str] = field(default_factory=list)


def checkpoint_files(name_or_path: str | os.PathLike[str], options: HubOptions | None = None,
                     wanted: Callable[[str], bool] | None = None) -> list[Path]:
    """The safetensors files of a checkpoint (a folder, hub id or ``.safetensors`` path); for a
    sharded one, only the shards holding a name ``wanted`` accepts (all without ``wanted``)."""
    options = options or HubOptions()
    path = Path(os.fspath(name_or_path)).expanduser()
    if path.is_file():
        if path.suffix.lower() != ".safetensors":
            raise ModelLoadError(f"{path} is not a safetensors file")
        return [path]
    single = resolve_file(name_or_path, SAFE_WEIGHTS_NAME, options, required=False)
    if single is not None:
        return [single]
    index = resolve_file(name_or_path, SAFE_WEIGHTS_INDEX_NAME, options, required=False)
    if index is None:
        raise ModelLoadError(f"{os.fspath(name_or_path)} has neither {SAFE_WEIGHTS_NAME} nor "
                             f"{SAFE_WEIGHTS_INDEX_NAME} (featx reads safetensors only)")
    try:
        with open(index, encoding="utf-8") as fh:
            weight_map = json.load(fh)["weight_map"]
        shards = sorted({s for k, s in weight_map.items() if wanted is None or wanted(k)})
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ModelLoadError(f"cannot read the shard index {index}: {exc}") from exc
    files = []
    for shard in shards:
        # the index comes from the checkpoint: keep its shard names inside the checkpoint folder
        if not isinstance(shard, str) or Path(shard).name != shard or not shard.endswith(".safetensors"):
            raise ModelLoadError(f"{index} names an unexpected shard file {shard!r}")
        local = index.parent / shard
        found = local if local.is_file() else resolve_file(name_or_path, shard, options)
        assert found is not None
        files.append(found)
    return files


def read_tensors(name_or_path: str | os.PathLike[str], wanted: Callable[[str], bool],
                 options: HubOptions | None = None) -> PartialRead:
    """The checkpoint's tensors whose names ``wanted`` accepts, read one by one (others never are)."""
    from safetensors import SafetensorError, safe_open

    out = PartialRead()
    for path in checkpoint_files(name_or_path, options, wanted):
        try:
            with safe_open(str(path), framework="pt", device="cpu") as fh:
                for name in fh.keys():
                    if not wanted(name):
                        out.skipped.append(name)
                        continue
                    tensor = fh.get_tensor(name)
                    out.tensors[name] = tensor
                    out.bytes_read += tensor.numel() * tensor.element_size()
        except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
            raise ModelLoadError(f"cannot read the safetensors file {path}: {exc}") from exc
    return out
