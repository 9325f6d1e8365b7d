'use strict';
// node validate.js <app-dir>: validates a generated app with Zapier's schema package, twice:
// the definition JSON as written (function placeholders included), and the app index.js
// exports, compiled and serialized the way zapier-platform-core does before it runs an app.
// Prints {"definitionErrors": [...], "appErrors": [...]} (empty lists: valid).
const fs = require('fs');
const path = require('path');
const { validateAppDefinition } = require('zapier-platform-schema');
const { compileApp, validateApp } = require('zapier-platform-core/src/tools/schema');

const appDir = path.resolve(process.argv[2]);
const describe = (error) => `${error.property}: ${error.message}`;

const definition = JSON.parse(fs.readFileSync(path.join(appDir, 'app-definition.json'), 'utf8'));
const App = require(appDir);
const timed = (fn) => { const started = Date.now(); const value = fn(); return [value, Date.now() - started]; };
const [definitionErrors, definitionMs] = timed(() => validateAppDefinition(definition).errors.map(describe));
const [appErrors, appMs] = timed(() => validateApp(compileApp(App)).map(describe));
const result = { definitionErrors, appErrors, ms: { definition: definitionMs, app: appMs } };
process.stdout.write(JSON.stringify(result));
