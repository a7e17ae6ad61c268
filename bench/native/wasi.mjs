// Runs a wasm32-wasip1 program in Node's V8 (the engine Envoy embeds):
//   node --no-liftoff wasi.mjs FILE [ARGS]
// --no-liftoff compiles everything with TurboFan at once, the tier a hot
// filter reaches in Envoy, so a short run measures the steady state.
// azp-bridge's proxy-wasm glue comes along with the library; its host calls
// are stubbed (the program never makes them).
import { readFile } from "node:fs/promises";
import { argv } from "node:process";
import { WASI } from "node:wasi";

const wasi = new WASI({ version: "preview1", args: argv.slice(2), env: {} });
const module = await WebAssembly.compile(await readFile(argv[2]));
const imports = wasi.getImportObject();
for (const { module: from, name, kind } of WebAssembly.Module.imports(module)) {
  if (from !== "env" || kind !== "function") continue;
  imports.env ??= {};
  imports.env[name] = () => {
    throw new Error(`host call ${name} is not available here`);
  };
}
const instance = await WebAssembly.instantiate(module, imports);
// Only the command's entry point: node refuses a module that also exports the
// reactor entry point (_initialize) that proxy-wasm's glue defines.
wasi.start({ exports: { memory: instance.exports.memory, _start: instance.exports._start } });
