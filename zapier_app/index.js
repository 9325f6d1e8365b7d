'use strict';
// The GHL app for Zapier. app-definition.json, generated from the service's catalog, holds the
// whole app as data: shorthand requests to the service. This file attaches the few functions
// Zapier cannot take as data, in the places the definition marks with function placeholders.
const definition = structuredClone(require('./app-definition.json'));

const FUNCTION_2 = '$func$2$f$';
// The service's address: the connection test is `<server>/auth/test`.
const SERVER = definition.authentication.test.url.replace(/\/auth\/test$/, '');
const INSTANT_SUFFIX = '_instant';
// Dynamic custom-field inputs (GHL custom field ids), sent beside the static inputs.
const CUSTOM_FIELD_KEY = /^cf_[A-Za-z0-9_-]{1,64}$/;
const MAX_MESSAGE_CHARS = 500;
const MAX_LISTED_PROBLEMS = 5;

const isPlainObject = (value) => Object.prototype.toString.call(value) === '[object Object]';
const getPath = (object, path) =>
  path.split('.').reduce((node, part) => (node === undefined || node === null ? undefined : node[part]), object);

// A REST hook delivery is a POST of a JSON array of items, each shaped like a polled item.
const hookPerform = (z, bundle) => {
  const body = bundle.cleanedRequest;
  return (Array.isArray(body) ? body : [body]).filter(isPlainObject);
};

// The connection label, from /auth/test's answer ({location_id, name, ...}).
const connectionLabel = (z, bundle) => {
  const { name, location_id: locationId } = bundle.inputData || {};
  return name ? `${name} (${locationId})` : locationId;
};

// Polls say which Zap they are for (the service's dedupe scope) and whether Zapier only wants a
// sample (editor test, dropdown), which the service answers without recording anything.
const addZapierMeta = (request, z, bundle) => {
  if (!/\/triggers\/[^/]+$/.test(request.url || '')) {
    return request;
  }
  const meta = (bundle && bundle.meta) || {};
  const zapId = meta.zap && meta.zap.id;
  if (zapId) {
    request.headers['X-Subscriber-Id'] = String(zapId);
  }
  if (meta.isLoadingSample || meta.isFillingDynamicDropdown) {
    request.headers['X-Poll-Mode'] = 'sample';
  }
  return request;
};

// ----------------------------------------------------------------------------- errors

// Input labels by request path, so a refused input is named as the user saw it.
const inputLabels = {};
for (const [group, path] of [['triggers', '/triggers/'], ['searches', '/actions/'], ['creates', '/actions/']]) {
  for (const [key, item] of Object.entries(definition[group] || {})) {
    const fields = (item.operation.inputFields || []).filter(isPlainObject);
    inputLabels[path + key] = Object.fromEntries(fields.map((field) => [field.key, field.label || field.key]));
  }
}

const oneLine = (text) => String(text).replace(/\s+/g, ' ').trim();
const clip = (text, max) => (text.length > max ? `${text.slice(0, max - 1)}…` : text);

// "Label: problem; Label: problem; and 3 more" from the service's {input key: problem}.
const listProblems = (fields, omitted, labels) => {
  const entries = Object.entries(fields).filter(([, problem]) => typeof problem === 'string');
  const more = Math.max(0, entries.length - MAX_LISTED_PROBLEMS) + (Number.isInteger(omitted) ? omitted : 0);
  const listed = entries.slice(0, MAX_LISTED_PROBLEMS)
    .map(([key, problem]) => `${clip(oneLine(labels[key] || key), 60)}: ${clip(oneLine(problem), 120)}`);
  return listed.join('; ') + (more > 0 ? `; and ${more} more` : '');
};

// GHL's bare reason is the service's message for these codes: say who refused it.
const REASON_PREFIXES = { ghl_rejected_input: 'GHL rejected the input' };

// The connection's secrets, blanked in case a message ever echoes one.
const SECRET_AUTH_FIELDS = ['token', 'connectorKey'];

