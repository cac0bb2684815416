"""Data: built-in sets, folders (labelled, unlabelled, corrupt), splits, deterministic views."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from edgessl.data import EpochBatches, eval_split, open_dataset, ssl_loader
from edgessl.data.loaders import set_epoch
from edgessl.data.transforms import blur_params, local_resolution, ssl_augment
from edgessl.errors import BadInput


def _png(path, value: int, size: int = 12) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size, size, 3), value, dtype=np.uint8)).save(path)


def test_digits_split_is_fixed_and_disjoint():
    train, test = open_dataset("digits", "train"), open_dataset("digits", "test")
    assert len(train) + len(test) == 1797 and len(test) == 359
    assert train.image(0).shape == (3, 8, 8) and train.image(0).dtype == torch.uint8
    again = open_dataset("digits", "test")
    assert torch.equal(again.images, test.images)
    bank, held = eval_split("digits", bank_size=100, test_size=50)
    assert len(bank) == 100 and len(held) == 50 and bank.labelled


def test_labelled_folder_skips_corrupt(tmp_path):
    for c in ("cat", "dog"):
        for i in range(5):
            _png(tmp_path / c / f"{i}.png", 40 * i)
    (tmp_path / "dog" / "bad.jpg").write_bytes(b"not an image")
    full = open_dataset(str(tmp_path), "all")
    assert len(full) == 10 and full.skipped == 1
    assert full.classes == ["cat", "dog"] and sorted(set(full.labels.tolist())) == [0, 1]
    train, test = open_dataset(str(tmp_path), "train"), open_dataset(str(tmp_path), "test")
    assert len(train) == 8 and len(test) == 2


def test_unlabelled_recursive_folder(tmp_path):
    _png(tmp_path / "a.png", 10)
    _png(tmp_path / "x" / "y" / "b.bmp", 20)
    Image.fromarray(np.zeros((9, 9, 3), np.uint8)).save(tmp_path / "c.webp")
    images = open_dataset(str(tmp_path), "all")
    assert len(images) == 3 and not images.labelled
    with pytest.raises(BadInput, match="no labels"):
        eval_split(str(tmp_path))


@pytest.mark.parametrize("case", ["missing", "empty", "corrupt"])
def test_bad_folders_are_refused(tmp_path, case):
    path = tmp_path / "d"
    if case != "missing":
        path.mkdir()
    if case == "corrupt":
        for i in range(3):
            (path / f"{i}.png").write_bytes(b"\x89PNG garbage")
    with pytest.raises(BadInput, match=str(path)):
        open_dataset(str(path))


def test_views_are_a_function_of_seed_epoch_and_index():
    images = open_dataset("digits", "train").head(64)
    loader = ssl_loader(images, 16, 8, seed=1)
    set_epoch(loader, 0)
    first = list(loader)
    set_epoch(loader, 0, start=2)
    resumed = list(loader)
    assert len(first) == 8 and len(resumed) == 6
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
               for a, b in zip(first[2:], resumed, strict=True))
    assert not torch.equal(first[0][0], first[0][1])  # two different views
    set_epoch(loader, 1)
    assert not torch.equal(next(iter(loader))[0], first[0][0])
    assert first[0][0].shape == (8, 3, 16, 16)


def test_ranks_read_disjoint_shards():
    shards = []
    for rank in range(2):
        s = EpochBatches(40, 5, seed=0, rank=rank, world=2)
        s.set_epoch(3)
        shards.append({i for _, b in s for i in b})
    assert len(shards[0]) == len(shards[1]) == 20 and not shards[0] & shards[1]


def test_blur_scales_with_resolution():
    assert blur_params(224) == (23, (0.1, 2.0))
    k, (_, hi) = blur_params(32, native_size=28)
    assert k == 3 and hi < 1.0


def test_min_scale_bounds_the_crop():
    """A half-dark, half-bright image: crops of the whole area always show both halves, tiny
    crops often fall inside one half (a flat view). The loader passes ``min_scale`` on."""
    img = torch.zeros(3, 32, 32, dtype=torch.uint8)
    img[:, :, 16:] = 255
    torch.manual_seed(0)
    flat = {s: sum(float(ssl_augment(32, 32, min_scale=s)(img).std()) < 0.5 for _ in range(60))
            for s in (1.0, 0.02)}
    assert flat[1.0] == 0 and flat[0.02] >= 5
    loader = ssl_loader(open_dataset("digits", "train").head(16), 16, 8, seed=0, min_scale=0.5)
    assert loader.dataset.views.first.transforms[0].scale == (0.5, 1.0)


def test_local_crops_follow_the_global_views():
    """``local_crops`` appends small views (0.05..min_scale of the area, DINO's 96/224 side by
    default) after the two global ones, which stay exactly what they were without them."""
    images = open_dataset("digits", "train").head(16)
    plain = ssl_loader(images, 48, 8, seed=3, min_scale=0.4)
    multi = ssl_loader(images, 48, 8, seed=3, min_scale=0.4, local_crops=3)
    for loader in (plain, multi):
        set_epoch(loader, 0)
    a, b = next(iter(plain)), next(iter(multi))
    assert len(a) == 2 and len(b) == 5
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert [tuple(v.shape) for v in b[2:]] == [(8, 3, 24, 24)] * 3
    assert not torch.equal(b[2], b[3])
    assert multi.dataset.views.local.transforms[0].scale == (0.05, 0.4)
    custom = ssl_loader(images, 48, 8, seed=3, local_crops=1, local_res=16)
    set_epoch(custom, 0)
    assert next(iter(custom))[2].shape == (8, 3, 16, 16)
    assert local_resolution(224) == 96 and local_resolution(32) == 16


@pytest.mark.parametrize("resolution", [32, 128, 224])
def test_fast_blur_equals_torchvision(resolution):
    """Same random sigma, same result as torchvision's 2-D convolution up to rounding."""
    from torchvision.transforms import v2

    from edgessl.data.transforms import GaussianBlur

    kernel, sigma = blur_params(resolution)[0], (1.0, 2.0)
    img = torch.randint(0, 256, (3, resolution, resolution - 8), dtype=torch.uint8,
                        generator=torch.Generator().manual_seed(resolution))
    outs = []
    for blur in (GaussianBlur(kernel, sigma), v2.GaussianBlur(kernel, sigma)):
        torch.manual_seed(0)
        outs.append(blur(img))
    diff = (outs[0].int() - outs[1].int()).abs()
    assert outs[0].dtype == torch.uint8 and int(diff.max()) <= 1
    assert float(diff.float().mean()) < 0.05
    assert float((outs[0].float() - img.float()).abs().mean()) > 5  # it did blur


