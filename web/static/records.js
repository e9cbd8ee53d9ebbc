// Saved views of the record list: a name for the current filters, kept in this browser
// (localStorage). A view is only a URL of this site; nothing here reaches the server, and the
// links are built with textContent / setAttribute, never as HTML.
(function () {
  "use strict";
  var box = document.querySelector(".saved-views");
  if (!box || !window.localStorage) { return; }
  var key = "docket.views." + box.getAttribute("data-form");
  var list = document.getElementById("saved-views");
  var input = document.getElementById("view-name");
  var save = document.getElementById("save-view");

  function load() {
    try {
      var views = JSON.parse(localStorage.getItem(key) || "[]");
      return Array.isArray(views) ? views : [];
    } catch (e) { return []; }
  }

  function local(url) { return typeof url === "string" && url.charAt(0) === "/" && url.charAt(1) !== "/"; }

  function draw() {
    while (list.firstChild) { list.removeChild(list.firstChild); }
    load().forEach(function (view, i) {
      if (!view || !local(view.url)) { return; }
      var item = document.createElement("li");
      var link = document.createElement("a");
      link.setAttribute("href", view.url);
      link.textContent = String(view.name);
      var drop = document.createElement("button");
      drop.type = "button";
      drop.className = "link";
      drop.textContent = box.getAttribute("data-remove");
      drop.addEventListener("click", function () {
        var views = load();
        views.splice(i, 1);
        localStorage.setItem(key, JSON.stringify(views));
        draw();
      });
      item.appendChild(link);
      item.appendChild(document.createTextNode(" "));
      item.appendChild(drop);
      list.appendChild(item);
    });
  }

  function keep() {
    var name = input.value.trim();
    if (!name) { input.focus(); return; }
    var views = load().filter(function (v) { return v && v.name !== name; });
    views.push({ name: name.slice(0, 60), url: box.getAttribute("data-query") });
    localStorage.setItem(key, JSON.stringify(views.slice(-30)));
    input.value = "";
    draw();
  }
  save.addEventListener("click", keep);
  // Enter in the name box saves, as it would in a form: typing a name and pressing Enter did nothing.
  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.isComposing) { event.preventDefault(); keep(); }
  });
  draw();
}());

// The filters say what the list below them holds. Back from a filtered list, the browser kept
// the choices made before leaving this one (its page cache, or its restoring of form fields):
// "East China" showed above the unfiltered rows. The form goes back to what the page was sent
// with, which is the list's own query.
(function () {
  "use strict";
  var filters = document.getElementById("record-filters");
  if (!filters) { return; }
  window.addEventListener("pageshow", function () { filters.reset(); });
}());

// The filters are sent without the ones left at "Any": the address bar shows the same short
// address as "Link to share" (…?region=east), not ?q=&status=&sla=&category=&urgency=&region=east&from=&to=.
(function () {
  "use strict";
  var filters = document.getElementById("record-filters");
  if (!filters || !window.URLSearchParams || !window.FormData) { return; }
  filters.addEventListener("submit", function (event) {
    var chosen = new URLSearchParams();
    new FormData(filters).forEach(function (value, name) {
      if (typeof value === "string" && value.trim() !== "") { chosen.append(name, value); }
    });
    event.preventDefault();
    var query = chosen.toString();
    window.location.assign(filters.action + (query ? "?" + query : ""));
  });
}());
