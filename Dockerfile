# The inferplane image: one `inferplane` entry point serving `epp`, `bbr` and `sim` in a cluster
# (`inferplane render` points the endpoint-picker and body-based-router Deployments at it).
#   docker build -t inferplane:0.1.0 .
#   docker run --rm -p 8000:8000 inferplane:0.1.0 sim --model demo --port 8000 --host 0.0.0.0
# Two stages: the build stage installs the package into a virtualenv; the runtime stage copies only that virtualenv
# onto a slim base and runs as an unprivileged user with a fixed UID (Kubernetes runAsNonRoot needs a numeric one).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/inferplane
COPY pyproject.toml README.md ./
COPY src ./src
RUN /opt/inferplane/bin/pip install --no-cache-dir . \
    && find /opt/inferplane -name '__pycache__' -type d -prune -exec rm -rf {} +

FROM ${PYTHON_IMAGE}
ARG UID=10001
RUN groupadd --system --gid "${UID}" inferplane \
    && useradd --system --uid "${UID}" --gid inferplane --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin inferplane
COPY --from=build /opt/inferplane /opt/inferplane
ENV PATH=/opt/inferplane/bin:${PATH} \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /tmp
USER ${UID}:${UID}
# 9002 ext_proc gRPC, 9003 gRPC health, 9090 Prometheus metrics (EPP); 8000 the simulator's OpenAI API.
# The body-based router listens on 9004/9005 when run with its defaults.
EXPOSE 9002 9003 9090 8000
ENTRYPOINT ["inferplane"]
CMD ["--help"]
