/*
 * The latent explorer's page script (see src/plots/explorer.ts, which embeds this file's text once per
 * figure). Plain browser JavaScript, no library: it unpacks each coefficient's quantised decoder,
 * decodes the latent point under the mouse (2 -> 512 relu -> 784 sigmoid, about 400,000 multiply-adds),
 * and draws the encoder scatter on a canvas. Node's test runner evaluates the same text to test the
 * unpacking and the decoder (test/plots/explorer.test.ts), so it must run in Node 20 too: it uses only
 * atob, Blob, Response and DecompressionStream outside of `mount`.
 */
var VaeExplorer = (function () {
  "use strict";

  /** Bytes of a base64 string. */
  function base64Bytes(text) {
    var binary = atob(text);
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes;
  }

  /** Little-endian float32 values of a base64 string (a DataView, so the page's byte order does not matter). */
  function base64Float32(text) {
    var bytes = base64Bytes(text);
    var view = new DataView(bytes.buffer);
    var values = new Float32Array(bytes.length / 4);
    for (var i = 0; i < values.length; i++) values[i] = view.getFloat32(4 * i, true);
    return values;
  }

  /** Little-endian int16 values of a base64 string. */
  function base64Int16(text) {
    var bytes = base64Bytes(text);
    var view = new DataView(bytes.buffer);
    var values = new Int16Array(bytes.length / 2);
    for (var i = 0; i < values.length; i++) values[i] = view.getInt16(2 * i, true);
    return values;
  }

  /** Inflates zlib-compressed bytes with the browser's own DecompressionStream. */
  function inflate(bytes) {
    var stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate"));
    return new Response(stream).arrayBuffer().then(function (buffer) {
      return new Uint8Array(buffer);
    });
  }

  /** Values of column-quantised codes: low[j] + code * step[j], rounded to float32 (`dequantizeColumns` in explorer.ts). */
  function dequantize(codes, offset, rows, cols, low, step, lowOffset) {
    var values = new Float32Array(rows * cols);
    for (var i = 0; i < rows * cols; i++)
      values[i] = low[lowOffset + (i % cols)] + codes[offset + i] * step[lowOffset + (i % cols)];
    return values;
  }

  /**
   * The decoder of one packed coefficient (the format of `packDecoder` in explorer.ts). The output
   * kernel comes as two quantised factors, [hiddenDim, rank] and [outputDim, rank]; their product is
   * summed in the same order and rounded to float32 as the kernel side does (`lowRankProduct`), so both
   * sides multiply by the same numbers.
   */
  function unpackDecoder(packed) {
    return inflate(base64Bytes(packed.codes)).then(function (bytes) {
      var hiddenDim = packed.hiddenDim;
      var outputDim = packed.outputDim;
      var rank = packed.rank;
      var count = (hiddenDim + outputDim) * rank;
      if (bytes.length !== 2 * count)
        throw new Error("the packed decoder holds " + bytes.length / 2 + " codes, not " + count);
      var view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
      var codes = new Uint16Array(count);
      for (var c = 0; c < count; c++) codes[c] = view.getUint16(2 * c, true);
      var low = base64Float32(packed.low);
      var step = base64Float32(packed.step);
      var left = dequantize(codes, 0, hiddenDim, rank, low, step, 0);
      var right = dequantize(codes, hiddenDim * rank, outputDim, rank, low, step, rank);
      var outputKernel = new Float32Array(hiddenDim * outputDim);
      for (var i = 0; i < hiddenDim; i++) {
        for (var j = 0; j < outputDim; j++) {
          var sum = 0;
          for (var k = 0; k < rank; k++) sum += left[i * rank + k] * right[j * rank + k];
          outputKernel[i * outputDim + j] = sum;
        }
      }
      return {
        latentDim: packed.latentDim,
        hiddenDim: hiddenDim,
        outputDim: outputDim,
        hiddenKernel: base64Float32(packed.hiddenKernel),
        hiddenBias: base64Float32(packed.hiddenBias),
        outputKernel: outputKernel,
        outputBias: base64Float32(packed.outputBias),
      };
    });
  }

  /**
   * sigmoid(relu(z W1 + b1) W2 + b2) for one latent point, as the tutorial's decoder. Hidden units that
   * the ReLU switches off are skipped: they add exactly zero.
   */
  function decode(decoder, z) {
    var hiddenDim = decoder.hiddenDim;
    var outputDim = decoder.outputDim;
    var logits = new Float64Array(outputDim);
    for (var j = 0; j < outputDim; j++) logits[j] = decoder.outputBias[j];
    for (var i = 0; i < hiddenDim; i++) {
      var hidden = decoder.hiddenBias[i];
      for (var k = 0; k < decoder.latentDim; k++) hidden += z[k] * decoder.hiddenKernel[k * hiddenDim + i];
      if (hidden <= 0) continue;
      var row = i * outputDim;
      for (var m = 0; m < outputDim; m++) logits[m] += hidden * decoder.outputKernel[row + m];
    }
    var pixels = new Float32Array(outputDim);
    for (var p = 0; p < outputDim; p++) pixels[p] = 1 / (1 + Math.exp(-logits[p]));
    return pixels;
  }

  /** `steps` latent points evenly spaced from `from` to `to`, both included. */
  function linePath(from, to, steps) {
    var points = [];
    for (var s = 0; s < steps; s++) {
      var t = steps === 1 ? 0 : s / (steps - 1);
      points.push([from[0] + t * (to[0] - from[0]), from[1] + t * (to[1] - from[1])]);
    }
    return points;
  }

  /** The decoded digits along the straight line from `from` to `to` (10 steps in the explorer). */
  function decodePath(decoder, from, to, steps) {
    return linePath(from, to, steps).map(function (z) {
      return decode(decoder, z);
    });
  }

  /** Viridis at the ten digits, as the scatters of the notebooks colour them. */
  var DIGIT_COLOURS = [
    "#440154",
    "#482878",
    "#3e4989",
    "#31688e",
    "#26828e",
    "#1f9e89",
    "#35b779",
    "#6ece58",
    "#b5de2b",
    "#fde725",
  ];
  var SCATTER_SIZE = 440;
  var MARGIN = { left: 46, right: 10, top: 10, bottom: 36 };
  var PATH_STEPS = 10;

  /** Draws row-major greyscale values in [0, 1] (white digit on black, as the manifolds) on a canvas. */
  function drawDigits(canvas, digits, side) {
    var context = canvas.getContext("2d");
    var image = context.createImageData(side * digits.length, side);
    digits.forEach(function (pixels, index) {
      for (var y = 0; y < side; y++) {
        for (var x = 0; x < side; x++) {
          var grey = Math.round(255 * pixels[y * side + x]);
          var offset = 4 * (y * side * digits.length + index * side + x);
          image.data[offset] = image.data[offset + 1] = image.data[offset + 2] = grey;
          image.data[offset + 3] = 255;
        }
      }
    });
    context.putImageData(image, 0, 0);
  }

  function element(tag, style, text) {
    var node = document.createElement(tag);
    if (style) node.style.cssText = style;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function niceTicks(low, high) {
    var raw = (high - low) / 6;
    var power = Math.pow(10, Math.floor(Math.log10(raw)));
    var step = [1, 2, 5, 10]
      .map(function (f) {
        return f * power;
      })
      .find(function (s) {
        return s >= raw;
      });
    var ticks = [];
    for (var t = Math.ceil(low / step) * step; t <= high + 1e-9; t += step) ticks.push(Math.round(t / step) * step);
    return ticks;
  }

  /**
   * Builds the explorer inside the element `rootId` from the embedded spec, then hides the static
   * fallback. Returns a promise of the explorer's handle, also kept as `root.vaeExplorer` for tests.
   */
  function mount(rootId, spec, attempt) {
    var root = document.getElementById(rootId);
    if (!root) {
      // JupyterLab may run an output's scripts before it attaches the output to the page: wait for it (10 s at most).
      if ((attempt || 0) >= 100) return Promise.resolve(undefined);
      return new Promise(function (resolve) {
        setTimeout(resolve, 100);
      }).then(function () {
        return mount(rootId, spec, (attempt || 0) + 1);
      });
    }
    // Without DecompressionStream (browsers before 2023) the static grid stays.
    if (typeof DecompressionStream === "undefined") return Promise.resolve(undefined);
    var side = spec.digitSide;
    var labels = base64Bytes(spec.labels);
    return Promise.all(
      spec.coefficients.map(function (c) {
        return unpackDecoder(c.decoder);
      }),
    )
      .then(function (decoders) {
        var coefficients = spec.coefficients.map(function (c, index) {
          var raw = base64Int16(c.points);
          var points = new Float32Array(raw.length);
          for (var i = 0; i < raw.length; i++) points[i] = raw[i] * c.pointScale;
          return { klCoefficient: c.klCoefficient, window: c.window, points: points, decoder: decoders[index] };
        });
        var live = element("div", "font-family: DejaVu Sans, Arial, sans-serif; font-size: 14px; color: #222");
        var buttons = element("div", "margin-bottom: 8px");
        var legend = element("div", "margin: 0 0 6px; color: #555", "digit: ");
        DIGIT_COLOURS.forEach(function (colour, label) {
          var swatch = element(
            "span",
            "display: inline-block; width: 10px; height: 10px; margin: 0 3px 0 8px; background: " + colour,
          );
          legend.append(swatch, document.createTextNode(String(label)));
        });
        var row = element("div", "display: flex; gap: 18px; align-items: flex-start");
        var scatter = element(
          "canvas",
          "width: " + SCATTER_SIZE + "px; height: " + SCATTER_SIZE + "px; cursor: crosshair; border: 1px solid #ccc",
        );
        var ratio = window.devicePixelRatio || 1;
        scatter.width = SCATTER_SIZE * ratio;
        scatter.height = SCATTER_SIZE * ratio;
        scatter.className = "vae-explorer-scatter";
        var sidePanel = element("div", "");
        var digit = element(
          "canvas",
          "width: 196px; height: 196px; image-rendering: pixelated; border: 1px solid #ccc; background: #000",
        );
        digit.width = side;
        digit.height = side;
        digit.className = "vae-explorer-digit";
        var readout = element(
          "div",
          "margin-top: 6px; font-variant-numeric: tabular-nums",
          "move the mouse over the scatter",
        );
        var hint = element(
          "div",
          "margin-top: 6px; color: #555; max-width: 220px",
          "The decoder's output for the point under the mouse, computed in this page. Click two points to decode the path between them.",
        );
        sidePanel.append(digit, readout, hint);
        row.append(scatter, sidePanel);
        var pathTitle = element("div", "margin-top: 10px", "Path: click a first point");
        var pathCanvas = element(
          "canvas",
          "width: " +
            PATH_STEPS * 56 +
            "px; height: 56px; image-rendering: pixelated; border: 1px solid #ccc; background: #000",
        );
        pathCanvas.width = PATH_STEPS * side;
        pathCanvas.height = side;
        pathCanvas.className = "vae-explorer-path";
        live.append(buttons, legend, row, pathTitle, pathCanvas);

        var state = { index: 0, last: undefined, path: undefined, from: undefined };
        var plot = {
          left: MARGIN.left,
          top: MARGIN.top,
          width: SCATTER_SIZE - MARGIN.left - MARGIN.right,
          height: SCATTER_SIZE - MARGIN.top - MARGIN.bottom,
        };

        function current() {
          return coefficients[state.index];
        }
        /** Latent point at a position in the canvas (CSS pixels from its top left corner). */
        function latentAt(x, y) {
          var w = current().window;
          return [
            Math.fround(w[0] + ((x - plot.left) / plot.width) * (w[1] - w[0])),
            Math.fround(w[1] - ((y - plot.top) / plot.height) * (w[1] - w[0])),
          ];
        }
        /** Position in the canvas (CSS pixels) of a latent point: the inverse of `latentAt`. */
        function positionOf(z) {
          var w = current().window;
          return [
            plot.left + ((z[0] - w[0]) / (w[1] - w[0])) * plot.width,
            plot.top + ((w[1] - z[1]) / (w[1] - w[0])) * plot.height,
          ];
        }
        function inside(x, y) {
          return x >= plot.left && x <= plot.left + plot.width && y >= plot.top && y <= plot.top + plot.height;
        }

        function drawScatter() {
          var context = scatter.getContext("2d");
          context.setTransform(ratio, 0, 0, ratio, 0, 0);
          context.fillStyle = "#fff";
          context.fillRect(0, 0, SCATTER_SIZE, SCATTER_SIZE);
          var c = current();
          context.save();
          context.beginPath();
          context.rect(plot.left, plot.top, plot.width, plot.height);
          context.clip();
          for (var i = 0; i < labels.length; i++) {
            var p = positionOf([c.points[2 * i], c.points[2 * i + 1]]);
            context.fillStyle = DIGIT_COLOURS[labels[i]];
            context.fillRect(p[0] - 1.5, p[1] - 1.5, 3, 3);
          }
          if (state.from) markPoint(context, state.from);
          if (state.path) markPoint(context, state.path.to);
          if (state.path) {
            var a = positionOf(state.path.from);
            var b = positionOf(state.path.to);
            context.strokeStyle = "#d62728";
            context.lineWidth = 1.5;
            context.beginPath();
            context.moveTo(a[0], a[1]);
            context.lineTo(b[0], b[1]);
            context.stroke();
            markPoint(context, state.path.from);
          }
          context.restore();
          context.strokeStyle = "#888";
          context.strokeRect(plot.left, plot.top, plot.width, plot.height);
          context.fillStyle = "#222";
          context.font = "11px DejaVu Sans, Arial, sans-serif";
          niceTicks(c.window[0], c.window[1]).forEach(function (t) {
            var x = positionOf([t, 0])[0];
            var y = positionOf([0, t])[1];
            context.textAlign = "center";
            context.fillText(String(t), x, plot.top + plot.height + 14);
            context.textAlign = "right";
            context.fillText(String(t), plot.left - 4, y + 4);
          });
          context.textAlign = "center";
          context.fillText("z[0]", plot.left + plot.width / 2, SCATTER_SIZE - 4);
          context.save();
          context.translate(12, plot.top + plot.height / 2);
          context.rotate(-Math.PI / 2);
          context.fillText("z[1]", 0, 0);
          context.restore();
        }
        function markPoint(context, z) {
          var p = positionOf(z);
          context.strokeStyle = "#d62728";
          context.lineWidth = 2;
          context.beginPath();
          context.arc(p[0], p[1], 5, 0, 2 * Math.PI);
          context.stroke();
        }

        function show(z) {
          var c = current();
          var pixels = decode(c.decoder, z);
          state.last = { klCoefficient: c.klCoefficient, z: z, pixels: pixels };
          drawDigits(digit, [pixels], side);
          readout.textContent = "c = " + c.klCoefficient + ", z = (" + z[0].toFixed(3) + ", " + z[1].toFixed(3) + ")";
        }
        function showPath() {
          if (!state.path) {
            pathTitle.textContent = state.from ? "Path: click a second point" : "Path: click a first point";
            return;
          }
          var c = current();
          var digits = decodePath(c.decoder, state.path.from, state.path.to, PATH_STEPS);
          state.path = { klCoefficient: c.klCoefficient, from: state.path.from, to: state.path.to, digits: digits };
          drawDigits(pathCanvas, digits, side);
          var f = state.path.from;
          var t = state.path.to;
          pathTitle.textContent =
            "Path for c = " +
            c.klCoefficient +
            " from (" +
            f[0].toFixed(2) +
            ", " +
            f[1].toFixed(2) +
            ") to (" +
            t[0].toFixed(2) +
            ", " +
            t[1].toFixed(2) +
            "), " +
            PATH_STEPS +
            " steps";
        }
        function select(index) {
          state.index = index;
          Array.prototype.forEach.call(buttons.children, function (button, i) {
            button.style.background = i === index ? "#31688e" : "#f3f3f3";
            button.style.color = i === index ? "#fff" : "#222";
          });
          drawScatter();
          if (state.last) show(state.last.z);
          showPath();
        }
        function eventPosition(event) {
          var box = scatter.getBoundingClientRect();
          return [event.clientX - box.left, event.clientY - box.top];
        }

        coefficients.forEach(function (c, index) {
          var button = element(
            "button",
            "margin-right: 4px; padding: 3px 9px; border: 1px solid #999; border-radius: 3px; cursor: pointer",
            "c = " + c.klCoefficient,
          );
          button.type = "button";
          button.addEventListener("click", function () {
            select(index);
          });
          buttons.append(button);
        });
        scatter.addEventListener("mousemove", function (event) {
          var p = eventPosition(event);
          if (inside(p[0], p[1])) show(latentAt(p[0], p[1]));
        });
        scatter.addEventListener("click", function (event) {
          var p = eventPosition(event);
          if (!inside(p[0], p[1])) return;
          var z = latentAt(p[0], p[1]);
          if (state.from) {
            state.path = { from: state.from, to: z };
            state.from = undefined;
          } else {
            state.from = z;
            state.path = undefined;
          }
          drawScatter();
          showPath();
        });

        var fallback = root.querySelector(".vae-explorer-fallback");
        if (fallback) fallback.style.display = "none";
        root.append(live);
        select(spec.initialIndex || 0);
        show([0, 0]);
        var handle = {
          state: state,
          coefficients: coefficients.map(function (c) {
            return c.klCoefficient;
          }),
          positionOf: positionOf,
          latentAt: latentAt,
          select: select,
          scatter: scatter,
        };
        root.vaeExplorer = handle;
        return handle;
      })
      .catch(function (error) {
        // The static grid stays; the note says why the explorer is missing.
        root.append(element("p", "color: #b42318", "The latent explorer could not start: " + error.message));
        return undefined;
      });
  }

  return {
    base64Bytes: base64Bytes,
    base64Float32: base64Float32,
    base64Int16: base64Int16,
    inflate: inflate,
    unpackDecoder: unpackDecoder,
    decode: decode,
    linePath: linePath,
    decodePath: decodePath,
    mount: mount,
  };
})();
if (typeof window !== "undefined" && !window.VaeExplorer) window.VaeExplorer = VaeExplorer;
