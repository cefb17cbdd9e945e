// The console's only script (the CSP forbids inline ones): times in the browser's time zone,
// and, on the Now page, new rises and their deliveries as they happen (server-sent events).
'use strict';
(function () {
  function localTimes(root) {
    root.querySelectorAll('time[datetime]').forEach(function (t) {
      var d = new Date(t.getAttribute('datetime'));
      if (!isNaN(d.getTime())) t.textContent = d.toLocaleString();
    });
  }
  document.addEventListener('DOMContentLoaded', function () {
    localTimes(document);
    var table = document.getElementById('now');
    if (!table || !window.EventSource) return;
    var source = new EventSource('/console/live');
    source.addEventListener('rise', function (e) {
      var data = JSON.parse(e.data);
      var holder = document.createElement('tbody');
      holder.innerHTML = data.row;
      var row = holder.firstElementChild;
      if (!row) return;
      row.classList.add('new');
      localTimes(row);
      // A rise already shown is updated in place (its deliveries moved on); a new one goes on top.
      var shown = document.getElementById('rise-' + data.key);
      if (shown) shown.replaceWith(row);
      else table.tBodies[0].insertBefore(row, table.tBodies[0].firstChild);
    });
  });
})();
