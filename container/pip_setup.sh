#!/bin/sh
# Build stages only: let pip reach its index from behind a proxy. PIP_CONFIG (a pip configuration) and
# EXTRA_CA_CERTS (PEM certificates the proxy needs) are build arguments that container/host_pip.py reads
# from the host; both are empty on an ordinary build, and neither reaches the final image.
set -eu
if [ -n "${EXTRA_CA_CERTS:-}" ]; then
    printf '%s\n' "$EXTRA_CA_CERTS" >> /etc/ssl/certs/ca-certificates.crt
fi
if [ -n "${PIP_CONFIG:-}" ]; then
    printf '%s\n' "$PIP_CONFIG" > /etc/pip.conf
fi
