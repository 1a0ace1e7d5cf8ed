"""The web app, driven in a real headless Chromium (Debian's, through Playwright) against the
test stack's gateway, keys on. Each state tested is saved as a screenshot under
.run/test-artifacts/screenshots (or $VIZSEARCH_TEST_ARTIFACTS)."""

import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from tests.conftest import TEST_KEYS
from model import demo_data
from vizsearch.client import Client

pytestmark = pytest.mark.stack
CHROMIUM = "/usr/bin/chromium"
DATASET = "webapp"
ARTIFACTS = Path(os.environ.get("VIZSEARCH_TEST_ARTIFACTS", Path(__file__).parents[1] / ".run" / "test-artifacts"))
ADMIN_KEY = TEST_KEYS["admin"][0]


IMAGES = 60  # more than a page of 50: the grid fetches the rest as it scrolls


@dataclass
class Drop:
    folder: Path
    coco: dict


@pytest.fixture(scope="module")
def dataset(stack, tmp_path_factory) -> Drop:
    """Generated street scenes with their boxes, indexed."""
    folder = tmp_path_factory.mktemp("webapp-data")
    coco = demo_data.generate(folder, IMAGES, seed=21)
    with Client(gateway(stack), ADMIN_KEY) as client:
        client.upload(folder, DATASET, include=lambda key: not key.endswith("captions.json"))
        job = client.scan(DATASET)
        deadline = time.monotonic() + 240
        while (job := client.job(job.id)).state in ("queued", "running"):
            assert time.monotonic() < deadline, "the web app's dataset was not indexed"
            time.sleep(0.5)
        assert job.state == "succeeded", job
    return Drop(folder, coco)


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: make setup installs Debian's chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def page(browser, stack, dataset) -> Page:
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, base_url=gateway(stack))
    page = context.new_page()
    yield page
    context.close()


def gateway(stack) -> str:
    return f"http://127.0.0.1:{stack.settings.gateway_http_port}"


def with_key(page: Page, key: str = ADMIN_KEY) -> Page:
    page.add_init_script(f"sessionStorage.setItem('vizsearch.apiKey', {json.dumps(key)})")
    return page


def screenshot(page: Page, name: str) -> None:
    folder = ARTIFACTS / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"))


def search_url(terms: list[dict], **filters) -> str:
    params = [f"q={quote(json.dumps(terms))}", f"datasets={DATASET}"]
    params += [f"{k}={quote(str(v))}" for k, v in filters.items()]
    return "/?" + "&".join(params)


def wait_for_results(page: Page, at_least: int = 1) -> list[str]:
    """Waits until the grid shows results with every thumbnail painted; returns their keys."""
    page.wait_for_function(
        """n => {
          const cards = [...document.querySelectorAll('#grid .card')];
          return cards.length >= n && cards.every(c => { const i = c.querySelector('img'); return i.complete && i.naturalWidth > 0; });
        }""", arg=at_least, timeout=60_000)
    return page.eval_on_selector_all("#grid .card", "cards => cards.map(c => c.dataset.key)")


def first_box(drop: Drop, label: str) -> tuple[str, list[float], int, int]:
    coco = drop.coco
    category = next(c["id"] for c in coco["categories"] if c["name"] == label)
    annotation = next(a for a in coco["annotations"] if a["category_id"] == category)
    image = next(i for i in coco["images"] if i["id"] == annotation["image_id"])
    x, y, w, h = annotation["bbox"]
    return image["file_name"], [x, y, x + w, y + h], image["width"], image["height"]


def test_a_text_search_shows_thumbnails_with_their_boxes(page):
    with_key(page).goto(f"/?datasets={DATASET}")
    page.fill("#terms input.text", "a bus on a road")
    page.press("#terms input.text", "Enter")
    keys = wait_for_results(page, 20)
    assert len(keys) >= 20 and len(set(keys)) == len(keys)
    first = page.locator("#grid .card").first
    assert float(first.locator(".score").inner_text()) > 0
    assert DATASET in first.locator(".where").inner_text()
    assert page.locator("#grid .card svg.boxes rect").count() > 20, "annotated boxes are drawn"
    assert "q=" in page.url and "bus" in page.url
    screenshot(page, "01-text-search")
    assert len(keys) == 50 and "50+ results" in page.inner_text("#status")
    # Scrolling to the end fetches the next page (offset 50): the rest of the dataset.
    page.mouse.wheel(0, 20_000)
    keys = wait_for_results(page, IMAGES)
    assert len(set(keys)) == IMAGES and f"{IMAGES} results" in page.inner_text("#status")


