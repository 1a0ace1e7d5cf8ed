// The page's shell: which view the URL names (search, or ?view=datasets, duplicates, suspects or map), the API key
// dialog (shown when the gateway answers 401), and errors shown as the API states them.

import * as api from "./api.js";
import * as datasetsView from "./datasets.js";
import * as duplicatesView from "./duplicates.js";
import * as mapView from "./map.js";
import * as suspectsView from "./suspects.js";
import * as searchView from "./search.js";

const main = document.getElementById("main");
const errorBox = document.getElementById("error");
const keyDialog = document.getElementById("key-dialog");
const keyInput = document.getElementById("key-input");
const keyError = document.getElementById("key-error");
const keyButton = document.getElementById("key-button");
const VIEWS = { search: searchView, datasets: datasetsView, duplicates: duplicatesView, suspects: suspectsView,
                map: mapView };
let current = null;
let currentName = "";

const app = {
  showError(error) {
    if (error?.name === "AbortError" || error?.status === 401) return; // 401: the key dialog asks
    const text = error instanceof api.ApiError
      ? `${error.title ? `${error.title}: ` : ""}${error.message}`
      : `${error?.message || error}`;
    document.getElementById("error-text").textContent = text;
    errorBox.hidden = false;
  },
  clearError() {
    errorBox.hidden = true;
  },
};

function route() {
  const view = new URLSearchParams(location.search).get("view");
  const name = Object.hasOwn(VIEWS, view ?? "") ? view : "search";
  for (const link of document.querySelectorAll("nav a[data-nav]")) {
    link.toggleAttribute("aria-current", link.dataset.nav === name);
  }
  if (current && name === currentName) {
    current.reload();
    return;
  }
  current?.unmount();
  app.clearError();
  currentName = name;
  current = VIEWS[name].mount(main, app);
}

document.addEventListener("click", (event) => {
  const link = event.target.closest("a[data-nav]");
  if (!link || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
  event.preventDefault();
  history.pushState(null, "", link.getAttribute("href"));
  route();
});
window.addEventListener("popstate", route);
document.getElementById("error-close").addEventListener("click", () => app.clearError());

// -- the API key ----------------------------------------------------------------------
function askForKey(reason) {
  if (keyDialog.open) return;
  keyError.hidden = !reason;
  keyError.textContent = reason || "";
  keyInput.value = "";
  keyDialog.showModal();
}

api.onUnauthorized((error) => askForKey(api.apiKey() ? `That key was refused: ${error.message}` : ""));
document.getElementById("key-form").addEventListener("submit", () => {
  api.setApiKey(keyInput.value.trim());
  keyButton.hidden = false;
  current?.unmount();
  current = null;
  route();
});
document.getElementById("key-forget").addEventListener("click", () => {
  api.setApiKey("");
  keyDialog.close();
  current?.unmount();
  current = null;
  route();
});
keyButton.addEventListener("click", () => askForKey(""));
keyButton.hidden = !api.apiKey();

route();
