"""The image set every loader reads (:class:`ImageSet`), compact path lists, and decoding.

Folder images are decoded when first read, never all up front: a file that fails to decode
is marked in the set's ``status`` (a tensor in shared memory, so marks made inside data-loader
worker processes are seen by the main process and by the other workers), skipped by the
loaders and counted. A decompression bomb (more pixels than PIL's ``MAX_IMAGE_PIXELS``) is
never decoded; it is marked too, and the loaders refuse it in the main process (one line
naming the file).
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from edgessl.errors import BadInput

OK, UNREADABLE, BOMB = 0, 1, 2  # values of ImageSet.status


class UnreadableImage(Exception):
    """A file that cannot be decoded as an image (internal: the loaders skip it)."""


class ImageBomb(UnreadableImage):
    """An image with more pixels than PIL's decompression-bomb limit."""


def _check_pixels(path: Path, width: int, height: int) -> None:
    limit = Image.MAX_IMAGE_PIXELS
    if limit is not None and width * height > limit:
        raise ImageBomb(f"image {path} has {width}x{height} = {width * height} pixels, more "
                        f"than the {limit} of PIL's decompression-bomb limit")


def decode_image(path: str | Path) -> torch.Tensor:
    """The file as a (3, H, W) uint8 tensor; :class:`UnreadableImage` when it is not an image
    (or truncated), :class:`ImageBomb` (from the header, before decoding) when it is too
    large. PIL decodes: ``torchvision.io.decode_jpeg`` was 1.7x faster on JPEGs here but is
    deprecated since torchvision 0.29, and decoding is not what dominates a training batch
    (BENCHMARKS.md, data_throughput)."""
    path = Path(path)
    try:
        data = path.read_bytes()
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                _check_pixels(path, *im.size)
                arr = np.array(im if im.mode == "RGB" else im.convert("RGB"))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageBomb(f"image {path}: {exc}") from None
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError, EOFError) as exc:
        raise UnreadableImage(f"{path}: {exc}") from None
    return torch.from_numpy(arr).permute(2, 0, 1)


class PathList(Sequence[Path]):
    """Image paths under ``root`` without one Python object per path: the relative paths are
    one UTF-8 byte buffer plus start/end offsets (a million paths: ~50 MB, not ~150 MB of
    ``Path`` objects, copied to loader workers without copy-on-write growth)."""

    def __init__(self, root: str | Path, blob: np.ndarray, starts: np.ndarray, ends: np.ndarray):
        self.root, self.blob = Path(root), blob
        self.starts = np.asarray(starts, dtype=np.int64)
        self.ends = np.asarray(ends, dtype=np.int64)

    @classmethod
    def from_strings(cls, root: str | Path, names: Sequence[str]) -> PathList:
        encoded = [n.encode() for n in names]
        ends = np.cumsum([len(e) for e in encoded], dtype=np.int64)
        starts = ends - np.array([len(e) for e in encoded], dtype=np.int64)
        blob = np.frombuffer(b"".join(encoded), dtype=np.uint8)
        return cls(root, blob, starts, ends)

    def __len__(self) -> int:
        return len(self.starts)

    def relative(self, i: int) -> str:
        return self.blob[self.starts[i]:self.ends[i]].tobytes().decode()

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return self.take(np.arange(len(self))[i])
        return self.root / self.relative(int(i))

    def take(self, indices: np.ndarray) -> PathList:
        """The paths at ``indices`` (sharing the byte buffer)."""
        idx = np.asarray(indices, dtype=np.int64)
        return PathList(self.root, self.blob, self.starts[idx], self.ends[idx])

    @staticmethod
    def concat(lists: Sequence[PathList]) -> PathList:
        """One list of the paths of ``lists`` (absolute where their roots differ)."""
        roots = {str(p.root) for p in lists}
        if len(roots) == 1:
            root = lists[0].root
            names = [p.relative(i) for p in lists for i in range(len(p))]
        else:
            root = Path("/")
            names = [str(p[i].resolve()) for p in lists for i in range(len(p))]
        return PathList.from_strings(root, names)


