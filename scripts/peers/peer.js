// A peer's face + emotion pipeline, timed photo by photo, for scripts/bench_peers.sh.
//
//   node peer.js human|faceapi MODULES_DIR
//
// Reads one JSON request per line on stdin, {"file": PATH, "reps": N, "warmup": W}, and answers each
// with one JSON line: the JPEG decode time (jpeg-js, pure JavaScript; not counted as the peer's time,
// since a browser or tfjs-node would decode natively), the time of each of the N detections of the
// decoded image (after W unmeasured ones), wall-clock and CPU time of the whole process (all its
// threads: the garbage collector's too), and the faces found with their top emotion.
// The first line it writes is a description of the setup (versions, backend, SIMD, threads).
//
// Both peers run on tfjs 4.22's WebAssembly backend with SIMD and one thread, with only what
// emotiond does enabled: face detection and emotion. Human's result caching (meant for video,
// where it skips the detector on similar frames) is switched off, so every call does the work.
'use strict';
const fs = require('fs');
const path = require('path');
const readline = require('readline');

const [which, modules] = process.argv.slice(2);
if (!['human', 'faceapi'].includes(which) || !modules) {
  process.stderr.write('usage: node peer.js human|faceapi MODULES_DIR\n');
  process.exit(2);
}
const need = (name) => require(path.join(modules, 'node_modules', name));
const jpeg = need('jpeg-js');
const wasmDir = path.join(modules, 'node_modules', '@tensorflow', 'tfjs-backend-wasm', 'dist') + path.sep;
const now = () => Number(process.hrtime.bigint()) / 1e6;

// Node's fetch has no file:// scheme and tfjs' wasm build loads models with fetch: serve the
// packaged model files from disk (nothing is fetched from the network).
const netFetch = globalThis.fetch;
globalThis.fetch = async (url, init) => {
  const u = String(url && url.url ? url.url : url);
  if (!u.startsWith('file://')) return netFetch(url, init);
  return new Response(fs.readFileSync(new URL(u)), { status: 200 });
};

function decode(file) {
  const buf = fs.readFileSync(file);
  const t0 = now();
  const img = jpeg.decode(buf, { useTArray: true, formatAsRGBA: false, maxMemoryUsageInMB: 1024 });
  return { img, ms: now() - t0 };
}

async function setupHuman() {
  need('@tensorflow/tfjs-backend-wasm').setWasmPaths(wasmDir);
  const { Human } = need('@vladmandic/human/dist/human.node-wasm.js');
  const off = { enabled: false };
  const human = new Human({
    backend: 'wasm',
    wasmPath: wasmDir,
    wasmPlatformFetch: false,
    modelBasePath: 'file://' + path.join(modules, 'node_modules', '@vladmandic', 'human', 'models') + '/',
    debug: false,
    async: false,
    warmup: 'none',
    cacheSensitivity: 0,
    filter: { enabled: false },
    face: {
      enabled: true,
      detector: { enabled: true, rotation: false, maxDetected: 50, skipFrames: 0, skipTime: 0, return: false },
      mesh: off, iris: off, attention: off, description: off, antispoof: off, liveness: off,
      emotion: { enabled: true, skipFrames: 0, skipTime: 0 },
    },
    body: off, hand: off, object: off, gesture: off, segmentation: off,
  });
  const tf = human.tf;
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
  await human.load();
  await tf.ready();
  const info = {
    peer: '@vladmandic/human ' + human.version, tfjs: tf.version_core, backend: tf.getBackend(),
    simd: await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'),
    threads: await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT') ? 'multi' : 1,
    models: Object.keys(human.models.models || {}).filter((k) => human.models.models[k]),
  };
  const detect = async (tensor) => {
    const res = await human.detect(tensor);
    return res.face.map((f) => {
      const top = (f.emotion || []).reduce((a, b) => (!a || b.score > a.score ? b : a), null);
      return { box: f.box.map(Math.round), emotion: top ? top.emotion : null, score: top ? top.score : null };
    });
  };
  return { tf, info, detect };
}

async function setupFaceApi() {
  const tf = need('@tensorflow/tfjs');
  const wasm = need('@tensorflow/tfjs-backend-wasm');
  wasm.setWasmPaths(wasmDir);
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
  await tf.setBackend('wasm');
  await tf.ready();
  const faceapi = need('@vladmandic/face-api/dist/face-api.node-wasm.js');
  const dir = path.join(modules, 'node_modules', '@vladmandic', 'face-api', 'model');
  await faceapi.nets.tinyFaceDetector.loadFromDisk(dir);
  await faceapi.nets.faceExpressionNet.loadFromDisk(dir);
  // The tiny detector (the faster of face-api's two) at its default 416 px input; the expression
  // net needs no landmarks: it classifies the detector's box.
  const options = new faceapi.TinyFaceDetectorOptions({ inputSize: 416, scoreThreshold: 0.5 });
  const info = {
    peer: '@vladmandic/face-api ' + faceapi.version, tfjs: tf.version_core, backend: tf.getBackend(),
    simd: await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'),
    threads: await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT') ? 'multi' : 1,
    models: ['tinyFaceDetector (416)', 'faceExpressionNet'],
  };
  const detect = async (tensor) => {
    const res = await faceapi.detectAllFaces(tensor, options).withFaceExpressions();
    return res.map((r) => {
      const b = r.detection.box;
      const [emotion, score] = Object.entries(r.expressions).reduce((a, e) => (e[1] > a[1] ? e : a));
      return { box: [b.x, b.y, b.width, b.height].map(Math.round), emotion, score };
    });
  };
  return { tf, info, detect };
}

async function main() {
  const peer = which === 'human' ? await setupHuman() : await setupFaceApi();
  process.stdout.write(JSON.stringify(peer.info) + '\n');
  const rl = readline.createInterface({ input: process.stdin });
  for await (const line of rl) {
    if (!line.trim()) continue;
    const req = JSON.parse(line);
    const { img, ms: decodeMs } = decode(req.file);
    const t0 = now();
    // float32, which both peers compute in: an int32 tensor costs Human a cast of every pixel
    // (about 30 % more time on a 1920-px photo), which the peer's own image loading would avoid.
    const tensor = peer.tf.tensor3d(new Float32Array(img.data), [img.height, img.width, 3], 'float32');
    const tensorMs = now() - t0;
    let faces = [];
    const times = [];
    const cpu = [];
    for (let i = 0; i < (req.warmup || 0) + (req.reps || 1); i++) {
      const t = now();
      const c = process.cpuUsage();
      faces = await peer.detect(tensor);
      const dc = process.cpuUsage(c);
      if (i >= (req.warmup || 0)) {
        times.push(now() - t);
        cpu.push((dc.user + dc.system) / 1000);
      }
    }
    peer.tf.dispose(tensor);
    process.stdout.write(JSON.stringify({
      file: req.file, width: img.width, height: img.height, decode_ms: decodeMs, tensor_ms: tensorMs,
      times_ms: times, cpu_ms: cpu, faces,
    }) + '\n');
  }
}

main().catch((e) => { process.stderr.write((e && e.stack) || String(e)); process.stderr.write('\n'); process.exit(1); });
