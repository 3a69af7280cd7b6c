// The campaign page's chart: sends and replies per day (data from the page's JSON script element).
(function () {
  "use strict";
  function draw() {
    var canvas = document.getElementById("campaign-chart");
    var source = document.getElementById("campaign-series");
    if (!canvas || !source || typeof Chart === "undefined") return;
    var series = JSON.parse(source.textContent);
    new Chart(canvas, {
      type: "bar",
      data: {
        labels: series.labels,
        datasets: [
          { label: "Sent", data: series.sent, backgroundColor: "#3b6fd8" },
          { label: "Replied", data: series.replied, backgroundColor: "#e0a100" }
        ]
      },
      options: { animation: false, responsive: true, maintainAspectRatio: false,
                 scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } }
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw); else draw();
})();
