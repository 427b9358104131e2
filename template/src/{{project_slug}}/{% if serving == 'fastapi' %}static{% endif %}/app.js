// Demo page: builds its form from GET /metadata and calls POST /predict (or /forecast). No external assets.
"use strict";

const $ = (id) => document.getElementById(id);
let meta = null;
let current = {}; // the record the form was last filled from (the chosen example)
const number = (value) => (typeof value === "number" ? value.toFixed(4) : String(value));

function field(feature, value) {
  const row = document.createElement("p");
  const label = document.createElement("label");
  const id = "feature-" + feature.name;
  label.htmlFor = id;
  label.textContent = feature.name;
  let input;
  if (feature.kind === "categorical" && Array.isArray(feature.categories)) {
    input = document.createElement("select");
    for (const choice of ["", ...feature.categories]) {
      const option = document.createElement("option");
      option.value = choice;
      option.textContent = choice === "" ? "(missing)" : choice;
      input.append(option);
    }
  } else {
    input = document.createElement("input");
    input.type = feature.kind === "numeric" ? "number" : "text";
    if (feature.kind === "numeric") input.step = "any";
  }
  input.id = id;
  input.name = feature.name;
  input.dataset.kind = feature.kind;
  input.value = value === null || value === undefined ? "" : String(value);
  row.append(label, input);
  return row;
}

function group(title, features, values) {
  const fieldset = document.createElement("fieldset");
  const legend = document.createElement("legend");
  legend.textContent = title;
  fieldset.append(legend);
  for (const feature of features) fieldset.append(field(feature, values[feature.name]));
  return fieldset;
}

// Image projects: one picture to predict, from a file (chosen or dropped), a drawing or an example.
const imageFeature = () => meta.features.find((f) => f.kind === "image");
let picture = null; // {file: File} or {base64: "..."}: what Predict sends

function showPicture(source) {
  picture = source;
  const img = $("picture-preview");
  if (source.file) img.src = URL.createObjectURL(source.file);
  else img.src = "data:image/png;base64," + source.base64;
  img.hidden = false;
}

function canvasPanel() {
  const canvas = document.createElement("canvas");
  canvas.id = "sketch";
  canvas.width = canvas.height = 160;
  canvas.setAttribute("aria-label", "Draw here");
  const pen = canvas.getContext("2d");
  const clear = () => {
    pen.fillStyle = "black";
    pen.fillRect(0, 0, canvas.width, canvas.height);
  };
  clear();
  let drawing = false;
  const at = (event) => {
    const box = canvas.getBoundingClientRect();
    return [((event.clientX - box.left) * canvas.width) / box.width, ((event.clientY - box.top) * canvas.height) / box.height];
  };
  canvas.addEventListener("pointerdown", (event) => {
    drawing = true;
    pen.beginPath();
    pen.moveTo(...at(event));
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!drawing) return;
    pen.strokeStyle = "white";
    pen.lineWidth = 16;
    pen.lineCap = "round";
    pen.lineTo(...at(event));
    pen.stroke();
  });
  const done = () => {
    if (!drawing) return;
    drawing = false;
    showPicture({ base64: canvas.toDataURL("image/png").split(",")[1] });
  };
  canvas.addEventListener("pointerup", done);
  canvas.addEventListener("pointerleave", done);
  const wipe = document.createElement("button");
  wipe.type = "button";
  wipe.textContent = "Clear the drawing";
  wipe.addEventListener("click", clear);
  const box = document.createElement("p");
  box.append("Or draw (light on dark, as the training scans are): ", canvas, " ", wipe);
  return box;
}

function imagePanel(values) {
  const feature = imageFeature();
  const fieldset = document.createElement("fieldset");
  const legend = document.createElement("legend");
  legend.textContent = "Image (normalised to " + feature.size.join("x") + ", " + feature.channels + " channel(s))";
  const input = document.createElement("input");
  input.type = "file";
  input.accept = "image/*";
  input.id = "picture-file";
  input.addEventListener("change", () => input.files[0] && showPicture({ file: input.files[0] }));
  const label = document.createElement("label");
  label.htmlFor = input.id;
  label.textContent = "Upload or drop an image";
  const preview = document.createElement("img");
  preview.id = "picture-preview";
  preview.alt = "the image to predict";
  preview.hidden = true;
  fieldset.append(legend, label, input, preview);
  fieldset.addEventListener("dragover", (event) => event.preventDefault());
  fieldset.addEventListener("drop", (event) => {
    event.preventDefault();
    const file = event.dataTransfer.files[0];
    if (file) showPicture({ file });
  });
  fieldset.append(canvasPanel());
  $("features").replaceChildren(fieldset);
  if (values && values[feature.name]) showPicture({ base64: values[feature.name] });
}

