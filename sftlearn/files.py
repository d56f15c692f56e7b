"""Writing files and folders so that a reader never finds half of one.

A save can be interrupted at any moment: Ctrl-C, a notebook's stop button, a full disk, a
crash of the program. (Not a power cut: surviving one needs ``os.fsync`` on every file and
folder before the rename, which costs time on every save and which these functions skip.)
Writing straight into ``model.safetensors`` would then leave a damaged file under the right name, and the next load would fail (or, worse, load garbage). Both functions here write
under a temporary name in the same folder and then *rename*, which the operating system does
in one step: the name points at the old complete thing or at the new complete thing, never
at a part. Everything that sftlearn saves (models, checkpoints, tokenizers, LoRA adapters,
the zoo's cache, the generated exercise notebooks) goes through them, and gets the file
modes a plain save would (the temporary names start private).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable


def output_folder(path: str | os.PathLike, fix: str) -> Path:
    """``path`` as a ``Path``, refused with a ``ValueError`` if a file (not a folder) is already
    there: a save into it would fail late, with an OSError. ``fix`` ends the message."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{path} is a file, not a folder. {fix}")
    return path


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` and then move the result to ``path`` in one atomic step.

    A file already at ``path`` keeps its permissions; a symbolic link keeps pointing where it
    did, at the new file (as a plain ``open(path, "w")`` would do).

    >>> atomic_write(folder / "note.txt", lambda tmp: tmp.write_text("hello"))  # doctest: +SKIP
    """
    path = _through_links(Path(path))
    output_folder(path.parent, "Give a folder for the file to go in.")
    path.parent.mkdir(parents=True, exist_ok=True)
    # mkstemp makes the file private (0600): give it what a plain save would have
    mode = path.stat().st_mode & 0o7777 if path.is_file() else 0o666 & ~_umask()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        write(tmp)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def _through_links(path: Path) -> Path:
    """Where a symbolic link at ``path`` leads: a save replaces what the link points at, not
    the link (a model cache or a checkpoint folder linked to another disk stays there)."""
    return path.resolve() if path.is_symlink() else path


def _umask() -> int:
    """The process's umask (only readable by setting it, so set it straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_dir(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_folder)`` to fill a new folder, then put it at ``path``, replacing
    any folder already there (through a symbolic link: the link keeps pointing there).

    A folder cannot be renamed over a non-empty one, so the previous folder is first moved
    aside, and put back if the new one does not arrive: ``path`` holds a complete folder at
    every moment but the instant between two renames.
    """
    path = output_folder(_through_links(Path(path)), "Remove it or save somewhere else.")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    aside = tmp.with_name(tmp.name + ".previous")
    try:
        write(tmp)
        # mkdtemp made it private (0700); a folder made with mkdir would follow the umask, and
        # others must be able to read a shared model cache or a model saved for them.
        os.chmod(tmp, 0o777 & ~_umask())
        if path.exists():
            os.replace(path, aside)
        try:
            os.replace(tmp, path)
        except BaseException:
            if aside.exists() and not path.exists():
                os.replace(aside, path)  # the new folder did not arrive: keep the old one
            raise
    finally:
        for leftover in (tmp, aside):
            if leftover.exists():
                shutil.rmtree(leftover)
    return path
