"""What a batch job computes, independent of how it is scheduled.

A job gives the engine: ``preparer`` (an object with a thread/process-safe ``prepare(src)``, which
may take a ``budget=`` `featx.engine.budget.PixelBudget` for the decoded pixels), the
output ``manifest`` (recorded in ``OUT/_featx.json`` and each shard's schema metadata; its identity
fields must match to resume), the Arrow ``schema``, the ``npy`` columns, and ``rows(batch)`` turning
a batch of prepared inputs into output rows. The local engine (`featx.engine.local`) and a
distributed one (e.g. Ray) share jobs, so both write the same layout.
"""

from __future__ import annotations

import os
from typing import Any, Protocol

import numpy as np

from ..errors import ConfigError, FeatxError, InputError, error_text
from ..hub import recorded_source
from .parts import AUDIO_WINDOWS, ROW_PREFIX, Parts
from .workers import Prepared

__all__ = ["Job", "EmbedJob", "FeaturesJob", "error_text", "embedder_from_manifest", "DAMAGE_KEY"]

#: prepared-array key of an input kept in part (a damaged video): the error text, a 0-d string array
DAMAGE_KEY = ROW_PREFIX + "error"


class Job(Protocol):
    """What every engine needs of a job (see the module docstring)."""

    kind: str
    preparer: Any

    def manifest(self) -> dict[str, Any]: ...

    def schema(self) -> Any: ...

    def npy_columns(self) -> dict[str, np.dtype]: ...

    def rows(self, batch: list[Prepared]) -> list[list[dict[str, Any]]]: ...


def _version() -> str:
    from .. import __version__

    return __version__


