// Decode the binary arrays the Python side sends: {dtype, shape, data} where data arrives as a
// DataView (Jupyter), an ArrayBuffer or a typed array (offline export, tests). Little-endian.

const TYPED = {
  uint8: Uint8Array,
  int8: Int8Array,
  uint16: Uint16Array,
  int16: Int16Array,
  uint32: Uint32Array,
  int32: Int32Array,
  float32: Float32Array,
  float64: Float64Array,
};

/** The bytes of a binary value as a Uint8Array view (no copy). */
export function bytesOf(data) {
  if (data instanceof Uint8Array) return data;
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  throw new TypeError(`expected binary data (DataView, ArrayBuffer or typed array), got ${typeof data}`);
}

let float16Table = null;

/** Float32Array[65536]: the value of every IEEE half-precision bit pattern. */
export function float16Values() {
  if (float16Table) return float16Table;
  float16Table = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exponent = (h >> 10) & 0x1f;
    const fraction = h & 0x3ff;
    let v;
    if (exponent === 0) v = fraction * 2 ** -24;
    else if (exponent === 31) v = fraction ? NaN : Infinity;
    else v = (1 + fraction / 1024) * 2 ** (exponent - 15);
    float16Table[h] = sign * v;
  }
  return float16Table;
}

/**
 * Decode {dtype, shape, data} into {data: TypedArray, shape, dtype}.
 * float16 stays as its raw Uint16Array bits (decode element-wise with float16Values()); the
 * views decode only the patterns they draw.
 */
export function decodeArray(value) {
  if (!value || typeof value !== "object" || !("dtype" in value) || !("shape" in value)) {
    throw new TypeError("expected an encoded array {dtype, shape, data}");
  }
  const { dtype, shape } = value;
  const count = shape.reduce((a, b) => a * b, 1);
  const bytes = bytesOf(value.data);
  const Ctor = dtype === "float16" ? Uint16Array : TYPED[dtype];
  if (!Ctor) throw new TypeError(`unsupported dtype ${dtype}`);
  if (bytes.byteLength !== count * Ctor.BYTES_PER_ELEMENT) {
    throw new RangeError(`array of shape [${shape}] ${dtype} needs ${count * Ctor.BYTES_PER_ELEMENT} bytes, got ${bytes.byteLength}`);
  }
  // Typed arrays need aligned offsets; copy the (rare) unaligned buffers.
  const aligned = bytes.byteOffset % Ctor.BYTES_PER_ELEMENT === 0 ? bytes : bytes.slice();
  return { dtype, shape, data: new Ctor(aligned.buffer, aligned.byteOffset, count) };
}

/** Float32 copy of a decoded array (float16 bits decoded), for small arrays. */
export function toFloat32(decoded) {
  if (decoded.dtype === "float16") {
    const table = float16Values();
    const out = new Float32Array(decoded.data.length);
    for (let i = 0; i < out.length; i++) out[i] = table[decoded.data[i]];
    return out;
  }
  return decoded.data instanceof Float32Array ? decoded.data : Float32Array.from(decoded.data);
}
