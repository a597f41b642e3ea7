"""The 8x8 handwritten digits that ship with scikit-learn, a classifier that judges generated digits,
and a picture grid.

``sklearn.datasets.load_digits()`` holds 1,797 grey 8x8 images (pixel values 0-16) of the digits
0-9, about 180 per class, from the UCI "Optical Recognition of Handwritten Digits" set. It is
installed with scikit-learn, so nothing is downloaded. Diffusion models want pixels in [-1, 1]:
:func:`load_split` rescales them and splits off a stratified held-out set that neither the
diffusion model nor the classifier sees in training.

>>> split = load_split()
>>> tuple(split.train_images.shape), tuple(split.test_images.shape)
((1437, 1, 8, 8), (360, 1, 8, 8))
>>> float(split.train_images.min()), float(split.train_images.max())
(-1.0, 1.0)

Taught in: lesson 13 (the data and the judge of generated samples); used by its lab's checks.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .errors import DataError

N_CLASSES = 10
PIXEL_MAX = 16.0  # the data set's pixel values are 0 ... 16


@dataclass(frozen=True)
class DigitSplit:
    """Images (N, 1, 8, 8) as float32 in [-1, 1] and labels (N,) as int64, for training and held out."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor

    def fingerprint(self) -> str:
        """A short hash of the training data (part of a cached model's key)."""
        digest = hashlib.sha1(self.train_images.numpy().tobytes())
        digest.update(self.train_labels.numpy().tobytes())
        return digest.hexdigest()[:10]


def to_model_range(pixels: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Pixel values 0-16 -> [-1, 1]."""
    return torch.as_tensor(np.asarray(pixels, dtype=np.float32)) / (PIXEL_MAX / 2) - 1


def load_split(test_fraction: float = 0.2, seed: int = 0) -> DigitSplit:
    """scikit-learn's digits, scaled to [-1, 1], split into train and held-out sets with every class
    in the same proportion (stratified)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if not 0 < test_fraction < 1:
        raise DataError(f"test_fraction={test_fraction} must be between 0 and 1", fix="use e.g. 0.2")
    digits = load_digits()
    images = to_model_range(digits.images)[:, None]  # (1797, 1, 8, 8)
    labels = torch.as_tensor(digits.target, dtype=torch.long)
    train_idx, test_idx = train_test_split(np.arange(len(labels)), test_size=test_fraction,
                                           stratify=labels.numpy(), random_state=seed)
    train_idx, test_idx = torch.as_tensor(np.sort(train_idx)), torch.as_tensor(np.sort(test_idx))
    return DigitSplit(images[train_idx], labels[train_idx], images[test_idx], labels[test_idx])


# ----------------------------------------------------------------------------- the judge
class DigitClassifier:
    """An RBF support-vector classifier on the 64 pixels: a fast, strong judge of 8x8 digits.

    It scores *generated* digits: "is this a 3?" for a sample that was asked to be a 3.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        from sklearn.svm import SVC

        if len(images) != len(labels) or len(images) == 0:
            raise DataError(f"{len(images)} images but {len(labels)} labels", fix="pass one label per image")
        self.model = SVC(gamma="scale", C=10.0).fit(_flat(images), np.asarray(labels))

    def predict(self, images: torch.Tensor | np.ndarray) -> np.ndarray:
        """The predicted digit of each image (any values; clipped to the data range [-1, 1] first)."""
        return self.model.predict(np.clip(_flat(images), -1, 1))

    def accuracy(self, images: torch.Tensor | np.ndarray, labels: Sequence[int] | torch.Tensor) -> float:
        """Fraction of images classified as their label (for samples: the requested class)."""
        return float(np.mean(self.predict(images) == np.asarray(labels)))


def _flat(images: torch.Tensor | np.ndarray) -> np.ndarray:
    array = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    return array.reshape(len(array), -1).astype(np.float64)


def nearest_train_distance(images: torch.Tensor, train_images: torch.Tensor) -> torch.Tensor:
    """Euclidean distance from each image to its closest training image (small = a near copy)."""
    return torch.cdist(images.reshape(len(images), -1), train_images.reshape(len(train_images), -1)).min(dim=1).values


def class_spread(images: torch.Tensor, labels: Sequence[int] | torch.Tensor) -> float:
    """Variety: the mean Euclidean distance between two images of the same class, averaged over classes.

    0 means every image of a class is the same; real held-out digits give the reference.

    >>> same = torch.zeros(4, 1, 8, 8)
    >>> class_spread(same, [0, 0, 1, 1])
    0.0
    """
    flat, labels = images.reshape(len(images), -1).float(), torch.as_tensor(labels)
    per_class = [torch.pdist(flat[labels == c]).mean().item() for c in labels.unique().tolist() if int((labels == c).sum()) > 1]
    return float(np.mean(per_class)) if per_class else float("nan")


def per_class_accuracy(predicted: Sequence[int] | np.ndarray, wanted: Sequence[int] | np.ndarray) -> list[float]:
    """Accuracy for each requested class 0-9.

    >>> per_class_accuracy([0, 1, 1], [0, 1, 0])[:2]
    [0.5, 1.0]
    """
    predicted, wanted = np.asarray(predicted), np.asarray(wanted)
    return [float(np.mean(predicted[wanted == c] == c)) if np.any(wanted == c) else float("nan") for c in range(N_CLASSES)]


# ----------------------------------------------------------------------------- pictures
def show_grid(images: torch.Tensor, titles: Sequence[str] | None = None, columns: int = 10, title: str = "",
              ax_size: float = 0.8) -> Any:
    """Draw images (N, 1, 8, 8) in [-1, 1] as a grid of grey pictures; returns the figure."""
    import matplotlib.pyplot as plt

    n = len(images)
    rows = max(1, math.ceil(n / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(columns * ax_size, rows * ax_size * (1.35 if titles else 1.0)), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(images[i].reshape(8, 8).detach().cpu().clamp(-1, 1).numpy(), cmap="gray_r", vmin=-1, vmax=1)
            if titles:
                ax.set_title(titles[i], fontsize=7)
    if title:
        fig.suptitle(title, fontweight="bold")
    fig.tight_layout()
    return fig