def test_colour_jitter_through_pil_matches_torchvision():
    """The same random factors as torchvision's ColorJitter on tensors; PIL's uint8 kernels
    round differently by a few levels at most."""
    from torchvision.transforms import v2

    from edgessl.data.transforms import ColorJitter

    img = torch.randint(0, 256, (3, 40, 40), dtype=torch.uint8,
                        generator=torch.Generator().manual_seed(0))
    for seed in range(5):
        outs = []
        for jitter in (ColorJitter(0.4, 0.4, 0.2, 0.1), v2.ColorJitter(0.4, 0.4, 0.2, 0.1)):
            torch.manual_seed(seed)
            outs.append(jitter(img).int())
        diff = (outs[0] - outs[1]).abs().float()
        assert diff.mean() < 1.5 and diff.max() <= 16
        assert (outs[0] - img.int()).abs().float().mean() > 3  # it did jitter


def test_path_list_is_compact_and_exact(tmp_path):
    from edgessl.data.images import ImageSet, PathList

    names = ["a/1.jpg", "b/ü 2.png", "c/d/3.webp"]
    paths = PathList.from_strings(tmp_path, names)
    assert [str(p) for p in paths] == [str(tmp_path / n) for n in names]
    assert [p.name for p in paths.take([2, 0])] == ["3.webp", "1.jpg"]
    both = PathList.concat([paths, PathList.from_strings(tmp_path / "x", ["y.jpg"])])
    assert len(both) == 4 and str(both[3]) == str((tmp_path / "x" / "y.jpg").resolve())
    legacy = ImageSet("x", paths=[tmp_path / n for n in names])  # plain lists still work
    assert isinstance(legacy.paths, PathList) and legacy.paths[1].name == "ü 2.png"
