// A small WebGL2 renderer for 3-D point clouds (hundreds of thousands of points): one draw call
// for all points (depth-tested round sprites), extra passes for highlighted groups drawn on top
// with a ring, an orbit camera, and CPU projection of every point for picking and lasso.
//
// Layers of a frame: the base (axes and every point) is drawn into an offscreen framebuffer and
// kept while the camera, sizes and colours stay; a selection change then only copies it to the
// screen, washes it towards white (dimming what is not selected) and draws the highlighted
// points on top: cheap even where WebGL runs without a GPU.

const VERTEX = `#version 300 es
in vec3 a_position;
in vec4 a_color;
in float a_size;
uniform mat4 u_matrix;
uniform float u_size;
uniform vec4 u_override;
out vec4 v_color;
void main() {
  gl_Position = u_matrix * vec4(a_position, 1.0);
  gl_PointSize = u_size * a_size;
  v_color = u_override.a > 0.0 ? u_override : a_color;
}`;

const FRAGMENT = `#version 300 es
precision mediump float;
in vec4 v_color;
uniform float u_round;
out vec4 out_color;
void main() {
  if (u_round > 0.5) {
    if (v_color.a < 0.02) discard;  // hidden points (alpha 0)
    vec2 d = gl_PointCoord - vec2(0.5);
    float r2 = dot(d, d);
    if (r2 > 0.25) discard;
    out_color = vec4(r2 > 0.14 ? v_color.rgb * 0.7 : v_color.rgb, v_color.a);
  } else {
    out_color = v_color;
  }
}`;

// ------------------------------------------------------------------ 4x4 matrices, column-major
export function multiply(a, b) {
  const out = new Float32Array(16);
  for (let c = 0; c < 4; c++) {
    for (let r = 0; r < 4; r++) {
      let s = 0;
      for (let k = 0; k < 4; k++) s += a[k * 4 + r] * b[c * 4 + k];
      out[c * 4 + r] = s;
    }
  }
  return out;
}

function perspective(fovy, aspect, near, far) {
  const f = 1 / Math.tan(fovy / 2);
  const nf = 1 / (near - far);
  return new Float32Array([f / aspect, 0, 0, 0, 0, f, 0, 0, 0, 0, (far + near) * nf, -1, 0, 0, 2 * far * near * nf, 0]);
}

function rotationX(a) {
  const c = Math.cos(a);
  const s = Math.sin(a);
  return new Float32Array([1, 0, 0, 0, 0, c, s, 0, 0, -s, c, 0, 0, 0, 0, 1]);
}

function rotationY(a) {
  const c = Math.cos(a);
  const s = Math.sin(a);
  return new Float32Array([c, 0, -s, 0, 0, 1, 0, 0, s, 0, c, 0, 0, 0, 0, 1]);
}

function translation(x, y, z) {
  return new Float32Array([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, x, y, z, 1]);
}

function scaling(s) {
  return new Float32Array([s, 0, 0, 0, 0, s, 0, 0, 0, 0, s, 0, 0, 0, 0, 1]);
}

function compile(gl, type, source) {
  const shader = gl.createShader(type);
  gl.shaderSource(shader, source);
  gl.compileShader(shader);
  if (!gl.getShaderParameter(shader, gl.COMPILE_STATUS)) throw new Error(gl.getShaderInfoLog(shader));
  return shader;
}

export const DEFAULT_CAMERA = { yaw: -0.6, pitch: 0.35, zoom: 1 };
const CAMERA_DISTANCE = 4.8; // the fitted data spans [-1, 1]: it and the axis labels stay in view

