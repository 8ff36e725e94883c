"""``featx stream``: embed a live audio stream window by window, printing each as it completes.

Per window: the family's processing of one window (`featx.families.spec.AudioFamily.window_arrays`,
the same call the file path makes for all of a file's windows together), the model, one JSON line
(``window``, ``start``/``end`` in samples, ``start_s``/``end_s``, ``embedding``) or a row of
Parquet shards. A short last window is processed beside a full-length window of zeros, as the file
path processes it beside the file's full windows (a processor pads a batch to its longest piece),
so every window equals the file path's.

Reading is synchronous: the next bytes are read once the previous window is out, and raw PCM
reads stop at the next window's last sample, so the latency of a window (from reading its last
sample to its line being written) is its own preparation and model time, and stays so however
far ahead the writer of the stream is (the pipe holds the rest).

Voice-activity gating (``vad_db``, off by default): a window whose RMS level is below ``vad_db``
dBFS (e.g. -45) is skipped, so silence costs no model time and prints nothing.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from typing import IO, Any

import numpy as np

from ..errors import ConfigError
from .source import SourceSpec, open_blocks
from .windows import LiveWindow, LiveWindows, window_sizes

__all__ = ["StreamOptions", "StreamStats", "level_db", "run_stream"]


@dataclass(frozen=True)
class StreamOptions:
    """``window_s`` None: the model's own window; ``hop_s`` None: equal to the window."""

    window_s: float | None = None
    hop_s: float | None = None
    vad_db: float | None = None
    stats: bool = False
    output: str | None = None
    shard_size: int = 1024
    overwrite: bool = False


@dataclass
class StreamStats:
    """Counts and per-window timings (seconds) of a stream."""

    windows: int = 0
    skipped: int = 0  # below the voice-activity level
    latencies: list[float] = field(default_factory=list)
    model_times: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        lat = np.asarray(self.latencies) * 1000
        model = np.asarray(self.model_times) * 1000
        out: dict[str, Any] = {"windows": self.windows, "skipped_silent": self.skipped}
        if lat.size:
            out.update(latency_ms_p50=round(float(np.median(lat)), 2),
                       latency_ms_p95=round(float(np.percentile(lat, 95)), 2),
                       latency_ms_max=round(float(lat.max()), 2),
                       model_ms_mean=round(float(model.mean()), 2))
        return out


def level_db(samples: np.ndarray) -> float:
    """RMS level in dBFS (full scale = 1.0; silence is -inf)."""
    if not samples.size:
        return float("-inf")
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
    return 20 * np.log10(rms) if rms > 0 else float("-inf")


class _Out:
    """Where window results go: JSON lines, or Parquet shards in a featx output folder."""

    def __init__(self, embedder: Any, opts: StreamOptions, label: str, window_s: float, hop_s: float,
                 stdout: IO[str]) -> None:
        self.stdout, self.label, self.writer, self.lock = stdout, label, None, None
        if opts.output is None:
            return
        from ..engine.jobs import EmbedJob
        from ..engine.lock import OutputLock
        from ..engine.state import next_shard_index, prepare_output
        from ..engine.writer import ShardWriter
        from ..video.preparer import AUDIO_TRACK

        job = EmbedJob(embedder, dtype=str(embedder.torch_dtype).replace("torch.", ""), parts=AUDIO_TRACK,
                       manifest_extra={"stream": {"window_s": window_s, "hop_s": hop_s, "vad_db": opts.vad_db}})
        manifest = {**job.manifest(), "inputs": [{"given": label}], "inputs_total": 1}
        self.lock = OutputLock(opts.output)
        self.lock.__enter__()
        try:
            prepare_output(opts.output, manifest, overwrite=opts.overwrite)
            self.writer = ShardWriter(opts.output, job.schema(), metadata=manifest, shard_size=opts.shard_size,
                                      start_index=next_shard_index(opts.output))
        except BaseException:
            self.lock.__exit__(None, None, None)
            raise

    def write(self, record: dict[str, Any], vector: np.ndarray) -> None:
        if self.writer is not None:
            row = {k: v for k, v in record.items() if k not in ("latency_ms", "model_ms")}
            self.writer.add_rows([{**row, "path": self.label, "embedding": vector}])
            return
        self.stdout.write(json.dumps({**record, "embedding": vector.tolist()}) + "\n")
        self.stdout.flush()

    def close(self) -> None:
        if self.writer is not None:
            try:
                self.writer.close()
            finally:
                self.lock.__exit__(None, None, None)  # type: ignore[union-attr]


def run_stream(embedder: Any, spec: SourceSpec, opts: StreamOptions | None = None, *,
               stdout: IO[str] | None = None) -> StreamStats:
    """Embed the stream ``spec`` with an audio `featx.embedding.Embedder`, window by window (see
    the module docstring); returns the `StreamStats`. A KeyboardInterrupt ends the stream
    with the windows written so far kept (shards are flushed)."""
    opts = opts or StreamOptions()
    if embedder.modality != "audio":
        raise ConfigError(f"featx stream needs an audio model; {embedder.model_id} is an {embedder.modality} model")
    if embedder.pool == "none":
        raise ConfigError("featx stream writes one vector per window; use --pool cls|mean|pooler")
    processor, family = embedder.processor, embedder.family
    rate = int(processor.sampling_rate)
    window_s = float(opts.window_s if opts.window_s is not None else family.window(processor))
    hop_s = float(opts.hop_s if opts.hop_s is not None else window_s)
    size, hop = window_sizes(window_s, hop_s, rate)
    windows = LiveWindows(size, hop)
    stats = StreamStats()
    out = _Out(embedder, opts, spec.path, window_s, hop_s, stdout or sys.stdout)
    blocks = open_blocks(spec, rate, want=windows.needed)
    try:
        for block in blocks:
            for w in windows.push(block.samples, block.read_at):
                _emit(embedder, family, w, size, rate, opts, stats, out)
        for w in windows.finish(time.perf_counter()):
            _emit(embedder, family, w, size, rate, opts, stats, out)
    finally:
        blocks.close()
        out.close()
    return stats


def _emit(embedder: Any, family: Any, w: LiveWindow, size: int, rate: int, opts: StreamOptions,
          stats: StreamStats, out: _Out) -> None:
    if opts.vad_db is not None and level_db(w.samples) < opts.vad_db:
        stats.skipped += 1
        return
    t0 = time.perf_counter()
    if w.is_last and w.index > 0 and len(w.samples) < size:
        # as the file path: processed in one batch with full windows, so padded to their length
        both = family.window_arrays(embedder.processor, [np.zeros(size, np.float32), w.samples])
        arrays = {k: v[1:] for k, v in both.items()}
    else:
        arrays = family.window_arrays(embedder.processor, [w.samples])
    [vectors] = embedder.embed_windows([arrays], batch_size=1)
    model_s = time.perf_counter() - t0
    record: dict[str, Any] = {"window": w.index, "start": w.start, "end": w.end,
                              "start_s": w.start / rate, "end_s": w.end / rate}
    latency = time.perf_counter() - w.read_at
    if opts.stats:
        record.update(latency_ms=round(latency * 1000, 3), model_ms=round(model_s * 1000, 3))
    out.write(record, vectors[0])
    stats.windows += 1
    stats.latencies.append(time.perf_counter() - w.read_at)
    stats.model_times.append(model_s)
