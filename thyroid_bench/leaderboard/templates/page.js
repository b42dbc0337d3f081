(function () {
  "use strict";
  function sortValue(tbody, col, type) {
    var cell = tbody.rows[0].cells[col];
    var v = cell.getAttribute("data-sort");
    if (v === null) { v = cell.textContent.trim(); }
    if (type === "num") {
      var x = parseFloat(v);
      return isNaN(x) ? null : x;
    }
    return v.toLowerCase();
  }
  Array.prototype.forEach.call(document.querySelectorAll("table.ranking"), function (table) {
    var headers = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(headers, function (th, col) {
      var type = th.getAttribute("data-type");
      if (!type) { return; }
      th.tabIndex = 0;
      function sort() {
        var current = th.getAttribute("aria-sort");
        var asc = current ? current === "descending" : th.getAttribute("data-first") !== "descending";
        Array.prototype.forEach.call(headers, function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", asc ? "ascending" : "descending");
        var bodies = Array.prototype.slice.call(table.tBodies);
        bodies.sort(function (a, b) {
          var x = sortValue(a, col, type), y = sortValue(b, col, type);
          if (x === null && y === null) { return 0; }
          if (x === null) { return 1; }
          if (y === null) { return -1; }
          var c = x < y ? -1 : (x > y ? 1 : 0);
          return asc ? c : -c;
        });
        bodies.forEach(function (b) { table.appendChild(b); });
      }
      th.addEventListener("click", sort);
      th.addEventListener("keydown", function (e) {
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sort(); }
      });
    });
  });
  Array.prototype.forEach.call(document.querySelectorAll("button.expand"), function (btn) {
    btn.addEventListener("click", function () {
      var row = document.getElementById(btn.getAttribute("aria-controls"));
      var open = btn.getAttribute("aria-expanded") === "true";
      btn.setAttribute("aria-expanded", String(!open));
      btn.textContent = open ? "▸" : "▾";
      row.hidden = open;
    });
  });
})();
