# syntax=docker/dockerfile:1
# AsyncEndpoints: one image for the API, the workers and the controller.
#
#   docker build -t asyncendpoints/asyncendpoints:0.1.0 .
#   docker run --rm -p 8000:8000 -e ASYNCENDPOINTS_HOST=0.0.0.0 \
#       asyncendpoints/asyncendpoints:0.1.0 dev examples.reports:app
#
# Stage 1 builds the project's wheel and collects the wheels of its dependencies;
# stage 2 installs them, with no compiler and no build tool, into a slim runtime that
# runs as the non-root user 10001 (the Helm chart's runAsUser) and can run with a
# read-only root filesystem (only /tmp needs to be writable).

ARG PYTHON_VERSION=3.11

# ---- builder --------------------------------------------------------------------------------
FROM python:${PYTHON_VERSION}-slim-bookworm AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY asyncendpoints/ asyncendpoints/
COPY api/ api/
COPY worker/ worker/
COPY controller/ controller/

# The project's wheel and every dependency's wheel (all of them publish binary wheels for
# linux amd64 and arm64, so no compiler is needed here either).
RUN python -m pip wheel --wheel-dir /wheels .

# ---- runtime --------------------------------------------------------------------------------
FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime

ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="asyncendpoints" \
      org.opencontainers.image.description="Async request-reply for FastAPI on Kubernetes: API, workers and controller" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="MIT"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/asyncendpoints \
    PATH=/opt/asyncendpoints/bin:$PATH \
    PYTHONPATH=/app \
    HOME=/tmp

# Install from the builder's wheels only (bind-mounted: they never land in a layer), then
# take pip, setuptools and wheel out of the image: nothing is built or installed at run time.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    python -m venv "$VIRTUAL_ENV" \
    && "$VIRTUAL_ENV/bin/pip" install --no-index --find-links=/wheels asyncendpoints \
    && "$VIRTUAL_ENV/bin/pip" uninstall --yes pip setuptools wheel \
    && python -m pip uninstall --yes pip setuptools wheel \
    && groupadd --system --gid 10001 asyncendpoints \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin asyncendpoints

# The example app (`examples.reports:app`), importable from the working directory.
WORKDIR /app
COPY --chown=root:root examples/ examples/

USER 10001:10001

# api, worker health, controller metrics
EXPOSE 8000 8081 8082

ENTRYPOINT ["asyncendpoints"]
CMD ["--help"]
