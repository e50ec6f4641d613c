// Small form behaviours declared by data attributes, so that templates carry no inline script
// (the Content-Security-Policy allows scripts from /static only; see app/core/security.py).
//
//   <select data-autosubmit>              submits its form when the choice changes
//   <input hx-get=… data-query-param="q">  htmx sends the input's value as ?q=…
(function () {
  "use strict";

  document.addEventListener("change", function (event) {
    const field = event.target;
    if (!(field instanceof HTMLElement) || !field.matches("[data-autosubmit]") || !field.form) return;
    if (typeof field.form.requestSubmit === "function") field.form.requestSubmit();
    else field.form.submit();
  });

  document.addEventListener("htmx:configRequest", function (event) {
    const field = event.detail && event.detail.elt;
    if (!(field instanceof HTMLElement)) return;
    const name = field.getAttribute("data-query-param");
    if (name && "value" in field) event.detail.parameters[name] = field.value;
  });
})();
