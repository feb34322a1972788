"""The HTML pages: `nas report` (a study), `nas data inspect --html` (the dataset) and `nas evaluate
--html` (a confusion matrix). Their content is checked from the data they draw, and each page is
opened from a local file in headless Chromium (Debian's `chromium`, installed by .ci/run): the
plots must render, the chart elements exist, the console show no error and nothing be fetched
from the network; a screenshot is saved in the test's temporary folder.

Without Chromium the browser tests are skipped, except where NAS_REQUIRE_TOOLCHAINS is set (CI).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import numpy as np
import optuna
import plotly.graph_objects as go
import pytest

from nas.cli.main import main
from nas.core.stats import Accuracy
from nas.data.dataset import DIGIT_NAMES
from nas.device.memory import Budget
from nas.report.datainspect import QUIET_PEAK_DBFS, dbfs, inspect_data
from nas.report.htmlpage import Cell, Page
from nas.report.report import summarize_study
from nas.report.studypage import study_page
from nas.study.pareto import candidates, classify, compute_plot_data, pareto_front, select_best
from nas.study.record import TrialRecord, read_records
from nas.study.settings import StudySettings
from tests.conftest import index_of, link_subset, write_wav

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


# ------------------------------------------------------------------------------------ browser
@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        if os.environ.get("NAS_REQUIRE_TOOLCHAINS"):
            pytest.fail("chromium not found: .ci/run installs Debian's chromium", pytrace=False)
        pytest.skip("chromium not installed (Debian: apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


RENDERED = """n => {
  const plots = Array.from(document.querySelectorAll('.js-plotly-plot'));
  return plots.length === n && plots.every(p => p.querySelector('.main-svg'));
}"""


def open_page(browser, path: Path, figures: int, screenshot: Path):
    """The page from its file, once its `figures` plots have rendered; fails on a console error,
    a script error or any request that leaves the machine."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    outside: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("request", lambda request: None if request.url.startswith(("file:", "data:", "blob:")) else outside.append(request.url))
    page.goto(path.as_uri())
    page.wait_for_function(RENDERED, arg=figures, timeout=60_000)
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.stat().st_size > 10_000
    assert errors == [], f"console errors: {errors}"
    assert outside == [], f"the page fetched from the network: {outside}"
    return page


def column_values(page, table: str, column: int) -> list[str]:
    return page.eval_on_selector_all(f"#table-{table} tbody tr", f"rows => rows.map(r => r.cells[{column}].textContent)")


# --------------------------------------------------------------------------------- the report
@pytest.fixture(scope="module")
def study_records(searched):
    study = optuna.load_study(study_name="s", storage=f"sqlite:///{searched / 's' / 'study.db'}")
    return read_records(study)


