// Client-side sorting and filtering of the leaderboard table (progressive enhancement: without
// JavaScript the header links sort on the server and the filter form submits ?q=).
// Only used when the whole table is on the page (data-complete="true"); otherwise the links and
// the form keep going to the server, which sorts and filters every row, not just this page.
(function () {
  "use strict";
  var table = document.getElementById("ranking");
  if (!table || table.getAttribute("data-complete") !== "true") { return; }
  var tbody = table.tBodies[0];
  var headers = table.tHead.rows[0].cells;
  var input = document.getElementById("filter");
  var count = document.getElementById("ranking-count");
  var total = tbody.rows.length;

  function cellValue(row, index) {
    var cell = row.cells[index];
    if (!cell) { return ""; }
    var v = cell.getAttribute("data-v");
    if (v === null) {
      var inner = cell.querySelector("[data-v]");
      v = inner ? inner.getAttribute("data-v") : cell.textContent.trim();
    }
    return v;
  }

  function compare(a, b, numeric) {
    if (a === "" && b === "") { return 0; }
    if (a === "") { return 1; }  // missing values last, whatever the order
    if (b === "") { return -1; }
    if (numeric) { return parseFloat(a) - parseFloat(b); }
    return a < b ? -1 : (a > b ? 1 : 0);
  }

  function sortBy(th, order) {
    var index = th.cellIndex;
    var key = th.getAttribute("data-key");
    var numeric = key !== "name";
    var rows = Array.prototype.slice.call(tbody.rows);
    rows.sort(function (ra, rb) {
      var va = cellValue(ra, index), vb = cellValue(rb, index);
      if (va === "" || vb === "") { return compare(va, vb, numeric); }
      var c = compare(va, vb, numeric);
      return order === "desc" ? -c : c;
    });
    rows.forEach(function (r) { tbody.appendChild(r); });
    Array.prototype.forEach.call(headers, function (h) {
      h.removeAttribute("aria-sort");
      var mark = h.querySelector(".sort-mark");
      if (mark) { mark.parentNode.removeChild(mark); }
    });
    th.setAttribute("aria-sort", order === "asc" ? "ascending" : "descending");
    var link = th.querySelector("a.sort");
    var mark = document.createElement("span");
    mark.className = "sort-mark";
    mark.textContent = order === "asc" ? " ▲" : " ▼";
    link.appendChild(mark);
    if (window.history && window.history.replaceState) {
      var url = new URL(window.location.href);
      url.searchParams.set("sort", key);
      url.searchParams.set("order", order);
      window.history.replaceState(null, "", url.toString());
    }
  }

  Array.prototype.forEach.call(headers, function (th) {
    var link = th.querySelector("a.sort");
    if (!link) { return; }
    link.addEventListener("click", function (event) {
      event.preventDefault();
      var current = th.getAttribute("aria-sort");
      var order = current === "ascending" ? "desc" : current === "descending" ? "asc"
        : (link.getAttribute("data-default-order") || "asc");
      sortBy(th, order);
    });
  });

  function applyFilter() {
    var needle = input.value.trim().toLowerCase();
    var shown = 0;
    Array.prototype.forEach.call(tbody.rows, function (row) {
      var name = (row.getAttribute("data-submission") || "").toLowerCase();
      var match = name.indexOf(needle) !== -1;
      row.hidden = !match;
      if (match) { shown += 1; }
    });
    if (count) { count.textContent = shown + " of " + total + " shown"; }
  }

  if (input) {
    input.addEventListener("input", applyFilter);
    input.form.addEventListener("submit", function (event) { event.preventDefault(); applyFilter(); });
  }
})();
