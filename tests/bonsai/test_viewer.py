import re

import pytest

from sprig.bonsai import layout, parse_inputs, render_html, write_html


def test_parse_inputs():
    assert parse_inputs(" 1 0\n+ - ", 1) == [[1.0], [-1.0], [1.0], [-1.0]]
    assert parse_inputs("100,011", 3) == [[1.0, -1.0, -1.0], [-1.0, 1.0, 1.0]]


@pytest.mark.parametrize(
    "text,width,match",
    [
        ("1 0 2 1", 1, r"step 3 is '2': symbols \['2'\] are not 0/1"),
        ("1 x", 1, r"step 2 is 'x'"),
        ("10 01", 3, "it has 2 characters; each step needs 3"),
        ("   ", 1, "no time steps"),
    ],
)
def test_parse_inputs_errors(text, width, match):
    with pytest.raises(ValueError, match=match):
        parse_inputs(text, width)


def test_layout_from_library(delay1_graph):
    pos = layout(delay1_graph)
    assert set(pos) == {n.id for n in delay1_graph.nodes}
    # Sugiyama layers: an edge always goes to a lower layer (larger y)
    for e in delay1_graph.edges:
        assert pos[e.dst][1] > pos[e.src][1]


def test_page_is_self_contained(delay1_graph, tmp_path):
    html = render_html(delay1_graph, [[1.0], [-1.0], [1.0]])
    assert "__SPRIG_" not in html
    # nothing is fetched: no external scripts, styles, images or fonts
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "@import" not in html and "url(http" not in html
    assert '"inputs": [[1.0], [-1.0], [1.0]]' in html
    path = write_html(delay1_graph, tmp_path / "g.html")
    assert path.read_text().startswith("<!DOCTYPE html>")


def test_page_escapes_script_end(delay1_graph):
    delay1_graph.meta["task"] = "</script><b>"
    html = render_html(delay1_graph, [[1.0]])
    assert html.count("</script>") == 2  # the two real ones
    assert "<\\/script>" in html


def test_render_refuses_bad_inputs(delay1_graph):
    with pytest.raises(ValueError, match="needs 1 values of"):
        render_html(delay1_graph, [[1.0, 1.0]])
    with pytest.raises(ValueError, match="values of \\+-1"):
        render_html(delay1_graph, [[0.5]])


def test_messages_count_one_thing_in_the_singular():
    with pytest.raises(ValueError, match="it has 1 character[^s]"):
        parse_inputs("1 10", 2)
    with pytest.raises(ValueError, match="it has 3 characters"):
        parse_inputs("101", 2)


def _routes_clear(d, graph):
    """Every route's pieces stay out of every node and label box but their own ends'."""
    r = d["node_radius"]
    boxes = {nid: (x - r, y - r, x + r, y + r) for nid, (x, y) in d["positions"].items()}
    for k, e in enumerate(d["edges"]):
        lx, ly = e["label"]
        w = len(f"{graph.edges[k].weight:.2f}") * 7.3 / 2
        boxes[k] = (lx - w, ly - 8, lx + w, ly + 8)

    def inside(p, box):  # strictly: a point on a box's edge touches it, it does not enter it
        return box[0] < p[0] < box[2] and box[1] < p[1] < box[3]

    halves = [h for e in d["edges"] for h in (e["route"][: e["split"]], e["route"][e["split"] :])]
    for line in halves + [f["route"] for f in d["feedback"]]:
        for a, b in zip(line, line[1:]):
            for t in (0.0, 0.25, 0.5, 0.75, 1.0):  # pieces are short: sample them
                p = (a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t)
                assert not any(inside(p, box) for box in boxes.values()), (a, b, p)


@pytest.mark.parametrize("seed", [0, 2])
def test_drawing_routes_edges_around_nodes_and_labels(seed):
    from sprig.bonsai import drawing, extract_graph

    from .conftest import random_pruned_net

    graph = extract_graph(random_pruned_net(seed), task="random")
    d = drawing(graph)
    pos, r = d["positions"], d["node_radius"]
    for e, route in zip(graph.edges, d["edges"]):
        pts = route["route"]
        # from the source's bottom, through the label (broken at it), to the target's top
        assert pts[0] == [pos[e.src][0], pos[e.src][1] + r]
        assert pts[-1] == [pos[e.dst][0], pos[e.dst][1] - r]
        k = route["split"]
        assert pts[k - 1][0] == pts[k][0] == route["label"][0]
        assert pts[k - 1][1] < route["label"][1] < pts[k][1]
    assert len(d["feedback"]) == graph.counts()["states"]
    _routes_clear(d, graph)


def test_page_carries_the_task_targets_machine(delay1_graph):
    import json

    def views(html):
        data = html.split('type="application/json">', 1)[1].split("</script>", 1)[0]
        return json.loads(data)["views"]

    (view,) = views(render_html(delay1_graph, [[1.0]]))  # meta task "delay-1": a built-in
    assert view["task_machine"]["transitions"] == [[0, 1], [0, 1]]
    assert view["task_machine"]["outputs"] == [[0, 0], [1, 1]]
    delay1_graph.meta["task"] = "random"  # no such task: its targets are unknown
    assert views(render_html(delay1_graph, [[1.0]]))[0]["task_machine"] is None
    # a task given by the caller (a user's) is used for the graphs of its name
    from sprig.bonsai import StepTask

    never = StepTask("random", 1, 1, lambda s, x: (s, -x))
    machine = views(render_html(delay1_graph, [[1.0]], task=never))[0]["task_machine"]
    assert machine["outputs"] == [[1, 0]]
