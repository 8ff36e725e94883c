"""LLaVA's visual path: the vision tower's chosen layer, then the projector, into the LLM's space.

`LlavaVisualTokens` reads ``llava`` (LLaVA 1.5) and ``llava_next`` (LLaVA-NeXT) checkpoints and
gives the reference's ``get_image_features``: the tower's ``vision_feature_layer`` hidden state(s)
(concatenated when several), the class token dropped with the ``default`` select strategy, through
``multi_modal_projector``. LLaVA-NeXT runs every tile of an image (the base view first), then
unpads and packs the tile grid with ``image_newline`` (`pack_tiles`, the reference's
``pack_image_features``). Only the layers up to the deepest selected one are built, and only
their tensors, the projector's and ``image_newline`` are read from the checkpoint
(`featx.models.partial`): the language model's tensors never are.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from ..errors import InputError
from .configs import (
    MAX_HIDDEN,
    ModelConfig,
    ModelConfigError,
    activation,
    parse_config,
    require,
    setting,
)
from .keys import remap_keys
from .layers import EncoderOutput, image_batch
from .loading import EncoderModel

__all__ = [
    "LlavaConfig",
    "LlavaVisualTokens",
    "anyres_grid",
    "feature_layers",
    "pack_tiles",
    "select_best_resolution",
    "tile_count",
    "unpad_features",
]

#: checkpoint prefixes of the vision tower (transformers 5's layout, then older ones)
TOWER_PREFIXES = ("model.vision_tower.vision_model.", "model.vision_tower.", "vision_tower.vision_model.",
                  "vision_tower.")
PROJECTOR_PREFIXES = ("model.multi_modal_projector.", "multi_modal_projector.")
NEWLINE_KEYS = ("model.image_newline", "image_newline")


@dataclass(frozen=True)
class LlavaConfig(ModelConfig):
    """The top-level fields of a ``llava`` / ``llava_next`` config.json featx reads."""

    projector_hidden_act: str = activation("gelu")
    vision_feature_select_strategy: str = setting("default", choices=("default", "full"))
    multimodal_projector_bias: bool = True


def _text_hidden(config: Mapping[str, Any]) -> int:
    text = config.get("text_config") or {}
    if not isinstance(text, Mapping):
        raise ModelConfigError("text_config must be a JSON object", field="text_config")
    value = text.get("hidden_size", 4096)  # LlamaConfig's default
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_HIDDEN:
        raise ModelConfigError(f"text_config.hidden_size must be an integer from 1 to {MAX_HIDDEN}, got {value!r}",
                               field="text_config.hidden_size")
    return value


def feature_layers(value: Any, num_layers: int) -> tuple[int, ...]:
    """``vision_feature_layer`` (an int or a list) as indices into the tower's hidden states
    (0: the embeddings, ``num_layers``: the last layer's output)."""
    raw = [value] if not isinstance(value, (list, tuple)) else list(value)
    out = []
    for v in raw:
        ok = isinstance(v, int) and not isinstance(v, bool) and -(num_layers + 1) <= v <= num_layers
        require(ok and len(raw) >= 1, "vision_feature_layer",
                f"must be an integer (or a list of them) from {-(num_layers + 1)} to {num_layers}, got {value!r}")
        out.append(v if v >= 0 else num_layers + 1 + v)
    require(bool(out), "vision_feature_layer", "must name at least one layer")
    return tuple(out)


def _pinpoints(value: Any) -> tuple[tuple[int, int], ...]:
    ok = isinstance(value, (list, tuple)) and 0 < len(value) <= 256 and all(
        isinstance(p, (list, tuple)) and len(p) == 2
        and all(isinstance(i, int) and not isinstance(i, bool) and 1 <= i <= 1 << 16 for i in p) for p in value)
    require(ok, "image_grid_pinpoints", f"must be a list of [height, width] pairs of positive integers, got {value!r}")
    return tuple((int(h), int(w)) for h, w in value)


# ---- LLaVA-NeXT geometry (the reference's functions, on plain ints) --------------------------------
def select_best_resolution(size: tuple[int, int], pinpoints: Sequence[Sequence[int]]) -> tuple[int, int]:
    """The (height, width) of ``pinpoints`` that keeps most of an image of ``size`` (height,
    width) when fitted inside, ties going to the least wasted area."""
    height, width = size
    best, best_effective, best_waste = (0, 0), 0, float("inf")
    for h, w in pinpoints:
        scale = min(w / width, h / height)
        effective = min(int(width * scale) * int(height * scale), width * height)
        waste = w * h - effective
        if effective > best_effective or (effective == best_effective and waste < best_waste):
            best, best_effective, best_waste = (int(h), int(w)), effective, waste
    return best


def anyres_grid(size: tuple[int, int], pinpoints: Sequence[Sequence[int]], tile: int) -> tuple[int, int]:
    """(rows, columns) of tiles of an image of ``size`` (height, width)."""
    h, w = select_best_resolution(size, pinpoints)
    return h // tile, w // tile


def tile_count(size: tuple[int, int], pinpoints: Sequence[Sequence[int]], tile: int) -> int:
    """Tiles of an image of ``size`` including its base view (the reference's ``image_size_to_num_patches``)."""
    h, w = select_best_resolution(size, pinpoints)
    return -(-h // tile) * -(-w // tile) + 1


def unpad_features(features: Tensor, size: tuple[int, int]) -> Tensor:
    """[dim, H, W] features of a padded tile grid with the padding's rows or columns removed."""
    height, width = size
    cur_h, cur_w = features.shape[1:]
    if width / height > cur_w / cur_h:
        new_h = int(round(height * (cur_w / width), 7))
        pad = (cur_h - new_h) // 2
        return features[:, pad: cur_h - pad, :]
    new_w = int(round(width * (cur_h / height), 7))
    pad = (cur_w - new_w) // 2
    return features[:, :, pad: cur_w - pad]


def pack_tiles(features: Tensor, size: tuple[int, int], pinpoints: Sequence[Sequence[int]], tile: int,
               grid: int, newline: Tensor | None) -> Tensor:
    """One image's tokens from its tiles' projected features [tiles, grid*grid, dim] (base view
    first): the base view's tokens, then the tile grid unpadded to the image's aspect ratio, row by
    row, each row ended by ``newline`` (the reference's ``pack_image_features``)."""
    if features.shape[0] == 1:
        out = features[0]
        return torch.cat([out, newline[None].to(out)], dim=0) if newline is not None else out
    base, tiles = features[0], features[1:]
    rows, cols = anyres_grid(size, pinpoints, tile)
    x = tiles.reshape(rows, cols, grid, grid, -1).permute(4, 0, 2, 1, 3).flatten(1, 2).flatten(2, 3)
    x = unpad_features(x, size)
    if newline is not None:
        x = torch.cat([x, newline[:, None, None].expand(*x.shape[:-1], 1).to(x)], dim=-1)
    return torch.cat([base, x.flatten(1, 2).transpose(0, 1)], dim=0)


class LlavaVisualTokens(EncoderModel):
    """LLaVA's vision tower (to the selected layer) and projector; output: tokens in the LLM's space.

    ``forward(pixel_values)`` for LLaVA 1.5 ([batch, 3, H, W]) gives [batch, tokens, llm_hidden];
    LLaVA-NeXT takes ``pixel_values`` [batch, tiles, 3, H, W] (tiles past an image's own count are
    padding and never run) with ``image_sizes`` [batch, 2] and gives its packed tokens, padded to
    the longest in the batch, with ``attention_mask`` marking each image's real ones.
    """

    layer_stacks: ClassVar[dict[str, str]] = {}
    #: its output is already in a language model's embedding space (no adaptor needed)
    projects_to_llm: ClassVar[bool] = True
    #: the tensors `read_checkpoint` reads (checkpoint names) and their bytes, after loading
    tensors_read: tuple[str, ...] = ()
    bytes_read: int = 0

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__()
        from ..adapters import MLPAdaptor
        from ..families import family_for

        cfg = parse_config(LlavaConfig, config)
        vision = config.get("vision_config") or {"model_type": "clip_vision_model"}
        if not isinstance(vision, Mapping):
            raise ModelConfigError("vision_config must be a JSON object", field="vision_config")
        vision = {"model_type": "clip_vision_model", **vision}
        layers = vision.get("num_hidden_layers", 12)
        require(isinstance(layers, int) and not isinstance(layers, bool) and 1 <= layers <= 1000,
                "vision_config.num_hidden_layers", f"must be an integer from 1 to 1000, got {layers!r}")
        self.feature_layers = feature_layers(config.get("vision_feature_layer", -2), layers)
        self.depth = max(self.feature_layers)  # layers past the deepest selected one are never built
        tower_cls = family_for(vision["model_type"]).encoder_class(vision["model_type"])
        if tower_cls is None:
            raise ModelConfigError(f"vision_config.model_type {vision['model_type']!r} has no featx encoder",
                                   field="vision_config.model_type")
        self.tower = tower_cls.from_config({**vision, "num_hidden_layers": max(self.depth, 1)})
        if self.depth == 0:
            self.tower.encoder = None
        for extra in ("post_layernorm", "head", "visual_projection"):  # the tower's pooling is unused
            if getattr(self.tower, extra, None) is not None:
                setattr(self.tower, extra, None)
        self.strategy = cfg.vision_feature_select_strategy
        vision_hidden = int(self.tower.hidden_size)
        self.hidden_size = _text_hidden(config)
        self.projector = MLPAdaptor(vision_hidden * len(self.feature_layers), self.hidden_size, self.hidden_size,
                                    act=cfg.projector_hidden_act, bias=cfg.multimodal_projector_bias)
        self.next = config.get("model_type") == "llava_next"
        opts = self.tower.opts
        self.image_size = int(opts.image_size if isinstance(opts.image_size, int) else opts.image_size[0])
        self.grid = self.image_size // int(opts.patch_size if isinstance(opts.patch_size, int) else opts.patch_size[0])
        self.pinpoints = _pinpoints(config.get("image_grid_pinpoints")) if self.next else ()
        self.image_newline = nn.Parameter(torch.zeros(self.hidden_size)) if self.next else None
        prefix = int(getattr(self.tower, "num_prefix_tokens", 0))
        self.drop_prefix = prefix if self.strategy == "default" else 0
        # the tile grid is rebuilt from the tokens; with a class token kept it cannot be (the
        # reference then mixes tokens up, or fails)
        require(not (self.next and prefix > self.drop_prefix), "vision_feature_select_strategy",
                "\"full\" keeps the class token, which LLaVA-NeXT's tile packing cannot place; use \"default\"")
        #: tokens per image (LLaVA 1.5); None where it depends on the image (LLaVA-NeXT)
        self.num_tokens: int | None = None if self.next else self.grid * self.grid + prefix - self.drop_prefix

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> LlavaVisualTokens:
        return cls(config)

    # ---- loading ---------------------------------------------------------------------------
    def wanted(self, name: str) -> bool:
        """Whether a checkpoint tensor is one this model needs (nothing of the language model)."""
        if name in NEWLINE_KEYS:
            return self.image_newline is not None
        if name.startswith(PROJECTOR_PREFIXES):
            return True
        for prefix in TOWER_PREFIXES:
            if name.startswith(prefix):
                rest = name[len(prefix):]
                if rest.startswith("encoder.layers."):
                    index = rest[len("encoder.layers."):].split(".", 1)[0]
                    return index.isdigit() and int(index) < self.depth
                return rest.startswith(("embeddings.", "pre_layrnorm."))
        return False

    def read_checkpoint(self, source: str | os.PathLike[str], options: Any = None) -> dict[str, Tensor]:
        """The tensors this model needs, read one by one (`featx.models.partial.read_tensors`)."""
        from .partial import read_tensors

        read = read_tensors(source, self.wanted, options)
        self.tensors_read = tuple(sorted(read.tensors))
        self.bytes_read = read.bytes_read
        return read.tensors

    def remap_state_dict(self, state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
        tower = remap_keys(state_dict, [(p, "") for p in TOWER_PREFIXES], only_prefixed=True,
                           keep=("embeddings.", "pre_layrnorm.", "encoder.layers."))
        out = {f"tower.{k}": v for k, v in self.tower.remap_state_dict(tower).items()}
        out.update({f"projector.{k}": v for k, v in remap_keys(
            state_dict, [(p, "") for p in PROJECTOR_PREFIXES], only_prefixed=True).items()})
        for key in NEWLINE_KEYS:
            if key in state_dict and self.image_newline is not None:
                out["image_newline"] = state_dict[key]
        return out

    # ---- running ---------------------------------------------------------------------------
    def features(self, pixel_values: Tensor) -> Tensor:
        """[n, 3, H, W] -> projected tokens [n, tokens, llm_hidden] (the reference's
        ``get_image_features`` for LLaVA 1.5, one row per image or tile)."""
        tower = self.tower
        x = tower.embeddings(image_batch(pixel_values, next(tower.embeddings.parameters())))
        x = tower.before_encoder(x)
        states: tuple[Tensor, ...] = (x,)
        if tower.encoder is not None:
            _, hidden = tower.encoder(x, None, True)
            states = hidden or (x,)
        chosen = torch.cat([states[i] for i in self.feature_layers], dim=-1)
        return self.projector(chosen[:, self.drop_prefix:])

    def forward(self, pixel_values: Tensor, image_sizes: Tensor | None = None) -> EncoderOutput:
        if not self.next:
            if pixel_values.ndim != 4:
                raise InputError(f"pixel_values must be [batch, 3, height, width], got {tuple(pixel_values.shape)}",
                                 source="pixel_values")
            return EncoderOutput(last_hidden_state=self.features(pixel_values))
        if pixel_values.ndim != 5 or image_sizes is None:
            raise InputError("LLaVA-NeXT takes pixel_values [batch, tiles, 3, height, width] and image_sizes "
                             f"[batch, 2]; got pixel_values {tuple(pixel_values.shape)}"
                             f"{'' if image_sizes is not None else ' and no image_sizes'}", source="pixel_values")
        sizes = [(int(h), int(w)) for h, w in image_sizes.tolist()]
        counts = [tile_count(s, self.pinpoints, self.image_size) for s in sizes]
        if any(c > pixel_values.shape[1] for c in counts):
            raise InputError(f"an image needs {max(counts)} tiles but pixel_values hold {pixel_values.shape[1]}",
                             source="pixel_values")
        feats = self.features(torch.cat([pv[:c] for pv, c in zip(pixel_values, counts)], dim=0))
        packed = [pack_tiles(f, s, self.pinpoints, self.image_size, self.grid, self.image_newline)
                  for f, s in zip(feats.split(counts), sizes)]
        longest = max(len(p) for p in packed)
        out = packed[0].new_zeros(len(packed), longest, packed[0].shape[-1])
        mask = torch.zeros(len(packed), longest, dtype=torch.long, device=out.device)
        for i, p in enumerate(packed):
            out[i, : len(p)] = p
            mask[i, : len(p)] = 1
        return EncoderOutput(last_hidden_state=out, attention_mask=mask)
