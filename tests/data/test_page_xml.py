"""PAGE and ALTO XML datasets: reading lines, cutting them from page images, bad input."""

from __future__ import annotations

import logging
import pickle
import re

import numpy as np
import pytest
from hydra.utils import instantiate
from lxml import etree
from matplotlib.path import Path as PolygonPath
from PIL import Image, ImageDraw, ImageFilter

import ctcocr.data.xml_dataset as xml_dataset_module
from ctcocr.data.charset import PRINTABLE, Charset
from ctcocr.data.datamodule import LineDataModule, LineDataset, dataset_kind
from ctcocr.data.errors import BadImageError, DatasetError
from ctcocr.data.layout import MissingImageError
from ctcocr.data.line_cut import LineCutter, baseline_angle
from ctcocr.data.transforms import LineTransform
from ctcocr.data.xml_dataset import PageCache, XmlLineDataset
from ctcocr.data.xml_reader import read_layout
from tests.conftest import TINY, compose_config
from tests.xml_pages import INK, PAPER, write_page

LINES = [("l1", "Hello world", 0.0), ("l2", "Rotated line here", 15.0), ("l3", "", 0.0)]
CHARSET = Charset("".join(PRINTABLE))


def similarity(image: Image.Image, reference: Image.Image) -> float:
    """Correlation of ``image`` resized to ``reference``'s size with it, both slightly blurred
    (a pixel of offset from resampling does not count)."""
    blur = ImageFilter.GaussianBlur(1.5)
    a = np.asarray(image.resize(reference.size).filter(blur), dtype=np.float64).ravel()
    b = np.asarray(reference.filter(blur), dtype=np.float64).ravel()
    return float(np.corrcoef(a, b)[0, 1])


def scaled(polygon: np.ndarray, factor: float) -> np.ndarray:
    """``polygon`` scaled about its centroid (a convex polygon shrinks inside itself)."""
    centre = polygon.mean(axis=0)
    return centre + (polygon - centre) * factor


@pytest.mark.parametrize("kind", ["page2013", "page2019", "alto3", "alto4"])
def test_every_format_gives_the_drawn_lines_texts_polygons_and_baselines(tmp_path, kind):
    xml, drawn = write_page(tmp_path, "p", LINES, kind)
    layout = read_layout(xml)
    assert layout.format == kind[:4] and layout.image_path == tmp_path / "p.png"
    assert layout.image_size == Image.open(tmp_path / "p.png").size
    assert [line.id for line in layout.lines] == ["l1", "l2", "l3"]
    assert [line.text for line in layout.lines] == ["Hello world", "Rotated line here", ""]
    for line, reference in zip(layout.lines, drawn):
        np.testing.assert_allclose(line.polygon, reference.polygon, atol=0.51)
        if kind == "alto3":  # a one-value BASELINE: level across the box
            np.testing.assert_allclose(line.baseline[:, 1], reference.baseline[:, 1].mean(),
                                       atol=0.01)
        else:
            np.testing.assert_allclose(line.baseline, reference.baseline, atol=0.51)


def test_alto_v2_lines_are_their_boxes_with_a_level_baseline(tmp_path):
    xml, drawn = write_page(tmp_path, "p", LINES, "alto2")
    rotated = read_layout(xml).lines[1]
    low, high = drawn[1].polygon.min(axis=0), drawn[1].polygon.max(axis=0)
    np.testing.assert_allclose(rotated.polygon.min(axis=0), low, atol=0.01)
    np.testing.assert_allclose(rotated.polygon.max(axis=0), high, atol=0.01)
    assert rotated.baseline[0, 1] == rotated.baseline[1, 1]
    assert rotated.text == "Rotated line here"


@pytest.mark.parametrize("unit", ["mm10", "inch1200"])
def test_alto_physical_units_are_converted_with_the_image_resolution(tmp_path, unit):
    pixels = read_layout(write_page(tmp_path / "px", "p", LINES, "alto4")[0])
    physical = read_layout(write_page(tmp_path / unit, "p", LINES, "alto4", unit=unit,
                                      dpi=150.0)[0])
    for a, b in zip(pixels.lines, physical.lines):  # PNG stores the DPI as dots per metre
        np.testing.assert_allclose(a.polygon, b.polygon, atol=0.05)


def test_alto_physical_units_without_a_resolution_are_a_clear_error(tmp_path):
    xml, _ = write_page(tmp_path, "p", LINES, "alto4", unit="mm10")
    Image.open(tmp_path / "p.png").save(tmp_path / "p.png")  # re-saved without a DPI tag
    with pytest.raises(DatasetError, match=r"p\.xml: coordinates in mm10 need .*stores none"):
        read_layout(xml)


