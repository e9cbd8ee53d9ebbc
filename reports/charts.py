"""Chart types (`registry.chart_types`): a widget's data as a Vega-Lite (or Vega) specification.

One specification serves both renderers (ADR 0012): the browser draws it with the vendored
vega-embed (web/static/vendor, interactive, no network), and `render_svg` / `render_png` turn
the same specification into SVG or PNG with vl-convert for e-mails and exports, with the Noto
CJK fonts registered so Chinese labels render. KPI numbers and tables are drawn as HTML in the
browser and as a Vega text chart for images.

A chart type declares `name`, `aliases`, `options_schema` (its extra widget keys), `description`,
`examples`, `check_shape(dimensions, measures)` and `spec(data) -> dict`.
"""

from __future__ import annotations

import json
import threading
import unicodedata
from abc import abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from engine.registry import BUILT_IN

FONT = "Noto Sans CJK SC"
FONT_DIRS = ("/usr/share/fonts/opentype/noto", "/usr/share/fonts/truetype/noto", "/usr/share/fonts/noto-cjk")
# Sixteen colours: a flow's backlog by step runs past ten series (accept and the reply to the
# customer were both blue), so the first ten are followed by light and dark companions.
PALETTE = ["#2f6fb0", "#e07b39", "#3a9d5d", "#c4453c", "#8a63b8", "#8c6d4f", "#d16ba5", "#7f7f7f",
           "#b5b82f", "#2fb5c4", "#9cc3e8", "#f4b27f", "#93d3a2", "#1f3f66", "#7a2a24", "#c9b3e3"]


@dataclass(frozen=True)
class ChartData:
    """What a chart draws: rows with safe field names d0.., m0.. (Vega reads dots as paths)."""

    title: str
    dimensions: Sequence[tuple[str, str, str]]  # (field d0, title, kind: date|text)
    measures: Sequence[tuple[str, str, str]]  # (field m0, title, format)
    values: Sequence[Mapping[str, Any]]  # d0 (label text), m0..., _p (row index)
    options: Mapping[str, Any]
    previous: Mapping[str, Any] | None = None
    width: int = 520
    height: int = 260


def _config() -> dict[str, Any]:
    return {"font": FONT, "view": {"stroke": None}, "range": {"category": PALETTE},
            "axis": {"labelFontSize": 11, "titleFontSize": 11, "labelLimit": 140},
            "legend": {"labelFontSize": 11, "titleFontSize": 11, "labelLimit": 160},
            "title": {"fontSize": 14, "anchor": "start"}}


def _base(data: ChartData) -> dict[str, Any]:
    return {"$schema": "https://vega.github.io/schema/vega-lite/v6.json", "title": data.title,
            "width": data.width, "height": data.height, "data": {"values": list(data.values)},
            "config": _config(), "usermeta": {"renderer": "vega-lite"}}


def _fmt(fmt: str) -> str:
    return {"percent": ".1%", "hours": ",.1f", "days": ",.1f"}.get(fmt, ",.4~f")


def _value_axis(data: ChartData, fmt: str) -> dict[str, Any]:
    """A value axis in the measure's format; when every value drawn is a whole number (counts),
    its ticks are whole too: a ranking drawn wide for a scheduled report read 0.5, 1.5 ... complaints."""
    axis: dict[str, Any] = {"format": _fmt(fmt)}
    drawn = [v.get(m) for v in data.values for m, _, _ in data.measures]
    if fmt != "percent" and all(_whole(x) for x in drawn if x is not None):
        axis["tickMinStep"] = 1
    return axis


def _whole(value: Any) -> bool:
    try:
        return float(value).is_integer()
    except (TypeError, ValueError):
        return False


def _tooltip(data: ChartData) -> list[dict[str, Any]]:
    return ([{"field": d, "type": "nominal", "title": t} for d, t, _ in data.dimensions]
            + [{"field": m, "type": "quantitative", "title": t, "format": _fmt(f)} for m, t, f in data.measures])


