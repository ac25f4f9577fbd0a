#!/usr/bin/env node
// A `solc`-compatible command line on top of solcjs (the npm `solc` package).
//
// py-solc-x and ape-solidity only need two things from a native solc: `--version` in the
// native format, and `--standard-json` on stdin with imports resolved against the
// --base-path / --include-path / --allow-paths folders. Native solc cannot be downloaded in
// every environment; the npm registry always can be reached.
"use strict";

const fs = require("fs");
const path = require("path");
const solc = require(path.join(__dirname, "..", "..", "node_modules", "solc"));

function parseArgs(argv) {
  const opts = { standardJson: false, version: false, roots: [] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const takeValue = () => {
      const eq = arg.indexOf("=");
      return eq >= 0 ? arg.slice(eq + 1) : argv[++i];
    };
    if (arg === "--version") opts.version = true;
    else if (arg === "--standard-json") opts.standardJson = true;
    else if (arg.startsWith("--base-path") || arg.startsWith("--include-path")) {
      opts.roots.push(takeValue());
    } else if (arg.startsWith("--allow-paths")) {
      opts.roots.push(...takeValue().split(",").filter(Boolean));
    }
    // Any other flag is accepted and ignored: the standard JSON input carries the settings.
  }
  return opts;
}

function importResolver(roots) {
  const bases = [process.cwd(), ...roots.map((r) => path.resolve(r))];
  return (importPath) => {
    const candidates = path.isAbsolute(importPath)
      ? [importPath]
      : bases.map((base) => path.join(base, importPath));
    for (const candidate of candidates) {
      try {
        return { contents: fs.readFileSync(candidate, "utf8") };
      } catch (_) {
        // Try the next root.
      }
    }
    return { error: `File not found in any of: ${bases.join(", ")}` };
  };
}

function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (opts.version) {
    // Native format, parsed by py-solc-x: the second line carries the version.
    const version = solc.version().replace(".Emscripten.clang", ".Linux.g++");
    process.stdout.write(`solc, the solidity compiler commandline interface\nVersion: ${version}\n`);
    return;
  }
  if (!opts.standardJson) {
    process.stderr.write("solcjs-wrapper: only --version and --standard-json are supported\n");
    process.exitCode = 2;
    return;
  }
  const input = fs.readFileSync(0, "utf8");
  const output = solc.compile(input, { import: importResolver(opts.roots) });
  // Never call process.exit() here: it would cut a large stdout write short on a pipe.
  process.stdout.write(output);
}

main();