export class PointCloudRenderer {
  /** Throws when WebGL2 is not available. */
  constructor(canvas) {
    this.canvas = canvas;
    const gl = canvas.getContext("webgl2", { antialias: false, alpha: false });
    if (!gl) throw new Error("WebGL2 is not available in this browser");
    this.gl = gl;
    const program = gl.createProgram();
    gl.attachShader(program, compile(gl, gl.VERTEX_SHADER, VERTEX));
    gl.attachShader(program, compile(gl, gl.FRAGMENT_SHADER, FRAGMENT));
    gl.linkProgram(program);
    if (!gl.getProgramParameter(program, gl.LINK_STATUS)) throw new Error(gl.getProgramInfoLog(program));
    this.program = program;
    this.loc = {
      position: gl.getAttribLocation(program, "a_position"),
      color: gl.getAttribLocation(program, "a_color"),
      matrix: gl.getUniformLocation(program, "u_matrix"),
      size: gl.getUniformLocation(program, "u_size"),
      override: gl.getUniformLocation(program, "u_override"),
      round: gl.getUniformLocation(program, "u_round"),
      size_attr: gl.getAttribLocation(program, "a_size"),
    };
    this.points = this._vertexArray();
    this.sizes = gl.createBuffer(); // per-point size factors (setSizes), else 1
    this.translucent = false; // per-point opacity in the colours' alpha (setColors)
    this.axes = this._vertexArray();
    this.screen = this._vertexArray(); // one triangle covering the viewport (the white wash)
    gl.bindBuffer(gl.ARRAY_BUFFER, this.screen.position);
    gl.bufferData(gl.ARRAY_BUFFER, new Float32Array([-1, -1, 0, 3, -1, 0, -1, 3, 0]), gl.STATIC_DRAW);
    this.base = null; // {fbo, color, depth, width, height, valid}
    this.highlightBuffers = [];
    this.count = 0;
    this.positions = new Float32Array(0);
    this.center = [0, 0, 0];
    this.scale = 1;
    this.camera = { ...DEFAULT_CAMERA };
    this._pointSize = 4;
    this.dim = 0; // 0..1: how far the base layer is washed towards the background
    this.background = [1, 1, 1]; // RGB 0..1: the page's (theme's) background
    this.highlights = []; // [{indices: Uint32Array, ring: [r, g, b], grow}]
    this.hidden = null; // Uint8Array [N]: 1 = hidden (not drawn, not picked), or null
    this._projected = null;
    this._frame = 0;
    this._setAxes();
  }

  _vertexArray() {
    const gl = this.gl;
    const vao = gl.createVertexArray();
    const position = gl.createBuffer();
    const color = gl.createBuffer();
    gl.bindVertexArray(vao);
    gl.bindBuffer(gl.ARRAY_BUFFER, position);
    gl.enableVertexAttribArray(this.loc.position);
    gl.vertexAttribPointer(this.loc.position, 3, gl.FLOAT, false, 0, 0);
    gl.bindBuffer(gl.ARRAY_BUFFER, color);
    gl.enableVertexAttribArray(this.loc.color);
    gl.vertexAttribPointer(this.loc.color, 4, gl.UNSIGNED_BYTE, true, 0, 0);
    gl.disableVertexAttribArray(this.loc.size_attr);
    gl.vertexAttrib1f(this.loc.size_attr, 1);
    gl.bindVertexArray(null);
    return { vao, position, color };
  }

  _setAxes() {
    const gl = this.gl;
    const L = 1.15;
    const pos = new Float32Array([0, 0, 0, L, 0, 0, 0, 0, 0, 0, L, 0, 0, 0, 0, 0, 0, L]);
    const col = new Uint8Array([150, 150, 150, 255].concat(...Array(5).fill([150, 150, 150, 255])));
    gl.bindBuffer(gl.ARRAY_BUFFER, this.axes.position);
    gl.bufferData(gl.ARRAY_BUFFER, pos, gl.STATIC_DRAW);
    gl.bindBuffer(gl.ARRAY_BUFFER, this.axes.color);
    gl.bufferData(gl.ARRAY_BUFFER, col, gl.STATIC_DRAW);
  }

  /** positions: Float32Array [N * 3] in data units; the view is fitted to their bounding box. */
  setPositions(positions) {
    const gl = this.gl;
    this.positions = positions;
    this.count = positions.length / 3;
    const lo = [Infinity, Infinity, Infinity];
    const hi = [-Infinity, -Infinity, -Infinity];
    for (let i = 0; i < positions.length; i += 3) {
      for (let c = 0; c < 3; c++) {
        const v = positions[i + c];
        if (v < lo[c]) lo[c] = v;
        if (v > hi[c]) hi[c] = v;
      }
    }
    if (!this.count) lo.fill(0), hi.fill(0);
    this.center = lo.map((v, c) => (v + hi[c]) / 2);
    this.dataCenter = this.center.slice();
    const extent = Math.max(...hi.map((v, c) => v - lo[c]), 1e-12);
    this.extent = extent;
    this.scale = 2 / extent;
    gl.bindBuffer(gl.ARRAY_BUFFER, this.points.position);
    gl.bufferData(gl.ARRAY_BUFFER, positions, gl.STATIC_DRAW);
    // A seeded random permutation of the points: its first k entries are a uniform sample,
    // drawn instead of all points while the view moves on a slow (software) renderer.
    const order = new Uint32Array(this.count);
    for (let i = 0; i < order.length; i++) order[i] = i;
    let seed = 12345;
    for (let i = order.length - 1; i > 0; i--) {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      const j = seed % (i + 1);
      const t = order[i];
      order[i] = order[j];
      order[j] = t;
    }
    if (!this.orderBuffer) this.orderBuffer = gl.createBuffer();
    gl.bindBuffer(gl.ELEMENT_ARRAY_BUFFER, this.orderBuffer);
    gl.bufferData(gl.ELEMENT_ARRAY_BUFFER, order, gl.STATIC_DRAW);
    gl.bindBuffer(gl.ELEMENT_ARRAY_BUFFER, null);
    this.fullFrameMs = null;
    this._projected = null;
    this.invalidate();
  }

