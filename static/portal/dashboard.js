/* Usage charts on the customer dashboard: one bar chart per canvas, data from the JSON
   endpoints. Estimated bars are drawn lighter; gaps (null) have no bar. No inline script (CSP). */
(function () {
  "use strict";
  var MEASURED = "#1f6f8b", ESTIMATED = "#9cc9d9";
  var LABEL = {
    hour: { hour: "2-digit", day: "numeric", month: "short" },
    day: { day: "numeric", month: "short" },
    month: { month: "short", year: "numeric" }
  };

  function label(iso, resolution) {
    return new Date(iso).toLocaleString(undefined, LABEL[resolution]);
  }

  function draw(canvas) {
    var resolution = canvas.dataset.resolution;
    var status = document.getElementById("status-" + resolution);
    fetch(canvas.dataset.url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.json();
      })
      .then(function (data) {
        var buckets = data.buckets;
        var gaps = buckets.filter(function (b) { return b.kwh === null; }).length;
        var estimated = buckets.filter(function (b) { return b.estimated; }).length;
        new window.Chart(canvas, {
          type: "bar",
          data: {
            labels: buckets.map(function (b) { return label(b.start, resolution); }),
            datasets: [{
              label: "kWh",
              data: buckets.map(function (b) { return b.kwh; }),
              backgroundColor: buckets.map(function (b) { return b.estimated ? ESTIMATED : MEASURED; }),
              borderColor: MEASURED,
              borderWidth: buckets.map(function (b) { return b.estimated ? 1 : 0; })
            }]
          },
          options: {
            animation: false,
            responsive: true,
            maintainAspectRatio: false,
            plugins: {
              legend: { display: false },
              tooltip: {
                callbacks: {
                  afterLabel: function (ctx) {
                    var b = buckets[ctx.dataIndex];
                    return (b.estimated ? "estimated" : "") + (b.complete ? "" : " (partial)");
                  }
                }
              }
            },
            scales: { y: { beginAtZero: true, title: { display: true, text: "kWh" } } }
          }
        });
        canvas.dataset.drawn = "true";
        status.textContent = (gaps ? gaps + " period(s) without data. " : "") +
          (estimated ? estimated + " estimated." : "");
      })
      .catch(function (error) {
        status.textContent = "Could not load the chart (" + error.message + ").";
        canvas.dataset.drawn = "error";
      });
  }

  document.querySelectorAll("canvas.usage-chart").forEach(draw);
})();
