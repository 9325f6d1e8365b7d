'use strict';
// node run_app_tester.js <app-dir> <results.json> < scenario.json: runs steps of a generated app with
// zapier-platform-core's createAppTester, the harness Zapier's own CLI tests use.
//
// scenario: {"bundle": {...shared bundle, e.g. authData}, "steps": [
//   {"name": "poll", "path": "triggers.x.operation.perform", "bundle": {...}, "inputDataFrom": "<step>"}]}
// ``path`` names a function or shorthand request in the app; the step's bundle is merged over
// the shared one; ``inputDataFrom`` uses an earlier step's result as bundle.inputData.
// Writes [{"name", "ok": true, "result"} | {"name", "ok": false, "error": {"name", "message", ...}}].
// (to a file: the app's own logging may use stdout). Run with NODE_ENV=test so Zapier's checks (ids, result shapes) throw instead of logging.
const fs = require('fs');
const path = require('path');
const zapier = require('zapier-platform-core');

const appDir = path.resolve(process.argv[2]);
const resultsFile = process.argv[3];
const App = require(appDir);
const appTester = zapier.createAppTester(App);

const lookup = (dotted) => dotted.split('.').reduce((node, part) => {
  if (node === undefined || node === null || !(part in node)) {
    throw new Error(`the app has nothing at ${dotted}`);
  }
  return node[part];
}, App);

const errorJson = (error) => {
  const out = { name: error.name, message: error.message };
  try {
    Object.assign(out, JSON.parse(error.message)); // ResponseError, ThrottledError, AppError: JSON messages
  } catch (_) {
    // a plain message
  }
  return out;
};

const main = async () => {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  const scenario = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  const results = [];
  const byName = {};
  for (const step of scenario.steps) {
    const bundle = { ...(scenario.bundle || {}), ...(step.bundle || {}) };
    if (step.inputDataFrom) bundle.inputData = byName[step.inputDataFrom];
    const started = Date.now();
    try {
      const result = await appTester(lookup(step.path), bundle);
      byName[step.name] = result;
      results.push({ name: step.name, ok: true, result, ms: Date.now() - started });
    } catch (error) {
      results.push({ name: step.name, ok: false, error: errorJson(error), ms: Date.now() - started });
    }
  }
  fs.writeFileSync(resultsFile, JSON.stringify(results));
};

main().catch((error) => {
  process.stderr.write(`${error.stack}\n`);
  process.exit(1);
});
