# syntax=docker/dockerfile:1
# The krally image: the operator, the runner pod and the default hook pod all run it.
# Build: docker build -t krally:0.1.0 .        Lint: hadolint Dockerfile

# One place for the versions. kubectl stays within one minor of the clusters krally is
# tested against (tests/cluster/KUBERNETES_VERSION). Both base images are build arguments:
# the test harness builds from a local Debian base (tests/cluster/images.py).
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm
ARG GO_IMAGE=golang:1.26.8-bookworm
ARG NODE_IMAGE=node:20-bookworm-slim
ARG KUBERNETES_VERSION=v1.35.4
# The HTML report's chart library (krally/results/html/assets.py pins the same version and hash).
ARG UPLOT_VERSION=1.6.32
ARG UPLOT_INTEGRITY=sha512-KIMVnG68zvu5XXUbC4LQEPnhwOxBuLyW1AHtpm6IKTXImkbLgkMy+jabjLgSLMasNuGGzQm/ep3tOkyTxpiQIw==

# kubectl for sys_call hooks (e.g. `kubectl delete pod ...`), built from the k8s.io/kubernetes
# Go module by the same script as the test cluster's binaries: no third-party image. A builder
# that already has that binary replaces this stage with `--build-context kubectl=DIR`.
FROM ${GO_IMAGE} AS kubectl
ARG KUBERNETES_VERSION
COPY scripts/build-control-plane.sh /build/
RUN KRALLY_KUBERNETES_VERSION="${KUBERNETES_VERSION}" KRALLY_BINARIES=kubectl \
    KRALLY_CACHE_DIR=/build/out bash /build/build-control-plane.sh \
    && cp "/build/out/kubernetes-${KUBERNETES_VERSION}/bin/kubectl" /kubectl

# uPlot from npm, its hash checked, embedded in every HTML report (never in krally's repository).
# A builder that has it already (scripts/fetch-chart-lib) passes `--build-context chart-library=DIR`.
FROM ${NODE_IMAGE} AS chart-library
ARG UPLOT_VERSION
ARG UPLOT_INTEGRITY
WORKDIR /pack
RUN npm pack --silent "uplot@${UPLOT_VERSION}" \
    && node -e 'const c=require("crypto"),f=require("fs");const h="sha512-"+c.createHash("sha512").update(f.readFileSync(process.argv[1])).digest("base64");if(h!==process.argv[2]){console.error("uplot: integrity "+h+" is not the pinned "+process.argv[2]);process.exit(1)}' \
       "uplot-${UPLOT_VERSION}.tgz" "${UPLOT_INTEGRITY}" \
    && tar -xzf "uplot-${UPLOT_VERSION}.tgz" \
    && mkdir /vendor \
    && cp package/dist/uPlot.iife.min.js package/dist/uPlot.min.css package/LICENSE /vendor/ \
    && echo "${UPLOT_INTEGRITY}" > /vendor/VERSION

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# A virtualenv copied whole into the final stage: no compilers, caches or sources there.
RUN python3 -m venv /opt/krally
COPY pyproject.toml README.md ./
COPY operator ./operator
COPY --from=chart-library /vendor/ ./operator/krally/results/html/vendor/
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
COPY --from=kubectl /kubectl /usr/local/bin/kubectl
COPY --from=build /opt/krally /opt/krally
# HOME=/tmp: the root filesystem is read-only in the pod; /tmp is its writable emptyDir.
ENV PATH=/opt/krally/bin:$PATH \
    HOME=/tmp \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 65532:65532
ENTRYPOINT ["krally"]
CMD ["operator", "--all-namespaces"]
