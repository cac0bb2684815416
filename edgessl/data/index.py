"""The folder index: one scan of an image folder, cached, so a million images start in well
under a second on every command and every rank.

The first scan lists the folder recursively (names and sizes from the directory entries; no
image is opened except a few probes), and writes the index to
``cache_dir()/index/<hash of the folder's real path>.npz`` (``$EDGESSL_CACHE``, else
``$XDG_CACHE_HOME/edgessl``, else ``~/.cache/edgessl``): the relative paths, their class
labels, file sizes, and the modification time of every sub-folder. A later open reads that
file and re-checks the sub-folders' times (adding, removing or renaming a file changes its
folder's time), so a changed folder is re-scanned and an unchanged one is not. Images are
checked when first decoded (:mod:`edgessl.data.images`).

Under torchrun, rank 0 builds the index while the other ranks wait at a barrier, then read
it; a lock file makes concurrent commands on one machine scan once too. Where the cache
cannot be written the folder is scanned every time (with a warning).
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from edgessl.data.images import ImageBomb, PathList, UnreadableImage, decode_image
from edgessl.errors import BadInput
from edgessl.utils import atomic_write, cache_dir, remove_stale_temps

EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
INDEX_VERSION = 1
PROBES = 16  # images decoded when a folder is indexed (spread over it): refuse a folder of junk
log = logging.getLogger("edgessl.data")


@dataclass
class FolderIndex:
    """What a scan found: ``files`` (relative to ``root``, sorted), ``labels`` (index into
    ``classes``; None unless every image sits in a class sub-folder, two or more), ``sizes``
    in bytes, and ``bad``: files known unreadable (empty, or a failed probe)."""

    root: Path
    files: PathList
    sizes: np.ndarray
    classes: list[str]
    labels: np.ndarray | None
    bad: np.ndarray
    dirs: list[str] = field(default_factory=list)  # sub-folders scanned (relative)
    mtimes: list[int] = field(default_factory=list)  # their modification times (ns)
    cached: bool = False  # read from the cache rather than scanned
    seconds: float = 0.0

    def __len__(self) -> int:
        return len(self.files)


def index_path(root: Path) -> Path:
    """Where the index of the folder ``root`` is cached."""
    key = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:24]
    return cache_dir() / "index" / f"{key}.npz"


def _scan(root: Path) -> tuple[list[str], list[int], list[str], list[int]]:
    """(image paths relative to root, their sizes, sub-folders relative to root, their mtimes
    in ns); hidden entries (a leading dot) are ignored; symlinked folders followed once."""
    files, sizes, dirs, mtimes = [], [], [], []
    seen: set[tuple[int, int]] = set()
    stack = [""]
    while stack:
        rel = stack.pop()
        folder = root / rel if rel else root
        st = folder.stat()
        if (st.st_dev, st.st_ino) in seen:
            continue
        seen.add((st.st_dev, st.st_ino))
        dirs.append(rel)
        mtimes.append(st.st_mtime_ns)
        with os.scandir(folder) as entries:
            for e in entries:
                if e.name.startswith("."):
                    continue
                name = f"{rel}/{e.name}" if rel else e.name
                if e.is_dir():
                    stack.append(name)
                elif e.name.lower().endswith(EXTENSIONS) and e.is_file():
                    files.append(name)
                    sizes.append(e.stat().st_size)
    order = sorted(range(len(files)), key=files.__getitem__)
    return [files[i] for i in order], [sizes[i] for i in order], dirs, mtimes


def _labels(files: list[str]) -> tuple[list[str], np.ndarray | None]:
    """ImageFolder labels: every image exactly one folder down, in two or more folders."""
    parents = [f.split("/")[0] if f.count("/") == 1 else None for f in files]
    if not files or None in parents or len(set(parents)) < 2:
        return [], None
    classes = sorted(set(parents))
    index = {c: i for i, c in enumerate(classes)}
    return classes, np.array([index[p] for p in parents], dtype=np.int64)


def _probe(root: Path, files: list[str], sizes: list[int]) -> list[int]:
    """Indices of files known unreadable: empty ones, and those of ``PROBES`` spread-out
    files that fail to decode; a decompression bomb among them is refused."""
    bad = [i for i, s in enumerate(sizes) if s == 0]
    candidates = [i for i in range(len(files)) if sizes[i] > 0]
    picks = sorted({candidates[int(k)] for k in np.linspace(0, len(candidates) - 1, PROBES)}
                   ) if candidates else []
    for i in picks:
        try:
            decode_image(root / files[i])
        except ImageBomb as exc:
            raise BadInput(f"{exc}; remove it from the data folder") from None
        except UnreadableImage:
            bad.append(i)
    if all(i in bad for i in picks):
        checked = ("" if len(picks) == len(candidates) else
                   f"; the {len(picks)} checked of {len(files)}, e.g. {files[picks[0]]}, "
                   "do not decode")
        raise BadInput(f"data folder {root} holds no readable images ({len(bad)} corrupt "
                       f"skipped{checked})")
    return sorted(bad)


def build_index(root: Path) -> FolderIndex:
    """Scan ``root`` (no cache); refuse a folder without images."""
    t = time.perf_counter()
    files, sizes, dirs, mtimes = _scan(root)
    if not files:
        raise BadInput(f"data folder {root} holds no images ({', '.join(EXTENSIONS)})")
    classes, labels = _labels(files)
    bad = _probe(root, files, sizes)
    return FolderIndex(root, PathList.from_strings(root, files), np.array(sizes, np.int64),
                       classes, labels, np.array(bad, np.int64), dirs, mtimes,
                       seconds=time.perf_counter() - t)


def _save(index: FolderIndex, path: Path) -> None:
    dirs = PathList.from_strings("", index.dirs)
    classes = PathList.from_strings("", index.classes)
    arrays = {
        "version": np.array(INDEX_VERSION), "root": np.array(str(index.root.resolve())),
        "blob": index.files.blob, "starts": index.files.starts, "ends": index.files.ends,
        "sizes": index.sizes, "bad": index.bad,
        "labels": index.labels if index.labels is not None else np.zeros(0, np.int64),
        "labelled": np.array(index.labels is not None),
        "class_blob": classes.blob, "class_starts": classes.starts, "class_ends": classes.ends,
        "dir_blob": dirs.blob, "dir_starts": dirs.starts, "dir_ends": dirs.ends,
        "dir_mtimes": np.array(index.mtimes, np.int64),
    }

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)

    atomic_write(path, write)


def _unchanged(root: Path, dirs: list[str], mtimes: list[int]) -> bool:
    """Whether every scanned sub-folder still has its recorded modification time."""
    try:
        return all((root / rel if rel else root).stat().st_mtime_ns == t
                   for rel, t in zip(dirs, mtimes, strict=True))
    except OSError:  # a folder vanished
        return False


_OPENED: dict[str, FolderIndex] = {}  # indexes read by this process (train and test split)


def _load(root: Path, path: Path) -> FolderIndex | None:
    """The cached index of ``root``, or None when absent, stale or unreadable."""
    known = _OPENED.get(str(root.resolve()))
    if known is not None and _unchanged(root, known.dirs, known.mtimes):
        return known
    try:
        with np.load(path, allow_pickle=False) as z:
            if int(z["version"]) != INDEX_VERSION or str(z["root"]) != str(root.resolve()):
                return None
            dirs = PathList("", z["dir_blob"], z["dir_starts"], z["dir_ends"])
            dirs = [dirs.relative(i) for i in range(len(dirs))]
            mtimes = z["dir_mtimes"].tolist()
            if not _unchanged(root, dirs, mtimes):
                return None
            classes = PathList("", z["class_blob"], z["class_starts"], z["class_ends"])
            index = FolderIndex(root, PathList(root, z["blob"], z["starts"], z["ends"]),
                                z["sizes"], [classes.relative(i) for i in range(len(classes))],
                                z["labels"] if bool(z["labelled"]) else None, z["bad"], dirs,
                                mtimes, cached=True)
    except (OSError, ValueError, KeyError, EOFError):  # missing, truncated, foreign
        return None
    _OPENED[str(root.resolve())] = index
    return index


def _open_cached(root: Path) -> FolderIndex:
    t = time.perf_counter()
    path = index_path(root)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = open(path.with_suffix(".lock"), "a")
    except OSError as exc:
        log.warning("cannot write the folder index cache %s (%s): scanning %s every time",
                    path.parent, exc.strerror, root)
        return build_index(root)
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one scan at a time; the others then read it
        index = _load(root, path)
        if index is None:
            remove_stale_temps(path.parent)
            index = build_index(root)
            try:
                _save(index, path)
            except OSError as exc:
                log.warning("could not cache the index of %s: %s", root, exc.strerror)
            _OPENED[str(root.resolve())] = replace(index, cached=True)
    index.seconds = time.perf_counter() - t
    return index


def _rank() -> int | None:
    """This process's rank when a torch.distributed group is up, else None."""
    import torch.distributed as dist

    return dist.get_rank() if dist.is_available() and dist.is_initialized() else None


def open_index(source: str | Path) -> FolderIndex:
    """The index of folder ``source``: read from the cache when the folder is unchanged,
    else scanned and cached. Under torchrun rank 0 scans first and the others wait."""
    root = Path(source)
    if not root.exists():
        raise BadInput(f"data path not found: {source} (or use a built-in: digits, "
                       "fashion-mnist)")
    if not root.is_dir():
        raise BadInput(f"data path {source} is not a folder")
    rank = _rank()
    if rank is None:
        return _open_cached(root)
    import torch.distributed as dist

    if rank != 0:
        dist.barrier()  # rank 0 is building the index
        return _open_cached(root)
    try:
        return _open_cached(root)
    finally:  # also on bad input, so that the other ranks meet it instead of hanging
        dist.barrier()
