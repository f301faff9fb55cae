// The catalog web page: accounts, CSV uploads with their import progress, and browsing.
// No framework and no build step; every value from the API reaches the page as text, never as HTML.

import { PAGE_SIZE, itemRows } from "./table.js";

const SESSION_KEY = "catalog.session";
const POLL_MS = 750;
// The access token is renewed this long before it expires (a fifth of its lifetime when that is shorter).
const RENEW_MARGIN_MS = 60_000;
// A renewal that could not reach the server is tried again after this long.
const RENEW_RETRY_MS = 5_000;
const TERMINAL = new Set(["Success", "Failure", "Cancelled", "Reverted"]);
// An ended import may be undone (POST /uploads/{id}/revert), once.
const REVERTIBLE = new Set(["Success", "Failure", "Cancelled"]);
const REVERT_STATES = new Set(["Reverting", "Reverted"]);
const COUNTS = [
  ["rows_processed", "Processed"],
  ["rows_inserted", "Inserted"],
  ["rows_updated", "Updated"],
  ["rows_duplicate", "Duplicates"],
  ["rows_unmatched", "Unmatched (merge)"],
  ["rows_failed", "Failed"],
  ["warnings", "Warnings"],
];
const REVERT_COUNTS = [
  ["rows_reverted", "Removed by undo"],
  ["rows_kept", "Kept (changed since)"],
];

const ROLES = ["viewer", "editor", "admin"];
const DEFAULT_DATASET = "default";

const $ = (selector) => document.querySelector(selector);

class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

// ---- The API ----

// The API's error body, {"error", "details"?: [{field, message}]}, as one sentence.
function errorMessage(body, status, statusText) {
  if (body && typeof body.error === "string") {
    const details = (Array.isArray(body.details) ? body.details : [])
      .filter((d) => d && d.message && !body.error.includes(d.message))
      .map((d) => (d.field ? `${d.field}: ${d.message}` : d.message));
    return details.length ? `${body.error} (${details.join("; ")})` : body.error;
  }
  return `${statusText || "Request failed"} (HTTP ${status})`;
}

// With `auth`, a fresh access token is sent, and a 401 is answered once by renewing the session and trying again.
async function api(path, options = {}) {
  try {
    return await request(path, options);
  } catch (error) {
    if (!options.auth || error.status !== 401) throw error;
    try {
      await renewSession();
    } catch (renewal) {
      if (renewal.status === 401) expireSession();
      throw error;
    }
    try {
      return await request(path, options);
    } catch (again) {
      if (again.status === 401) expireSession();
      throw again;
    }
  }
}

async function request(path, { method = "GET", body, auth = false } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (auth) headers.Authorization = `Bearer ${await accessToken()}`;
  let response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    throw new ApiError("The server cannot be reached. Check your connection and try again.", 0);
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    throw new ApiError(errorMessage(data, response.status, response.statusText), response.status);
  }
  return { data, headers: response.headers };
}

// XMLHttpRequest rather than fetch: only it reports how much of a request body has been sent.
async function uploadCsv(file, fields, onProgress) {
  const token = await accessToken();
  return new Promise((resolve, reject) => {
    const form = new FormData();
    // The options come before the file: the service reads the parts in order, as they stream in.
    for (const [name, value] of Object.entries(fields)) if (value) form.append(name, value);
    form.append("file", file, file.name);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/upload_csv");
    xhr.setRequestHeader("Authorization", `Bearer ${token}`);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onProgress(event.loaded, event.total);
    });
    xhr.addEventListener("load", () => {
      let data = null;
      try {
        data = JSON.parse(xhr.responseText);
      } catch {
        data = null;
      }
      if (xhr.status === 202 && data && data.task_id) {
        resolve(data);
      } else {
        if (xhr.status === 401) expireSession();
        reject(new ApiError(errorMessage(data, xhr.status, xhr.statusText), xhr.status));
      }
    });
    xhr.addEventListener("error", () => reject(new ApiError("The upload was interrupted: the server cannot be reached.", 0)));
    xhr.addEventListener("abort", () => reject(new ApiError("The upload was aborted.", 0)));
    xhr.send(form);
  });
}

// ---- The session: both tokens live in this tab's sessionStorage only, never in a cookie ----
// The access token is renewed with the refresh token shortly before it expires, so a page left open
// (watching a long import) stays logged in; "Log out" revokes the refresh token on the server.

