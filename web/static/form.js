// Shows and hides form fields live from their conditions (data-visible-if), and marks a field
// required while its case holds (data-required-if), without a round trip.
// The server checks every condition again on submit: this script only saves the user a reload.
(function () {
  "use strict";
  var form = document.querySelector("form[data-live]");
  if (!form) { return; }
  var conditional = Array.prototype.slice.call(form.querySelectorAll("[data-visible-if]"));
  // A field required only in some cases, read from this page's fields (data-required-if): it is
  // marked required while its case holds, as the server will refuse it empty then.
  var requiredIf = Array.prototype.slice.call(form.querySelectorAll("[data-required-if]"));
  if (!conditional.length && !requiredIf.length) { return; }

  function valueOf(name) {
    var inputs = form.querySelectorAll("[name='" + name.replace(/'/g, "") + "']");
    if (!inputs.length) { return null; }
    var first = inputs[0];
    if (first.type === "checkbox" && inputs.length === 1) { return first.checked; }
    if (first.type === "checkbox") {
      return Array.prototype.filter.call(inputs, function (i) { return i.checked; })
        .map(function (i) { return i.value; });
    }
    if (first.type === "radio") {
      var picked = Array.prototype.filter.call(inputs, function (i) { return i.checked; })[0];
      return picked ? picked.value : null;
    }
    return first.value === "" ? null : first.value;
  }

  function same(a, b) {
    if (a === null || b === null) { return a === b; }
    if (typeof a === "number" || typeof b === "number") { return Number(a) === Number(b); }
    return String(a) === String(b);
  }

  function evaluate(node) {
    var op = node[0];
    if (op === "lit") { return node[1]; }
    if (op === "field") { return valueOf(node[1]); }
    if (op === "and") { return node.slice(1).every(function (n) { return evaluate(n); }); }
    if (op === "or") { return node.slice(1).some(function (n) { return evaluate(n); }); }
    if (op === "not") { return !evaluate(node[1]); }
    var left = evaluate(node[1]), right = evaluate(node[2]);
    if (op === "==") { return same(left, right); }
    if (op === "!=") { return !same(left, right); }
    if (op === "in" || op === "not in") {
      var found = Array.isArray(right) ? right.some(function (r) { return same(left, r); })
        : (right !== null && left !== null && String(right).indexOf(String(left)) >= 0);
      return op === "in" ? found : !found;
    }
    if (left === null || right === null) { return false; }
    var a = Number(left), b = Number(right);
    if (isNaN(a) || isNaN(b)) { a = String(left); b = String(right); }
    if (op === "<") { return a < b; }
    if (op === "<=") { return a <= b; }
    if (op === ">") { return a > b; }
    if (op === ">=") { return a >= b; }
    return true;
  }

  function refresh() {
    conditional.forEach(function (el) {
      var visible = true;
      try { visible = !!evaluate(JSON.parse(el.getAttribute("data-visible-if"))); } catch (e) { visible = true; }
      el.hidden = !visible;
    });
    requiredIf.forEach(function (input) {
      var required;
      try { required = !!evaluate(JSON.parse(input.getAttribute("data-required-if"))); } catch (e) { return; }
      if (required) { input.setAttribute("aria-required", "true"); } else { input.removeAttribute("aria-required"); }
      var label = input.id && form.querySelector("label[for='" + input.id + "']");
      if (!label) { return; }
      Array.prototype.forEach.call(label.querySelectorAll("[data-required-mark]"), function (m) { m.hidden = !required; });
      Array.prototype.forEach.call(label.querySelectorAll("[data-optional-mark]"), function (m) { m.hidden = required; });
    });
  }

  form.addEventListener("input", refresh);
  form.addEventListener("change", refresh);
  refresh();
}());

// Another language keeps what was typed: the language links load the page afresh, and a clerk
// who switched halfway had to type it all again. The entries wait in this tab's sessionStorage
// for the one page load the link makes, and are removed as soon as they are put back. Files,
// the anti-spam ticket and the ids of files already sent are not kept (the page starts those anew).
(function () {
  "use strict";
  var form = document.querySelector("form[data-live]");
  var store = null;
  try { store = window.sessionStorage; } catch (e) { store = null; }
  if (!form || !store) { return; }
  var key = "docket.entries:" + window.location.pathname;

  function kept(el) {
    return el.name && !el.disabled && el.name !== "_ticket" && !el.closest(".hp") &&
      ["file", "hidden", "submit", "button", "password"].indexOf(el.type) < 0;
  }

  var saved = null;
  try { saved = JSON.parse(store.getItem(key) || "null"); } catch (e) { saved = null; }
  store.removeItem(key);
  if (saved) {
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!kept(el) || !Object.prototype.hasOwnProperty.call(saved, el.name)) { return; }
      var values = saved[el.name];
      if (el.type === "checkbox" || el.type === "radio") { el.checked = values.indexOf(el.value) >= 0; }
      else { el.value = values[0]; }
    });
    form.dispatchEvent(new Event("input", { bubbles: true }));
  }

  Array.prototype.forEach.call(document.querySelectorAll("nav.lang a"), function (link) {
    link.addEventListener("click", function () {
      var entries = {}, any = false;
      Array.prototype.forEach.call(form.elements, function (el) {
        if (!kept(el)) { return; }
        var list = entries[el.name] || (entries[el.name] = []);
        if (el.type === "checkbox" || el.type === "radio") { if (el.checked) { list.push(el.value); any = true; } }
        else { list.push(el.value); any = any || el.value !== ""; }
      });
      if (any) { store.setItem(key, JSON.stringify(entries)); }
    });
  });
}());

