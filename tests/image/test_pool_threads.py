"""Resizes run on one thread inside featx's pools, decided by a marker the pools set, not by names."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from featx.engine.pools import ThreadPool
from featx.image import resample
from featx.image.threads import call_pool


class _Probe:
    def prepare(self, src, *, budget=None):
        return {"in_worker": resample._in_worker()}


def test_pool_threads_are_marked_and_names_do_not_matter() -> None:
    assert not resample._in_worker()
    seen: list[bool] = []
    named = threading.Thread(target=lambda: seen.append(resample._in_worker()), name="featx-looks-like-a-pool")
    named.start()
    named.join()
    assert seen == [False]
    pool = ThreadPool(_Probe(), 2)
    try:
        assert pool.submit("x").result(timeout=10)["in_worker"] is True
    finally:
        pool.shutdown()
    with ThreadPoolExecutor(1, initializer=resample.mark_pool_thread) as ex:
        assert ex.submit(resample._in_worker).result() is True
    with call_pool(None, 4, threads=2) as workers:
        assert workers.parallel
        assert workers.executor.submit(resample._in_worker).result() is True
