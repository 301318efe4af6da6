"""Files and folders Roster creates (the SQLite database, the mail outbox, uploads, the SFTP host
key, pickup reports) are its own account's alone: files 0600, folders 0700, whatever the umask,
since they hold password hashes, TOTP secrets, live sign-in codes and people's data. What exists
already is left as it is: the operator may have chosen otherwise."""

import os
import shutil
from pathlib import Path

FILE_MODE = 0o600
FOLDER_MODE = 0o700


def private_dir(path: Path) -> Path:
    """The folder, made with its missing parents as 0700 ones."""
    missing = []
    folder = path
    while not folder.is_dir():
        missing.append(folder)
        if folder.parent == folder:
            break
        folder = folder.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(FOLDER_MODE)
        except FileExistsError:
            continue  # made meanwhile by another process, or not a folder (raised below)
        os.chmod(folder, FOLDER_MODE)  # mkdir's mode passes through the umask
    if not path.is_dir():
        raise NotADirectoryError(path)
    return path


def private_opener(path: str | bytes | os.PathLike[str], flags: int) -> int:
    """An opener for `open(..., opener=private_opener)`: a file it creates is 0600."""
    if not flags & os.O_CREAT:
        return os.open(path, flags)
    while True:
        try:
            fd = os.open(path, flags | os.O_EXCL, FILE_MODE)
        except FileExistsError:
            if flags & os.O_EXCL:
                raise
            try:
                return os.open(path, flags & ~(os.O_CREAT | os.O_EXCL))
            except FileNotFoundError:
                continue  # removed in between: create it after all
        os.fchmod(fd, FILE_MODE)  # os.open's mode passes through the umask
        return fd


def private_file(path: Path) -> Path:
    """The file, made empty as a 0600 one if it does not exist. An existing file is never
    opened: closing any descriptor of a SQLite database drops every lock this process holds on
    it (POSIX record locks), and its other connections would then write unguarded."""
    private_dir(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return path
    os.fchmod(fd, FILE_MODE)  # os.open's mode passes through the umask
    os.close(fd)
    return path


def private_copy(source: Path, target: Path) -> None:
    """A copy of `source` at `target`, a 0600 file when it is new."""
    with open(source, "rb") as read, open(target, "wb", opener=private_opener) as write:
        shutil.copyfileobj(read, write)
