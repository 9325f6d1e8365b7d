'use strict';
// The GHL app for Zapier. app-definition.json, generated from the service's catalog, holds the
// whole app as data: shorthand requests to the service. This file attaches the few functions
// Zapier cannot take as data, in the places the definition marks with function placeholders.
const definition = structuredClone(require('./app-definition.json'));

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

definition.authentication.connectionLabel = connectionLabel;
definition.beforeRequest = [addZapierMeta];
for (const trigger of Object.values(definition.triggers)) {
  if (trigger.operation.type === 'hook') {
    trigger.operation.perform = hookPerform;
    trigger.operation.performSubscribe = subscribeWith(trigger.operation.performSubscribe);
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
