"""Tokenizers: ``tokenizer.json`` through the `tokenizers` library, ``spiece.model`` through SentencePiece.

`AutoTokenizer.from_pretrained(x)` reads a folder, a ``tokenizer.json`` file or a hub id, like the
reference. Calls take the reference's arguments (``padding``, ``truncation``, ``max_length``,
``return_tensors``, ``add_special_tokens``, ``return_attention_mask``) and resolve them by its rules:
``truncation=True`` or ``padding="max_length"`` without ``max_length`` use ``model_max_length``
(from ``tokenizer_config.json``); ``max_length`` alone turns truncation on; ``padding=True`` pads to
the longest text of the call. Truncation keeps room for the special tokens, as the reference does.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..batch import BatchFeature
from ..errors import ConfigError, InputError, ModelLoadError, require
from ..hub import HubOptions, resolve_file

__all__ = ["AutoTokenizer", "TextTokenizer", "FastTokenizer", "NO_LIMIT", "read_tokenizer_config"]

#: ``model_max_length`` of a tokenizer that declares none (the reference's VERY_LARGE_INTEGER)
NO_LIMIT = int(1e30)
_LARGE = int(1e20)
MAX_TOKENIZER_BYTES = 256 << 20  # tokenizer.json of large vocabularies is tens of MB
_PADDINGS = {True: "longest", False: "do_not_pad", None: "do_not_pad", "longest": "longest",
             "max_length": "max_length", "do_not_pad": "do_not_pad"}
_TRUNCATIONS = {True: True, False: False, None: None, "longest_first": True, "only_first": True,
                "do_not_truncate": False}


def _token_text(value: Any) -> str | None:
    """A special token as tokenizer_config.json writes it: a string or an AddedToken dict."""
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else None


def read_tokenizer_config(source: str | os.PathLike[str], options: HubOptions) -> dict[str, Any]:
    """``tokenizer_config.json`` (empty when the checkpoint has none)."""
    path = resolve_file(source, "tokenizer_config.json", options, required=False)
    if path is None or path.suffix.lower() != ".json" or path.name != "tokenizer_config.json":
        if Path(os.fspath(source)).is_file():  # a tokenizer.json given directly: its config sits beside it
            path = Path(os.fspath(source)).parent / "tokenizer_config.json"
            if not path.is_file():
                return {}
        elif path is None:
            return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot read the tokenizer config {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ModelLoadError(f"the tokenizer config {path} is not a JSON object")
    return data


class TextTokenizer:
    """The shared call of featx's tokenizers; subclasses implement `_encode` and `token_to_id`."""

    model_input_names = ("input_ids", "attention_mask")

    def __init__(self, config: dict[str, Any], *, name_or_path: str = "") -> None:
        self.name_or_path = name_or_path
        self.init_kwargs = dict(config)
        limit = config.get("model_max_length")
        self.model_max_length = int(limit) if isinstance(limit, (int, float)) and limit > 0 else NO_LIMIT
        self.padding_side = config.get("padding_side", "right")
        if self.padding_side not in ("right", "left"):
            raise ConfigError(f"padding_side must be 'right' or 'left', not {self.padding_side!r}")
        self.pad_token = _token_text(config.get("pad_token"))
        self.eos_token = _token_text(config.get("eos_token"))
        self.bos_token = _token_text(config.get("bos_token"))
        self.unk_token = _token_text(config.get("unk_token"))

    # --- subclass hooks -----------------------------------------------------------------------
    def _encode(self, text: str, add_special_tokens: bool, max_length: int | None) -> list[int]:
        """Ids of ``text``; with ``max_length``, the text's tokens cut so that it fits with the
        special tokens (the reference's "longest_first" for one sequence)."""
        raise NotImplementedError

    def token_to_id(self, token: str) -> int | None:
        raise NotImplementedError

    # --- the reference's call -----------------------------------------------------------------
    @property
    def pad_token_id(self) -> int | None:
        return self.token_to_id(self.pad_token) if self.pad_token is not None else None

    @property
    def eos_token_id(self) -> int | None:
        return self.token_to_id(self.eos_token) if self.eos_token is not None else None

    @property
    def bos_token_id(self) -> int | None:
        return self.token_to_id(self.bos_token) if self.bos_token is not None else None

    def encode(self, text: str, add_special_tokens: bool = True, max_length: int | None = None) -> list[int]:
        """Token ids of one text; with ``max_length`` truncated to it, special tokens included."""
        if not isinstance(text, str):
            raise InputError(f"text must be a string, got {type(text).__name__}", source="text")
        return self._encode(text, add_special_tokens, max_length)

    def _strategies(self, padding: Any, truncation: Any, max_length: int | None) -> tuple[str, bool, int | None]:
        """(padding strategy, truncate?, max_length) by the reference's rules."""
        if max_length is not None and padding is False and truncation is None:
            truncation = True
        if padding not in _PADDINGS:
            raise ConfigError(f"padding must be True, False, 'longest', 'max_length' or 'do_not_pad', not {padding!r}")
        if truncation not in _TRUNCATIONS:
            raise ConfigError(f"truncation must be True, False, 'longest_first' or 'do_not_truncate', "
                              f"not {truncation!r}")
        pad, cut = _PADDINGS[padding], bool(_TRUNCATIONS[truncation])
        if max_length is None:
            if pad == "max_length":
                if self.model_max_length > _LARGE:
                    pad = "do_not_pad"
                else:
                    max_length = self.model_max_length
            if cut:
                if self.model_max_length > _LARGE:
                    cut = False
                else:
                    max_length = self.model_max_length
        if max_length is not None and max_length < 1:
            raise ConfigError(f"max_length must be positive, got {max_length}")
        if pad != "do_not_pad" and self.pad_token_id is None:
            raise ConfigError(f"{self.name_or_path or 'this tokenizer'} has no padding token; pass padding=False")
        return pad, cut, max_length

    def __call__(
        self,
        text: str | Sequence[str],
        padding: bool | str = False,
        truncation: bool | str | None = None,
        max_length: int | None = None,
        return_tensors: str | None = None,
        return_attention_mask: bool | None = None,
        add_special_tokens: bool = True,
        **kwargs: Any,
    ) -> BatchFeature:
        """``input_ids`` and ``attention_mask`` of one text (lists of ints) or a batch (lists of lists)."""
        if kwargs:
            raise TypeError(f"unexpected tokenizer arguments: {', '.join(sorted(kwargs))}")
        single = isinstance(text, str)
        texts = [text] if single else list(text)
        if not single and any(not isinstance(t, str) for t in texts):
            raise InputError("text must be a string or a list of strings", source="text")
        pad, cut, max_length = self._strategies(padding, truncation, max_length)
        rows = [self.encode(t, add_special_tokens, max_length if cut else None) for t in texts]
        width = max((len(r) for r in rows), default=0) if pad == "longest" else max_length
        masks = [[1] * len(r) for r in rows]
        if pad != "do_not_pad" and width is not None:
            pad_id = int(self.pad_token_id)  # type: ignore[arg-type]
            for i, row in enumerate(rows):
                gap = max(width - len(row), 0)
                if self.padding_side == "right":
                    rows[i], masks[i] = row + [pad_id] * gap, masks[i] + [0] * gap
                else:
                    rows[i], masks[i] = [pad_id] * gap + row, [0] * gap + masks[i]
        data: dict[str, Any] = {"input_ids": rows[0] if single else rows}
        if return_attention_mask is not False:
            data["attention_mask"] = masks[0] if single else masks
        if return_tensors is not None and len({len(r) for r in rows}) > 1:
            raise InputError("texts of different lengths cannot be stacked; pass padding=True")
        if return_tensors is not None and single:
            data = {k: [v] for k, v in data.items()}  # the reference batches a single text with tensors
        return BatchFeature(data, tensor_type=return_tensors)

    def as_arrays(self, text: str, *, padding: str, max_length: int) -> dict[str, np.ndarray]:
        """One text as int64 ``input_ids``/``attention_mask`` [1, tokens], truncated to ``max_length``."""
        out = self(text, padding=padding, truncation=True, max_length=max_length)
        return {k: np.asarray([out[k]], dtype=np.int64) for k in ("input_ids", "attention_mask")}


