// Loader of the offline HTML export (no kernel, no network): inflates the widget state embedded
// in the page (gzip + base64, see motif_widgets/widgets/export.py) with the browser's built-in
// DecompressionStream, builds an anywidget-style model from it, imports the widget's own ES
// module from that state and renders it. Gestures change the in-page model only.

/**
 * The anywidget model interface (get / set / on / off / save_changes / send) over plain state.
 * With no kernel, it also applies the kernel's selection rule (widgets/base.py): a new
 * selected_head outside the selection replaces the selection.
 */
export function createModel(state) {
  const values = { ...state };
  const handlers = new Map();
  const emit = (event) => (handlers.get(event) || []).slice().forEach((cb) => cb());
  const model = {
    get: (key) => values[key],
    set(key, value) {
      if (values[key] === value) return;
      values[key] = value;
      emit(`change:${key}`);
      emit("change");
      if (key === "selected_head" && value != null && Array.isArray(values.selection) && !values.selection.includes(value)) {
        model.set("selection", [value]);
      }
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
  return model;
}

export function decodeBase64(text) {
  if (typeof Uint8Array.fromBase64 === "function") return Uint8Array.fromBase64(text.trim());
  const binary = atob(text.trim());
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}

/** gzip bytes -> inflated Uint8Array, with the browser's DecompressionStream (no library). */
export async function gunzip(bytes) {
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

const TYPED = {
  uint8: Uint8Array, int8: Int8Array, uint16: Uint16Array, int16: Int16Array,
  uint32: Uint32Array, int32: Int32Array, float32: Float32Array, float64: Float64Array,
};

/** An exported array stored in a smaller form ("packed") back in its own dtype, as a DataView. */
export function unpackArray(value, bytes) {
  const packed = value.packed;
  const Stored = TYPED[packed.dtype];
  const stored = new Stored(bytes.buffer, bytes.byteOffset, bytes.byteLength / Stored.BYTES_PER_ELEMENT);
  if (value.dtype === "float16") value.dtype = "float32"; // the views read both; float32 needs no half decoding
  const Out = TYPED[value.dtype];
  const out = new Out(stored.length);
  if (packed.lo) {
    const { lo, step } = packed;
    const cols = lo.length;
    const nanCode = packed.nan ? (packed.dtype === "uint8" ? 255 : 65535) : -1;
    for (let i = 0; i < stored.length; i++) {
      const c = stored[i];
      const j = i % cols;
      out[i] = c === nanCode ? NaN : lo[j] + step[j] * c;
    }
  } else out.set(stored);
  delete value.packed;
  return new DataView(out.buffer);
}

/** The container of export.py: uint32 n, n bytes of JSON {state, buffers}, the binary part. */
export function readContainer(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = view.getUint32(0, true);
  const doc = JSON.parse(new TextDecoder().decode(bytes.subarray(4, 4 + n)));
  const binary = bytes.subarray(4 + n);
  const state = doc.state;
  for (const { path, offset, length } of doc.buffers) {
    let node = state;
    for (const key of path.slice(0, -1)) node = node[key];
    const part = binary.subarray(offset, offset + length);
    node[path[path.length - 1]] = node.packed ? unpackArray(node, part) : new DataView(part.buffer, part.byteOffset, part.byteLength);
  }
  return state;
}

async function main() {
  const tag = document.getElementById("motif-widgets-state");
  const state = readContainer(await gunzip(decodeBase64(tag.textContent)));
  const url = URL.createObjectURL(new Blob([state._esm], { type: "text/javascript" }));
  const widget = (await import(url)).default;
  const model = createModel(state);
  const el = document.getElementById("motif-widgets-root");
  await widget.render({ model, el });
  window.motifWidgetsModel = model;
  window.motifWidgetsReadyMs = performance.now(); // load -> interactive (benchmarks/export_size.py)
  document.body.dataset.ready = "true";
}

if (typeof document !== "undefined" && document.getElementById("motif-widgets-state")) {
  main().catch((err) => {
    // say why on the page (an old browser without DecompressionStream, a damaged file)
    const el = document.getElementById("motif-widgets-root");
    el.textContent = `This page could not show the widget: ${err && err.message ? err.message : err}`;
    document.body.dataset.error = String(err && err.stack ? err.stack : err);
    console.error(err);
  });
}