// Wizard: one section (fieldset) at a time, with Back / Next. Without this script every section
// shows at once and the form still works. A step with errors from the server opens first.
(function () {
  "use strict";
  var form = document.querySelector("form[data-wizard]");
  if (!form) { return; }
  var steps = Array.prototype.filter.call(form.children, function (el) { return el.tagName === "FIELDSET"; });
  if (steps.length < 2) { return; }
  var submit = form.querySelector("button[type=submit]");
  var nav = document.createElement("div");
  nav.className = "wizard-nav";
  var status = document.createElement("p");
  status.className = "wizard-step";
  status.setAttribute("aria-live", "polite");
  var back = document.createElement("button");
  back.type = "button"; back.className = "secondary"; back.textContent = form.getAttribute("data-back");
  var next = document.createElement("button");
  next.type = "button"; next.textContent = form.getAttribute("data-next");
  nav.appendChild(back); nav.appendChild(next);
  form.insertBefore(status, steps[0]);
  form.insertBefore(nav, submit);
  // The first step holding an error from the server opens (not the last one).
  var current = Math.max(0, steps.findIndex(function (step) { return step.querySelector(".invalid"); }));

  function missing(step) {
    return Array.prototype.filter.call(step.querySelectorAll("[aria-required=true]"), function (input) {
      var field = input.closest("[data-field]");
      return !(field && field.hidden) && !input.value;
    });
  }

  // Says "required" next to an empty required input, as the server would, until it is filled.
  function flag(input) {
    var field = input.closest(".field");
    var id = input.id + "-required";
    input.setAttribute("aria-invalid", "true");
    if (!field || document.getElementById(id)) { return; }
    field.classList.add("invalid");
    var note = document.createElement("p");
    note.className = "error"; note.id = id; note.textContent = form.getAttribute("data-required");
    field.appendChild(note);
    var described = input.getAttribute("aria-describedby");
    input.setAttribute("aria-describedby", described ? described + " " + id : id);
    input.addEventListener("input", function unflag() {
      if (!input.value) { return; }
      note.remove(); field.classList.remove("invalid"); input.removeAttribute("aria-invalid");
      var rest = (input.getAttribute("aria-describedby") || "").split(" ").filter(function (d) { return d && d !== id; });
      if (rest.length) { input.setAttribute("aria-describedby", rest.join(" ")); } else { input.removeAttribute("aria-describedby"); }
      input.removeEventListener("input", unflag);
    });
  }

  function show(index) {
    current = index;
    steps.forEach(function (step, i) { step.hidden = i !== index; });
    back.hidden = index === 0;
    next.hidden = index === steps.length - 1;
    submit.hidden = index !== steps.length - 1;
    status.textContent = form.getAttribute("data-step")
      .replace("{n}", String(index + 1)).replace("{total}", String(steps.length));
  }

  // The cursor goes to the first input of the step shown: the button pressed may be hidden now.
  function enter(index) {
    show(index);
    var first = steps[current].querySelector("input:not([type=hidden]), select, textarea");
    if (first) { first.focus(); }
  }

  function forward() {
    var empty = missing(steps[current]);
    empty.forEach(flag);
    if (empty.length) { empty[0].focus(); return; }
    enter(Math.min(steps.length - 1, current + 1));
  }

  back.addEventListener("click", function () { enter(Math.max(0, current - 1)); });
  next.addEventListener("click", forward);
  // A link of the list of mistakes (or anything else) asks for a field on another step.
  form.addEventListener("docket:reveal", function (event) {
    var index = steps.findIndex(function (step) { return step.contains(event.target); });
    if (index >= 0 && index !== current) { show(index); }
  });
  // Enter in a field (a phone keyboard's Go key) submits the form from any step: before the
  // last one it means Next, not "send the steps not seen yet" (a page of "required" errors).
  form.addEventListener("submit", function (event) {
    if (current === steps.length - 1) { return; }
    event.preventDefault();
    forward();
  });
  show(current);
}());

