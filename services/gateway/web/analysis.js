// What the pages of the analysis jobs (duplicates, suspect labels) share: a dataset to
// choose, a button that starts a job, its progress while it runs, then its results a page
// at a time. Each page says how to start, read and draw (`spec`).

import * as api from "./api.js";
import { duration, h, replace, saveFile } from "./dom.js";

const POLL_MS = 1000;
const PER_PAGE = 50;
const ACTIVE = new Set(["queued", "running"]);

export const count = (n, noun, plural = `${noun}s`) => `${n.toLocaleString()} ${n === 1 ? noun : plural}`;

/**
 * spec: {view, title, hint, id (element id prefix), startLabel, nouns ([singular, plural] of what a job compares),
 *        controls(names, dataset) -> [elements], onDataset(name), start(dataset) -> promise,
 *        read(dataset, {limit, offset}) -> {job, items, total}, summary(reply) -> text, item(x, number) -> element,
 *        exports: {format: its name}, exportPath(dataset, format, jobId) -> the API path of the file}
 */
export function mountAnalysis(main, app, spec) {
  let dataset = new URLSearchParams(location.search).get("dataset") || "";
  let stopped = false;
  let timer = null;
  let shown = 0;

  const datasetSelect = h("select", { id: `${spec.id}-dataset`, "aria-label": "dataset",
                                      onchange: () => choose(datasetSelect.value) });
  const extra = h("div", { class: "analysis-extra" });
  const start = h("button", { type: "button", id: `${spec.id}-start`, onclick: () => startJob() }, spec.startLabel);
  const status = h("p", { class: "status", id: `${spec.id}-status`, role: "status" });
  let jobShown = null;
  const exportSelect = h("select", { id: `${spec.id}-export`, hidden: true, "aria-label": "export every result",
                                     onchange: () => exportAll(exportSelect.value) },
    h("option", { value: "" }, "Export…"),
    Object.entries(spec.exports).map(([format, name]) => h("option", { value: format }, name)));
  const list = h("div", { class: "analysis-list", id: `${spec.id}-list` });
  const more = h("button", { type: "button", class: "quiet", id: `${spec.id}-more`, hidden: true, onclick: () => nextPage() },
    "More");
  replace(main, h("section", { class: "analysis-page" },
    h("div", { class: "page-head" }, h("h1", {}, spec.title), h("p", { class: "hint" }, spec.hint)),
    h("div", { class: "analysis-controls" }, h("label", {}, "Dataset ", datasetSelect), extra, start),
    h("div", { class: "result-bar" }, status, exportSelect), list, more));

  async function loadDatasets() {
    try {
      const { datasets } = await api.datasets();
      if (stopped) return;
      const names = datasets.map((d) => d.name);
      if (!names.includes(dataset)) dataset = names[0] || "";
      replace(datasetSelect, names.map((n) => h("option", { value: n, selected: n === dataset }, n)));
      replace(extra, spec.controls(names, dataset));
      start.disabled = !dataset;
      if (!dataset) status.textContent = "No dataset yet: index one first.";
      else refresh();
    } catch (error) {
      app.showError(error);
    }
  }

  function choose(name) {
    dataset = name;
    history.replaceState(null, "", `/?view=${spec.view}&dataset=${encodeURIComponent(name)}`);
    spec.onDataset(name);
    clearTimeout(timer);
    refresh();
  }

  async function startJob() {
    start.disabled = true;
    try {
      await spec.start(dataset);
      app.clearError();
      clearTimeout(timer);
      refresh();
    } catch (error) {
      app.showError(error);
      start.disabled = false;
    }
  }

  // The latest job: its progress while it runs, then its first page of results.
  async function refresh() {
    const name = dataset;
    let reply = null;
    try {
      reply = await spec.read(name, { limit: PER_PAGE, offset: 0 });
    } catch (error) {
      if (error.status !== 404) app.showError(error);
    }
    if (stopped || name !== dataset) return;
    shown = 0;
    replace(list);
    more.hidden = true;
    exportSelect.hidden = true;
    if (!reply) {
      start.disabled = false;
      status.textContent = `No job for ${name} yet.`;
      return;
    }
    const job = reply.job;
    start.disabled = ACTIVE.has(job.state);
    if (ACTIVE.has(job.state)) {
      const handled = job.done + job.skipped + job.failed;
      status.textContent = `Comparing ${handled.toLocaleString()} / ${count(job.total, ...spec.nouns)}` +
        (job.eta_seconds ? `, ${duration(job.eta_seconds)} left` : "") + "…";
      timer = setTimeout(refresh, POLL_MS);
      return;
    }
    if (job.state === "failed") {
      status.textContent = `The job failed: ${job.error}`;
      return;
    }
    status.textContent = `${spec.summary(reply)} (job ${job.id}, ${new Date(job.finished_at).toLocaleString()})` +
      (job.failed ? `; ${count(job.failed, ...spec.nouns)} failed` : "");
    jobShown = job.id;
    exportSelect.hidden = reply.total === 0;
    show(reply);
  }

  /** Downloads every result of the job shown, in a format the API exports. */
  async function exportAll(format) {
    exportSelect.value = "";
    if (!format) return;
    try {
      saveFile(await api.file(spec.exportPath(dataset, format, jobShown)),
               `${dataset}-${spec.view}.${format === "coco" ? "json" : format}`);
    } catch (error) {
      app.showError(error);
    }
  }

  async function nextPage() {
    try {
      show(await spec.read(dataset, { limit: PER_PAGE, offset: shown }));
    } catch (error) {
      app.showError(error);
    }
  }

  function show(reply) {
    list.append(...reply.items.map((item, i) => spec.item(item, shown + i + 1)));
    shown += reply.items.length;
    more.hidden = shown >= reply.total;
  }

  loadDatasets();
  return {
    refresh() {
      clearTimeout(timer);
      refresh();
    },
    reload() {
      const name = new URLSearchParams(location.search).get("dataset");
      if (name && name !== dataset) {
        datasetSelect.value = name;
        choose(name);
      }
    },
    unmount() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}

/** A thumbnail (or a box's crop) that opens a search by it. */
export function tile(dataset, key, { box, size, caption, title }) {
  const img = h("img", { alt: `${dataset}/${key}`, decoding: "async" });
  api.thumbnail(dataset, key, { size, box }).then((url) => { img.src = url; }, () => img.classList.add("broken"));
  const term = box ? { object: { dataset, key }, box, weight: 1 } : { image: { dataset, key }, weight: 1 };
  return h("figure", { class: "tile", dataset: { dataset, key } },
    h("a", { href: `/?q=${encodeURIComponent(JSON.stringify([term]))}`, "data-nav": "search",
             title: title || "search by this" }, img),
    h("figcaption", { title: `${dataset}/${key}` }, caption));
}
