// The floor scan page. A keyboard-wedge scanner types the code and Enter into the focused field; a phone
// sends a photo. With no network, scans wait in this browser (localStorage) and go as one batch when the
// network returns; each carries its own id (the Idempotency-Key), so a batch sent twice records once.
(() => {
  "use strict";
  const QUEUE_KEY = "afm.scan.queue";
  const root = document.getElementById("scanner");
  const csrf = root.dataset.csrf;
  const form = document.getElementById("scan-form");
  const input = document.getElementById("scan-code");
  const photo = document.getElementById("scan-photo");
  const outcome = document.getElementById("scan-outcome");
  const pending = document.getElementById("scan-pending");
  const network = document.getElementById("scan-network");
  const log = document.getElementById("scan-log");
  const setup = document.getElementById("scan-setup");
  let flushing = false;

  const newId = () => {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    const bytes = crypto.getRandomValues(new Uint8Array(16)); // randomUUID needs a secure context
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  };
  const queue = () => JSON.parse(localStorage.getItem(QUEUE_KEY) || "[]");
  const saveQueue = (items) => localStorage.setItem(QUEUE_KEY, JSON.stringify(items));
  const context = () => {
    const data = new FormData(setup);
    const out = {};
    for (const name of ["station", "site", "action"]) {
      const value = data.get(name);
      if (value) out[name] = value;
    }
    return out;
  };

  function show(ok, title, detail, queued = false) {
    outcome.className = queued ? "scan-queued" : ok ? "scan-ok" : "scan-bad";
    outcome.replaceChildren();
    const big = document.createElement("div");
    big.textContent = title;
    outcome.append(big);
    if (detail) {
      const small = document.createElement("div");
      small.className = "scan-detail";
      small.textContent = detail;
      outcome.append(small);
    }
    const item = document.createElement("li");
    item.className = queued ? "queued" : ok ? "ok" : "bad";
    item.textContent = `${new Date().toLocaleTimeString()} ${title}${detail ? " — " + detail : ""}`;
    log.prepend(item);
  }

  function showScan(scan) {
    const asset = scan.asset;
    const state = asset.state_label ? ` · ${asset.state_label}` : "";
    show(true, `${asset.kind} ${asset.serial}${state}`, scan.message);
  }

  function showProblem(problem, code) {
    show(false, problem.title || "Refused", `${problem.detail || "error"}${code ? " (" + code.slice(0, 60) + ")" : ""}`);
  }

  function refreshStatus() {
    const waiting = queue().length;
    pending.hidden = waiting === 0;
    pending.textContent = `${waiting} scan${waiting === 1 ? "" : "s"} waiting to be sent`;
    network.textContent = navigator.onLine ? "" : "Offline: scans are kept on this device and sent when the network returns.";
  }

  function enqueue(item) {
    const items = queue();
    items.push(item);
    saveQueue(items);
    refreshStatus();
    show(true, "Queued (offline)", `${item.code.slice(0, 60)} will be sent when the network returns`, true);
  }

  async function post(url, body, headers) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrf, ...headers },
      body,
    });
  }

  async function send(item) {
    if (!navigator.onLine) return enqueue(item);
    let response;
    try {
      const { id, ...scan } = item;
      response = await post("/api/v1/scans", JSON.stringify(scan), {
        "Content-Type": "application/json",
        "Idempotency-Key": id,
      });
    } catch (err) {
      return enqueue(item); // the network went away between the check and the request
    }
    await answer(response, item.code);
  }

  async function answer(response, code) {
    if (response.status === 401) {
      show(false, "Signed out", "sign in again; nothing was recorded");
      return;
    }
    let body = {};
    try {
      body = await response.json();
    } catch (err) {
      body = { detail: `HTTP ${response.status}` };
    }
    if (response.ok) showScan(body);
    else showProblem(body, code);
  }

  async function flush() {
    const items = queue();
    if (flushing || items.length === 0 || !navigator.onLine) return;
    flushing = true;
    try {
      const response = await post("/api/v1/scans/batch", JSON.stringify({ scans: items }), {
        "Content-Type": "application/json",
      });
      if (!response.ok) {
        if (response.status === 400 || response.status === 422) saveQueue([]); // never resend a batch refused whole
        showProblem(await response.json().catch(() => ({ detail: `HTTP ${response.status}` })));
        return;
      }
      const body = await response.json();
      const sent = new Set(items.map((i) => i.id));
      saveQueue(queue().filter((i) => !sent.has(i.id))); // scans queued meanwhile stay
      for (const result of body.results) {
        if (result.scan) showScan(result.scan);
        else showProblem(result.problem || {}, items[result.index] && items[result.index].code);
      }
      show(body.refused === 0, `${body.applied} queued scan${body.applied === 1 ? "" : "s"} recorded`,
        body.refused ? `${body.refused} refused: see the list below` : "");
    } catch (err) {
      // still offline: keep the queue
    } finally {
      flushing = false;
      refreshStatus();
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const code = input.value;
    input.value = "";
    input.focus();
    if (!code.trim()) return;
    send({ id: newId(), code, scanned_at: new Date().toISOString(), ...context() });
  });

  photo.addEventListener("change", async () => {
    const file = photo.files && photo.files[0];
    photo.value = "";
    if (!file) return;
    if (!navigator.onLine) {
      show(false, "No network", "a photo is read on the server: type or scan the code instead");
      return;
    }
    const params = new URLSearchParams(context());
    try {
      const response = await post(`/api/v1/scans/photo?${params}`, file, {
        "Content-Type": file.type || "image/jpeg",
        "Idempotency-Key": newId(),
      });
      await answer(response, "");
    } catch (err) {
      show(false, "No network", "the photo was not sent; try again");
    }
    input.focus();
  });

  // Keep the scan field focused so the next scan lands there, unless someone is choosing in a list.
  document.addEventListener("click", (event) => {
    if (!event.target.closest("select, label, button, a")) input.focus();
  });
  setup.addEventListener("change", () => input.focus());
  window.addEventListener("online", () => { refreshStatus(); flush(); });
  window.addEventListener("offline", refreshStatus);
  setInterval(flush, 10000);
  refreshStatus();
  flush();
})();
