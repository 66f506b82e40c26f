# syntax=docker/dockerfile:1
# The krally image: the operator, the runner pod and the default hook pod all run it.
# Build: docker build -t krally:0.1.0 .        Lint: hadolint Dockerfile

# One place for the versions. kubectl stays within one minor of the clusters krally is
# tested against (tests/cluster/KUBERNETES_VERSION).
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm
ARG KUBECTL_VERSION=v1.35.4

# kubectl for sys_call hooks (e.g. `kubectl delete pod ...`). This image is a scratch image
# holding only the official kubectl binary, checksum-verified when it was built, so this
# build downloads nothing itself.
FROM rancher/kubectl:${KUBECTL_VERSION} AS kubectl

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# A virtualenv copied whole into the final stage: no compilers, caches or sources there.
RUN python -m venv /opt/krally
COPY pyproject.toml README.md ./
COPY operator ./operator
# The dependencies' lower bounds come from pyproject.toml (the versions krally is tested with).
RUN /opt/krally/bin/pip install --no-cache-dir /src \
    && /opt/krally/bin/krally --help > /dev/null

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="krally" \
      org.opencontainers.image.description="Rally-style benchmarks with scheduled disruption hooks, as a Kubernetes operator" \
      org.opencontainers.image.licenses="Apache-2.0"
# A fixed non-root uid/gid (65532, the usual "nonroot"), numeric in USER so that
# `runAsNonRoot: true` can be checked by the kubelet without reading /etc/passwd.
RUN groupadd --gid 65532 krally \
    && useradd --uid 65532 --gid 65532 --no-create-home --home-dir /tmp \
       --shell /usr/sbin/nologin krally
COPY --from=kubectl /bin/kubectl /usr/local/bin/kubectl
COPY --from=build /opt/krally /opt/krally
# HOME=/tmp: the root filesystem is read-only in the pod; /tmp is its writable emptyDir.
ENV PATH=/opt/krally/bin:$PATH \
    HOME=/tmp \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 65532:65532
ENTRYPOINT ["krally"]
CMD ["operator", "--all-namespaces"]