let renewal = null; // the renewal in flight: a refresh token works once, so every caller shares it
let renewTimer = null;

function currentSession() {
  try {
    const session = JSON.parse(sessionStorage.getItem(SESSION_KEY));
    const now = Date.now();
    if (session && session.token && session.refreshToken && (session.expiresAt > now || session.refreshExpiresAt > now)) {
      return session;
    }
  } catch {
    // A damaged entry is treated as no session.
  }
  sessionStorage.removeItem(SESSION_KEY);
  return null;
}

// The roles the access token carries (its `roles` claim): what the services will allow, so what the page offers.
function tokenRoles(token) {
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const claims = JSON.parse(atob(payload.padEnd(Math.ceil(payload.length / 4) * 4, "=")));
    return Array.isArray(claims.roles) ? claims.roles.filter((role) => ROLES.includes(role)) : [];
  } catch {
    return [];
  }
}

// The most powerful of `roles`, "viewer" when there is none.
function highestRole(roles) {
  return ROLES.filter((role) => (roles || []).includes(role)).at(-1) || "viewer";
}

// When the session's access token is due for renewal.
function renewAt(session) {
  return session.expiresAt - Math.min(RENEW_MARGIN_MS, (session.expiresAt - session.issuedAt) / 5);
}

function saveSession(username, tokens) {
  const now = Date.now();
  const session = {
    username,
    token: tokens.access_token,
    issuedAt: now,
    expiresAt: now + tokens.expires_in * 1000,
    refreshToken: tokens.refresh_token,
    role: highestRole(tokenRoles(tokens.access_token)),
    refreshExpiresAt: now + tokens.refresh_expires_in * 1000,
  };
  sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
  scheduleRenewal();
  return session;
}

function startSession(username, login) {
  saveSession(username, login);
  showSession();
}

// A valid access token: the current one, or a new one when it is due for renewal.
async function accessToken() {
  const session = currentSession();
  if (!session) throw new ApiError("Please log in first.", 401);
  if (Date.now() < renewAt(session)) return session.token;
  return (await renewSession()).token;
}

function renewSession() {
  renewal ??= (async () => {
    const session = currentSession();
    if (!session) throw new ApiError("Please log in first.", 401);
    const { data } = await request("/token/refresh", { method: "POST", body: { refresh_token: session.refreshToken } });
    return saveSession(session.username, data);
  })().finally(() => {
    renewal = null;
  });
  return renewal;
}

function scheduleRenewal() {
  clearTimeout(renewTimer);
  const session = currentSession();
  if (!session) return;
  renewTimer = setTimeout(async () => {
    try {
      await renewSession();
    } catch (error) {
      if (error.status === 401) expireSession();
      else renewTimer = setTimeout(scheduleRenewal, RENEW_RETRY_MS);
    }
  }, Math.max(0, renewAt(session) - Date.now()));
}

function endSession(message) {
  clearTimeout(renewTimer);
  // The next person to log in here gets no way to undo this session's import.
  offerRevert(null);
  sessionStorage.removeItem(SESSION_KEY);
  showSession();
  setMessage("#account-message", message);
}

// Revokes the refresh token (and every token of this log-in) on the server, then forgets the session.
async function logOut() {
  watchedTask = null;
  try {
    await accessToken(); // renewed first when due, so that the refresh token sent is the live one
    const session = currentSession();
    if (session) await api("/logout", { method: "POST", auth: true, body: { refresh_token: session.refreshToken } });
  } catch {
    // The session ends on this page whatever the server answered.
  }
  endSession("You are logged out.");
}

function expireSession() {
  endSession("Your session has expired: please log in again.");
}

function showSession() {
  const session = currentSession();
  const role = session ? session.role || highestRole(tokenRoles(session.token)) : null;
  $("#session-bar").hidden = !session;
  $("#session-user").textContent = session ? session.username : "";
  $("#session-role").textContent = role ? `(${role})` : "";
  $("#account").hidden = Boolean(session);
  // A viewer's upload would be refused: the page does not offer it.
  $("#upload").hidden = !session || role === "viewer";
  $("#read-only").hidden = role !== "viewer";
  $("#users").hidden = role !== "admin";
  // Nothing of an earlier admin session stays in the page: its users table is emptied, not just hidden.
  users.request += 1;
  $("#users-table tbody").replaceChildren();
  $("#users-page-label").textContent = "";
  if (role === "admin") loadUsers(1);
}

