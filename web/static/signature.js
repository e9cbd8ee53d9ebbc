// Signature pads: draw with a finger, pen or mouse (pointer events), or type a name that is
// drawn for you (keyboard users). The drawing is kept as a PNG data URL in the hidden input the
// form posts; the server checks it really is a PNG of bounded size.
(function () {
  "use strict";
  var pads = document.querySelectorAll("[data-signature]");
  Array.prototype.forEach.call(pads, function (box) {
    var canvas = box.querySelector("[data-signature-pad]");
    var value = box.querySelector("[data-signature-value]");
    var typed = box.querySelector("[data-signature-typed]");
    var clear = box.querySelector("[data-signature-clear]");
    var ctx = canvas.getContext("2d");
    var drawing = false, drawn = false;

    function reset() {
      ctx.fillStyle = "#fff";
      ctx.fillRect(0, 0, canvas.width, canvas.height);
      ctx.strokeStyle = "#123";
      ctx.lineWidth = 2.5;
      ctx.lineCap = "round";
      ctx.lineJoin = "round";
      drawn = false;
    }
    function save() { value.value = drawn ? canvas.toDataURL("image/png") : ""; }
    function point(event) {
      var rect = canvas.getBoundingClientRect();
      return [(event.clientX - rect.left) * canvas.width / rect.width,
              (event.clientY - rect.top) * canvas.height / rect.height];
    }

    reset();
    if (value.value) {  // a page shown again with its errors keeps the signature
      var image = new Image();
      image.onload = function () { ctx.drawImage(image, 0, 0); drawn = true; };
      image.src = value.value;
    }
    canvas.addEventListener("pointerdown", function (event) {
      event.preventDefault();
      canvas.setPointerCapture(event.pointerId);
      drawing = true;
      var p = point(event);
      ctx.beginPath();
      ctx.moveTo(p[0], p[1]);
    });
    canvas.addEventListener("pointermove", function (event) {
      if (!drawing) { return; }
      var p = point(event);
      ctx.lineTo(p[0], p[1]);
      ctx.stroke();
      drawn = true;
    });
    function stop() { if (drawing) { drawing = false; save(); } }
    canvas.addEventListener("pointerup", stop);
    canvas.addEventListener("pointercancel", stop);
    typed.addEventListener("input", function () {
      reset();
      var name = typed.value.trim();
      if (name) {
        ctx.fillStyle = "#123";
        ctx.font = "italic 56px 'Noto Serif CJK SC', 'Songti SC', serif";
        ctx.textBaseline = "middle";
        ctx.fillText(name, 24, canvas.height / 2, canvas.width - 48);
        drawn = true;
      }
      save();
    });
    clear.addEventListener("click", function () { reset(); typed.value = ""; save(); });
  });
}());