def _long(data: ChartData) -> tuple[list[dict[str, Any]], bool]:
    """Several measures become one 'series' column (fold), so they can share an axis."""
    if len(data.measures) == 1:
        return [dict(v) for v in data.values], False
    rows = []
    for v in data.values:
        for m, title, _ in data.measures:
            rows.append({**v, "series": title, "value": v.get(m)})
    return rows, True


class ChartType:
    name = ""
    aliases: tuple[str, ...] = ()
    description = ""
    examples: tuple[str, ...] = ()
    options_schema: dict[str, Any] = {"properties": {}}
    dims = (0, 3)
    measures_range = (1, 8)
    default_width = 6
    mode = "vega-lite"  # or "vega", "html"

    def check_shape(self, dimensions: int, measures: int) -> str | None:
        low, high = self.dims
        if not low <= dimensions <= high:
            want = f"{low}" if low == high else f"{low} to {high}"
            return f"a {self.name} chart takes {want} dimension(s), not {dimensions}"
        mlow, mhigh = self.measures_range
        if not mlow <= measures <= mhigh:
            want = f"{mlow}" if mlow == mhigh else f"{mlow} to {mhigh}"
            return f"a {self.name} chart takes {want} measure(s), not {measures}"
        return None

    @abstractmethod
    def spec(self, data: ChartData) -> dict[str, Any]:
        raise NotImplementedError


def checked_spec(chart: ChartType, data: ChartData, source: str) -> Mapping[str, Any]:
    """`chart.spec(data)`, checked when the chart type is a plugin's (`source`): anything but a
    mapping JSON can carry is a bug in that plugin, named here, instead of `"spec": null`
    reaching the browser (an empty widget) or a serialisation error far from its cause."""
    spec = chart.spec(data)
    if source == BUILT_IN:
        return spec
    problem = None
    if not isinstance(spec, Mapping):
        problem = f"returned {type(spec).__name__}, not a specification (a dict)"
    else:
        try:
            json.dumps(spec)
        except (TypeError, ValueError) as exc:
            problem = f"returned a specification JSON cannot carry ({exc})"
    if problem is not None:
        raise TypeError(f"chart type '{chart.name}' (from {source}): spec(data) {problem}: "
                        "a bug in that plugin")
    return spec


class Kpi(ChartType):
    name = "kpi"
    description = "Big numbers; with `compare: previous_period` the change against the period before."
    dims = (0, 0)
    measures_range = (1, 4)
    default_width = 3
    mode = "html"

    def spec(self, data: ChartData) -> dict[str, Any]:
        row = data.values[0] if data.values else {}
        layers = []
        for i, (m, title, fmt) in enumerate(data.measures):
            value = row.get(m)
            text = "-" if value is None else _format_number(value, fmt)
            delta = ""
            if data.previous and data.previous.get(m) not in (None, 0) and value is not None:
                change = (value - data.previous[m]) / abs(data.previous[m])
                delta = f"{'+' if change >= 0 else ''}{change:.1%}"
            layers.append({"mark": {"type": "text", "fontSize": 28, "fontWeight": "bold", "align": "left",
                                    "x": 10 + i * 170, "y": 50, "text": text}})
            layers.append({"mark": {"type": "text", "fontSize": 12, "align": "left", "x": 10 + i * 170, "y": 15,
                                    "text": title, "color": "#555"}})
            if delta:
                layers.append({"mark": {"type": "text", "fontSize": 12, "align": "left", "x": 10 + i * 170, "y": 80,
                                        "text": delta, "color": "#3a9d5d" if delta.startswith("+") else "#c4453c"}})
        spec = _base(data)
        spec.update(width=max(180, 170 * len(data.measures)), height=95, data={"values": [{}]}, layer=layers)
        return spec