function setMessage(selector, text, kind = "") {
  const element = $(selector);
  element.textContent = text || "";
  element.classList.toggle("error", kind === "error");
  element.classList.toggle("success", kind === "success");
}

// ---- Accounts ----

// Both account forms end the same way: a session started, the form cleared, the upload next.
async function submitAccountForm(event, pendingMessage, logIn) {
  event.preventDefault();
  const form = event.currentTarget;
  const username = form.username.value.trim();
  setMessage("#account-message", pendingMessage);
  try {
    const data = await logIn(form, username);
    form.reset();
    startSession(username, data);
    setMessage("#account-message", "");
    $("#upload-file").focus();
  } catch (error) {
    setMessage("#account-message", error.message, "error");
  }
}

async function logIn(username, password) {
  const { data } = await api("/login", { method: "POST", body: { username, password } });
  return data;
}

function onLogin(event) {
  return submitAccountForm(event, "Logging in…", (form, username) => logIn(username, form.password.value));
}

function onSignup(event) {
  return submitAccountForm(event, "Creating your account…", async (form, username) => {
    const password = form.password.value;
    await api("/signup", { method: "POST", body: { username, email: form.email.value.trim(), password } });
    return logIn(username, password);
  });
}

// ---- Uploads and their import ----

let watchedTask = null;
// The ended import the "Undo this import" button reverts.
let revertTaskId = null;

