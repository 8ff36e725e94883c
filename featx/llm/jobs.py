"""``featx embed --tokens``: per input its ``[n_tokens, dim]`` token array, ready for an LLM.

`TokensJob` is an `featx.engine.jobs.EmbedJob` over a `featx.llm.TokenEmbedder`: one row per input
with ``embedding`` (the tokens, a list of ``dim``-vectors in float32 or float16) and ``shape``
([n_tokens, dim]). With ``--format npy`` each shard's tokens are stacked into one
``[rows, n_tokens, dim]`` array, which needs a model whose token count is fixed (LLaVA 1.5, not
LLaVA-NeXT). Resumable like every job (the engine resumes per input).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..engine.jobs import EmbedJob
from ..engine.workers import Prepared
from ..errors import ConfigError, InputError

__all__ = ["TOKEN_DTYPES", "TokensJob"]

TOKEN_DTYPES = ("float32", "float16")


class TokensJob(EmbedJob):
    """Token arrays of one model, one row per input (see the module docstring)."""

    kind = "tokens"

    def __init__(self, embedder: Any, *, tokens_dtype: str = "float32", fmt: str = "parquet", **kwargs: Any) -> None:
        if tokens_dtype not in TOKEN_DTYPES:
            raise ConfigError(f"--tokens takes {' or '.join(TOKEN_DTYPES)}, got {tokens_dtype!r}")
        if getattr(embedder, "pool", None) != "none":
            raise ConfigError("--tokens needs a token embedder (featx.llm.TokenEmbedder)")
        if kwargs.get("windows") or kwargs.get("parts") is not None:
            raise ConfigError("--tokens writes one token array per input; it does not combine with --windows or --tiles")
        if fmt == "npy" and getattr(embedder, "num_tokens", None) is None:
            raise ConfigError(f"--format npy stacks each shard's token arrays, but {embedder.model_id} gives a "
                              "different number of tokens per input; use --format parquet")
        kwargs.pop("npy_dtype", None)
        super().__init__(embedder, fmt="parquet", npy_dtype=tokens_dtype, **kwargs)
        self.fmt = fmt
        self.tokens_dtype = tokens_dtype

    def manifest(self) -> dict[str, Any]:
        out = super().manifest()
        out.update(kind=self.kind, tokens_dtype=self.tokens_dtype, num_tokens=getattr(self.embedder, "num_tokens", None),
                   npy_dtype=self.tokens_dtype if self.fmt == "npy" else None)
        return out

    def schema(self) -> Any:
        import pyarrow as pa

        value = pa.float16() if self.tokens_dtype == "float16" else pa.float32()
        return pa.schema([pa.field("path", pa.string()),
                          pa.field("embedding", pa.list_(pa.list_(value, int(self.embedder.dim)))),
                          pa.field("shape", pa.list_(pa.int32())), pa.field("error", pa.string())])

    def npy_columns(self) -> dict[str, np.dtype]:
        return {"embedding": np.dtype(self.tokens_dtype)} if self.fmt == "npy" else {}

    def _ok_rows(self, p: Prepared, vec: np.ndarray) -> list[dict[str, Any]]:
        if not np.isfinite(vec).all():
            return [self._error_row(p, InputError("the model produced non-finite values", source=p.input.key))]
        tokens = np.asarray(vec, dtype=self.tokens_dtype).reshape(-1, int(self.embedder.dim))
        return [{"path": p.input.key, "embedding": tokens, "shape": list(tokens.shape)}]