class Table(ChartType):
    name = "table"
    description = "Rows of dimensions and measures with a totals row (sums of counts and sums)."
    dims = (0, 3)
    mode = "html"

    def spec(self, data: ChartData) -> dict[str, Any]:
        columns = [t for _, t, _ in data.dimensions] + [t for _, t, _ in data.measures]
        values = []
        for r, row in enumerate(list(data.values)[:40]):
            cells = [str(row.get(d, "")) for d, _, _ in data.dimensions]
            cells += [_format_number(row.get(m), f) for m, _, f in data.measures]
            for c, text in enumerate(cells):
                values.append({"r": r, "c": columns[c], "t": text})
        spec = _base(data)
        spec.update(data={"values": values}, height=18 * (len(values) // max(1, len(columns)) + 1),
                    mark={"type": "text", "align": "left"},
                    encoding={"y": {"field": "r", "type": "ordinal", "axis": None},
                              "x": {"field": "c", "type": "ordinal", "sort": columns, "axis": {"orient": "top", "title": None, "labelAngle": 0}},
                              "text": {"field": "t"}})
        return spec


class Bar(ChartType):
    name = "bar"
    description = "Bars per dimension value; `horizontal: true`, a second dimension or several measures `stacked: true`."
    dims = (1, 2)
    options_schema = {"properties": {"horizontal": {"type": "boolean"}, "stacked": {"type": "boolean"}}}

    def spec(self, data: ChartData) -> dict[str, Any]:
        rows, folded = _long(data)
        spec = _base(data)
        spec["data"] = {"values": rows}
        horizontal = bool(data.options.get("horizontal"))
        d0, t0, kind0 = data.dimensions[0]
        category = {"field": d0, "type": "ordinal" if kind0 == "date" else "nominal", "title": t0,
                    "sort": None}
        m0, mt, mf = data.measures[0]
        value = {"field": "value" if folded else m0, "type": "quantitative",
                 "title": None if folded else mt, "axis": _value_axis(data, mf)}
        series = None
        if folded:
            series = {"field": "series", "type": "nominal", "title": None}
        elif len(data.dimensions) > 1:
            d1, t1, _ = data.dimensions[1]
            series = {"field": d1, "type": "nominal", "title": t1}
        encoding: dict[str, Any] = {("y" if horizontal else "x"): category, ("x" if horizontal else "y"): value,
                                    "tooltip": _tooltip(data)}
        if series:
            encoding["color"] = series
            if not data.options.get("stacked"):
                encoding["yOffset" if horizontal else "xOffset"] = {"field": series["field"]}
            else:
                value["stack"] = "zero"
        spec.update(mark={"type": "bar", "cursor": "pointer", "tooltip": True}, encoding=encoding)
        if horizontal:
            spec["height"] = max(160, 22 * len({r.get(d0) for r in rows}))
        return spec


class Line(ChartType):
    name = "line"
    description = "A trend along a date dimension (`created.week`); a second dimension or several measures draw several lines."
    dims = (1, 2)
    mark = "line"

    def spec(self, data: ChartData) -> dict[str, Any]:
        rows, folded = _long(data)
        spec = _base(data)
        spec["data"] = {"values": rows}
        d0, t0, _ = data.dimensions[0]
        m0, mt, mf = data.measures[0]
        encoding: dict[str, Any] = {
            "x": {"field": d0, "type": "ordinal", "title": t0, "sort": None,
                  "axis": {"labelAngle": -45, "labelOverlap": "greedy"}},
            "y": {"field": "value" if folded else m0, "type": "quantitative", "title": None if folded else mt,
                  "axis": _value_axis(data, mf)},
            "tooltip": _tooltip(data)}
        if folded:
            encoding["color"] = {"field": "series", "type": "nominal", "title": None}
        elif len(data.dimensions) > 1:
            encoding["color"] = {"field": data.dimensions[1][0], "type": "nominal", "title": data.dimensions[1][1]}
        mark: dict[str, Any] = {"type": self.mark, "point": True, "cursor": "pointer", "tooltip": True}
        if self.mark == "area":
            mark.update(opacity=0.7, line=True)
            encoding["y"]["stack"] = "zero" if data.options.get("stacked") else None
        spec.update(mark=mark, encoding=encoding)
        return spec


class Area(Line):
    name = "area"
    description = "A filled trend; `stacked: true` stacks the series."
    mark = "area"
    options_schema = {"properties": {"stacked": {"type": "boolean"}}}


class Pie(ChartType):
    name = "pie"
    description = "Shares of one measure by one dimension."
    dims = (1, 1)
    measures_range = (1, 1)
    inner = 0

    def spec(self, data: ChartData) -> dict[str, Any]:
        spec = _base(data)
        d0, t0, _ = data.dimensions[0]
        m0, mt, mf = data.measures[0]
        spec.update(width=data.height, mark={"type": "arc", "innerRadius": self.inner, "cursor": "pointer", "tooltip": True},
                    encoding={"theta": {"field": m0, "type": "quantitative", "stack": True},
                              "color": {"field": d0, "type": "nominal", "title": t0, "sort": None},
                              "order": {"field": m0, "type": "quantitative", "sort": "descending"},
                              "tooltip": _tooltip(data)})
        return spec


class Donut(Pie):
    name = "donut"
    description = "A pie with a hole."
    inner = 60


class Ranking(ChartType):
    name = "ranking"
    description = "A ranked list: horizontal bars, largest first, with the rank and the value."
    dims = (1, 1)
    measures_range = (1, 1)
    default_width = 4

    def spec(self, data: ChartData) -> dict[str, Any]:
        spec = _base(data)
        d0, t0, _ = data.dimensions[0]
        m0, mt, mf = data.measures[0]
        rows = [{**v, "rank": f"{i + 1}. {v.get(d0)}"} for i, v in enumerate(data.values)]
        order = [r["rank"] for r in rows]
        spec["data"] = {"values": rows}
        spec["height"] = max(80, 24 * len(rows))
        y = {"field": "rank", "type": "nominal", "sort": order, "title": None}
        spec["layer"] = [
            {"mark": {"type": "bar", "cursor": "pointer", "tooltip": True, "color": PALETTE[0]},
             "encoding": {"y": y, "x": {"field": m0, "type": "quantitative", "title": mt, "axis": _value_axis(data, mf)},
                          "tooltip": _tooltip(data)}},
            {"mark": {"type": "text", "align": "left", "dx": 4},
             "encoding": {"y": y, "x": {"field": m0, "type": "quantitative"},
                          "text": {"field": m0, "type": "quantitative", "format": _fmt(mf)}}},
        ]
        return spec


class Heatmap(ChartType):
    name = "heatmap"
    description = "A grid of two dimensions (region x category) coloured by one measure."
    dims = (2, 2)
    measures_range = (1, 1)
    default_width = 12

    def spec(self, data: ChartData) -> dict[str, Any]:
        spec = _base(data)
        (d0, t0, _), (d1, t1, _) = data.dimensions[0], data.dimensions[1]
        m0, mt, mf = data.measures[0]
        spec["height"] = max(160, 26 * len({v.get(d0) for v in data.values}))
        spec["layer"] = [
            {"mark": {"type": "rect", "cursor": "pointer", "tooltip": True},
             "encoding": {"y": {"field": d0, "type": "nominal", "title": t0},
                          "x": {"field": d1, "type": "nominal", "title": t1, "axis": {"labelAngle": -40}},
                          "color": {"field": m0, "type": "quantitative", "title": mt, "scale": {"scheme": "oranges"}},
                          "tooltip": _tooltip(data)}},
            {"mark": {"type": "text", "fontSize": 10},
             "encoding": {"y": {"field": d0, "type": "nominal"}, "x": {"field": d1, "type": "nominal"},
                          "text": {"field": m0, "type": "quantitative", "format": _fmt(mf)}}},
        ]
        return spec


class RegionGrid(ChartType):
    name = "region_grid"
    description = ("Tiles laid out like a map: one per region, coloured by a measure. `grid:` places each "
                   "region at [row, column]; without it tiles follow the option order, four per row, and a "
                   "region it does not place goes on a row below the map.")
    dims = (1, 1)
    measures_range = (1, 1)
    options_schema = {"properties": {"grid": {"type": "object", "additionalProperties": {
        "type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 20}, "minItems": 2, "maxItems": 2}}}}

    def spec(self, data: ChartData) -> dict[str, Any]:
        spec = _base(data)
        d0, t0, _ = data.dimensions[0]
        m0, mt, mf = data.measures[0]
        grid = data.options.get("grid") or {}
        # A region the grid does not place (the empty region, one added to the list later) goes
        # on a row below the map: counted among the placed ones, it was drawn over one of them.
        below = max((place[0] for place in grid.values()), default=-1) + 1
        across = max(max((place[1] for place in grid.values()), default=3) + 1, 1)
        rows, unplaced = [], 0
        for v in data.values:
            place = grid.get(v.get("_raw0"))
            if place is None:
                place = [below + unplaced // across, unplaced % across]
                unplaced += 1
            rows.append({**v, "row": place[0], "col": place[1]})
        spec["data"] = {"values": rows}
        spec["height"] = 70 * (max([r["row"] for r in rows], default=0) + 1)
        spec["width"] = 110 * (max([r["col"] for r in rows], default=0) + 1)
        x = {"field": "col", "type": "ordinal", "axis": None}
        y = {"field": "row", "type": "ordinal", "axis": None}
        spec["layer"] = [
            {"mark": {"type": "rect", "cursor": "pointer", "tooltip": True, "stroke": "white", "strokeWidth": 3},
             "encoding": {"x": x, "y": y, "color": {"field": m0, "type": "quantitative", "title": mt,
                                                     "scale": {"scheme": "blues"}}, "tooltip": _tooltip(data)}},
            {"mark": {"type": "text", "dy": -8, "fontSize": 12},
             "encoding": {"x": x, "y": y, "text": {"field": d0}}},
            {"mark": {"type": "text", "dy": 10, "fontSize": 13, "fontWeight": "bold"},
             "encoding": {"x": x, "y": y, "text": {"field": m0, "type": "quantitative", "format": _fmt(mf)}}},
        ]
        return spec


RADAR_LABEL_ROOM = 90
"""Room on either side of a radar's plot for its axis labels."""
RADAR_LEGEND_ROOM = 120
"""Room right of the axis labels for the legend, at least (more for long series names)."""
RADAR_LEGEND_MAX_ROOM = 240
"""The most a radar's legend takes: a longer name is cut with an ellipsis."""
_LEGEND_SYMBOL_ROOM = 22
"""A legend entry's symbol and the gap before its label, in pixels."""


def label_width(text: str, font_size: float = 11) -> float:
    """About how many pixels `text` takes in the charts' sans-serif font, a little more rather
    than less: a CJK character is as wide as the font is tall, other characters about half of it.
    For sizing the room around a plot before the browser measures anything."""
    return sum(font_size if unicodedata.east_asian_width(c) in ("W", "F") else font_size * 0.55 for c in text)


_RADAR_LABEL_LIMIT = (
    "abs(scale('angular', datum.key)) > PI / 2"
    " ? width / 2 + (radius + 12) * cos(scale('angular', datum.key)) + padding.left - 4"
    f" : width / 2 - (radius + 12) * cos(scale('angular', datum.key)) + min(padding.right, {RADAR_LABEL_ROOM}) - 4")
"""How wide an axis label may be: the room from where it starts to the edge of the drawing on its
side, or on the right to where the legend begins."""


class Radar(ChartType):
    name = "radar"
    description = ("A spider chart: with one dimension, one axis per measure and one polygon per value "
                   "(department efficiency); with two, one axis per value of the first and one polygon per "
                   "value of the second. Each axis is scaled to its largest value.")
    dims = (1, 2)
    mode = "vega"

    def spec(self, data: ChartData) -> dict[str, Any]:
        d0, _, _ = data.dimensions[0]
        rows: list[dict[str, Any]] = []
        if len(data.dimensions) > 1:
            d1 = data.dimensions[1][0]
            m0 = data.measures[0][0]
            for v in data.values:
                rows.append({"key": v.get(d0), "series": v.get(d1), "value": v.get(m0) or 0, "_p": v.get("_p")})
        else:  # one axis per measure, one polygon per value of the dimension (a department)
            for v in data.values:
                for m, title, _ in data.measures:
                    rows.append({"key": title, "series": v.get(d0), "value": v.get(m) or 0, "_p": v.get("_p")})
        peak: dict[Any, float] = {}
        for r in rows:
            peak[r["key"]] = max(peak.get(r["key"], 0.0), float(r["value"] or 0))
        for r in rows:
            r["share"] = (float(r["value"]) / peak[r["key"]]) if peak[r["key"]] else 0.0
        keys = list(dict.fromkeys(r["key"] for r in rows))
        # The legend stands right of the axis labels' room (placed by hand: Vega's orient "right"
        # follows the marks' bounds, so a long axis label on the right pushed it past the
        # drawing's edge and "Customer service centre" was cut mid-word), as wide as its longest
        # name needs, up to a limit past which names end in "…".
        names = [str(r["series"]) for r in rows if r["series"] is not None]
        needed = _LEGEND_SYMBOL_ROOM + max(map(label_width, names), default=0) + 8
        legend_room = int(min(max(RADAR_LEGEND_ROOM, needed), RADAR_LEGEND_MAX_ROOM))
        # The whole drawing is `data.width` wide, labels and legend included. A page may make the
        # plot smaller (web/static/dashboard.js): the radius follows the width.
        size = min(data.width - 2 * RADAR_LABEL_ROOM - legend_room, data.height + 40)
        return {
            "$schema": "https://vega.github.io/schema/vega/v6.json", "width": size, "height": size,
            "padding": {"left": RADAR_LABEL_ROOM, "right": RADAR_LABEL_ROOM + legend_room, "top": 30, "bottom": 30},
            "autosize": {"type": "none", "contains": "content"}, "title": {"text": data.title, "anchor": "start"},
            "config": {"text": {"font": FONT}, "title": {"font": FONT, "fontSize": 14},
                       "legend": {"labelFont": FONT}},
            "usermeta": {"renderer": "vega"},
            "signals": [{"name": "radius", "update": "width / 2 - 20"}],
            "data": [{"name": "table", "values": rows}, {"name": "keys", "values": [{"key": k} for k in keys]}],
            "scales": [
                {"name": "angular", "type": "point", "range": {"signal": "[-PI, PI]"}, "padding": 0.5,
                 "domain": {"data": "table", "field": "key"}},
                {"name": "radial", "type": "linear", "range": {"signal": "[0, radius]"}, "zero": True, "nice": False,
                 "domain": [0, 1]},
                {"name": "color", "type": "ordinal", "domain": {"data": "table", "field": "series"}, "range": PALETTE}],
            "legends": [{"fill": "color", "orient": "none", "labelFont": FONT,
                         "legendX": {"signal": f"width + {RADAR_LABEL_ROOM}"}, "legendY": 0,
                         "labelLimit": legend_room - _LEGEND_SYMBOL_ROOM - 4}],
            "marks": [{"type": "group", "encode": {"enter": {"x": {"signal": "radius + 20"}, "y": {"signal": "radius + 20"}}},
                       "marks": [
                {"type": "group", "name": "categories", "zindex": 1,
                 "from": {"facet": {"data": "table", "name": "facet", "groupby": ["series"]}},
                 "marks": [
                     {"type": "line", "name": "category-line", "from": {"data": "facet"},
                      "encode": {"enter": {"interpolate": {"value": "linear-closed"},
                                           "x": {"signal": "scale('radial', datum.share) * cos(scale('angular', datum.key))"},
                                           "y": {"signal": "scale('radial', datum.share) * sin(scale('angular', datum.key))"},
                                           "stroke": {"scale": "color", "field": "series"}, "strokeWidth": {"value": 2},
                                           "fill": {"scale": "color", "field": "series"}, "fillOpacity": {"value": 0.15}}}},
                     {"type": "symbol", "from": {"data": "facet"},
                      "encode": {"enter": {"x": {"signal": "scale('radial', datum.share) * cos(scale('angular', datum.key))"},
                                           "y": {"signal": "scale('radial', datum.share) * sin(scale('angular', datum.key))"},
                                           "fill": {"scale": "color", "field": "series"}, "size": {"value": 50},
                                           "cursor": {"value": "pointer"},
                                           "tooltip": {"signal": "{'': datum.key, 'series': datum.series, 'value': format(datum.value, ',.4~f')}"}}}}]},
                {"type": "rule", "from": {"data": "keys"}, "zindex": 0,
                 "encode": {"enter": {"x": {"value": 0}, "y": {"value": 0},
                                      "x2": {"signal": "radius * cos(scale('angular', datum.key))"},
                                      "y2": {"signal": "radius * sin(scale('angular', datum.key))"},
                                      "stroke": {"value": "#ccc"}, "strokeWidth": {"value": 1}}}},
                {"type": "text", "from": {"data": "keys"},
                 "encode": {"enter": {"x": {"signal": "(radius + 12) * cos(scale('angular', datum.key))"},
                                      "y": {"signal": "(radius + 12) * sin(scale('angular', datum.key))"},
                                      "text": {"field": "key"}, "font": {"value": FONT}, "fontSize": {"value": 11},
                                      # cut with an ellipsis rather than drawn past the drawing's edge
                                      "limit": {"signal": _RADAR_LABEL_LIMIT},
                                      "align": [{"test": "abs(scale('angular', datum.key)) > PI / 2", "value": "right"},
                                                {"value": "left"}],
                                      "baseline": {"value": "middle"}, "fill": {"value": "#333"}}}},
                {"type": "line", "from": {"data": "keys"},
                 "encode": {"enter": {"interpolate": {"value": "linear-closed"},
                                      "x": {"signal": "radius * cos(scale('angular', datum.key))"},
                                      "y": {"signal": "radius * sin(scale('angular', datum.key))"},
                                      "stroke": {"value": "#ccc"}, "strokeWidth": {"value": 1}}}}]}],
        }


BUILT_IN_CHART_TYPES = (Kpi, Table, Bar, Line, Area, Pie, Donut, Ranking, Heatmap, RegionGrid, Radar)


def _format_number(value: Any, fmt: str) -> str:
    if value is None:
        return "-"
    if fmt == "percent":
        return f"{float(value):.1%}"
    if isinstance(value, int) or float(value).is_integer():
        return f"{int(float(value)):,}"
    return f"{float(value):,.1f}"


# -- server-side rendering -----------------------------------------------------------------------
_fonts_lock = threading.Lock()
_fonts_ready = False


def _converter() -> Any:
    """vl-convert, with the CJK font directory registered once per process."""
    global _fonts_ready
    import vl_convert

    with _fonts_lock:
        if not _fonts_ready:
            for folder in FONT_DIRS:
                if Path(folder).is_dir():
                    vl_convert.register_font_directory(folder)
            _fonts_ready = True
    return vl_convert


def render_svg(spec: Mapping[str, Any]) -> str:
    """The chart as SVG text (Vega-Lite or Vega, as the spec's usermeta says)."""
    vlc = _converter()
    if spec.get("usermeta", {}).get("renderer") == "vega":
        return vlc.vega_to_svg(dict(spec))
    return vlc.vegalite_to_svg(dict(spec), vl_version="6.4")


def render_png(spec: Mapping[str, Any], *, scale: float = 2.0) -> bytes:
    """The chart as a PNG image (`scale` 2 for sharp text on phones)."""
    vlc = _converter()
    if spec.get("usermeta", {}).get("renderer") == "vega":
        return vlc.vega_to_png(dict(spec), scale=scale)
    return vlc.vegalite_to_png(dict(spec), scale=scale, vl_version="6.4")