function formatBytes(bytes) {
  const units = ["B", "kB", "MB", "GB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${value.toFixed(unit ? 1 : 0)} ${units[unit]}`;
}

function resetImportView() {
  $("#upload-progress-panel").hidden = false;
  $("#upload-progress").value = 0;
  $("#upload-progress-text").textContent = "";
  $("#import-progress").value = 0;
  $("#import-progress").removeAttribute("value"); // indeterminate until the upload is in
  $("#import-read-as").hidden = true;
  $("#import-progress-text").textContent = "";
  $("#import-status").textContent = "Uploading";
  $("#import-counts").replaceChildren();
  $("#row-errors").hidden = true;
  $("#row-errors tbody").replaceChildren();
  setMessage("#import-error", "");
  setMessage("#upload-message", "");
  offerRevert(null);
}

async function onUpload(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const file = form.file.files[0];
  if (!file) return;
  resetImportView();
  $("#upload-button").disabled = true;
  const started = performance.now();
  try {
    const options = {
      dataset: form.dataset.value.trim(),
      mode: form.mode.value,
      key: form.key.value.trim(),
      encoding: form.encoding.value.trim(),
      // The defaults are left out, so the service's own defaults and detection apply.
      quoting: form.quoting.value === "auto" ? "" : form.quoting.value,
      null: form.null.value.trim(),
      ragged: form.ragged.value === "error" ? "" : form.ragged.value,
    };
    const answer = await uploadCsv(file, options, (sent, total) => {
      $("#upload-progress").value = (100 * sent) / total;
      const seconds = (performance.now() - started) / 1000;
      const rate = seconds > 0 ? ` · ${formatBytes(sent / seconds)}/s` : "";
      $("#upload-progress-text").textContent = `${formatBytes(sent)} of ${formatBytes(total)}${rate}`;
    });
    $("#upload-progress").value = 100;
    $("#upload-progress-text").textContent = `${formatBytes(file.size)} sent`;
    $("#import-progress").value = 0;
    $("#import-status").textContent = "Pending";
    watchImport(answer.task_id);
  } catch (error) {
    $("#import-status").textContent = "Not uploaded";
    setMessage("#upload-message", error.message, "error");
    $("#upload-button").disabled = false;
  }
}

function watchImport(taskId, { cancellable = true } = {}) {
  watchedTask = { id: taskId, startedAt: performance.now() };
  $("#cancel-button").hidden = !cancellable;
  $("#cancel-button").disabled = false;
  poll(taskId);
}

async function poll(taskId) {
  if (!watchedTask || watchedTask.id !== taskId) return;
  try {
    const { data } = await api(`/fetch_csv_status/${encodeURIComponent(taskId)}`, { auth: true });
    showJob(data);
    if (TERMINAL.has(data.status)) {
      finishImport(data);
      return;
    }
  } catch (error) {
    // A gateway or service restart is brief: keep polling through 502/503/504, stop on anything else.
    if (![0, 502, 503, 504].includes(error.status)) {
      setMessage("#import-error", error.message, "error");
      finishImport(null);
      return;
    }
  }
  setTimeout(() => poll(taskId), POLL_MS);
}

function showJob(job) {
  // Paused: the store's volume is under its reserve; the reason says how much it waits for.
  $("#import-status").textContent = job.paused_reason ? `${job.status}: ${job.paused_reason}` : job.status;
  $("#import-progress").value = job.progress || 0;
  const seconds = (performance.now() - watchedTask.startedAt) / 1000;
  const reverting = REVERT_STATES.has(job.status);
  const importing = seconds > 0 && job.rows_processed && !reverting;
  const rate = importing ? ` · ${Math.round(job.rows_processed / seconds).toLocaleString()} rows/s` : "";
  $("#import-progress-text").textContent = `${job.progress || 0}% · ${(job.rows_processed || 0).toLocaleString()} rows${rate}`;
  const counts = (reverting ? [...COUNTS, ...REVERT_COUNTS] : COUNTS).flatMap(([field, label]) => {
    const term = document.createElement("dt");
    term.textContent = label;
    const value = document.createElement("dd");
    value.textContent = (job[field] || 0).toLocaleString();
    value.dataset.count = field;
    return [term, value];
  });
  $("#import-counts").replaceChildren(...counts);
  showReadAs(job);
  showRowErrors(job);
}

// How the service reads the file, as given in the Advanced fold or as it found out itself.
function showReadAs(job) {
  const line = $("#import-read-as");
  line.hidden = !job.encoding;
  if (!job.encoding) return;
  const parts = job.compression && job.compression !== "none" ? [job.compression] : [];
  parts.push(job.encoding, `quotes: ${job.quoting}`);
  const markers = job.null_markers || [];
  parts.push(markers.length ? `missing values: ${markers.join(", ")}` : "missing values: empty cells");
  parts.push(`short rows: ${job.ragged}`);
  line.textContent = `Read as ${parts.join(" · ")}`;
}

function showRowErrors(job) {
  const errors = Array.isArray(job.errors) ? job.errors : [];
  $("#row-errors").hidden = errors.length === 0;
  const failed = job.rows_failed || errors.length;
  $("#row-errors-caption").textContent =
    failed > errors.length ? `Row errors (the first ${errors.length} of ${failed.toLocaleString()})` : `Row errors (${errors.length})`;
  $("#row-errors tbody").replaceChildren(
    ...errors.map((error) => {
      const row = document.createElement("tr");
      const line = document.createElement("td");
      line.textContent = error.line;
      const message = document.createElement("td");
      message.textContent = error.message;
      row.append(line, message);
      return row;
    }),
  );
}

async function finishImport(job) {
  watchedTask = null;
  $("#upload-button").disabled = false;
  $("#cancel-button").hidden = true;
  if (!job) return;
  const status = $("#import-status");
  const fine = job.status === "Success" || job.status === "Reverted";
  status.classList.toggle("success", fine);
  status.classList.toggle("error", !fine);
  if (job.status === "Failure") setMessage("#import-error", job.error || "The import failed.", "error");
  if (job.status === "Cancelled") setMessage("#import-error", "The import was cancelled; rows already written stay.");
  if (job.status === "Reverted") {
    const removed = (job.rows_reverted || 0).toLocaleString();
    const kept = (job.rows_kept || 0).toLocaleString();
    setMessage("#import-error", `The import was undone: ${removed} items removed, ${kept} kept because later imports changed them.`);
  }
  offerRevert(REVERTIBLE.has(job.status) ? job.task_id : null);
  // New rows (and maybe a new dataset, or new columns) may have arrived: show the imported dataset from its first page.
  await loadDatasets();
  const imported = job.dataset || DEFAULT_DATASET;
  if (catalogDatasets.has(imported)) $("#catalog-dataset").value = imported;
  showDataset();
  loadCatalog(catalogUrl());
}

async function onCancel() {
  if (!watchedTask) return;
  $("#cancel-button").disabled = true;
  try {
    const { data } = await api(`/uploads/${encodeURIComponent(watchedTask.id)}`, { method: "DELETE", auth: true });
    showJob(data);
    finishImport(data);
  } catch (error) {
    setMessage("#import-error", error.message, "error");
    $("#cancel-button").disabled = false;
  }
}

// The "Undo this import" button, for the ended import ``taskId`` (null: none).
function offerRevert(taskId) {
  revertTaskId = taskId;
  $("#revert-button").hidden = !taskId;
  $("#revert-button").disabled = false;
}

async function onRevert() {
  const taskId = revertTaskId;
  if (!taskId) return;
  const question = "Undo this import? The items it created leave the catalog; items later imports changed stay.";
  if (!window.confirm(question)) return;
  $("#revert-button").disabled = true;
  setMessage("#import-error", "");
  try {
    const { data } = await api(`/uploads/${encodeURIComponent(taskId)}/revert`, { method: "POST", auth: true });
    offerRevert(null);
    $("#import-status").classList.remove("success", "error");
    watchImport(taskId, { cancellable: false });
    showJob(data);
  } catch (error) {
    setMessage("#import-error", error.message, "error");
    $("#revert-button").disabled = false;
  }
}

// ---- Users (admins) ----

const users = { page: 1, request: 0 };

async function loadUsers(page) {
  const request = ++users.request;
  try {
    const { data, headers } = await api(`/users?limit=${PAGE_SIZE}&offset=${page}`, { auth: true });
    if (request !== users.request) return;
    const total = Number(headers.get("X-Total-Count") || data.length);
    const pageCount = Math.max(1, Math.ceil(total / PAGE_SIZE));
    users.page = page;
    $("#users-table tbody").replaceChildren(...data.map(userRow));
    $("#users-page-label").textContent = `Page ${page} of ${pageCount} · ${total.toLocaleString()} users`;
    $("#users-prev").disabled = page <= 1;
    $("#users-next").disabled = page >= pageCount;
  } catch (error) {
    if (request === users.request) setMessage("#users-message", error.message, "error");
  }
}

function userRow(user) {
  const session = currentSession();
  const own = session && session.username.toLowerCase() === String(user.username).toLowerCase();
  const row = document.createElement("tr");
  row.dataset.userId = user.id;
  const name = document.createElement("td");
  name.textContent = user.username;
  const email = document.createElement("td");
  email.textContent = user.email;

  const roleCell = document.createElement("td");
  const select = document.createElement("select");
  select.setAttribute("aria-label", `Role of ${user.username}`);
  for (const role of ROLES) select.append(new Option(role, role));
  select.value = highestRole(user.roles);
  // An admin does not demote itself here (the API refuses it too): another admin can.
  select.disabled = own;
  select.addEventListener("change", () => changeUser(user, { roles: [select.value] }));
  roleCell.append(select);

  const stateCell = document.createElement("td");
  const state = document.createElement("span");
  state.textContent = user.disabled ? "Disabled " : "Active ";
  const toggle = document.createElement("button");
  toggle.type = "button";
  toggle.className = "secondary";
  toggle.textContent = user.disabled ? "Enable" : "Disable";
  toggle.setAttribute("aria-label", `${toggle.textContent} ${user.username}`);
  toggle.disabled = own;
  toggle.addEventListener("click", () => changeUser(user, { disabled: !user.disabled }));
  stateCell.append(state, toggle);

  row.append(name, email, roleCell, stateCell);
  return row;
}

async function changeUser(user, changes) {
  setMessage("#users-message", `Saving ${user.username}…`);
  try {
    const { data } = await api(`/users/${encodeURIComponent(user.id)}`, { method: "PATCH", body: changes, auth: true });
    const state = data.disabled ? "disabled" : "active";
    setMessage("#users-message", `${data.username}: ${highestRole(data.roles)}, ${state}.`, "success");
  } catch (error) {
    setMessage("#users-message", error.message, "error");
  }
  // The table shows what the server holds, whatever happened.
  loadUsers(users.page);
}

// ---- The catalog ----

const catalog = { url: null, page: 1, previous: [], links: {}, columns: [], pageCount: 1, request: 0, shown: null };
// Every dataset by name, as `GET /datasets` describes it: key, item count, columns in the order first seen.
let catalogDatasets = new Map();
let datasetsRequest = 0;

// Fills the picker (keeping its choice while that dataset exists) and the upload form's suggestions.
async function loadDatasets() {
  const request = ++datasetsRequest;
  const listed = [];
  try {
    // A page at a time, as the listing is paged; every page, as the picker offers every dataset.
    for (let path = "/datasets?limit=100", pages = 0; path && pages < 1000; pages += 1) {
      const { data, headers } = await api(path);
      listed.push(...data);
      path = parseLinks(headers.get("Link")).next;
    }
  } catch (error) {
    if (request === datasetsRequest) setMessage("#catalog-message", error.message, "error");
    return;
  }
  if (request !== datasetsRequest) return;
  catalogDatasets = new Map(listed.map((dataset) => [dataset.name, dataset]));
  // `default` is readable before its first import, empty.
  if (!catalogDatasets.has(DEFAULT_DATASET)) {
    catalogDatasets.set(DEFAULT_DATASET, { name: DEFAULT_DATASET, key: null, items: 0, columns: [] });
  }
  const picker = $("#catalog-dataset");
  const chosen = picker.value;
  picker.replaceChildren(
    ...[...catalogDatasets.values()].map((dataset) => {
      const deleting = dataset.status === "deleting" ? ", being deleted" : "";
      return new Option(`${dataset.name} (${(dataset.items || 0).toLocaleString()}${deleting})`, dataset.name);
    }),
  );
  picker.value = catalogDatasets.has(chosen) ? chosen : DEFAULT_DATASET;
  $("#upload-datasets").replaceChildren(...[...catalogDatasets.keys()].map((name) => new Option("", name)));
}

function currentDataset() {
  return catalogDatasets.get($("#catalog-dataset").value) || { name: $("#catalog-dataset").value, columns: [] };
}

// The chosen dataset's own columns, in order, offered by the column filter and the sort, and shown by the table.
function showDataset() {
  const dataset = currentDataset();
  const columns = (dataset.columns || []).map((column) => column.name);
  catalog.columns = columns;
  updateColumnChoices(columns);
  const about = [];
  if (dataset.key) about.push(`Key: ${dataset.key}`);
  if (dataset.owner_username) about.push(`owner: ${dataset.owner_username}`);
  $("#catalog-dataset-about").textContent = about.join(" · ");
  // The title search and the type filter read the seed's `title` and `type` columns: not every dataset has them.
  const form = $("#catalog-form");
  for (const [field, column] of [[form.q, "title"], [form.type, "type"]]) {
    field.disabled = columns.length > 0 && !columns.includes(column);
    if (field.disabled) field.value = "";
  }
}

function catalogUrl() {
  const form = $("#catalog-form");
  const params = new URLSearchParams({ dataset: form.dataset.value, limit: form.limit.value });
  if (form.q.value.trim()) params.set("q", form.q.value.trim());
  if (form.type.value.trim()) params.set("type", form.type.value.trim());
  const column = form["filter-column"].value;
  if (column) params.set(`filter[${column}]`, form["filter-value"].value);
  if (form.sort.value) params.set("sort", `${form.direction.value}${form.sort.value}`);
  return `/get_content?${params}`;
}

// `Link: <url>; rel="next", ...` as {next: "/get_content?..."}; the URLs stay on this page's origin.
function parseLinks(header) {
  const links = {};
  for (const part of (header || "").split(",")) {
    const match = part.match(/<([^>]*)>\s*;\s*rel="?([a-z]+)"?/);
    if (match) {
      const url = new URL(match[1], window.location.href);
      links[match[2]] = `${url.pathname}${url.search}`;
    }
  }
  return links;
}

// The "Per page" choices the catalog takes: none above its largest page (CATALOG_MAX_LIMIT).
function offerPageSizes(maxLimit) {
  if (!maxLimit) return;
  for (const option of $("#catalog-limit").options) option.disabled = Number(option.value) > maxLimit;
}

// Shows the page at `url` as page number `page`, with `previous` the trail of pages before it.
// Only the latest request is shown: a slow answer to an earlier click never overwrites a newer one.
async function loadCatalog(url, page = 1, previous = []) {
  const request = ++catalog.request;
  setMessage("#catalog-message", "");
  $("#catalog-table").setAttribute("aria-busy", "true");
  try {
    const { data, headers } = await api(url);
    if (request !== catalog.request) return;
    const total = Number(headers.get("X-Total-Count") || data.length);
    const limit = Number(new URL(url, window.location.href).searchParams.get("limit")) || PAGE_SIZE;
    offerPageSizes(Number(headers.get("X-Max-Limit")));
    Object.assign(catalog, { url, page, previous, links: parseLinks(headers.get("Link")) });
    catalog.pageCount = Math.max(1, Math.ceil(total / limit));
    catalog.shown = [data, total, limit];
    renderCatalog(data, total, limit);
  } catch (error) {
    if (request === catalog.request) setMessage("#catalog-message", error.message, "error");
  } finally {
    if (request === catalog.request) $("#catalog-table").removeAttribute("aria-busy");
  }
}

function renderCatalog(items, total, limit) {
  const dataset = currentDataset();
  const own = new Set(catalog.columns);
  // Columns an import added since the dataset list was read come after the known ones. `id` is the key the API
  // adds to each item, a copy of the key column, unless the file has an `id` column of its own.
  const added = new Set();
  for (const item of items) {
    for (const column of Object.keys(item)) if (!own.has(column) && column !== "id") added.add(column);
  }
  const columns = [...catalog.columns, ...added];
  if (added.size) {
    catalog.columns = columns;
    updateColumnChoices(columns);
  }

  const head = document.createElement("tr");
  for (const column of columns) {
    const th = document.createElement("th");
    th.scope = "col";
    th.textContent = column;
    head.append(th);
  }
  $("#catalog-table thead").replaceChildren(head);
  $("#catalog-table tbody").replaceChildren(...itemRows(items, columns, dataset.key));

  const first = (catalog.page - 1) * limit + 1;
  $("#catalog-summary").textContent = items.length
    ? `Showing ${first.toLocaleString()}–${(first + items.length - 1).toLocaleString()} of ${total.toLocaleString()}`
    : total
      ? `Nothing on this page (${total.toLocaleString()} in all)`
      : "No items match.";
  $("#page-label").textContent = `Page ${catalog.page.toLocaleString()} of ${catalog.pageCount.toLocaleString()}`;
  $("#prev-page").disabled = catalog.previous.length === 0;
  $("#first-page").disabled = catalog.previous.length === 0;
  $("#next-page").disabled = !catalog.links.next;
}

// The column filter and the sort offer exactly `columns`; a choice the dataset lacks goes back to none.
function updateColumnChoices(columns) {
  for (const select of [$("#catalog-sort"), $("#catalog-filter-column")]) {
    const chosen = select.value;
    const none = select.options[0];
    select.replaceChildren(none, ...columns.map((column) => new Option(column, column)));
    select.value = columns.includes(chosen) ? chosen : "";
  }
}

function nextPage() {
  // The next link continues by cursor, whose cost does not grow with depth; going back replays our own trail.
  if (catalog.links.next) loadCatalog(catalog.links.next, catalog.page + 1, [...catalog.previous, catalog.url]);
}

function previousPage() {
  const url = catalog.previous.at(-1);
  if (url) loadCatalog(url, catalog.page - 1, catalog.previous.slice(0, -1));
}

function firstPage() {
  if (catalog.previous.length) loadCatalog(catalog.previous[0], 1, []);
}

// ---- Wiring ----

function init() {
  $("#login-form").addEventListener("submit", onLogin);
  $("#signup-form").addEventListener("submit", onSignup);
  $("#logout-button").addEventListener("click", logOut);
  $("#upload-form").addEventListener("submit", onUpload);
  $("#cancel-button").addEventListener("click", onCancel);
  $("#revert-button").addEventListener("click", onRevert);
  $("#catalog-form").addEventListener("submit", (event) => {
    event.preventDefault();
    loadCatalog(catalogUrl());
  });
  $("#catalog-dataset").addEventListener("change", () => {
    showDataset();
    loadCatalog(catalogUrl());
  });
  $("#catalog-form").addEventListener("reset", () => {
    // Clear empties the filters but stays on the dataset; after the form has put its fields back.
    const dataset = $("#catalog-dataset").value;
    setTimeout(() => {
      $("#catalog-dataset").value = dataset;
      showDataset();
      loadCatalog(catalogUrl());
    });
  });
  $("#next-page").addEventListener("click", nextPage);
  $("#prev-page").addEventListener("click", previousPage);
  $("#first-page").addEventListener("click", firstPage);
  $("#users-prev").addEventListener("click", () => loadUsers(users.page - 1));
  $("#users-next").addEventListener("click", () => loadUsers(users.page + 1));
  showSession();
  scheduleRenewal();
  loadCatalog(catalogUrl());
  // The list fills the picker while the first page loads; the table then shows only that dataset's columns.
  loadDatasets().then(() => {
    showDataset();
    if (catalog.shown) renderCatalog(...catalog.shown);
  });
}

init();
