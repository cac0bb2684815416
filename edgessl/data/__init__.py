"""Data: built-in sets and image folders, fixed splits, two-view augmentation, loaders.

>>> from edgessl.data import open_dataset, eval_split
>>> train = open_dataset("digits", "train")          # ImageSet: .image(i), .labels
>>> bank, test = eval_split("digits")                 # fixed labelled split for kNN/linear
>>> val = open_dataset("DATA", "test")                # DATA/val/ of a DATA/train + DATA/val tree
"""

from edgessl.data.loaders import EpochBatches, eval_loader, eval_tensors, set_epoch, ssl_loader
from edgessl.data.sources import BUILTINS, ImageSet, eval_split, open_dataset
from edgessl.data.transforms import TwoViews, eval_transform, ssl_augment

__all__ = ["BUILTINS", "EpochBatches", "ImageSet", "TwoViews", "eval_loader", "eval_split",
           "eval_tensors", "eval_transform", "open_dataset", "set_epoch", "ssl_augment",
           "ssl_loader"]