// A link of the list of mistakes above a refused form puts the cursor in its field, opening the
// wizard's step that holds it first (a plain link cannot reach into a hidden step). A link to a
// message (a group of choices, a table cell) goes to the field's input with the mistake.
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest(".error-list a[href^='#']");
    var target = link && document.getElementById(link.getAttribute("href").slice(1));
    if (!target) { return; }
    event.preventDefault();
    target.dispatchEvent(new CustomEvent("docket:reveal", { bubbles: true }));
    var field = target.closest(".field");
    var input = target.matches("input, select, textarea") ? target : field &&
      (field.querySelector("[aria-invalid=true]") || field.querySelector("input:not([type=hidden]), select, textarea"));
    (input || target).focus();
  });
}());

// After the server refused a post, the cursor goes where the page asks (autofocus): on a
// customer page, the list of mistakes above the form, so that a screen reader reads it out,
// each of its links leads to a field, and a phone shows it instead of the page's top with the
// mistakes out of sight (a customer step is far down the lookup page); after a failed lookup,
// the digits to type again. autofocus does this without a script, but not in a frame of another
// site. A page asking for nothing (the staff pages) puts the cursor in the first field marked.
// Runs after the wizard, which has by then opened the step holding that field.
(function () {
  "use strict";
  var asked = document.querySelector("main [autofocus]");
  if (asked) {
    asked.focus();
    return;
  }
  var fields = document.querySelectorAll("main .field.invalid");
  for (var i = 0; i < fields.length; i++) {
    // In a table, the cell with the error; elsewhere the field's own input.
    var input = fields[i].querySelector("[aria-invalid=true]") ||
      fields[i].querySelector("input:not([type=hidden]), select, textarea");
    if (input && input.offsetParent !== null) { input.focus(); return; }
  }
}());

// Files too large for their field (data-max-bytes) or together for the page
// (data-max-files-bytes) are flagged beside their input as soon as they are chosen, and the form
// is not sent: a body over the page's limit is refused unread, and the customer would lose
// everything typed. The server checks every file again. Every form marked so is checked on its
// own (a record page has a step form and a comment box), and its submit is cancelled before
// staff.js marks it sent, since this script is loaded first.
(function () {
  "use strict";
  Array.prototype.forEach.call(document.querySelectorAll("form[data-max-files-bytes]"), checkFiles);

  function checkFiles(form) {
    var inputs = Array.prototype.slice.call(form.querySelectorAll("input[type=file][data-max-bytes]"));
    if (!inputs.length) { return; }

    function mb(bytes) { return String(Math.round(bytes / 104857.6) / 10); }

    function say(input, text) {
      var field = input.closest(".field");
      var id = input.id + "-size";
      var note = document.getElementById(id);
      var described = (input.getAttribute("aria-describedby") || "").split(" ").filter(function (d) { return d && d !== id; });
      if (!text) {
        if (note) { note.remove(); }
        if (field && !field.querySelector(".error")) { field.classList.remove("invalid"); input.removeAttribute("aria-invalid"); }
        if (described.length) { input.setAttribute("aria-describedby", described.join(" ")); } else { input.removeAttribute("aria-describedby"); }
        return;
      }
      if (!note) {
        note = document.createElement("p");
        note.className = "error"; note.id = id;
        note.setAttribute("role", "alert");
        (field || input.parentNode).appendChild(note);
      }
      note.textContent = text;
      if (field) { field.classList.add("invalid"); }
      input.setAttribute("aria-invalid", "true");
      input.setAttribute("aria-describedby", described.concat([id]).join(" "));
    }

    // The first input with a problem (null when every file fits); each says its own.
    function check() {
      var first = null, total = 0;
      inputs.forEach(function (input) {
        var max = Number(input.getAttribute("data-max-bytes"));
        var big = Array.prototype.filter.call(input.files || [], function (f) { total += f.size; return f.size > max; });
        say(input, big.map(function (f) {
          return form.getAttribute("data-file-too-big").replace("{name}", f.name).replace("{mb}", mb(max));
        }).join(" "));
        if (big.length && !first) { first = input; }
      });
      var limit = Number(form.getAttribute("data-max-files-bytes"));
      if (!first && total > limit) {
        first = inputs[inputs.length - 1];
        say(first, form.getAttribute("data-files-too-big").replace("{mb}", mb(limit)));
      }
      return first;
    }

    inputs.forEach(function (input) { input.addEventListener("change", check); });
    form.addEventListener("submit", function (event) {
      var first = check();
      if (first) { event.preventDefault(); first.focus(); }
    });
  }
}());

