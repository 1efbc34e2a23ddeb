"""/metrics: the bot's counters in Prometheus' text format, through prometheus_client (the ``metrics`` extra).

``Metrics`` is the engine's, the scheduler's and the adapters' ``Telemetry`` (``bot/core/telemetry.py``); counters
and the latency histogram are updated as messages are handled, gauges (queue depths, connected platforms, database,
scheduler heartbeat) are read just before each scrape. One registry per process, no global state: each bot process
serves its own /metrics and Prometheus adds them up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from bot.core.messages import IncomingMessage, Outcome

if TYPE_CHECKING:
    from bot.bootstrap import Runtime
    from bot.ops.health import Report

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]

#: seconds from a message reaching the engine to its replies being ready (the FAQ path takes milliseconds; a slow
#: database shows in the upper buckets, the storage budget caps it near 4 s)
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """Prometheus counters for one bot process (implements ``bot.core.telemetry.Telemetry``)."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.messages = Counter(
            "runbot_messages", "Messages and button presses handled, by what the bot did (outcome: answer, "
            "did-you-mean, fallback, escalation, safety-check, triage, command, throttled, ...)",
            ["platform", "outcome"], registry=r)
        self.overheard = Counter(
            "runbot_overheard", "Messages read in listen channels (not addressed to the bot), by outcome",
            ["platform", "outcome"], registry=r)
        self.unanswered_questions = Counter(
            "runbot_unanswered", "Questions the FAQ had no answer for (recorded for the moderators)", ["platform"],
            registry=r)
        self.escalations = Counter(
            "runbot_escalations", "Red-flag escalations sent (listen channels included), by level",
            ["platform", "level"], registry=r)
        self.send_errors = Counter(
            "runbot_send_errors", "Replies and check-ins that could not be delivered (permanent: blocked, DMs closed)",
            ["platform", "permanent"], registry=r)
        self.send_retries = Counter(
            "runbot_send_retries", "Sends tried again (reason: flood = the platform's retry-after, network, "
            "followup = a check-in rescheduled after a failure)", ["platform", "reason"], registry=r)
        self.latency = Histogram(
            "runbot_handle_seconds", "Time from a message reaching the engine to its replies being ready",
            ["platform"], buckets=LATENCY_BUCKETS, registry=r)
        self.queue_depth = Gauge(
            "runbot_queue_depth", "Work waiting (outbox: replies not yet sent; handling: updates received and not yet "
            "handled here; inbox: updates stored and not yet answered)", ["platform", "queue"], registry=r)
        self.connected = Gauge("runbot_platform_connected", "1 when the platform is connected", ["platform"],
                               registry=r)
        self.database_up = Gauge("runbot_database_up", "1 when the database answered the last ping", registry=r)
        self.heartbeat_age = Gauge(
            "runbot_scheduler_heartbeat_age_seconds", "Seconds since the follow-up scheduler last came round",
            registry=r)
        self.healthy = Gauge("runbot_healthy", "1 when /healthz says ok", registry=r)

    # ----------------------------------------------------------------- Telemetry
    def handled(self, msg: IncomingMessage, outcome: Outcome, seconds: float) -> None:
        platform = msg.platform
        (self.overheard if msg.listen_only else self.messages).labels(platform, outcome.kind).inc()
        if outcome.escalation is not None:
            self.escalations.labels(platform, outcome.escalation.level).inc()
        if not msg.listen_only:
            self.latency.labels(platform).observe(seconds)

    def unanswered(self, platform: str) -> None:
        self.unanswered_questions.labels(platform).inc()

    def send_failed(self, platform: str, *, permanent: bool) -> None:
        self.send_errors.labels(platform, "true" if permanent else "false").inc()

    def send_retried(self, platform: str, reason: str) -> None:
        self.send_retries.labels(platform, reason).inc()

    # ----------------------------------------------------------------- scrape
    async def refresh(self, runtime: Runtime, report: Report) -> None:
        """Set the gauges from the health report and the adapters' queues."""
        body = report.body
        self.healthy.set(1 if report.healthy else 0)
        self.database_up.set(1 if body["database"]["ok"] else 0)
        age = body["scheduler"].get("heartbeat_age_seconds")
        if age is not None:
            self.heartbeat_age.set(age)
        for platform, state in body["platforms"].items():
            self.connected.labels(platform).set(1 if state["connected"] else 0)
        for platform, adapter in runtime.adapters.items():
            depths = getattr(adapter, "queue_depths", None)
            if depths is None:
                continue
            found: dict[str, Any] = await depths()
            for queue, depth in found.items():
                self.queue_depth.labels(platform, queue).set(depth)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