def test_a_drawn_box_searches_by_that_region_and_finds_its_image_first(page, dataset):
    key, box, width, height = first_box(dataset, "bus")
    with_key(page).goto(search_url([{"image": {"dataset": DATASET, "key": key}}]))
    assert wait_for_results(page)[0] == key
    page.locator("#grid .card").first.locator(".frame").click()
    page.wait_for_selector("#viewer[data-ready]")
    screenshot(page, "02-viewer-with-annotations")
    overlay = page.locator("#viewer .overlay").bounding_box()
    scale_x, scale_y = overlay["width"] / width, overlay["height"] / height
    # A box drawn by hand around the bus: a little off its annotation, as a person draws.
    page.mouse.move(overlay["x"] + (box[0] + 3) * scale_x, overlay["y"] + (box[1] + 2) * scale_y)
    page.mouse.down()
    page.mouse.move(overlay["x"] + (box[2] - 2) * scale_x, overlay["y"] + (box[3] - 3) * scale_y, steps=10)
    page.mouse.up()
    drawn = [float(v) for v in page.get_attribute("#viewer .overlay", "data-box").split(",")]
    assert all(abs(a - b) < 8 for a, b in zip(drawn, box)), (drawn, box)
    # Adjust it: drag its bottom-right corner a little further out.
    handle = page.locator("#viewer .handle[data-corner=se]").bounding_box()
    page.mouse.move(handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2)
    page.mouse.down()
    page.mouse.move(handle["x"] + handle["width"] / 2 + 2 * scale_x, handle["y"] + handle["height"] / 2 + 2 * scale_y,
                    steps=4)
    page.mouse.up()
    adjusted = [float(v) for v in page.get_attribute("#viewer .overlay", "data-box").split(",")]
    assert adjusted[:2] == drawn[:2] and adjusted[2] > drawn[2] and adjusted[3] > drawn[3]
    screenshot(page, "03-viewer-drawn-box")
    page.click("#search-region")
    keys = wait_for_results(page)
    assert keys[0] == key, "the region's own image comes first"
    assert "objects" in page.inner_text("#status")
    assert page.locator("#grid .card").first.locator("svg.boxes .match").count() >= 1, "matching boxes highlighted"
    screenshot(page, "04-object-search-by-drawn-box")


def test_a_box_drawn_with_a_finger_searches_by_that_region(browser, stack, dataset):
    key, box, width, height = first_box(dataset, "truck")
    context = browser.new_context(viewport={"width": 900, "height": 1000}, base_url=gateway(stack), has_touch=True,
                                  is_mobile=True)
    try:
        page = with_key(context.new_page())
        page.goto(search_url([{"image": {"dataset": DATASET, "key": key}}]))
        wait_for_results(page)
        page.locator("#grid .card").first.locator(".frame").tap()
        page.wait_for_selector("#viewer[data-ready]")
        overlay = page.locator("#viewer .overlay").bounding_box()
        sx, sy = overlay["width"] / width, overlay["height"] / height
        touch = context.new_cdp_session(page)

        def finger(kind, x, y):
            points = [] if kind == "touchEnd" else [{"x": overlay["x"] + x * sx, "y": overlay["y"] + y * sy}]
            touch.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": points})

        finger("touchStart", box[0], box[1])
        for step in range(1, 9):
            finger("touchMove", box[0] + (box[2] - box[0]) * step / 8, box[1] + (box[3] - box[1]) * step / 8)
        finger("touchEnd", 0, 0)
        drawn = [float(v) for v in page.get_attribute("#viewer .overlay", "data-box").split(",")]
        assert all(abs(a - b) < 8 for a, b in zip(drawn, box)), (drawn, box)
        screenshot(page, "03b-viewer-box-drawn-by-touch")
        page.tap("#search-region")
        assert wait_for_results(page)[0] == key
    finally:
        context.close()