  /** Centre the view on points `indices` and zoom so that they fill it (at most 20x, the camera's limit); returns the zoom. */
  focusOn(indices) {
    if (!indices.length) return this.camera.zoom;
    const p = this.positions;
    const lo = [Infinity, Infinity, Infinity];
    const hi = [-Infinity, -Infinity, -Infinity];
    for (const i of indices) {
      for (let c = 0; c < 3; c++) {
        const v = p[i * 3 + c];
        if (v < lo[c]) lo[c] = v;
        if (v > hi[c]) hi[c] = v;
      }
    }
    this.center = lo.map((v, c) => (v + hi[c]) / 2);
    const extent = Math.max(...hi.map((v, c) => v - lo[c]), this.extent / 20);
    this.setCamera({ zoom: Math.min(20, Math.max(1, (0.8 * this.extent) / extent)) });
    return this.camera.zoom;
  }

  /** Back to the whole cloud's centre (the camera is reset separately). */
  resetFocus() {
    if (this.dataCenter) this.center = this.dataCenter.slice();
    this._projected = null;
    this.invalidate();
  }

  /** The cached base layer is stale (camera, size, colours or points changed). */
  invalidate() {
    if (this.base) this.base.valid = false;
  }

  get pointSize() {
    return this._pointSize;
  }

  set pointSize(px) {
    if (px !== this._pointSize) this.invalidate();
    this._pointSize = px;
  }

  /** Per-point size factors (Float32Array [N], 1 = pointSize) or null for one size. */
  setSizes(factors) {
    const gl = this.gl;
    gl.bindVertexArray(this.points.vao);
    if (factors) {
      gl.bindBuffer(gl.ARRAY_BUFFER, this.sizes);
      gl.bufferData(gl.ARRAY_BUFFER, factors, gl.DYNAMIC_DRAW);
      gl.enableVertexAttribArray(this.loc.size_attr);
      gl.vertexAttribPointer(this.loc.size_attr, 1, gl.FLOAT, false, 0, 0);
    } else {
      gl.disableVertexAttribArray(this.loc.size_attr);
    }
    gl.bindVertexArray(null);
    gl.vertexAttrib1f(this.loc.size_attr, 1);
    this.sizeFactors = factors;
    this.invalidate();
  }

  /** colors: Uint8Array [N * 4] RGBA (alpha 0: hidden; below 255: translucent, when `translucent`). */
  setColors(colors) {
    const gl = this.gl;
    gl.bindBuffer(gl.ARRAY_BUFFER, this.points.color);
    gl.bufferData(gl.ARRAY_BUFFER, colors, gl.DYNAMIC_DRAW);
    this.invalidate();
  }

  /** groups: [{indices: Uint32Array, ring: [r, g, b] in 0..1, grow: extra px}], drawn in order, on top. */
  setHighlights(groups) {
    const gl = this.gl;
    for (const b of this.highlightBuffers) gl.deleteBuffer(b);
    this.highlightBuffers = groups.map((g) => {
      const buffer = gl.createBuffer();
      gl.bindBuffer(gl.ELEMENT_ARRAY_BUFFER, buffer);
      gl.bufferData(gl.ELEMENT_ARRAY_BUFFER, g.indices, gl.DYNAMIC_DRAW);
      return buffer;
    });
    gl.bindBuffer(gl.ELEMENT_ARRAY_BUFFER, null);
    this.highlights = groups;
  }

