"""The layer graph as a picture's source: Mermaid (GitHub renders it in Markdown) or DOT.

    print(diagram(model, "mermaid"))

Nodes are the model inputs, the layers and the model outputs; each edge carries the shape of
the tensor it moves, batch axis first, as `layerc summary` prints it. Node ids are generated
(`i0`, `n3`, `o0`), so no layer name can clash with a keyword; names and shapes are escaped.
"""
from __future__ import annotations

from .compiler import keras_shape


def graph_parts(model) -> tuple[list, list]:
    """(nodes, edges) of a compiled model.

    nodes: (id, kind, name, label lines) with kind "input", "layer" or "output";
    edges: (from id, to id, shape text), in execution order.
    """
    graph = model.graph
    ids, nodes, edges = {}, [], []
    for i, (name, inp) in enumerate(graph.inputs.items()):
        ids[name] = f"i{i}"
        nodes.append((ids[name], "input", name, [name, "InputLayer"]))
    for node in graph.nodes:
        ids[node.name] = f"n{node.index}"
        detail = node.layer.spec.type + (f", {node.n_params:,} params" if node.n_params else "")
        nodes.append((ids[node.name], "layer", node.name, [node.name, detail]))
        edges += [(ids[src], ids[node.name], keras_shape(graph.shapes[src])) for src in node.inputs]
    for i, name in enumerate(graph.outputs):
        nodes.append((f"o{i}", "output", name, ["output" if len(graph.outputs) == 1 else f"output {name}"]))
        edges.append((ids[name], f"o{i}", keras_shape(graph.shapes[name])))
    return nodes, edges


def mermaid_text(text: str) -> str:
    """Text for a quoted Mermaid label: `#` first, then the characters its grammar reserves,
    as entity codes (`#quot;`), which Mermaid turns back into the characters."""
    out = text.replace("#", "#35;")
    for ch, code in (('"', "#quot;"), ("<", "#lt;"), (">", "#gt;"), ("|", "#124;"),
                     ("[", "#91;"), ("]", "#93;"), ("{", "#123;"), ("}", "#125;")):
        out = out.replace(ch, code)
    return out


def mermaid(model) -> str:
    """A Mermaid `flowchart TD`: inputs and outputs as rounded stadiums, layers as boxes."""
    nodes, edges = graph_parts(model)
    lines = ["flowchart TD"]
    for nid, kind, _, label in nodes:
        text = "<br/>".join(mermaid_text(t) for t in label)
        lines.append(f'    {nid}(["{text}"])' if kind != "layer" else f'    {nid}["{text}"]')
    for a, b, shape in edges:
        lines.append(f'    {a} -->|"{mermaid_text(shape)}"| {b}')
    return "\n".join(lines) + "\n"


def dot_string(text: str) -> str:
    """A double-quoted DOT string."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def dot(model) -> str:
    """A Graphviz digraph, top to bottom; inputs and outputs as ellipses, layers as boxes."""
    nodes, edges = graph_parts(model)
    lines = [f"digraph {dot_string(model.name)} {{", "    rankdir=TB;",
             '    node [shape=box, style=rounded, fontname="Helvetica"];',
             '    edge [fontname="Helvetica", fontsize=10];']
    for nid, kind, _, label in nodes:
        shape = ", shape=ellipse" if kind != "layer" else ""
        lines.append(f"    {nid} [label={dot_string(chr(10).join(label))}{shape}];")
    for a, b, shape in edges:
        lines.append(f"    {a} -> {b} [label={dot_string(shape)}];")
    return "\n".join(lines) + "\n}\n"


def diagram(model, format: str) -> str:
    """The graph in `format`: "mermaid" or "dot"."""
    return {"mermaid": mermaid, "dot": dot}[format](model)
