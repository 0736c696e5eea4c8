"""End to end: the viewer page in headless Chromium (Debian's package, driven by Playwright).

Skips only outside CI when the browser or Playwright is missing; under CI (the CI environment
variable set, as .ci/run does) a missing browser fails the test.
"""

import io
import os
from pathlib import Path

import pytest
import torch

from sprig.bonsai import extract_fsm, extract_graph, get_task, write_html
from sprig.nn import BonsaiRNN

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


def _launch(p):
    return p.chromium.launch(
        executable_path=CHROMIUM,
        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
    )


def _watch(page, errors, requests):
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("request", lambda r: requests.append(r.url))


@pytest.mark.slow
def test_viewer_in_chromium(tmp_path):
    _need_browser()
    from playwright.sync_api import sync_playwright

    net = random_pruned_net(2)
    graph = extract_graph(net, task="random")
    steps = [[1.0, -1.0, 1.0], [-1.0, -1.0, 1.0], [1.0, 1.0, -1.0], [-1.0, 1.0, 1.0]]
    trace = graph.trace(torch.tensor([steps]))
    outs = graph.evaluate(torch.tensor([steps]))[0]  # (T, out)
    # targets: the graph's own signs, except output 0 flipped at step 2 (shown as wrong)
    targets = torch.where(outs > 0, 1.0, -1.0)
    targets[1, 0] *= -1
    page_path = write_html(graph, tmp_path / "graph.html", steps, targets=targets.tolist())
    neuron = next(n.id for n in graph.nodes if n.kind == "neuron")

    with sync_playwright() as p:
        browser = _launch(p)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            errors: list[str] = []
            requests: list[str] = []
            _watch(page, errors, requests)
            page.goto(page_path.resolve().as_uri())
            assert page.evaluate("window.sprigViewer.step()") == 0

            # the graph fills its box: drawn at least 80% of the box's width or height
            g = page.eval_on_selector("#graph", "e => e.getBoundingClientRect().toJSON()")
            drawn = page.eval_on_selector("#graph > g", "e => e.getBoundingClientRect().toJSON()")
            assert drawn["width"] >= 0.8 * g["width"] or drawn["height"] >= 0.8 * g["height"]
            # every edge has a dark outline under its value colour, in two halves (into its
            # weight label and out of it); weights are written
            assert page.locator("path.edge-outline").count() == 2 * len(graph.edges)
            weights = page.eval_on_selector_all(
                "#graph text.weight", "els => els.map(e => e.textContent)"
            )
            assert f"{graph.edges[0].weight:.2f}" in weights

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
                panel = page.inner_text("#outputs")
                assert ("wrong" in panel) == (t == 1), (t, panel)  # decoded bit vs target
            assert page.is_disabled("#step")
            page.click("#back")
            assert page.evaluate("window.sprigViewer.step()") == len(steps) - 1
            cursor_x = float(page.get_attribute("#cursor", "x"))
            page.click("#back")
            assert float(page.get_attribute("#cursor", "x")) < cursor_x  # the cursor follows

            # the logic analyzer: one lane per node, one cell per step, values on hover
            assert page.locator("#lanes g.lane").count() == len(graph.nodes)
            assert page.locator("#lanes rect.cell").count() == len(graph.nodes) * len(steps)
            page.hover(f"#lanes rect.cell[data-id='{neuron}'][data-step='3']")
            assert page.inner_text("#hover").endswith(f"{float(trace[neuron][0, 2]):+.3f}")
            assert page.locator("#lanes text.wrong").count() == 1

            assert page.locator("path.feedback").count() == graph.counts()["states"]
            page.click(f"#graph [data-id='{neuron}']")
            panel = page.inner_text("#infobody")
            assert "bias" in panel and neuron in panel

            # an edited input applies at once; an invalid one is shown and nothing plays
            page.fill("#inputs", "101 010")
            assert page.evaluate("window.sprigViewer.step()") == 0
            assert page.locator("#lanes rect.cell").count() == 2 * len(graph.nodes)
            page.click("#step")
            want = graph.trace(torch.tensor([[[1.0, -1.0, 1.0]]]))
            got = page.evaluate("window.sprigViewer.values()")
            assert got[neuron] == pytest.approx(float(want[neuron][0, 0]), abs=1e-9)
            # task "random" has no known targets: an edited input's are unknown, and said so
            assert "target unknown" in page.inner_text("#outputs")
            page.fill("#inputs", "101 01")
            assert "step 2" in page.inner_text("#error")
            assert page.is_disabled("#play") and page.is_disabled("#step")
            page.click("#zin")  # zoom works on any input
            png = page.screenshot(full_page=True)
        finally:
            browser.close()
    assert not errors, errors
    assert all(u.startswith(("file:", "data:", "about:")) for u in requests), requests
    assert _pixels_vary(png)


