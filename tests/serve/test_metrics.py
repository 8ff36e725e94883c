"""The Prometheus text of the metrics."""

from __future__ import annotations

from featx.serve.metrics import Metrics


def test_metrics_render_prometheus_text():
    m = Metrics()
    m.requests.inc("/v1/search", "POST", "200")
    m.requests.inc("/v1/search", "POST", "200")
    m.batch_size.observe(3)
    m.batch_size.observe(300)
    m.gauge("featx_x", "a gauge", lambda: 2.5)
    m.gauge("featx_broken", "never shown", lambda: 1 / 0)
    text = m.render()
    assert 'featx_requests_total{route="/v1/search",method="POST",status="200"} 2' in text
    assert 'featx_batch_size_bucket{le="4"} 1' in text and 'featx_batch_size_bucket{le="+Inf"} 2' in text
    assert "featx_batch_size_sum 303" in text and "featx_batch_size_count 2" in text
    assert "featx_x 2.5" in text and "featx_broken" not in text
