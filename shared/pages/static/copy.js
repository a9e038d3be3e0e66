// Copy buttons for public keys and the badge's Markdown. A progressive
// enhancement: the buttons are hidden until this script runs, and without
// it the text stays selectable.
(function () {
  "use strict";
  var buttons = document.querySelectorAll("button.copy[data-copy]");
  Array.prototype.forEach.call(buttons, function (button) {
    var source = document.getElementById(button.getAttribute("data-copy"));
    if (!source) {
      return;
    }
    var status = document.createElement("span");
    status.className = "copied";
    status.setAttribute("role", "status");
    button.insertAdjacentElement("afterend", status);
    button.hidden = false;

    function said(text) {
      status.textContent = text;
      window.setTimeout(function () { status.textContent = ""; }, 4000);
    }
    function bySelection() {
      source.focus();
      source.select();
      try {
        said(document.execCommand("copy") ? "Copied" : "Selected: press Ctrl+C to copy");
      } catch (e) {
        said("Selected: press Ctrl+C to copy");
      }
    }
    button.addEventListener("click", function () {
      var text = source.value;
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(function () { said("Copied"); }, bySelection);
      } else {
        bySelection();
      }
    });
  });
})();
