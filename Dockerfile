# The worker's image: python -m worker <command>
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    WORKER_DATA_DIR=/var/lib/worker/faust

WORKDIR /app
COPY pyproject.toml README.md ./
COPY worker/ worker/
RUN pip install . && useradd --system --uid 10001 --home /var/lib/worker worker \
    && mkdir -p /var/lib/worker && chown worker /var/lib/worker
COPY configs/ configs/
COPY seeds/ seeds/
ENV WORKER_CONFIGS_DIR=/app/configs

USER worker
EXPOSE 6066
CMD ["python", "-m", "worker", "worker"]
