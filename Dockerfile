# runbot in a container: python:3.12-slim, runs as an unprivileged user, installed from pyproject.toml.
#   docker build -t runbot .        or        docker compose up -d     (compose.yaml; README "Running for many clubs")
# Settings: the image's /app/config.yaml is deploy/config.docker.yaml (SQLite in /data, /healthz on port 9090);
# mount your own over it. Tokens only from the environment: DISCORD_TOKEN, TELEGRAM_TOKEN, TELEGRAM_WEBHOOK_SECRET.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1

RUN useradd --system --user-group --uid 10001 --home-dir /app --no-create-home --shell /usr/sbin/nologin runbot

WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
# installed in place (-e): runbot finds docs/ and knowledge/ next to its code; everything stays root's, read-only
RUN pip install -e ".[metrics,postgres]"
COPY docs ./docs
COPY knowledge ./knowledge
COPY deploy/config.docker.yaml ./config.yaml
# the two places runbot writes: its database, and the knowledge folder (moderators' edits from the chat)
RUN mkdir /data && chown runbot:runbot /data && chown -R runbot:runbot /app/knowledge

USER runbot
VOLUME ["/data"]
# 8443: Telegram webhooks (telegram.mode: webhook); 9090: /healthz and /metrics (ops.listen)
EXPOSE 8443 9090
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9090/healthz', timeout=4)"]
# runbot stops in order on SIGTERM (what was fetched is answered or left in the inbox for the next start)
STOPSIGNAL SIGTERM
ENTRYPOINT ["runbot"]
CMD ["run"]
