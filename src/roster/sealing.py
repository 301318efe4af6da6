"""Secrets Roster must use again, so cannot hash (an OpenID provider's client secret): sealed
with Fernet (AES-128-CBC and HMAC-SHA256, from `cryptography`) under one key per deployment.

The key is ROSTER_SECRET_KEY, else a 0600 file `secret.key` in the data folder, made on first
use. Every replica must hold the same key: a secret sealed by one is opened by another."""

import os
from functools import lru_cache
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from roster.files import private_file
from roster.settings import Settings

KEY_FILE = "secret.key"


class SealError(Exception):
    """A sealed value this deployment's key does not open (the key changed, or the value was
    altered)."""


def new_key() -> str:
    return Fernet.generate_key().decode()


def _file_key(data_dir: Path) -> bytes:
    """The key file's key, made the first time: written whole under another name and linked
    into place, so two processes starting at once both end up with the one that won."""
    path = data_dir / KEY_FILE
    if not path.exists():
        draft = private_file(data_dir / f".{KEY_FILE}.{os.getpid()}")
        draft.write_bytes(Fernet.generate_key())
        try:
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return path.read_bytes().strip()


@lru_cache(maxsize=8)
def _fernet(key: str, data_dir: Path) -> Fernet:
    return Fernet(key.encode() if key else _file_key(data_dir))


def sealer(settings: Settings) -> Fernet:
    try:
        return _fernet(settings.secret_key.get_secret_value(), settings.data_dir.resolve())
    except ValueError as error:  # not a Fernet key: 32 url-safe base64-encoded bytes
        raise SealError(f"ROSTER_SECRET_KEY is not a usable key ({error})") from None


def seal(settings: Settings, secret: str) -> str:
    return sealer(settings).encrypt(secret.encode()).decode()


def unseal(settings: Settings, sealed: str) -> str:
    try:
        return sealer(settings).decrypt(sealed.encode()).decode()
    except InvalidToken:
        raise SealError("a sealed secret does not open with this deployment's key") from None
