"""End to end: the viewer page in headless Chromium (Debian's package, driven by Playwright).

Skips only outside CI when the browser or Playwright is missing; under CI (the CI environment
variable set, as .ci/run does) a missing browser fails the test.
"""

import io
import os
from pathlib import Path

import pytest
import torch

from sprig.bonsai import extract_graph, write_html

from .conftest import random_pruned_net

CHROMIUM = "/usr/bin/chromium"


def _need_browser():
    missing = None
    try:
        from playwright.sync_api import sync_playwright  # noqa: F401
    except ImportError:
        missing = "playwright is not installed (pip install -e '.[dev]')"
    if missing is None and not Path(CHROMIUM).exists():
        missing = f"{CHROMIUM} is missing (apt-get install -y chromium)"
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"the browser test must run in CI: {missing}")
        pytest.skip(missing)


def _pixels_vary(png: bytes) -> bool:
    from PIL import Image

    img = Image.open(io.BytesIO(png)).convert("RGB")
    colours = img.getcolors(maxcolors=1 << 20) or []
    return len(colours) > 20  # a blank page has one or two


@pytest.mark.slow
def test_viewer_in_chromium(tmp_path):
    _need_browser()
    from playwright.sync_api import sync_playwright

    net = random_pruned_net(2)
    graph = extract_graph(net, task="random")
    steps = [[1.0, -1.0, 1.0], [-1.0, -1.0, 1.0], [1.0, 1.0, -1.0], [-1.0, 1.0, 1.0]]
    page_path = write_html(graph, tmp_path / "graph.html", steps)
    trace = graph.trace(torch.tensor([steps]))
    neuron = next(n.id for n in graph.nodes if n.kind == "neuron")

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = browser.new_page()
            errors: list[str] = []
            requests: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(page_path.resolve().as_uri())
            assert page.evaluate("window.sprigViewer.step()") == 0

            def fills():
                return page.eval_on_selector_all(
                    ".node", "els => els.map(e => e.getAttribute('fill'))"
                )

            before = fills()
            for t in range(len(steps)):
                page.click("#step")
                assert page.evaluate("window.sprigViewer.step()") == t + 1
                values = page.evaluate("window.sprigViewer.values()")
                for node_id, series in trace.items():
                    assert values[node_id] == pytest.approx(float(series[0, t]), abs=1e-9)
                if t == 0:
                    assert fills() != before  # the nodes took their values' colours
            edge_colours = page.eval_on_selector_all(
                "path.edge", "els => els.map(e => e.getAttribute('stroke'))"
            )
            assert all(c and c.startswith("rgb(") for c in edge_colours)
            assert page.locator("path.feedback").count() == graph.counts()["states"]
            assert page.locator("path.feedback").first.get_attribute("class") == "feedback"
            page.click(f"[data-id='{neuron}']")
            panel = page.inner_text("#infobody")
            assert "bias" in panel and neuron in panel
            assert page.locator("#plot polyline").count() > 0
            page.click("#reset")
            assert page.evaluate("window.sprigViewer.step()") == 0
            png = page.screenshot(full_page=True)
        finally:
            browser.close()
    assert not errors, errors
    assert all(u.startswith(("file:", "data:", "about:")) for u in requests), requests
    assert _pixels_vary(png)
