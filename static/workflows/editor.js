// The structured editor, a little better with script: a step's fields follow its type at once,
// and the error summary takes the focus. Without script the page works the same way, through
// its "Update the form" button.
(function () {
  "use strict";
  function showFieldsOf(select) {
    var step = select.closest("fieldset.step");
    if (!step) { return; }
    var chosen = select.value;
    step.querySelectorAll("[data-step-types]").forEach(function (row) {
      var types = row.getAttribute("data-step-types").split(" ");
      row.hidden = !chosen || types.indexOf(chosen) === -1;
    });
  }
  document.querySelectorAll("fieldset.step select[name$='-type']").forEach(function (select) {
    select.addEventListener("change", function () { showFieldsOf(select); });
  });
  document.querySelectorAll(".js-hide").forEach(function (element) { element.hidden = true; });
  var summary = document.getElementById("error-summary") || document.getElementById("confirm-supersede");
  if (summary) { summary.focus(); }
}());
