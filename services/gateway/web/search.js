// The search page: weighted terms (texts, images, boxes), filters, and a grid of
// results with their boxes drawn, fetched a page at a time as the grid scrolls.

import * as api from "./api.js";
import { h, labelColour, replace, s, saveFile } from "./dom.js";
import { PAGE, commaList, describe, fromUrl, level, toRequest, toUrl, usable } from "./query.js";
import { openViewer } from "./viewer.js";

const THUMBNAIL = 256; // the size the workers render as they index (services/common/thumbnails.py)
const THUMBNAIL_WAIT_MS = 400; // the longest a page of results waits for its thumbnails
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
// Bytes of uploaded images, by name, for this tab (the URL names them; it cannot hold them).
const uploads = new Map();

export function mount(main, app) {
  let state = withUploads(fromUrl());
  let offset = 0;
  let more = false;
  let generation = 0; // a newer search makes older pages' answers stale
  let loading = false;
  const labelsSeen = new Set();

  // -- the form ---------------------------------------------------------------
  const termList = h("div", { class: "terms", id: "terms" });
  const fileInput = h("input", { type: "file", accept: "image/*", hidden: true, id: "file-input",
                                 onchange: () => fileInput.files[0] && addUpload(fileInput.files[0]) });
  const form = h("form", { class: "query", id: "query-form", onsubmit: (event) => { event.preventDefault(); run(); } },
    termList,
    h("div", { class: "query-actions" },
      h("button", { type: "submit", id: "search-button" }, "Search"),
      h("button", { type: "button", class: "quiet", id: "add-term", onclick: () => addTerm({ text: "", weight: 1 }) },
        "+ Add a term"),
      h("button", { type: "button", class: "quiet", id: "pick-image", onclick: () => fileInput.click() },
        "Search by an image…"),
      fileInput,
      h("span", { class: "hint" }, "or drop or paste an image anywhere")));

  // -- the filters --------------------------------------------------------------
  const datasetBox = h("fieldset", { class: "datasets", id: "filter-datasets" }, h("legend", {}, "Datasets"));
  const levelSelect = h("select", { id: "filter-level", onchange: () => changeFilters() },
    h("option", { value: "" }, "Automatic"), h("option", { value: "images" }, "Images"),
    h("option", { value: "objects" }, "Objects"));
  // A typed filter applies when it changes and on Enter: with a list of suggestions open,
  // Chromium's Enter picks one and the change event waits for the field to lose focus.
  const filterInput = (attributes) => h("input", {
    ...attributes, onchange: () => changeFilters(), onkeydown: (e) => e.key === "Enter" && changeFilters() });
  const labelsInput = filterInput({ id: "filter-labels", list: "labels-seen", placeholder: "bus, taxi" });
  const labelList = h("datalist", { id: "labels-seen" });
  const sourceBoxes = ["ground_truth", "prediction"].map((source) =>
    h("label", {}, h("input", { type: "checkbox", value: source, class: "filter-source",
                                onchange: () => changeFilters() }), source.replace("_", " ")));
  const areaInput = filterInput({ type: "number", min: 0, step: 100, id: "filter-area", placeholder: "px²" });
  const scoreInput = filterInput({ type: "number", min: -1, max: 1, step: 0.01, id: "filter-score",
                                   placeholder: "-1 to 1" });
  const allLabelsInput = filterInput({ id: "filter-all-labels", list: "labels-seen", placeholder: "car, dog" });
  const excludeInput = filterInput({ id: "filter-exclude-labels", list: "labels-seen", placeholder: "bus" });
  const prefixInput = filterInput({ id: "filter-key-prefix", placeholder: "cam/front/" });
  const filters = h("aside", { class: "filters", id: "filters" },
    h("h2", {}, "Filters"), datasetBox,
    h("label", {}, "Level", levelSelect),
    h("fieldset", {}, h("legend", {}, "Objects"),
      h("label", {}, "Labels", labelsInput, labelList), ...sourceBoxes,
      h("label", {}, "Smallest box area", areaInput)),
    h("fieldset", {}, h("legend", {}, "Images"),
      h("label", { title: "images with a box of every one of these labels" }, "With all of", allLabelsInput),
      h("label", { title: "images with no box of these labels (at the objects level: objects not so labelled)" },
        "Without", excludeInput),
      h("label", { title: "keys starting with this: a folder of the dataset" }, "Folder", prefixInput)),
    h("label", {}, "Lowest score", scoreInput));

  // -- the results --------------------------------------------------------------
  const status = h("p", { class: "status", id: "status", "aria-live": "polite" });
  const exportSelect = h("select", { id: "export", hidden: true, "aria-label": "export the results shown",
                                     title: "download the results shown, with their boxes",
                                     onchange: () => exportShown(exportSelect.value) },
    h("option", { value: "" }, "Export…"), h("option", { value: "jsonl" }, "JSON lines"),
    h("option", { value: "csv" }, "CSV"), h("option", { value: "coco" }, "COCO"));
  const grid = h("div", { class: "grid", id: "grid" });
  const sentinel = h("div", { class: "sentinel" });
  const results = h("section", { class: "results" }, h("div", { class: "result-bar" }, status, exportSelect), grid,
    sentinel);
  replace(main, h("div", { class: "search-page" }, form, h("div", { class: "layout" }, filters, results)));

  const observer = new IntersectionObserver((entries) => {
    if (entries.some((e) => e.isIntersecting) && more && !loading) page();
  }, { rootMargin: "600px" });
  observer.observe(sentinel);

  function withUploads(search) {
    for (const term of search.terms) {
      const ref = term.image || term.object;
      if (ref?.upload && uploads.has(ref.upload)) term.uploadData = uploads.get(ref.upload).data;
    }
    if (!search.terms.length) search.terms = [{ text: "", weight: 1 }];
    return search;
  }

  // -- terms --------------------------------------------------------------------
  function renderTerms() {
    const many = state.terms.length > 1;
    replace(termList, state.terms.map((term, index) => {
      const weight = h("input", { type: "number", step: 0.1, class: "weight", value: term.weight ?? 1,
                                  title: "weight: negative pushes results away from this term",
                                  "aria-label": `weight of term ${index + 1}`,
                                  oninput: (e) => {
                                    term.weight = Number(e.target.value) || 0;
                                    e.target.closest(".term").classList.toggle("negative", term.weight < 0);
                                  } });
      const remove = h("button", { type: "button", class: "quiet remove", "aria-label": `remove term ${index + 1}`,
                                   onclick: () => { state.terms.splice(index, 1); ensureTerm(); renderTerms(); } }, "×");
      let body;
      if (term.text !== undefined) {
        body = h("input", { type: "search", class: "text", value: term.text, autocomplete: "off",
                            placeholder: index ? "another phrase (a negative weight subtracts it)"
                                               : "Describe what you look for: a taxi waiting at a crosswalk",
                            "aria-label": `text of term ${index + 1}`,
                            oninput: (e) => { term.text = e.target.value; } });
      } else {
        body = h("span", { class: "image-term" }, termThumbnail(term),
          h("span", { class: usable(term) ? "" : "lost" },
            describe(term), usable(term) ? "" : " (uploaded in another tab: add it again)"));
      }
      return h("div", { class: `term ${term.weight < 0 ? "negative" : ""}` }, body,
        many || term.weight !== 1 ? weight : "", many || term.text === undefined ? remove : "");
    }));
  }

  function termThumbnail(term) {
    const ref = term.image || term.object;
    const img = h("img", { class: "term-image", alt: "" });
    const kept = ref.upload && uploads.get(ref.upload);
    if (kept) img.src = kept.url;
    else if (!ref.upload) {
      api.imageUrl(ref.dataset, ref.key, { size: 96, box: term.box }).then((url) => { img.src = url; }, () => {});
    }
    if (ref.upload && !kept) return img;
    const image = ref.upload ? { upload: ref.upload, data: kept.data, url: kept.url } : { ...ref };
    return h("button", { type: "button", class: "frame-button", title: "open large, to search by a box in it",
                         onclick: () => openViewer(image, { app, searchBy }) }, img);
  }

  function ensureTerm() {
    if (!state.terms.length) state.terms.push({ text: "", weight: 1 });
  }

  function addTerm(term) {
    state.terms.push(term);
    renderTerms();
    termList.querySelectorAll("input.text")[state.terms.length - 1]?.focus();
  }

  /** Searches by one term (more like this, a box), or adds it to the query with a weight. */
  function searchBy(term, mode = "replace") {
    if (mode === "replace") state.terms = [term];
    else state.terms = [...state.terms.filter(usable), term];
    renderTerms();
    run();
  }

  async function addUpload(file) {
    if (!file.type.startsWith("image/")) {
      app.showError(`${file.name || "that file"} is not an image`);
      return;
    }
    const name = `${file.name || "pasted image"}`;
    const data = await api.base64(file);
    uploads.set(name, { data, url: URL.createObjectURL(file) });
    const term = { image: { upload: name }, weight: 1, uploadData: data };
    const texts = state.terms.filter((t) => t.text !== undefined && t.text.trim());
    state.terms = texts.length ? [...state.terms.filter(usable), term] : [term];
    renderTerms();
    run();
  }

  // -- filters ------------------------------------------------------------------
  let datasetsShown = false; // until the list arrives, the URL's datasets stand
  async function loadDatasets() {
    try {
      const { datasets } = await api.datasets();
      datasetsShown = true;
      replace(datasetBox, h("legend", {}, "Datasets"), datasets.length ? datasets.map((d) =>
        h("label", {}, h("input", { type: "checkbox", class: "filter-dataset", value: d.name,
                                    checked: state.datasets.includes(d.name), onchange: () => changeFilters() }),
          d.name, h("span", { class: "count" }, d.images.toLocaleString()))) : h("p", { class: "hint" },
        "No dataset yet: drop images into the bucket, or run make demo."));
    } catch (error) {
      app.showError(error);
    }
  }

  function renderFilters() {
    levelSelect.value = state.level;
    labelsInput.value = state.labels.join(", ");
    allLabelsInput.value = state.allLabels.join(", ");
    excludeInput.value = state.excludeLabels.join(", ");
    prefixInput.value = state.keyPrefix;
    for (const box of sourceBoxes) box.querySelector("input").checked = state.sources.includes(box.querySelector("input").value);
    areaInput.value = state.minBoxArea ?? "";
    scoreInput.value = state.minScore ?? "";
    for (const input of datasetBox.querySelectorAll("input")) input.checked = state.datasets.includes(input.value);
  }

  function changeFilters() {
    const before = toUrl(state);
    if (datasetsShown) state.datasets = [...datasetBox.querySelectorAll("input:checked")].map((i) => i.value);
    state.level = levelSelect.value;
    state.labels = commaList(labelsInput.value);
    state.allLabels = commaList(allLabelsInput.value);
    state.excludeLabels = commaList(excludeInput.value);
    state.keyPrefix = prefixInput.value.trim();
    state.sources = sourceBoxes.map((b) => b.querySelector("input")).filter((i) => i.checked).map((i) => i.value);
    state.minBoxArea = areaInput.value === "" ? null : Number(areaInput.value);
    state.minScore = scoreInput.value === "" ? null : Number(scoreInput.value);
    if (toUrl(state) === before && grid.children.length) return; // Enter, then the change event: once is enough
    if (state.terms.some(usable)) run();
    else history.replaceState(null, "", toUrl(state));
  }

  // -- searching ----------------------------------------------------------------
  function run(push = true) {
    const url = toUrl(state);
    if (push && url !== location.pathname + location.search) history.pushState(null, "", url);
    offset = 0;
    more = false;
    generation += 1;
    replace(grid);
    exportSelect.hidden = true;
    if (!state.terms.some(usable)) {
      status.textContent = "";
      return;
    }
    page();
  }

  async function page() {
    const mine = generation;
    loading = true;
    status.textContent = offset ? status.textContent : "Searching…";
    const started = performance.now();
    try {
      const reply = await api.search(toRequest(state, offset));
      if (mine !== generation) return;
      app.clearError();
      if (!offset && !reply.results.length) status.textContent = "No results: try other words, or fewer filters.";
      // The page's cards are shown together once their thumbnails are decoded (or after a
      // short wait): one layout and paint instead of a grid of blanks and then another.
      for (const result of reply.results) api.thumbnail(result.dataset, result.key, { size: THUMBNAIL });
      api.sendThumbnailRequests(); // on their way while the cards are built
      const cards = reply.results.map(card);
      await Promise.race([Promise.allSettled(cards.map((c) => c.ready)), sleep(THUMBNAIL_WAIT_MS)]);
      if (mine !== generation) return;
      grid.append(...cards.map((c) => c.element));
      offset += PAGE;
      more = reply.results.length === PAGE;
      const shown = grid.children.length;
      status.textContent = `${shown}${more ? "+" : ""} result${shown === 1 ? "" : "s"} · ${level(state)} · ` +
        `search ${reply.took_ms.toFixed(0)} ms, round trip ${(performance.now() - started).toFixed(0)} ms`;
      grid.dataset.generation = String(mine);
      exportSelect.hidden = !shown;
      refreshLabels();
    } catch (error) {
      if (mine === generation) {
        status.textContent = "";
        app.showError(error);
      }
    } finally {
      if (mine === generation) loading = false;
    }
  }

  /** Downloads the results shown (up to the API's 1,000) in a format the API exports. */
  async function exportShown(format) {
    exportSelect.value = "";
    if (!format) return;
    try {
      const body = { ...toRequest(state, 0), top_k: Math.min(Math.max(grid.children.length, 1), 1000), format };
      saveFile(await api.exportResults(body), `vizsearch-results.${format === "coco" ? "json" : format}`);
    } catch (error) {
      app.showError(error);
    }
  }

  function refreshLabels() {
    replace(labelList, [...labelsSeen].sort().map((label) => h("option", { value: label })));
  }

  function card(result) {
    const objects = level(state) === "objects";
    for (const o of result.objects) labelsSeen.add(o.label);
    const img = h("img", { alt: `${result.dataset}/${result.key}`, decoding: "async" });
    const ready = api.thumbnail(result.dataset, result.key, { size: THUMBNAIL }).then((url) => {
      img.src = url;
      return img.decode();
    }).catch(() => img.classList.add("broken"));
    const open = () => openViewer({ dataset: result.dataset, key: result.key, width: result.width,
                                    height: result.height }, { app, searchBy });
    const element = h("article", { class: "card", dataset: { key: result.key, dataset: result.dataset } },
      h("button", { type: "button", class: "frame", style: `aspect-ratio: ${result.width} / ${result.height}`,
                    title: "open large: click a box, or draw one, to search by it", onclick: open },
        img, boxes(result, objects)),
      h("div", { class: "meta" },
        h("span", { class: "score", title: "cosine similarity" }, result.score.toFixed(3)),
        h("span", { class: "where", title: `${result.dataset}/${result.key}` }, result.dataset, " / ", result.key)),
      h("div", { class: "card-actions" },
        h("button", { type: "button", class: "quiet more-like-this",
                      onclick: () => searchBy({ image: { dataset: result.dataset, key: result.key }, weight: 1 }) },
          "More like this"),
        h("button", { type: "button", class: "quiet", onclick: open }, "Open")));
    return { element, ready };
  }

  function boxes(result, objects) {
    return s("svg", { class: "boxes", viewBox: `0 0 ${result.width} ${result.height}`, preserveAspectRatio: "none",
                      "aria-hidden": "true" },
      result.objects.map((o) => {
        const [x1, y1, x2, y2] = o.box;
        const colour = labelColour(o.label);
        const size = Math.max(result.width, result.height) * 0.035;
        return s("g", { class: objects ? "match" : "annotation" },
          s("rect", { x: x1, y: y1, width: x2 - x1, height: y2 - y1, stroke: colour }),
          s("text", { x: x1 + size * 0.2, y: Math.max(y1 - size * 0.25, size), "font-size": size, fill: colour },
            o.source === "prediction" && o.detector_score != null ? `${o.label} ${o.detector_score.toFixed(2)}`
                                                                   : o.label));
      }));
  }

  // -- dropping and pasting images -----------------------------------------------------
  const onPaste = (event) => {
    const file = [...(event.clipboardData?.files || [])].find((f) => f.type.startsWith("image/"));
    if (file) {
      event.preventDefault();
      addUpload(file);
    }
  };
  const onDragOver = (event) => {
    if ([...event.dataTransfer.items].some((i) => i.kind === "file")) {
      event.preventDefault();
      document.body.classList.add("dropping");
    }
  };
  const onDragLeave = (event) => {
    if (!event.relatedTarget) document.body.classList.remove("dropping");
  };
  const onDrop = (event) => {
    document.body.classList.remove("dropping");
    const file = [...event.dataTransfer.files].find((f) => f.type.startsWith("image/"));
    if (file) {
      event.preventDefault();
      addUpload(file);
    }
  };
  document.addEventListener("paste", onPaste);
  document.addEventListener("dragover", onDragOver);
  document.addEventListener("dragleave", onDragLeave);
  document.addEventListener("drop", onDrop);

  renderTerms();
  renderFilters();
  // Only the dataset boxes change when the list arrives: redrawing every filter then would
  // erase what the user typed in the meantime.
  loadDatasets();
  run(false);
  termList.querySelector("input.text")?.focus();

  return {
    reload() {
      state = withUploads(fromUrl());
      renderTerms();
      renderFilters();
      run(false);
    },
    unmount() {
      observer.disconnect();
      generation += 1;
      document.removeEventListener("paste", onPaste);
      document.removeEventListener("dragover", onDragOver);
      document.removeEventListener("dragleave", onDragLeave);
      document.removeEventListener("drop", onDrop);
    },
  };
}
