// The dashboard: charts of a whole dataset from the catalog's facets API, click to filter, the matching
// rows below with search, sort, a filter form, cursor pages and downloads. It asks only the public API
// (/datasets/{name}, /facets, /contents, /export); every count it draws is the API's, exact.
// The view lives in the URL's hash, #/datasets/<name>?filter[col][op]=v&q=..&sort=.., so reload, sharing
// and back/forward give the same view. Chart.js (window.Chart) is vendored by `make setup`.

import { PAGE_SIZE, itemRows } from "./table.js";

// The rule that picks charts, also in the README (from the top values of each column over the whole
// dataset, a facets request per column): a column of numbers alone with more than BAR_MAX_NUMBERS
// distinct values is a histogram of HISTOGRAM_BINS bins (with at most that many, a bar chart of its
// values); a column with at most LIST_MAX_DISTINCT_SHARE as many distinct values as filled rows is a
// list column, counted item by item (facet_split), when at least LIST_SHARE of its TOP_VALUES most
// frequent values hold a comma, or one of them is a list of its other top values ("Comedy,Drama"
// beside "Comedy" and "Drama": at IMDB's size single genres fill the top values); any other column
// with at most BAR_MAX_DISTINCT distinct values is a bar chart of its TOP_VALUES most frequent values.
// The key, the search column (title) and columns with no value are never charted.
const TOP_VALUES = 15;
const HISTOGRAM_BINS = 20;
const BAR_MAX_NUMBERS = 20;
const BAR_MAX_DISTINCT = 200;
const LIST_SHARE = 0.1;
const LIST_MAX_DISTINCT_SHARE = 0.5;
const MAX_CHARTS = 16;
const NULL_LABEL = "(null)";
const OPERATORS = ["eq", "ne", "gt", "gte", "lt", "lte", "in", "notin", "contains", "startswith", "endswith", "isnull", "has"];
const FILTER_KEY = /^filter\[(.*)\]\[([a-z]+)\]$/s;

const $ = (selector) => document.querySelector(selector);
const numberFormat = new Intl.NumberFormat("en");

class ApiError extends Error {}

async function getJson(path) {
  let response;
  try {
    response = await fetch(path, { headers: { Accept: "application/json" } });
  } catch {
    throw new ApiError("The server cannot be reached.");
  }
  const body = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError((body && body.error) || `HTTP ${response.status}`);
  return { body, headers: response.headers };
}

// ---- The view, as the URL holds it ----

