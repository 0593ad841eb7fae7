"""Print this host's pip settings as Docker build arguments for a build behind a proxy.

``python3 container/host_pip.py FOLDER`` writes two files into FOLDER (outside the
repository; container/check.sh deletes it):

- ``pip.conf``: the host's pip configuration (``pip config list``, environment included)
  as one ``[global]`` section, without the host's local folders (the build cannot see
  them) and with ``cert`` pointing at the image's CA bundle when there are extra
  certificates;
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
LOCATION_KEYS = ("index-url", "extra-index-url", "find-links")
PEM_BLOCK = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)


def host_settings() -> dict[str, str]:
    """``pip config list`` as ``{key: value}``, later scopes winning (the environment last)."""
    listed = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True,
                            check=True).stdout
    settings = {}
    for line in listed.splitlines():
        name, _, value = line.partition("=")
        settings[name.rsplit(".", 1)[-1]] = value.strip().strip("'\"")
    return settings


def without_local_locations(settings: dict[str, str]) -> dict[str, str]:
    """``settings`` without index and link locations on this host's disk; emptied settings are dropped."""
    kept = {}
    for key, value in settings.items():
        if key in LOCATION_KEYS:
            value = " ".join(item for item in value.split() if not item.startswith(("file:", "/", ".")))
        if value:
            kept[key] = value
    return kept


def certificates(text: str) -> list[str]:
    """The PEM certificate blocks in ``text``, whitespace-normalised."""
    return ["\n".join(line.strip() for line in block.splitlines()) for block in PEM_BLOCK.findall(text)]


def extra_certificates(bundle: Path) -> list[str]:
    """Certificates of ``bundle`` that are not among Debian's stock ones (/usr/share/ca-certificates)."""
    stock = {cert for path in Path("/usr/share/ca-certificates").rglob("*.crt")
             for cert in certificates(path.read_text(errors="replace"))}
    return [cert for cert in certificates(bundle.read_text(errors="replace")) if cert not in stock]


def main(folder: Path) -> None:
    settings = without_local_locations(host_settings())
    bundle = settings.pop("cert", None) or os.environ.get("SSL_CERT_FILE")
    extra = extra_certificates(Path(bundle)) if bundle and Path(bundle).is_file() else []
    if extra:
        settings["cert"] = IMAGE_BUNDLE
    lines = ["[global]", *(f"{key} = {value}" for key, value in settings.items())] if settings else []
    (folder / "pip.conf").write_text("\n".join(lines))
    (folder / "extra-ca.pem").write_text("\n".join(extra))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
