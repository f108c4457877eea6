/* softmax-bench report: sortable and filterable tables, charts drawn with the local plotly.js,
   permalinks, and the view kept in the URL fragment. Everything works from file:// with no
   network; without JavaScript the tables still read.

   The fragment is either an element id (a row's permalink: "#r-0123456789ab") or parameters
   in URLSearchParams form: "row=<id>" (the row to show), "<table id>.sort=<column><a|d>",
   "<table id>.filter=<words>", and in the single-file report "page=<path>" (which page). Every
   sort or filter rewrites the fragment, so a copied link reopens the same view. */
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  var single = false;      /* the single-file report: pages are <template>s switched by "page" */
  var current = "";        /* its current page's path */
  var view = {};           /* "<table>.sort" / "<table>.filter" / "row" -> value */
  var observer = null;

  function key(cell, numeric) {
    if (!cell) { return null; }
    var v = cell.getAttribute("data-v");
    if (v === null) { v = cell.textContent.replace("\u00b6", "").trim(); }
    if (numeric) {
      var n = parseFloat(v);
      return isNaN(n) ? null : n;
    }
    return v === "" || v === "\u2013" ? null : v.toLowerCase();
  }

  function sortBy(table, th, index, ascending) {
    var numeric = th.getAttribute("data-type") === "num";
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

  /* ---- the view in the URL fragment ---- */

  function parseFragment() {
    var raw = location.hash.slice(1);
    var out = {};
    if (!raw) { return out; }
    if (raw.indexOf("=") < 0) {
      out.row = decodeURIComponent(raw);
      return out;
    }
    new URLSearchParams(raw).forEach(function (value, name) { out[name] = value; });
    return out;
  }

  function fragmentOf(state) {
    var params = new URLSearchParams();
    Object.keys(state).sort().forEach(function (name) {
      if (state[name] !== "" && state[name] !== undefined) { params.set(name, state[name]); }
    });
    return params.toString();
  }

  function saveView() {
    var state = {};
    Object.keys(view).forEach(function (k) { state[k] = view[k]; });
    if (single) { state.page = current; }
    var text = fragmentOf(state);
    var url = location.href.split("#")[0] + (text ? "#" + text : "");
    if (url !== location.href) { history.replaceState(null, "", url); }
  }

  function setupSorting(root) {
    root.querySelectorAll("table.sortable").forEach(function (table) {
      if (!table.tHead || !table.tBodies.length) { return; }
      var head = table.tHead.rows[table.tHead.rows.length - 1];
      Array.prototype.forEach.call(head.cells, function (th, index) {
        th.tabIndex = 0;
        function sort() {
          var ascending = th.getAttribute("aria-sort") !== "ascending";
          sortBy(table, th, index, ascending);
          if (table.id) {
            view[table.id + ".sort"] = index + (ascending ? "a" : "d");
            saveView();
          }
        }
        th.addEventListener("click", sort);
        th.addEventListener("keydown", function (event) {
          if (event.key === "Enter" || event.key === " ") {
            event.preventDefault();
            sort();
          }
        });
      });
    });
  }

  function applyFilter(input, table, count) {
    var rows = Array.prototype.slice.call(table.tBodies[0].rows);
    var terms = input.value.toLowerCase().split(/\s+/).filter(Boolean);
    var shown = 0;
    rows.forEach(function (row) {
      if (row._text === undefined) { row._text = row.textContent.toLowerCase(); }
      var match = terms.every(function (t) { return row._text.indexOf(t) !== -1; });
      row.hidden = !match;
      if (match) { shown += 1; }
    });
    count.textContent = terms.length ? shown + " of " + rows.length + " rows" : "";
  }

  function setupFilters(root) {
    root.querySelectorAll("input.filter").forEach(function (input) {
      var table = document.getElementById(input.getAttribute("data-table"));
      if (!table || !table.tBodies || !table.tBodies.length) { return; }
      var count = document.createElement("span");
      count.className = "filter-count";
      input.parentNode.insertBefore(count, input.nextSibling);
      input.addEventListener("input", function () {
        applyFilter(input, table, count);
        view[table.id + ".filter"] = input.value;
        saveView();
      });
      input._apply = function () { applyFilter(input, table, count); };
    });
  }

  function setupPermalinks(root) {
    /* a row's permalink appears when the pointer is on the row: one link, not thousands */
    root.querySelectorAll("table.data tbody").forEach(function (body) {
      body.addEventListener("mouseover", function (event) {
        var row = event.target.closest ? event.target.closest("tr[id]") : null;
        if (!row || row.querySelector("a.permalink") || !row.cells.length) { return; }
        var link = document.createElement("a");
        link.className = "permalink";
        link.href = "#" + row.id;
        link.title = "link to this row (with the table's sorting and filter)";
        link.textContent = "\u00b6";
        row.cells[0].appendChild(link);
      });
    });
  }

  function showRow(id) {
    var target = id ? document.getElementById(id) : null;
    document.querySelectorAll(".targeted").forEach(function (el) {
      el.classList.remove("targeted");
    });
    if (!target) { return false; }
    for (var el = target.parentElement; el; el = el.parentElement) {
      if (el.tagName === "DETAILS") { el.open = true; }
    }
    if (target.hidden) {  /* filtered out: clear that table's filter */
      var table = target.closest("table");
      var input = table && document.querySelector('input.filter[data-table="' + table.id + '"]');
      if (input) {
        input.value = "";
        input._apply();
        delete view[table.id + ".filter"];
      }
    }
    target.classList.add("targeted");
    target.scrollIntoView({ block: "center" });
    return true;
  }

  function applyView(state) {
    view = {};
    Object.keys(state).forEach(function (name) {
      var dot = name.lastIndexOf(".");
      if (name === "row" || dot < 0) { return; }
      var id = name.slice(0, dot);
      var what = name.slice(dot + 1);
      var table = document.getElementById(id);
      if (!table || table.tagName !== "TABLE") { return; }
      if (what === "sort") {
        var match = /^(\d+)([ad])$/.exec(state[name]);
        if (!match || !table.tHead) { return; }
        var head = table.tHead.rows[table.tHead.rows.length - 1];
        var th = head.cells[parseInt(match[1], 10)];
        if (!th) { return; }
        sortBy(table, th, parseInt(match[1], 10), match[2] === "a");
        view[name] = state[name];
      } else if (what === "filter") {
        var input = document.querySelector('input.filter[data-table="' + id + '"]');
        if (!input || !input._apply) { return; }
        input.value = state[name];
        input._apply();
        view[name] = state[name];
      }
    });
    if (state.row && showRow(state.row)) { view.row = state.row; }
  }

  /* ---- charts: plotly.js is loaded only when a chart comes near the viewport ---- */
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

  function setupCharts(root) {
    var charts = root.querySelectorAll("div.chart");
    if (observer) { observer.disconnect(); observer = null; }
    if (!charts.length) { return; }
    if (!("IntersectionObserver" in window)) {
      charts.forEach(draw);
      return;
    }
    observer = new IntersectionObserver(function (entries) {
      entries.forEach(function (entry) {
        if (entry.isIntersecting) {
          observer.unobserve(entry.target);
          draw(entry.target);
        }
      });
    }, { rootMargin: "400px 0px" });
    charts.forEach(function (div) { observer.observe(div); });
  }

  function setupCopy(root) {
    root.querySelectorAll("pre.cmd").forEach(function (pre) {
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

  function setup(root) {
    setupSorting(root);
    setupFilters(root);
    setupPermalinks(root);
    setupCharts(root);
    setupCopy(root);
  }

  /* ---- the single-file report: one <template> per page, shown in <main> ---- */

  function templateOf(path) {
    return document.getElementById("page:" + path);
  }

  function pageHolding(id) {
    var all = document.querySelectorAll("template[data-page]");
    for (var i = 0; i < all.length; i += 1) {
      if (all[i].content.getElementById(id)) { return all[i].getAttribute("data-page"); }
    }
    return null;
  }

  function showPage(state) {
    var path = state.page;
    if (!path && state.row && !document.getElementById(state.row)) {
      path = pageHolding(state.row);
    }
    path = path && templateOf(path) ? path : (path ? "index.html" : current || "index.html");
    if (path !== current) {
      var template = templateOf(path);
      var main = document.getElementById("page");
      main.textContent = "";
      main.appendChild(template.content.cloneNode(true));
      current = path;
      document.title = template.getAttribute("data-title");
      var nav = template.getAttribute("data-nav");
      document.querySelectorAll("header.site nav a").forEach(function (a) {
        var here = a.getAttribute("data-nav") === nav;
        a.classList.toggle("current", here);
        if (here) { a.setAttribute("aria-current", "page"); } else { a.removeAttribute("aria-current"); }
      });
      setup(main);
      window.scrollTo(0, 0);
    }
    applyView(state);
    saveView();
  }

  function resolve(href) {
    /* a link as the page it was written on sees it: ("impl/x.html", "r-...") */
    var url = new URL(href, "http://report.invalid/" + current);
    if (url.host !== "report.invalid") { return null; }
    return [decodeURIComponent(url.pathname.slice(1)), decodeURIComponent(url.hash.slice(1))];
  }

  function onClick(event) {
    if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey ||
        event.shiftKey || event.altKey) { return; }
    var a = event.target.closest ? event.target.closest("a[href]") : null;
    if (!a) { return; }
    var href = a.getAttribute("href");
    if (href.charAt(0) === "#") {
      if (href.indexOf("=") >= 0) { return; }  /* a whole view: the hashchange shows it */
      event.preventDefault();
      var state = { row: decodeURIComponent(href.slice(1)) };
      Object.keys(view).forEach(function (k) { if (k !== "row") { state[k] = view[k]; } });
      if (single) {
        if (!document.getElementById(state.row)) { state = { row: state.row }; }
        state.page = current;
        if (!document.getElementById(state.row)) { state.page = pageHolding(state.row) || current; }
      }
      location.hash = fragmentOf(state);
      return;
    }
    if (!single) { return; }
    var target = resolve(href);
    if (!target || !templateOf(target[0])) { return; }  /* not a page of this file */
    event.preventDefault();
    var next = { page: target[0] };
    if (target[1]) { next.row = target[1]; }
    location.hash = fragmentOf(next);
  }

  function start() {
    single = document.body.hasAttribute("data-single");
    document.addEventListener("click", onClick);
    if (single) {
      showPage(parseFragment());
    } else {
      setup(document);
      applyView(parseFragment());
    }
    window.addEventListener("hashchange", function () {
      var state = parseFragment();
      if (single) { showPage(state); } else { applyView(state); }
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
}());
