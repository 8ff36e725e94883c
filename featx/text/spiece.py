"""SigLIP's tokenizer: a SentencePiece ``spiece.model`` with big_vision's text canonicalization.

Mirrors the reference's ``SiglipTokenizer``: the text is lower-cased (``do_lower_case``), ASCII
punctuation removed and whitespace collapsed, special tokens written in the text are kept as
such, and ``</s>`` ends every sequence (unless the text already ends with it). Pads with ``</s>``;
``model_max_length`` defaults to 64.
"""

from __future__ import annotations

import os
import re
import string
from pathlib import Path
from typing import Any

from ..errors import ModelLoadError, require
from .tokenization import TextTokenizer, _token_text

__all__ = ["SiglipTokenizer", "SPIECE_UNDERLINE"]

SPIECE_UNDERLINE = "\u2581"
MAX_SPIECE_BYTES = 64 << 20
_PUNCTUATION = str.maketrans("", "", string.punctuation)
_SPACES = re.compile(r"\s+")
_DEFAULTS = {"eos_token": "</s>", "unk_token": "<unk>", "pad_token": "</s>", "model_max_length": 64,
             "do_lower_case": True}


class SiglipTokenizer(TextTokenizer):
    """``spiece.model`` + ``tokenizer_config.json`` (``legacy``, ``do_lower_case``, special tokens)."""

    def __init__(self, model_file: str | os.PathLike[str], config: dict[str, Any], *, name_or_path: str = "") -> None:
        spm = require("sentencepiece", "text", "SentencePiece tokenizers (spiece.model)")
        config = {**_DEFAULTS, **config}
        super().__init__(config, name_or_path=name_or_path)
        path = Path(model_file)
        if path.stat().st_size > MAX_SPIECE_BYTES:
            raise ModelLoadError(f"{path} is larger than {MAX_SPIECE_BYTES >> 20} MiB; featx refuses it")
        proto = path.read_bytes()
        if not config.get("legacy", True):
            proto = _without_dummy_prefix(proto)
        self.sp = spm.SentencePieceProcessor()
        try:
            self.sp.LoadFromSerializedProto(proto)
        except (RuntimeError, OSError) as exc:
            raise ModelLoadError(f"cannot read the SentencePiece model {path}: {exc}") from exc
        self.do_lower_case = bool(config.get("do_lower_case", True))
        self.added: dict[str, int] = {}
        for index, entry in (config.get("added_tokens_decoder") or {}).items():
            text = _token_text(entry)
            if text is not None:
                self.added[text] = int(index)
        extra = list(config.get("additional_special_tokens") or []) + list(config.get("extra_special_tokens") or [])
        specials = [self.eos_token, self.unk_token, self.pad_token, *(_token_text(t) for t in extra)]
        self.special = {t for t in specials if t} | set(self.added)
        # longest first, so that a special token containing another one wins (the reference's trie)
        ordered = sorted(self.special, key=len, reverse=True)
        self._split = re.compile("(" + "|".join(re.escape(t) for t in ordered) + ")") if ordered else None
        self._unk_length = len(self.sp.encode(str(self.unk_token)))

    def token_to_id(self, token: str) -> int | None:
        if token in self.added:
            return self.added[token]
        return int(self.sp.piece_to_id(token))

    def canonicalize(self, text: str) -> str:
        """big_vision's canonical text: lower case, ASCII punctuation removed, whitespace collapsed."""
        if self.do_lower_case:
            text = text.lower()
        return _SPACES.sub(" ", text.translate(_PUNCTUATION)).strip()

    def _pieces(self, chunk: str) -> list[str]:
        # The reference encodes "<unk>" + text and drops the unk's pieces, so that SentencePiece's
        # dummy prefix never lands on the text itself.
        pieces = self.sp.encode(str(self.unk_token) + self.canonicalize(chunk), out_type=str)
        return pieces[self._unk_length:] if len(pieces) >= self._unk_length else pieces

    def tokenize(self, text: str) -> list[str]:
        """The pieces of ``text`` (special tokens written in it kept whole)."""
        text = SPIECE_UNDERLINE + text.replace(SPIECE_UNDERLINE, " ")
        chunks = self._split.split(text) if self._split is not None else [text]
        tokens: list[str] = []
        for chunk in chunks:
            if not chunk:
                continue
            if chunk in self.special:
                tokens.append(chunk)
            else:
                tokens.extend(self._pieces(chunk))
        if len(tokens) > 1 and tokens[0] == SPIECE_UNDERLINE and tokens[1] in self.special:
            tokens = tokens[1:]
        return tokens

    def _encode(self, text: str, add_special_tokens: bool, max_length: int | None) -> list[int]:
        ids = [int(self.token_to_id(t)) for t in self.tokenize(text)]  # type: ignore[arg-type]
        if max_length is not None:
            ids = ids[: max(max_length - (1 if add_special_tokens else 0), 0)]
        eos = self.eos_token_id
        if add_special_tokens and eos is not None and not (ids and ids[-1] == eos):
            ids.append(eos)
        return ids

    def decode(self, ids: list[int], skip_special_tokens: bool = False) -> str:
        special_ids = {self.token_to_id(t) for t in self.special}
        kept = [i for i in ids if not (skip_special_tokens and i in special_ids)]
        return str(self.sp.decode(kept))


def _without_dummy_prefix(proto: bytes) -> bytes:
    """The model with ``add_dummy_prefix`` off (``legacy: false`` checkpoints), as the reference loads it."""
    require("google.protobuf", "text", "non-legacy SentencePiece tokenizers")
    from sentencepiece import sentencepiece_model_pb2

    model = sentencepiece_model_pb2.ModelProto.FromString(proto)
    if model.normalizer_spec.add_dummy_prefix:
        model.normalizer_spec.add_dummy_prefix = False
        return bytes(model.SerializeToString())
    return proto
