// Small progressive enhancements for list pages; everything works without JavaScript.
(function () {
  "use strict";

  function updateCount(form) {
    var boxes = form.querySelectorAll('input[name="ids"]');
    var checked = form.querySelectorAll('input[name="ids"]:checked');
    var label = form.querySelector("[data-selected-count]");
    if (label) label.textContent = checked.length + " of " + boxes.length + " selected";
    var all = form.querySelector("[data-select-all]");
    if (all) {
      all.checked = boxes.length > 0 && checked.length === boxes.length;
      all.indeterminate = checked.length > 0 && checked.length < boxes.length;
    }
    boxes.forEach(function (b) { b.closest("tr").classList.toggle("selected", b.checked); });
  }

  function syncValueSelects(form) {
    var action = form.querySelector('select[name="action"]');
    if (!action) return;
    form.querySelectorAll("[data-value-for]").forEach(function (sel) {
      var on = sel.getAttribute("data-value-for") === action.value;
      sel.hidden = !on;
      sel.disabled = !on;
    });
  }

  document.addEventListener("change", function (e) {
    var t = e.target;
    var form = t.closest && t.closest("#bulk-form");
    if (t.matches("[data-select-all]") && form) {
      form.querySelectorAll('input[name="ids"]').forEach(function (b) { b.checked = t.checked; });
      updateCount(form);
    } else if (t.matches('input[name="ids"]') && form) {
      updateCount(form);
    } else if (t.matches("[data-select-matching]") && form) {
      // "All N matching": the action applies to the filter, so the page's boxes are moot.
      form.querySelectorAll('input[name="ids"], [data-select-all]').forEach(function (b) {
        b.checked = t.checked;
        b.disabled = t.checked;
      });
      updateCount(form);
    } else if (t.matches('select[name="action"]') && form) {
      syncValueSelects(form);
    } else if (t.matches("select[data-autosubmit]")) {
      t.form.requestSubmit ? t.form.requestSubmit() : t.form.submit();
    } else if (t.matches("select[data-base-urls]")) {
      syncBaseUrl(t);
    } else if (t.matches("select[data-account-providers]")) {
      syncProviderFieldsets(t);
    }
  });

  // Provider account form: the base URL placeholder is the chosen provider's own server.
  function syncBaseUrl(select) {
    var input = select.form && select.form.querySelector('input[name="base_url"]');
    if (input) input.placeholder = JSON.parse(select.getAttribute("data-base-urls"))[select.value] || "";
  }

  // Provider mailbox form: show only the sender ids of the chosen account's provider.
  function syncProviderFieldsets(select) {
    var provider = JSON.parse(select.getAttribute("data-account-providers"))[select.value] || "";
    select.form.querySelectorAll("fieldset[data-provider]").forEach(function (fs) {
      fs.hidden = provider !== "" && fs.getAttribute("data-provider") !== provider;
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("bulk-form");
    if (form) { syncValueSelects(form); updateCount(form); }
    document.querySelectorAll("select[data-base-urls]").forEach(syncBaseUrl);
    document.querySelectorAll("select[data-account-providers]").forEach(syncProviderFieldsets);
  });
})();
