"""The page of `seq2attn serve` in a real browser: Playwright driving the system Chromium (Debian's
`chromium` package; .ci/run installs it when it runs as root). Playwright's own browser downloads
are never used.

Set SEQ2ATTN_SCREENSHOT=path.png to also keep the desktop screenshot there (docs/images/serve.png
was taken so, from a model trained on the dates corpus)."""

from __future__ import annotations

import itertools
import os
import shutil
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
playwright = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (pip install playwright; "
                                 "it is in the dev extra)")

import httpx
from serve_helpers import start_server, tiny_transformer

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    pytest.skip("no system Chromium: install Debian's chromium package (apt-get install -y chromium; .ci/run does "
                "when it runs as root)", allow_module_level=True)

SENTENCE = "d h r l j o s"


@pytest.fixture(scope="module")
def server(tmp_path_factory, reverse_files):
    proc, url = start_server(tiny_transformer(tmp_path_factory, reverse_files), "--access-log", "off")
    yield url
    proc.terminate()
    assert proc.wait(60) == 0


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as p:
        # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


def _api(url: str, path: str, body: dict) -> dict:
    r = httpx.post(url + path, json=body, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def _matrix(page) -> tuple[list[str], list[str], list[list[str]]]:
    """Column labels, row labels and cell texts of the heatmap as the page shows it."""
    src = page.locator("#heatmap th.src").evaluate_all("els => els.map(e => e.textContent)")
    tgt = page.locator("#heatmap th.tgt").evaluate_all("els => els.map(e => e.textContent)")
    cells = page.locator("#heatmap tbody tr").evaluate_all(
        "rows => rows.map(r => Array.from(r.querySelectorAll('td')).map(td => td.title))")
    return src, tgt, cells


def _translate(page, sentence: str) -> None:
    page.fill("#source", sentence)
    with page.expect_response("**/v1/translate"):
        page.click("#go")
    page.wait_for_selector("#result:not([hidden])")


def test_translate_hover_select_and_screenshot(server, browser, tmp_path):
    page = browser.new_page(viewport={"width": 1100, "height": 820})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(server + "/")
    page.wait_for_selector("#selector:not([hidden])")  # a Transformer: the layer/head selector shows
    assert page.locator("#layer option").count() == 3 and page.locator("#head option").count() == 5
    _translate(page, SENTENCE)
    want = _api(server, "/v1/translate", {"text": SENTENCE, "attention": True})["translations"][0]
    words = want["words"]
    assert page.locator("#translation .word").all_text_contents() == words["tgt"]
    src, tgt, cells = _matrix(page)
    assert src == words["src"] and tgt == words["tgt"]  # one column per source word, one row per target word
    assert [len(row) for row in cells] == [len(words["src"])] * len(words["tgt"])

    # hover a target word: its row lights up, the source words it attended to are highlighted
    row = 1 if len(words["tgt"]) > 1 else 0
    weights = words["weights"][row]
    best = max(range(len(weights)), key=weights.__getitem__)
    page.hover(f"#translation .word[data-row='{row}']")
    assert page.locator("#heatmap tbody tr.active").get_attribute("data-row") == str(row)
    assert page.locator("#heatmap th.src.best").get_attribute("data-col") == str(best)
    lit = page.locator("#heatmap th.src.hl").evaluate_all("els => els.map(e => Number(e.dataset.col))")
    assert lit == [j for j, w in enumerate(weights) if w >= 0.05]
    assert f"{round(weights[best] * 100)}%" in page.inner_text("#focus")
    page.screenshot(path=str(tmp_path / "serve.png"), full_page=True)
    if os.environ.get("SEQ2ATTN_SCREENSHOT"):
        shutil.copy(tmp_path / "serve.png", os.environ["SEQ2ATTN_SCREENSHOT"])

    # switch layer and head: the page asks again and shows that head's weights
    before = _matrix(page)[2]
    with page.expect_response("**/v1/translate"):
        page.select_option("#layer", "0")
    with page.expect_response("**/v1/translate"):
        page.select_option("#head", "2")
    page.wait_for_function("() => !document.getElementById('go').disabled")
    head = _api(server, "/v1/translate", {"text": SENTENCE, "attention": True, "layer": 0, "head": 2})
    head_words = head["translations"][0]["words"]
    after = _matrix(page)[2]
    assert after != before
    shown = [[float(title.rsplit(": ", 1)[1].rstrip("%")) for title in r] for r in after]
    assert shown == [[round(w * 100) for w in r] for r in head_words["weights"]]

    # subword pieces on a toggle: the columns become the pieces, </s> included
    page.check("#subword")
    src, tgt, _ = _matrix(page)
    assert src == head["translations"][0]["pieces"]["src"] and src[-1] == "</s>"
    page.uncheck("#subword")

    # n-best list
    for selector in ("#layer", "#head"):
        with page.expect_response("**/v1/translate"):
            page.select_option(selector, "")
    page.fill("#beam", "4")
    page.fill("#nbest", "3")
    _translate(page, SENTENCE)
    page.wait_for_selector("#nbest-list li:nth-child(3)")
    assert page.locator("#nbest-list li").count() == 3
    assert not errors, errors
    assert all(u.startswith(server) for u in requests), requests  # nothing from anywhere else


def test_forced_alignment_mode(server, browser):
    page = browser.new_page(viewport={"width": 900, "height": 700})
    page.goto(server + "/")
    page.wait_for_selector("#selector:not([hidden])")
    page.check("#forced")
    assert page.is_visible("#target") and not page.is_visible("#beam")
    target = "s o j l r h d"
    page.fill("#source", SENTENCE)
    page.fill("#target", target)
    with page.expect_response("**/v1/align"):
        page.click("#go")
    page.wait_for_selector("#result:not([hidden])")
    want = _api(server, "/v1/align", {"source": SENTENCE, "target": target})["alignments"][0]["words"]
    src, tgt, _ = _matrix(page)
    assert src == want["src"] and tgt == want["tgt"] == target.split()
    assert "forced" in page.inner_text("#result-title")
    # a bad request shows the server's one-line error
    page.fill("#target", "")
    page.click("#go")
    assert page.is_visible("#error")


def test_phone_width_and_long_sentences_scroll(server, browser, tmp_path):
    page = browser.new_page(viewport={"width": 375, "height": 740}, device_scale_factor=2, is_mobile=True,
                            has_touch=True)
    page.goto(server + "/")
    page.wait_for_selector("#selector:not([hidden])")
    long = " ".join("abcdefghijklmnopqrstuvwxyz"[i % 26] for i in range(60))
    _translate(page, long)
    src, _, _ = _matrix(page)
    assert len(src) == 60
    # the page itself never scrolls sideways; the heatmap box does
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    box = page.evaluate("(() => { const b = document.getElementById('heatmap-box'); "
                        "return [b.scrollWidth, b.clientWidth]; })()")
    assert box[0] > box[1]
    # column labels never overlap
    spans = page.locator("#heatmap th.src span").evaluate_all(
        "els => els.map(e => { const r = e.getBoundingClientRect(); return [r.left, r.right]; })")
    assert all(a[1] <= b[0] + 0.5 for a, b in itertools.pairwise(spans))
    # tapping a target word highlights too
    page.tap("#translation .word[data-row='0']")
    assert page.locator("#heatmap tbody tr.active").count() == 1
    page.screenshot(path=str(tmp_path / "serve-phone.png"))