// Forecasting projects: a series and a horizon in; the recent history, the forecast and its interval
// band out, drawn as inline SVG (no chart library) with the numbers in a table.
const forecasting = () => meta && meta.route === "/forecast";
// The SVG namespace, from the HTML parser itself: the <svg> element it creates knows its own.
const SVG = (() => {
  const box = document.createElement("div");
  box.innerHTML = "<svg></svg>";
  return box.firstChild.namespaceURI;
})();

function forecastPanel() {
  const fieldset = document.createElement("fieldset");
  const legend = document.createElement("legend");
  legend.textContent = "Forecast";
  const series = document.createElement("select");
  series.id = "series";
  for (const name of meta.series) {
    const option = document.createElement("option");
    option.value = option.textContent = name;
    series.append(option);
  }
  const horizon = document.createElement("input");
  Object.assign(horizon, { id: "horizon", type: "number", min: 1, max: meta.horizon, step: 1, value: meta.horizon });
  const rows = [
    ["series", "Series", series],
    ["horizon", "Steps ahead (1 to " + meta.horizon + ", " + meta.frequency + ")", horizon],
  ];
  fieldset.append(legend);
  for (const [id, text, input] of rows) {
    const row = document.createElement("p");
    const label = document.createElement("label");
    label.htmlFor = id;
    label.textContent = text;
    row.append(label, input);
    fieldset.append(row);
  }
  $("features").replaceChildren(fieldset);
}

function forecastBody() {
  return JSON.stringify({ series_id: $("series").value, horizon: Number($("horizon").value) });
}

