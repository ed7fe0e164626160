// Small helpers shared by the views: element creation and number formatting.

/** h("div.row", { title: "x", onclick }, child, "text") */
export function h(spec, attrs = {}, ...children) {
  const [tag, ...classes] = spec.split(".");
  const el = document.createElement(tag || "div");
  if (classes.length) el.className = classes.join(" ");
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key in el && key !== "list") el[key] = value;
    else el.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** 75.3 → "1:15", with tenths when asked: "1:15.3". */
export function clock(seconds, tenths = false) {
  if (!Number.isFinite(seconds)) return "–:––";
  const s = Math.max(0, seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  const secText = tenths ? sec.toFixed(1).padStart(4, "0") : String(Math.floor(sec)).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${secText}` : `${m}:${secText}`;
}

/** Binary units, one decimal above a gigabyte (as the tray tooltip). */
export function bytes(n) {
  if (!Number.isFinite(n)) return "–";
  const mib = n / (1024 * 1024);
  return mib >= 1024 ? `${(mib / 1024).toFixed(1)} GB` : `${Math.round(mib)} MB`;
}

export const percent = (x) => `${Math.round(x * 100)}%`;

/** The name a speaker is shown under: the user's, else the engine's label. */
export const displayName = (names, label) => (names && names[label]?.trim()) || label;

/** Stable colour slot per speaker, in result order. */
export const colourSlot = (index) => index % 8;

/** A speed-up factor with sensible precision: 0.8, 4.2, 37, 650. */
export function speedText(x) {
  return x >= 10 ? Math.round(x).toString() : x.toFixed(1);
}