@pytest.mark.slow
def test_viewer_state_machine_picker_and_phone_width(tmp_path, delay1_graph):
    _need_browser()
    from playwright.sync_api import sync_playwright

    other = extract_graph(random_pruned_net(3), task="random")
    steps = [[1.0], [-1.0], [-1.0], [1.0], [1.0]]
    page_path = write_html([delay1_graph, other], tmp_path / "two.html", steps)
    fsm = extract_fsm(delay1_graph)
    walk = fsm.walk(steps).tolist()

    with sync_playwright() as p:
        browser = _launch(p)
        try:
            page = browser.new_page(viewport={"width": 390, "height": 844})
            errors: list[str] = []
            requests: list[str] = []
            _watch(page, errors, requests)
            page.goto(page_path.resolve().as_uri())
            # the state machine beside the graph, its current state highlighted at each step
            assert page.locator("#fsm .fsm-state").count() == fsm.num_states
            for t in range(len(steps)):
                current = page.get_attribute("#fsm .fsm-state.current", "data-state")
                assert int(current) == walk[t]
                page.click("#step")
            # phone width: nothing wider than the screen; the panels stack under the graph
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, width
            graph_box = page.eval_on_selector(
                "#graphbox", "e => e.getBoundingClientRect().toJSON()"
            )
            side = page.eval_on_selector("#side", "e => e.getBoundingClientRect().toJSON()")
            assert side["top"] >= graph_box["bottom"]
            # the picker switches to the second graph (with its own inputs: 3 bits per step)
            assert page.locator("#picker option").count() == 2
            page.select_option("#picker", "1")
            assert page.evaluate("window.sprigViewer.view()") == 1
            assert page.locator("#graph .node").count() == len(other.nodes)
            assert len(page.input_value("#inputs").split()[0]) == 3
        finally:
            browser.close()
    assert not errors, errors
    assert all(u.startswith(("file:", "data:", "about:")) for u in requests), requests


def _crosses(a, b, box):
    """Whether segment a-b passes through the open box (x0, y0, x1, y1) (Liang-Barsky)."""
    x0, y0, x1, y1 = box
    t0, t1 = 0.0, 1.0
    dx, dy = b[0] - a[0], b[1] - a[1]
    for p, q in ((-dx, a[0] - x0), (dx, x1 - a[0]), (-dy, a[1] - y0), (dy, y1 - a[1])):
        if p == 0:
            if q <= 0:
                return False
        elif p < 0:
            t0 = max(t0, q / p)
        else:
            t1 = min(t1, q / p)
    return t0 < t1


def _page_geometry(page):
    """Edge polylines and text boxes of the graph, in SVG units, as the browser drew them."""
    lines = page.eval_on_selector_all(
        "#graph path.edge, #graph path.feedback",
        "els => els.map(e => e.getAttribute('d').slice(2).split(' L ').map("
        "p => p.split(' ').map(Number)))",
    )
    boxes = page.eval_on_selector_all(
        "#graph text.weight, #graph text.label",
        "els => els.map(e => { const b = e.getBBox(); return [b.x, b.y, b.x + b.width,"
        " b.y + b.height]; })",
    )
    return lines, boxes


