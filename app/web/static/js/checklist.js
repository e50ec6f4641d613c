// The checklist page, built to work with no network. The page and its assets are cached by the field
// service worker; answers are kept in IndexedDB first and sent when the network allows. Every edit
// carries the version of the answer it was based on and an id of its own: the server refuses an edit
// based on an older version (someone else answered meanwhile) with a visible conflict to resolve, and
// recognises an edit sent twice, so nothing is lost and nothing is stored twice.
(() => {
  "use strict";
  const root = document.getElementById("checklist");
  const run = JSON.parse(document.getElementById("run-data").textContent);
  const csrf = root.dataset.csrf;
  const body = document.getElementById("checklist-body");
  const pendingLine = root.querySelector("[data-testid=pending]");
  const networkLine = root.querySelector("[data-testid=network]");
  const DB_NAME = "afm-field";
  const known = {}; // item -> the answer as the server last told us
  const pending = {}; // item -> an edit not yet accepted by the server
  let db = null;
  let syncing = false;

  const keyOf = (item) => `${run.id}:${item}`;
  const newId = () => {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  };

  // --- IndexedDB -----------------------------------------------------------------------------------
  function openDb() {
    return new Promise((resolve, reject) => {
      const request = indexedDB.open(DB_NAME, 1);
      request.onupgradeneeded = () => {
        const d = request.result;
        for (const store of ["pending", "known", "photos"]) {
          if (!d.objectStoreNames.contains(store)) d.createObjectStore(store, { keyPath: "key" });
        }
      };
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
  }
  function tx(store, mode, fn) {
    return new Promise((resolve, reject) => {
      const t = db.transaction(store, mode);
      const result = fn(t.objectStore(store));
      t.oncomplete = () => resolve(result && "result" in result ? result.result : undefined);
      t.onerror = () => reject(t.error);
    });
  }
  const put = (store, value) => tx(store, "readwrite", (s) => s.put(value));
  const del = (store, key) => tx(store, "readwrite", (s) => s.delete(key));
  const get = (store, key) => tx(store, "readonly", (s) => s.get(key));
  const all = (store) => tx(store, "readonly", (s) => s.getAll());

  // --- what is asked -------------------------------------------------------------------------------
  const items = [];
  for (const section of run.template.sections) for (const item of section.items) items.push(item);
  const itemById = Object.fromEntries(items.map((i) => [i.id, i]));

  const currentValue = (id) => (id in pending && !pending[id].photo ? pending[id].value : id in pending ? "photo" : known[id]?.value);
  function visible(item) {
    if (item.security_levels && item.security_levels.length && !item.security_levels.includes(run.security_level)) return false;
    const c = item.show_if;
    if (!c) return true;
    const v = currentValue(c.item);
    if (v === undefined || v === null) return false;
    if (c.any_of && c.any_of.length) return c.any_of.includes(String(v));
    return c.equals === v || String(c.equals) === String(v);
  }

  // --- drawing -------------------------------------------------------------------------------------
  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "text") node.textContent = v;
      else node.setAttribute(k, v === true ? "" : v);
    }
    node.append(...children.filter((c) => c !== null && c !== undefined));
    return node;
  }

  function input(item, value) {
    const name = `v-${item.id}`;
    const label = item.label;
    switch (item.kind) {
      case "yes_no":
      case "choice": {
        const options = item.kind === "yes_no" ? [["true", "Yes"], ["false", "No"]] : item.choices.map((c) => [c, c]);
        const group = el("div", { class: "choices", role: "radiogroup", "aria-label": label });
        for (const [v, text] of options) {
          const box = el("input", { type: "radio", name, value: v, checked: value !== undefined && String(value) === v });
          group.append(el("label", { class: "choice" }, box, ` ${text}`));
        }
        return group;
      }
      case "number":
        return el("label", { class: "num" }, el("input", { type: "number", step: "any", name, inputmode: "decimal", value: value ?? "", "aria-label": label }), item.unit ? ` ${item.unit}` : "");
      case "measurement":
        return el("div", { class: "measure" },
          el("label", {}, el("input", { type: "number", step: "any", name, inputmode: "decimal", value: value?.value ?? "", "aria-label": `${label} (${item.unit})` }), item.unit ? ` ${item.unit}` : ""),
          el("label", {}, "Instrument ", el("input", { name: `${name}-instrument`, value: value?.instrument ?? "", "aria-label": `${label} instrument serial` })));
      case "photo":
        return el("label", { class: "big button photo" }, value ? "Replace photo" : "Take photo",
          el("input", { type: "file", accept: "image/jpeg,image/png", capture: "environment", name, hidden: true, "aria-label": label }));
      default:
        return el("input", { name, value: value ?? "", "aria-label": label, autocomplete: "off" });
    }
  }

  function itemStatus(item) {
    const p = pending[item.id];
    const k = known[item.id];
    if (p && p.conflict !== undefined && p.conflict !== false) {
      const theirs = p.conflict ? `${JSON.stringify(p.conflict.value)} by ${p.conflict.answered_by}` : "another answer";
      const box = el("div", { class: "conflict", role: "alert", "data-testid": "conflict" },
        el("span", { text: `Conflict: ${theirs} (version ${p.conflict ? p.conflict.version : "?"}); yours: ${p.photo ? "a photo" : JSON.stringify(p.value)}. ` }),
        el("button", { type: "button", class: "big", "data-keep": item.id, text: "Keep mine" }),
        el("button", { type: "button", class: "big", "data-take": item.id, text: "Take theirs" }));
      return box;
    }
    if (p && p.error) return el("p", { class: "field-error", role: "alert", text: p.error });
    if (p) return el("p", { class: "waiting", text: p.photo ? "Photo waiting to be sent" : "Waiting to be sent" });
    if (k) {
      const flag = k.flagged ? ` · flagged: ${k.flag_reason}` : "";
      return el("p", { class: k.flagged ? "flagged" : "saved", text: `Saved v${k.version} by ${k.answered_by}${flag}` });
    }
    return item.required ? el("p", { class: "muted", text: "Required" }) : null;
  }

  // Redrawing replaces the inputs, so it happens only when the set of items shown changes (an answer
  // revealed another item); otherwise only the status lines are updated and typing is never disturbed.
  let drawnVisible = null;
  const visibleSignature = () => `${run.status}|${items.filter(visible).map((i) => i.id).join(",")}`;

  function update() {
    if (visibleSignature() !== drawnVisible) {
      draw();
      return;
    }
    for (const fieldset of body.querySelectorAll("fieldset.item")) {
      const status = fieldset.querySelector(".item-status");
      status.replaceChildren(...[itemStatus(itemById[fieldset.dataset.item])].filter(Boolean));
    }
    refreshStatus();
  }

  function draw() {
    drawnVisible = visibleSignature();
    body.replaceChildren();
    const readOnly = run.status !== "open";
    for (const section of run.template.sections) {
      const shown = section.items.filter(visible);
      if (!shown.length) continue;
      const box = el("section", { class: "card checklist-section" }, el("h2", { text: section.title }));
      if (section.guidance) box.append(el("p", { class: "muted", text: section.guidance }));
      for (const item of shown) {
        const p = pending[item.id];
        const value = p && !p.photo ? p.value : known[item.id]?.value;
        const comment = p ? p.comment : known[item.id]?.comment ?? "";
        const fieldset = el("fieldset", { class: "item", "data-item": item.id, disabled: readOnly },
          el("legend", { text: `${item.label}${item.required ? "" : " (optional)"}` }));
        if (item.guidance) fieldset.append(el("p", { class: "muted guidance", text: item.guidance }));
        fieldset.append(input(item, value));
        fieldset.append(el("label", { class: "comment" }, "Comment ",
          el("textarea", { name: `c-${item.id}`, rows: 1, "aria-label": `${item.label} comment` }, comment)));
        fieldset.append(el("div", { class: "item-status" }, itemStatus(item)));
        box.append(fieldset);
      }
      body.append(box);
    }
    drawSignatures();
    refreshStatus();
  }

  function drawSignatures() {
    const list = document.getElementById("signatures");
    list.replaceChildren(...run.signatures.map((s) => el("li", { text: `${s.kind}: ${s.name} (${s.username}, ${s.role}) ${s.signed_at}` })));
    document.getElementById("sign-form").hidden = run.status !== "open";
  }

  function refreshStatus() {
    const waiting = Object.keys(pending).length;
    pendingLine.hidden = waiting === 0;
    pendingLine.textContent = `${waiting} answer${waiting === 1 ? "" : "s"} waiting to be sent`;
    networkLine.textContent = navigator.onLine ? "" : "Offline: answers are kept on this device and sent when the network returns.";
  }

  // --- editing -------------------------------------------------------------------------------------
  async function edit(itemId, value, comment, photo = null) {
    const k = known[itemId];
    const previous = pending[itemId];
    // an unsent edit that is replaced keeps the version it was based on
    const base = previous && !previous.conflict ? previous.base_version : k ? k.version : 0;
    const entry = {
      key: keyOf(itemId), run: run.id, item: itemId, value, comment, base_version: base, edit_id: newId(),
      answered_at: new Date().toISOString(), photo: Boolean(photo), sha: null,
    };
    if (photo) await put("photos", { key: entry.key, blob: photo, type: photo.type });
    await put("pending", entry);
    pending[itemId] = entry;
    update();
    sync();
  }

  function readItem(fieldset) {
    const id = fieldset.dataset.item;
    const item = itemById[id];
    const name = `v-${id}`;
    const comment = fieldset.querySelector(`[name="c-${id}"]`).value;
    if (item.kind === "yes_no" || item.kind === "choice") {
      const checked = fieldset.querySelector(`[name="${name}"]:checked`);
      if (!checked) return null;
      return { value: item.kind === "yes_no" ? checked.value === "true" : checked.value, comment };
    }
    if (item.kind === "number") {
      const raw = fieldset.querySelector(`[name="${name}"]`).value;
      return raw === "" ? null : { value: Number(raw), comment };
    }
    if (item.kind === "measurement") {
      const raw = fieldset.querySelector(`[name="${name}"]`).value;
      const instrument = fieldset.querySelector(`[name="${name}-instrument"]`).value.trim();
      return raw === "" || !instrument ? null : { value: { value: Number(raw), instrument }, comment };
    }
    if (item.kind === "photo") return null; // photos go through their file input
    const text = fieldset.querySelector(`[name="${name}"]`).value.trim();
    return text ? { value: text, comment } : null;
  }

  body.addEventListener("change", (event) => {
    const fieldset = event.target.closest("fieldset.item");
    if (!fieldset) return;
    const id = fieldset.dataset.item;
    if (event.target.type === "file") {
      const file = event.target.files[0];
      if (file) edit(id, null, fieldset.querySelector(`[name="c-${id}"]`).value, file);
      return;
    }
    if (event.target.name === `c-${id}` && !(id in pending) && !(id in known)) return; // a comment alone waits
    const read = readItem(fieldset);
    if (read) edit(id, read.value, read.comment);
    else if (event.target.name === `c-${id}` && id in pending) edit(id, pending[id].value, event.target.value, null);
  });

  body.addEventListener("click", async (event) => {
    const keep = event.target.dataset.keep;
    const take = event.target.dataset.take;
    if (keep) {
      const p = pending[keep];
      if (p.conflict) known[keep] = p.conflict;
      p.base_version = p.conflict ? p.conflict.version : p.base_version;
      delete p.conflict;
      p.error = null;
      p.edit_id = newId();
      await put("pending", p);
      if (known[keep]) await put("known", { key: keyOf(keep), ...known[keep] });
      draw();
      sync();
    } else if (take) {
      const p = pending[take];
      if (p.conflict) {
        known[take] = p.conflict;
        await put("known", { key: keyOf(take), ...p.conflict });
      }
      delete pending[take];
      await del("pending", keyOf(take));
      await del("photos", keyOf(take));
      draw();
    }
  });

  // --- sending -------------------------------------------------------------------------------------
  const headers = (type) => ({ "Content-Type": type, "X-CSRFToken": csrf, Accept: "application/json" });

  async function sync() {
    if (syncing || !navigator.onLine || !db) return;
    syncing = true;
    try {
      const queue = Object.values(pending).filter((p) => !p.error && p.conflict === undefined);
      queue.sort((a, b) => a.answered_at.localeCompare(b.answered_at));
      for (const entry of queue) {
        if (entry.photo && !entry.sha) {
          const stored = await get("photos", entry.key);
          if (!stored) { entry.error = "the photo was lost on this device; take it again"; await put("pending", entry); continue; }
          const uploaded = await fetch("/api/v1/evidence", { method: "POST", body: stored.blob, headers: headers(stored.type || "image/jpeg") });
          if (!uploaded.ok) { await refused(entry, uploaded); continue; }
          entry.sha = (await uploaded.json()).sha256;
          await put("pending", entry);
        }
        const response = await fetch(`/api/v1/checklist-runs/${run.id}/answers/${encodeURIComponent(entry.item)}`, {
          method: "PUT",
          headers: headers("application/json"),
          body: JSON.stringify({
            value: entry.photo ? entry.sha : entry.value, comment: entry.comment, base_version: entry.base_version,
            edit_id: entry.edit_id, answered_at: entry.answered_at,
          }),
        });
        if (response.ok) {
          const answer = await response.json();
          known[entry.item] = answer;
          await put("known", { key: entry.key, ...answer });
          if (pending[entry.item] && pending[entry.item].edit_id === entry.edit_id) {
            delete pending[entry.item];
            await del("pending", entry.key);
            await del("photos", entry.key);
          }
        } else {
          await refused(entry, response);
        }
      }
    } catch (error) {
      // the network went away mid-way: everything not yet accepted stays waiting
    } finally {
      syncing = false;
      update();
    }
  }

  async function refused(entry, response) {
    let problem = {};
    try { problem = await response.json(); } catch (e) { /* not JSON */ }
    if (response.status === 409 && "current" in problem) entry.conflict = problem.current;
    else entry.error = problem.detail || `${response.status} ${response.statusText}`;
    await put("pending", entry);
  }

  // --- sign-off ------------------------------------------------------------------------------------
  document.getElementById("sign-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const error = root.querySelector("[data-testid=sign-error]");
    error.hidden = true;
    if (!navigator.onLine || Object.keys(pending).length) {
      error.hidden = false;
      error.textContent = "Send every answer first: signing needs the network and a complete checklist.";
      return;
    }
    const form = new FormData(event.target);
    const response = await fetch(`/api/v1/checklist-runs/${run.id}/signatures`, {
      method: "POST", headers: headers("application/json"),
      body: JSON.stringify({ kind: form.get("kind"), name: form.get("name") }),
    });
    const answer = await response.json();
    if (!response.ok) { error.hidden = false; error.textContent = answer.detail || "refused"; return; }
    Object.assign(run, { status: answer.status, signatures: answer.signatures });
    root.querySelector("[data-testid=run-status]").textContent = answer.status;
    draw();
  });

  // --- start ---------------------------------------------------------------------------------------
  async function start() {
    for (const a of run.answers) known[a.item] = a;
    try {
      db = await openDb();
      for (const k of await all("known")) {
        if (k.key.startsWith(`${run.id}:`) && (!known[k.item] || known[k.item].version < k.version)) known[k.item] = k;
      }
      for (const p of await all("pending")) if (p.run === run.id) pending[p.item] = p;
    } catch (error) {
      networkLine.textContent = "This browser cannot keep answers offline (IndexedDB unavailable).";
    }
    draw();
    if ("serviceWorker" in navigator) {
      navigator.serviceWorker.register("/field/sw.js", { scope: "/field/" }).catch(() => {});
      // keep this very page for offline use even before the worker controls it
      if (navigator.onLine && window.caches) caches.open("afm-field-v1").then((c) => c.add(location.href)).catch(() => {});
    }
    sync();
  }
  window.addEventListener("online", () => { refreshStatus(); sync(); });
  window.addEventListener("offline", refreshStatus);
  setInterval(() => { if (Object.keys(pending).length) sync(); }, 5000);
  start();
})();
