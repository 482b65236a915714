"""`layerc summary --format mermaid|dot` (issue 15, point 5): the layer graph with the output
shapes on its edges."""
from __future__ import annotations

import html
import re
from pathlib import Path

import pytest

from tests.modules import modules_after
from typer.testing import CliRunner

import layerc
from layerc.cli import app
from layerc.compiler import keras_shape
from layerc.diagram import diagram, dot_string, mermaid_text
from layerc.spec import parse_spec

ROOT = Path(__file__).resolve().parents[2]

GRAPH = """
inputs: {image: {shape: [8, 8, 3]}, extra: {shape: [4]}}
layers:
  - Conv2D: {filters: 4, kernel_size: 3, padding: same, inputs: image, name: a}
  - BatchNormalization: {name: end}
  - Conv2D: {filters: 4, kernel_size: 3, padding: same}
  - Add: {inputs: [a, conv2d]}
  - GlobalAveragePooling2D
  - Concatenate: {inputs: [global_average_pooling2d, extra]}
  - Dense: {units: 2, activation: softmax, name: class}
  - Dense: {units: 1, inputs: concatenate, name: score}
outputs: [class, score]
"""

# ---- a structural parser for the Mermaid constructs the diagrams use ----------------------------
# flowchart grammar (mermaid flowchart.jison): a `flowchart TD` header, then one statement a line:
# a node `id["text"]` (rectangle) or `id(["text"])` (stadium), or a link `id -->|"text"| id`. A
# quoted string holds no `"`; entity codes `#name;`/`#123;` stand for characters.
_ID = r"[A-Za-z][A-Za-z0-9_]*"
_STR = r'"([^"]*)"'
NODE = re.compile(rf"^    ({_ID})(?:\[{_STR}\]|\(\[{_STR}\]\))$")
EDGE = re.compile(rf"^    ({_ID}) -->\|{_STR}\| ({_ID})$")


def _unentity(text: str) -> str:
    text = re.sub(r"#(\d+);", lambda m: chr(int(m.group(1))), text)
    return re.sub(r"#([a-z]+);", lambda m: html.unescape(f"&{m.group(1)};"), text)


def parse_mermaid(text: str):
    lines = text.splitlines()
    assert lines[0] == "flowchart TD"
    nodes, edges = {}, []
    for line in lines[1:]:
        m, e = NODE.match(line), EDGE.match(line)
        assert m or e, f"not a Mermaid flowchart statement: {line!r}"
        if m:
            label = m.group(2) if m.group(2) is not None else m.group(3)
            assert not re.search(r"[<>|\[\]{}]", label.replace("<br/>", "")), label
            assert m.group(1) not in nodes
            nodes[m.group(1)] = [_unentity(t) for t in label.split("<br/>")]
        else:
            edges.append((e.group(1), e.group(3), _unentity(e.group(2))))
    for a, b, _ in edges:
        assert a in nodes and b in nodes, (a, b)  # an edge never declares a node implicitly
    return nodes, edges


# ---- a structural parser for DOT (the graphviz package builds, it does not parse) --------------
_DOT_STR = r'"((?:[^"\\]|\\.)*)"'
DOT_NODE = re.compile(rf"^    ({_ID}) \[label={_DOT_STR}(, shape=ellipse)?\];$")
DOT_EDGE = re.compile(rf"^    ({_ID}) -> ({_ID}) \[label={_DOT_STR}\];$")


def _dot_unquote(s: str) -> str:
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), s)


def parse_dot(text: str):
    lines = text.splitlines()
    head = re.match(rf"^digraph {_DOT_STR} \{{$", lines[0])
    assert head and lines[-1] == "}"
    nodes, edges = {}, []
    for line in lines[1:-1]:
        if line.strip() in ("rankdir=TB;", 'node [shape=box, style=rounded, fontname="Helvetica"];',
                            'edge [fontname="Helvetica", fontsize=10];'):
            continue
        n, e = DOT_NODE.match(line), DOT_EDGE.match(line)
        assert n or e, f"not a DOT statement: {line!r}"
        if n:
            nodes[n.group(1)] = _dot_unquote(n.group(2)).split("\n")
        else:
            edges.append((e.group(1), e.group(2), _dot_unquote(e.group(3))))
    for a, b, _ in edges:
        assert a in nodes and b in nodes
    return _dot_unquote(head.group(1)), nodes, edges


def _expected(model):
    """(node names, edges by name with shapes) straight from the compiled graph."""
    g = model.graph
    names = list(g.inputs) + [n.name for n in g.nodes] + [f"output:{o}" for o in g.outputs]
    edges = {(src, n.name, keras_shape(g.shapes[src])) for n in g.nodes for src in n.inputs}
    edges |= {(o, f"output:{o}", keras_shape(g.shapes[o])) for o in g.outputs}
    return names, edges