@pytest.mark.slow
def test_viewer_labels_wide_graphs_and_edited_targets(tmp_path, delay1_graph):
    """Labels placed by the layout (no edge crosses one), a wide graph fills the box width at
    a legible size, and an edited input gets its targets from the task's machine."""
    _need_browser()
    from playwright.sync_api import sync_playwright

    dense = extract_graph(random_pruned_net(2), task="random")
    wide_net = BonsaiRNN(3, 1, cells=[(14, 6)], seed=1)
    with torch.no_grad():  # every weight kept: the widest layer a 3-input cell gives
        for prm in wide_net.parameters():
            prm.add_(0.3 * torch.sign(prm) + 0.05)
    wide = extract_graph(wide_net, task="random")
    # the delay-1 network again, under the parentheses task: right and wrong steps
    parens = extract_graph(_delay1(), task="parentheses")
    pages = {
        "dense": write_html(dense, tmp_path / "dense.html"),
        "wide": write_html(wide, tmp_path / "wide.html"),
        "delay": write_html(delay1_graph, tmp_path / "delay.html", [[1.0], [-1.0]]),
        "parens": write_html(parens, tmp_path / "parens.html", [[-1.0]]),
    }
    with sync_playwright() as p:
        browser = _launch(p)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            errors: list[str] = []
            requests: list[str] = []
            _watch(page, errors, requests)

            # (c) the wide graph fills the box's width, its nodes drawn at a legible size
            page.goto(pages["wide"].resolve().as_uri())
            box = page.eval_on_selector("#graph", "e => e.getBoundingClientRect().toJSON()")
            rects = page.eval_on_selector_all(
                "#graph rect.node", "els => els.map(e => e.getBoundingClientRect().toJSON())"
            )
            assert min(r["width"] for r in rects) >= 28, rects[0]  # 40 units, at >= 0.7
            drawn = page.eval_on_selector("#graph > g", "e => e.getBoundingClientRect().toJSON()")
            assert drawn["width"] >= 0.9 * box["width"], (drawn, box)

            # (b) no edge segment runs through a weight label or a node's name
            for name in ("dense", "wide"):
                page.goto(pages[name].resolve().as_uri())
                lines, boxes = _page_geometry(page)
                assert len(boxes) == len(page.locator("#graph text.weight").all()) + len(
                    page.locator("#graph text.label").all()
                )
                inner = [(b[0] + 1, b[1] + 1, b[2] - 1, b[3] - 1) for b in boxes]
                clashes = [
                    (a, b, box)
                    for line in lines
                    for a, b in zip(line, line[1:])
                    for box in inner
                    if _crosses(a, b, box)
                ]
                assert not clashes, (name, clashes[:3])

            # (a) an edited input's targets come from the task (delay-1: the previous bit)
            page.goto(pages["delay"].resolve().as_uri())
            page.fill("#inputs", "1 1 0 1 0 0")
            x = torch.tensor([[[1.0], [1.0], [-1.0], [1.0], [-1.0], [-1.0]]])
            _, y = _targets(get_task("delay-1"), x)
            assert page.evaluate("window.sprigViewer.targets()") == y.tolist()
            for _ in range(6):
                page.click("#step")
                assert "right" in page.inner_text("#outputs")
            assert page.locator("#lanes text.right").count() == 6

            # parentheses: "(" then ")" are known (not balanced, balanced); a third ")" goes
            # below depth 0, an input the task never yields: target unknown from there on
            page.goto(pages["parens"].resolve().as_uri())
            page.fill("#inputs", "0 1 1 0")
            assert page.evaluate("window.sprigViewer.targets()") == [[-1.0], [1.0], None, None]
            outputs = parens.evaluate(torch.tensor([[[-1.0], [1.0], [1.0], [-1.0]]]))[0, :, 0]
            right = [(float(outputs[0]) > 0) is False, float(outputs[1]) > 0]
            assert page.locator("#lanes text.right").count() == sum(right)
            assert page.locator("#lanes text.wrong").count() == 2 - sum(right)
            assert page.locator("#lanes text.unknown").count() == 2
            for _ in range(3):
                page.click("#step")
            assert "target unknown" in page.inner_text("#outputs")
            assert "never yields" in page.inner_text("#unknown-why")
        finally:
            browser.close()
    assert not errors, errors
    assert all(u.startswith(("file:", "data:", "about:")) for u in requests), requests


def _delay1():
    from .conftest import delay1_net

    return delay1_net()


def _targets(task, x):
    """The task's own targets for input ``x (1, T, in)``, from its step function."""
    state = task.initial_state.float().expand(1, -1).clone()
    ys = []
    for x_t in x.unbind(1):
        state, y_t = task.step(state, x_t)
        ys.append(y_t)
    return x, torch.stack(ys, 1)[0]
