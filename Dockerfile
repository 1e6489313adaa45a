# Stir's worker image: the Python package with dbt, Prefect and the clients. Production points
# the STIR_* settings at real ClickHouse, S3, PostgreSQL and Prefect; nothing secret is baked in.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    PREFECT_SERVER_ANALYTICS_ENABLED=false DO_NOT_TRACK=1 STIR_HOME=/opt/stir

RUN apt-get update \
 && apt-get install -y --no-install-recommends openssh-client \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid 10001 stir

WORKDIR /opt/stir
COPY pyproject.toml README.md ./
COPY stir ./stir
COPY flows ./flows
COPY tasks ./tasks
COPY deployments ./deployments
RUN pip install .
COPY transform ./transform
COPY prefect.yaml ./

USER stir
ENTRYPOINT ["stir"]
CMD ["--help"]
