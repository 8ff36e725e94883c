"""The batch job behind the CLI: input sources, worker pool, shard writer, resume state.

`featx.engine.local.run(job, specs, out, options)` runs a job (`featx.engine.jobs.EmbedJob` or
`FeaturesJob`) on this machine. Another engine (e.g. Ray) reuses the jobs, sources, writer and
state modules and only replaces the scheduling loop.
"""

from __future__ import annotations

__all__ = ["bookkeeping", "budget", "codec", "interrupts", "jobs", "local", "lock", "pools", "progress", "ray_data", "ray_engine",
           "inputs", "shards", "state", "stream", "workers", "writer"]
