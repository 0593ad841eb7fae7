# bidsapp as a BIDS App image: docker run ... BIDS_DIR OUTPUT_DIR participant|group [options]
#
# Build:  docker build -t bidsapp .
# Options (build arguments):
#   BASE_IMAGE           Debian bookworm base (pinned by date; `make container-check` passes a local one)
#   TEMPLATEFLOW_ATLASES space:atlas pairs fetched into the image, e.g.
#                        "MNI152NLin2009cAsym:Schaefer2018 MNI152NLin2009cAsym:DiFuMo";
#                        empty (the default) fetches nothing and the offline default atlas still works
#   PIP_CONFIG, EXTRA_CA_CERTS
#                        a pip configuration and CA certificates for building behind a proxy, read from
#                        the host by container/host_pip.py; used in the build stages only, never in the image
ARG BASE_IMAGE=debian:bookworm-20250520-slim

# ---- build stage: a virtual environment from the lock file ----
FROM ${BASE_IMAGE} AS build
ARG PIP_CONFIG=""
ARG EXTRA_CA_CERTS=""
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# ca-certificates is left unpinned on purpose: certificates must be current.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3=3.11.2-1+b1 python3-venv=3.11.2-1+b1 ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY container/pip_setup.sh requirements.lock /src/
RUN /src/pip_setup.sh && python3 -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir -r /src/requirements.lock
COPY pyproject.toml README.md /src/
COPY bidsapp /src/bidsapp
RUN /opt/venv/bin/pip install --no-cache-dir --no-deps /src && /opt/venv/bin/pip check

# ---- TemplateFlow atlases, only when TEMPLATEFLOW_ATLASES names some ----
FROM build AS templateflow
ARG TEMPLATEFLOW_ATLASES=""
ENV TEMPLATEFLOW_HOME=/opt/templateflow
RUN mkdir -p "$TEMPLATEFLOW_HOME" \
    && if [ -n "$TEMPLATEFLOW_ATLASES" ]; then \
         python3 -m venv /tmp/tf && /tmp/tf/bin/pip install --no-cache-dir templateflow==25.1.1 \
         && for pair in $TEMPLATEFLOW_ATLASES; do \
              /tmp/tf/bin/python -c "import sys, templateflow.api as tf; \
space, atlas = sys.argv[1].split(':'); \
found = tf.get(space, atlas=atlas, suffix='dseg', extension=['.nii.gz', '.tsv']); \
assert found, sys.argv[1] + ': not in TemplateFlow'" "$pair" || exit 1; \
            done; \
       fi

# ---- the image users run ----
FROM ${BASE_IMAGE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3=3.11.2-1+b1 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --home-dir /home/bidsapp --uid 1000 --shell /bin/bash bidsapp \
    && chmod 1777 /home/bidsapp
COPY --from=build /opt/venv /opt/venv
COPY --from=templateflow /opt/templateflow /opt/templateflow
# Any UID can run it, also on a read-only image as Singularity does: HOME is writable whenever the image is,
# but nothing is written there; matplotlib's and Deno's caches go to fixed folders in /tmp (the one place
# Singularity and `docker run --read-only --tmpfs /tmp` leave writable); TemplateFlow's home is read-only.
ENV PATH=/opt/venv/bin:$PATH \
    HOME=/home/bidsapp \
    MPLCONFIGDIR=/tmp/matplotlib \
    DENO_DIR=/tmp/deno \
    TEMPLATEFLOW_HOME=/opt/templateflow \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
RUN chmod -R a+rX /opt/templateflow
USER 1000:1000
WORKDIR /tmp
# Smoke test of the finished image: the command, the libraries it imports lazily, and the validator it calls.
RUN bidsapp --version && python -c "import bidsapp.workflow, bids, nilearn.plotting" \
    && bids-validator-deno --version && rm -rf /tmp/matplotlib /tmp/deno
LABEL org.opencontainers.image.title="bidsapp" \
      org.opencontainers.image.description="BIDS App for what comes after fMRIPrep" \
      org.opencontainers.image.licenses="Apache-2.0"
ENTRYPOINT ["bidsapp"]
