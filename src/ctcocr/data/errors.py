"""The errors that bad input data raises; entry points print them in one line, without a traceback."""

from __future__ import annotations


class DatasetError(Exception):
    """Bad or missing input data; the message names the path, line or sample and fits on one line.

    A DataLoader worker's error reaches the main process re-raised with the worker's traceback in
    its message; that form is cut back to the original one-line message.
    """

    def __init__(self, message: str):
        if "\nOriginal Traceback" in message:
            message = message.rstrip().rsplit("\n", 1)[-1].split(": ", 1)[-1]
        super().__init__(message)


class BadImageError(DatasetError):
    """An image that is missing, truncated or not an image."""


class BadLabelError(DatasetError):
    """A label that cannot be read (a missing LMDB label key, bytes that are not UTF-8); the
    message names the sample."""
