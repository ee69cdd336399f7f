// face-api.js's expression network on face crops, for scripts/eval_faceapi.py.
//
//   node expressions.js MODULES_DIR FACES N PROBS
//
// FACES holds N grey 48x48 faces, row after row (uint8); PROBS receives N rows of seven float32
// probabilities in FER2013's class order (angry, disgust, fear, happy, sad, surprise, neutral).
// Each face is given to the network as it is, grey in all three channels: face-api pads it to a
// square and scales it to its 112-pixel input itself, as for a detector's box.
'use strict';
const fs = require('fs');
const path = require('path');

const [modules, facesPath, nArg, probsPath] = process.argv.slice(2);
const n = Number(nArg);
if (!modules || !facesPath || !probsPath || !Number.isInteger(n) || n <= 0) {
  process.stderr.write('usage: node expressions.js MODULES_DIR FACES N PROBS\n');
  process.exit(2);
}
const need = (name) => require(path.join(modules, 'node_modules', name));
const SIDE = 48;
// face-api's order (FaceExpressions): neutral, happy, sad, angry, fearful, disgusted, surprised;
// FER2013's class c is face-api's output FROM_FACEAPI[c].
const FROM_FACEAPI = [3, 5, 4, 1, 2, 6, 0];
const BATCH = 64;

(async () => {
  const tf = need('@tensorflow/tfjs');
  need('@tensorflow/tfjs-backend-wasm').setWasmPaths(
    path.join(modules, 'node_modules', '@tensorflow', 'tfjs-backend-wasm', 'dist') + path.sep);
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
  await tf.setBackend('wasm');
  await tf.ready();
  const faceapi = need('@vladmandic/face-api/dist/face-api.node-wasm.js');
  await faceapi.nets.faceExpressionNet.loadFromDisk(path.join(modules, 'node_modules', '@vladmandic', 'face-api', 'model'));

  const faces = fs.readFileSync(facesPath);
  if (faces.length !== n * SIDE * SIDE) {
    process.stderr.write(`${facesPath}: ${faces.length} bytes, not ${n} faces of ${SIDE}x${SIDE}\n`);
    process.exit(1);
  }
  const out = new Float32Array(n * 7);
  for (let s = 0; s < n; s += BATCH) {
    const e = Math.min(n, s + BATCH);
    const crops = [];
    for (let i = s; i < e; i++) {
      crops.push(tf.tidy(() => tf.tile(tf.tensor3d(faces.subarray(i * SIDE * SIDE, (i + 1) * SIDE * SIDE),
                                                   [SIDE, SIDE, 1], 'int32'), [1, 1, 3])));
    }
    const probs = await faceapi.nets.faceExpressionNet.forward(await faceapi.toNetInput(crops));
    const p = probs.dataSync();
    for (let i = s; i < e; i++)
      for (let c = 0; c < 7; c++) out[i * 7 + c] = p[(i - s) * 7 + FROM_FACEAPI[c]];
    probs.dispose();
    crops.forEach((t) => t.dispose());
  }
  fs.writeFileSync(probsPath, Buffer.from(out.buffer));
  process.stdout.write(`@vladmandic/face-api ${faceapi.version}, tfjs ${tf.version_core} (${tf.getBackend()}): ${n} faces\n`);
})().catch((err) => {
  process.stderr.write(`expressions.js: ${err.stack || err}\n`);
  process.exit(1);
});
