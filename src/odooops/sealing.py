"""Secrets at rest: a project's secret settings are sealed with AES-GCM under a
key derived from the server key (ODOOOPS_SECRET_KEY) for this one purpose.

The project and the secret's name are the associated data, so a ciphertext
opens only where it was sealed: copied to another project or renamed, it is
refused like one sealed under another server key."""

from __future__ import annotations

import os
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from odooops.errors import SecretUnreadable
from odooops.settings import Secret

# A new label gives an unrelated key: the webhook secrets and the first-run
# token derive theirs from the same server key with labels of their own.
PURPOSE = b"odooops project secrets v1"
NONCE_BYTES = 12


def _bound_to(project_id: UUID, name: str) -> bytes:
    # a UUID's text has a fixed length, so project and name cannot run into each other
    return f"{project_id}:{name}".encode()


class SecretBox:
    """Seals and opens the values of project secrets."""

    def __init__(self, server_key: Secret):
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=PURPOSE).derive(
            server_key.reveal().encode())
        self._aead = AESGCM(key)

    def __repr__(self) -> str:
        return "SecretBox(**********)"

    def seal(self, project_id: UUID, name: str, value: str) -> tuple[bytes, bytes]:
        """A fresh (nonce, ciphertext) for `value` as project `project_id`'s secret `name`."""
        nonce = os.urandom(NONCE_BYTES)
        return nonce, self._aead.encrypt(nonce, value.encode(), _bound_to(project_id, name))

    def open(self, project_id: UUID, name: str, nonce: bytes, ciphertext: bytes) -> str:
        try:
            return self._aead.decrypt(bytes(nonce), bytes(ciphertext), _bound_to(project_id, name)).decode()
        except (InvalidTag, ValueError):
            raise SecretUnreadable(
                f"secret {name} of project {project_id} cannot be decrypted: it was sealed under another "
                "ODOOOPS_SECRET_KEY or for another project (every host of one database needs the same "
                "ODOOOPS_SECRET_KEY)") from None