def test_clicking_an_annotated_box_searches_by_it_and_the_keyboard_draws_too(page, dataset):
    key, box, _, _ = first_box(dataset, "taxi")
    with_key(page).goto(search_url([{"image": {"dataset": DATASET, "key": key}}]))
    wait_for_results(page)
    page.locator("#grid .card").first.locator(".frame").click()
    page.wait_for_selector("#viewer[data-ready]")
    page.locator("#viewer .annotation:has(text:text-is('taxi')) rect").first.click()
    assert [round(float(v)) for v in page.get_attribute("#viewer .overlay", "data-box").split(",")] == \
        [round(v) for v in box]
    page.keyboard.press("Enter")
    keys = wait_for_results(page)
    assert keys[0] == key
    assert page.locator("#grid .card").first.locator(".score").inner_text() == "1.000", "its stored vector"
    # Keyboard only: N draws a box, arrows move it, Shift+arrows resize it, Enter searches.
    page.locator("#grid .card").nth(1).locator(".frame").click()
    page.wait_for_selector("#viewer[data-ready]")
    page.focus("#viewer .overlay")
    page.keyboard.press("n")
    start = page.get_attribute("#viewer .overlay", "data-box")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Shift+ArrowDown")
    moved = page.get_attribute("#viewer .overlay", "data-box")
    assert start and moved != start
    page.keyboard.press("Enter")
    assert wait_for_results(page)


def test_a_local_image_picked_searches_by_its_content(page, dataset):
    key, _, _, _ = first_box(dataset, "dog")
    with_key(page).goto(f"/?datasets={DATASET}")
    page.set_input_files("#file-input", str(dataset.folder / key))
    keys = wait_for_results(page)
    assert keys[0] == key, "the same picture, uploaded, finds its indexed copy first"
    assert "uploaded" in page.inner_text("#terms")
    screenshot(page, "05-search-by-uploaded-image")
    # Opened large from its query chip, a box drawn on the upload searches objects.
    page.click("#terms .frame-button")
    page.wait_for_selector("#viewer[data-ready]")
    page.focus("#viewer .overlay")
    page.keyboard.press("n")
    page.keyboard.press("Enter")
    assert wait_for_results(page) and "objects" in page.inner_text("#status")


def test_more_like_this_searches_by_the_result(page):
    with_key(page).goto(search_url([{"text": "a dog"}]))
    keys = wait_for_results(page, 5)
    page.locator("#grid .card").nth(3).locator(".more-like-this").click()
    page.wait_for_function("k => document.querySelector('#grid .card')?.dataset.key === k", arg=keys[3])
    similar = wait_for_results(page)
    assert similar[0] == keys[3] and '"image"' in page.evaluate("new URLSearchParams(location.search).get('q')")
    screenshot(page, "06-more-like-this")


def test_a_negative_term_changes_the_ranking(page):
    with_key(page).goto(search_url([{"text": "a taxi on a road"}]))
    before = wait_for_results(page, 10)[:10]
    page.click("#add-term")
    page.locator("#terms input.text").nth(1).fill("at night")
    page.locator("#terms .weight").nth(1).fill("-1")
    page.locator("#terms input.text").nth(1).press("Enter")
    page.wait_for_function("() => new URLSearchParams(location.search).get('q').includes('at night')")
    after = wait_for_results(page, 10)[:10]
    assert after != before
    terms = json.loads(page.evaluate("new URLSearchParams(location.search).get('q')"))
    assert terms == [{"text": "a taxi on a road", "weight": 1}, {"text": "at night", "weight": -1}]
    assert page.locator("#terms .term.negative").count() == 1
    screenshot(page, "07-negative-term")


def type_and_apply(page, field: str, value: str) -> None:
    """Types into a field and presses Enter, then leaves it: if Chromium's suggestion list
    took the Enter, the field applies as it loses focus (a flake seen on slow machines)."""
    page.fill(field, value)
    page.press(field, "Enter")
    page.locator(field).blur()


def test_filters_narrow_the_results_and_survive_a_reload(page):
    with_key(page).goto(search_url([{"text": "a vehicle on a road"}]))
    everything = wait_for_results(page, 10)
    type_and_apply(page, "#filter-labels", "bus")
    page.wait_for_function("() => location.search.includes('labels=bus')")
    buses = wait_for_results(page)
    assert len(buses) < len(everything)
    labels = page.eval_on_selector_all("#grid svg.boxes text", "ts => ts.map(t => t.textContent)")
    assert labels and set(labels) == {"bus"}, "at the objects level, only the matching boxes"
    assert "objects" in page.inner_text("#status")
    screenshot(page, "08-filtered-by-label")
    page.reload()
    assert wait_for_results(page) == buses
    assert page.input_value("#filter-labels") == "bus"
    assert page.is_checked(f"#filter-datasets input[value={DATASET}]")


