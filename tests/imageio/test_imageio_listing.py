"""dpe_hf.imageio.list_images: the one lister of the CLI, evaluation and training corpora."""

from __future__ import annotations

import os

import pytest

from dpe_hf.imageio import list_images


@pytest.fixture
def tree(tmp_path):
    for rel in ["b.JPG", "a.png", "notes.txt", ".hidden.jpg", "sub/c.tif", "sub/deeper/d.webp",
                ".cache/e.jpg", "__MACOSX/f.jpg", "x.ppm"]:
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"not decoded by the lister")
    (tmp_path / "folder.jpg").mkdir()  # a folder with an image suffix is no image
    return tmp_path


def _names(paths, root):
    return [p.relative_to(root).as_posix() for p in paths]


def test_top_level_only_by_default_sorted_any_case(tree):
    assert _names(list_images(tree), tree) == ["a.png", "b.JPG"]


def test_recursive_skips_hidden_and_dunder_folders(tree):
    assert _names(list_images(tree, recursive=True), tree) == [
        "a.png", "b.JPG", "sub/c.tif", "sub/deeper/d.webp"]


def test_suffixes_and_exclude(tree):
    assert _names(list_images(tree, recursive=True, suffixes={".ppm", ".tif"}), tree) == [
        "sub/c.tif", "x.ppm"]
    assert _names(list_images(tree, recursive=True, exclude=tree / "sub"), tree) == ["a.png", "b.JPG"]


def test_links_to_folders_are_followed_once(tree, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside")
    (outside / "o.jpg").write_bytes(b"x")
    os.symlink(outside, tree / "linked")
    os.symlink(tree, tree / "sub" / "loop")  # a cycle: must end, each real folder once
    names = _names(list_images(tree, recursive=True), tree)
    assert names == ["a.png", "b.JPG", "linked/o.jpg", "sub/c.tif", "sub/deeper/d.webp"]


def test_a_folder_that_cannot_be_listed_raises(tmp_path):
    with pytest.raises(FileNotFoundError):
        list_images(tmp_path / "missing")
    (tmp_path / "file.jpg").write_bytes(b"x")
    with pytest.raises(NotADirectoryError):
        list_images(tmp_path / "file.jpg")
