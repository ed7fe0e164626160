// The speaker-count control: Auto, Exactly n, or Between min and max. Its
// value is the engine's SpeakerCount: { mode: "auto" | "exact" | "range", ... }.

import { h } from "./util.js";

export function speakerCountInput(initial, onChange = () => {}) {
  const mode = h("select", { "aria-label": "Number of speakers" },
    h("option", { value: "auto" }, "Auto"),
    h("option", { value: "exact" }, "Exactly"),
    h("option", { value: "range" }, "Between"));
  const num = (label) => h("input", { type: "number", min: 1, max: 20, step: 1, "aria-label": label });
  const n = num("Number of speakers");
  const min = num("At least");
  const max = num("At most");
  const and = h("span.muted", {}, "and");
  const el = h("span.speaker-count", {}, mode, n, min, and, max);

  function layout() {
    n.hidden = mode.value !== "exact";
    min.hidden = max.hidden = and.hidden = mode.value !== "range";
  }
  function value() {
    const int = (input) => {
      const v = parseInt(input.value, 10);
      return Number.isFinite(v) && v > 0 ? v : null;
    };
    if (mode.value === "exact") return { mode: "exact", n: int(n) ?? 2 };
    if (mode.value === "range") return { mode: "range", min: int(min), max: int(max) };
    return { mode: "auto" };
  }
  function set(count) {
    mode.value = count?.mode || "auto";
    n.value = count?.n ?? 2;
    min.value = count?.min ?? "";
    max.value = count?.max ?? "";
    layout();
  }
  for (const input of [mode, n, min, max]) {
    input.addEventListener("change", () => {
      layout();
      onChange(value());
    });
  }
  set(initial);
  return { el, value, set };
}

/** "auto", "2 speakers", "2–4 speakers" */
export function describeCount(count) {
  if (!count || count.mode === "auto") return "auto";
  if (count.mode === "exact") return `${count.n} speaker${count.n === 1 ? "" : "s"}`;
  const lo = count.min ?? "1";
  const hi = count.max ?? "∞";
  return `${lo}–${hi} speakers`;
}
