# Bildungslotse: the bot with the embedded Kassel catalogue and interface strings.
#   docker build -t bildungslotse .
#   docker run --rm -it -e TELEGRAM_BOT_TOKEN=... bildungslotse
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
RUN useradd --create-home --uid 10001 lotse
WORKDIR /app

COPY pyproject.toml README.md ./
COPY bot ./bot
COPY offers ./offers
COPY locales ./locales
# A wheel install: offers/ and locales/ travel inside the package (see pyproject.toml).
RUN pip install '.[postgres,charts]' && bildungslotse validate

USER lotse
WORKDIR /home/lotse
VOLUME ["/home/lotse/data"]
ENTRYPOINT ["bildungslotse"]
