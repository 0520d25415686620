// Draws the evidence chart(s) on a page: each <canvas data-chart-source="id"> reads its
// data from the json_script element with that id ({labels, datasets}) and renders it with
// the vendored Chart.js. No inline script (CSP script-src 'self').
(function () {
  "use strict";
  var palette = ["#0b5cad", "#b3261e", "#1c7c3c", "#9a5b00", "#6b3fa0", "#00707a"];
  document.querySelectorAll("canvas[data-chart-source]").forEach(function (canvas) {
    var source = document.getElementById(canvas.getAttribute("data-chart-source"));
    if (!source || typeof Chart === "undefined") { return; }
    var spec = JSON.parse(source.textContent);
    var scales = { x: { ticks: { maxRotation: 60, autoSkip: true } }, y: { beginAtZero: false } };
    var datasets = (spec.datasets || []).map(function (set, i) {
      var colour = palette[i % palette.length];
      if (set.yAxisID === "y1") {
        scales.y1 = { position: "right", grid: { drawOnChartArea: false }, beginAtZero: true };
      }
      return {
        type: set.type || "line",
        label: set.label,
        data: set.data,
        yAxisID: set.yAxisID || "y",
        borderColor: colour,
        backgroundColor: set.type === "bar" ? colour + "99" : colour,
        pointRadius: 1,
        spanGaps: false
      };
    });
    new Chart(canvas, {
      type: "bar",
      data: { labels: spec.labels || [], datasets: datasets },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        interaction: { mode: "index", intersect: false },
        scales: scales
      }
    });
  });
})();