function svgNode(tag, attributes, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

function drawForecast(body) {
  const past = (meta.recent || {})[body.series_id] || [];
  const points = body.forecast;
  const times = [...past, ...points].map((p) => Date.parse(p.time));
  const values = [...past.map((p) => p.value), ...points.flatMap((p) => [p.lower, p.upper])];
  const [width, height, pad] = [640, 260, 36];
  const [t0, t1, v0, v1] = [Math.min(...times), Math.max(...times), Math.min(...values), Math.max(...values)];
  const x = (time) => pad + ((Date.parse(time) - t0) / (t1 - t0 || 1)) * (width - 2 * pad);
  const y = (value) => height - pad - ((value - v0) / (v1 - v0 || 1)) * (height - 2 * pad);
  const line = (rows, key) => rows.map((p) => x(p.time).toFixed(1) + "," + y(p[key]).toFixed(1)).join(" ");
  const chart = svgNode("svg", {
    viewBox: "0 0 " + width + " " + height,
    role: "img",
    "aria-label": "history and forecast of " + body.series_id,
  });
  const band = line(points, "upper") + " " + line([...points].reverse(), "lower");
  chart.append(
    svgNode("polygon", { points: band, class: "band" }),
    svgNode("polyline", { points: line(past, "value"), class: "history" }),
    svgNode("polyline", { points: line(points, "value"), class: "forecast" }),
    svgNode("text", { x: pad, y: height - 8, class: "axis" }, new Date(t0).toISOString().slice(0, 10)),
    svgNode("text", { x: width - pad, y: height - 8, class: "axis end" }, new Date(t1).toISOString().slice(0, 10)),
    svgNode("text", { x: 4, y: pad - 8, class: "axis" }, number(v1)),
    svgNode("text", { x: 4, y: height - pad + 14, class: "axis" }, number(v0)),
  );
  $("chart").replaceChildren(chart);
  const rows = $("forecast-table").querySelector("tbody");
  rows.replaceChildren(
    ...points.map((p) => {
      const tr = document.createElement("tr");
      for (const text of [p.time.slice(0, 10), number(p.value), number(p.lower), number(p.upper)]) {
        const td = document.createElement("td");
        td.textContent = text;
        tr.append(td);
      }
      return tr;
    }),
  );
  $("forecast-table").hidden = false;
  $("chart").hidden = false;
  const last = points[points.length - 1];
  $("prediction").textContent =
    meta.target + " in " + points.length + " steps: " + number(last.value) + " (" + number(last.lower) + " to " + number(last.upper) + ")";
}

// Text projects: one text box, filled from the example or a real test text.
const textFeature = () => meta.features.find((f) => f.kind === "text");

function textPanel(values) {
  const feature = textFeature();
  const fieldset = document.createElement("fieldset");
  const legend = document.createElement("legend");
  legend.textContent = "Text";
  const label = document.createElement("label");
  label.htmlFor = "text-input";
  label.textContent = "Text to classify (at most " + feature.max_chars + " characters)";
  const area = document.createElement("textarea");
  area.id = "text-input";
  area.name = "texts";
  area.rows = 8;
  area.maxLength = feature.max_chars;
  area.value = values ? (values.text ?? values[feature.name] ?? "") : "";
  fieldset.append(legend, label, area);
  $("features").replaceChildren(fieldset);
}

function pictureBody(headers) {
  if (picture && picture.file) {
    const form = new FormData();
    form.append("images", picture.file);
    return form; // the browser sets the multipart content type with its boundary
  }
  headers["content-type"] = "application/json";
  return JSON.stringify({ images: picture ? [picture.base64] : [] });
}

// Inputs in two groups, numbers then categories, each in the schema's order.
function fill(values) {
  current = values;
  if (forecasting()) return forecastPanel();
  if (imageFeature()) return imagePanel(values);
  if (textFeature()) return textPanel(values);
  const groups = [
    ["Numbers", meta.features.filter((f) => f.kind === "numeric")],
    ["Categories", meta.features.filter((f) => f.kind !== "numeric")],
  ];
  $("features").replaceChildren(
    ...groups.filter(([, features]) => features.length).map(([title, features]) => group(title, features, values)),
  );
}

// "Typical values" (medians and most frequent values) and real test rows, one the model gets wrong.
function examples() {
  const select = $("example");
  const first = forecasting()
    ? "The history stored with the model"
    : imageFeature() ? "An image of the test set"
    : textFeature() ? "A short text of the test set" : "Typical values (medians, most frequent)";
  const options = [["typical", first]];
  (forecasting() ? [] : meta.examples || []).forEach((example, i) => {
    const verdict =
      meta.task === "classification"
        ? example.correct ? "the model gets it right" : "the model gets it wrong"
        : "the model is off by " + number(Math.abs(example.predicted - example.actual));
    options.push([String(i), "Test example " + (i + 1) + ": actual " + number(example.actual) + " (" + verdict + ")"]);
  });
  select.replaceChildren(
    ...options.map(([value, text]) => {
      const option = document.createElement("option");
      option.value = value;
      option.textContent = text;
      return option;
    }),
  );
}

function chooseExample() {
  const choice = $("example").value;
  const example = choice === "typical" ? null : meta.examples[Number(choice)];
  $("example-note").textContent = example
    ? "A real row of the held-out test set; its true " + meta.target + " is " + number(example.actual) + "."
    : forecasting()
      ? "Each series is forecast from the history the model was trained and validated on."
      : imageFeature()
        ? "An image of the held-out test set."
        : textFeature()
          ? "A short text of the held-out test set; edit it or write your own."
          : "Not a real record: each value is typical of the training data.";
  fill(example ? example.features : meta.example);
}

function headline() {
  const gate = meta.gate && meta.gate.gate;
  if (!gate) return;
  const relation = gate.higher_is_better ? "≥" : "≤";
  const parts = [gate.metric + " " + number(gate.point ?? gate.value) + " on held-out test data"];
  if (gate.threshold !== null && gate.threshold !== undefined) parts.push("target " + relation + " " + gate.threshold);
  parts.push("best baseline " + number(gate.baseline) + " (" + gate.baseline_strategy + ")");
  parts.push(gate.passed ? "gate passed" : meta.gate.forced ? "gate FAILED, served by override" : "gate FAILED");
  $("headline").textContent = parts.join(" · ");
  $("headline").classList.toggle("failed", !gate.passed);
  $("headline").hidden = false;
}

function links() {
  const site = meta.project && meta.project.site_url;
  const span = $("links");
  span.replaceChildren();
  if (!site) return;
  for (const [text, href] of [["Model card", site + "model.html"], ["project site", site]]) {
    const a = document.createElement("a");
    a.href = href;
    a.textContent = text;
    span.append(a, document.createTextNode(" · "));
  }
}

function record() {
  const out = {};
  for (const input of $("features").querySelectorAll("input, select")) {
    const text = input.value.trim();
    out[input.name] = text === "" ? null : input.dataset.kind === "numeric" ? Number(text) : text;
  }
  return out;
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = false;
  $("result").hidden = true;
}

function showResult(body) {
  $("error").hidden = true;
  if (forecasting()) {
    drawForecast(body);
    $("model-version").textContent = body.model_version;
    $("result").hidden = false;
    $("result").scrollIntoView({ block: "nearest" });
    return;
  }
  const value = body.predictions[0];
  $("prediction").textContent = meta.target + ": " + (typeof value === "number" ? value.toFixed(4) : value);
  $("model-version").textContent = body.model_version;
  const table = $("probabilities");
  const rows = table.querySelector("tbody");
  rows.replaceChildren();
  if (body.probabilities) {
    const ranked = Object.entries(body.probabilities[0]).sort((a, b) => b[1] - a[1]);
    for (const [name, p] of ranked) {
      const tr = document.createElement("tr");
      const cls = document.createElement("th");
      const bar = document.createElement("td");
      const meter = document.createElement("progress");
      cls.scope = "row";
      cls.textContent = name;
      meter.max = 1;
      meter.value = p;
      meter.textContent = (100 * p).toFixed(1) + " %";
      meter.setAttribute("aria-label", "probability of " + name);
      bar.className = "bar";
      bar.append(meter, " " + (100 * p).toFixed(1) + " %");
      tr.append(cls, bar);
      rows.append(tr);
    }
  }
  const threshold = meta.decision_threshold;
  $("decision").textContent = threshold
    ? "The model answers " + threshold.positive_class + " when its probability is at least " + threshold.value + " (" + threshold.rule + ")."
    : "";
  $("decision").hidden = !threshold || !body.probabilities;
  table.hidden = !body.probabilities;
  $("result").hidden = false;
  $("result").scrollIntoView({ block: "nearest" }); // on a phone the answer is below a long form
}

function detail(body) {
  if (!body || body.detail === undefined) return "request failed";
  if (typeof body.detail === "string") return body.detail;
  return body.detail.map((e) => (e.loc || []).slice(-1).join("") + ": " + e.msg).join("; ");
}

function keyHeaders(headers) {
  const key = $("api-key").value;
  if (key) headers["X-API-Key"] = key;
  return headers;
}

async function predict(event) {
  event.preventDefault();
  const headers = keyHeaders({});
  const payload = forecasting()
    ? forecastBody()
    : imageFeature() ? pictureBody(headers)
    : textFeature() ? JSON.stringify({ texts: [$("text-input").value] })
    : JSON.stringify({ records: [record()] });
  if (!imageFeature()) headers["content-type"] = "application/json";
  $("submit").disabled = true;
  try {
    const route = forecasting() ? "forecast" : "predict"; // relative: the page may sit behind a prefix
    const response = await fetch(route, { method: "POST", headers, body: payload });
    const body = await response.json().catch(() => null);
    if (response.ok) showResult(body);
    else showError(response.status + ": " + detail(body));
  } catch (error) {
    showError("the server did not answer: " + error);
  } finally {
    $("submit").disabled = false;
  }
}

async function start() {
  try {
    // With API_KEY set on the server, /metadata needs the key too; the public /ready says so, so
    // the page asks for the key first instead of making a request it knows will be refused.
    const ready = await fetch("ready").then((r) => r.json()).catch(() => ({}));
    if (ready.api_key_required && !$("api-key").value) {
      $("key-form").hidden = false;
      $("summary").textContent = "This API needs a key. Enter it to load the model.";
      return;
    }
    const response = await fetch("metadata", { headers: keyHeaders({}) });
    if (response.status === 401) {
      $("key-form").hidden = false;
      $("summary").textContent = $("api-key").value
        ? "That key was refused. Enter the API key to load the model."
        : "This API needs a key. Enter it to load the model.";
      return;
    }
    if (!response.ok) throw new Error("GET /metadata answered " + response.status);
    meta = await response.json();
  } catch (error) {
    $("summary").textContent = "Cannot load the model description: " + error.message;
    return;
  }
  const project = meta.project || { name: "Predict " + meta.target };
  document.title = project.name + " — demo";
  $("title").textContent = project.name;
  $("problem").textContent = project.problem_statement || "";
  $("problem").hidden = !project.problem_statement;
  const task =
    meta.task === "classification" ? "answers one of " + meta.classes.join(", ") : "predicts a number";
  $("summary").textContent = forecasting()
    ? "Forecasts " + meta.target + " up to " + meta.horizon + " steps ahead with an interval: " +
      meta.architecture + " (" + meta.framework + "). Pick a series and a horizon and press Predict."
    : "Predicts " + meta.target + ": " + meta.architecture + " (" + meta.framework + ") " + task +
      (textFeature() ? ". Pick a text, edit it and press Predict." : ". Pick a starting point, edit any value and press Predict.");
  headline();
  links();
  $("key-form").hidden = !meta.api_key_required;
  examples();
  chooseExample();
  $("predict-form").hidden = false;
}

$("key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  start();
});
$("predict-form").addEventListener("submit", predict);
$("reset").addEventListener("click", () => fill(current));
$("example").addEventListener("change", chooseExample);
start();
