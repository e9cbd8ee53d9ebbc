// A button marked data-copy puts the text of the element it names on the clipboard (the query
// number on the acknowledgement, to paste into a chat or a note: selecting it on a phone takes a
// long press and handles). It stays hidden where it cannot work: no script, no clipboard (a page
// not served over https).
(function () {
  "use strict";
  if (!navigator.clipboard || !window.isSecureContext) { return; }
  Array.prototype.forEach.call(document.querySelectorAll("button[data-copy]"), function (button) {
    var source = document.querySelector(button.getAttribute("data-copy"));
    var status = document.getElementById(button.getAttribute("aria-describedby") || "");
    if (!source) { return; }
    button.hidden = false;
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(source.textContent.trim()).then(function () {
        if (status) { status.textContent = button.getAttribute("data-copied"); }
      });
    });
  });
}());
