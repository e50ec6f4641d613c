"""The lifecycle drawn as SVG on the server, from the definition alone (no network, no JS).

States are laid out in rows by their distance from the initial state (networkx BFS layers);
forward moves are straight arrows, moves back up the page (rework, redeployment) are curves on the
right, and the quarantine state sits apart with a note that any state can enter it.
"""

from __future__ import annotations

from html import escape

import networkx as nx

from app.core.definitions import ANY_STATE, RETURN, Lifecycle

NODE_W, NODE_H, ROW_H, COL_W, MARGIN, TOP = 190, 38, 70, 230, 110, 30


def layout(lifecycle: Lifecycle) -> tuple[dict[str, tuple[float, float]], list[tuple[str, str, str]], set[str]]:
    graph = nx.DiGraph()
    graph.add_nodes_from(lifecycle.state_ids)
    edges: list[tuple[str, str, str]] = []
    held = set()
    for t in lifecycle.transitions:
        if ANY_STATE in t.from_:
            held.add(t.to)
            continue
        for source in t.from_:
            target = RETURN if t.to == RETURN else t.to
            edges.append((source, target, t.name))
            if target != RETURN:
                graph.add_edge(source, target)
    rows = list(nx.bfs_layers(graph, [lifecycle.initial]))
    placed = {s for row in rows for s in row}
    positions: dict[str, tuple[float, float]] = {}
    width = max(len(row) for row in rows) * COL_W
    for r, row in enumerate(rows):
        ordered = sorted(row, key=lifecycle.state_ids.index)
        for c, state in enumerate(ordered):
            x = MARGIN + (width - len(ordered) * COL_W) / 2 + c * COL_W + (COL_W - NODE_W) / 2
            positions[state] = (x, TOP + r * ROW_H)
    for i, state in enumerate(s for s in lifecycle.state_ids if s not in placed):
        positions[state] = (MARGIN + width + 60, TOP + (i + 1) * ROW_H * 3)
    return positions, edges, held


def render_svg(lifecycle: Lifecycle) -> str:
    positions, edges, held = layout(lifecycle)
    width = max(x for x, _ in positions.values()) + NODE_W + MARGIN + 40
    height = max(y for _, y in positions.values()) + NODE_H + TOP
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0f} {height:.0f}" '
        f'role="img" aria-label="Module lifecycle" class="lifecycle" font-family="system-ui, sans-serif">',
        "<defs><marker id='arrow' viewBox='0 0 10 10' refX='9' refY='5' markerWidth='7' markerHeight='7' "
        "orient='auto-start-reverse'><path d='M0,0 L10,5 L0,10 z' fill='#475569'/></marker></defs>",
    ]
    centre = positions[lifecycle.initial][0] + NODE_W / 2
    for source, target, name in edges:
        if target == RETURN:
            continue
        (x1, y1), (x2, y2) = positions[source], positions[target]
        if y2 > y1:  # forward: straight down
            sx, sy, tx, ty = x1 + NODE_W / 2, y1 + NODE_H, x2 + NODE_W / 2, y2
            parts.append(
                f'<line x1="{sx:.0f}" y1="{sy:.0f}" x2="{tx:.0f}" y2="{ty:.0f}" stroke="#475569" '
                f'stroke-width="1.5" marker-end="url(#arrow)"><title>{escape(name)}</title></line>'
            )
            parts.append(
                f'<text x="{(sx + tx) / 2 + 4:.0f}" y="{(sy + ty) / 2 + 4:.0f}" font-size="10" '
                f'fill="#475569">{escape(name)}</text>'
            )
        else:  # back up the page: a curve on the outer side of the source
            left = x1 + NODE_W / 2 < centre
            sx = x1 if left else x1 + NODE_W
            tx = x2 if left else x2 + NODE_W
            sy, ty = y1 + NODE_H / 2, y2 + NODE_H / 2
            reach = 40 + abs(sy - ty) / 8
            bulge = min(sx, tx) - reach if left else max(sx, tx) + reach
            parts.append(
                f'<path d="M{sx:.0f},{sy:.0f} C{bulge:.0f},{sy:.0f} {bulge:.0f},{ty:.0f} {tx:.0f},{ty:.0f}" '
                f'fill="none" stroke="#94a3b8" stroke-width="1.5" stroke-dasharray="5 3" '
                f'marker-end="url(#arrow)"><title>{escape(name)}</title></path>'
            )
            anchor = "end" if left else "start"
            label_x = bulge - 3 if left else bulge + 3
            parts.append(
                f'<text x="{label_x:.0f}" y="{(sy + ty) / 2:.0f}" font-size="10" fill="#64748b" '
                f'text-anchor="{anchor}">{escape(name)}</text>'
            )
    for state in lifecycle.states:
        x, y = positions[state.id]
        stroke = ' stroke="#0f172a" stroke-width="3"' if state.terminal else ""
        parts.append(
            f'<g class="state" data-state="{escape(state.id)}"><title>{escape(state.description)}</title>'
            f'<rect x="{x:.0f}" y="{y:.0f}" width="{NODE_W}" height="{NODE_H}" rx="8" '
            f'fill="{escape(state.color)}"{stroke}/>'
            f'<text x="{x + NODE_W / 2:.0f}" y="{y + NODE_H / 2 + 5:.0f}" text-anchor="middle" font-size="14" '
            f'font-weight="600" fill="#fff">{escape(state.label)}</text></g>'
        )
        if state.id in held:
            parts.append(
                f'<text x="{x:.0f}" y="{y - 8:.0f}" font-size="11" fill="#475569">from any state (hold); '
                f"release returns</text>"
            )
    parts.append("</svg>")
    return "".join(parts)
