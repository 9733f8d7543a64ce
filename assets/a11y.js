/* Accessibility fixes for Dash 4's dropdown, applied in the browser (vendored, no third-party code).
   1. Its trigger button is named only by its current value (aria-labelledby points at the value), so a
      screen reader hears "All PCNs" and never "PCN": we prefix the control's own <label>.
   2. Keyboard focus first lands on a hidden helper <input aria-hidden="true"> (a focusable element
      hidden from assistive technology, WCAG 4.1.2): we take it out of the tab order and put the
      real button in it instead. Re-applied whenever Dash adds dropdowns to the page. */
(function () {
  "use strict";
  function fix(root) {
    root.querySelectorAll(".dash-dropdown-wrapper").forEach(function (wrap) {
      var button = wrap.querySelector("button.dash-dropdown");
      if (!button || !button.id) { return; }
      var label = null;
      document.querySelectorAll("label").forEach(function (l) { if (l.htmlFor === button.id) { label = l; } });
      if (label && label.id) {
        var wanted = label.id + " " + button.id + "-value";
        if (button.getAttribute("aria-labelledby") !== wanted) { button.setAttribute("aria-labelledby", wanted); }
      }
      if (button.getAttribute("tabindex") !== "0") { button.setAttribute("tabindex", "0"); }
      var helper = wrap.querySelector("input.dash-dropdown-focus-target");
      if (helper && helper.getAttribute("tabindex") !== "-1") { helper.setAttribute("tabindex", "-1"); }
    });
  }
  function start() {
    fix(document);
    new MutationObserver(function () { fix(document); }).observe(document.body, {
      childList: true, subtree: true, attributes: true, attributeFilter: ["tabindex", "aria-labelledby"]
    });
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();
