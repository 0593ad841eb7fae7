"""Write this host's pip settings as Docker build arguments for a build behind a proxy.

``python3 container/host_pip.py FOLDER`` writes two files into FOLDER (outside the
repository; container/check.sh deletes it):

- ``pip.conf``: the host's pip settings that mean something inside the build, as one
  ``[global]`` section. Read with ``pip config list``, so every scope counts (global,
  user, site, ``PIP_CONFIG_FILE`` and ``PIP_*`` environment variables, later ones winning).
  Passed through: index URLs that are not on this host's disk, ``trusted-host``,
  timeouts, retries, ``proxy`` and ``disable-pip-version-check``; ``cert`` is replaced by
  the image's CA bundle when the host's bundle holds extra certificates. Everything else
  is left out, above all settings whose value is a path on this host (``constraint``,
  ``requirement``, ``find-links``, ``client-cert``, local indexes): the build cannot see
  them. The keys left out are printed, one line.
- ``extra-ca.pem``: the certificates of the host's CA bundle that Debian's own bundle
  lacks (the proxy's), small enough to pass as a build argument.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

IMAGE_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
INDEX_KEYS = ("index-url", "extra-index-url")
PASSED_KEYS = (*INDEX_KEYS, "trusted-host", "timeout", "default-timeout", "retries", "proxy",
               "disable-pip-version-check")
PEM_BLOCK = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)


def host_settings() -> dict[str, str]:
    """``pip config list`` as ``{key: value}``, ranked as pip ranks them.

    pip lists ``section.key`` sorted by name; ``[global]`` is overridden by a command's
    section (``[install]``), and both by ``PIP_*`` environment variables (``:env:``).
    """
    listed = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True,
                            check=True).stdout
    entries = [line.partition("=") for line in listed.splitlines() if "=" in line]
    rank = {"global": 0, ":env:": 2}
    settings = {}
    for name, _, value in sorted(entries, key=lambda entry: rank.get(entry[0].rsplit(".", 1)[0], 1)):
        settings[name.rsplit(".", 1)[-1]] = value.strip().strip("'\"")
    return settings


def is_remote(location: str) -> bool:
    """Whether an index location is a URL the build can reach (not a file or folder on this host)."""
    return location.startswith(("http://", "https://"))


def build_settings(settings: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """The settings the build receives, and the keys left out.

    Index settings keep their remote URLs only; a key whose every value is local is left out,
    as is every key not in ``PASSED_KEYS`` (``cert`` is handled by :func:`main`).
    """
    kept, dropped = {}, []
    for key, value in settings.items():
        if key in INDEX_KEYS:
            value = " ".join(item for item in value.split() if is_remote(item))
        if key in PASSED_KEYS and value:
            kept[key] = value
        elif key != "cert":
            dropped.append(key)
    return kept, dropped


def certificates(text: str) -> list[str]:
    """The PEM certificate blocks in ``text``, whitespace-normalised."""
    return ["\n".join(line.strip() for line in block.splitlines()) for block in PEM_BLOCK.findall(text)]


def extra_certificates(bundle: Path) -> list[str]:
    """Certificates of ``bundle`` that are not among Debian's stock ones (/usr/share/ca-certificates)."""
    stock = {cert for path in Path("/usr/share/ca-certificates").rglob("*.crt")
             for cert in certificates(path.read_text(errors="replace"))}
    return [cert for cert in certificates(bundle.read_text(errors="replace")) if cert not in stock]


def main(folder: Path) -> None:
    """Write ``pip.conf`` and ``extra-ca.pem`` into ``folder`` and say which host settings were left out."""
    settings = host_settings()
    bundle = settings.get("cert") or os.environ.get("SSL_CERT_FILE")
    kept, dropped = build_settings(settings)
    extra = extra_certificates(Path(bundle)) if bundle and Path(bundle).is_file() else []
    if extra:
        kept["cert"] = IMAGE_BUNDLE
    lines = ["[global]", *(f"{key} = {value}" for key, value in kept.items())] if kept else []
    (folder / "pip.conf").write_text("\n".join(lines))
    (folder / "extra-ca.pem").write_text("\n".join(extra))
    print(f"[host_pip] passed to the build: {', '.join(kept) or 'nothing'}; "
          f"left out (paths on this host or not needed there): {', '.join(dropped) or 'nothing'}; "
          f"{len(extra)} extra CA certificate(s)")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