  /** Model-view-projection matrix of the current camera and canvas size. */
  matrix() {
    const { width, height } = this.cssSize();
    const { yaw, pitch, zoom } = this.camera;
    const proj = perspective((35 * Math.PI) / 180, width / Math.max(height, 1), 0.1, 100);
    let m = multiply(proj, translation(0, 0, -CAMERA_DISTANCE / zoom));
    m = multiply(m, rotationX(pitch));
    m = multiply(m, rotationY(yaw));
    m = multiply(m, scaling(this.scale));
    return multiply(m, translation(-this.center[0], -this.center[1], -this.center[2]));
  }

  /** Matrix of the axis gizmo: the camera rotation around the data centre, unit length. */
  axisMatrix() {
    const { width, height } = this.cssSize();
    const { yaw, pitch, zoom } = this.camera;
    const proj = perspective((35 * Math.PI) / 180, width / Math.max(height, 1), 0.1, 100);
    return multiply(multiply(multiply(proj, translation(0, 0, -CAMERA_DISTANCE / zoom)), rotationX(pitch)), rotationY(yaw));
  }

  cssSize() {
    return { width: this.canvas.clientWidth || this.canvas.width, height: this.canvas.clientHeight || this.canvas.height };
  }

  /** Match the drawing buffer to the element size times the device pixel ratio. */
  resize() {
    const dpr = window.devicePixelRatio || 1;
    const { width, height } = this.cssSize();
    const w = Math.max(1, Math.round(width * dpr));
    const hgt = Math.max(1, Math.round(height * dpr));
    if (this.canvas.width !== w || this.canvas.height !== hgt) {
      this.canvas.width = w;
      this.canvas.height = hgt;
      this._projected = null;
      this.invalidate();
    }
  }

  setCamera(changes) {
    Object.assign(this.camera, changes);
    this.camera.pitch = Math.max(-1.55, Math.min(1.55, this.camera.pitch));
    this.camera.zoom = Math.max(0.2, Math.min(20, this.camera.zoom));
    this._projected = null;
    this.invalidate();
  }

  /** An offscreen framebuffer of the drawing-buffer size for the base layer. */
  _baseTarget() {
    const gl = this.gl;
    const { width, height } = this.canvas;
    if (this.base && this.base.width === width && this.base.height === height) return this.base;
    if (this.base) {
      gl.deleteFramebuffer(this.base.fbo);
      gl.deleteTexture(this.base.color);
      gl.deleteRenderbuffer(this.base.depth);
    }
    const color = gl.createTexture();
    gl.bindTexture(gl.TEXTURE_2D, color);
    gl.texStorage2D(gl.TEXTURE_2D, 1, gl.RGBA8, width, height);
    const depth = gl.createRenderbuffer();
    gl.bindRenderbuffer(gl.RENDERBUFFER, depth);
    gl.renderbufferStorage(gl.RENDERBUFFER, gl.DEPTH_COMPONENT24, width, height);
    const fbo = gl.createFramebuffer();
    gl.bindFramebuffer(gl.FRAMEBUFFER, fbo);
    gl.framebufferTexture2D(gl.FRAMEBUFFER, gl.COLOR_ATTACHMENT0, gl.TEXTURE_2D, color, 0);
    gl.framebufferRenderbuffer(gl.FRAMEBUFFER, gl.DEPTH_ATTACHMENT, gl.RENDERBUFFER, depth);
    gl.bindFramebuffer(gl.FRAMEBUFFER, null);
    this.base = { fbo, color, depth, width, height, valid: false };
    return this.base;
  }

