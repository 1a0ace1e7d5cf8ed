// The gateway's HTTP API, as the page uses it: JSON in and out, the API key (kept in
// sessionStorage, so it ends with the tab) as a Bearer token, errors as problem details.

const KEY_ITEM = "vizsearch.apiKey";
const THUMBNAILS_KEPT = 600;

export class ApiError extends Error {
  constructor(status, detail, title) {
    super(detail || title || `HTTP ${status}`);
    this.status = status;
    this.title = title || "";
  }
}

let unauthorized = () => {};

export function apiKey() {
  return sessionStorage.getItem(KEY_ITEM) || "";
}

export function setApiKey(key) {
  if (key) sessionStorage.setItem(KEY_ITEM, key);
  else sessionStorage.removeItem(KEY_ITEM);
  thumbnails.clear();
}

/** fn(error) runs whenever a call is refused for want of a valid key (401). */
export function onUnauthorized(fn) {
  unauthorized = fn;
}

function headers() {
  const key = apiKey();
  return key ? { Authorization: `Bearer ${key}` } : {};
}

async function failure(response) {
  let problem = {};
  try {
    problem = await response.json();
  } catch {
    // not a problem document: the status says enough
  }
  const error = new ApiError(response.status, problem.detail || response.statusText, problem.title);
  if (response.status === 401) unauthorized(error);
  return error;
}

async function send(method, path, body, signal) {
  const init = { method, headers: headers(), signal };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  if (!response.ok) throw await failure(response);
  return response;
}

export async function call(method, path, body, { signal } = {}) {
  return (await send(method, path, body, signal)).json();
}

export const search = (body, options) => call("POST", "/v1/search", body, options);
/** The search's results as a file (body: a search with `format`: jsonl, csv or coco). */
export const exportResults = async (body) => (await send("POST", "/v1/search/export", body)).blob();
/** A file the API serves (an export), as a blob. */
export const file = async (path) => (await send("GET", path)).blob();
export const datasets = () => call("GET", "/v1/datasets");
export const jobs = (dataset, limit = 10) => call("GET", `/v1/jobs?dataset=${encodeURIComponent(dataset)}&limit=${limit}`);
export const scan = (dataset) => call("POST", `/v1/datasets/${encodeURIComponent(dataset)}/scan`);
/** Starts a duplicates job (body: {against, threshold}). */
export const findDuplicates = (dataset, body) => call("POST", `/v1/datasets/${encodeURIComponent(dataset)}/duplicates`, body);
/** The latest duplicates job of the dataset, with a page of its groups once it has ended. */
export const duplicates = (dataset, { limit = 50, offset = 0 } = {}) =>
  call("GET", `/v1/datasets/${encodeURIComponent(dataset)}/duplicates?limit=${limit}&offset=${offset}`);
/** Starts a suspect-labels job (body: {neighbours, min_agreement}). */
export const findSuspects = (dataset, body) => call("POST", `/v1/datasets/${encodeURIComponent(dataset)}/suspects`, body);
/** The latest suspect-labels job of the dataset, with a page of its suspects once it has ended. */
export function suspects(dataset, { limit = 50, offset = 0, label = "" } = {}) {
  const query = new URLSearchParams({ limit, offset, ...(label ? { label } : {}) });
  return call("GET", `/v1/datasets/${encodeURIComponent(dataset)}/suspects?${query}`);
}
/** Starts a map job (body: {level, max_points}). */
export const makeMap = (dataset, body) => call("POST", `/v1/datasets/${encodeURIComponent(dataset)}/map`, body);
/** The latest map of the level, with its points (at most `points`, a fixed sample) once it has ended. */
export const map = (dataset, { level = "images", points = 20000 } = {}) =>
  call("GET", `/v1/datasets/${encodeURIComponent(dataset)}/map?${new URLSearchParams({ level, points })}`);
export const deleteDataset = (dataset) => call("DELETE", `/v1/datasets/${encodeURIComponent(dataset)}`);
export const model = () => call("GET", "/v1/model");

/** The path of a stored image (or of its thumbnail, or of a box's crop), every part percent-encoded. */
export function imagePath(dataset, key, { size, box } = {}) {
  const path = `/v1/images/${encodeURIComponent(dataset)}/${key.split("/").map(encodeURIComponent).join("/")}`;
  const query = new URLSearchParams();
  if (size) query.set("size", size);
  if (box) query.set("box", box.map((v) => Math.round(v * 100) / 100).join(","));
  return query.size ? `${path}?${query}` : path;
}

// Object URLs of thumbnails fetched in this tab (the browser's HTTP cache keeps them longer).
const thumbnails = new Map();

/** An object URL for the image: fetched with the key (an <img> cannot send one). */
export function imageUrl(dataset, key, options) {
  const path = imagePath(dataset, key, options);
  let url = thumbnails.get(path);
  if (!url) {
    url = fetch(path, { headers: headers() }).then(async (response) => {
      if (!response.ok) throw await failure(response);
      return URL.createObjectURL(await response.blob());
    });
    url.catch(() => thumbnails.delete(path));
    thumbnails.set(path, url);
    if (thumbnails.size > THUMBNAILS_KEPT) {
      const [oldest, first] = thumbnails.entries().next().value;
      thumbnails.delete(oldest);
      first.then(URL.revokeObjectURL, () => {});
    }
  }
  return url;
}

// Thumbnails asked for in the same moment (a page of results) go in one request.
let batch = [];

/** A data URL of the image's thumbnail (or of a box's crop), fetched with others in one request. */
export function thumbnail(dataset, key, { size, box } = {}) {
  const path = imagePath(dataset, key, { size, box });
  let url = thumbnails.get(path);
  if (!url) {
    url = new Promise((resolve, reject) => {
      batch.push({ spec: { dataset, key, ...(box ? { box } : {}) }, size, resolve, reject });
      if (batch.length === 1) queueMicrotask(sendBatch);
    });
    url.catch(() => thumbnails.delete(path));
    thumbnails.set(path, url);
  }
  return url;
}

/** Sends the thumbnails asked for so far now, instead of at the end of this task. */
export function sendThumbnailRequests() {
  if (batch.length) sendBatch();
}

function sendBatch() {
  const sizes = new Map();
  for (const item of batch.splice(0)) {
    if (!sizes.has(item.size)) sizes.set(item.size, []);
    sizes.get(item.size).push(item);
  }
  for (const [size, items] of sizes) {
    for (let start = 0; start < items.length; start += 100) {
      const chunk = items.slice(start, start + 100);
      call("POST", "/v1/thumbnails", { images: chunk.map((i) => i.spec), size, format: "webp" }).then(({ thumbnails: replies }) => {
        replies.forEach((reply, i) => {
          if (reply.error) chunk[i].reject(new ApiError(reply.error.status, reply.error.detail, reply.error.title));
          else chunk[i].resolve(`data:${reply.content_type};base64,${reply.data}`);
        });
      }, (error) => chunk.forEach((i) => i.reject(error)));
    }
  }
}

/** A File as base64, for an image query by value. */
export function base64(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result).split(",", 2)[1]);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}