class EmbedJob:
    """Embeddings of one model: one row per input, or one per part of it (``parts``: audio windows,
    video frames, image tiles; see `featx.engine.parts`). ``windows=True`` is ``parts=AUDIO_WINDOWS``."""

    kind = "embeddings"

    def __init__(self, embedder: Any, *, dtype: str = "auto", processor_options: dict[str, Any] | None = None,
                 batch_size: int = 16, windows: bool = False, fmt: str = "parquet",
                 npy_dtype: str = "float32", hub_options: dict[str, Any] | None = None,
                 allow_private_urls: bool | None = None, parts: Parts | None = None, preparer: Any = None,
                 manifest_extra: dict[str, Any] | None = None) -> None:
        """``hub_options`` (e.g. ``cache_dir``) are for engines that load the model again elsewhere.
        ``preparer``: what prepares the inputs instead of the embedder (e.g. a video's frames,
        `featx.video.preparer`); ``manifest_extra``: more identity settings for the manifest.
        ``allow_private_urls``: whether URL inputs may point at loopback/private/link-local/
        multicast/reserved addresses (None: the embedder's setting, by default yes)."""
        if windows and embedder.modality != "audio":
            raise ConfigError("--windows applies to audio models only")
        if windows:
            parts = AUDIO_WINDOWS
        if parts is not None and embedder.pool == "none":
            raise ConfigError(f"one row per {parts.name[:-1]} needs a pooled embedding; use --pool cls|mean|pooler")
        if fmt == "npy" and embedder.pool == "none":
            raise ConfigError("--format npy needs one vector per row; token embeddings (--pool none) "
                              "have no fixed shape: use --format parquet")
        if allow_private_urls is not None and allow_private_urls != embedder.allow_private_urls:
            embedder = embedder.with_options(allow_private_urls=allow_private_urls)
        self.embedder = embedder
        self.preparer = preparer if preparer is not None else embedder
        self.manifest_extra = dict(manifest_extra or {})
        self.dtype = str(dtype)
        self.processor_options = dict(processor_options or {})
        self.batch_size = batch_size
        self.parts = parts
        self.windows = parts is AUDIO_WINDOWS
        self.fmt = fmt
        self.npy_dtype = npy_dtype
        self.hub_options = dict(hub_options or {})
        self._model_ok = 0  # inputs the model has embedded so far

    def manifest(self) -> dict[str, Any]:
        e = self.embedder
        processor = getattr(e, "processor", None)
        return {
            "kind": self.kind,
            "featx_version": _version(),
            "model": recorded_source(e.model_id),  # a local folder as an absolute path
            "revision": e.revision,
            "pool": e.pool,
            "normalize": e.normalize,
            "dtype": self.dtype,
            "torch_dtype": str(e.torch_dtype).replace("torch.", ""),
            "device": str(e.device),
            "modality": e.modality,
            "dim": int(e.dim),
            "processor": type(processor).__name__ if processor is not None else None,
            "processor_options": self.processor_options,
            "sampling_rate": int(processor.sampling_rate) if e.modality == "audio" else None,
            "windows": self.windows,
            "format": self.fmt,
            "npy_dtype": self.npy_dtype if self.fmt == "npy" else None,
            # only where not torch, so that older outputs still resume
            **({"backend": e.backend} if getattr(e, "backend", "torch") != "torch" else {}),
            # only for parts other than audio windows, so that older outputs still resume
            **({"parts": self.parts.name} if self.parts is not None and not self.windows else {}),
            **self.manifest_extra,
        }

    def schema(self) -> Any:
        import pyarrow as pa

        vector = pa.list_(pa.float32(), int(self.embedder.dim))
        embedding = pa.list_(vector) if self.embedder.pool == "none" else vector
        fields = [pa.field("path", pa.string()), pa.field("embedding", embedding),
                  pa.field("error", pa.string())]
        if self.parts is not None:
            fields += self.parts.arrow_fields()
        return pa.schema(fields)

    def npy_columns(self) -> dict[str, np.dtype]:
        return {"embedding": np.dtype(self.npy_dtype)} if self.fmt == "npy" else {}

    def rows(self, batch: list[Prepared]) -> list[list[dict[str, Any]]]:
        """Rows per input of ``batch``, in order; a failing input gets one error row."""
        out: list[list[dict[str, Any]] | None] = [None] * len(batch)
        ok = [i for i, p in enumerate(batch) if p.error is None]
        for i, p in enumerate(batch):
            if p.error is not None:
                out[i] = [self._error_row(p, p.error)]
        if ok:
            outcomes = self.embedder.embed_outcomes([batch[i].arrays for i in ok], self.batch_size,
                                                   self.parts is not None)
            for i, outcome in zip(ok, outcomes):
                failed = isinstance(outcome, BaseException)
                out[i] = [self._error_row(batch[i], outcome)] if failed else self._ok_rows(batch[i], outcome)
            if self._model_ok == 0 and len(ok) > 1:
                self._check_model_works([out[i][0] for i in ok])
            self._model_ok += sum(not isinstance(o, BaseException) for o in outcomes)
        return [rows for rows in out if rows is not None]

    def _check_model_works(self, rows: list[dict[str, Any]]) -> None:
        """Stop the job when the model has failed on every input so far (several of them): a
        misconfiguration (e.g. a processor override giving sizes the model cannot take), not bad
        files; writing an error row for each of millions of inputs would help no one."""
        if self._model_ok == 0 and len(rows) > 1 and all(r.get("error") for r in rows):
            raise FeatxError(f"the model fails on every input ({len(rows)} tried); first error: "
                             f"{rows[0]['error']}")

    def _ok_rows(self, p: Prepared, vec: np.ndarray) -> list[dict[str, Any]]:
        if not np.isfinite(vec).all():
            return [self._error_row(p, InputError("the model produced non-finite values", source=p.input.key))]
        if self.parts is None:
            rows = [{"path": p.input.key, "embedding": vec}]
        else:
            rows = [{"path": p.input.key, "embedding": vec[i], **self.parts.columns(p.arrays, i)}
                    for i in range(vec.shape[0])]
        damage = p.arrays.get(DAMAGE_KEY) if isinstance(p.arrays, dict) else None
        if damage is not None:  # kept in part (a damaged video): its rows flagged, then its error row
            text = str(np.asarray(damage))
            rows = [{**r, "error": text} for r in rows] + [{"path": p.input.key, "embedding": None, "error": text}]
        return rows

    @staticmethod
    def _error_row(p: Prepared, exc: BaseException) -> dict[str, Any]:
        return {"path": p.input.key, "embedding": None, "error": error_text(exc)}


def embedder_from_manifest(manifest: dict[str, Any], *, device: str | None = None,
                           cache_dir: str | None = None) -> Any:
    """The `Embedder` that reproduces the embeddings of an output folder (for search queries).
    ``cache_dir``: the Hugging Face cache holding a hub model (default: huggingface_hub's)."""
    from ..embedding import Embedder

    if manifest.get("kind") != "embeddings":
        raise ConfigError("this output holds features, not embeddings")
    hub = {"cache_dir": cache_dir} if cache_dir else {}
    return Embedder(manifest["model"], pool=manifest["pool"], normalize=manifest["normalize"],
                    dtype=manifest.get("dtype", "auto"), device=device, revision=manifest.get("revision"),
                    backend=manifest.get("backend", "torch"), **hub, **manifest.get("processor_options", {}))


