"""sftlearn.files: a file or folder is replaced whole or not at all, and nothing is left over."""

import os

import pytest

from sftlearn.files import atomic_write, atomic_write_dir


class Interrupted(Exception):
    """Stands for Ctrl-C, a full disk or a crash in the middle of a save."""


def test_a_file_is_written_and_replaced(tmp_path):
    target = tmp_path / "sub" / "note.txt"  # missing folders are created
    assert atomic_write(target, lambda tmp: tmp.write_text("one")) == target
    atomic_write(target, lambda tmp: tmp.write_text("two"))
    assert target.read_text() == "two"
    assert os.listdir(target.parent) == ["note.txt"]


def test_a_failed_file_write_keeps_the_old_file_and_leaves_nothing(tmp_path):
    target = tmp_path / "note.txt"
    target.write_text("old")

    def half_then_fail(tmp):
        tmp.write_text("ne")
        raise Interrupted

    with pytest.raises(Interrupted):
        atomic_write(target, half_then_fail)
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["note.txt"]


def fill(text):
    def write(folder):
        (folder / "a.txt").write_text(text)
        (folder / "b.txt").write_text(text)
    return write


def test_a_folder_is_written_and_replaced_whole(tmp_path):
    target = tmp_path / "model"
    atomic_write_dir(target, fill("one"))
    (target / "stale.txt").write_text("from the old folder")
    assert atomic_write_dir(target, fill("two")) == target
    assert sorted(os.listdir(target)) == ["a.txt", "b.txt"]  # replaced, not merged
    assert (target / "a.txt").read_text() == "two"
    assert os.listdir(tmp_path) == ["model"]


def test_a_failed_folder_write_keeps_the_old_folder(tmp_path):
    target = tmp_path / "model"
    atomic_write_dir(target, fill("old"))

    def half_then_fail(folder):
        (folder / "a.txt").write_text("new")
        raise Interrupted

    with pytest.raises(Interrupted):
        atomic_write_dir(target, half_then_fail)
    assert (target / "a.txt").read_text() == "old" and (target / "b.txt").read_text() == "old"
    assert os.listdir(tmp_path) == ["model"]


def test_a_failed_final_rename_puts_the_old_folder_back(tmp_path, monkeypatch):
    target = tmp_path / "model"
    atomic_write_dir(target, fill("old"))
    real_replace = os.replace

    def fail_into_place(src, dst):
        if os.fspath(dst) == os.fspath(target) and not os.fspath(src).endswith(".previous"):
            raise Interrupted  # the new folder's rename; putting the old one back works
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", fail_into_place)
    with pytest.raises(Interrupted):
        atomic_write_dir(target, fill("new"))
    monkeypatch.setattr(os, "replace", real_replace)
    assert (target / "a.txt").read_text() == "old"
    assert os.listdir(tmp_path) == ["model"]


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
@pytest.mark.parametrize("umask, file_mode, dir_mode", [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700),
                                                        (0o002, 0o664, 0o775)])
def test_what_is_written_gets_the_modes_a_plain_save_would(tmp_path, umask, file_mode, dir_mode):
    # The temporary names are created private (0600 files, 0700 folders); left so, a model
    # saved into a shared cache or for a colleague could be read by nobody else.
    old = os.umask(umask)
    try:
        atomic_write(tmp_path / "note.txt", lambda tmp: tmp.write_text("x"))
        atomic_write_dir(tmp_path / "model", lambda tmp: atomic_write(tmp / "w.bin", lambda f: f.write_bytes(b"w")))
    finally:
        os.umask(old)
    assert (tmp_path / "note.txt").stat().st_mode & 0o777 == file_mode
    assert (tmp_path / "model").stat().st_mode & 0o777 == dir_mode
    assert (tmp_path / "model" / "w.bin").stat().st_mode & 0o777 == file_mode
