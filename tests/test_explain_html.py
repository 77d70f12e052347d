"""``netdef explain --html``: the page's content, and the page itself in a real (headless) Chromium.

The browser tests open the page from disk with selenium, fail on any browser console error,
click a layer and read the panel, count the comparison plot's points and check a screenshot is
not blank. They skip, saying why, where Chromium, chromedriver or selenium is missing.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
from pathlib import Path

import headless_chromium
import numpy as np
import pytest
from cli_runner import netdef

import architectures
from netdef.reference import documentation
from netdef.reference.compare import compare_networks
from netdef.weights import Checkpoint


def page_json(path: Path) -> dict:
    html = path.read_text(encoding="utf-8")
    found = re.search(r'<script type="application/json" id="netdef-data">(.*?)</script>', html, re.DOTALL)
    assert found, "the page carries its data as JSON"
    return json.loads(found.group(1))


def needs_graphviz() -> None:
    if shutil.which("dot") is None:
        pytest.skip("Graphviz's dot is not installed (apt-get install graphviz): the page's graph needs it")


@pytest.fixture(scope="module")
def digit(tmp_path_factory) -> Path:
    from netdef.datasets import digits_split

    path = tmp_path_factory.mktemp("input") / "digit.npy"
    np.save(path, digits_split().x_test[:1])
    return path


@pytest.fixture(scope="module")
def lenet_page(tmp_path_factory, lenet_weights, digit) -> Path:
    """The LeNet page with activations on one digit and the fp16 comparison, written by the CLI."""
    needs_graphviz()
    path = tmp_path_factory.mktemp("page") / "lenet.html"
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as monkeypatch, contextlib.redirect_stdout(out):
        code, _, err = netdef(
            monkeypatch,
            _Captured(out),
            "explain", "lenet", "-w", lenet_weights, "--html", path, "--input", digit, "--compare", "fp16",
        )  # fmt: skip
    assert code == 0, err
    assert f"wrote {path}" in " ".join(out.getvalue().split())
    return path


class _Captured:
    """capsys's ``readouterr`` over a redirected stdout (capsys is per test, the page per module)."""

    def __init__(self, out: io.StringIO) -> None:
        self.out = out

    def readouterr(self) -> tuple[str, str]:
        return self.out.getvalue(), ""


# ---------------------------------------------------------------------------------------------- the file


def test_page_is_self_contained_and_offline(lenet_page):
    html = lenet_page.read_text(encoding="utf-8")
    assert "<script src" not in html and '<link rel="stylesheet"' not in html
    assert not re.search(r"\b(src|href)=\"(https?:)?//", html), "nothing is fetched from the network"
    assert not re.search(r"fetch\(|XMLHttpRequest|import\(", html)
    urls = set(re.findall(r"https?://[^\s\"'<>)]+", html))
    assert urls <= {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}, urls
    assert '<svg id="graph-svg"' in html and "{{" not in html


def test_page_data_names_every_layer_weight_source_and_statistic(lenet_page, lenet_weights):
    data = page_json(lenet_page)
    net = architectures.get("lenet").build_network(Checkpoint.load(lenet_weights), batch=1)
    names = [net.trt_network.get_layer(i).name for i in range(net.num_layers)]
    assert [layer["name"] for layer in data["layers"]] == names
    assert data["precision"] == "fp32" and data["totals"]["layers"] == 15
    assert data["totals"]["params"] == 431_080
    conv2 = data["layers"][names.index("conv2")]
    assert conv2["weights"] == ["conv2.weight", "conv2.bias"] and conv2["flops"] == 3_200_000
    assert ["kernel_size_nd", "5x5"] in conv2["settings"]
    assert conv2["inputs"][0]["shape"] == [1, 20, 12, 12] and conv2["outputs"][0]["dtype"] == "fp32"
    fc1 = data["layers"][names.index("fc1")]
    assert fc1["via"] == [["fc1.weight", names.index("fc1.weight")]]
    checkpoint = Checkpoint.load(lenet_weights)
    for name in ("conv2.weight", "fc1.weight"):
        weight = data["weights"][name]
        values = np.asarray(checkpoint[name], np.float32)
        assert weight["sources"] == [name] and weight["role"] == "checkpoint"
        assert weight["shape"] == list(values.shape)
        assert weight["stats"]["min"] == pytest.approx(values.min(), rel=1e-3)
        assert weight["stats"]["std"] == pytest.approx(values.std(), rel=1e-3)
        assert sum(weight["stats"]["hist"]) * weight["stats"]["step"] >= values.size
    formula = documentation("CONVOLUTION")
    assert data["docs"]["CONVOLUTION"].splitlines()[-1] in formula


