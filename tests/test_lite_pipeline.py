"""Batches run in parallel threads (``workers``) give the same readings, in the input order, as
batches run one after the other."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from ctcocr.lite.pipeline import CHUNK_BATCHES, Reading, chunked, read_lines
from ctcocr.lite.preprocess import PreparedLine


def lines_of_widths(widths: list[int]) -> list[PreparedLine]:
    """Prepared lines whose first pixel encodes their index, 2x scaled back to the file."""
    lines = []
    for index, width in enumerate(widths):
        pixels = np.zeros((4, width), dtype=np.float32)
        pixels[0, 0] = index
        lines.append(PreparedLine(pixels, False, 2.0))
    return lines


def slow_reader(seen_threads: set[str]):
    """A BatchReader that names each line by its index and width, with spans in input pixels;
    narrow batches take longest, so parallel batches finish out of order."""

    def read_batch(images: np.ndarray, widths: np.ndarray, spans: bool) -> list[Reading]:
        seen_threads.add(threading.current_thread().name)
        time.sleep(0.2 / images.shape[-1])
        return [Reading(f"{int(image[0, 0, 0])}:{width}", float(width),
                        [(0.0, float(width))] if spans else None)
                for image, width in zip(images, widths.tolist())]

    return read_batch


@pytest.mark.parametrize("spans", [False, True])
def test_parallel_batches_read_like_sequential_ones_in_input_order(spans):
    widths = [int(w) for w in np.random.default_rng(0).integers(16, 400, size=37)]
    lines = lines_of_widths(widths)
    one_thread: set[str] = set()
    sequential = read_lines(lines, slow_reader(one_thread), batch_size=4, spans=spans)
    many_threads: set[str] = set()
    parallel = read_lines(lines, slow_reader(many_threads), batch_size=4, spans=spans, workers=3)
    assert parallel == sequential
    assert [reading.text for reading in parallel] == [f"{i}:{w}" for i, w in enumerate(widths)]
    if spans:
        assert parallel[5].spans == [(0.0, 2.0 * widths[5])]  # back in the file's pixels
    assert len(one_thread) == 1 and len(many_threads) > 1


def test_chunks_of_files_double_from_one_batch_and_cover_every_path_in_order():
    paths = [Path(f"{index}.png") for index in range(1000)]
    chunks = chunked(paths, batch_size=10)
    assert [len(chunk) for chunk in chunks[:5]] == [10, 20, 40, 80, 80]
    assert max(len(chunk) for chunk in chunks) == 10 * CHUNK_BATCHES
    assert [path for chunk in chunks for path in chunk] == paths
    assert chunked([], batch_size=10) == []
