"""Running runbot in production: the operations endpoint (/healthz, /metrics) and what it reports."""
