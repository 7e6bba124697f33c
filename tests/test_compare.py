"""Tests of mlbook.compare: a reader's run beside the book's published numbers."""

from __future__ import annotations

import json
import socket

import pytest

from mlbook import compare, notebook
from mlbook.runtime import CONDITIONS_KEY

REPORT = {
    "profile": "quick",
    "versions": {"python": "3.11.7", "tensorflow-cpu": "2.21.0", "numpy": "2.4.6", "jupyter-book": "1.0.4"},
    "devices": {"book/generative/vae": "CPU · default strategy, 1 replica"},
    "results": [
        {"chapter": "book/generative/vae", "key": "vae_loss", "label": "VAE loss", "value": 160.4,
         "band": [140.0, 180.0], "fmt": ".1f"},
        {"chapter": "book/generative/vae", "key": "vae_share", "label": "digit share", "value": 0.8, "band": None,
         "fmt": ".2f"},
        {"chapter": "book/generative/gan", "key": "gan_acc", "label": "GAN accuracy", "value": 0.8,
         "band": [0.5, 0.9], "fmt": ".3f"},
    ],
}


@pytest.fixture
def published(tmp_path):
    path = tmp_path / "results-quick.json"
    path.write_text(json.dumps(REPORT))
    return path


def test_a_run_inside_the_band_prints_a_tick_with_the_band_and_the_books_value(published, capsys):
    rows = compare.compare_with_book("vae", "quick", values={"vae_loss": 151.23, "vae_share": 0.7},
                                     published=published)
    out = capsys.readouterr().out
    assert [row.status for row in rows] == ["ok", "unchecked"]
    assert "✓ VAE loss: 151.2 · band [140.0, 180.0] · book 160.4" in out
    assert "· digit share: 0.70 · no band · book 0.80" in out
    assert "differs" not in out  # nothing to explain


def test_a_value_pushed_out_of_its_band_prints_a_cross_and_what_differs(published, capsys, monkeypatch):
    versions = {"python": "3.11.7", "tensorflow": "2.16.1", "numpy": "2.4.6"}
    monkeypatch.setattr(compare, "installed_version", versions.get)
    values = {"vae_loss": 181.0, CONDITIONS_KEY: {"profile": "quick", "device": "1 GPU (Tesla T4) · default"}}
    rows = compare.compare_with_book("book/generative/vae", values=values, published=published)
    out = capsys.readouterr().out
    assert rows[0].status == "outside" and rows[1].status == "missing"
    assert "✗ VAE loss: 181.0 · band [140.0, 180.0] · book 160.4" in out
    assert "– digit share: not recorded in this session" in out
    assert "tensorflow 2.16.1 (book: 2.21.0)" in out  # the book's tensorflow-cpu is TensorFlow too
    assert "numpy" not in out.split("differs")[1].split("device")[0]  # the same version is not named
    assert "jupyter-book" not in out  # the book's toolchain does not change a number
    assert "device: 1 GPU (Tesla T4) · default (book: CPU · default strategy, 1 replica)" in out


def test_the_band_edges_are_inside(published):
    rows = compare.compare("book/generative/vae", REPORT, {"vae_loss": 180.0})
    assert rows[0].status == "ok"
    assert compare.compare("book/generative/vae", REPORT, {"vae_loss": 180.01})[0].status == "outside"


def test_it_compares_with_the_snapshot_the_package_ships_without_any_network(monkeypatch, capsys):
    def no_network(*args, **kwargs):
        raise OSError("no network in this test")

    monkeypatch.setattr(socket, "socket", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    shipped = compare.published_results("quick")
    assert shipped is not None and shipped["profile"] == "quick"
    first = shipped["results"][0]
    rows = compare.compare_with_book(first["chapter"], "quick", values={first["key"]: first["value"]})
    assert rows[0].status == "ok" and rows[0].book_value == first["value"]
    assert "✓" in capsys.readouterr().out


def test_the_reader_s_recorded_values_are_used_by_default(published, monkeypatch):
    monkeypatch.setattr(notebook, "_recorded", {})
    notebook.record("gan_acc", 0.95)  # outside a kernel, kept for the comparison only
    rows = compare.compare_with_book("gan", "quick", published=published)
    assert rows[0].value == 0.95 and rows[0].status == "outside"


def test_a_profile_without_published_values_says_so_in_one_line(capsys, monkeypatch):
    monkeypatch.setattr(compare, "PUBLISHED_DIR", compare.PUBLISHED_DIR / "nowhere")
    assert compare.compare_with_book("vae", "full") == []
    assert capsys.readouterr().out == "The package holds no published values of the 'full' profile to compare with.\n"


def test_bad_input_gets_a_clear_error(published, tmp_path):
    with pytest.raises(ValueError, match="no single chapter .* 'yolo'; choose one of"):
        compare.compare_with_book("yolo", "quick", values={}, published=published)
    with pytest.raises(ValueError, match="unknown profile"):
        compare.compare_with_book("vae", "turbo", values={}, published=published)
    broken = tmp_path / "broken.json"
    broken.write_text('{"profile": "quick", "res')
    with pytest.raises(ValueError, match="cannot read the book's results from"):
        compare.compare_with_book("vae", "quick", values={}, published=broken)
    with pytest.raises(ValueError, match="is not a results file of the 'full' profile"):
        compare.compare_with_book("vae", "full", values={}, published=published)
