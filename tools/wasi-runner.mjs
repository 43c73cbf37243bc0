#!/usr/bin/env -S node --no-warnings
// Runs a wasm32-wasip1 test binary under Node's WASI, as cargo's target runner:
// `cargo test -p switchyard-core --target wasm32-wasip1` then exercises the filter's pure
// logic compiled exactly as Envoy loads it.
import { readFile } from "node:fs/promises";
import { WASI } from "node:wasi";
import { argv, env, exit } from "node:process";

const [file, ...args] = argv.slice(2);
const wasi = new WASI({ version: "preview1", args: [file, ...args], env, preopens: { "/": "/" }, returnOnExit: true });
const module = await WebAssembly.compile(await readFile(file));
const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
exit(wasi.start(instance));
