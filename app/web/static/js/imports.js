// The import page: send the chosen file to the import API as a dry run, show each row (create, change,
// unchanged, refused with the reason), and apply the same bytes when asked. Text from the file is only
// ever set as textContent.
(() => {
  "use strict";
  const root = document.getElementById("imports");
  if (!root) return;
  const csrf = root.dataset.csrf;
  const form = root.querySelector("form");
  const apply = root.querySelector("[data-testid=import-apply]");
  const error = root.querySelector("[data-testid=import-error]");
  const done = root.querySelector("[data-testid=import-done]");
  const summary = root.querySelector("[data-testid=import-summary]");
  const table = root.querySelector("[data-testid=import-rows]");
  const body = table.querySelector("tbody");
  const colours = { create: "#16a34a", change: "#2563eb", unchanged: "#64748b", refused: "#dc2626" };
  const XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
  const SHOWN = 2000; // rows drawn; the summary counts them all
  let pending = null;

  function cell(tr, text) {
    const td = document.createElement("td");
    td.textContent = text;
    tr.appendChild(td);
    return td;
  }

  function show(result) {
    const s = result.summary;
    summary.textContent = `${s.rows} rows: ${s.create} create, ${s.change} change, ${s.unchanged} unchanged, ${s.refused} refused` +
      (result.notes && result.notes.length ? ` (${result.notes.join("; ")})` : "");
    body.replaceChildren();
    const rows = result.rows.filter((r) => r.action !== "unchanged").concat(result.rows.filter((r) => r.action === "unchanged"));
    for (const r of rows.slice(0, SHOWN)) {
      const tr = document.createElement("tr");
      tr.dataset.action = r.action;
      cell(tr, String(r.row));
      const badge = document.createElement("span");
      badge.className = "badge";
      badge.style.setProperty("--c", colours[r.action]);
      badge.textContent = r.action;
      cell(tr, "").appendChild(badge);
      cell(tr, r.key || "");
      const changes = Object.entries(r.changes || {}).map(([k, v]) => v.from === null ? `${k}: ${JSON.stringify(v.to)}` : `${k}: ${JSON.stringify(v.from)} → ${JSON.stringify(v.to)}`);
      cell(tr, r.action === "refused" ? r.reason : changes.join("; "));
      body.appendChild(tr);
    }
    table.hidden = false;
  }

  async function send(dryRun) {
    const file = form.file.files[0];
    if (!file) return null;
    error.hidden = true;
    done.hidden = true;
    const type = file.name.toLowerCase().endsWith(".xlsx") ? XLSX : "text/csv";
    const response = await fetch(`/api/v1/imports/${encodeURIComponent(form.table.value)}?dry_run=${dryRun}`, {
      method: "POST",
      headers: { "Content-Type": type, "X-CSRFToken": csrf, Accept: "application/json" },
      body: await file.arrayBuffer(),
    });
    let result = {};
    try { result = await response.json(); } catch (e) { /* empty */ }
    if (!response.ok) {
      error.textContent = result.detail || `${response.status} ${response.statusText}`;
      error.hidden = false;
      error.style.whiteSpace = "pre-line";
      for (const fault of result.faults || []) error.textContent += `\nline ${fault.line}: ${fault.message}`;
      return null;
    }
    return result;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    apply.disabled = true;
    const result = await send(true);
    if (!result) return;
    show(result);
    pending = result;
    apply.disabled = result.summary.refused > 0 || result.summary.create + result.summary.change === 0;
  });
  form.addEventListener("change", () => { apply.disabled = true; pending = null; });
  apply.addEventListener("click", async () => {
    if (!pending) return;
    apply.disabled = true;
    const result = await send(false);
    if (!result) return;
    show(result);
    done.textContent = `Applied: ${result.summary.create} created, ${result.summary.change} changed, in one transaction.`;
    done.hidden = false;
    pending = null;
  });
})();
