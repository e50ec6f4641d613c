// Live pages: follow the event stream for what this page shows (a module, a shipment) and, when
// something happens, fetch the page again and swap its #live part in place. EventSource reconnects
// by itself and sends Last-Event-ID, so nothing is missed across a dropped connection.
(() => {
  const root = document.getElementById("live");
  if (!root || !window.EventSource) return;
  const source = new EventSource(root.dataset.liveStream);
  let pending = null;

  const refresh = async (type) => {
    const response = await fetch(window.location.href, { headers: { Accept: "text/html" }, credentials: "same-origin" });
    if (!response.ok) return;
    const page = new DOMParser().parseFromString(await response.text(), "text/html");
    const fresh = page.getElementById("live");
    const current = document.getElementById("live");
    if (!fresh || !current) return;
    // Chapters the reader opened stay open.
    const open = new Set([...current.querySelectorAll("details")].flatMap((d, i) => (d.open ? [i] : [])));
    current.innerHTML = fresh.innerHTML;
    current.querySelectorAll("details").forEach((d, i) => { d.open = open.has(i) || d.open; });
    if (window.htmx) window.htmx.process(current);
    const note = current.querySelector(".live-note");
    if (note) note.textContent = `Updated ${new Date().toLocaleTimeString()}: ${type.replace(/[._]/g, " ")}`;
  };

  // The page asks for unnamed messages (named=false), so every event type arrives here.
  source.onmessage = (message) => {
    let type = "event";
    try { type = JSON.parse(message.data).type; } catch (_) { /* keep the generic name */ }
    clearTimeout(pending);  // a burst (a hand-off of several modules) is one refresh
    pending = setTimeout(() => refresh(type).catch(() => {}), 250);
  };
  source.onopen = () => { root.dataset.liveOpen = "1"; };
  window.addEventListener("pagehide", () => source.close());
})();