class FastTokenizer(TextTokenizer):
    """A ``tokenizer.json`` run by the `tokenizers` library (CLIP's BPE, Gemma's...)."""

    def __init__(self, tokenizer_file: str | os.PathLike[str], config: dict[str, Any], *, name_or_path: str = "") -> None:
        tokenizers = require("tokenizers", "text", "tokenizer.json")
        super().__init__(config, name_or_path=name_or_path)
        path = Path(tokenizer_file)
        if path.stat().st_size > MAX_TOKENIZER_BYTES:
            raise ModelLoadError(f"{path} is larger than {MAX_TOKENIZER_BYTES >> 20} MiB; featx refuses it")
        try:
            self.backend = tokenizers.Tokenizer.from_file(str(path))
        except Exception as exc:  # the Rust side raises plain Exceptions
            raise ModelLoadError(f"cannot read the tokenizer {path}: {exc}") from exc
        # featx truncates and pads itself (per call); settings saved in the file do not apply,
        # as in the reference, which resets them on every call
        self.backend.no_truncation()
        self.backend.no_padding()

    def token_to_id(self, token: str) -> int | None:
        return self.backend.token_to_id(token)

    def _encode(self, text: str, add_special_tokens: bool, max_length: int | None) -> list[int]:
        encoding = self.backend.encode(text, add_special_tokens=False)
        if max_length is not None:
            special = self.backend.num_special_tokens_to_add(False) if add_special_tokens else 0
            encoding.truncate(max(max_length - special, 0))
        return list(self.backend.post_process(encoding, None, add_special_tokens).ids)

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = False) -> str:
        text = str(self.backend.decode(list(ids), skip_special_tokens=skip_special_tokens))
        suffix = getattr(self.backend.model, "end_of_word_suffix", None)
        # CLIP's BPE marks word ends ("</w>"); the byte-level decoder leaves them, the reference
        # turns them into spaces
        return text.replace(suffix, " ").strip() if suffix else text


