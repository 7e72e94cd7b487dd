"""Saving and reusing pretrained models, with the config that made them.

A model is saved as `NAME.keras` (Keras 3's format) next to `NAME.json`, which records
the settings it was trained with. A later run reuses the model only when that record
matches its own settings, so a number is always traced to the run that made it.
Files are written under a temporary name and renamed, so a crash never leaves a
half-written model behind.
"""

import json
import os
import zipfile

import keras

from common.errors import UserInputError, brief
from common.files import atomic_save, atomic_write_text
from common.lesson.transfer import output_layer


def record_path(model_path: str) -> str:
    """The JSON record beside a saved model."""
    return os.path.splitext(model_path)[0] + ".json"


def save_model(model: keras.Model, path: str, record: dict) -> None:
    """Saves `model` to `path` (.keras) and `record` beside it, each atomically, with
    the precision it trained in (--precision)."""
    atomic_save(path, model.save)
    record = {**record, "precision": keras.config.dtype_policy().name}
    atomic_write_text(record_path(path), json.dumps(record, indent=2) + "\n")
    print(f"  saved {path}")


def load_model(path: str, flag: str = "--base-file",
               input_shape: tuple[int, ...] | None = None) -> keras.Model:
    """Loads a saved model (.keras, or a legacy .h5 from the lecture's code).

    Args:
        path: the file.
        flag: the command-line flag that named it, for errors.
        input_shape: the shape of one input the model must accept, if any.

    Raises:
        FileNotFoundError: no file at `path`.
        UserInputError: not a readable Keras model (truncated, corrupt), another input
            shape, or no Dense output layer.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{flag} {path}: no such file")
    try:
        model = keras.models.load_model(path, compile=False)
    # Keras and h5py raise many types for a damaged file; name the file and move on.
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile, EOFError) as error:
        first_line = brief(error, 160)
        raise UserInputError(f"{flag} {path}: not a readable Keras model ({type(error).__name__}: "
                             f"{first_line}); delete it or use another file") from error
    if not isinstance(model, keras.Model) or not model.inputs:
        raise UserInputError(f"{flag} {path}: holds no built Keras model")
    if input_shape is not None and tuple(model.inputs[0].shape[1:]) != tuple(input_shape):
        raise UserInputError(f"{flag} {path}: takes inputs of shape "
                             f"{tuple(model.inputs[0].shape[1:])}, expected {tuple(input_shape)}")
    try:
        output_layer(model)
    except ValueError as error:
        raise UserInputError(f"{flag} {path}: {error}") from error
    return model


def load_if_matching(path: str, record: dict) -> keras.Model | None:
    """The model at `path` if its saved record equals `record` and it trained in the
    precision in force now (models saved before --precision existed: float32), else None."""
    try:
        with open(record_path(path)) as file:
            saved = json.load(file)
    except (OSError, json.JSONDecodeError):
        return None
    same_precision = saved.get("precision", "float32") == keras.config.dtype_policy().name
    if saved.get("config") != record.get("config") or not same_precision:
        return None
    if not os.path.isfile(path):
        return None
    return load_model(path, "saved model")


def reusable_model(path: str, record: dict, given: bool, retrain: bool,
                   input_shape: tuple[int, ...] | None = None) -> keras.Model | None:
    """A pretrained model that saves training, or None: the file the user named (`given`,
    --base-file, which must take `input_shape`), else the saved model at `path` if it was
    trained with `record`'s settings (never with `retrain`)."""
    if given:
        return load_model(path, "--base-file", input_shape)
    model = None if retrain else load_if_matching(path, record)
    if model is not None:
        print(f"  reusing {path} (trained with the same settings; --retrain to redo it)")
    return model
