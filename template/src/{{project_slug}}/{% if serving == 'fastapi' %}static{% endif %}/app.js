// Demo page: builds its form from GET /metadata and calls POST /predict. No external assets.
"use strict";

const $ = (id) => document.getElementById(id);
let meta = null;

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

function fill(example) {
  const fieldset = $("features");
  fieldset.replaceChildren(fieldset.querySelector("legend"));
  for (const feature of meta.features) fieldset.append(field(feature, example[feature.name]));
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
  const value = body.predictions[0];
  $("prediction").textContent = meta.target + ": " + (typeof value === "number" ? value.toFixed(4) : value);
  $("model-version").textContent = body.model_version;
  const table = $("probabilities");
  const rows = table.querySelector("tbody");
  rows.replaceChildren();
  if (body.probabilities) {
    for (const [name, p] of Object.entries(body.probabilities[0])) {
      const tr = document.createElement("tr");
      const cls = document.createElement("td");
      const prob = document.createElement("td");
      cls.textContent = name;
      prob.textContent = (100 * p).toFixed(1) + " %";
      tr.append(cls, prob);
      rows.append(tr);
    }
  }
  table.hidden = !body.probabilities;
  $("result").hidden = false;
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
  const headers = keyHeaders({ "content-type": "application/json" });
  $("submit").disabled = true;
  try {
    const response = await fetch("predict", {
      method: "POST",
      headers,
      body: JSON.stringify({ records: [record()] }),
    });
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
  document.title = "Demo: predict " + meta.target;
  $("title").textContent = "Predict " + meta.target;
  const task = meta.task === "classification" ? "classifies into " + meta.classes.join(", ") : "predicts a number";
  $("summary").textContent =
    meta.architecture + " (" + meta.framework + ", model " + meta.model_version + ") " + task + ". Edit the example and press Predict.";
  $("key-form").hidden = !meta.api_key_required;
  fill(meta.example);
  $("predict-form").hidden = false;
}

$("key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  start();
});
$("predict-form").addEventListener("submit", predict);
$("reset").addEventListener("click", () => fill(meta.example));
start();