class _FeaturePreparer:
    """Decode + preprocess one input with a processor alone (picklable for worker processes), on
    its modality's family spec (`featx.families.spec.FamilySpec.prepare_whole`)."""

    def __init__(self, processor: Any, allow_private_urls: bool = True) -> None:
        from ..families import modality_family

        self.processor = processor
        self.modality = "audio" if getattr(type(processor), "type_key", "") == "feature_extractor_type" else "image"
        self.family = modality_family(self.modality)
        self.allow_private_urls = allow_private_urls

    def prepare(self, src: Any, *, budget: Any = None) -> dict[str, np.ndarray]:
        """``budget``: a shared `featx.engine.budget.PixelBudget`, held from decode to the end of
        preprocessing."""
        out = self.family.prepare_whole(self.processor, src, budget=budget, allow_private_urls=self.allow_private_urls)
        arrays = {}
        for key, array in out.items():
            if array.dtype == object or not array.size:
                continue
            arrays[key] = array[0] if array.ndim and array.shape[0] == 1 else array
        return arrays


class FeaturesJob:
    """The processor's output alone (pixel values, log-mel, waveforms) per input, for training."""

    kind = "features"

    def __init__(self, processor_id: str | os.PathLike[str], *, processor_options: dict[str, Any] | None = None,
                 fmt: str = "parquet", npy_dtype: str = "float32", revision: str | None = None,
                 cache_dir: str | os.PathLike[str] | None = None, allow_private_urls: bool = True) -> None:
        """``allow_private_urls=False`` refuses URL inputs to loopback, private, link-local,
        multicast and reserved addresses."""
        from ..pipelines import load_processor

        self.processor_id = os.fspath(processor_id)
        self.processor_options = dict(processor_options or {})
        self.revision = revision
        hub = {k: v for k, v in (("revision", revision), ("cache_dir", cache_dir)) if v is not None}
        processor = load_processor(processor_id, **hub, **self.processor_options)
        self.preparer = _FeaturePreparer(processor, allow_private_urls=allow_private_urls)
        self.fmt = fmt
        self.npy_dtype = npy_dtype
        self.keys = self._probe()

    def _probe(self) -> dict[str, tuple[np.dtype, int]]:
        """Output keys, dtypes and ranks, from preprocessing a blank input."""
        if self.preparer.modality == "image":
            from PIL import Image

            sample: Any = Image.new("RGB", (64, 48))
            out = self.preparer.processor(sample, return_tensors="np")
        else:
            rate = int(self.preparer.processor.sampling_rate)
            out = self.preparer.processor(np.zeros(rate, np.float32), sampling_rate=rate, return_tensors="np")
        keys = {}
        for key, value in out.items():
            array = np.asarray(value)
            if array.dtype != object and array.size:
                keys[key] = (array.dtype, array.ndim - 1)
        if not keys:
            raise ConfigError(f"{self.processor_id}: the processor returns no arrays to write")
        return keys

    def manifest(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "featx_version": _version(),
            "processor": recorded_source(self.processor_id),  # a local path as an absolute path
            "revision": self.revision,
            "processor_class": type(self.preparer.processor).__name__,
            "processor_options": self.processor_options,
            "processor_config": self.preparer.processor.to_dict(),
            "modality": self.preparer.modality,
            "columns": {k: str(d) for k, (d, _) in self.keys.items()},
            "format": self.fmt,
            "npy_dtype": self.npy_dtype if self.fmt == "npy" else None,
        }

    def schema(self) -> Any:
        import pyarrow as pa

        fields = [pa.field("path", pa.string())]
        for key, (dtype, _) in self.keys.items():
            fields.append(pa.field(key, pa.list_(pa.from_numpy_dtype(dtype))))
            fields.append(pa.field(f"{key}_shape", pa.list_(pa.int32())))
        fields.append(pa.field("error", pa.string()))
        return pa.schema(fields)

    def npy_columns(self) -> dict[str, np.dtype]:
        if self.fmt != "npy":
            return {}
        return {k: (np.dtype(self.npy_dtype) if np.issubdtype(d, np.floating) else d) for k, (d, _) in self.keys.items()}

    def rows(self, batch: list[Prepared]) -> list[list[dict[str, Any]]]:
        rows = []
        for p in batch:
            if p.error is not None:
                rows.append([{"path": p.input.key, "error": error_text(p.error)}])
                continue
            row: dict[str, Any] = {"path": p.input.key}
            for key in self.keys:
                value = p.arrays.get(key)
                row[key] = value
                row[f"{key}_shape"] = None if value is None else list(value.shape)
            rows.append([row])
        return rows
