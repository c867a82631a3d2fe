# The application image: one image, three commands (`executioner api`, `executioner worker`, `executioner operator`).
# Nothing is downloaded during the build (the build may not reach PyPI): on the host, first
#   hack/chart/build-wheels.sh                           # the project and the versions uv.lock pins, as wheels
#   cd frontend && npm ci && npm run build               # the web UI in frontend/dist
# (`make app-image` does both, then builds this file).
FROM docker.io/library/python:3.11-slim AS build
COPY build/wheels /wheels
RUN python -m venv /opt/executioner/venv \
 && /opt/executioner/venv/bin/pip install --no-cache-dir --no-index --find-links /wheels executioner \
 && /opt/executioner/venv/bin/pip uninstall -y -q pip \
 && find /opt/executioner/venv -name __pycache__ -path '*/tests/*' -prune -exec rm -rf {} +

FROM docker.io/library/python:3.11-slim
LABEL org.opencontainers.image.title="executioner" \
      org.opencontainers.image.description="THE_EXECUTIONER API, worker and operator" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/executioner/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp \
    EXECUTIONER_UI_DIR=/opt/executioner/ui
COPY --from=build /opt/executioner/venv /opt/executioner/venv
COPY frontend/dist /opt/executioner/ui
# A fixed unprivileged UID/GID with no entry in /etc/passwd needed; the chart enforces runAsNonRoot and a
# read-only root filesystem (with an emptyDir at /tmp).
USER 10001:10001
WORKDIR /tmp
EXPOSE 8000
ENTRYPOINT ["executioner"]
CMD ["api"]
