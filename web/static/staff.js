// Staff pages: a button marked data-once is disabled after its form is sent, so a double click
// sends one request (the server is idempotent anyway: this only spares the user a second page).
(function () {
  "use strict";
  Array.prototype.forEach.call(document.querySelectorAll("form"), function (form) {
    form.addEventListener("submit", function (event) {
      // Not sent after all (form.js refused a file too large): the buttons stay usable.
      if (event.defaultPrevented) { return; }
      var used = event.submitter;
      if (form.getAttribute("data-sent") === "1") { event.preventDefault(); return; }
      form.setAttribute("data-sent", "1");
      if (used && used.name) {
        // A disabled button is not sent: keep its name and value in a hidden input.
        var keep = document.createElement("input");
        keep.type = "hidden"; keep.name = used.name; keep.value = used.value;
        form.appendChild(keep);
      }
      Array.prototype.forEach.call(form.querySelectorAll("button[data-once]"), function (b) {
        b.disabled = true;
        // A slow command (running the scenarios) says it is at work instead of looking dead.
        if (b === used && b.hasAttribute("data-busy")) { b.textContent = b.getAttribute("data-busy"); }
      });
    });
  });
}());

// A page that answers a refused post (the errors beside what was typed) is at the post's address
// (/records/…/tasks/7/complete): reloading it would send the form again, and bookmarking it
// keeps a page that cannot be opened. The page names its own address (<meta name=page-address>);
// the address bar shows that one, nothing reloaded, what was typed still on the page.
(function () {
  "use strict";
  var meta = document.querySelector("meta[name=page-address]");
  var address = meta && meta.getAttribute("content");
  if (!address || !window.history.replaceState || window.location.pathname === address) { return; }
  window.history.replaceState(window.history.state, "", address);
}());