def test_alto_text_is_strings_with_a_space_per_sp_and_the_hyphen(tmp_path):
    xml, _ = write_page(tmp_path, "p", [("l1", "two words", 0.0)], "alto4")
    tree = etree.parse(str(xml))
    line = tree.find(".//{*}TextLine")
    etree.SubElement(line, f"{{{etree.QName(line).namespace}}}HYP", CONTENT="-")
    tree.write(str(xml))
    assert read_layout(xml).lines[0].text == "two words-"


@pytest.mark.parametrize("equivs, expected", [
    ([("2", "second"), ("1", "first")], "first"),
    ([(None, "a"), (None, "b")], "a"),
    ([(None, "unindexed"), ("0", "zero"), ("5", "five")], "zero"),
])
def test_page_text_is_the_textequiv_with_the_lowest_index_else_the_first(tmp_path, equivs,
                                                                         expected):
    xml, _ = write_page(tmp_path, "p", LINES[:1], "page2019", text_equivs={"l1": equivs})
    assert read_layout(xml).lines[0].text == expected


def test_the_cut_keeps_the_polygon_and_fills_the_rest_with_the_paper(tmp_path):
    _, drawn = write_page(tmp_path, "p", LINES, "page2019")
    polygon = drawn[1].polygon
    left, top = np.floor(polygon.min(axis=0)).astype(int)
    right, bottom = np.ceil(polygon.max(axis=0)).astype(int)
    page = Image.open(tmp_path / "p.png").convert("L")
    ImageDraw.Draw(page).rectangle([left + 1, top + 1, left + 6, top + 6], fill=INK)  # a neighbour
    crop = np.asarray(LineCutter(margin=0, deskew_min_degrees=None)(page, polygon))
    assert crop.shape == (bottom - top + 1, right - left + 1)
    ys, xs = np.mgrid[top:top + crop.shape[0], left:left + crop.shape[1]]
    centres = np.stack([xs.ravel(), ys.ravel()], axis=1)
    inside = PolygonPath(scaled(polygon, 0.97)).contains_points(centres).reshape(crop.shape)
    outside = ~PolygonPath(scaled(polygon, 1.03)).contains_points(centres).reshape(crop.shape)
    page_pixels = np.asarray(page)[top:top + crop.shape[0], left:left + crop.shape[1]]
    assert (page_pixels[outside] == INK).sum() >= 36  # the neighbour's ink is in the box...
    np.testing.assert_array_equal(crop[outside], PAPER)  # ...and masked to the paper's gray
    np.testing.assert_array_equal(crop[inside], page_pixels[inside])
    assert (crop[inside] < 100).sum() > 100  # the line's own ink is kept


def test_the_margin_keeps_ink_just_outside_the_polygon(tmp_path):
    _, drawn = write_page(tmp_path, "p", LINES[:1], "page2019")
    page = Image.open(tmp_path / "p.png").convert("L")
    polygon = drawn[0].polygon  # an axis-aligned box
    x, bottom = int(polygon[:, 0].mean()), int(polygon[:, 1].max())
    ImageDraw.Draw(page).rectangle([x, bottom + 2, x + 2, bottom + 3], fill=0)  # a descender
    tight = np.asarray(LineCutter(margin=0)(page, polygon))
    wide = np.asarray(LineCutter(margin=5)(page, polygon))
    assert wide.shape == (tight.shape[0] + 10, tight.shape[1] + 10)
    assert (wide == 0).sum() == 6 and (tight == 0).sum() == 0


def test_a_steep_baseline_deskews_the_line_to_its_unrotated_drawing(tmp_path):
    _, drawn = write_page(tmp_path, "p", LINES, "page2019")
    page = Image.open(tmp_path / "p.png").convert("L")
    line = drawn[1]
    level = LineCutter(margin=0)(page, line.polygon, line.baseline)
    boxed = LineCutter(margin=0, deskew_min_degrees=None)(page, line.polygon, line.baseline)
    assert abs(level.width - line.tile.width) <= 3 and abs(level.height - line.tile.height) <= 3
    assert boxed.height > 2 * line.tile.height
    assert similarity(level, line.tile) > 0.9
    assert similarity(boxed, line.tile) < 0.5


