"""Your own data: train/val layouts, --val-data, the cached folder index (also across DDP
ranks), and images checked when first decoded (corrupt ones skipped and counted, bombs
refused)."""

from __future__ import annotations

import builtins
import io
import json
import os
import shutil
import struct

import numpy as np
import pytest
import torch
from PIL import Image
from test_train_fixtures import run_inprocess

from edgessl.data import eval_loader, open_dataset, set_epoch, ssl_loader
from edgessl.data.index import PROBES, index_path, open_index
from edgessl.errors import BadInput

CLASSES = ("bird", "cat", "dog")
SIZES = ((40, 30), (64, 48), (36, 56), (48, 48))


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    """Indexes and locks go to a fresh cache folder per test ($EDGESSL_CACHE)."""
    monkeypatch.setenv("EDGESSL_CACHE", str(tmp_path / "cache"))


def jpeg(path, seed: int, size=(48, 48)) -> None:
    """A smooth colour image (class-dependent hue), saved as JPEG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    w, h = size
    y, x = np.mgrid[0:h, 0:w] / max(w, h)
    colour = rng.uniform(40, 215, 3)
    img = colour + 40 * np.sin(6 * (x + y))[..., None] + rng.normal(0, 8, (h, w, 3))
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(path, quality=90)


def imagenet_tree(root, per_class=(8, 3)):
    """DATA/train/<class>/*.jpg and DATA/val/<class>/*.jpg of several sizes, plus one corrupt
    JPEG and one non-image file in each split. Returns {split: readable image count}."""
    counts = {}
    for split, n in zip(("train", "val"), per_class, strict=True):
        for c, name in enumerate(CLASSES):
            for i in range(n):
                jpeg(root / split / name / f"{i}.jpg", 100 * c + i + 7 * len(split),
                     SIZES[i % len(SIZES)])
        (root / split / CLASSES[0] / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
        (root / split / CLASSES[1] / "notes.txt").write_text("not an image")
        counts[split] = n * len(CLASSES)
    return counts


class OpenRecorder:
    """Records every file or folder opened (open, os.open, os.scandir, PIL) under ``root``."""

    def __init__(self, monkeypatch, root):
        self.root, self.seen = str(root), []
        for owner, name in ((builtins, "open"), (io, "open"), (os, "open"), (os, "scandir"),
                            (Image, "open")):
            monkeypatch.setattr(owner, name, self._wrap(getattr(owner, name)))

    def _wrap(self, fn):
        def recorded(path, *args, **kwargs):
            if isinstance(path, (str, os.PathLike)) and os.fspath(path).startswith(self.root):
                self.seen.append(os.fspath(path))
            return fn(path, *args, **kwargs)

        return recorded


TRAIN = ("--batch-size", "8", "--resolution", "32", "--num-sampled", "1", "--workers", "0",
         "--device", "cpu", "--max-steps", "2")
SEARCH = ("--population", "4", "--generations", "1", "--proxy-bank", "12", "--proxy-val", "6",
          "--device", "cpu", "--budget-mflops", "600")


def test_train_val_layout_through_the_cli(tmp_path, monkeypatch):
    """Acceptance 1: train reads only train/ (no val/ file opened), eval scores on the
    readable val/ images, search's kNN proxy works on train/ and never opens val/; the same
    with --val-data naming the validation folder."""
    data = tmp_path / "DATA"
    counts = imagenet_tree(data)
    recorder = OpenRecorder(monkeypatch, data / "val")
    code, out, err = run_inprocess("train", "--data", data, *TRAIN, "--out", tmp_path / "RUN",
                                   "--json")
    assert code == 0, err
    assert recorder.seen == []
    summary = json.loads(out)
    assert summary["train_images"] == counts["train"] and summary["skipped_images"] == 1

    code, out, err = run_inprocess("search", "--supernet", tmp_path / "RUN" / "last.ckpt",
                                   "--data", data, *SEARCH, "--no-held-out",
                                   "--out", tmp_path / "S")
    assert code == 0, err
    assert recorder.seen == []
    assert "- proxy: kNN vote share" in (tmp_path / "S" / "report.md").read_text()
    # by default the pick is then scored once on val/ (reported, never used to choose)
    code, out, err = run_inprocess("search", "--supernet", tmp_path / "RUN" / "last.ckpt",
                                   "--data", data, *SEARCH, "--json", "--out", tmp_path / "S1")
    assert code == 0, err
    assert json.loads(out)["held_out"]["test_size"] == counts["val"]
    recorder.seen = []

    code, out, err = run_inprocess("eval", tmp_path / "RUN" / "last.ckpt", "--data", data,
                                   "--arch", "smallest", "--device", "cpu", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["test_size"] == result["test_total"] == counts["val"]
    assert result["bank_size"] == counts["train"] and result["skipped_images"] == 2

    # the same with an explicit validation folder elsewhere
    val = tmp_path / "elsewhere"
    shutil.copytree(data / "val", val)
    recorder.root, recorder.seen = str(val), []
    code, out, err = run_inprocess("search", "--supernet", tmp_path / "RUN" / "last.ckpt",
                                   "--data", data / "train", "--val-data", val, *SEARCH,
                                   "--no-held-out", "--out", tmp_path / "S2")
    assert code == 0, err
    assert recorder.seen == []
    assert "- proxy: kNN vote share" in (tmp_path / "S2" / "report.md").read_text()
    code, out, err = run_inprocess("eval", tmp_path / "RUN" / "last.ckpt", "--data",
                                   data / "train", "--val-data", val, "--arch", "smallest",
                                   "--device", "cpu", "--protocol", "knn", "--json")
    assert code == 0, err
    assert json.loads(out)["test_size"] == counts["val"]
    assert json.loads(out)["bank_size"] == counts["train"]  # all of train/: no 80/20 split


def test_splits_of_each_layout(tmp_path):
    data = tmp_path / "DATA"
    counts = imagenet_tree(data)
    train, test = open_dataset(str(data), "train"), open_dataset(str(data), "test")
    assert len(train) == counts["train"] and len(test) == counts["val"]
    assert train.classes == test.classes == list(CLASSES)
    assert all("/train/" in str(p) for p in train.paths)
    assert all("/val/" in str(p) for p in test.paths)
    assert sorted(np.bincount(test.labels).tolist()) == [3, 3, 3]
    # every split is a fixed permutation: the same twice, not in sorted order
    assert [str(p) for p in open_dataset(str(data), "train").paths] == [str(p) for p in
                                                                       train.paths]
    assert [str(p) for p in train.paths] != sorted(str(p) for p in train.paths)
    assert len(open_dataset(str(data), "all")) == counts["train"] + counts["val"]
    # test/ instead of val/ is a split layout too
    os.rename(data / "val", data / "test")
    assert len(open_dataset(str(data), "test")) == counts["val"]
    # the labelled train/ folder alone is an ordinary labelled folder: a seeded 80/20 split
    assert len(open_dataset(str(data / "train"), "test")) == round(0.2 * counts["train"])


def test_validation_classes_must_exist_in_training(tmp_path):
    data = tmp_path / "DATA"
    imagenet_tree(data)
    jpeg(data / "val" / "zebra" / "0.jpg", 1)
    with pytest.raises(BadInput, match="'zebra'"):
        open_dataset(str(data), "test")
    with pytest.raises(BadInput, match="--val-data .*nowhere"):
        open_dataset(str(data), "test", val_data=str(tmp_path / "nowhere"))


def new_process(monkeypatch) -> None:
    """Forget the indexes this process has read, as a later command would start."""
    import edgessl.data.index

    monkeypatch.setattr(edgessl.data.index, "_OPENED", {})


def test_index_is_cached_and_follows_changes(tmp_path, monkeypatch):
    folder = tmp_path / "imgs"
    for i in range(5):
        jpeg(folder / "a" / f"{i}.jpg", i)
        jpeg(folder / "b" / f"{i}.jpg", 10 + i)
    first = open_index(folder)
    assert not first.cached and index_path(folder).is_file()
    new_process(monkeypatch)
    second = open_index(folder)
    assert second.cached and len(second) == 10 and second.classes == ["a", "b"]
    assert [second.files.relative(i) for i in range(10)] == [first.files.relative(i)
                                                             for i in range(10)]
    assert second.sizes.tolist() == [(folder / first.files.relative(i)).stat().st_size
                                     for i in range(10)]
    jpeg(folder / "b" / "new.jpg", 99)  # a new file changes its folder's time
    third = open_index(folder)
    assert not third.cached and len(third) == 11
    (folder / "a" / "0.jpg").unlink()
    assert len(open_index(folder)) == 10
    new_process(monkeypatch)
    assert open_index(folder).cached and len(open_index(folder)) == 10
    index_path(folder).write_bytes(b"garbage")  # an unreadable cache is rebuilt, not fatal
    new_process(monkeypatch)
    assert not open_index(folder).cached
    new_process(monkeypatch)
    assert open_index(folder).cached


def test_corrupt_images_are_found_when_decoded(tmp_path):
    """More images than the index probes: files that break after indexing are found by the
    loaders, skipped (training batches keep their size) and counted; evaluation drops them."""
    folder = tmp_path / "imgs"
    n = 3 * PROBES
    for i in range(n):
        jpeg(folder / ("a" if i % 2 else "b") / f"{i:03d}.jpg", i)
    images = open_dataset(str(folder), "all")
    assert len(images) == n and images.skipped == 0
    broken = [images.paths[i] for i in (1, 5)]
    for p in broken:
        p.write_bytes(b"\xff\xd8\xff garbage")
    loader = ssl_loader(images, 16, 8, seed=0)
    set_epoch(loader, 0)
    batches = list(loader)
    assert all(b[0].shape == (8, 3, 16, 16) for b in batches)
    assert images.decode_failures == 2
    assert sorted(str(images.paths[i]) for i in (images.status != 0).nonzero()[:, 0]) == \
        sorted(str(p) for p in broken)
    # evaluation marks them (also from worker processes: the status is in shared memory)
    for workers in (0, 2):
        fresh = open_dataset(str(folder), "all")
        seen = sum(len(y) for _, y in eval_loader(fresh, 16, batch_size=10, workers=workers))
        assert seen == n and int(fresh.readable().sum()) == n - 2


def _bomb(path, side: int = 30000) -> None:
    """A small JPEG whose header claims ``side`` x ``side`` pixels."""
    buf = io.BytesIO()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(buf, "JPEG")
    data = bytearray(buf.getvalue())
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", side, side)
    path.write_bytes(bytes(data))


def test_decompression_bomb_is_refused(tmp_path, cli):
    folder = tmp_path / "imgs"
    n = 3 * PROBES
    for i in range(n):
        jpeg(folder / ("a" if i % 2 else "b") / f"{i:03d}.jpg", i)
    images = open_dataset(str(folder), "train")  # indexed (and probed) now, before the bomb
    _bomb(images.paths[1])  # so met while training: the first batch holds every image
    r = cli("train", "--data", folder, *TRAIN, "--batch-size", len(images), "--out",
            tmp_path / "R")
    assert r.code == 2 and len(r.err.strip().splitlines()) == 1, r
    assert str(images.paths[1]) in r.err and "decompression bomb" in r.err
    assert "Traceback" not in r.err
    small = tmp_path / "small"
    for i in range(4):
        jpeg(small / f"{i}.jpg", i)
    _bomb(small / "9.jpg")  # among the probes: refused when the folder is indexed
    with pytest.raises(BadInput, match="9.jpg"):
        open_dataset(str(small))


def _index_rank(rank: int, folder: str, cache: str, port: int, out: str) -> None:
    os.environ.update(EDGESSL_CACHE=cache, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.distributed.init_process_group("gloo", rank=rank, world_size=2)
    index = open_index(folder)
    with open(f"{out}.{rank}", "w") as f:
        f.write(json.dumps({"cached": index.cached, "n": len(index)}))
    torch.distributed.destroy_process_group()


def test_rank_zero_builds_the_index_others_read_it(tmp_path):
    folder = tmp_path / "imgs"
    for i in range(6):
        jpeg(folder / f"{i}.jpg", i)
    port = 29500 + os.getpid() % 1000
    torch.multiprocessing.spawn(_index_rank, (str(folder), str(tmp_path / "cache"), port,
                                              str(tmp_path / "r")), nprocs=2)
    ranks = [json.loads((tmp_path / f"r.{r}").read_text()) for r in (0, 1)]
    assert ranks == [{"cached": False, "n": 6}, {"cached": True, "n": 6}]
