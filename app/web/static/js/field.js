// A module's commissioning page: start a checklist or the validation run, import a result file, and
// take the next lifecycle step. Each button calls the API with the page session's CSRF token; a
// refusal is shown as the server worded it (which guard, which rule).
(() => {
  "use strict";
  const root = document.getElementById("field-module");
  if (!root) return;
  const serial = root.dataset.serial;
  const csrf = root.dataset.csrf;
  const error = root.querySelector("[data-testid=field-error]");

  async function call(url, options) {
    error.hidden = true;
    const response = await fetch(url, { ...options, headers: { "X-CSRFToken": csrf, Accept: "application/json", ...(options.headers || {}) } });
    let body = {};
    try { body = await response.json(); } catch (e) { /* empty */ }
    if (!response.ok) {
      error.hidden = false;
      error.textContent = body.detail || `${response.status} ${response.statusText}`;
      return null;
    }
    return body;
  }
  const json = (data) => ({ method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(data) });

  root.addEventListener("click", async (event) => {
    const target = event.target;
    if (target.dataset.transition) {
      if (await call(`/api/v1/modules/${serial}/transitions`, json({ transition: target.dataset.transition }))) location.reload();
    } else if (target.dataset.start) {
      const run = await call(`/api/v1/modules/${serial}/checklists`, json({ template: target.dataset.start }));
      if (run) location.href = `/field/checklists/${run.id}`;
    } else if (target.dataset.validation) {
      if (await call(`/api/v1/modules/${serial}/validation-runs`, { method: "POST" })) location.reload();
    }
  });

  root.addEventListener("change", async (event) => {
    const input = event.target;
    if (input.type !== "file" || !input.dataset.step) return;
    const file = input.files[0];
    if (!file) return;
    const url = `/api/v1/validation-runs/${input.dataset.run}/results/${input.dataset.step}`;
    if (await call(url, { method: "POST", body: file, headers: { "Content-Type": file.type || "text/plain" } })) location.reload();
  });
})();