def image_labels(drop: Drop) -> dict[str, set[str]]:
    names = {c["id"]: c["name"] for c in drop.coco["categories"]}
    files = {i["id"]: i["file_name"] for i in drop.coco["images"]}
    labels = {key: set() for key in files.values()}
    for a in drop.coco["annotations"]:
        labels[files[a["image_id"]]].add(names[a["category_id"]])
    return labels


def test_a_filter_changed_before_the_dataset_list_arrives_keeps_the_urls_datasets(page):
    # Listing datasets counts each one's entries in Milvus: on a busy stack it can take
    # seconds, and a filter changed meanwhile must not drop the datasets the URL named.
    held = []
    page.route("**/v1/datasets", lambda route: held.append(route))  # never answered
    with_key(page).goto(search_url([{"text": "a vehicle on a road"}]))
    wait_for_results(page, 10)
    type_and_apply(page, "#filter-labels", "bus")
    page.wait_for_function("() => location.search.includes('labels=bus')")
    assert f"datasets={DATASET}" in page.url
    assert {k.split("/")[0] for k in wait_for_results(page)} == {"images"}, "still this dataset's images"
    assert held, "the dataset list was asked for"


def test_image_filters_keep_images_with_every_label_and_none_of_others(page, dataset):
    labels = image_labels(dataset)
    both = sorted({k for k, found in labels.items() if {"taxi", "dog"} <= found})
    assert 0 < len(both) < 50, "the generated data has a few images with a taxi and a dog"
    with_key(page).goto(search_url([{"text": "a street"}], level="images"))
    wait_for_results(page, 20)
    type_and_apply(page, "#filter-all-labels", "taxi, dog")
    page.wait_for_function("() => location.search.includes('all_labels=taxi')")
    page.wait_for_function("n => document.querySelectorAll('#grid .card').length === n", arg=len(both))
    assert sorted(wait_for_results(page, len(both))) == both
    type_and_apply(page, "#filter-exclude-labels", "bus")
    without_bus = sorted(k for k in both if "bus" not in labels[k])
    page.wait_for_function("() => location.search.includes('exclude_labels=bus')")
    page.wait_for_function("n => document.querySelectorAll('#grid .card').length === n", arg=len(without_bus))
    assert sorted(page.eval_on_selector_all("#grid .card", "cards => cards.map(c => c.dataset.key)")) == without_bus
    screenshot(page, "14-images-with-a-taxi-and-a-dog-no-bus")
    page.reload()
    assert page.input_value("#filter-all-labels") == "taxi, dog" and page.input_value("#filter-exclude-labels") == "bus"


def test_the_results_shown_export_as_a_coco_file(page, dataset):
    with_key(page).goto(search_url([{"text": "a bus on a road"}], level="images"))
    wait_for_results(page, 20)
    assert page.is_visible("#export")
    with page.expect_download() as download:
        page.select_option("#export", "coco")
    assert download.value.suggested_filename == "vizsearch-results.json"
    coco = json.loads(Path(download.value.path()).read_text())
    keys = page.eval_on_selector_all("#grid .card", "cards => cards.map(c => c.dataset.key)")
    exported = [i["file_name"] for i in coco["images"]]
    assert len(exported) >= 20 and exported == keys[:len(exported)], "the cards shown, in their order"
    labelled = {c["id"] for c in coco["categories"]}
    assert coco["annotations"] and all(a["category_id"] in labelled for a in coco["annotations"])
    assert page.input_value("#export") == "", "ready for another export"


def test_an_api_error_is_shown_as_its_detail(page):
    with_key(page).goto(search_url([{"text": "a bus"}], level="images", labels="bus"))
    expect(page.locator("#error")).to_be_visible()
    assert "filters.labels applies to object entries: set level to objects" in page.inner_text("#error-text")
    screenshot(page, "09-api-error")