// {message, code}: one sentence from the service's error JSON {"error": {code, message, fields?,
// ...}}: its message (never the body, headers or URL) followed by its code.
const readableError = (response, bundle) => {
  const error = isPlainObject(response.data) && isPlainObject(response.data.error) ? response.data.error : {};
  const code = typeof error.code === 'string' ? clip(oneLine(error.code), 60) : `http_${response.status}`;
  let reason = typeof error.message === 'string' && error.message.trim()
    ? oneLine(error.message) : `The service answered ${response.status} without saying why`;
  if (code === 'invalid_input' && isPlainObject(error.fields) && Object.keys(error.fields).length) {
    const path = response.request.url.slice(SERVER.length).split('?')[0];
    reason = `Some inputs are missing or invalid: ${listProblems(error.fields, error.omitted, inputLabels[path] || {})}`;
  } else if (REASON_PREFIXES[code]) {
    reason = `${REASON_PREFIXES[code]}: ${reason}`;
  }
  for (const name of SECRET_AUTH_FIELDS) {
    const secret = bundle && bundle.authData && bundle.authData[name];
    if (typeof secret === 'string' && secret.length >= 4) {
      reason = reason.split(secret).join(':censored:');
    }
  }
  return { message: `${clip(reason, MAX_MESSAGE_CHARS).replace(/\.$/, '')} (${code})`, code };
};

// Zapier's own errors for the service's failures. Core has already turned a 429 into a
// ThrottledError (delay: Retry-After) before this runs; core's throwForStatus, after it, would
// make any other failure a ResponseError whose message is the whole response as JSON.
const throwReadableErrors = (response, z, bundle) => {
  const url = (response.request && response.request.url) || '';
  if (response.status < 400 || !url.startsWith(`${SERVER}/`)) {
    return response;
  }
  const { message, code } = readableError(response, bundle);
  if (response.status === 401) {
    const expired = new z.errors.ExpiredAuthError(message); // Zapier asks the user to reconnect
    // Else core appends its "What happened" trace (request URLs, the bundle) to the message;
    // z.errors.Error and ThrottledError opt out of it the same way.
    expired.doNotContextify = true;
    throw expired;
  }
  if (response.status === 429) { // reached only if an app flag turns core's early throttling off
    throw new z.errors.ThrottledError(message, parseInt(response.headers.get('retry-after'), 10) || null);
  }
  throw new z.errors.Error(message, code, response.status);
};

// ----------------------------------------------------------------------------- requests

// {{bundle.x.y}} rendered from the bundle; a value that is only a missing curly is left out.
const WHOLE_CURLY = /^{{\s*bundle\.([^}\s]+)\s*}}$/;
const render = (template, bundle) => {
  if (typeof template === 'string') {
    const whole = template.match(WHOLE_CURLY);
    if (whole) {
      return getPath(bundle, whole[1]);
    }
    return template.replace(/{{\s*bundle\.([^}\s]+)\s*}}/g, (_match, path) => {
      const value = getPath(bundle, path);
      return value === undefined || value === null ? '' : String(value);
    });
  }
  if (Array.isArray(template)) {
    return template.map((value) => render(value, bundle));
  }
  if (isPlainObject(template)) {
    const rendered = {};
    for (const [key, value] of Object.entries(template)) {
      const out = render(value, bundle);
      if (out !== undefined && out !== null && out !== '') {
        rendered[key] = out;
      }
    }
    return rendered;
  }
  return template;
};

// Subscribing: the definition's request, rendered here because its inputs are nested.
const subscribeWith = (template) => async (z, bundle) => {
  const response = await z.request(render(template, bundle));
  return response.data;
};

// A search or create: the definition's request plus the dynamic custom-field inputs, which the
// template cannot name because they come from the account (a search answers a list, a create an object).
const performWith = (template) => async (z, bundle) => {
  const request = render(template, bundle);
  const customFields = Object.entries(bundle.inputData || {}).filter(([key]) => CUSTOM_FIELD_KEY.test(key));
  request.body = { ...(request.body || {}), ...Object.fromEntries(customFields) };
  const response = await z.request(request);
  return response.data;
};

// Dynamic fields: the account's custom fields, as the service describes them for this operation.
const fieldsFrom = (operationKey, purpose) => async (z, bundle) => {
  const response = await z.request({
    url: `${SERVER}/zapier/fields/${encodeURIComponent(operationKey)}`,
    method: 'GET',
    params: { for: purpose },
  });
  return Array.isArray(response.data) ? response.data : [];
};