  /** Axes and points (a random sample of `budget` points, or all) into the bound framebuffer. */
  _drawBase(budget) {
    const gl = this.gl;
    const dpr = window.devicePixelRatio || 1;
    gl.viewport(0, 0, this.canvas.width, this.canvas.height);
    gl.clearColor(...this.background, 1);
    gl.clear(gl.COLOR_BUFFER_BIT | gl.DEPTH_BUFFER_BIT);
    gl.uniform4f(this.loc.override, 0, 0, 0, 0);
    gl.disable(gl.DEPTH_TEST);
    gl.uniformMatrix4fv(this.loc.matrix, false, this.axisMatrix());
    gl.uniform1f(this.loc.round, 0);
    gl.bindVertexArray(this.axes.vao);
    gl.drawArrays(gl.LINES, 0, 6);
    gl.enable(gl.DEPTH_TEST);
    if (this.translucent) {
      // opacity encoding: blended, and no point hides another behind it
      gl.enable(gl.BLEND);
      gl.blendFunc(gl.SRC_ALPHA, gl.ONE_MINUS_SRC_ALPHA);
      gl.depthMask(false);
    }
    gl.uniformMatrix4fv(this.loc.matrix, false, this.matrix());
    gl.uniform1f(this.loc.round, 1);
    gl.uniform1f(this.loc.size, this.pointSize * dpr);
    gl.bindVertexArray(this.points.vao);
    if (budget < this.count) {
      gl.bindBuffer(gl.ELEMENT_ARRAY_BUFFER, this.orderBuffer);
      gl.drawElements(gl.POINTS, Math.max(1, Math.floor(budget)), gl.UNSIGNED_INT, 0);
    } else {
      gl.drawArrays(gl.POINTS, 0, this.count);
    }
    gl.depthMask(true);
    gl.disable(gl.BLEND);
    gl.disable(gl.DEPTH_TEST);
  }

  /** Draw now: every point, or a uniform random sample of `budget` points (while moving). */
  render({ budget = Infinity } = {}) {
    const gl = this.gl;
    const dpr = window.devicePixelRatio || 1;
    this.resize();
    const { width, height } = this.canvas;
    gl.useProgram(this.program);
    if (budget < this.count) {
      gl.bindFramebuffer(gl.FRAMEBUFFER, null);
      this._drawBase(budget);
      this.invalidate();
    } else {
      const base = this._baseTarget();
      if (!base.valid) {
        gl.bindFramebuffer(gl.FRAMEBUFFER, base.fbo);
        this._drawBase(Infinity);
        base.valid = true;
      }
      // Clear the canvas first: browsers clear a presented drawing buffer lazily, at the next
      // draw or clear, which would otherwise wipe the copied base layer.
      gl.bindFramebuffer(gl.FRAMEBUFFER, null);
      gl.clearColor(...this.background, 1);
      gl.clear(gl.COLOR_BUFFER_BIT | gl.DEPTH_BUFFER_BIT);
      gl.bindFramebuffer(gl.READ_FRAMEBUFFER, base.fbo);
      gl.bindFramebuffer(gl.DRAW_FRAMEBUFFER, null);
      gl.blitFramebuffer(0, 0, width, height, 0, 0, width, height, gl.COLOR_BUFFER_BIT, gl.NEAREST);
      gl.bindFramebuffer(gl.FRAMEBUFFER, null);
    }
    gl.viewport(0, 0, width, height);
    gl.disable(gl.DEPTH_TEST);
    gl.uniform1f(this.loc.round, 0);
    if (this.dim > 0) {
      // wash towards white: what is not highlighted fades
      gl.enable(gl.BLEND);
      gl.blendFunc(gl.SRC_ALPHA, gl.ONE_MINUS_SRC_ALPHA);
      gl.uniformMatrix4fv(this.loc.matrix, false, new Float32Array([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]));
      gl.uniform4f(this.loc.override, ...this.background, this.dim);
      gl.bindVertexArray(this.screen.vao);
      gl.drawArrays(gl.TRIANGLES, 0, 3);
      gl.disable(gl.BLEND);
    }
    // highlighted groups on top: a coloured ring, then the point in its own colour
    gl.uniformMatrix4fv(this.loc.matrix, false, this.matrix());
    gl.uniform1f(this.loc.round, 1);
    gl.bindVertexArray(this.points.vao);
    this.highlights.forEach((g, k) => {
      if (!g.indices.length) return;
      gl.bindBuffer(gl.ELEMENT_ARRAY_BUFFER, this.highlightBuffers[k]);
      gl.uniform4f(this.loc.override, g.ring[0], g.ring[1], g.ring[2], 1);
      gl.uniform1f(this.loc.size, (this.pointSize + g.grow + 3) * dpr);
      gl.drawElements(gl.POINTS, g.indices.length, gl.UNSIGNED_INT, 0);
      gl.uniform4f(this.loc.override, 0, 0, 0, 0);
      gl.uniform1f(this.loc.size, (this.pointSize + g.grow) * dpr);
      gl.drawElements(gl.POINTS, g.indices.length, gl.UNSIGNED_INT, 0);
    });
    gl.bindVertexArray(null);
    this._frame++;
  }