def test_the_datasets_page_shows_a_running_job_moving(page, stack, tmp_path):
    with_key(page).goto("/?view=datasets")
    page.wait_for_selector(".dataset")
    folder = tmp_path / "drop"
    # Enough images that the job runs for several of the page's refreshes even where it
    # is fast: 240 were indexed between two refreshes on an idle machine.
    demo_data.generate(folder, 600, seed=33)
    with Client(gateway(stack), ADMIN_KEY) as client:
        client.upload(folder / "images", "webapp-progress")
    # Nobody asks: the reconciler finds the drop and indexes it; the page shows it happen.
    card = page.locator(".dataset[data-name='webapp-progress']")
    row = card.locator("tr.job").first
    seen, deadline = [], time.monotonic() + 600  # minutes on a slow 2-core machine
    while time.monotonic() < deadline:
        if row.count():
            seen.append((row.get_attribute("data-state"), float(row.locator("progress").get_attribute("value"))))
            if seen[-1][0] == "running" and 0 < seen[-1][1] < 1 and not any(s == "running" for s, _ in seen[:-1]):
                screenshot(page, "10-datasets-job-running")
            if seen[-1][0] == "succeeded":
                break
        time.sleep(0.2)
    running = sorted({value for state, value in seen if state == "running" and value > 0})
    assert len(running) >= 2, f"progress moved: {seen}"
    assert seen[-1] == ("succeeded", 1.0)
    expect(card.locator("dd.images")).to_have_text("600")
    assert re.search(r"\d+(\.\d)? images/s", row.locator(".rate").inner_text())
    screenshot(page, "11-datasets-job-done")


def test_with_keys_on_the_page_asks_for_one_and_a_scoped_key_sees_only_its_datasets(page):
    page.goto("/?view=datasets")
    expect(page.locator("#key-dialog")).to_be_visible()
    screenshot(page, "12-asks-for-a-key")
    page.fill("#key-input", "not-a-key")
    page.click("#key-submit")
    expect(page.locator("#key-error")).to_contain_text("That key was refused: unknown API key")
    page.fill("#key-input", TEST_KEYS["street-only"][0])
    page.click("#key-submit")
    expect(page.locator("#key-dialog")).to_be_hidden()
    page.wait_for_selector(".dataset-list .dataset, .dataset-list .status:text('No dataset yet.')")
    names = page.eval_on_selector_all(".dataset", "ds => ds.map(d => d.dataset.name)")
    assert set(names) <= {"street"} and DATASET not in names
    assert page.evaluate("sessionStorage.getItem('vizsearch.apiKey')") == TEST_KEYS["street-only"][0]
    assert page.evaluate("localStorage.length") == 0, "nothing kept beyond the session"
    page.goto("/")
    datasets = page.eval_on_selector_all("#filter-datasets input", "is => is.map(i => i.value)")
    assert DATASET not in datasets
    screenshot(page, "13-scoped-key")


def test_the_duplicates_page_runs_a_job_and_shows_a_leak_side_by_side(page, stack, dataset):
    copied = "images/00003.jpg"
    with Client(gateway(stack), ADMIN_KEY) as client:
        client.upload(dataset.folder / "images", "webapp-copies", include=lambda key: key == Path(copied).name)
        job = client.scan("webapp-copies")
        while (job := client.job(job.id)).state in ("queued", "running"):
            time.sleep(0.3)
        assert (job.state, job.done) == ("succeeded", 1), job
    with_key(page).goto("/?view=datasets")
    page.locator(f".dataset[data-name='{DATASET}'] a:text('Duplicates')").click()
    expect(page.locator("#nav-duplicates")).to_have_attribute("aria-current", "")
    expect(page.locator("#dup-dataset")).to_have_value(DATASET)
    page.wait_for_selector("#dup-against label[data-name='webapp-copies']")
    assert page.locator(f"#dup-against label[data-name='{DATASET}']").is_hidden(), "not against itself"
    page.check("#dup-against input[value='webapp-copies']")
    page.fill("#dup-threshold", "0.995")
    page.click("#dup-start")
    expect(page.locator("#dup-status")).to_contain_text(re.compile(r"\d+ groups?, \d+ images"), timeout=120_000)
    group = page.locator(".dup-group").filter(has=page.locator("[data-dataset='webapp-copies']"))
    expect(group.locator(".similarity")).to_have_text("same file")
    assert group.locator(".tile").evaluate_all("fs => fs.map(f => f.dataset.dataset + '/' + f.dataset.key)") == [
        f"{DATASET}/{copied}", f"webapp-copies/{Path(copied).name}"]
    expect(page.locator("#dup-status")).to_contain_text("against webapp-copies")
    page.wait_for_function("() => [...document.querySelectorAll('.tile img')].every(i => i.complete && i.naturalWidth)")
    screenshot(page, "15-duplicates")
    group.locator(".tile a").first.click()
    wait_for_results(page)
    assert json.loads(page.evaluate("new URLSearchParams(location.search).get('q')")) == [
        {"image": {"dataset": DATASET, "key": copied}, "weight": 1}]


