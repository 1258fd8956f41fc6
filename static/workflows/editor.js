// The structured editor, a little better with script: a step's fields follow its type at once,
// so do the trigger's, and the error summary takes the focus. Without script the page works the
// same way: the steps through its "Update the form" button, the trigger showing all its fields.
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
  // The trigger's fields: those of the chosen type only (without script, all of them show, and
  // only the chosen type's are checked and kept).
  var trigger = document.querySelector("select[name='trigger_type']");
  function showTriggerFields() {
    document.querySelectorAll("[data-trigger-types]").forEach(function (row) {
      row.hidden = row.getAttribute("data-trigger-types").split(" ").indexOf(trigger.value) === -1;
    });
  }
  if (trigger) {
    trigger.addEventListener("change", showTriggerFields);
    showTriggerFields();
  }
  document.querySelectorAll(".js-hide").forEach(function (element) { element.hidden = true; });
  var summary = document.getElementById("error-summary") || document.getElementById("confirm-supersede");
  if (summary) { summary.focus(); }
}());
