// Charts are drawn when they scroll into view (a national report has 514 of them),
// and one filter narrows every table and chart to a province, a branch or a name.
(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("jkn-data").textContent);
  var embedOptions = {
    mode: "vega", renderer: "svg", actions: false,
    formatLocale: D.formatLocale, timeFormatLocale: D.timeFormatLocale
  };
  var state = { province: "", branch: "", search: "" };

  // The scope the headline cards and the two scope charts show: one region when the search leaves one.
  function scopeKey() {
    if (state.search) {
      var left = Array.prototype.filter.call(regionRows, function (row) { return !row.hidden; });
      if (left.length === 1) return "region:" + left[0].dataset.code;
    }
    if (state.branch) return "branch:" + state.branch;
    if (state.province) return "province:" + state.province;
    return "national:ID";
  }

  // The scope's own bar first, then its parts: provinces of the nation, regions of a province or branch.
  function segmentRows(scope) {
    var parts = [];
    if (scope === "national:ID") {
      parts = D.provinces.map(function (code) { return "province:" + code; });
    } else {
      var level = scope.split(":")[0], code = scope.slice(level.length + 1);
      parts = D.regions.filter(function (r) {
        return level === "province" ? r.province === code : r.branch === code;
      }).map(function (r) { return "region:" + r.code; });
    }
    var rows = [];
    [scope].concat(parts).forEach(function (key, order) {
      (D.segments[key] || []).forEach(function (s) {
        rows.push({ scope: D.names[key] || key, order: order, segment: s[0], participants: s[1], share_pct: s[2] });
      });
    });
    return rows;
  }

  function chartSpec(el) {
    var kind = el.dataset.chart, scope = el.dataset.scope, values;
    if (kind.indexOf("trajectory") === 0) values = D.trajectories[scope];
    else values = { segments: segmentRows(scope) };
    if (!values) return null;
    var spec = JSON.parse(JSON.stringify(D.specs[kind]));
    spec.data.forEach(function (d) { if (values[d.name]) d.values = values[d.name]; });
    // Fit the box it is drawn in (a phone is 390 px wide); a narrow chart stacks its legend.
    var width = el.clientWidth;
    if (width > 0) {
      spec.width = Math.max(160, Math.min(spec.width || width, width) - 20);
      spec.autosize = { type: "fit-x", contains: "padding" };
      if (width < 560) (spec.legends || []).forEach(function (legend) { legend.columns = 2; legend.direction = "vertical"; });
    }
    el.dataset.width = String(width);
    return spec;
  }

  function render(el) {
    var scope = el.dataset.scope;
    if (el.dataset.drawn === scope && el.dataset.width === String(el.clientWidth)) return;
    el.dataset.drawn = scope;
    el.dataset.state = "drawing";
    if (el._view) { el._view.finalize(); el._view = null; }
    var spec = chartSpec(el);
    if (!spec) { el.textContent = "–"; el.dataset.state = "empty"; return; }
    vegaEmbed(el, spec, embedOptions).then(function (result) {
      el._view = result.view;
      el.dataset.state = "done";
    }).catch(function (error) {
      el.dataset.state = "error";
      console.error("chart " + scope + ": " + error);
    });
  }

  var charts = Array.prototype.slice.call(document.querySelectorAll(".chart"));
  var visible = new Set();
  var observer = "IntersectionObserver" in window ? new IntersectionObserver(function (entries) {
    entries.forEach(function (entry) {
      if (entry.isIntersecting) { visible.add(entry.target); render(entry.target); }
      else visible.delete(entry.target);
    });
  }, { rootMargin: "300px 0px" }) : null;
  charts.forEach(function (el) { if (observer) observer.observe(el); else render(el); });
  window.addEventListener("beforeprint", function () { charts.forEach(render); });
  var resizing = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizing);
    resizing = setTimeout(function () {
      charts.forEach(function (el) { if (el.dataset.drawn && (!observer || visible.has(el))) render(el); });
    }, 200);
  });

  var filtered = Array.prototype.slice.call(document.querySelectorAll(".f"));
  var regionRows = document.querySelectorAll("tr.region-row");
  var province = document.getElementById("f-province");
  var branch = document.getElementById("f-branch");
  var search = document.getElementById("f-search");
  var count = document.getElementById("f-count");

  function shown(el) {
    var d = el.dataset;
    if (state.province && d.provinces !== undefined && d.provinces.split(" ").indexOf(state.province) < 0) return false;
    if (state.branch && d.branch !== undefined && d.branch !== state.branch) return false;
    if (state.search && d.name !== undefined && d.name.indexOf(state.search) < 0) return false;
    return true;
  }

  // Of the actions the filter leaves, only the first few of each kind; of the worklist groups, the first open.
  function limit() {
    var taken = { checks: 0, region: 0, employer: 0 }, any = false;
    document.querySelectorAll("li.action").forEach(function (el) {
      var kind = el.dataset.kind;
      if (!el.hidden) {
        if (taken[kind] >= D.limits[kind]) el.hidden = true;
        else { taken[kind] += 1; any = true; }
      }
    });
    document.getElementById("nothing-to-do").hidden = any;
    var open = 0;
    document.querySelectorAll("details.wl-group").forEach(function (el) {
      if (!el.hidden) { el.open = open < D.limits.groups; open += 1; }
    });
  }

  function apply() {
    filtered.forEach(function (el) { el.hidden = !shown(el); });
    limit();
    Array.prototype.forEach.call(branch.options, function (option) {
      option.hidden = !!(option.value && state.province &&
        (option.dataset.provinces || "").split(" ").indexOf(state.province) < 0);
    });
    var scope = scopeKey();
    document.getElementById("scope-name").textContent = D.names[scope] || scope;
    document.querySelectorAll(".kpis[data-scope]").forEach(function (el) { el.hidden = el.dataset.scope !== scope; });
    ["scope-chart", "segment-chart"].forEach(function (id) {
      var el = document.getElementById(id);
      el.dataset.scope = scope;
      if (!observer || visible.has(el)) render(el);
    });
    document.querySelectorAll("tbody.segment-scope").forEach(function (body) {
      body.hidden = body.dataset.scope !== scope;
    });
    var n = Array.prototype.filter.call(regionRows, function (row) { return !row.hidden; }).length;
    count.textContent = D.text.showing + " " + n + " " + D.text.of + " " + regionRows.length + " " + D.text.regions_word;
    var hash = [];
    if (state.province) hash.push("province=" + encodeURIComponent(state.province));
    if (state.branch) hash.push("branch=" + encodeURIComponent(state.branch));
    if (state.search) hash.push("q=" + encodeURIComponent(state.search));
    history.replaceState(null, "", hash.length ? "#" + hash.join("&") : location.pathname);
  }

  province.addEventListener("change", function () {
    state.province = province.value;
    if (state.branch && state.province) {
      var option = branch.options[branch.selectedIndex];
      if ((option.dataset.provinces || "").split(" ").indexOf(state.province) < 0) { branch.value = ""; state.branch = ""; }
    }
    apply();
  });
  branch.addEventListener("change", function () {
    state.branch = branch.value;
    var option = branch.options[branch.selectedIndex];
    if (state.branch && !state.province) {
      state.province = (option.dataset.provinces || "").split(" ")[0] || "";
      province.value = state.province;
    }
    apply();
  });
  var typing = null;
  search.addEventListener("input", function () {
    clearTimeout(typing);
    typing = setTimeout(function () { state.search = search.value.trim().toLowerCase(); apply(); }, 150);
  });

  // Go to an action's detail without losing the filter in the address: open the worklist group it is in.
  function reveal(id) {
    var el = document.getElementById(id);
    if (!el) return;
    if (el.tagName === "DETAILS") el.open = true;
    el.scrollIntoView({ block: "start" });
  }
  document.querySelectorAll("#this-month a[href^='#']").forEach(function (link) {
    link.addEventListener("click", function (event) { event.preventDefault(); reveal(link.getAttribute("href").slice(1)); });
  });

  // A bookmarked or shared link keeps its filter: #province=33&branch=PEKALONGAN&q=batang (&at=chart-3326 goes
  // to that detail: the digests link this way)
  var target = null;
  location.hash.slice(1).split("&").forEach(function (pair) {
    var parts = pair.split("="), value = decodeURIComponent(parts[1] || "");
    if (parts[0] === "province") { state.province = value; province.value = value; }
    if (parts[0] === "branch") { state.branch = value; branch.value = value; }
    if (parts[0] === "at") target = value;
    if (parts[0] === "region" && D.names["region:" + value]) {
      state.search = D.names["region:" + value].toLowerCase();
      search.value = D.names["region:" + value];
    }
    if (parts[0] === "q") { state.search = value.toLowerCase(); search.value = value; }
  });
  if (state.branch && !state.province) {
    var chosen = branch.options[branch.selectedIndex];
    state.province = chosen ? (chosen.dataset.provinces || "").split(" ")[0] || "" : "";
    province.value = state.province;
  }
  if (state.province || state.branch || state.search) apply();
  if (target) reveal(target);
  window.jknReport = { apply: apply, state: state, render: render, reveal: reveal };
})();
