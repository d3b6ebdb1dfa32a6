"""ctcocr-predict on PAGE and ALTO files: every TextLine read from its page image, the text
written back into copies of the files, bad files reported."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from lxml import etree

from ctcocr.cli.predict import run
from ctcocr.data.errors import DatasetError
from ctcocr.data.line_cut import LineCutter
from ctcocr.data.xml_dataset import XmlLineDataset
from ctcocr.data.xml_reader import read_layout
from ctcocr.lite.pipeline import Reading
from ctcocr.recognition import TextDecoder, load_recognizer, recognize
from ctcocr.recognition.xml_predict import predict_xml
from ctcocr.training.module import RecognizerModule
from ctcocr.xml_files import split_inputs
from tests.conftest import compose_config
from tests.test_module import CONFIGS
from tests.xml_pages import write_page

LINES = [("l1", "Hello world", 0.0), ("l2", "Rotated line here", 15.0), ("l3", "", 0.0)]


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    """An untrained recognizer saved as ctcocr-train saves checkpoints."""
    torch.manual_seed(0)
    module = RecognizerModule(**CONFIGS)
    path = tmp_path / "model.ckpt"
    torch.save({"hyper_parameters": dict(module.hparams), "state_dict": module.state_dict()},
               path)
    return path


@pytest.fixture
def pages(tmp_path: Path) -> Path:
    """pages/a.xml (PAGE 2019, with a TextStyle after the first line's TextEquiv) and
    pages/book/b.xml (ALTO v4), with their images."""
    a, _ = write_page(tmp_path / "pages", "a", LINES, "page2019")
    tree = etree.parse(str(a))
    line = tree.find(".//{*}TextLine")
    etree.SubElement(line, f"{{{etree.QName(line).namespace}}}TextStyle", fontSize="12")
    tree.write(str(a))
    write_page(tmp_path / "pages" / "book", "b", LINES[:2], "alto4")
    return tmp_path / "pages"


def predict(tmp_path: Path, checkpoint: Path, *overrides: str) -> tuple[int, list[list[str]]]:
    """Run ctcocr-predict's Hydra app in this process; (failures, TSV rows)."""
    output = tmp_path / "predictions.tsv"
    cfg = compose_config("predict", [f"ckpt_path={checkpoint}", f"output={output}", *overrides],
                         tmp_path)
    failures = run(cfg)
    return failures, [row.split("\t") for row in output.read_text().splitlines()]


def test_every_line_is_read_and_written_into_copies(tmp_path, checkpoint, pages):
    inputs = {path: path.read_bytes() for path in pages.rglob("*.xml")}
    failures, rows = predict(tmp_path, checkpoint, f"inputs={pages}",
                             f"xml.output_dir={tmp_path / 'out'}")
    assert failures == 0
    a, b = pages / "a.xml", pages / "book" / "b.xml"
    assert [row[0] for row in rows] == [f"{a}#l1", f"{a}#l2", f"{a}#l3", f"{b}#l1", f"{b}#l2"]
    assert {path: path.read_bytes() for path in pages.rglob("*.xml")} == inputs  # untouched
    written = [read_layout(tmp_path / "out" / "a.xml"), read_layout(tmp_path / "out/book/b.xml")]
    assert [line.text for layout in written for line in layout.lines] == [row[1] for row in rows]
    assert written[0].image_path.samefile(pages / "a.png")  # the copy still finds its image
    assert written[1].image_path.samefile(pages / "book" / "b.png")
    for element, row in zip(written[0].elements, rows):
        equivs = element.findall("{*}TextEquiv")
        assert len(equivs) == 1 and float(equivs[0].get("conf")) == pytest.approx(
            float(row[2]), abs=1e-4)
    first = [etree.QName(child).localname for child in written[0].elements[0]]
    assert first == ["Coords", "Baseline", "TextEquiv", "TextStyle"]  # the schema's order


def test_xml_lines_read_as_the_same_lines_saved_as_image_files(tmp_path, checkpoint, pages):
    """Training's cut (the dataset), saved losslessly and read by the image-file path, gives the
    readings the XML path gives."""
    _, rows = predict(tmp_path, checkpoint, f"inputs={pages / 'a.xml'}")
    dataset = XmlLineDataset(pages / "a.xml")
    files = []
    for index in range(len(dataset)):
        files.append(tmp_path / f"line{index}.png")
        dataset[index].image.save(files[-1])
    recognizer = load_recognizer(checkpoint)
    reference = list(recognize(recognizer, files, TextDecoder(recognizer.charset)))
    assert [row[1] for row in rows] == [prediction.text for prediction in reference]
    for row, prediction in zip(rows, reference):
        assert float(row[2]) == pytest.approx(prediction.confidence, rel=1e-4)


@pytest.mark.parametrize("kind", ["page2013", "page2019", "alto2", "alto3", "alto4"])
def test_the_written_text_reads_back_in_every_format(tmp_path, kind):
    xml, _ = write_page(tmp_path / "in", "p", LINES, kind)
    readings = {"l1": Reading("two  words", 0.25), "l2": Reading("", 0.5), "l3": Reading("x", 1.0)}
    out = tmp_path / "out" / "p.xml"
    predictions = list(predict_xml([xml], lambda images: list(readings.values())[:len(images)],
                                   LineCutter(), outputs=[out]))
    assert [p.text for p in predictions] == ["two  words", "", "x"]
    written = read_layout(out)
    first = "two  words" if kind.startswith("page") else "two words"  # ALTO: words, one SP
    assert [line.text for line in written.lines] == [first, "", "x"]
    assert written.image_path.samefile(tmp_path / "in" / "p.png")
    if kind.startswith("alto"):
        children = [[etree.QName(child).localname for child in element]
                    for element in written.elements]
        shape = ["Shape"] if kind != "alto2" else []
        assert children == [shape + ["String", "SP", "String"], shape + ["String"],
                            shape + ["String"]]
        assert [s.get("WC") for s in written.elements[0].findall("{*}String")] == ["0.2500"] * 2


def test_writing_into_the_input_folder_needs_overwrite(tmp_path, checkpoint, pages):
    with pytest.raises(DatasetError, match="would overwrite the input .*xml.overwrite=true"):
        predict(tmp_path, checkpoint, f"inputs={pages}", f"xml.output_dir={pages}")
    assert not read_layout(pages / "a.xml").elements[0].find("{*}TextEquiv").get("conf")
    predict(tmp_path, checkpoint, f"inputs={pages}", f"xml.output_dir={pages}",
            "xml.overwrite=true")
    assert read_layout(pages / "a.xml").elements[0].find("{*}TextEquiv").get("conf")


def test_unreadable_files_are_reported_and_the_others_read(tmp_path, checkpoint, pages, capsys):
    (pages / "bad.xml").write_text("<PcGts>\n<Page>\n</PcGts>\n")
    (pages / "book" / "b.png").unlink()
    failures, rows = predict(tmp_path, checkpoint, f"inputs={pages}")
    assert failures == 2
    assert [row[0] for row in rows] == [f"{pages / 'a.xml'}#l{n}" for n in (1, 2, 3)]
    report = capsys.readouterr().err
    assert f"{pages / 'bad.xml'}:3: malformed XML" in report
    assert f"{pages / 'book' / 'b.xml'}: page image not found: {pages / 'book' / 'b.png'}" \
        in report


def test_folders_holding_xml_are_xml_inputs(tmp_path, pages):
    (tmp_path / "lines").mkdir()
    images, xml = split_inputs([str(pages), str(tmp_path / "lines")])
    assert images == [str(tmp_path / "lines")]
    assert xml == [pages / "a.xml", pages / "book" / "b.xml"]


def test_the_command_reads_xml_inputs_given_plain_arguments(tmp_path, checkpoint, pages):
    """Arguments the fast start would take still read PAGE/ALTO files through their lines."""
    result = subprocess.run(
        [sys.executable, "-m", "ctcocr.cli.predict", f"ckpt_path={checkpoint}",
         f"inputs={pages / 'book'}"], capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert [line.split("\t")[0] for line in result.stdout.splitlines()] == [
        f"{pages / 'book' / 'b.xml'}#l1", f"{pages / 'book' / 'b.xml'}#l2"]
