"""From prepared lines or image files to readings, whatever runs the network: lines of similar
width are batched together, files are read and prepared in a thread while the network runs,
several batches may run at once (``workers``), and the results come back in the input order."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ctcocr.lite.files import Prediction, read_line
from ctcocr.lite.preprocess import PreparedLine, pad_batch, preprocessing_settings, width_batches

#: Batches per chunk of files: a chunk is sorted by width before batching. Chunks start at one
#: batch and double up to this, so that the network starts after a batch of files is read.
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


#: Batches queued on a thread pool: each one's line indices and the future of its readings.
Submitted = list[tuple[list[int], Future[list[Reading]]]]


def _submit(pool: ThreadPoolExecutor, lines: Sequence[PreparedLine], read_batch: BatchReader,
            batch_size: int, spans: bool) -> Submitted:
    """Queue the lines' batches of similar width on ``pool``: (line indices, future) per batch."""

    def read(indices: list[int]) -> list[Reading]:
        images, widths = pad_batch([lines[index].pixels for index in indices])
        return read_batch(images, widths, spans)

    batches = width_batches([line.pixels.shape[-1] for line in lines], batch_size)
    return [(indices, pool.submit(read, indices)) for indices in batches]


def _collect(lines: Sequence[PreparedLine], submitted: Submitted) -> list[Reading]:
    """The submitted batches' readings in the order of ``lines``, spans in the original images'
    pixels."""
    readings: list[Reading | None] = [None] * len(lines)
    for indices, future in submitted:
        for index, reading in zip(indices, future.result()):
            scale = lines[index].scale
            pixels = None if reading.spans is None else [(x0 * scale, x1 * scale)
                                                         for x0, x1 in reading.spans]
            readings[index] = reading._replace(spans=pixels)
    return readings  # type: ignore[return-value]


def read_lines(lines: Sequence[PreparedLine], read_batch: BatchReader, batch_size: int = 32,
               spans: bool = False, workers: int = 1) -> list[Reading]:
    """Read prepared lines in batches of similar width, ``workers`` batches at a time (threads:
    for a ``read_batch`` that releases the GIL while its network runs, one batch's decoding then
    overlaps another's network); readings in the order of ``lines``, spans in the original
    images' pixels."""
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ctcocr-batch") as pool:
        return _collect(lines, _submit(pool, lines, read_batch, batch_size, spans))


def chunked(paths: Sequence[Path], batch_size: int) -> list[Sequence[Path]]:
    """``paths`` cut into chunks of 1, 2, 4, ... up to :data:`CHUNK_BATCHES` batches."""
    chunks, start, batches = [], 0, 1
    while start < len(paths):
        chunks.append(paths[start : start + batches * batch_size])
        start += batches * batch_size
        batches = min(2 * batches, CHUNK_BATCHES)
    return chunks


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
    the arguments of :func:`~ctcocr.lite.preprocess.prepare_line`) in a thread, chunk by chunk
    (:func:`chunked`); each chunk's batches are queued for ``workers`` threads as soon as it is
    read, so that the next chunk's batches run while this one's results are given out."""
    preprocessing = preprocessing_settings(preprocessing)
    chunks = chunked(paths, batch_size)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ctcocr-read") as files, \
            ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ctcocr-batch") as pool:
        loading = deque(files.submit(_read_chunk, chunk, preprocessing) for chunk in chunks[:2])
        running: deque[tuple[Sequence[Path], list[PreparedLine | str], list[PreparedLine],
                             Submitted]] = deque()
        for number, chunk in enumerate(chunks):
            loaded = loading.popleft().result()
            if number + 2 < len(chunks):
                loading.append(files.submit(_read_chunk, chunks[number + 2], preprocessing))
            good = [item for item in loaded if not isinstance(item, str)]
            running.append((chunk, loaded, good, _submit(pool, good, read_batch, batch_size,
                                                         spans)))
            if len(running) > 1:
                yield from _predictions(*running.popleft())
        while running:
            yield from _predictions(*running.popleft())


def _predictions(chunk: Sequence[Path], loaded: list[PreparedLine | str],
                 good: list[PreparedLine], submitted: Submitted) -> Iterator[Prediction]:
    """A chunk's predictions in file order: ``loaded`` holds each file's prepared line or error
    message, ``good`` its prepared lines, whose batches were ``submitted``."""
    readings = iter(_collect(good, submitted))
    for path, item in zip(chunk, loaded):
        if isinstance(item, str):
            yield Prediction(str(path), error=item)
        else:
            reading = next(readings)
            yield Prediction(str(path), reading.text, reading.confidence, reading.spans)
