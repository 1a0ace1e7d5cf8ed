// A search as the page holds it: weighted terms and filters. It lives in the URL (so a
// search can be shared and reloaded) and becomes the API's search body.
//
// A term is {text, weight}, {image: ref, weight} or {object: ref, box, weight}, where ref
// is {dataset, key} (an indexed image) or {upload} (a local file, by name: its bytes stay
// in this tab, not in the URL).

export const PAGE = 50;

export function emptySearch() {
  return { terms: [], datasets: [], labels: [], sources: [], minBoxArea: null, minScore: null, level: "",
           allLabels: [], excludeLabels: [], keyPrefix: "" };
}

/** "a, b,,c" -> ["a", "b", "c"]: a comma-separated field or URL parameter. */
export const commaList = (text) => (text ? text.split(",").map((v) => v.trim()).filter(Boolean) : []);
const number = (text) => (text === null || text === "" || isNaN(Number(text)) ? null : Number(text));

export function fromUrl(search = location.search) {
  const params = new URLSearchParams(search);
  const state = emptySearch();
  try {
    const terms = JSON.parse(params.get("q") || "[]");
    state.terms = Array.isArray(terms) ? terms.filter((t) => t && typeof t === "object")
      .map((t) => ({ ...t, weight: typeof t.weight === "number" ? t.weight : 1 })) : [];
  } catch {
    state.terms = [];
  }
  state.datasets = commaList(params.get("datasets"));
  state.labels = commaList(params.get("labels"));
  state.sources = commaList(params.get("sources"));
  state.minBoxArea = number(params.get("min_box_area"));
  state.minScore = number(params.get("min_score"));
  state.level = params.get("level") || "";
  state.allLabels = commaList(params.get("all_labels"));
  state.excludeLabels = commaList(params.get("exclude_labels"));
  state.keyPrefix = params.get("key_prefix") || "";
  return state;
}

export function toUrl(state) {
  const params = new URLSearchParams();
  const terms = state.terms.map(({ uploadData, ...term }) => term);
  if (terms.length) params.set("q", JSON.stringify(terms));
  if (state.datasets.length) params.set("datasets", state.datasets.join(","));
  if (state.labels.length) params.set("labels", state.labels.join(","));
  if (state.sources.length) params.set("sources", state.sources.join(","));
  if (state.minBoxArea !== null) params.set("min_box_area", state.minBoxArea);
  if (state.minScore !== null) params.set("min_score", state.minScore);
  if (state.level) params.set("level", state.level);
  if (state.allLabels.length) params.set("all_labels", state.allLabels.join(","));
  if (state.excludeLabels.length) params.set("exclude_labels", state.excludeLabels.join(","));
  if (state.keyPrefix) params.set("key_prefix", state.keyPrefix);
  return params.size ? `/?${params}` : "/";
}

/** Whether a term can be searched: uploads need their bytes, which a reload loses. */
export function usable(term) {
  const ref = term.image || term.object;
  return term.text ? term.text.trim() !== "" : Boolean(ref && (ref.dataset || term.uploadData));
}

function apiTerm(term) {
  if (term.text !== undefined) return { text: term.text };
  const ref = term.image || term.object;
  const image = ref.upload ? { data: term.uploadData } : { dataset: ref.dataset, key: ref.key };
  if (term.object) return { object: { ...image, box: term.box } };
  return { image };
}

/** The API's search body for one page. */
export function toRequest(state, offset = 0) {
  const terms = state.terms.filter(usable);
  const query = terms.length === 1 && (terms[0].weight ?? 1) === 1
    ? apiTerm(terms[0])
    : { all: terms.map((t) => ({ query: apiTerm(t), weight: t.weight ?? 1 })) };
  const body = { query, top_k: PAGE, offset };
  if (state.datasets.length) body.datasets = state.datasets;
  if (state.labels.length) body.labels = state.labels;
  if (state.sources.length) body.sources = state.sources;
  if (state.minBoxArea !== null) body.min_box_area = state.minBoxArea;
  if (state.minScore !== null) body.min_score = state.minScore;
  if (state.allLabels.length) body.all_labels = state.allLabels;
  if (state.excludeLabels.length) body.exclude_labels = state.excludeLabels;
  if (state.keyPrefix) body.key_prefix = state.keyPrefix;
  body.level = level(state);
  return body;
}

/** The level searched: the one chosen, else objects for an object query or object filters. */
export function level(state) {
  if (state.level) return state.level;
  const objectFilters = state.labels.length || state.sources.length || state.minBoxArea !== null;
  return objectFilters || state.terms.some((t) => t.object) ? "objects" : "images";
}

/** The term's one-line description. */
export function describe(term) {
  if (term.text !== undefined) return term.text;
  const ref = term.image || term.object;
  const name = ref.upload ? `uploaded ${ref.upload}` : `${ref.dataset}/${ref.key}`;
  return term.object ? `${name} [${term.box.map((v) => Math.round(v)).join(", ")}]` : name;
}
