/* krally's HTML report: draws the charts from the #krally-data island with uPlot.
 * Every chart's x axis is seconds from the load's start; the duration chart marks each hook
 * firing (a dashed line and a .krally-firing element, for people and for tests) and shades
 * each firing's impact windows (baseline grey, during red, after green). */
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("krally-data").textContent);
  var charts = (window.krallyCharts = {});
  var COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#4b5563"];
  var SHADES = {
    baseline: "rgba(107,114,128,0.12)",
    during: "rgba(220,38,38,0.16)",
    after: "rgba(22,163,74,0.12)",
  };

  function width(el) {
    return Math.max(320, el.clientWidth || 800);
  }

  function seconds(v) {
    if (v == null) return "n/a";
    if (v === 0) return "0";
    if (v < 0.001) return (v * 1e6).toPrecision(3) + " µs";
    if (v < 1) return (v * 1000).toPrecision(3) + " ms";
    return v.toPrecision(4) + " s";
  }

  function secondsAxis(u, splits) {
    return splits.map(seconds);
  }

  function empty(el, text) {
    el.classList.add("empty");
    el.textContent = text;
  }

  // Firing markers and impact windows, drawn under the series and placed again on each redraw.
  function firingsPlugin(workload) {
    var markers = [];
    function place(u) {
      markers.forEach(function (m) {
        var x = u.valToPos(m.offset, "x");
        m.el.style.left = x + "px";
        m.el.style.display = x >= 0 && x <= u.over.clientWidth ? "" : "none";
      });
    }
    return {
      hooks: {
        init: function (u) {
          workload.firings.forEach(function (f) {
            var el = document.createElement("div");
            el.className = "krally-firing " + (f.status === "success" ? "ok" : "bad");
            el.dataset.offset = String(f.offset);
            el.dataset.hook = String(f.hook);
            el.title = f.label + " at " + f.offset.toFixed(2) + " s (" + f.status + ")";
            var tag = document.createElement("span");
            tag.textContent = "#" + (f.hook + 1);
            el.appendChild(tag);
            u.over.appendChild(el);
            markers.push({ el: el, offset: f.offset });
          });
        },
        drawClear: function (u) {
          var ctx = u.ctx;
          var top = u.bbox.top;
          var height = u.bbox.height;
          workload.impact.forEach(function (entry) {
            ["baseline", "during", "after"].forEach(function (name) {
              var w = entry[name];
              if (!w || w.from == null || w.to == null) return;
              var x0 = u.valToPos(w.from, "x", true);
              var x1 = u.valToPos(w.to, "x", true);
              ctx.fillStyle = SHADES[name];
              ctx.fillRect(x0, top, Math.max(1, x1 - x0), height);
            });
          });
        },
        draw: function (u) {
          var ctx = u.ctx;
          ctx.save();
          if (u.series[1].label === "median") drawWindowP95(u, workload);
          ctx.setLineDash([6, 4]);
          ctx.lineWidth = 1.5 * devicePixelRatio;
          workload.firings.forEach(function (f) {
            var x = Math.round(u.valToPos(f.offset, "x", true));
            ctx.strokeStyle = f.status === "success" ? "#7c3aed" : "#dc2626";
            ctx.beginPath();
            ctx.moveTo(x, u.bbox.top);
            ctx.lineTo(x, u.bbox.top + u.bbox.height);
            ctx.stroke();
          });
          ctx.restore();
          place(u);
        },
      },
    };
  }

  // Each impact window's p95 as a step over its span: the timeline's per-second points can
  // hide a sub-second disruption; the windows (resolutionSeconds apart) do not.
  var STEPS = { baseline: "#4b5563", during: "#b91c1c", after: "#15803d" };
  function drawWindowP95(u, workload) {
    var ctx = u.ctx;
    ctx.lineWidth = 3 * devicePixelRatio;
    workload.impact.forEach(function (entry) {
      ["baseline", "during", "after"].forEach(function (name) {
        var w = entry[name];
        if (!w || w.from == null || w.to == null || w.p95 == null) return;
        var y = u.valToPos(w.p95, "y", true);
        ctx.strokeStyle = STEPS[name];
        ctx.beginPath();
        ctx.moveTo(u.valToPos(w.from, "x", true), y);
        ctx.lineTo(u.valToPos(w.to, "x", true), y);
        ctx.stroke();
      });
    });
  }

  function yMax(values, workload) {
    var top = 0;
    values.forEach(function (v) { if (v != null && v > top) top = v; });
    workload.impact.forEach(function (e) {
      ["baseline", "during", "after"].forEach(function (n) {
        if (e[n] && e[n].p95 != null && e[n].p95 > top) top = e[n].p95;
      });
    });
    return top > 0 ? top * 1.1 : 1;
  }

  function xRange(workload) {
    var xs = workload.timeline.offset.concat(workload.timeline.end);
    workload.firings.forEach(function (f) {
      xs.push(f.offset);
    });
    workload.impact.forEach(function (e) {
      ["baseline", "during", "after"].forEach(function (n) {
        if (e[n] && e[n].to != null) xs.push(e[n].to);
      });
    });
    return [Math.min.apply(null, xs.concat([0])), Math.max.apply(null, xs.concat([1]))];
  }

  // Each timeline point is an interval [offset, end): drawn as a step over it, so that a spike
  // is never drawn left of the interval its iterations started in (a point at the interval's
  // start put a freeze at 4.4 s at 4 s, before its firing). The last step is closed at its end.
  var STEPPED = uPlot.paths.stepped({ align: 1 });
  function steps(t, columns) {
    var n = t.offset.length;
    var x = t.offset.concat([t.end[n - 1]]);
    return [x].concat(
      columns.map(function (c) {
        return c.concat([c[n - 1]]);
      })
    );
  }

  function topOf(values) {
    var top = 0;
    values.forEach(function (v) { if (v != null && v > top) top = v; });
    return top > 0 ? top * 1.1 : 1;
  }

  function loadChart(el, w) {
    var t = w.timeline;
    if (!t.offset.length) return empty(el, "No iterations.");
    var range = xRange(w);
    var failTop = topOf(t.failureRate);
    return new uPlot(
      {
        width: width(el),
        height: 260,
        scales: {
          x: { time: false, range: function () { return range; } },
          // failures/s on its own scale (right axis): on the iterations/s one a few failures
          // a second under thousands of iterations were a flat line at zero.
          failures: { range: function () { return [0, failTop]; } },
        },
        axes: [
          { label: "seconds into the load" },
          { label: "iterations/s", size: 60 },
          { label: "failures/s", scale: "failures", side: 1, size: 60, stroke: COLORS[1],
            grid: { show: false } },
        ],
        series: [
          { label: "s" },
          { label: "iterations/s", stroke: COLORS[0], fill: "rgba(37,99,235,0.08)", width: 2,
            paths: STEPPED },
          { label: "failures/s", scale: "failures", stroke: COLORS[1],
            fill: "rgba(220,38,38,0.15)", width: 2, paths: STEPPED },
        ],
        plugins: [firingsPlugin(w)],
      },
      steps(t, [t.rate, t.failureRate]),
      el
    );
  }

  function durationChart(el, w) {
    var t = w.timeline;
    if (!t.offset.length) return empty(el, "No iterations.");
    var range = xRange(w);
    var top = yMax(t.p95.concat(t.median), w);
    return new uPlot(
      {
        width: width(el),
        height: 300,
        scales: {
          x: { time: false, range: function () { return range; } },
          y: { range: function () { return [0, top]; } },
        },
        axes: [
          { label: "seconds into the load" },
          { label: "duration", size: 70, values: secondsAxis },
        ],
        series: [
          { label: "s" },
          { label: "median", stroke: COLORS[0], width: 2, paths: STEPPED,
            value: function (u, v) { return seconds(v); } },
          { label: "p95", stroke: COLORS[4], width: 2, paths: STEPPED,
            value: function (u, v) { return seconds(v); } },
        ],
        plugins: [firingsPlugin(w)],
      },
      steps(t, [t.median, t.p95]),
      el
    );
  }

  function histogramChart(el, w) {
    var bins = w.histogram;
    if (!bins.length) return empty(el, "No duration histogram in these results.");
    var xs = bins.map(function (b, i) { return i; });
    var counts = bins.map(function (b) { return b[2]; });
    return new uPlot(
      {
        width: width(el),
        height: 240,
        scales: { x: { time: false, range: [-0.5, bins.length - 0.5] } },
        axes: [
          {
            label: "duration (upper bound of each bin)",
            values: function (u, splits) {
              return splits.map(function (i) {
                var b = bins[Math.round(i)];
                return b && Math.abs(i - Math.round(i)) < 1e-9 ? seconds(b[1]) : "";
              });
            },
          },
          { label: "iterations", size: 60 },
        ],
        series: [
          {
            label: "bin",
            value: function (u, i) {
              var b = bins[i];
              return b ? seconds(b[0]) + " – " + seconds(b[1]) : "";
            },
          },
          {
            label: "iterations",
            stroke: COLORS[0],
            fill: "rgba(37,99,235,0.35)",
            paths: uPlot.paths.bars({ size: [0.9, 60] }),
            points: { show: false },
          },
        ],
      },
      [xs, counts],
      el
    );
  }

  // A hook output's "complete" Lines / StackedArea chart: [[name, [[x, y], ...]], ...].
  function outputChart(el, chart) {
    var seriesData = chart.data.filter(function (s) { return s[1] && s[1].length; });
    if (!seriesData.length) return empty(el, "No points.");
    var xs = {};
    seriesData.forEach(function (s) {
      s[1].forEach(function (p) { xs[p[0]] = true; });
    });
    var x = Object.keys(xs).map(Number).sort(function (a, b) { return a - b; });
    var columns = [x];
    var series = [{ label: chart.label || "x" }];
    seriesData.forEach(function (s, i) {
      var byX = {};
      s[1].forEach(function (p) { byX[p[0]] = p[1]; });
      columns.push(x.map(function (v) { return v in byX ? byX[v] : null; }));
      series.push({ label: s[0], stroke: COLORS[i % COLORS.length], width: 2 });
    });
    return new uPlot(
      {
        width: Math.min(width(el), 700),
        height: 200,
        scales: { x: { time: false } },
        axes: [{}, { label: chart.axisLabel || "", size: 60 }],
        series: series,
      },
      columns,
      el
    );
  }

  var all = [];
  function draw() {
    data.tasks.forEach(function (task, t) {
      task.workloads.forEach(function (w, n) {
        var id = "t" + t + "-w" + n;
        var made = (charts[id] = {});
        var makers = { load: loadChart, duration: durationChart, histogram: histogramChart };
        document.querySelectorAll('[data-workload="' + id + '"]').forEach(function (el) {
          var u = makers[el.dataset.chart](el, w);
          if (u) {
            made[el.dataset.chart] = u;
            all.push([u, el]);
          }
        });
        w.hooks.forEach(function (hook) {
          hook.results.forEach(function (r, ri) {
            r.output.complete.forEach(function (chart, ci) {
              if (!chart) return; // drawn as HTML by the report itself
              var key = id + "-h" + hook.index + "-r" + ri + ":complete:" + ci;
              var el = document.querySelector('[data-hook-chart="' + key + '"]');
              if (el) outputChart(el, chart);
            });
          });
        });
      });
    });
  }

  draw();
  window.addEventListener("resize", function () {
    all.forEach(function (pair) {
      pair[0].setSize({ width: width(pair[1]), height: pair[0].height });
    });
  });
  document.body.dataset.chartsReady = "true";
})();