def test_a_slight_skew_is_not_rotated(tmp_path):
    _, drawn = write_page(tmp_path, "p", [("l1", "Slightly skewed", 2.0)], "page2019")
    page = Image.open(tmp_path / "p.png").convert("L")
    line = drawn[0]
    kept = LineCutter(margin=2, deskew_min_degrees=3.0)(page, line.polygon, line.baseline)
    boxed = LineCutter(margin=2, deskew_min_degrees=None)(page, line.polygon, line.baseline)
    np.testing.assert_array_equal(np.asarray(kept), np.asarray(boxed))


def test_baseline_angle_ignores_the_drawing_direction_of_level_lines():
    falling = np.array([[0.0, 0.0], [10.0, 10.0]])
    assert baseline_angle(falling) == pytest.approx(45.0)
    assert baseline_angle(falling[::-1]) == pytest.approx(45.0)
    assert baseline_angle(np.array([[5.0, 0.0], [5.0, 30.0]])) == pytest.approx(90.0)
    assert baseline_angle(np.array([[5.0, 30.0], [5.0, 0.0]])) == pytest.approx(-90.0)


def test_a_line_outside_the_page_is_a_bad_image_naming_the_line(tmp_path):
    xml, _ = write_page(tmp_path, "p", LINES[:1], "page2019")
    tree = etree.parse(str(xml))
    tree.find(".//{*}TextLine/{*}Coords").set("points", "5000,5000 5010,5000 5010,5010")
    tree.write(str(xml))
    with pytest.raises(BadImageError, match=r"p\.xml:\d+ \(TextLine l1\): the line lies outside"):
        XmlLineDataset(xml)[0]


def test_an_empty_line_is_a_counted_skip_or_an_error_naming_file_and_id(tmp_path, caplog):
    xml, _ = write_page(tmp_path, "p", LINES, "page2019")
    empty = rf"{re.escape(str(xml))}:\d+ \(TextLine l3\): empty label"
    with pytest.raises(DatasetError, match=empty):
        LineDataset(XmlLineDataset(xml), CHARSET, LineTransform(), "error")
    with caplog.at_level(logging.WARNING, logger="ctcocr.data"):
        kept = LineDataset(XmlLineDataset(xml), CHARSET, LineTransform(), "skip")
    assert [kept[i].text for i in range(len(kept))] == ["Hello world", "Rotated line here"]
    assert "1 of 3 samples have bad labels (1 empty label)" in caplog.text


def test_a_missing_page_image_is_an_error_or_a_counted_skip(tmp_path, caplog):
    write_page(tmp_path / "pages", "good", LINES[:2], "page2019")
    missing, _ = write_page(tmp_path / "pages", "lost", LINES[:1], "alto4")
    (tmp_path / "pages" / "lost.png").unlink()
    expected = f"{missing}: page image not found: {tmp_path / 'pages' / 'lost.png'}"
    with pytest.raises(MissingImageError, match=re.escape(expected)):
        XmlLineDataset(tmp_path / "pages")
    with caplog.at_level(logging.WARNING, logger="ctcocr.data"):
        dataset = XmlLineDataset(tmp_path / "pages", on_bad_sample="skip")
    assert [dataset.text(i) for i in range(len(dataset))] == ["Hello world", "Rotated line here"]
    assert "skipped 1 of 2 XML files (page image missing)" in caplog.text
    assert str(tmp_path / "pages" / "lost.png") in caplog.text


def test_malformed_xml_names_the_file_and_the_line(tmp_path):
    xml, _ = write_page(tmp_path, "p", LINES, "page2019")
    lines = xml.read_text().splitlines()
    broken = next(n for n, line in enumerate(lines, start=1) if "</TextLine>" in line)
    lines[broken - 1] = lines[broken - 1].replace("</TextLine>", "</TextLin>")
    xml.write_text("\n".join(lines))
    with pytest.raises(DatasetError, match=rf"^{re.escape(str(xml))}:{broken}: malformed XML: "):
        XmlLineDataset(xml)


def test_other_xml_is_skipped_in_folders_and_an_error_when_named(tmp_path, caplog):
    write_page(tmp_path, "p", LINES[:1], "page2019")
    mets = tmp_path / "mets.xml"
    mets.write_text('<mets:mets xmlns:mets="http://www.loc.gov/METS/"/>')
    with caplog.at_level(logging.WARNING, logger="ctcocr.data"):
        assert len(XmlLineDataset(tmp_path)) == 1
    assert f"skipped 1 of 2 XML files (not PAGE or ALTO): {mets}" in caplog.text
    with pytest.raises(DatasetError, match="neither PAGE nor ALTO"):
        XmlLineDataset(mets)
    old = tmp_path / "old.xml"
    old.write_text('<PcGts xmlns="http://schema.primaresearch.org/PAGE/gts/pagecontent/'
                   '2010-03-19"/>')
    with pytest.raises(DatasetError, match="unsupported PAGE version"):
        XmlLineDataset(old)


