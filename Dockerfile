# Stir's worker image: the Stir wheel (package, dbt project, prefect.yaml) on the pinned runtime
# dependencies, without the embedded stack. Production points the STIR_* settings at real
# ClickHouse, S3, PostgreSQL and Prefect; secrets come from Prefect blocks or the environment,
# never from the image. See docs/deploy.md.
#
# These machines cannot build images: tests/test_installed_wheel.py takes the same steps (the
# same files, build and install commands, working directory and environment) in a fresh virtual
# environment and runs a tier from it. Change one, change the other.
#
#   docker build -t <registry>/stir:<version> .
#   docker run --env-file stir.env <registry>/stir:<version>        # a process worker (CMD)
#   a docker work pool runs `prefect flow-run execute` in it as is (no ENTRYPOINT)

FROM python:3.11-slim AS build
WORKDIR /src
COPY requirements/build.txt requirements/build.txt
RUN python -m pip install --no-cache-dir --require-hashes -r requirements/build.txt
COPY pyproject.toml README.md prefect.yaml ./
COPY stir ./stir
COPY transform ./transform
RUN python -m pip wheel --no-deps --no-build-isolation -w /dist .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    PREFECT_SERVER_ANALYTICS_ENABLED=false DO_NOT_TRACK=1 DBT_SEND_ANONYMOUS_USAGE_STATS=false \
    HOME=/home/stir STIR_STATE_DIR=/var/lib/stir PREFECT_HOME=/var/lib/stir/prefect

# openssh-client: the `ssh` transfer. /var/lib/stir: the only place Stir writes (dbt's
# partial-parse cache, Prefect's home); each dbt build works in its own temporary folder, so the
# installed dbt project stays read-only.
RUN apt-get update \
 && apt-get install -y --no-install-recommends openssh-client \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid 10001 stir \
 && install -d -o stir -g stir /var/lib/stir

COPY requirements/worker.txt /tmp/worker.txt
RUN python -m pip install --require-hashes -r /tmp/worker.txt && rm /tmp/worker.txt
COPY --from=build /dist/ /tmp/dist/
RUN python -m pip install --no-deps /tmp/dist/*.whl && rm -rf /tmp/dist

USER stir
WORKDIR /var/lib/stir
# No ENTRYPOINT: the command a Docker or ECS work pool sends must run unchanged. By default the
# container is a process worker of the pool `stir` (override the command to pick another pool).
CMD ["prefect", "worker", "start", "--pool", "stir", "--type", "process"]
