"""The service's Prometheus metrics, in a registry of its own (one per application)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 16384, 65536)


class ServiceMetrics:
    """Requests and latency per route and model, rows scored, flags and alerts by severity, micro-batch sizes,
    the response engine's outbox depth."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "anomalia_requests", "HTTP requests answered", ["route", "model", "status"], registry=r
        )
        self.latency = Histogram(
            "anomalia_request_seconds", "Time to answer a request", ["route", "model"], buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.rows = Counter("anomalia_rows_scored", "Rows (records, steps, images) scored", ["model"], registry=r)
        self.flags = Counter("anomalia_flags", "Rows flagged as anomalous", ["model", "severity"], registry=r)
        self.alerts = Counter("anomalia_alerts", "Alerts raised by the response engine", ["severity"], registry=r)
        self.batch = Histogram(
            "anomalia_microbatch_rows", "Rows per micro-batch forward pass", ["model"], buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.outbox = Gauge("anomalia_outbox_depth", "Notifications waiting in the response outbox", registry=r)
        self.reloads = Counter("anomalia_model_reloads", "Model reloads and rollbacks", ["model", "kind"], registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)
