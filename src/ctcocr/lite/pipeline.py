"""From prepared lines or image files to readings, whatever runs the network: lines of similar
width are batched together, files are read and prepared in a thread while the network runs,
several batches may run at once (``workers``), and the results come back in the input order."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ctcocr.lite.files import Prediction, read_line
from ctcocr.lite.preprocess import PreparedLine, pad_batch, preprocessing_settings, width_batches

#: Lines read ahead per chunk, in batches: a chunk is sorted by width before batching, and the
#: next chunk is read while this one runs.
CHUNK_BATCHES = 8


class Reading(NamedTuple):
    """One line's reading."""

    text: str
    confidence: float
    """P(text | image) summed over all alignments, exp(-CTC(text))."""
    spans: list[tuple[float, float]] | None = None
    """Per character (x_start, x_end) in pixels (of the network's input, when returned by a
    :data:`BatchReader`; of the original image, when returned by :func:`read_lines`)."""


#: Reads one batch: images (B, 1, H, W) float32, true widths (B,) int64 and whether to locate
#: characters -> one :class:`Reading` per image, spans in network-input pixels.
BatchReader = Callable[[np.ndarray, np.ndarray, bool], list[Reading]]


def read_lines(lines: Sequence[PreparedLine], read_batch: BatchReader, batch_size: int = 32,
               spans: bool = False, workers: int = 1) -> list[Reading]:
    """Read prepared lines in batches of similar width, ``workers`` batches at a time (threads:
    for a ``read_batch`` that releases the GIL while its network runs, one batch's decoding then
    overlaps another's network); readings in the order of ``lines``, spans in the original
    images' pixels."""

    def read(indices: list[int]) -> list[Reading]:
        images, widths = pad_batch([lines[index].pixels for index in indices])
        return read_batch(images, widths, spans)

    batches = width_batches([line.pixels.shape[-1] for line in lines], batch_size)
    readings: list[Reading | None] = [None] * len(lines)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ctcocr-batch") as pool:
        for indices, batch_readings in zip(batches, pool.map(read, batches)):
            for index, reading in zip(indices, batch_readings):
                scale = lines[index].scale
                pixels = None if reading.spans is None else [(x0 * scale, x1 * scale)
                                                             for x0, x1 in reading.spans]
                readings[index] = reading._replace(spans=pixels)
    return readings  # type: ignore[return-value]


def _read_chunk(paths: Sequence[Path], preprocessing: Mapping[str, Any]
                ) -> list[PreparedLine | str]:
    """Each file's prepared line, or the message saying why it could not be read."""
    loaded: list[PreparedLine | str] = []
    for path in paths:
        try:
            loaded.append(read_line(path, preprocessing))
        except ValueError as error:
            loaded.append(str(error))
    return loaded


def predict_files(paths: Sequence[Path], preprocessing: Mapping[str, Any],
                  read_batch: BatchReader, batch_size: int = 32, spans: bool = False,
                  workers: int = 1) -> Iterator[Prediction]:
    """One :class:`~ctcocr.lite.files.Prediction` per file, in the order of ``paths``; a file that
    cannot be read gives one with ``error`` set. Files are read and prepared (``preprocessing``:
    the arguments of :func:`~ctcocr.lite.preprocess.prepare_line`) in a thread, a chunk ahead;
    ``workers`` batches run at once (:func:`read_lines`)."""
    preprocessing = preprocessing_settings(preprocessing)
    size = CHUNK_BATCHES * batch_size
    chunks = [paths[start : start + size] for start in range(0, len(paths), size)]
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ctcocr-read") as pool:
        pending = pool.submit(_read_chunk, chunks[0], preprocessing) if chunks else None
        for number, chunk in enumerate(chunks):
            loaded = pending.result()
            if number + 1 < len(chunks):
                pending = pool.submit(_read_chunk, chunks[number + 1], preprocessing)
            good = [index for index, item in enumerate(loaded) if not isinstance(item, str)]
            readings = iter(read_lines([loaded[index] for index in good], read_batch, batch_size,
                                       spans, workers))
            for path, item in zip(chunk, loaded):
                if isinstance(item, str):
                    yield Prediction(str(path), error=item)
                else:
                    reading = next(readings)
                    yield Prediction(str(path), reading.text, reading.confidence, reading.spans)