def _by_name(nodes, edges, outputs):
    name = {}
    for nid, label in nodes.items():
        if nid.startswith("o"):
            name[nid] = "output:" + (label[0].removeprefix("output ") if len(outputs) > 1 else outputs[0])
        else:
            name[nid] = label[0]
    return sorted(name.values()), {(name[a], name[b], s) for a, b, s in edges}


@pytest.mark.parametrize("source", ["specs/mnist_cnn.yaml", "specs/mnist_resnet.yaml", "specs/sms_spam_lstm.yaml",
                                    GRAPH])
def test_mermaid_and_dot_hold_every_node_and_every_edge_with_its_shape(source):
    spec = layerc.load_spec(ROOT / source) if source.endswith(".yaml") else parse_spec(source)
    model = layerc.build(spec)
    names, edges = _expected(model)
    m_nodes, m_edges = parse_mermaid(diagram(model, "mermaid"))
    assert _by_name(m_nodes, m_edges, model.graph.outputs) == (sorted(names), edges)
    title, d_nodes, d_edges = parse_dot(diagram(model, "dot"))
    assert title == model.name
    assert _by_name(d_nodes, d_edges, model.graph.outputs) == (sorted(names), edges)
    types = {n.name: n.layer.spec.type for n in model.nodes}
    for label in m_nodes.values():  # layers say their type (and parameter count)
        if label[0] in types:
            assert label[1].split(",")[0] == types[label[0]]


def test_the_seed_cnn_as_mermaid():
    text = diagram(layerc.build(layerc.load_spec(ROOT / "specs/mnist_cnn.yaml")), "mermaid")
    assert text.splitlines()[:3] == ["flowchart TD", '    i0(["input_layer<br/>InputLayer"])',
                                     '    n0["conv2d<br/>Conv2D, 320 params"]']
    assert '    n4 -->|"(None, 1600)"| n5' in text and '    n7 -->|"(None, 10)"| o0' in text


def test_graph_branches_merge_and_two_outputs():
    model = layerc.build(parse_spec(GRAPH))
    nodes, edges = parse_mermaid(diagram(model, "mermaid"))
    add = next(k for k, v in nodes.items() if v[0] == "add")
    into_add = sorted(s for a, b, s in edges if b == add)
    assert into_add == ["(None, 8, 8, 4)", "(None, 8, 8, 4)"]
    assert sorted(v[0] for k, v in nodes.items() if k.startswith("o")) == ["output class", "output score"]
    assert nodes["n1"][0] == "end"  # a Mermaid keyword as a layer name: ids are generated


HOSTILE = 'a "quoted" <b>|x|</b> [1] {2} #3; \\ end'


def test_labels_are_escaped_and_read_back():
    m = mermaid_text(HOSTILE)
    assert not re.search(r'["<>|\[\]{}]', m)
    assert _unentity(m) == HOSTILE
    d = dot_string(HOSTILE + "\nline")
    assert re.fullmatch(_DOT_STR, d) and _dot_unquote(d[1:-1]) == HOSTILE + "\nline"


def test_cli_writes_the_diagram_unchanged(tmp_path):
    model = layerc.build(layerc.load_spec(ROOT / "specs/mnist_resnet.yaml"))
    for fmt in ("mermaid", "dot"):
        r = CliRunner().invoke(app, ["summary", str(ROOT / "specs/mnist_resnet.yaml"), "--format", fmt])
        assert r.exit_code == 0, r.output
        assert r.output == diagram(model, fmt)  # `[...]` not taken for Rich markup, no wrapping
    r = CliRunner().invoke(app, ["summary", str(ROOT / "specs/mnist_cnn.yaml"), "--format", "svg"])
    assert r.exit_code == 2 and "svg" in r.output


def test_plain_summary_does_not_import_the_diagram_module():
    assert "layerc.diagram" not in modules_after("summary", "specs/mnist_cnn.yaml")[1]


def test_dot_parses_with_pydot_when_installed():
    pydot = pytest.importorskip("pydot")
    model = layerc.build(parse_spec(GRAPH))
    (graph,) = pydot.graph_from_dot_data(diagram(model, "dot"))
    assert len(graph.get_edges()) == len(_expected(model)[1])


def test_the_readme_example_is_the_seed_cnns_diagram():
    block = re.search(r"```mermaid\n(.*?)```", (ROOT / "README.md").read_text(), re.S).group(1)
    assert block == diagram(layerc.build(layerc.load_spec(ROOT / "specs/mnist_cnn.yaml")), "mermaid")
