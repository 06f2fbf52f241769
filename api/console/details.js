"use strict";

// An incident's details and metadata as readable fields (no raw JSON on the page): a measured
// value beside its threshold and in its unit (seconds as durations, ms, usd, percent), labels
// as chips, links clickable, times local; metadata folded away under its own summary.

const DETAIL_DEPTH = 3; // deeper objects show as compact JSON

function detailsView(details) {
  const entries = Object.entries(details || {});
  if (!entries.length) return null;
  const grouped = ([name, value]) => isRecord(value) && !isLabels(name, value);
  const groups = entries.filter(grouped);
  const loose = entries.filter((entry) => !grouped(entry));
  return h("div", { class: "details" },
    loose.length ? fieldList(Object.fromEntries(loose), 0) : null,
    groups.map(([name, value]) => h("div", { class: "detail-group", dataset: { group: name } },
      h("h3", {}, fieldLabel(name)), fieldList(value, 1))));
}

function metadataView(metadata) {
  if (!metadata || !Object.keys(metadata).length) return null;
  return h("details", { class: "metadata" },
    h("summary", {}, `Metadata (${Object.keys(metadata).length} fields)`), fieldList(metadata, 1));
}

function isRecord(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function isLabels(name, value) {
  return /labels|tags/i.test(name) && Object.values(value).every((v) => typeof v === "string");
}

// "accuracy_drop" -> "Accuracy drop", "generator_url" -> "Generator URL"
function fieldLabel(name) {
  const words = String(name).replace(/([a-z])([A-Z])/g, "$1 $2").split(/[_\s]+/).filter(Boolean)
    .map((w) => (["url", "id", "sla", "dbt", "p95", "p99"].includes(w.toLowerCase()) ? w.toUpperCase() : w.toLowerCase()));
  const text = words.join(" ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

// A measured group (actual and threshold) shows them as one line in its unit; the rest of its
// fields follow. Labels (string to string) show as chips.
function fieldList(record, depth) {
  const rows = [];
  const rest = { ...record };
  if ("actual" in record && "threshold" in record) {
    const unit = unitOf(record);
    const held = record.comparison ? `must be ${record.comparison} ` : "threshold ";
    rows.push(["Actual", h("span", { class: "measured", dataset: { field: "actual" } },
      h("strong", {}, quantity(record.actual, unit)), " ",
      h("span", { class: "threshold muted" }, `(${held}${quantity(record.threshold, unit)})`))]);
    for (const name of ["actual", "threshold", "comparison", "unit"]) delete rest[name];
  }
  for (const [name, value] of Object.entries(rest)) rows.push([fieldLabel(name), fieldValue(name, value, depth)]);
  return h("dl", { class: "facts detail-fields" },
    rows.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

function fieldValue(name, value, depth) {
  if (value === null || value === undefined || value === "") return h("span", { class: "muted" }, "—");
  if (typeof value === "boolean") return value ? "yes" : "no";
  if (typeof value === "number") return formatNumber(value);
  if (typeof value === "string") return textValue(value);
  if (Array.isArray(value)) {
    if (value.every((v) => v === null || typeof v !== "object")) {
      return h("span", { class: "list" }, value.map((v, i) => [i ? ", " : "", fieldValue(name, v, depth + 1)]));
    }
    return json(value);
  }
  if (isLabels(name, value)) {
    return h("span", { class: "labels" }, Object.entries(value).map(([k, v]) =>
      h("span", { class: "label-chip", dataset: { label: k } }, `${k}=${v}`)));
  }
  if (depth >= DETAIL_DEPTH) return h("code", { class: "small" }, JSON.stringify(value));
  return fieldList(value, depth + 1);
}

function textValue(text) {
  if (/^https?:\/\/\S+$/.test(text)) return h("a", { href: text, target: "_blank", rel: "noopener" }, text);
  if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}/.test(text) && !Number.isNaN(Date.parse(text))) return when(text);
  return text;
}

// The unit a check gives (`unit`), or one a budget's type names (latency_p95_ms, cost_per_day).
function unitOf(record) {
  if (record.unit) return String(record.unit);
  const type = String(record.type || "");
  if (/_ms$/.test(type)) return "ms";
  if (/(^|_)(s|seconds)$/.test(type)) return "seconds";
  if (/cost|usd/.test(type)) return "usd";
  return null;
}

function quantity(value, unit) {
  if (value === null || value === undefined) return "—";
  if (typeof value !== "number") return String(value);
  switch (unit) {
    case "seconds": case "s": return exactDuration(value);
    case "ms": return `${value.toLocaleString("en-US", { maximumFractionDigits: 1 })} ms`;
    case "usd": return `$${value.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;
    case "percent": return `${formatNumber(value)} %`;
    case null: case undefined: return formatNumber(value);
    default: return `${formatNumber(value)} ${unit}`;
  }
}

// duration() in whole seconds, with days for long ones: 322.4 -> "5 min 22 s"
function exactDuration(seconds) {
  const s = Math.round(Math.abs(seconds));
  const sign = seconds < 0 ? "-" : "";
  if (s >= 86400) return `${sign}${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
  return sign + duration(s);
}