@dataclass
class ImageSet:
    """A list of images (in memory for built-ins, paths for folders) with optional labels.

    ``skipped``: files found unreadable when the set was opened; ``status`` (folders): per
    image OK, UNREADABLE or BOMB, set as images are decoded (shared memory)."""

    name: str
    images: torch.Tensor | None = None  # (N, C, H, W) uint8, C in {1, 3}
    paths: PathList | None = None
    labels: np.ndarray | None = None
    classes: list[str] = field(default_factory=list)
    skipped: int = 0
    native_size: int = 0  # typical side length in pixels (0: varies)
    status: torch.Tensor | None = None
    # a horizontal flip keeps an image's meaning (photos, clothes), unlike digits or text:
    # training augments with flips only where it does
    mirror_safe: bool = True

    def __post_init__(self) -> None:
        if self.paths is not None and not isinstance(self.paths, PathList):
            self.paths = PathList.from_strings("/", [str(Path(p).resolve()) for p in self.paths])
        if self.paths is not None and self.status is None:
            self.status = torch.zeros(len(self.paths), dtype=torch.int8).share_memory_()

    def __len__(self) -> int:
        return len(self.images) if self.images is not None else len(self.paths or [])

    @property
    def labelled(self) -> bool:
        return self.labels is not None

    def image(self, i: int) -> torch.Tensor:
        """Image ``i`` as a (3, H, W) uint8 tensor; :class:`UnreadableImage` (and ``i``
        marked in ``status``) when its file cannot be decoded."""
        if self.images is not None:
            img = self.images[i]
            return img.expand(3, -1, -1) if img.shape[0] == 1 else img
        if self.status[i] != OK:
            raise UnreadableImage(str(self.paths[i]))
        try:
            return decode_image(self.paths[i])
        except ImageBomb:
            self.status[i] = BOMB
            raise
        except UnreadableImage:
            self.status[i] = UNREADABLE
            raise

    def readable(self) -> torch.Tensor:
        """A boolean mask of the images not (yet) found unreadable."""
        if self.status is None:
            return torch.ones(len(self), dtype=torch.bool)
        return self.status == OK

    @property
    def decode_failures(self) -> int:
        """Images found unreadable while decoding so far (besides ``skipped``)."""
        return 0 if self.status is None else int((self.status != OK).sum())

    def check_bombs(self) -> None:
        """Refuse (one line naming the file) a decompression bomb met while decoding."""
        if self.status is not None and bool((self.status == BOMB).any()):
            i = int((self.status == BOMB).nonzero()[0, 0])
            raise BadInput(f"image {self.paths[i]} is a decompression bomb (more than PIL's "
                           f"limit of {Image.MAX_IMAGE_PIXELS} pixels); remove it from the "
                           "data folder")

    def subset(self, indices) -> ImageSet:
        """The images at ``indices`` (a new ImageSet sharing storage)."""
        idx = np.asarray(indices, dtype=np.int64)
        return ImageSet(
            self.name,
            images=self.images[torch.from_numpy(idx)] if self.images is not None else None,
            paths=self.paths.take(idx) if self.paths is not None else None,
            labels=self.labels[idx] if self.labels is not None else None,
            classes=self.classes, skipped=self.skipped, native_size=self.native_size,
            mirror_safe=self.mirror_safe,
            status=(self.status[torch.from_numpy(idx)].clone().share_memory_()
                    if self.status is not None else None))

    def head(self, n: int | None) -> ImageSet:
        """The first ``n`` images (all when ``n`` is None or larger than the set)."""
        return self if n is None or n >= len(self) else self.subset(np.arange(n))


def seeded_split(n: int, split: str, seed: int = 0, test_fraction: float = 0.2) -> np.ndarray:
    """Indices of ``split`` (train/test/all) in a fixed, seeded permutation of ``n`` items."""
    perm = np.random.default_rng(seed).permutation(n)
    n_test = max(1, int(round(n * test_fraction))) if n > 1 else 0
    return {"test": perm[:n_test], "train": perm[n_test:], "all": perm}[split]
