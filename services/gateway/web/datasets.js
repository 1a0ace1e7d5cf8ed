// The datasets page: every dataset with its counts, its recent jobs with live progress
// (rate and time left while indexing) and the files that failed, with their reasons.

import * as api from "./api.js";
import { duration, h, replace } from "./dom.js";

const BUSY_POLL_MS = 1000;
const IDLE_POLL_MS = 3000; // a new drop's job shows within seconds
const ACTIVE = new Set(["queued", "running"]);

export function mount(main, app) {
  const list = h("div", { class: "dataset-list", id: "dataset-list" }, h("p", { class: "status" }, "Loading…"));
  replace(main, h("section", { class: "datasets-page" },
    h("div", { class: "page-head" }, h("h1", {}, "Datasets"),
      h("p", { class: "hint" }, "Drop images (and COCO or BDD annotations under _annotations/) into a top-level ",
        "folder of the bucket: it becomes a dataset, indexed in the background.")),
    list));
  let timer = null;
  let stopped = false;
  const open = new Set(); // datasets whose failures are shown

  async function refresh() {
    let busy = false;
    try {
      const { datasets } = await api.datasets();
      const jobs = await Promise.all(datasets.map((d) => api.jobs(d.name, 5).then((r) => r.jobs)));
      if (stopped) return;
      busy = jobs.some((js) => js.some((j) => ACTIVE.has(j.state)));
      replace(list, datasets.length ? datasets.map((d, i) => datasetCard(d, jobs[i]))
                                    : h("p", { class: "status" }, "No dataset yet."));
      app.clearError();
    } catch (error) {
      app.showError(error);
    }
    if (!stopped) timer = setTimeout(refresh, busy ? BUSY_POLL_MS : IDLE_POLL_MS);
  }

  function datasetCard(dataset, jobs) {
    const failures = jobs.flatMap((j) => j.failures.map((f) => ({ ...f, job: j.id })));
    const showFailures = open.has(dataset.name);
    return h("article", { class: "dataset", dataset: { name: dataset.name } },
      h("header", {},
        h("h2", {}, h("a", { href: `/?datasets=${encodeURIComponent(dataset.name)}`, "data-nav": "search" }, dataset.name)),
        h("dl", { class: "counts" },
          h("dt", {}, "images"), h("dd", { class: "images" }, dataset.images.toLocaleString()),
          h("dt", {}, "objects"), h("dd", { class: "objects" }, dataset.objects.toLocaleString()),
          h("dt", {}, "failed"), h("dd", { class: `failed ${dataset.failed ? "bad" : ""}` }, dataset.failed.toLocaleString())),
        h("div", { class: "dataset-actions" },
          h("button", { type: "button", class: "quiet", onclick: () => act(() => api.scan(dataset.name)) }, "Scan now"),
          h("a", { class: "button quiet", href: `/?view=duplicates&dataset=${encodeURIComponent(dataset.name)}`,
                   "data-nav": "duplicates" }, "Duplicates"),
          h("a", { class: "button quiet", href: `/?view=suspects&dataset=${encodeURIComponent(dataset.name)}`,
                   "data-nav": "suspects" }, "Suspect labels"),
          h("a", { class: "button quiet", href: `/?view=map&dataset=${encodeURIComponent(dataset.name)}`,
                   "data-nav": "map" }, "Map"),
          h("button", { type: "button", class: "quiet danger", onclick: () => remove(dataset.name) }, "Delete"))),
      jobs.length ? h("table", { class: "jobs" },
        h("thead", {}, h("tr", {}, ["job", "kind", "state", "progress", "objects", "rate", "time left"].map((c) => h("th", {}, c)))),
        h("tbody", {}, jobs.map(jobRow))) : h("p", { class: "hint" }, "No job yet."),
      failures.length ? h("details", { class: "failures", open: showFailures,
                                       ontoggle: (e) => (e.target.open ? open.add(dataset.name) : open.delete(dataset.name)) },
        h("summary", {}, `${failures.length} failed file${failures.length === 1 ? "" : "s"} in recent jobs`),
        h("ul", {}, failures.slice(0, 200).map((f) => h("li", {}, h("code", {}, f.key), ": ", f.reason)))) : "");
  }

  function jobRow(job) {
    const handled = job.done + job.skipped + job.failed;
    const fraction = job.total ? handled / job.total : ACTIVE.has(job.state) ? 0 : 1;
    return h("tr", { class: `job ${job.state}`, dataset: { id: job.id, state: job.state } },
      h("td", { class: "id" }, job.id),
      h("td", {}, job.kind),
      h("td", { class: "state" }, job.state.replaceAll("_", " "), job.error ? h("span", { class: "error-note" }, `: ${job.error}`) : ""),
      h("td", {}, h("div", { class: "progress" },
        h("progress", { max: 1, value: fraction, "aria-label": `${job.id} progress` }),
        h("span", { class: "numbers" }, `${handled.toLocaleString()} / ${job.total.toLocaleString()}`))),
      h("td", {}, job.objects.toLocaleString()),
      h("td", { class: "rate" }, job.throughput ? `${job.throughput.toFixed(1)} images/s` : ""),
      h("td", { class: "eta" }, ACTIVE.has(job.state) ? duration(job.eta_seconds) : ""));
  }

  async function act(call) {
    try {
      await call();
      clearTimeout(timer);
      refresh();
    } catch (error) {
      app.showError(error);
    }
  }

  function remove(name) {
    if (confirm(`Delete the dataset ${name}? Its vectors and records go; the stored images stay.`)) {
      act(() => api.deleteDataset(name));
    }
  }

  refresh();
  return {
    reload() {},
    unmount() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