// A box of limited length (a textarea's maxlength) counts down the characters left once most are
// used, and says so when the limit cuts off what is typed or pasted: the browser drops the rest
// without a word, and the end of a pasted e-mail thread was lost unnoticed.
(function () {
  "use strict";
  Array.prototype.forEach.call(document.querySelectorAll("form[data-chars-left] textarea[maxlength]"), function (box) {
    var form = box.form;
    var max = Number(box.getAttribute("maxlength"));
    if (!max || !box.id) { return; }
    var note = document.createElement("p");
    note.className = "help count"; note.id = box.id + "-count"; note.hidden = true;
    box.parentNode.insertBefore(note, box.nextSibling);
    var described = box.getAttribute("aria-describedby");
    box.setAttribute("aria-describedby", described ? described + " " + note.id : note.id);
    var cut = false;

    box.addEventListener("beforeinput", function (event) {
      var added = event.data || (event.dataTransfer && event.dataTransfer.getData("text/plain")) || "";
      var replaced = (box.selectionEnd || 0) - (box.selectionStart || 0);
      cut = event.inputType.indexOf("insert") === 0 && box.value.length - replaced + added.length > max;
      if (cut) { update(); }
    });

    function update() {
      var length = box.value.length;
      note.hidden = !cut && length < max * 0.8;
      if (cut) {
        note.textContent = form.getAttribute("data-chars-cut").replace("{max}", String(max));
        note.setAttribute("role", "status");
      } else {
        note.textContent = form.getAttribute("data-chars-left").replace("{n}", String(max - length));
        note.removeAttribute("role");
      }
    }

    box.addEventListener("input", function () { if (box.value.length < max) { cut = false; } update(); });
    update();
  });
}());

// A form marked data-sending is sent once: the first tap on its button says it is on its way
// (a few photos on a phone network take a while, and nothing else on the page moves), and a
// second tap is ignored. The server would make one record of two posts anyway, but a second
// answer to a customer step was told "already answered" about the customer's own first one.
// Runs last, so a form the wizard or the file check held back is not marked sent.
(function () {
  "use strict";
  Array.prototype.forEach.call(document.querySelectorAll("form[data-sending]"), function (form) {
    var button = form.querySelector("button[type=submit]");
    var label = button ? button.textContent : "";
    form.addEventListener("submit", function (event) {
      if (event.defaultPrevented) { return; }
      if (form.getAttribute("aria-busy") === "true") { event.preventDefault(); return; }
      form.setAttribute("aria-busy", "true");
      if (button) { button.textContent = form.getAttribute("data-sending"); button.setAttribute("aria-disabled", "true"); }
    });
    // Back to this page from the next one (the browser's page cache keeps it as it was left).
    window.addEventListener("pageshow", function (event) {
      if (!event.persisted) { return; }
      form.removeAttribute("aria-busy");
      if (button) { button.textContent = label; button.removeAttribute("aria-disabled"); }
    });
  });
}());
