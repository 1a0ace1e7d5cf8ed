// The duplicates page (?view=duplicates&dataset=NAME): a duplicates job for a dataset,
// optionally against others (a train/test leak), and the groups it found side by side.

import * as api from "./api.js";
import { h } from "./dom.js";
import { count, mountAnalysis, tile } from "./analysis.js";

const THUMBNAIL = 192;

export function mount(main, app) {
  const against = h("fieldset", { class: "against", id: "dup-against" }, h("legend", {}, "Compare against"));
  const threshold = h("input", { type: "number", id: "dup-threshold", min: "0.5", max: "1", step: "0.005",
                                 placeholder: "default", "aria-label": "similarity threshold" });
  return mountAnalysis(main, app, {
    view: "duplicates", id: "dup", title: "Duplicates", startLabel: "Find duplicates", nouns: ["image", "images"],
    hint: "Images with the same content, or embeddings at least as alike as the threshold: within the dataset, " +
          "and against the datasets ticked (a training image in a test set).",
    controls(names, dataset) {
      against.replaceChildren(h("legend", {}, "Compare against"));
      if (names.length > 1) {
        against.append(...names.map((n) => h("label", { hidden: n === dataset, dataset: { name: n } },
          h("input", { type: "checkbox", value: n }), n)));
      } else {
        against.append(h("span", { class: "hint" }, "no other dataset"));
      }
      return [against, h("label", {}, "Threshold ", threshold)];
    },
    onDataset(name) {
      for (const label of against.querySelectorAll("label")) {
        label.hidden = label.dataset.name === name;
        if (label.hidden) label.querySelector("input").checked = false;
      }
    },
    start(dataset) {
      const body = { against: [...against.querySelectorAll("input:checked")].map((i) => i.value) };
      if (threshold.value !== "") body.threshold = Number(threshold.value);
      return api.findDuplicates(dataset, body);
    },
    exports: { jsonl: "JSON lines", csv: "CSV" },
    exportPath: (dataset, format, job) =>
      `/v1/datasets/${encodeURIComponent(dataset)}/duplicates/export?format=${format}&job=${encodeURIComponent(job)}`,
    async read(dataset, page) {
      const reply = await api.duplicates(dataset, page);
      return { ...reply, items: reply.groups, total: reply.total_groups };
    },
    summary(reply) {
      const scope = reply.job.duplicates.datasets.slice(1);
      return `${count(reply.total_groups, "group")}, ${count(reply.duplicate_images, "image")} ` +
        `(threshold ${reply.job.duplicates.threshold.toFixed(3)}${scope.length ? `, against ${scope.join(", ")}` : ""})`;
    },
    item(group, number) {
      const similarity = group.exact ? "same file"
        : group.min_similarity === group.max_similarity ? group.min_similarity.toFixed(3)
        : `${group.min_similarity.toFixed(3)}–${group.max_similarity.toFixed(3)}`;
      return h("article", { class: "analysis-item dup-group", dataset: { size: group.images.length } },
        h("header", {}, h("span", { class: "number" }, `${number}.`), `${count(group.images.length, "image")}, `,
          h("span", { class: `similarity ${group.exact ? "exact" : ""}`, title: "cosine similarity" }, similarity)),
        h("div", { class: "tiles" }, group.images.map((image) => tile(image.dataset, image.key, {
          size: THUMBNAIL, title: "search by this image",
          caption: [h("span", { class: "ds" }, image.dataset), " / ", image.key] }))));
    },
  });
}
