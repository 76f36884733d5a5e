// Times ONNX Runtime's CPU provider (the npm package onnxruntime-node) on models bench-families.py
// exported, on the same input, for scripts/bench-families.sh.
// Usage: node bench-ort.mjs ORT_PACKAGE_DIR OUT_DIR WIDTH HEIGHT THREADS RUNS NAME...
// Prints "ort NAME ms=M" (median of RUNS after a warm-up) and writes OUT_DIR/NAME.ort.f32.
import { createRequire } from "node:module";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";

const [pkg, out, width, height, threads, runs, ...names] = process.argv.slice(2);
const ort = createRequire(import.meta.url)(path.resolve(pkg));
const input = new Float32Array(readFileSync(path.join(out, "input.f32")).buffer.slice(0));
for (const name of names) {
  const session = await ort.InferenceSession.create(path.join(out, name + ".onnx"), {
    intraOpNumThreads: Number(threads),
    interOpNumThreads: 1,
    executionProviders: ["cpu"],
    graphOptimizationLevel: "all",
  });
  const feeds = { input: new ort.Tensor("float32", input, [1, 3, Number(height), Number(width)]) };
  let result = await session.run(feeds);
  const times = [];
  for (let i = 0; i < Number(runs); i++) {
    const start = process.hrtime.bigint();
    result = await session.run(feeds);
    times.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  times.sort((a, b) => a - b);
  writeFileSync(path.join(out, name + ".ort.f32"), Buffer.from(result.output.data.buffer));
  console.log(`ort ${name} ms=${times[Math.floor(times.length / 2)].toFixed(0)}`);
}