class AutoTokenizer:
    """The tokenizer a checkpoint ships: ``tokenizer.json`` first, else SentencePiece's ``spiece.model``."""

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike[str], **kwargs: Any) -> TextTokenizer:
        """Load from a folder, a ``tokenizer.json``/``spiece.model`` file or a hub id. Keyword
        arguments: hub options (``revision``, ``cache_dir``, ...) and tokenizer_config.json overrides
        (``model_max_length=...``)."""
        options = HubOptions.pop_from(kwargs)
        source = os.fspath(name_or_path)
        config = {**read_tokenizer_config(source, options), **kwargs}
        given = Path(source).expanduser()
        if given.is_file():
            if given.suffix == ".model":
                return _sentencepiece(given, config, source)
            return FastTokenizer(given, config, name_or_path=source)
        fast = resolve_file(source, "tokenizer.json", options, required=False)
        if fast is not None:
            return FastTokenizer(fast, config, name_or_path=source)
        piece = resolve_file(source, "spiece.model", options, required=False)
        if piece is not None:
            return _sentencepiece(piece, config, source)
        raise ModelLoadError(f"{source} has no tokenizer: neither tokenizer.json nor spiece.model")


def _sentencepiece(path: Path, config: dict[str, Any], source: str) -> TextTokenizer:
    from .spiece import SiglipTokenizer

    return SiglipTokenizer(path, config, name_or_path=source)