def test_a_format_that_is_asked_for_must_be_the_files(tmp_path):
    xml, _ = write_page(tmp_path, "p", LINES[:1], "page2013")
    with pytest.raises(DatasetError, match="expected ALTO XML, found PAGE"):
        XmlLineDataset(xml, format="alto")


def test_images_are_found_beside_a_page_folder_and_their_size_is_checked(tmp_path):
    xml, _ = write_page(tmp_path / "export" / "page", "p", LINES[:1], "page2019")
    (tmp_path / "export" / "page" / "p.png").rename(tmp_path / "export" / "p.png")
    dataset = XmlLineDataset(xml)
    assert dataset.pages[0].image_path == tmp_path / "export" / "p.png"
    assert dataset[0].text == "Hello world"
    Image.new("L", (100, 50), PAPER).save(tmp_path / "export" / "p.png")
    with pytest.raises(BadImageError, match=r"p\.png is 100x50 pixels, the XML says 640x420"):
        XmlLineDataset(xml)[0]


def test_each_page_is_decoded_once_for_its_lines_and_workers_start_empty(tmp_path, monkeypatch):
    write_page(tmp_path / "a", "p", LINES, "page2019")
    write_page(tmp_path / "b", "p", LINES, "alto4")
    loads = []
    original = xml_dataset_module.load_page_image
    monkeypatch.setattr(xml_dataset_module, "load_page_image",
                        lambda *args: loads.append(args[0]) or original(*args))
    dataset = XmlLineDataset(tmp_path)
    for index in range(len(dataset)):
        dataset[index]
    assert len(dataset) == 6 and len(loads) == 2
    copy = pickle.loads(pickle.dumps(dataset))
    assert not copy.cache._pages and len(copy) == 6


def test_the_page_cache_keeps_the_most_recent_pages_within_its_bytes():
    cache = PageCache(max_bytes=2 * 100 * 100)
    loads = []

    def page(key: int) -> Image.Image:
        return cache.get(key, lambda: loads.append(key) or Image.new("L", (100, 100)))

    for key in (0, 1, 0, 2, 0, 1):
        page(key)
    assert loads == [0, 1, 2, 1]  # 1 was the least recently used when 2 came
    cache.get(9, lambda: Image.new("L", (300, 300)))  # too big to keep
    assert 9 not in cache._pages and cache._bytes <= cache.max_bytes


def test_the_datamodule_reads_folders_files_and_lists_of_xml(tmp_path):
    write_page(tmp_path / "train" / "book1", "p1", LINES[:2], "page2019")
    write_page(tmp_path / "train" / "book2", "p2", LINES[:2], "alto4")
    val, _ = write_page(tmp_path / "val", "v", LINES[:1], "page2013")
    assert dataset_kind(tmp_path / "train") is XmlLineDataset and dataset_kind(val) is \
        XmlLineDataset
    datamodule = LineDataModule(CHARSET, train=[tmp_path / "train", val], val=val, batch_size=8,
                                num_workers=0, xml={"margin": 2})
    datamodule.check_paths()
    datamodule.setup("fit")
    batch = next(iter(datamodule.train_dataloader()))
    assert sorted(batch["texts"]) == sorted(["Hello world", "Rotated line here"] * 2
                                            + ["Hello world"])
    assert batch["images"].shape[:3] == (5, 1, 32)
    (tmp_path / "plain").mkdir()
    with pytest.raises(DatasetError, match="neither a folder dataset"):
        dataset_kind(tmp_path / "plain")


@pytest.mark.parametrize("config, expected", [("page", "auto"), ("alto", "alto")])
def test_data_page_and_alto_configs_build_xml_datasets(tmp_path, config, expected):
    xml, _ = write_page(tmp_path / "data", "p", LINES[:2], "alto4")
    overrides = [item for item in TINY if not item.startswith("data=")]
    cfg = compose_config("train", [*overrides, f"data={config}", f"data.train={xml}",
                                   f"data.val={xml}", "data.num_workers=0", "data.xml.margin=1"],
                         tmp_path / "out")
    assert cfg.data.xml.format == expected
    datamodule = instantiate(cfg.data, charset=CHARSET)
    datamodule.setup("fit")
    dataset = datamodule.datasets["train"].datasets[0].dataset
    assert isinstance(dataset, XmlLineDataset) and dataset.cutter.margin == 1
    assert len(datamodule.datasets["train"]) == 2
