// The suspect labels page (?view=suspects&dataset=NAME): a suspect-labels job for a
// dataset, and each box whose nearest annotated boxes agree on another label, beside the
// boxes that outvote it.

import * as api from "./api.js";
import { h, labelColour } from "./dom.js";
import { count, mountAnalysis, tile } from "./analysis.js";

const CROP = 160;

export function mount(main, app) {
  const neighbours = h("input", { type: "number", id: "sus-neighbours", min: "1", max: "1000", step: "1",
                                  placeholder: "default", "aria-label": "neighbours that vote" });
  const label = h("input", { type: "text", id: "sus-label", placeholder: "any", "aria-label": "only boxes labelled",
                             onchange: () => view.refresh() });
  const view = mountAnalysis(main, app, {
    view: "suspects", id: "sus", title: "Suspect labels", startLabel: "Find suspects", nouns: ["box", "boxes"],
    hint: "Annotated boxes whose nearest annotated boxes agree on another label: probably mislabelled. " +
          "Each is shown beside the boxes that outvote it, most certain first.",
    controls: () => [h("label", {}, "Neighbours ", neighbours), h("label", {}, "Only labelled ", label)],
    onDataset() {},
    start(dataset) {
      return api.findSuspects(dataset, neighbours.value === "" ? {} : { neighbours: Number(neighbours.value) });
    },
    exports: { jsonl: "JSON lines", csv: "CSV", coco: "COCO" },
    exportPath: (dataset, format, job) => `/v1/datasets/${encodeURIComponent(dataset)}/suspects/export?` +
      new URLSearchParams({ format, job, ...(label.value.trim() ? { label: label.value.trim() } : {}) }),
    async read(dataset, page) {
      const reply = await api.suspects(dataset, { ...page, label: label.value.trim() });
      return { ...reply, items: reply.suspects, total: reply.total_suspects };
    },
    summary(reply) {
      const { neighbours: voters, min_agreement: needed } = reply.job.suspects;
      return `${count(reply.total_suspects, "suspect")}${label.value.trim() ? ` labelled ${label.value.trim()}` : ""} ` +
        `among ${count(reply.job.total, "box", "boxes")} (${voters} neighbours vote, ${Math.round(needed * 100)}% of the votes needed)`;
    },
    item(suspect, number) {
      return h("article", { class: "analysis-item suspect", dataset: { key: suspect.key, label: suspect.label } },
        h("header", {}, h("span", { class: "number" }, `${number}.`), "labelled ",
          h("b", { class: "label", style: `--label: ${labelColour(suspect.label)}` }, suspect.label), ", its neighbours say ",
          h("b", { class: "suggested", style: `--label: ${labelColour(suspect.suggested_label)}` }, suspect.suggested_label),
          h("span", { class: "agreement", title: "share of the similarity-weighted votes" },
            ` (${Math.round(suspect.agreement * 100)}%)`)),
        h("div", { class: "tiles" },
          h("div", { class: "suspect-box" }, tile(suspect.dataset, suspect.key, { box: suspect.box, size: CROP,
            title: "search by this box", caption: suspect.key })),
          suspect.neighbours.map((n) => tile(suspect.dataset, n.key, { box: n.box, size: CROP,
            title: "search by this box", caption: [`${n.label} `, h("span", { class: "similarity" }, n.similarity.toFixed(3))] }))));
    },
  });
  return view;
}