def test_page_shows_folded_batch_norm_sources(tmp_path, monkeypatch, capsys):
    needs_graphviz()
    path = tmp_path / "resnet18.html"
    code, out, err = netdef(monkeypatch, capsys, "explain", "resnet18", "-p", "fp16", "--html", path)
    assert code == 0, err
    data = page_json(path)
    conv = next(layer for layer in data["layers"] if layer["name"] == "layer1.0.conv1")
    assert conv["folded"] == "layer1.0.bn1"
    bias = data["weights"]["layer1.0.conv1.bias"]
    assert bias["role"] == "derived" and bias["dtype"] == "fp16"
    assert {"layer1.0.bn1.running_mean", "layer1.0.bn1.running_var", "layer1.0.bn1.bias"} <= set(bias["sources"])


def test_activations_and_comparison_in_the_data(lenet_page, lenet_weights, digit):
    data = page_json(lenet_page)
    conv1 = data["layers"][0]
    assert conv1["act"]["shape"] == [1, 20, 24, 24]
    heat = conv1["act"]["heat"]
    assert (heat["rows"], heat["cols"], heat["channels"]) == (24, 24, 20)
    fc1_weight = next(layer for layer in data["layers"] if layer["name"] == "fc1.weight")
    assert "act" not in fc1_weight, "a constant's output is its weight, shown already"
    report = reference_fp16_report(lenet_weights, np.load(digit))
    assert [row[0] for row in data["compare"]["rows"]] == [row.layer for row in report.rows]
    assert data["compare"]["first"] == (report.first_failure.layer if report.first_failure else None)


def reference_fp16_report(weights: Path, x: np.ndarray):
    lenet = architectures.get("lenet")
    fp32 = lenet.build_network(Checkpoint.load(weights), batch=1)
    fp16 = lenet.build_network(Checkpoint.load(weights), precision="fp16", batch=1)
    return compare_networks(fp16, fp32, {"input": x}, rtol=1e-2)


def test_without_graphviz_the_page_says_why_it_has_no_graph(monkeypatch, capsys, tmp_path):
    from netdef import inspect as netdef_inspect

    real_which = shutil.which
    monkeypatch.setattr(netdef_inspect.shutil, "which", lambda name: None if name == "dot" else real_which(name))
    path = tmp_path / "lenet.html"
    code, out, err = netdef(monkeypatch, capsys, "explain", "lenet", "--html", path)
    assert code == 0, err
    assert "the page has no graph: the page's graph is laid out by Graphviz" in " ".join(out.split())
    html = path.read_text(encoding="utf-8")
    assert '<svg id="graph-svg"' in html and "Graphviz's `dot` is not installed" in html
    assert len(page_json(path)["layers"]) == 15


def test_definition_options_reach_the_page(monkeypatch, capsys, tmp_path):
    needs_graphviz()
    path = tmp_path / "mobilenet.html"
    code, _, err = netdef(monkeypatch, capsys, "explain", "mobilenet_v2", "-O", "num_classes=10", "--html", path)
    assert code == 0, err
    data = page_json(path)
    assert [t["shape"] for t in data["io"] if t["mode"] == "output"] == [[1, 10]]
    assert data["weights"]["classifier.1.weight"]["shape"] == [10, 1280]


def test_layer_option_picks_the_layer_the_page_opens_on(monkeypatch, capsys, tmp_path):
    needs_graphviz()
    path = tmp_path / "lenet.html"
    code, _, err = netdef(monkeypatch, capsys, "explain", "lenet", "--html", path, "--layer", "fc1")
    assert code == 0, err
    assert page_json(path)["select"] == "fc1"
    code, _, err = netdef(monkeypatch, capsys, "explain", "lenet", "--html", tmp_path / "x.html", "--layer", "fc_1")
    assert code == 1 and "has no layer named 'fc_1'; did you mean" in err
    assert not (tmp_path / "x.html").exists()


def test_usage_errors(monkeypatch, capsys, tmp_path, digit):
    code, _, err = netdef(monkeypatch, capsys, "explain", "lenet", "--input", digit)
    assert code == 1 and "--input and --compare are for the page: add --html FILE" in err
    code, _, err = netdef(monkeypatch, capsys, "explain", "lenet", "--html", tmp_path / "x.html", "--compare", "fp16")
    assert code == 1 and "--compare needs --weights" in err
    code, _, err = netdef(monkeypatch, capsys, "explain", "lenet", "--html", tmp_path)
    assert code == 1 and f"{tmp_path}: cannot write the page: Is a directory" in " ".join(err.split())


