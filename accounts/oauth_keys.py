"""The development signing key of the OpenID Connect provider.

Production sets ``OAUTH_PRIVATE_KEY`` (or ``OAUTH_PRIVATE_KEY_FILE``): every app
server must sign with the same key. With debug on and neither set, the settings
use a key made once under ``var/`` and kept there, so ID tokens issued before a
restart still verify. Read by the settings module: no Django imports here.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def development_key(path: Path) -> str:
    """The PEM text of the RSA key at ``path``, made there (mode 600) if missing."""
    try:
        return path.read_text()
    except FileNotFoundError:
        pass
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    ).decode("ascii")
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written aside and moved in place: two processes starting at once both end up
    # with one whole key (the last one moved), never half a file.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".oauth-key-")
    with os.fdopen(fd, "w") as handle:
        handle.write(pem)
    os.chmod(tmp, 0o600)
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        os.unlink(tmp)
    return path.read_text()
