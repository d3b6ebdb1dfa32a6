"""Reading the TextLines of PAGE and ALTO files: each line is cut from its page image as training
cuts it (:class:`~ctcocr.data.line_cut.LineCutter`), read, and optionally written back into a
copy of the XML (:mod:`ctcocr.recognition.xml_output`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from ctcocr.data.errors import DatasetError
from ctcocr.data.line_cut import LineCutter
from ctcocr.data.xml_reader import XmlFormat, load_page_image, read_layout
from ctcocr.lite.files import Prediction
from ctcocr.lite.pipeline import Reading, read_lines
from ctcocr.lite.preprocess import prepare_line, preprocessing_settings
from ctcocr.recognition.decoding import TextDecoder
from ctcocr.recognition.inference import on_device
from ctcocr.recognition.predictor import batch_reader
from ctcocr.recognition.recognizer import LineReader
from ctcocr.recognition.xml_output import output_paths, save_layout, set_line_text

#: Line images (mode "L") -> one reading each, in order.
ImagesReader = Callable[[Sequence[Image.Image]], list[Reading]]


def images_reader(recognizer: LineReader, decoder: TextDecoder, batch_size: int = 32,
                  device: str = "cpu", precision: str = "32-true") -> ImagesReader:
    """Read PIL line images with a recognizer (on ``device`` at ``precision``) and ``decoder``,
    prepared as every other prediction prepares lines."""
    recognizer = on_device(recognizer, device)
    preprocessing = preprocessing_settings(recognizer.preprocessing)
    read_batch = batch_reader(recognizer, decoder, device, precision)

    def read(images: Sequence[Image.Image]) -> list[Reading]:
        lines = [prepare_line(image, **preprocessing) for image in images]
        return read_lines(lines, read_batch, batch_size, workers=recognizer.parallel_batches)

    return read


def predict_xml(
    xml_paths: Sequence[Path],
    read: ImagesReader,
    cutter: LineCutter,
    format: XmlFormat = "auto",
    outputs: Sequence[Path] | None = None,
) -> Iterator[Prediction]:
    """One prediction per TextLine, path ``file.xml#LINE_ID``, in file and document order (lines
    without text in the XML are read like any other). A file that cannot be read (malformed,
    missing or unreadable page image) gives one prediction with ``error`` naming it, and so does
    a line outside its page. With ``outputs``, the file ``xml_paths[i]`` is written with the
    readings to ``outputs[i]``."""
    for number, xml_path in enumerate(xml_paths):
        try:
            layout = read_layout(xml_path, format)
            page = load_page_image(layout.xml_path, layout.image_path, layout.image_size)
        except DatasetError as error:
            yield Prediction(str(xml_path), error=str(error))
            continue
        crops, cut = [], []
        for index, line in enumerate(layout.lines):
            try:
                crops.append(cutter(page, line.polygon, line.baseline))
                cut.append(index)
            except ValueError as error:
                yield Prediction(str(xml_path), error=f"{layout.source(index)}: {error}")
        for index, reading in zip(cut, read(crops)):
            set_line_text(layout, index, reading.text, reading.confidence)
            yield Prediction(f"{xml_path}#{layout.lines[index].id}", reading.text,
                             reading.confidence)
        if outputs is not None:
            save_layout(layout, outputs[number])


def read_xml_files(
    xml_paths: Sequence[Path],
    recognizer: LineReader,
    decoder: TextDecoder,
    settings: Mapping[str, Any],
    batch_size: int = 32,
    device: str = "cpu",
    precision: str = "32-true",
) -> Iterator[Prediction]:
    """:func:`predict_xml` with ``ctcocr-predict``'s ``xml`` settings (``format``, ``margin``,
    ``deskew_min_degrees``, ``output_dir``, ``overwrite``); the output paths are checked before
    anything is read."""
    folder = settings.get("output_dir")
    outputs = (output_paths(xml_paths, Path(folder), bool(settings.get("overwrite")))
               if folder else None)
    cutter = LineCutter(settings.get("margin", 4), settings.get("deskew_min_degrees", 3.0))
    read = images_reader(recognizer, decoder, batch_size, device, precision)
    return predict_xml(xml_paths, read, cutter, settings.get("format", "auto"), outputs)
