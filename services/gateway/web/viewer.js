// An image, large, with its annotated boxes: click a box to search by it, or draw a new
// box (and drag its corners or body to adjust it) to search by that region. Mouse, touch
// and pen alike (pointer events); from the keyboard, N draws a box in the middle, the
// arrow keys move it, Shift with them resizes it, Enter searches, Escape closes.

import * as api from "./api.js";
import { h, labelColour, replace, s } from "./dom.js";

const LARGE = 1024;
const MIN_SIDE = 4; // pixels of the image: smaller drags are clicks
const HANDLES = ["nw", "ne", "sw", "se"];

/**
 * image: {dataset, key, width, height} (an indexed image) or {upload, data, url} (a local file).
 * context: {app, searchBy(term, mode)} where mode is "replace", "add" or "exclude".
 */
export function openViewer(image, context) {
  const dialog = h("dialog", { class: "viewer", id: "viewer", "aria-label": "image viewer" });
  document.body.append(dialog);
  let width = image.width || 0;
  let height = image.height || 0;
  let annotations = [];
  let box = null; // [x1, y1, x2, y2] in the image's pixels: the region to search by
  let drag = null;

  const title = image.upload ? `uploaded ${image.upload}` : `${image.dataset} / ${image.key}`;
  const img = h("img", { class: "large", alt: title, draggable: "false" });
  const overlay = s("svg", { class: "overlay", tabindex: 0, role: "application",
                             "aria-label": "draw a box: drag with the pointer, or press N" });
  const regionLabel = h("span", { class: "region", id: "region" }, "no region yet");
  const searchButton = h("button", { type: "button", id: "search-region", disabled: true, onclick: () => use("replace") },
    "Search this region");
  const addButton = h("button", { type: "button", class: "quiet", id: "add-region", disabled: true,
                                  onclick: () => use("add") }, "Add to the query");
  const excludeButton = h("button", { type: "button", class: "quiet", id: "exclude-region", disabled: true,
                                      onclick: () => use("exclude") }, "Subtract from the query");
  replace(dialog,
    h("header", {}, h("h2", {}, title),
      h("button", { type: "button", class: "quiet close", "aria-label": "close", onclick: close }, "×")),
    h("div", { class: "stage" }, h("div", { class: "canvas" }, img, overlay)),
    h("footer", {},
      h("p", { class: "hint" }, "Click a box, or drag on the image to draw one; drag its corners to adjust it. ",
        "Keys: N new box, arrows move it, Shift+arrows resize it, Enter searches."),
      h("div", { class: "viewer-actions" }, regionLabel, searchButton, addButton, excludeButton,
        h("button", { type: "button", class: "quiet", id: "more-like-image", onclick: () => use("image") },
          "More like the whole image"))));

  dialog.addEventListener("close", () => dialog.remove());
  dialog.addEventListener("keydown", onKey);
  overlay.addEventListener("pointerdown", onPointerDown);
  overlay.addEventListener("pointermove", onPointerMove);
  overlay.addEventListener("pointerup", onPointerUp);
  overlay.addEventListener("pointercancel", () => { drag = null; });
  dialog.showModal();
  load();

  async function load() {
    try {
      if (image.upload) {
        img.src = image.url;
        await img.decode();
        width = img.naturalWidth; // upright: the browser applies EXIF orientation, as the embedder does
        height = img.naturalHeight;
      } else {
        const [url, indexed] = await Promise.all([api.imageUrl(image.dataset, image.key, { size: LARGE }),
                                                  indexedImage(image.dataset, image.key)]);
        img.src = url;
        annotations = indexed?.objects || [];
        width = width || indexed?.width || 0;
        height = height || indexed?.height || 0;
        if (!width) {
          await img.decode();
          [width, height] = [img.naturalWidth, img.naturalHeight]; // not indexed: the thumbnail's proportions
        }
      }
      overlay.setAttribute("viewBox", `0 0 ${width} ${height}`);
      img.style.aspectRatio = `${width} / ${height}`;
      draw();
      dialog.dataset.ready = "true";
    } catch (error) {
      context.app.showError(error);
    }
  }

  function close() {
    dialog.close();
  }

  // -- what is drawn --------------------------------------------------------------
  function draw() {
    const size = Math.max(width, height) * 0.025;
    const handle = Math.max(width, height) * 0.012;
    replace(overlay,
      annotations.map((a, index) => {
        const [x1, y1, x2, y2] = a.box;
        const colour = labelColour(a.label);
        return s("g", { class: "annotation", dataset: { index } },
          s("rect", { x: x1, y: y1, width: x2 - x1, height: y2 - y1, stroke: colour }),
          s("text", { x: x1 + size * 0.2, y: Math.max(y1 - size * 0.25, size), "font-size": size, fill: colour },
            a.label));
      }),
      box && s("g", { class: "drawn" },
        s("rect", { x: box[0], y: box[1], width: box[2] - box[0], height: box[3] - box[1], class: "body" }),
        HANDLES.map((corner) => s("rect", { class: "handle", dataset: { corner },
                                            x: cornerX(corner) - handle, y: cornerY(corner) - handle,
                                            width: handle * 2, height: handle * 2 }))));
    const ready = Boolean(box);
    for (const button of [searchButton, addButton, excludeButton]) button.disabled = !ready;
    regionLabel.textContent = ready ? `region [${box.map((v) => Math.round(v)).join(", ")}]` : "no region yet";
    overlay.dataset.box = ready ? box.map((v) => Math.round(v)).join(",") : "";
  }

  const cornerX = (corner) => (corner.endsWith("w") ? box[0] : box[2]);
  const cornerY = (corner) => (corner.startsWith("n") ? box[1] : box[3]);

  function point(event) {
    const matrix = overlay.getScreenCTM().inverse();
    const p = new DOMPoint(event.clientX, event.clientY).matrixTransform(matrix);
    return [Math.min(Math.max(p.x, 0), width), Math.min(Math.max(p.y, 0), height)];
  }

  function setBox(x1, y1, x2, y2) {
    box = [Math.min(x1, x2), Math.min(y1, y2), Math.max(x1, x2), Math.max(y1, y2)].map(
      (v, i) => Math.min(Math.max(v, 0), i % 2 ? height : width));
    draw();
  }

  // -- pointer: draw, move, resize, or pick an annotation ----------------------------
  function onPointerDown(event) {
    if (!width) return;
    overlay.setPointerCapture(event.pointerId);
    const [x, y] = point(event);
    const corner = event.target.dataset?.corner;
    if (corner && box) {
      // Resize from this corner: the opposite one stays put.
      drag = { mode: "resize", fixed: [corner.endsWith("w") ? box[2] : box[0], corner.startsWith("n") ? box[3] : box[1]] };
    } else if (box && event.target.classList.contains("body")) {
      drag = { mode: "move", from: [x, y], start: [...box] };
    } else {
      drag = { mode: "draw", from: [x, y], target: event.target.closest?.("g.annotation") };
    }
    event.preventDefault();
  }

  function onPointerMove(event) {
    if (!drag) return;
    const [x, y] = point(event);
    if (drag.mode === "resize") setBox(drag.fixed[0], drag.fixed[1], x, y);
    else if (drag.mode === "move") {
      const [w, h2] = [drag.start[2] - drag.start[0], drag.start[3] - drag.start[1]];
      const nx = Math.min(Math.max(drag.start[0] + x - drag.from[0], 0), width - w);
      const ny = Math.min(Math.max(drag.start[1] + y - drag.from[1], 0), height - h2);
      setBox(nx, ny, nx + w, ny + h2);
    } else if (Math.abs(x - drag.from[0]) >= MIN_SIDE || Math.abs(y - drag.from[1]) >= MIN_SIDE) {
      drag.drawing = true;
      setBox(drag.from[0], drag.from[1], x, y);
    }
  }

  function onPointerUp(event) {
    if (!drag) return;
    const done = drag;
    drag = null;
    if (done.mode === "draw" && !done.drawing) {
      // A click: on an annotation, it becomes the region (exactly its box: search reuses its vector).
      const picked = done.target && annotations[Number(done.target.dataset.index)];
      if (picked) setBox(...picked.box);
    }
    overlay.focus();
  }

  // -- keyboard -------------------------------------------------------------------
  function onKey(event) {
    if (event.target.tagName === "BUTTON" && event.key === "Enter") return;
    const step = Math.max(width, height) * 0.01 * (event.altKey ? 0.2 : 1);
    const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
    if (event.key === "n" || event.key === "N") {
      setBox(width * 0.375, height * 0.375, width * 0.625, height * 0.625);
    } else if (moves[event.key] && box) {
      const [dx, dy] = moves[event.key];
      if (event.shiftKey) setBox(box[0], box[1], Math.max(box[0] + MIN_SIDE, box[2] + dx), Math.max(box[1] + MIN_SIDE, box[3] + dy));
      else {
        const cx = Math.min(Math.max(dx, -box[0]), width - box[2]);
        const cy = Math.min(Math.max(dy, -box[1]), height - box[3]);
        setBox(box[0] + cx, box[1] + cy, box[2] + cx, box[3] + cy);
      }
    } else if (event.key === "Enter" && box) {
      use("replace");
    } else if ((event.key === "Delete" || event.key === "Backspace") && box) {
      box = null;
      draw();
    } else {
      return;
    }
    event.preventDefault();
  }

  // -- searching ------------------------------------------------------------------
  function use(mode) {
    const ref = image.upload ? { upload: image.upload } : { dataset: image.dataset, key: image.key };
    const term = mode === "image" ? { image: ref, weight: 1 } : { object: ref, box: box.map((v) => Math.round(v * 100) / 100), weight: 1 };
    if (image.upload) term.uploadData = image.data;
    if (mode === "exclude") term.weight = -0.5;
    close();
    context.searchBy(term, mode === "image" ? "replace" : mode === "exclude" ? "add" : mode);
  }
}

/** An indexed image as search returns it, with its size and annotated boxes: a search by the
 * image itself finds it first (its stored vector is reused: nothing is embedded). */
async function indexedImage(dataset, key) {
  const reply = await api.search({ query: { image: { dataset, key } }, datasets: [dataset], top_k: 1, level: "images" });
  return reply.results.find((r) => r.dataset === dataset && r.key === key);
}