const withFieldLoaders = (fields, operationKey, purpose) =>
  fields.map((field) => (field === FUNCTION_2 ? fieldsFrom(operationKey, purpose) : field));

// ----------------------------------------------------------------------------- generic steps

// "Run a GHL Operation" and "New Item in a GHL List" (zapier_app/generic_steps.py): the user
// chooses the operation; its fields come from the service, and the step posts to its route.
const GENERIC_STEPS = {
  creates: { run_ghl_operation: '/actions/' },
  triggers: { new_ghl_list_item: '/triggers/' },
};
// The steps' own inputs, which choose the operation and are not the operation's.
const STEP_INPUTS = ['operation', 'operation_search', 'operation_service'];

const chosenOperation = (bundle) => {
  const operation = bundle.inputData && bundle.inputData.operation;
  return typeof operation === 'string' && operation.trim() ? operation.trim() : null;
};

const chosenFields = (purpose) => async (z, bundle) => {
  const operation = chosenOperation(bundle);
  if (!operation) {
    return [];
  }
  const response = await z.request({
    url: `${SERVER}/zapier/operations/${encodeURIComponent(operation)}/fields`,
    method: 'GET',
    params: { for: purpose },
  });
  return Array.isArray(response.data) ? response.data : [];
};

const runChosen = (route, isTrigger) => async (z, bundle) => {
  const operation = chosenOperation(bundle);
  if (!operation) {
    throw new z.errors.Error('Choose the operation to run in the Operation field (missing_operation)',
      'missing_operation', 400);
  }
  const inputs = Object.fromEntries(Object.entries(bundle.inputData || {})
    .filter(([key]) => !STEP_INPUTS.includes(key)));
  const response = await z.request({
    url: `${SERVER}${route}${encodeURIComponent(operation)}`,
    method: 'POST',
    body: inputs,
  });
  // A create answers one object: a look-up's list comes as its count and line items.
  if (!isTrigger && Array.isArray(response.data)) {
    return { count: response.data.length, items: response.data };
  }
  return response.data;
};

for (const [group, steps] of Object.entries(GENERIC_STEPS)) {
  for (const [key, route] of Object.entries(steps)) {
    const operation = definition[group] && definition[group][key] && definition[group][key].operation;
    if (!operation) {
      continue;
    }
    operation.perform = runChosen(route, group === 'triggers');
    for (const [name, purpose] of [['inputFields', 'input'], ['outputFields', 'output']]) {
      operation[name] = operation[name].map((field) => (field === FUNCTION_2 ? chosenFields(purpose) : field));
    }
  }
}

// ----------------------------------------------------------------------------- wiring

definition.authentication.connectionLabel = connectionLabel;
definition.beforeRequest = [addZapierMeta];
definition.afterResponse = [throwReadableErrors];
for (const group of ['triggers', 'searches', 'creates']) {
  for (const [key, item] of Object.entries(definition[group] || {})) {
    const operation = item.operation;
    const operationKey = key.endsWith(INSTANT_SUFFIX) ? key.slice(0, -INSTANT_SUFFIX.length) : key;
    for (const [name, purpose] of [['inputFields', 'input'], ['outputFields', 'output']]) {
      if (Array.isArray(operation[name])) {
        operation[name] = withFieldLoaders(operation[name], operationKey, purpose);
      }
    }
    if (operation.type === 'hook') {
      operation.perform = hookPerform;
      operation.performSubscribe = subscribeWith(operation.performSubscribe);
    } else if (group !== 'triggers' && isPlainObject(operation.perform)) {
      operation.perform = performWith(operation.perform);
    }
  }
}

const leftOver = JSON.stringify(definition, (key, value) => (typeof value === 'function' ? undefined : value))
  .match(/"\$func\$\d+\$[tf]\$"/);
if (leftOver) {
  throw new Error('app-definition.json has a function placeholder index.js does not fill');
}

module.exports = {
  ...definition,
  platformVersion: require('zapier-platform-core').version,
};
