// The duplicates page (?view=duplicates&dataset=NAME): start a duplicates job for a
// dataset, optionally against others (a train/test leak), follow its progress, and look
// through the groups it found side by side, largest first.

import * as api from "./api.js";
import { duration, h, replace } from "./dom.js";
import { toUrl, emptySearch } from "./query.js";

const POLL_MS = 1000;
const GROUPS_PER_PAGE = 50;
const THUMBNAIL = 192;
const ACTIVE = new Set(["queued", "running"]);
const count = (n, noun) => `${n.toLocaleString()} ${noun}${n === 1 ? "" : "s"}`;

export function mount(main, app) {
  const params = new URLSearchParams(location.search);
  let dataset = params.get("dataset") || "";
  let stopped = false;
  let timer = null;
  let shown = 0; // groups on the page

  const datasetSelect = h("select", { id: "dup-dataset", "aria-label": "dataset", onchange: () => choose(datasetSelect.value) });
  const against = h("fieldset", { class: "against", id: "dup-against" }, h("legend", {}, "Compare against"));
  const threshold = h("input", { type: "number", id: "dup-threshold", min: "0.5", max: "1", step: "0.005",
                                 placeholder: "default", "aria-label": "similarity threshold" });
  const start = h("button", { type: "button", id: "dup-start", onclick: () => startJob() }, "Find duplicates");
  const status = h("p", { class: "status", id: "dup-status", role: "status" });
  const groups = h("div", { class: "dup-groups", id: "dup-groups" });
  const more = h("button", { type: "button", class: "quiet", id: "dup-more", hidden: true, onclick: () => loadGroups() },
    "More groups");
  replace(main, h("section", { class: "duplicates-page" },
    h("div", { class: "page-head" }, h("h1", {}, "Duplicates"),
      h("p", { class: "hint" }, "Images with the same content, or embeddings at least as alike as the threshold: ",
        "within the dataset, and against the datasets ticked (a training image in a test set).")),
    h("div", { class: "dup-controls" },
      h("label", {}, "Dataset ", datasetSelect), against,
      h("label", {}, "Threshold ", threshold), start),
    status, groups, more));

  async function loadDatasets() {
    try {
      const { datasets } = await api.datasets();
      if (stopped) return;
      const names = datasets.map((d) => d.name);
      if (!names.includes(dataset)) dataset = names[0] || "";
      replace(datasetSelect, names.map((n) => h("option", { value: n, selected: n === dataset }, n)));
      replace(against, h("legend", {}, "Compare against"),
        names.length > 1 ? names.map((n) => h("label", { hidden: n === dataset, dataset: { name: n } },
          h("input", { type: "checkbox", value: n }), n)) : h("span", { class: "hint" }, "no other dataset"));
      start.disabled = !dataset;
      if (!dataset) status.textContent = "No dataset yet: index one first.";
      else refresh();
    } catch (error) {
      app.showError(error);
    }
  }

  function choose(name) {
    dataset = name;
    history.replaceState(null, "", `/?view=duplicates&dataset=${encodeURIComponent(name)}`);
    for (const label of against.querySelectorAll("label")) {
      label.hidden = label.dataset.name === name;
      if (label.hidden) label.querySelector("input").checked = false;
    }
    clearTimeout(timer);
    refresh();
  }

  async function startJob() {
    const body = { against: [...against.querySelectorAll("input:checked")].map((i) => i.value) };
    if (threshold.value !== "") body.threshold = Number(threshold.value);
    start.disabled = true;
    try {
      await api.findDuplicates(dataset, body);
      app.clearError();
      clearTimeout(timer);
      refresh();
    } catch (error) {
      app.showError(error);
      start.disabled = false;
    }
  }

  // The latest job: its progress while it runs, then its first page of groups.
  async function refresh() {
    const name = dataset;
    let reply = null;
    try {
      reply = await api.duplicates(name, { limit: GROUPS_PER_PAGE });
    } catch (error) {
      if (error.status !== 404) app.showError(error);
    }
    if (stopped || name !== dataset) return;
    shown = 0;
    replace(groups);
    more.hidden = true;
    if (!reply) {
      start.disabled = false;
      status.textContent = `No duplicates job for ${name} yet.`;
      return;
    }
    const job = reply.job;
    start.disabled = ACTIVE.has(job.state);
    if (ACTIVE.has(job.state)) {
      const handled = job.done + job.skipped + job.failed;
      status.textContent = `Comparing ${handled.toLocaleString()} / ${job.total.toLocaleString()} images` +
        (job.eta_seconds ? `, ${duration(job.eta_seconds)} left` : "") + "…";
      timer = setTimeout(refresh, POLL_MS);
      return;
    }
    if (job.state === "failed") {
      status.textContent = `The duplicates job failed: ${job.error}`;
      return;
    }
    const scope = job.duplicates.datasets.slice(1);
    status.textContent = `${count(reply.total_groups, "group")}, ${count(reply.duplicate_images, "image")} ` +
      `(threshold ${job.duplicates.threshold.toFixed(3)}${scope.length ? `, against ${scope.join(", ")}` : ""}; ` +
      `job ${job.id}, ${new Date(job.finished_at).toLocaleString()})` + (job.failed ? `; ${count(job.failed, "image")} failed` : "");
    show(reply);
  }

  async function loadGroups() {
    try {
      show(await api.duplicates(dataset, { limit: GROUPS_PER_PAGE, offset: shown }));
    } catch (error) {
      app.showError(error);
    }
  }

  function show(reply) {
    groups.append(...reply.groups.map((group, i) => groupRow(group, shown + i + 1)));
    shown += reply.groups.length;
    more.hidden = shown >= reply.total_groups;
  }

  function groupRow(group, number) {
    const similarity = group.exact ? "same file"
      : group.min_similarity === group.max_similarity ? group.min_similarity.toFixed(3)
      : `${group.min_similarity.toFixed(3)}–${group.max_similarity.toFixed(3)}`;
    return h("article", { class: "dup-group", dataset: { size: group.images.length } },
      h("header", {}, h("span", { class: "number" }, `${number}.`), `${count(group.images.length, "image")}, `,
        h("span", { class: `similarity ${group.exact ? "exact" : ""}`, title: "cosine similarity of the pairs" }, similarity)),
      h("div", { class: "dup-images" }, group.images.map(imageTile)));
  }

  function imageTile(image) {
    const img = h("img", { alt: `${image.dataset}/${image.key}`, decoding: "async" });
    api.thumbnail(image.dataset, image.key, { size: THUMBNAIL }).then((url) => { img.src = url; },
                                                                      () => img.classList.add("broken"));
    const search = { ...emptySearch(), terms: [{ image: { dataset: image.dataset, key: image.key }, weight: 1 }] };
    return h("figure", { class: "dup-image", dataset: { dataset: image.dataset, key: image.key } },
      h("a", { href: toUrl(search), "data-nav": "search", title: "search by this image" }, img),
      h("figcaption", { title: `${image.dataset}/${image.key}` }, h("span", { class: "ds" }, image.dataset), " / ", image.key));
  }

  loadDatasets();
  return {
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