def test_an_engine_file_is_explained_from_its_recorded_definition(monkeypatch, capsys, tmp_path, lenet_weights):
    from netdef import backend

    caps = backend.capabilities()
    if not caps.can_build:
        pytest.skip(f"engines cannot be built here: {caps.reason}")
    needs_graphviz()
    engine = tmp_path / "lenet.engine"
    code, _, err = netdef(monkeypatch, capsys, "build", "lenet", "-w", lenet_weights, "-o", engine, "-p", "fp16", "-q")
    assert code == 0, err
    code, out, err = netdef(monkeypatch, capsys, "explain", engine)
    assert code == 0, err
    assert f"{engine} (fp16, network defined again from" in " ".join(out.split())
    code, out, err = netdef(monkeypatch, capsys, "explain", engine, "--html", tmp_path / "engine.html")
    assert code == 0, err
    data = page_json(tmp_path / "engine.html")
    assert data["precision"] == "fp16" and data["weights"]["conv1.weight"]["dtype"] == "fp16"


def test_summaries_of_arrays():
    import base64

    from netdef.explain_html.stats import HISTOGRAM_SAMPLE, heatmap, summary

    values = np.array([1.0, 2.0, np.nan, 3.0, np.inf, 4.0], np.float32)
    stats = summary(values)
    assert (stats["min"], stats["max"], stats["mean"], stats["nonfinite"]) == (1.0, 4.0, 2.5, 2)
    assert sum(stats["hist"]) == 4 and stats["step"] == 1
    big = np.arange(3 * HISTOGRAM_SAMPLE, dtype=np.float32)
    stats = summary(big)
    assert (
        stats["step"] == 3
        and sum(stats["hist"]) == HISTOGRAM_SAMPLE
        and stats["max"] == pytest.approx(big.max(), rel=1e-3)
    )
    assert summary(np.zeros(0))["hist"] == []
    constant = summary(np.full(5, 7.0))
    assert sum(constant["hist"]) == 5 and constant["std"] == 0 and constant["range"] == [7.0, 7.0]

    activation = np.zeros((2, 3, 64, 40), np.float32)
    activation[0, 1] = np.arange(64 * 40, dtype=np.float32).reshape(64, 40)  # channel 1 has the largest spread
    heat = heatmap(activation)
    assert (heat["channel"], heat["channels"], heat["height"], heat["width"]) == (1, 3, 64, 40)
    assert (heat["rows"], heat["cols"]) == (32, 20)  # 2x2 blocks
    cells = np.frombuffer(base64.b64decode(heat["cells"]), np.uint8).reshape(32, 20)
    assert cells[0, 0] == 0 and cells[-1, -1] == 255 and np.all(np.diff(cells.astype(int), axis=1) >= 0)
    assert heat["min"] == pytest.approx(activation[0, 1, :2, :2].mean())
    assert heatmap(np.zeros((1, 10))) is None


# ---------------------------------------------------------------------------------------------- the text form


def test_text_explain_is_one_line_per_layer(monkeypatch, capsys, lenet_weights):
    code, out, err = netdef(monkeypatch, capsys, "explain", "lenet", "-w", lenet_weights)
    assert code == 0, err
    net = architectures.get("lenet").build_network(Checkpoint.load(lenet_weights), batch=1)
    names = [net.trt_network.get_layer(i).name for i in range(net.num_layers)]
    rows = [line.split() for line in out.splitlines() if line[:3].strip().isdigit()]
    assert [row[1] for row in rows] == names
    conv2 = rows[names.index("conv2")]
    assert conv2[2:] == [
        "Convolution",
        "5x5",
        "/1,",
        "50",
        "maps",
        "max_pool",
        "1x50x8x8",
        "fp32",
        "25,050",
        "3.2",
        "M",
    ]
    assert "total: 431,080 weights, 4.6 MFLOPs for the batch" in out
    assert "Convolution x2: Grouped dilated N-D cross-correlation" in out
    assert "weights:" not in out, "the long form is behind --full"


# ---------------------------------------------------------------------------------------------- in Chromium


@pytest.fixture(scope="module")
def browser():
    reason = headless_chromium.missing()
    if reason:
        pytest.skip(reason)
    driver = headless_chromium.start()
    yield driver
    driver.quit()


def open_page(browser, path: Path, fragment: str = "") -> None:
    headless_chromium.open_page(browser, path, fragment)


