"""Deterministic loading: the data order is a function of (seed, epoch) and each sample's
augmentation of (seed, epoch, index), so a resumed run sees exactly the batches it would have
seen, with any number of workers, and each DDP rank reads its own shard.

Unreadable images (found when first decoded, :mod:`edgessl.data.images`) are skipped: a
training batch takes the next readable image in its place (same size every step), an
evaluation batch marks it so its row is dropped; a decompression bomb is refused in the main
process, one line naming the file."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from edgessl.data.images import ImageSet, UnreadableImage
from edgessl.data.transforms import (
    LOCAL_MIN_SCALE,
    TwoViews,
    eval_transform,
    local_resolution,
    ssl_augment,
)
from edgessl.errors import RuntimeFailure

SEED_SPACE = 2**64  # torch.manual_seed takes seeds below this


def image_seed(seed: int, epoch: int, index: int) -> int:
    """The augmentation seed of image ``index`` in ``epoch`` (any seed torch accepts)."""
    return ((seed * 1_000_003 + epoch) * 10_000_019 + index) % SEED_SPACE


def _readable(images: ImageSet, i: int) -> torch.Tensor:
    """Image ``i``, or the next readable one after it when it cannot be decoded."""
    n = len(images)
    for step in range(n):
        try:
            return images.image((i + step) % n)
        except UnreadableImage:
            continue
    raise RuntimeFailure(f"no image of {images.name} can be decoded")


class CheckedLoader(DataLoader):
    """A DataLoader over an :class:`ImageSet` that refuses, in the main process, a
    decompression bomb that a worker met (workers mark it; their exceptions would arrive as
    tracebacks)."""

    def __iter__(self):
        images = self.dataset.images
        for batch in super().__iter__():
            images.check_bombs()
            yield batch


@contextmanager
def _one_thread() -> Iterator[None]:
    """Per-image transforms are tiny ops: extra intra-op threads only add overhead."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


class TwoViewBatches(Dataset):
    """Key (epoch, indices) -> stacked (views1, views2, *local views); image ``i`` is augmented
    under a seed derived from (seed, epoch, i), so the result does not depend on workers or
    resumption."""

    def __init__(self, images: ImageSet, views: TwoViews, seed: int = 0):
        self.images, self.views, self.seed = images, views, seed

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, key: tuple[int, list[int]]) -> tuple[torch.Tensor, ...]:
        epoch, indices = key
        per_image = []
        with torch.random.fork_rng(devices=[]), _one_thread():
            for i in indices:
                torch.manual_seed(image_seed(self.seed, epoch, int(i)))
                per_image.append(self.views(_readable(self.images, int(i))))
        return tuple(torch.stack(views) for views in zip(*per_image, strict=True))


class EvalBatches(Dataset):
    """Key (list of indices) -> (images, labels) with the deterministic evaluation transform;
    label -1 when unlabelled. In-memory images of one size are transformed as one batch; an
    unreadable image gives a blank one, marked in ``images.status`` (drop its row)."""

    def __init__(self, images: ImageSet, resolution: int):
        self.images, self.transform = images, eval_transform(resolution)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        imgs = self.images
        labels = (torch.as_tensor(imgs.labels[indices]) if imgs.labels is not None
                  else torch.full((len(indices),), -1, dtype=torch.long))
        with _one_thread():
            if imgs.images is not None:
                batch = imgs.images[torch.as_tensor(indices)]
                batch = batch.expand(-1, 3, -1, -1) if batch.shape[1] == 1 else batch
                return self.transform(batch), labels
            return torch.stack([self.transform(self._image(i)) for i in indices]), labels

    def _image(self, i: int) -> torch.Tensor:
        try:
            return self.images.image(i)
        except UnreadableImage:
            return torch.zeros(3, 32, 32, dtype=torch.uint8)


class EpochBatches(Sampler[tuple[int, list[int]]]):
    """Batches of a seeded per-epoch permutation; rank ``r`` of ``world`` takes every
    ``world``-th batch slot. ``start`` skips the batches a resumed run already trained on."""

    def __init__(self, n: int, batch_size: int, seed: int, rank: int = 0, world: int = 1):
        self.n, self.batch_size, self.seed, self.rank, self.world = n, batch_size, seed, rank, world
        self.epoch, self.start = 0, 0

    def __len__(self) -> int:
        return max(0, self.n // (self.batch_size * self.world) - self.start)

    @property
    def per_epoch(self) -> int:
        return self.n // (self.batch_size * self.world)

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = epoch, start

    def __iter__(self) -> Iterator[tuple[int, list[int]]]:
        g = torch.Generator().manual_seed((self.seed * 1_000_003 + self.epoch) % SEED_SPACE)
        perm = torch.randperm(self.n, generator=g)
        steps = self.per_epoch
        grid = perm[:steps * self.world * self.batch_size].view(steps, self.world, -1)
        for b in range(self.start, steps):
            yield self.epoch, grid[b, self.rank].tolist()


def ssl_loader(images: ImageSet, resolution: int, batch_size: int, seed: int,
               workers: int = 0, rank: int = 0, world: int = 1,
               min_scale: float = 0.2, local_crops: int = 0,
               local_res: int | None = None, flip: bool | None = None) -> DataLoader:
    """A loader of (views1, views2, *local views) batches: two global crops of at least
    ``min_scale`` of the image area, and ``local_crops`` crops of 0.05..``min_scale`` at
    ``local_res`` px (default :func:`local_resolution`); call :func:`set_epoch` before
    iterating each epoch. ``flip`` (default: whether the set is ``mirror_safe``) turns random
    horizontal flips on or off."""
    flip = images.mirror_safe if flip is None else flip
    local = None
    if local_crops:
        local = ssl_augment(local_res or local_resolution(resolution), images.native_size,
                            LOCAL_MIN_SCALE, max_scale=min_scale, flip=flip)
    views = TwoViews(ssl_augment(resolution, images.native_size, min_scale, flip=flip),
                     local=local, n_local=local_crops)
    ds = TwoViewBatches(images, views, seed)
    sampler = EpochBatches(len(images), batch_size, seed, rank, world)
    return CheckedLoader(ds, sampler=sampler, batch_size=None, num_workers=workers,
                         persistent_workers=workers > 0, pin_memory=torch.cuda.is_available())


def set_epoch(loader: DataLoader, epoch: int, start: int = 0) -> None:
    """Position ``loader`` at batch ``start`` of ``epoch`` (deterministic order and views)."""
    loader.sampler.set_epoch(epoch, start)


def eval_loader(images: ImageSet, resolution: int, batch_size: int = 256,
                workers: int = 0, pin_memory: bool = False) -> DataLoader:
    """A fixed-order loader of (image, label) batches for feature extraction; ``workers``
    processes decode and transform ahead of the model."""
    batches = [list(range(i, min(i + batch_size, len(images))))
               for i in range(0, len(images), batch_size)]
    return CheckedLoader(EvalBatches(images, resolution), sampler=batches, batch_size=None,
                         num_workers=workers, pin_memory=pin_memory,
                         prefetch_factor=4 if workers else None)


def eval_tensors(images: ImageSet, resolution: int) -> tuple[torch.Tensor, torch.Tensor]:
    """All of ``images`` preprocessed as :func:`eval_loader` does, as one image tensor and one
    (int64) label tensor: for sets small enough to score many networks on."""
    xs, ys = zip(*eval_loader(images, resolution), strict=True)
    return torch.cat(xs), torch.cat([torch.as_tensor(y) for y in ys]).long()
