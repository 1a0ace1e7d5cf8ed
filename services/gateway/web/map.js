// The map page (?view=map&dataset=NAME&level=images): a dataset's vectors projected to
// 2-D (a map job, UMAP), drawn as a scatter plot coloured by label or by dataset. Drag a
// rectangle over a region to see its images (or objects) below.

import * as api from "./api.js";
import { h, labelColour, replace } from "./dom.js";
import { count, mountAnalysis, tile } from "./analysis.js";

const WIDTH = 960;
const HEIGHT = 640;
const MARGIN = 8;
// Dot sides in CSS pixels: larger while there are few, so a small map reads well.
const dot = (points) => (points < 2000 ? 6 : points < 20000 ? 4 : 2.5);
const SHOWN = 60; // tiles of a selection
const LEGEND = 14;

export function mount(main, app) {
  const params = new URLSearchParams(location.search);
  const level = h("select", { id: "map-level", "aria-label": "what the points are", onchange: () => view.refresh() },
    ["images", "objects"].map((l) => h("option", { value: l, selected: params.get("level") === l }, l)));
  const colourBy = h("select", { id: "map-colour", "aria-label": "colour by", onchange: () => redraw?.() },
    h("option", { value: "label" }, "label"), h("option", { value: "dataset" }, "dataset"));
  let redraw = null;

  const view = mountAnalysis(main, app, {
    view: "map", id: "map", title: "Map", startLabel: "Make map", nouns: ["point", "points"],
    hint: "The dataset's images (or objects) placed by how alike their embeddings are (UMAP): near points look " +
          "alike. An image is coloured by the first of its labels. Drag over a region to see what is there.",
    controls: () => [h("label", {}, "Points ", level), h("label", {}, "Colour by ", colourBy)],
    onDataset() {},
    start: (dataset) => api.makeMap(dataset, { level: level.value }),
    async read(dataset) {
      const reply = await api.map(dataset, { level: level.value });
      return { ...reply, items: reply.points.length ? [reply] : [], total: reply.points.length ? 1 : 0 };
    },
    summary(reply) {
      const drawn = reply.points.length < reply.total_points
        ? `; ${reply.points.length.toLocaleString()} drawn, a random sample` : "";
      return `${count(reply.total_points, reply.job.map.level === "objects" ? "object" : "image")} on the map${drawn}`;
    },
    exports: { jsonl: "JSON lines", csv: "CSV" },
    exportPath: (dataset, format, job) => `/v1/datasets/${encodeURIComponent(dataset)}/map/export?` +
      new URLSearchParams({ format, job, level: level.value }),
    item(reply) {
      const widget = scatter(reply.points, () => colourBy.value);
      redraw = widget.redraw;
      return widget.element;
    },
  });
  return view;
}

/** The scatter plot with its legend and the selection below it. */
function scatter(points, colourBy) {
  const ratio = window.devicePixelRatio || 1;
  const canvas = h("canvas", { id: "map-canvas", width: WIDTH * ratio, height: HEIGHT * ratio,
                               "aria-label": "the map: drag over a region to select it" });
  const region = h("div", { class: "map-region", hidden: true });
  const legend = h("ul", { class: "map-legend", id: "map-legend" });
  const selection = h("section", { class: "map-selection", id: "map-selection" });
  const at = (p) => [MARGIN + p.x * (WIDTH - 2 * MARGIN), MARGIN + p.y * (HEIGHT - 2 * MARGIN)];
  const group = (p) => (colourBy() === "dataset" ? p.dataset : p.labels[0] || "(no label)");

  function redraw() {
    const context = canvas.getContext("2d");
    context.setTransform(ratio, 0, 0, ratio, 0, 0);
    context.clearRect(0, 0, WIDTH, HEIGHT);
    const groups = new Map();
    for (const p of points) {
      const name = group(p);
      if (!groups.has(name)) groups.set(name, []);
      groups.get(name).push(p);
    }
    const side = dot(points.length);
    for (const [name, members] of groups) {
      context.fillStyle = labelColour(name);
      for (const p of members) {
        const [x, y] = at(p);
        context.fillRect(x - side / 2, y - side / 2, side, side);
      }
    }
    const largest = [...groups].sort((a, b) => b[1].length - a[1].length);
    replace(legend, largest.slice(0, LEGEND).map(([name, members]) => h("li", {},
      h("span", { class: "swatch", style: `background: ${labelColour(name)}` }), name, " ",
      h("span", { class: "hint" }, members.length.toLocaleString()))),
    largest.length > LEGEND ? h("li", { class: "hint" }, `and ${largest.length - LEGEND} more`) : "");
  }

  // Selecting: a rectangle dragged over the canvas, in its CSS pixels.
  let from = null;
  const place = (event) => {
    const box = canvas.getBoundingClientRect();
    return [(event.clientX - box.left) * WIDTH / box.width, (event.clientY - box.top) * HEIGHT / box.height];
  };
  canvas.addEventListener("pointerdown", (event) => {
    from = place(event);
    canvas.setPointerCapture(event.pointerId);
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!from) return;
    const to = place(event);
    const box = canvas.getBoundingClientRect();
    const scale = box.width / WIDTH;
    Object.assign(region.style, { left: `${Math.min(from[0], to[0]) * scale}px`, top: `${Math.min(from[1], to[1]) * scale}px`,
                                  width: `${Math.abs(to[0] - from[0]) * scale}px`, height: `${Math.abs(to[1] - from[1]) * scale}px` });
    region.hidden = false;
  });
  canvas.addEventListener("pointerup", (event) => {
    if (!from) return;
    const to = place(event);
    const [x1, x2] = [Math.min(from[0], to[0]), Math.max(from[0], to[0])];
    const [y1, y2] = [Math.min(from[1], to[1]), Math.max(from[1], to[1])];
    from = null;
    const chosen = points.filter((p) => {
      const [x, y] = at(p);
      return x >= x1 && x <= x2 && y >= y1 && y <= y2;
    });
    showSelection(chosen);
  });

  function showSelection(chosen) {
    if (!chosen.length) {
      region.hidden = true;
      replace(selection, h("p", { class: "hint" }, "Nothing there: drag over some points."));
      return;
    }
    replace(selection,
      h("p", { class: "status", id: "map-selected" }, `${count(chosen.length, "point")} in the region` +
        (chosen.length > SHOWN ? `; the first ${SHOWN} shown` : "")),
      h("div", { class: "tiles wrap" }, chosen.slice(0, SHOWN).map((p) => tile(p.dataset, p.key, {
        box: p.box || undefined, size: 160, title: "search by this", caption: p.labels.join(", ") || p.key }))));
  }

  redraw();
  return {
    element: h("div", { class: "map" },
      h("div", { class: "map-plot" }, h("div", { class: "map-canvas" }, canvas, region), legend), selection),
    redraw,
  };
}
