// Dashboards: fetch each widget's data, draw it (vendored Vega / Vega-Lite, no network), and
// open the records behind a clicked bar, slice or cell with the same filters (drill-down).
// Text from the data is only ever set with textContent; Vega runs with its expression
// interpreter so the page needs no 'unsafe-eval' in its Content-Security-Policy.
(function () {
  "use strict";
  var root = document.getElementById("dashboard");
  if (!root) { return; }
  var name = root.dataset.name;
  var query = root.dataset.query || "";
  var lang = root.dataset.lang || "";
  var printing = root.dataset.print === "yes";
  // "/docket" when Docket is served under a path of a shared host (web/prefix.py).
  var site = document.documentElement.getAttribute("data-root") || "";

  function url(widget, suffix, extra) {
    var parts = [query, extra || "", lang ? "lang=" + encodeURIComponent(lang) : ""].filter(Boolean);
    return site + "/dashboards/" + encodeURIComponent(name) + "/widgets/" + encodeURIComponent(widget) + suffix + "?" + parts.join("&");
  }

  function drillUrl(widget, payload, index) {
    var point = payload.points[index];
    if (!point) { return null; }
    var extra = Object.keys(point).map(function (key) {
      var value = point[key] === null || point[key] === undefined ? "" : String(point[key]);
      return encodeURIComponent("p." + key) + "=" + encodeURIComponent(value);
    }).join("&");
    return url(widget, "/records", extra);
  }

  function drill(widget, payload, index) {
    var address = drillUrl(widget, payload, index);
    if (address) { window.location.href = address; }
  }

  // A chart's bars, slices and cells take a click, not the keyboard: after the chart, one link
  // per point ("East China: 10"), out of sight until the Tab key reaches them, leads to the same
  // records. A keyboard or screen-reader user could open none of them before.
  function drillKeys(body, payload) {
    if (!payload.points || !payload.points.length) { return; }
    var list = el("ul", "drill-keys");
    list.setAttribute("aria-label", root.dataset.drillKeys || "");
    payload.rows.forEach(function (row, index) {
      var address = drillUrl(payload.widget, payload, index);
      if (!address) { return; }
      var names = [], value = "";
      row.forEach(function (cell, i) {
        var column = payload.columns[i];
        if (column.kind === "dimension") { names.push(cell === null ? "-" : String(cell)); }
        else if (value === "") { value = format(cell, column.format); }
      });
      var item = el("li");
      var link = el("a", "drill-key", names.join(" · ") + (value !== "" ? ": " + value : ""));
      link.href = address;
      item.appendChild(link);
      list.appendChild(item);
    });
    body.appendChild(list);
  }

  function format(value, fmt) {
    if (value === null || value === undefined) { return "-"; }
    if (fmt === "percent") { return (value * 100).toFixed(1) + "%"; }
    if (Math.round(value) === value) { return value.toLocaleString(); }
    return value.toLocaleString(undefined, { maximumFractionDigits: 2 });
  }

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  function kpi(body, payload) {
    var wrap = el("div", "kpi");
    var row = payload.rows[0] || [];
    var heading = document.getElementById("widget-" + payload.widget + "-title");
    payload.columns.forEach(function (column, i) {
      var box = el("div", "kpi-item");
      // A card showing one number under its own name needs no second label saying the same.
      if (payload.columns.length > 1 || !heading || heading.textContent.trim() !== column.title) {
        box.appendChild(el("div", "kpi-label", column.title));
      }
      var value = el("a", "kpi-value", format(row[i], column.format));
      value.href = url(payload.widget, "/records", "");
      box.appendChild(value);
      if (payload.previous && payload.previous[i] !== null && payload.previous[i] !== undefined && row[i] !== null) {
        var before = payload.previous[i];
        var change = before === 0 ? null : (row[i] - before) / Math.abs(before);
        var text = root.dataset.previous + " " + format(before, column.format);
        if (change !== null) { text += " (" + (change >= 0 ? "+" : "") + (change * 100).toFixed(1) + "%)"; }
        box.appendChild(el("div", "kpi-compare " + (change >= 0 ? "up" : "down"), text));
      }
      wrap.appendChild(box);
    });
    body.appendChild(wrap);
  }

  function table(body, payload) {
    var scroll = el("div", "scroll");
    var t = el("table", "widget-table");
    var head = el("tr");
    payload.columns.forEach(function (c) { var th = el("th", c.kind, c.title); th.scope = "col"; head.appendChild(th); });
    var thead = el("thead"); thead.appendChild(head); t.appendChild(thead);
    var tbody = el("tbody");
    payload.rows.forEach(function (row, index) {
      var tr = el("tr");
      row.forEach(function (cell, i) {
        var column = payload.columns[i];
        var td = el("td", column.kind);
        if (column.kind === "dimension" && i === 0) {
          var a = el("a", "drill-link", cell === null ? "-" : String(cell));
          a.href = "#";
          a.addEventListener("click", function (event) { event.preventDefault(); drill(payload.widget, payload, index); });
          td.appendChild(a);
        } else {
          td.textContent = column.kind === "measure" ? format(cell, column.format) : (cell === null ? "-" : String(cell));
        }
        tr.appendChild(td);
      });
      tbody.appendChild(tr);
    });
    t.appendChild(tbody);
    if (payload.totals) {
      var foot = el("tr", "totals");
      payload.totals.forEach(function (cell, i) {
        var column = payload.columns[i];
        foot.appendChild(el("td", column.kind, i === 0 ? root.dataset.total : (cell === null ? "" : format(cell, column.format))));
      });
      var tfoot = el("tfoot"); tfoot.appendChild(foot); t.appendChild(tfoot);
    }
    scroll.appendChild(t);
    body.appendChild(scroll);
  }

  // A radar (reports/charts.py) is a Vega spec drawn at the size it states, padding included.
  // In a narrower card the plot shrinks (its radius follows its width); when that would leave it
  // too small, the legend moves below the plot and the right gets only the axis labels' room.
  function fitRadar(spec, room) {
    var pad = spec.padding;
    if (spec.width + pad.left + pad.right <= room) { return; }
    var smallest = 200;
    if (room - pad.left - pad.right < smallest) {
      var legend = spec.legends[0];
      var series = {};
      spec.data[0].values.forEach(function (row) { series[row.series] = true; });
      var rows = Math.ceil(Object.keys(series).length / 2);
      legend.orient = "bottom";
      legend.columns = 2;
      legend.offset = 16;
      pad.right = pad.left;
      pad.bottom = 30 + legend.offset + rows * 18;
    }
    spec.width = spec.height = Math.max(120, room - pad.left - pad.right);
  }

  function chart(body, payload) {
    var holder = el("div", "chart");
    body.appendChild(holder);
    var spec = payload.spec;
    var width = Math.max(240, body.clientWidth - 40);
    if (payload.chart === "radar") {
      fitRadar(spec, body.clientWidth);
    } else if (payload.chart === "region_grid") {
      var columns = Math.max(1, spec.width / 110);
      var size = Math.min(110, Math.floor(width / columns));
      spec.width = size * columns;
      spec.height = spec.height / 70 * Math.round(size * 0.64);
    } else if (payload.chart !== "radar" && payload.chart !== "kpi") {
      var round = payload.chart === "pie" || payload.chart === "donut";
      spec.width = round ? Math.min(width, spec.height) : width;
      // The width is the whole chart's, legend and axis labels included: by default Vega-Lite
      // gives it to the plot alone, and a legend then hangs outside the widget, out of sight.
      if (!round && payload.mode !== "vega") { spec.autosize = { type: "fit-x", contains: "padding" }; }
    }
    if (width < 480 && payload.chart !== "radar") {  // a phone: no room for a legend beside the plot
      spec.config = spec.config || {};
      spec.config.legend = Object.assign({}, spec.config.legend, { orient: "bottom", columns: 1 });
    }
    delete spec.title; // the widget's heading shows it
    // Vega describes a chart in English ("X-axis titled … for a discrete scale"), whatever the
    // page's language: the chart is named by its widget's title instead, and its points are
    // read from the links after it (drillKeys).
    spec.config = spec.config || {};
    spec.config.aria = false;
    var options = {
      mode: payload.mode, renderer: "svg", actions: false, defaultStyle: false, tooltip: { disableDefaultStyle: true },
      ast: true, expr: window.vegaInterpreter.expressionInterpreter
    };
    window.vegaEmbed(holder, spec, options).then(function (result) {
      nameChart(holder, body);
      drillKeys(body, payload);
      body.dataset.ready = "yes";
      result.view.addEventListener("click", function (event, item) {
        var datum = item && item.datum;
        if (datum && datum._p !== undefined && datum._p !== null) { drill(payload.widget, payload, datum._p); }
      });
    }).catch(function () { failed(body); });  // a specification vega cannot draw (a chart plugin's bug)
  }

  // The chart is one picture named by its widget's title, in the page's language.
  function nameChart(holder, body) {
    var svg = holder.querySelector("svg");
    var heading = body.closest(".widget") && body.closest(".widget").querySelector("h2");
    if (!svg) { return; }
    Array.prototype.forEach.call(svg.querySelectorAll("[aria-label], [aria-roledescription]"), function (e) {
      e.removeAttribute("aria-label"); e.removeAttribute("aria-roledescription");
    });
    svg.removeAttribute("aria-roledescription");
    svg.setAttribute("role", "img");
    if (heading) { svg.setAttribute("aria-label", heading.textContent); }
  }

  function failed(body) {
    body.textContent = "";
    body.appendChild(el("p", "notice notice-error", root.dataset.failed));
    body.dataset.ready = "yes";
  }

  function load(section) {
    var widget = section.dataset.widget;
    var body = section.querySelector(".widget-body");
    fetch(url(widget, ".json"), { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) {
        // A proxy's or the server's error page is not JSON: the reader gets words, not a SyntaxError.
        return response.json().then(function (data) { return { ok: response.ok, data: data }; },
                                    function () { return { ok: false, data: {} }; });
      })
      .then(function (result) {
        body.textContent = "";
        if (!result.ok) {
          body.appendChild(el("p", "notice notice-error", result.data.error || root.dataset.failed));
          body.dataset.ready = "yes";  // printing waits for every widget: this one is done
          return;
        }
        var payload = result.data;
        section.dataset.rows = String(payload.rows.length);
        // No rows: say so, rather than draw bare axes or a table of headings (a KPI shows its 0).
        if (payload.rows.length === 0 && payload.chart !== "kpi") {
          body.appendChild(el("p", "muted widget-empty", root.dataset.empty));
          body.dataset.ready = "yes";
          return;
        }
        if (payload.chart === "kpi") { kpi(body, payload); body.dataset.ready = "yes"; }
        else if (payload.chart === "table") { table(body, payload); body.dataset.ready = "yes"; }
        else { chart(body, payload); }
      })
      .catch(function () { failed(body); });
  }

  Array.prototype.forEach.call(document.querySelectorAll(".widget[data-widget]"), load);
  // The filters say what the charts hold. Back from a filtered dashboard, the browser showed
  // the choices made before leaving this one (its page cache) above charts drawn without them.
  var filters = document.querySelector("form.dashboard-filters");
  if (filters) { window.addEventListener("pageshow", function () { filters.reset(); }); }
  if (printing) {
    var poll = window.setInterval(function () {
      var pending = document.querySelectorAll(".widget-body:not([data-ready])");
      if (pending.length === 0) { window.clearInterval(poll); window.print(); }
    }, 300);
  }
})();
