"""Dataset name -> DataModule class. Names equal the `dataset` column of paper_results.csv."""

from __future__ import annotations

from modules.registry import Registry

DATAMODULES: Registry[type] = Registry("dataset")


def register_dataset(name: str):
    """Class decorator: register a DataModule under `name` and record the name on the class."""

    def add(cls: type) -> type:
        cls.dataset_name = name
        return DATAMODULES.register(name)(cls)

    return add


def class_path(name: str) -> str:
    cls = DATAMODULES.get(name)
    return f"{cls.__module__}.{cls.__qualname__}"
