"""``ops.listen`` read as an address to listen on."""

from __future__ import annotations


def parse_listen(text: str) -> tuple[str, int]:
    """ "9090", ":9090", "127.0.0.1:9090", "[::1]:9090" -> (host, port); 127.0.0.1 when no host is given (the
    figures are nobody else's business: every interface only when asked, "0.0.0.0:9090"). Raises ValueError."""
    value = str(text).strip()
    host, sep, port = value.rpartition(":")
    if not sep:
        host, port = "", value
    host = host.strip("[]") or "127.0.0.1"
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"expected host:port with a port from 1 to 65535, got {text!r}")
    if any(c.isspace() for c in host) or "/" in host:
        raise ValueError(f"{host!r} is not a host name or address")
    return host, int(port)
