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