def test_report_page_in_a_browser(searched, study_records, tmp_path, browser, capsys):
    out = tmp_path / "report.html"
    assert main(["report", "--study", "s", "--results-dir", str(searched), "--out", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    page = open_page(browser, out, 5, tmp_path / "report.png")
    budget = Budget(4096)
    # the chart: one point per trial it can place, the budget labelled on it, kB on the axis
    placed = sum(len(rows) for rows in classify(study_records, budget).values())
    assert page.locator("#figure-front .scatterlayer .point").count() == placed
    assert "budget 4 kB (total)" in page.locator("#figure-front .annotation-text").all_text_contents()
    assert "kB" in page.locator("#figure-front .xtitle").text_content()
    title = page.locator("#figure-front .gtitle").text_content()
    assert "'s'" in title and "pow2" in title and "4 kB" in title
    # hover over a front point tells its trial and accuracy in words
    point = page.locator("#figure-front .scatterlayer .trace").nth(-1).locator(".point").first
    box = point.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_selector("#figure-front .hovertext")
    hover = page.locator("#figure-front .hovertext").text_content()
    assert re.search(r"trial \d+: GRU|trial \d+: LSTM", hover) and "validation accuracy" in hover
    # the compute chart: a point per trained trial within the budget (each has its prediction), MIPS on the axis
    compute = compute_plot_data(study_records, budget)
    assert page.locator("#figure-compute .scatterlayer .point").count() == len(candidates(study_records, budget)) > 0
    assert sum(len(rows) for rows in compute.groups.values()) == len(candidates(study_records, budget))
    assert "mips_for_real_time" in page.locator("#figure-compute .xtitle").text_content()
    # the confusion matrices of the best trial, digits by name
    ticks = page.locator("#figure-confusion .xtick text").all_text_contents()
    assert "seven" in ticks and "0" not in ticks
    assert page.locator("#figure-confusion .heatmaplayer image").count() == 2
    # memory bars: one bar per front point and part
    front = pareto_front(study_records, budget)
    assert page.locator("#figure-memory .bars .point").count() >= len(front)
    # the table: a row per trial, sorted by a header click, reversed by a second
    assert page.locator("#table-trials tbody tr").count() == len(study_records)
    header = page.locator("#table-trials th", has_text="total (kB)")
    column = page.locator("#table-trials th").all_text_contents().index("total (kB)")
    header.click()
    ascending = [float(v) for v in column_values(page, "trials", column)]
    assert ascending == sorted(ascending) and header.get_attribute("aria-sort") == "ascending"
    header.click()
    assert [float(v) for v in column_values(page, "trials", column)] == sorted(ascending, reverse=True)
    assert page.locator("#table-trials tr.front").count() == len(front)


def test_report_page_content_from_the_records(study_records):
    """What the page says, from the records alone: every trial a row, the front shaded, the best
    trial's stored matrices drawn, new-voices columns only when a trial has them."""
    budget = Budget(4096)
    settings = StudySettings(4096, "total", "pow2", "official", 0, "tpe", {})
    summary = summarize_study("s", budget, "pow2", study_records)
    text = study_page(summary, settings).html()
    table = text[text.index('id="table-trials"') :]
    assert table.count("<tr") == len(study_records) + 1  # the header row
    assert table.count('<tr class="front">') == len(summary.front)
    assert "new voices" not in table
    best = select_best(study_records, budget)
    assert f"trial {best.number}: {best.describe()}" in text
    assert 'id="figure-confusion"' in text and "validation part (" in text
    # a perfect trial over the budget is neither the best nor the one whose matrices are drawn
    perfect = TrialRecord(**{**best.__dict__, "number": 99, "memory": None, "total_bytes": 10**6, "val": Accuracy(300, 300)})
    text = study_page(summarize_study("s", budget, "pow2", [*study_records, perfect]), settings).html()
    assert f"most accurate within the budget</dt><dd>trial {best.number}:" in text and "trial 99 (" not in text
    # a trial stored before confusion matrices: the page says so instead of drawing nothing
    old = [r if r.number != best.number else TrialRecord(**{**r.__dict__, "val_confusion": None}) for r in study_records]
    text = study_page(summarize_study("s", budget, "pow2", old), settings).html()
    assert 'id="figure-confusion"' not in text and f"Trial {best.number} was trained before" in text
    # with speaker folds the held-out speakers' accuracy gets its columns
    folds = [TrialRecord(**{**r.__dict__, "speaker_val": r.val, "speaker_test": r.test}) if r.trained else r for r in study_records]
    assert "new voices: held-out speakers (%)" in study_page(summarize_study("s", budget, "pow2", folds), settings).html()


def test_tables_sort_numbers_as_numbers_and_empty_cells_last(browser, tmp_path):
    page = Page("sorting")
    values = [10.0, None, 9.5, 100.0, -2.0]
    page.table("t", ["name", "kB"], [[Cell(f"row {i}"), Cell("" if v is None else f"{v:g}", float("nan") if v is None else v)]
                                     for i, v in enumerate(values)])  # fmt: skip
    page.figure(go.Figure(go.Scatter(x=[1], y=[1])), "one")
    page.write(tmp_path / "sort.html")
    opened = open_page(browser, tmp_path / "sort.html", 1, tmp_path / "sort.png")
    header = opened.locator("#table-t th", has_text="kB")
    header.click()
    assert column_values(opened, "t", 1) == ["-2", "9.5", "10", "100", ""]
    header.click()
    assert column_values(opened, "t", 1) == ["100", "10", "9.5", "-2", ""] and header.get_attribute("aria-sort") == "descending"
    opened.locator("#table-t th", has_text="name").click()
    assert column_values(opened, "t", 0) == [f"row {i}" for i in range(5)]


def test_the_page_embeds_plotly_once_and_a_bad_out_path_is_one_line(searched, tmp_path, capsys):
    out = tmp_path / "r.html"
    assert main(["report", "--study", "s", "--results-dir", str(searched), "--out", str(out)]) == 0
    text = out.read_text()
    from plotly.offline import get_plotlyjs

    assert text.count(get_plotlyjs()) == 1 and "<script src" not in text  # offline: the library inside, once
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["report", "--study", "s", "--results-dir", str(searched), "--out", str(blocker / "r.html")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{blocker / 'r.html'}: cannot write the page" in err


def test_plot_is_report(searched, tmp_path):
    """`nas plot` (the chart alone, before the report) now writes the report page."""
    assert main(["plot", "--study", "s", "--results-dir", str(searched)]) == 0
    assert "All trials" in (searched / "s" / "report.html").read_text()


# ------------------------------------------------------------------------------ the data page
@pytest.fixture(scope="module")
def untidy_data(fsdd_dir, tmp_path_factory):
    """Three takes of every digit and speaker, plus files that fail: a truncated WAV, a bad name,
    a known name with other content (checksum), and one clipped, one quiet recording."""
    folder = link_subset(fsdd_dir, tmp_path_factory.mktemp("untidy") / "data", lambda name: index_of(name) < 3)
    good = (fsdd_dir / "0_george_5.wav").read_bytes()
    (folder / "1_theo_5.wav").write_bytes(good[: len(good) // 2 + 1])  # header promises more than it holds
    (folder / "one_theo_6.wav").write_bytes(good)
    (folder / "2_theo_7.wav").write_bytes(good)  # listed, but with george's bytes
    t = np.arange(4000) / 8000
    write_wav(folder / "3_lucas_8.wav", np.clip(40000 * np.sin(2 * np.pi * 200 * t), -32768, 32767).astype(np.int16))
    write_wav(folder / "4_lucas_9.wav", (100 * np.sin(2 * np.pi * 200 * t)).astype(np.int16))
    return folder


def test_data_overview_lists_every_failing_file(untidy_data):
    overview = inspect_data(untidy_data, "official")
    failed = dict(overview.failed)
    assert set(failed) == {"1_theo_5.wav", "one_theo_6.wav", "2_theo_7.wav", "3_lucas_8.wav", "4_lucas_9.wav"}
    assert "truncated" in failed["1_theo_5.wav"] and "checksum mismatch" in failed["2_theo_7.wav"]
    flagged = dict(overview.flagged)
    assert set(flagged) == {"3_lucas_8.wav", "4_lucas_9.wav"}  # readable, but clipped and quiet
    assert flagged["3_lucas_8.wav"].startswith("clipped") and flagged["4_lucas_9.wav"].startswith("quiet")
    by_name = {f.name: f for f in overview.files}
    assert by_name["4_lucas_9.wav"].peak_dbfs == pytest.approx(dbfs(100)) == pytest.approx(-50.31, abs=0.01)
    assert dbfs(100) < QUIET_PEAK_DBFS
    assert by_name["4_lucas_9.wav"].duration_s == 0.5
    assert all(f.part == ("test" if f.index < 5 else "val" if f.index < 10 else "train") for f in overview.files)  # official split
    assert [e.speaker for e in overview.examples] == sorted({f.speaker for f in overview.files})


def test_data_page_in_a_browser(untidy_data, tmp_path, browser, capsys):
    out = tmp_path / "data.html"
    assert main(["data", "inspect", "--html", str(out), "--data-dir", str(untidy_data)]) == 0
    captured = capsys.readouterr()
    assert "5 failing a check" in captured.out and "2 flagged" in captured.out
    assert "1_theo_5.wav: truncated WAV" in captured.err  # and each failing file on the terminal too
    page = open_page(browser, out, 6, tmp_path / "data.png")
    assert sorted(column_values(page, "failed", 0)) == ["1_theo_5.wav", "2_theo_7.wav", "3_lucas_8.wav", "4_lucas_9.wav", "one_theo_6.wav"]
    assert sorted(column_values(page, "flagged", 0)) == ["3_lucas_8.wav", "4_lucas_9.wav"]
    ticks = page.locator("#figure-duration-digit .xtick text").all_text_contents()
    assert ticks == list(DIGIT_NAMES)
    assert "3" in page.locator("#figure-counts text").all_text_contents()  # three takes of each digit and speaker
    assert page.locator("#figure-mfcc .heatmaplayer image").count() == 6
    assert "seven" in page.locator("#figure-mfcc .gtitle").text_content()


# ---------------------------------------------------------------------------- evaluate --html
def test_evaluate_page_in_a_browser(searched, subset, study_records, tmp_path, browser):
    best = select_best(study_records, Budget(4096))
    export = tmp_path / "export"
    argv = ["export", "--study", "s", "--results-dir", str(searched), "--trial", str(best.number), "--out", str(export)]
    assert main([*argv, "--no-measure", "--data-dir", str(subset)]) == 0
    out = tmp_path / "confusion.html"
    assert main(["evaluate", str(export), "--data-dir", str(subset), "--html", str(out)]) == 0
    page = open_page(browser, out, 1, tmp_path / "confusion.png")
    assert page.locator(".heatmaplayer image").count() == 1
    assert "seven" in page.locator(".ytick text").all_text_contents()
