"""Extraction started one page ahead: the extractor child works on the next page while the worker finishes the
page in hand, and every page still gets its own outcome, whatever the worker asks for next."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from conftest import page_bytes
from pipelines.config.extract import ExtractSettings
from pipelines.extract.extract import Extract, HtmlExtractor
from pipelines.extract.sandbox import Sandbox


def _setup(settings):
    return settings


def _job(job, state, report):
    kind, arg = job
    if kind == "sleep":
        time.sleep(arg)
        return f"slept {arg}"
    if kind == "once" and not os.path.exists(arg):
        Path(arg).write_text("died once")
        os._exit(3)
    return "done"


def test_an_outcome_in_the_pipe_counts_however_late_it_is_collected():
    box = Sandbox(_setup, _job, None, timeout_s=0.5)
    try:
        box.submit(("sleep", 0.05))
        time.sleep(1.0)  # the caller comes back after the deadline; the child finished well before it
        assert box.collect() == ("ok", "slept 0.05")
        box.submit(("sleep", 3))  # a job that runs past its deadline is still a timeout
        assert box.collect() == ("timeout", 0.5)
        assert box(("sleep", 0)) == ("ok", "slept 0")  # and the next job gets a fresh child
    finally:
        box.close()


def test_a_child_that_dies_on_a_submitted_job_is_replaced_and_the_job_tried_again(tmp_path):
    box = Sandbox(_setup, _job, None, timeout_s=30)
    try:
        box.submit(("once", str(tmp_path / "flag")))
        assert box.collect() == ("ok", "done")
        with pytest.raises(RuntimeError, match="not collected"):
            box.submit(("sleep", 0))
            box.submit(("sleep", 0))
    finally:
        box.close()


@pytest.fixture(scope="module")
def pages(truth):
    return [(page_bytes(n).decode("utf-8", "replace"), truth[n]["url"]) for n in sorted(truth)[:4]]


@pytest.fixture(scope="module")
def alone(pages):
    """Each page's outcome from an extractor that extracts it on its own."""
    extractor = HtmlExtractor(ExtractSettings(repeat_memory=0))
    try:
        return [extractor(html, url) for html, url in pages]
    finally:
        extractor.close()


@pytest.mark.parametrize("memory", [0, 8])
def test_a_page_started_ahead_gets_its_own_outcome(pages, alone, memory):
    extractor = HtmlExtractor(ExtractSettings(repeat_memory=memory))
    try:
        assert extractor(*pages[0]) == alone[0]
        extractor.ahead(*pages[1])
        assert extractor.pending is not None
        extractor.ahead(*pages[2])  # one page ahead at a time: this one is not started
        assert extractor(*pages[1]) == alone[1]
        assert extractor.pending is None
        # started for a page the worker then does not ask for: the page it asks for gets its own text
        extractor.ahead(*pages[2])
        assert extractor(*pages[3]) == alone[3]
        assert extractor(*pages[2]) == alone[2]
    finally:
        extractor.close()


def test_a_remembered_page_is_not_started_again(pages, alone):
    extractor = HtmlExtractor(ExtractSettings(repeat_memory=8))
    try:
        extractor(*pages[0])
        extractor.ahead(*pages[0])
        assert extractor.pending is None and extractor.sandbox._job is None
        assert extractor(*pages[0]) == alone[0] and extractor.repeats == 1
    finally:
        extractor.close()


def test_the_stage_starts_the_next_row_once_the_row_in_hand_is_extracted(pages, alone):
    stage = Extract(ExtractSettings(repeat_memory=0))
    rows = [{"id": str(i), "url": url, "_html": html, "metadata": {}} for i, (html, url) in enumerate(pages)]
    try:
        stage.ahead(rows[1])
        out = stage(rows[0])
        assert stage.html.pending is not None and stage.html.pending[0] is rows[1]["_html"]
        assert out["text"] == alone[0][1]["text"]
        stage.ahead(None)
        assert stage(rows[1])["text"] == alone[1][1]["text"]
        assert stage.html.pending is None
        stage.ahead(rows[2])
        stage.close()  # a page started ahead and never asked for ends with its child
        assert stage.html.pending is None and stage.upcoming is None
        assert stage(rows[3])["text"] == alone[3][1]["text"]
    finally:
        stage.close()