function readView() {
  const hash = window.location.hash.replace(/^#/, "");
  const match = hash.match(/^\/datasets\/([a-z0-9-]{1,64})(?:\?(.*))?$/s);
  const view = { dataset: "default", filters: [], q: "", sort: "" };
  if (!match) return view;
  view.dataset = match[1];
  for (const [name, value] of new URLSearchParams(match[2] || "")) {
    const filter = name.match(FILTER_KEY);
    if (filter && OPERATORS.includes(filter[2])) view.filters.push({ column: filter[1], op: filter[2], value });
    else if (name === "q") view.q = value;
    else if (name === "sort") view.sort = value;
  }
  return view;
}

// The query string of the view's rows: the same for the facets, the contents and the export.
function selectionParams(view) {
  const params = new URLSearchParams();
  for (const filter of view.filters) params.append(`filter[${filter.column}][${filter.op}]`, filter.value);
  if (view.q) params.set("q", view.q);
  return params;
}

function viewHash(view) {
  const params = selectionParams(view);
  if (view.sort) params.set("sort", view.sort);
  const query = params.toString();
  return `#/datasets/${view.dataset}${query ? `?${query}` : ""}`;
}

// Every change is a new history entry: back and forward walk the views.
function go(view) {
  const hash = viewHash(view);
  if (hash === window.location.hash) draw();
  else window.location.hash = hash;
}

function withFilters(view, filters) {
  return { ...view, filters };
}

// A filter replaces any on the same column and operator; a range replaces the column's other range bounds.
function addFilters(view, added) {
  const ranges = new Set(["gt", "gte", "lt", "lte"]);
  const kept = view.filters.filter(
    (old) =>
      !added.some(
        (add) => add.column === old.column && (add.op === old.op || (ranges.has(add.op) && ranges.has(old.op))),
      ),
  );
  return withFilters(view, [...kept, ...added]);
}

// ---- Choosing the charts ----

// Per dataset (and its size, so that an import changes it): the charts of its columns, from one facets
// request over the whole dataset, so that filtering never changes which charts there are.
const plans = new Map();

async function chartPlan(dataset) {
  const cacheKey = `${dataset.name}:${dataset.items}:${dataset.last_import_at}`;
  if (plans.has(cacheKey)) return plans.get(cacheKey);
  const skipped = new Set([dataset.key, dataset.search_column, "id"]);
  const columns = (dataset.columns || []).map((column) => column.name).filter((name) => !skipped.has(name));
  // One request per column, at once: a column too costly to count within the catalog's time budget
  // (free text with millions of distinct values) gets no chart, and the others do not wait for it.
  const answers = await Promise.allSettled(
    columns.map((name) =>
      getJson(`/datasets/${dataset.name}/facets?${new URLSearchParams({ facet: name, facet_size: String(TOP_VALUES) })}`),
    ),
  );
  const plan = [];
  for (const answer of answers) {
    if (answer.status !== "fulfilled") continue;
    for (const facet of answer.value.body.facets) {
      const kind = chartKind(facet, dataset.items);
      if (kind && plan.length < MAX_CHARTS) plan.push({ column: facet.column, kind });
    }
  }
  plans.set(cacheKey, plan);
  return plan;
}

// A list cell's items: split on commas, trimmed, empty ones dropped.
function listItems(text) {
  return text.split(",").map((item) => item.trim()).filter((item) => item !== "");
}

function chartKind(facet, items) {
  if (!facet.distinct) return null;
  const numeric = facet.values.every((value) => typeof value.value === "number");
  if (numeric && facet.other === 0 && facet.distinct <= BAR_MAX_NUMBERS) return "bar";
  if (numeric && facet.distinct > BAR_MAX_NUMBERS) return "histogram";
  // A list column: many of its top values are lists, or one is a list of the others; and lists repeat
  // (free text with commas does not).
  const texts = facet.values.filter((value) => typeof value.value === "string").map((value) => value.value);
  const lists = texts.filter((text) => text.includes(","));
  const ofTopValues = (text) => listItems(text).every((item) => texts.includes(item));
  const filled = items - facet.nulls;
  const listLike = lists.length >= LIST_SHARE * facet.values.length || lists.some(ofTopValues);
  if (lists.length > 0 && listLike && facet.distinct <= LIST_MAX_DISTINCT_SHARE * filled) return "list";
  if (facet.distinct <= BAR_MAX_DISTINCT) return "bar";
  return null;
}

// ---- Drawing ----

let drawing = 0;
const charts = new Map();
let datasets = new Map();
const table = { pages: [null], next: null, total: 0 };
// The dataset the table shows, as GET /datasets/{name} last described it.
let shownDataset = null;
// Timings of the last draw, for bench/dashboard.py: navigation to the last chart, in ms.
window.dashboardTimings = {};

async function loadDatasets() {
  const { body } = await getJson("/datasets");
  datasets = new Map(body.map((dataset) => [dataset.name, dataset]));
  const picker = $("#dash-dataset");
  const names = [...datasets.keys()];
  if (!names.includes("default")) names.unshift("default");
  picker.replaceChildren(...names.map((name) => new Option(name, name)));
}

async function draw() {
  const run = ++drawing;
  const started = performance.now();
  const view = readView();
  $("#dash-dataset").value = view.dataset;
  $("#dash-q").value = view.q;
  setMessage("");
  showChips(view);
  $("#dashboard").setAttribute("aria-busy", "true");
  try {
    const { body: dataset } = await getJson(`/datasets/${view.dataset}`);
    if (run !== drawing) return;
    showAbout(dataset);
    showDownloads(view);
    fillColumnChoices(dataset);
    shownDataset = dataset;
    const rows = loadRows(view, dataset, [null], run);
    const plan = await chartPlan(dataset);
    if (run !== drawing) return;
    await Promise.all([drawCharts(view, dataset, plan, run), rows]);
    if (run !== drawing) return;
    window.dashboardTimings = { drawMs: performance.now() - started, lastChartAt: performance.now(), charts: plan.length };
    $("#dashboard").dataset.drawn = viewHash(view);
  } catch (error) {
    if (run === drawing) setMessage(error.message);
  } finally {
    if (run === drawing) $("#dashboard").removeAttribute("aria-busy");
  }
}

function setMessage(text) {
  $("#dash-message").textContent = text;
}

function showAbout(dataset) {
  const about = [
    ["Items", numberFormat.format(dataset.items || 0)],
    ["Key", dataset.key || "(a hash of each row)"],
    ["Last import", dataset.last_import_at ? new Date(dataset.last_import_at).toLocaleString() : "none yet"],
  ];
  $("#dash-about").replaceChildren(
    ...about.flatMap(([term, value]) => {
      const dt = document.createElement("dt");
      dt.textContent = term;
      const dd = document.createElement("dd");
      dd.textContent = value;
      dd.dataset.about = term;
      return [dt, dd];
    }),
  );
}

function filterLabel(filter) {
  const symbols = { eq: "=", ne: "≠", gt: ">", gte: "≥", lt: "<", lte: "≤" };
  if (filter.op === "isnull") return `${filter.column} ${filter.value === "true" ? "is null" : "is not null"}`;
  return `${filter.column} ${symbols[filter.op] || filter.op} ${filter.value}`;
}

function showChips(view) {
  const chips = view.filters.map((filter, index) => {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "chip";
    button.textContent = `${filterLabel(filter)} ×`;
    button.setAttribute("aria-label", `Remove filter ${filterLabel(filter)}`);
    button.addEventListener("click", () => go(withFilters(view, view.filters.filter((_, other) => other !== index))));
    item.append(button);
    return item;
  });
  if (view.q) {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "chip";
    button.textContent = `search “${view.q}” ×`;
    button.setAttribute("aria-label", `Remove search ${view.q}`);
    button.addEventListener("click", () => go({ ...view, q: "" }));
    item.append(button);
    chips.push(item);
  }
  $("#dash-chips").replaceChildren(...chips);
  $("#dash-clear").hidden = chips.length === 0;
}

function showDownloads(view) {
  for (const format of ["csv", "ndjson"]) {
    const params = selectionParams(view);
    if (view.sort) params.set("sort", view.sort);
    params.set("format", format);
    $(`#dash-${format}`).href = `/datasets/${view.dataset}/export?${params}`;
  }
}

async function drawCharts(view, dataset, plan, run) {
  const selection = selectionParams(view);
  const requests = [];
  const bars = plan.filter((chart) => chart.kind !== "histogram");
  const histograms = plan.filter((chart) => chart.kind === "histogram");
  if (bars.length) {
    const params = new URLSearchParams(selection);
    params.set("facet_size", String(TOP_VALUES));
    for (const chart of bars) params.append("facet", chart.column);
    for (const chart of bars) if (chart.kind === "list") params.append("facet_split", chart.column);
    requests.push(getJson(`/datasets/${dataset.name}/facets?${params}`));
  }
  if (histograms.length) {
    const params = new URLSearchParams(selection);
    params.set("facet_bins", String(HISTOGRAM_BINS));
    for (const chart of histograms) params.append("facet", chart.column);
    requests.push(getJson(`/datasets/${dataset.name}/facets?${params}`));
  }
  const answers = await Promise.all(requests);
  if (run !== drawing) return;
  const facets = new Map(answers.flatMap(({ body }) => body.facets.map((facet) => [facet.column, facet])));
  const container = $("#dash-charts");
  const wanted = new Set(plan.map((chart) => chart.column));
  for (const [column, chart] of charts) {
    if (!wanted.has(column) || chart.dataset !== dataset.name) {
      chart.instance.destroy();
      chart.element.remove();
      charts.delete(column);
    }
  }
  $("#dash-no-charts").hidden = plan.length > 0;
  for (const chart of plan) {
    const facet = facets.get(chart.column);
    if (facet) drawChart(container, view, dataset, chart, facet);
  }
}

// The bars of a facet: [{label, count, filters}], nulls as their own bar.
function barsOf(chart, facet) {
  const bars = [];
  if (facet.bins) {
    facet.bins.forEach((bin, index) => {
      const last = index === facet.bins.length - 1;
      bars.push({
        label: `${formatEdge(bin.from)}–${formatEdge(bin.to)}`,
        count: bin.count,
        filters: [
          { column: chart.column, op: "gte", value: String(bin.from) },
          { column: chart.column, op: last ? "lte" : "lt", value: String(bin.to) },
        ],
      });
    });
  } else {
    for (const value of facet.values || []) {
      const op = chart.kind === "list" && typeof value.value === "string" ? "has" : "eq";
      bars.push({ label: String(value.value), count: value.count, filters: [{ column: chart.column, op, value: String(value.value) }] });
    }
    if (facet.other > 0) bars.push({ label: "(other values)", count: facet.other, filters: null });
  }
  if (facet.nulls > 0) {
    bars.push({ label: NULL_LABEL, count: facet.nulls, filters: [{ column: chart.column, op: "isnull", value: "true" }] });
  }
  return bars;
}

function formatEdge(value) {
  return Number.isInteger(value) ? String(value) : String(Math.round(value * 100) / 100);
}

function chartTitle(chart, facet) {
  const kind = { bar: "top values", list: "items of its comma-separated lists", histogram: "histogram" }[chart.kind];
  const distinct = facet.distinct !== undefined ? `, ${numberFormat.format(facet.distinct)} distinct` : "";
  return `${chart.column}: ${kind}${distinct}`;
}

function drawChart(container, view, dataset, chart, facet) {
  const bars = barsOf(chart, facet);
  let entry = charts.get(chart.column);
  if (!entry) {
    entry = makeChartElement(chart, dataset.name);
    container.append(entry.element);
    charts.set(chart.column, entry);
  }
  entry.bars = bars;
  entry.view = view;
  entry.element.querySelector("h3").textContent = chartTitle(chart, facet);
  const summary = bars.map((bar) => `${bar.label}: ${numberFormat.format(bar.count)}`).join("; ");
  entry.canvas.setAttribute("aria-label", `${chartTitle(chart, facet)}. ${summary || "no values"}`);
  const horizontal = chart.kind !== "histogram";
  entry.wrapper.style.height = horizontal ? `${Math.max(120, 22 * bars.length + 40)}px` : "240px";
  const data = {
    labels: bars.map((bar) => bar.label),
    datasets: [
      {
        data: bars.map((bar) => bar.count),
        backgroundColor: bars.map((bar) => (bar.label === NULL_LABEL ? "#9aa5b5" : bar.filters ? "#1f5fbf" : "#c5cfdc")),
        ...(horizontal ? {} : { categoryPercentage: 1, barPercentage: 0.95 }),
      },
    ],
  };
  if (entry.instance) {
    entry.instance.data = data;
    entry.instance.update("none");
  } else {
    entry.instance = new window.Chart(entry.canvas, {
      type: "bar",
      data,
      options: {
        indexAxis: horizontal ? "y" : "x",
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        plugins: { legend: { display: false } },
        scales: { [horizontal ? "x" : "y"]: { beginAtZero: true } },
        onClick: (_event, elements) => {
          if (elements.length) chooseBar(entry, elements[0].index);
        },
        onHover: (event, elements) => {
          const bar = elements.length ? entry.bars[elements[0].index] : null;
          event.native.target.style.cursor = bar && bar.filters ? "pointer" : "default";
        },
      },
    });
  }
  fillCountsTable(entry);
}

function chooseBar(entry, index) {
  const bar = entry.bars[index];
  if (bar && bar.filters) go(addFilters(entry.view, bar.filters));
}

function makeChartElement(chart, datasetName) {
  const element = document.createElement("figure");
  element.className = "chart";
  element.dataset.column = chart.column;
  element.dataset.kind = chart.kind;
  const heading = document.createElement("h3");
  const wrapper = document.createElement("div");
  wrapper.className = "chart-canvas";
  const canvas = document.createElement("canvas");
  canvas.setAttribute("role", "img");
  wrapper.append(canvas);
  // The text alternative: the same counts as a table, each bar a button that filters as a click on it does.
  const details = document.createElement("details");
  const summary = document.createElement("summary");
  summary.textContent = "Counts as a table";
  const counts = document.createElement("table");
  counts.className = "counts-table";
  const caption = document.createElement("caption");
  caption.className = "visually-hidden";
  caption.textContent = `Counts of ${chart.column}`;
  const head = document.createElement("thead");
  head.innerHTML = '<tr><th scope="col">Value</th><th scope="col">Count</th><th scope="col">Filter</th></tr>';
  counts.append(caption, head, document.createElement("tbody"));
  details.append(summary, counts);
  element.append(heading, wrapper, details);
  return { element, wrapper, canvas, counts, instance: null, bars: [], dataset: datasetName };
}

function fillCountsTable(entry) {
  entry.counts.tBodies[0].replaceChildren(
    ...entry.bars.map((bar, index) => {
      const row = document.createElement("tr");
      const label = document.createElement("td");
      label.textContent = bar.label;
      const count = document.createElement("td");
      count.textContent = String(bar.count);
      count.className = "count";
      const action = document.createElement("td");
      if (bar.filters) {
        const button = document.createElement("button");
        button.type = "button";
        button.className = "secondary small";
        button.textContent = "Filter";
        button.setAttribute("aria-label", `Filter on ${entry.element.dataset.column} ${bar.label}`);
        button.addEventListener("click", () => chooseBar(entry, index));
        action.append(button);
      }
      row.append(label, count, action);
      return row;
    }),
  );
}

// ---- The rows ----

// ``pages``: the cursors of the pages so far, the first one null; the last one is shown.
async function loadRows(view, dataset, pages, run) {
  const params = selectionParams(view);
  params.set("limit", String(PAGE_SIZE));
  if (view.sort) params.set("sort", view.sort);
  const cursor = pages.at(-1);
  if (cursor) params.set("cursor", cursor);
  const { body, headers } = await getJson(`/datasets/${dataset.name}/contents?${params}`);
  if (run !== undefined && run !== drawing) return;
  table.pages = pages;
  table.total = Number(headers.get("X-Total-Count") || body.length);
  table.next = headers.get("X-Next-Cursor");
  renderRows(view, dataset, body);
}

function renderRows(view, dataset, items) {
  const columns = (dataset.columns || []).map((column) => column.name);
  const sortColumn = view.sort.replace(/^-/, "");
  const descending = view.sort.startsWith("-");
  const head = document.createElement("tr");
  for (const column of columns) {
    const th = document.createElement("th");
    th.scope = "col";
    const sorted = column === sortColumn;
    th.setAttribute("aria-sort", sorted ? (descending ? "descending" : "ascending") : "none");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "sort";
    button.textContent = `${column}${sorted ? (descending ? " ▼" : " ▲") : ""}`;
    button.setAttribute("aria-label", `Sort by ${column}${sorted && !descending ? ", descending" : ""}`);
    button.addEventListener("click", () => go({ ...view, sort: sorted && !descending ? `-${column}` : column }));
    th.append(button);
    head.append(th);
  }
  $("#dash-table thead").replaceChildren(head);
  $("#dash-table tbody").replaceChildren(...itemRows(items, columns, dataset.key));
  const first = (table.pages.length - 1) * PAGE_SIZE + 1;
  $("#dash-summary").textContent = items.length
    ? `Rows ${numberFormat.format(first)}–${numberFormat.format(first + items.length - 1)} of ${numberFormat.format(table.total)}`
    : "No rows match.";
  $("#dash-summary").dataset.total = String(table.total);
  $("#dash-prev").disabled = table.pages.length <= 1;
  $("#dash-next").disabled = !table.next;
}

async function turnPage(forward) {
  if (!shownDataset) return;
  let pages;
  if (forward && table.next) pages = [...table.pages, table.next];
  else if (!forward && table.pages.length > 1) pages = table.pages.slice(0, -1);
  else return;
  try {
    await loadRows(readView(), shownDataset, pages);
  } catch (error) {
    setMessage(error.message);
  }
}

function fillColumnChoices(dataset) {
  const select = $("#dash-filter-column");
  const chosen = select.value;
  const names = (dataset.columns || []).map((column) => column.name);
  select.replaceChildren(...names.map((name) => new Option(name, name)));
  if (names.includes(chosen)) select.value = chosen;
}

// ---- Wiring ----

async function init() {
  $("#dash-dataset").addEventListener("change", (event) => go({ dataset: event.target.value, filters: [], q: "", sort: "" }));
  $("#dash-search").addEventListener("submit", (event) => {
    event.preventDefault();
    go({ ...readView(), q: $("#dash-q").value.trim() });
  });
  $("#dash-filter-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    const filter = { column: form.column.value, op: form.op.value, value: form.value.value };
    if (filter.column) go(addFilters(readView(), [filter]));
  });
  $("#dash-clear").addEventListener("click", () => go({ ...readView(), filters: [], q: "" }));
  $("#dash-next").addEventListener("click", () => turnPage(true));
  $("#dash-prev").addEventListener("click", () => turnPage(false));
  window.addEventListener("hashchange", draw);
  try {
    await loadDatasets();
  } catch (error) {
    setMessage(error.message);
  }
  draw();
}

init();