  /** Draw every point and wait for the result: the cost of a full frame in ms (kept in fullFrameMs). */
  measureFullFrame() {
    this.invalidate();
    const t0 = performance.now();
    this.render();
    this.gl.readPixels(0, 0, 1, 1, this.gl.RGBA, this.gl.UNSIGNED_BYTE, new Uint8Array(4));
    this.fullFrameMs = performance.now() - t0;
    return this.fullFrameMs;
  }

  /** Screen positions (CSS px) and depths of every point for the current camera, cached. */
  projected() {
    if (this._projected) return this._projected;
    const m = this.matrix();
    const { width, height } = this.cssSize();
    const n = this.count;
    const x = new Float32Array(n);
    const y = new Float32Array(n);
    const depth = new Float32Array(n);
    const p = this.positions;
    for (let i = 0; i < n; i++) {
      const px = p[i * 3];
      const py = p[i * 3 + 1];
      const pz = p[i * 3 + 2];
      const w = m[3] * px + m[7] * py + m[11] * pz + m[15];
      x[i] = ((m[0] * px + m[4] * py + m[8] * pz + m[12]) / w + 1) * 0.5 * width;
      y[i] = (1 - (m[1] * px + m[5] * py + m[9] * pz + m[13]) / w) * 0.5 * height;
      depth[i] = w > 0 ? (m[2] * px + m[6] * py + m[10] * pz + m[14]) / w : Infinity;
    }
    this._projected = { x, y, depth };
    return this._projected;
  }

  /** Screen position (CSS px) of a point in data units, through matrix m (default: the camera). */
  projectPoint(px, py, pz, m = this.matrix()) {
    const { width, height } = this.cssSize();
    const w = m[3] * px + m[7] * py + m[11] * pz + m[15];
    return [((m[0] * px + m[4] * py + m[8] * pz + m[12]) / w + 1) * 0.5 * width, (1 - (m[1] * px + m[5] * py + m[9] * pz + m[13]) / w) * 0.5 * height];
  }

  /** Index of the point nearest to (x, y) within `radius` CSS px (front-most on ties), or -1. */
  pick(x, y, radius = 7) {
    const { x: sx, y: sy, depth } = this.projected();
    let best = -1;
    let bestD = radius * radius;
    let bestZ = Infinity;
    for (let i = 0; i < sx.length; i++) {
      const dx = sx[i] - x;
      const dy = sy[i] - y;
      const d = dx * dx + dy * dy;
      if (d < bestD - 1e-6 || (d <= bestD + 1e-6 && depth[i] < bestZ)) {
        if (depth[i] < -1 || depth[i] > 1 || (this.hidden && this.hidden[i])) continue;
        best = i;
        bestD = d;
        bestZ = depth[i];
      }
    }
    return best;
  }

  /** Indices of the points inside a screen polygon [[x, y], ...] (CSS px). */
  inside(polygon) {
    if (polygon.length < 3) return [];
    const { x: sx, y: sy, depth } = this.projected();
    let x0 = Infinity;
    let x1 = -Infinity;
    let y0 = Infinity;
    let y1 = -Infinity;
    for (const [px, py] of polygon) {
      x0 = Math.min(x0, px);
      x1 = Math.max(x1, px);
      y0 = Math.min(y0, py);
      y1 = Math.max(y1, py);
    }
    const out = [];
    for (let i = 0; i < sx.length; i++) {
      const x = sx[i];
      const y = sy[i];
      if (x < x0 || x > x1 || y < y0 || y > y1 || depth[i] < -1 || depth[i] > 1 || (this.hidden && this.hidden[i])) continue;
      let isIn = false;
      for (let a = 0, b = polygon.length - 1; a < polygon.length; b = a++) {
        const [xa, ya] = polygon[a];
        const [xb, yb] = polygon[b];
        if (ya > y !== yb > y && x < ((xb - xa) * (y - ya)) / (yb - ya) + xa) isIn = !isIn;
      }
      if (isIn) out.push(i);
    }
    return out;
  }

  dispose() {
    if (this.base) {
      this.gl.deleteFramebuffer(this.base.fbo);
      this.gl.deleteTexture(this.base.color);
      this.gl.deleteRenderbuffer(this.base.depth);
    }
    const lose = this.gl.getExtension("WEBGL_lose_context");
    if (lose) lose.loseContext();
  }
}
