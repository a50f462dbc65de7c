"""LightningDataModules for the study's datasets; `DATAMODULES` maps dataset names to them."""

from datamodules.aircraft import AircraftDataModule
from datamodules.base import DatasetIndex, ImageClassificationDataModule
from datamodules.caltech101 import Caltech101DataModule
from datamodules.cars import CarsDataModule
from datamodules.digits import DigitsDataModule
from datamodules.flowers import FlowersDataModule
from datamodules.from_files import FileImageDataModule
from datamodules.image_folder import ImageFolderDataModule
from datamodules.pets import PetsDataModule
from datamodules.registry import DATAMODULES, register_dataset
from datamodules.ucmerced import UCMercedDataModule

__all__ = [
    "DATAMODULES",
    "AircraftDataModule",
    "Caltech101DataModule",
    "CarsDataModule",
    "DatasetIndex",
    "DigitsDataModule",
    "FileImageDataModule",
    "FlowersDataModule",
    "ImageClassificationDataModule",
    "ImageFolderDataModule",
    "PetsDataModule",
    "UCMercedDataModule",
    "register_dataset",
]
