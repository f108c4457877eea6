/* softmax-bench report: sortable and filterable tables, charts drawn with the local plotly.js.
   Everything works from file:// with no network; without JavaScript the tables still read. */
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  function key(cell, numeric) {
    if (!cell) { return null; }
    var v = cell.getAttribute("data-v");
    if (v === null) { v = cell.textContent.trim(); }
    if (numeric) {
      var n = parseFloat(v);
      return isNaN(n) ? null : n;
    }
    return v === "" || v === "\u2013" ? null : v.toLowerCase();
  }

  function sortBy(table, th, index) {
    var numeric = th.getAttribute("data-type") === "num";
    var ascending = th.getAttribute("aria-sort") !== "ascending";
    Array.prototype.forEach.call(th.parentNode.cells, function (other) {
      other.removeAttribute("aria-sort");
    });
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var body = table.tBodies[0];
    var rows = Array.prototype.map.call(body.rows, function (row, i) {
      return [key(row.cells[index], numeric), i, row];
    });
    rows.sort(function (a, b) {
      if (a[0] === b[0]) { return a[1] - b[1]; }
      if (a[0] === null) { return 1; }  /* missing values last, both ways */
      if (b[0] === null) { return -1; }
      return (a[0] < b[0] ? -1 : 1) * (ascending ? 1 : -1);
    });
    var fragment = document.createDocumentFragment();
    rows.forEach(function (r) { fragment.appendChild(r[2]); });
    body.appendChild(fragment);
  }

  function setupSorting() {
    document.querySelectorAll("table.sortable").forEach(function (table) {
      if (!table.tHead || !table.tBodies.length) { return; }
      var head = table.tHead.rows[table.tHead.rows.length - 1];
      Array.prototype.forEach.call(head.cells, function (th, index) {
        th.tabIndex = 0;
        th.addEventListener("click", function () { sortBy(table, th, index); });
        th.addEventListener("keydown", function (event) {
          if (event.key === "Enter" || event.key === " ") {
            event.preventDefault();
            sortBy(table, th, index);
          }
        });
      });
    });
  }

  function setupFilters() {
    document.querySelectorAll("input.filter").forEach(function (input) {
      var table = document.getElementById(input.getAttribute("data-table"));
      if (!table || !table.tBodies || !table.tBodies.length) { return; }
      var count = document.createElement("span");
      count.className = "filter-count";
      input.parentNode.insertBefore(count, input.nextSibling);
      var rows = Array.prototype.slice.call(table.tBodies[0].rows);
      var texts = null;
      input.addEventListener("input", function () {
        if (texts === null) {
          texts = rows.map(function (row) { return row.textContent.toLowerCase(); });
        }
        var terms = input.value.toLowerCase().split(/\s+/).filter(Boolean);
        var shown = 0;
        rows.forEach(function (row, i) {
          var match = terms.every(function (t) { return texts[i].indexOf(t) !== -1; });
          row.hidden = !match;
          if (match) { shown += 1; }
        });
        count.textContent = terms.length ? shown + " of " + rows.length + " rows" : "";
      });
    });
  }

  /* plotly.js (several MB) is loaded only when a chart comes near the viewport. */
  var plotly = { state: "idle", waiting: [] };

  function draw(div) {
    if (div.getAttribute("data-drawn")) { return; }
    if (!window.Plotly) {
      plotly.waiting.push(div);
      loadPlotly();
      return;
    }
    var source = document.getElementById(div.id + "-data");
    if (!source) { return; }
    div.setAttribute("data-drawn", "1");
    var figure = JSON.parse(source.textContent);
    window.Plotly.newPlot(div, figure.data, figure.layout,
                          { displaylogo: false, responsive: true });
  }

  function loadPlotly() {
    if (plotly.state !== "idle") { return; }
    var src = document.body.getAttribute("data-plotly");
    if (!src) { return; }
    plotly.state = "loading";
    var script = document.createElement("script");
    script.src = src;
    script.onload = function () {
      plotly.state = "ready";
      var waiting = plotly.waiting;
      plotly.waiting = [];
      waiting.forEach(draw);
    };
    document.head.appendChild(script);
  }

  function setupCharts() {
    var charts = document.querySelectorAll("div.chart");
    if (!charts.length) { return; }
    if (!("IntersectionObserver" in window)) {
      charts.forEach(draw);
      return;
    }
    var observer = new IntersectionObserver(function (entries) {
      entries.forEach(function (entry) {
        if (entry.isIntersecting) {
          observer.unobserve(entry.target);
          draw(entry.target);
        }
      });
    }, { rootMargin: "400px 0px" });
    charts.forEach(function (div) { observer.observe(div); });
  }

  function setupCopy() {
    document.querySelectorAll("pre.cmd").forEach(function (pre) {
      var button = document.createElement("button");
      button.type = "button";
      button.className = "copy";
      button.textContent = "copy command";
      pre.parentNode.insertBefore(button, pre);
      button.addEventListener("click", function () {
        var range = document.createRange();
        range.selectNodeContents(pre);
        var selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
        if (navigator.clipboard && navigator.clipboard.writeText) {
          navigator.clipboard.writeText(pre.textContent).then(function () {
            button.textContent = "copied";
          }, function () { button.textContent = "selected"; });
        } else {
          button.textContent = "selected";
        }
      });
    });
  }

  function start() {
    setupSorting();
    setupFilters();
    setupCharts();
    setupCopy();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
}());
