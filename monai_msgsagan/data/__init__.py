"""Radiograph datalists (folder / CSV), cached datasets, the preprocessed store and procedural chest phantoms."""

from __future__ import annotations

from .datalist import Datalist, DatalistReport, NoUsableImagesError, SkippedItem, build_datalist, make_dataset
from .latents import LatentDataset
from .phantoms import PHANTOM_CLASS_NAMES, PhantomDataset, make_phantom
from .samplers import ClassBalancedSampler
from .sources import TrainingData, real_image_sample, training_data
from .spec import DataSpec
from .store import (
    PreprocessSummary,
    StoreError,
    StoreIncompleteError,
    StoreSettingsError,
    XrayStoreDataset,
    preprocess_store,
)

__all__ = [
    "PHANTOM_CLASS_NAMES",
    "ClassBalancedSampler",
    "DataSpec",
    "LatentDataset",
    "TrainingData",
    "real_image_sample",
    "training_data",
    "Datalist",
    "DatalistReport",
    "NoUsableImagesError",
    "PhantomDataset",
    "PreprocessSummary",
    "StoreError",
    "StoreIncompleteError",
    "StoreSettingsError",
    "XrayStoreDataset",
    "preprocess_store",
    "SkippedItem",
    "build_datalist",
    "make_dataset",
    "make_phantom",
]