def test_page_opens_without_console_errors_and_a_click_shows_the_layer(browser, lenet_page, lenet_weights):
    from selenium.webdriver.common.by import By

    open_page(browser, lenet_page)
    node = browser.find_element(By.CSS_SELECTOR, '#graph g.node[data-layer="2"]')
    node.click()
    panel = browser.find_element(By.ID, "panel")
    assert browser.find_element(By.ID, "panel-name").text == "conv2"
    assert browser.find_element(By.ID, "panel-type").text == "CONVOLUTION"
    formula = browser.find_element(By.ID, "panel-formula").text
    assert "O = floor((I + B + A - DK) / S) + 1" in " ".join(formula.split())
    assert " ".join(formula.split()) in " ".join(documentation("CONVOLUTION").split())
    weights = browser.find_element(By.ID, "panel-weights").text
    assert "conv2.weight 50x20x5x5 fp32" in weights and "conv2.bias 50 fp32" in weights
    assert "checkpoint key conv2.weight" in weights and "min " in weights and "std " in weights
    assert "3.2 MFLOPs" in panel.text and "num_output_maps" in panel.text
    assert browser.find_elements(By.CSS_SELECTOR, "#panel canvas.heat"), "a heat map of the 4-D output"
    assert "selected" in node.get_attribute("class")
    assert headless_chromium.console_errors(browser) == []


def test_comparison_plot_has_one_point_per_compared_layer(browser, lenet_page, lenet_weights, digit):
    from selenium.webdriver.common.by import By

    open_page(browser, lenet_page)
    report = reference_fp16_report(lenet_weights, np.load(digit))
    points = browser.find_elements(By.CSS_SELECTOR, "#compare-plot .cmp-point")
    assert len(points) == len(report.rows) > 10
    layers = [
        browser.execute_script(
            "return window.netdefExplain.layers[arguments[0]].name", int(p.get_attribute("data-layer"))
        )
        for p in points
    ]
    assert sorted(layers) == sorted(row.layer for row in report.rows)
    target = points[len(points) // 2]
    name = layers[len(points) // 2]
    browser.execute_script("arguments[0].dispatchEvent(new MouseEvent('click', {bubbles: true}))", target)
    assert browser.find_element(By.ID, "panel-name").text == name
    assert "selected" in target.get_attribute("class")
    assert headless_chromium.console_errors(browser) == []


def test_search_fold_and_screenshot(browser, lenet_page):
    from PIL import Image
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    open_page(browser, lenet_page)
    search = browser.find_element(By.ID, "search")
    search.send_keys("pool")
    assert browser.find_element(By.ID, "list-count").text == "2 of 15 layers"
    search.send_keys(Keys.ENTER)
    assert browser.find_element(By.ID, "panel-name").text == "max_pool"

    browser.find_element(By.ID, "zoom-fit").click()  # the whole graph in view
    label = browser.find_element(By.XPATH, "//*[local-name()='g'][@class='cluster']/*[local-name()='text']")
    scope = label.text.lstrip("▾ ")
    label.click()
    folded = browser.find_elements(By.CSS_SELECTOR, "#graph g.folded")
    assert len(folded) == 1 and scope.split(".")[-1] in folded[0].text
    hidden = browser.execute_script(
        "return [...document.querySelectorAll('#graph g.node')].filter(g => g.style.display === 'none').length"
    )
    assert hidden >= 2
    browser.execute_script("arguments[0].dispatchEvent(new MouseEvent('click', {bubbles: true}))", folded[0])
    assert not browser.find_elements(By.CSS_SELECTOR, "#graph g.folded")

    open_page(browser, lenet_page, "#layer=fc1.bias_add")
    assert browser.find_element(By.ID, "panel-name").text == "fc1.bias_add", "a link can point at a layer"

    pixels = np.asarray(Image.open(io.BytesIO(browser.get_screenshot_as_png())).convert("L"), np.float32)
    assert pixels.std() > 20, "the screenshot is not blank"
    assert len(np.unique(pixels)) > 50
    assert headless_chromium.console_errors(browser) == []


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["resnet152", "vit_b_16"])
def test_the_largest_graphs_open_and_a_deep_layer_can_be_selected(browser, tmp_path, arch):
    from random_weights import random_checkpoint
    from selenium.webdriver.common.by import By

    from netdef.explain_html import write_page

    needs_graphviz()
    network = architectures.get(arch).build_network(random_checkpoint(arch, 0), batch=1)
    result = write_page(network, tmp_path / f"{arch}.html")
    assert result.size < 5e6
    open_page(browser, result.path)
    deep = result.layers - 5
    name = network.trt_network.get_layer(deep).name
    browser.execute_script("window.netdefExplain.select(arguments[0])", deep)
    assert browser.find_element(By.ID, "panel-name").text == name
    node = browser.find_element(By.CSS_SELECTOR, f'#graph g.node[data-layer="{deep}"]')
    assert "selected" in node.get_attribute("class") and node.is_displayed()
    assert headless_chromium.console_errors(browser) == []
