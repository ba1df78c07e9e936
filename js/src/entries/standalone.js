// Loader of the offline HTML export (no kernel, no network): builds an anywidget-style model from
// the widget state embedded in the page (JSON plus base64 binary buffers), imports the widget's
// own ES module from that state and renders it. Gestures change the in-page model only.

/** The anywidget model interface (get / set / on / off / save_changes / send) over plain state. */
export function createModel(state) {
  const values = { ...state };
  const handlers = new Map();
  const emit = (event) => (handlers.get(event) || []).slice().forEach((cb) => cb());
  return {
    get: (key) => values[key],
    set(key, value) {
      if (values[key] === value) return;
      values[key] = value;
      emit(`change:${key}`);
      emit("change");
    },
    on(event, cb) {
      for (const name of event.split(" ")) handlers.set(name, [...(handlers.get(name) || []), cb]);
    },
    off(event, cb) {
      for (const name of (event || "").split(" ")) {
        if (!cb) handlers.delete(name);
        else handlers.set(name, (handlers.get(name) || []).filter((f) => f !== cb));
      }
    },
    save_changes() {},
    send() {},
  };
}

function decodeBase64(text) {
  if (typeof Uint8Array.fromBase64 === "function") return Uint8Array.fromBase64(text);
  const binary = atob(text);
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}

/** Put each base64 buffer back at its path in the state, as a DataView (as Jupyter does). */
export function restoreBuffers(state, buffers) {
  for (const { path, data } of buffers) {
    let node = state;
    for (const key of path.slice(0, -1)) node = node[key];
    const bytes = decodeBase64(data);
    node[path[path.length - 1]] = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  return state;
}

async function main() {
  const doc = JSON.parse(document.getElementById("motif-widgets-state").textContent);
  const state = restoreBuffers(doc.state, doc.buffers);
  const url = URL.createObjectURL(new Blob([state._esm], { type: "text/javascript" }));
  const widget = (await import(url)).default;
  const model = createModel(state);
  const el = document.getElementById("motif-widgets-root");
  await widget.render({ model, el });
  window.motifWidgetsModel = model;
  document.body.dataset.ready = "true";
}

if (typeof document !== "undefined" && document.getElementById("motif-widgets-state")) main();