def test_the_suspect_labels_page_shows_each_suspect_beside_its_outvoting_neighbours(page, stack, dataset):
    relabelled = "webapp-relabelled"
    coco = json.loads((dataset.folder / "_annotations" / "instances.json").read_text())
    swapped = demo_data.swap_labels(coco, 0.1, seed=5)
    folder = dataset.folder.parent / "relabelled"
    folder.mkdir(exist_ok=True)
    shutil.copytree(dataset.folder / "images", folder / "images")
    (folder / "_annotations").mkdir()
    (folder / "_annotations" / "instances.json").write_text(json.dumps(coco))
    with Client(gateway(stack), ADMIN_KEY) as client:
        client.upload(folder, relabelled)
        job = client.scan(relabelled)
        while (job := client.job(job.id)).state in ("queued", "running"):
            time.sleep(0.3)
        assert job.state == "succeeded", job
    with_key(page).goto("/?view=datasets")
    page.locator(f".dataset[data-name='{relabelled}'] a:text('Suspect labels')").click()
    expect(page.locator("#nav-suspects")).to_have_attribute("aria-current", "")
    expect(page.locator("#sus-dataset")).to_have_value(relabelled)
    page.click("#sus-start")
    expect(page.locator("#sus-status")).to_contain_text(re.compile(r"\d+ suspects? among \d+ boxes"), timeout=120_000)
    first = page.locator(".suspect").first
    label, suggested = first.locator("b.label").inner_text(), first.locator("b.suggested").inner_text()
    assert label != suggested
    files = {image["id"]: image["file_name"] for image in coco["images"]}
    assert first.get_attribute("data-key") in {files[a["image_id"]] for a in swapped}, "a swapped box leads"
    voters = first.locator(".tile:not(.suspect-box .tile) figcaption").all_inner_texts()
    assert voters and all(text.startswith(f"{suggested} ") for text in voters)
    page.wait_for_function("() => [...document.querySelectorAll('.suspect .tile img')].slice(0, 12)"
                           ".every(i => i.complete && i.naturalWidth)")
    screenshot(page, "16-suspect-labels")
    with page.expect_download() as download:
        page.select_option("#sus-export", "csv")
    assert download.value.suggested_filename == f"{relabelled}-suspects.csv"
    exported = Path(download.value.path()).read_text().splitlines()
    total = int(re.match(r"(\d+) suspects?", page.locator("#sus-status").inner_text()).group(1))
    assert len(exported) == total + 1, "every suspect, not only those shown"
    type_and_apply(page, "#sus-label", label)
    expect(page.locator("#sus-status")).to_contain_text(f"labelled {label}")
    assert set(page.locator(".suspect").evaluate_all("ss => ss.map(s => s.dataset.label)")) == {label}


def test_the_map_draws_every_image_and_a_dragged_region_shows_its_images(page):
    with_key(page).goto(f"/?view=map&dataset={DATASET}")
    expect(page.locator("#map-dataset")).to_have_value(DATASET)
    page.click("#map-start")
    expect(page.locator("#map-status")).to_contain_text(f"{IMAGES} images on the map", timeout=180_000)
    legend = page.locator("#map-legend li").all_inner_texts()
    assert legend and all(re.search(r"\d+$", item) or "more" in item for item in legend)
    canvas = page.locator("#map-canvas").bounding_box()
    page.mouse.move(canvas["x"] + 2, canvas["y"] + 2)
    page.mouse.down()
    page.mouse.move(canvas["x"] + canvas["width"] / 2, canvas["y"] + canvas["height"] - 2, steps=5)
    screenshot(page, "17-map-selecting")
    page.mouse.up()
    chosen = int(re.match(r"(\d+) points? in the region", page.locator("#map-selected").inner_text()).group(1))
    assert 0 < chosen < IMAGES, "the left half holds some of the images, not all"
    assert page.locator("#map-selection .tile").count() == chosen
    page.wait_for_function("() => [...document.querySelectorAll('#map-selection .tile img')]"
                           ".every(i => i.complete && i.naturalWidth)")
    screenshot(page, "18-map-selection")
    page.select_option("#map-colour", "dataset")
    assert page.locator("#map-legend li").all_inner_texts() == [f"{DATASET} {IMAGES}"]
    page.locator("#map-selection .tile a").first.click()
    wait_for_results(page)
