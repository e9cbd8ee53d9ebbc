// Shows and hides form fields live from their conditions (data-visible-if), without a round trip.
// The server checks every condition again on submit: this script only saves the user a reload.
(function () {
  "use strict";
  var form = document.querySelector("form[data-live]");
  if (!form) { return; }
  var conditional = Array.prototype.slice.call(form.querySelectorAll("[data-visible-if]"));
  if (!conditional.length) { return; }

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
  }

  form.addEventListener("input", refresh);
  form.addEventListener("change", refresh);
  refresh();
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
  var current = 0;
  steps.forEach(function (step, i) { if (step.querySelector(".invalid") && current === 0) { current = i; } });

  function missing(step) {
    return Array.prototype.filter.call(step.querySelectorAll("[aria-required=true]"), function (input) {
      var field = input.closest("[data-field]");
      return !(field && field.hidden) && !input.value;
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

  back.addEventListener("click", function () { show(Math.max(0, current - 1)); });
  next.addEventListener("click", function () {
    var empty = missing(steps[current]);
    empty.forEach(function (input) { input.setAttribute("aria-invalid", "true"); });
    if (empty.length) { empty[0].focus(); return; }
    show(Math.min(steps.length - 1, current + 1));
    var first = steps[current].querySelector("input, select, textarea");
    if (first) { first.focus(); }
  });
  show(current);
}());
