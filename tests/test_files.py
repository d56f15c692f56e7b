"""sftlearn.files: a file or folder is replaced whole or not at all, and nothing is left over."""

import os

import pytest

from sftlearn.files import atomic_write, atomic_write_dir, output_folder


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


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_a_file_saved_again_keeps_its_mode(tmp_path):
    # as a plain open(path, "w") does: a file its owner made private stays private
    atomic_write(tmp_path / "note.txt", lambda tmp: tmp.write_text("old"))
    os.chmod(tmp_path / "note.txt", 0o600)
    atomic_write(tmp_path / "note.txt", lambda tmp: tmp.write_text("new"))
    assert (tmp_path / "note.txt").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "note.txt").read_text() == "new"


@pytest.mark.skipif(os.name != "posix", reason="symbolic links")
def test_a_symbolic_link_keeps_pointing_where_it_did(tmp_path):
    # e.g. a model cache linked to another disk: the save lands there, the link stays a link
    elsewhere = tmp_path / "disk"
    elsewhere.mkdir()
    (elsewhere / "model").mkdir()
    (elsewhere / "model" / "old.txt").write_text("old")
    (elsewhere / "note.txt").write_text("old")
    (tmp_path / "model").symlink_to(elsewhere / "model")
    (tmp_path / "note.txt").symlink_to(elsewhere / "note.txt")
    atomic_write_dir(tmp_path / "model", lambda tmp: (tmp / "new.txt").write_text("new"))
    atomic_write(tmp_path / "note.txt", lambda tmp: tmp.write_text("new"))
    assert (tmp_path / "model").is_symlink() and (tmp_path / "note.txt").is_symlink()
    assert sorted(os.listdir(elsewhere / "model")) == ["new.txt"]
    assert (elsewhere / "note.txt").read_text() == "new"
    assert sorted(os.listdir(tmp_path)) == ["disk", "model", "note.txt"]  # nothing left over
    assert sorted(os.listdir(elsewhere)) == ["model", "note.txt"]


def test_a_file_where_a_folder_should_go_is_refused_and_kept(tmp_path):
    # It was replaced by the folder, and the clean-up then failed on the file moved aside.
    (tmp_path / "model").write_text("mine")
    with pytest.raises(ValueError, match="model is a file, not a folder. Remove it or save somewhere else"):
        atomic_write_dir(tmp_path / "model", lambda tmp: (tmp / "w.txt").write_text("w"))
    with pytest.raises(ValueError, match="model is a file, not a folder"):
        atomic_write(tmp_path / "model" / "w.txt", lambda tmp: tmp.write_text("w"))
    assert (tmp_path / "model").read_text() == "mine"
    assert os.listdir(tmp_path) == ["model"]
    assert output_folder(tmp_path, "unused") == tmp_path  # a folder, or nothing yet, passes
    assert output_folder(tmp_path / "new", "unused") == tmp_path / "new"
