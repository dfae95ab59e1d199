/* apidocs.js — renders an OpenAPI 3.1 document (fetched from openapi.json, relative to the
 * page) as a readable reference: info, authentication, one section per tag with each
 * operation's parameters, request body, responses (headers, schemas, examples), Server-Sent
 * Event streams (the x-sse-* extensions), WebSocket messages (x-websocket), and every
 * component schema with an anchor that $ref links point at.
 *
 * Not a general OpenAPI UI: no "try it", no external $refs, no YAML. DOM only through
 * createElement/textContent (never innerHTML), so text from the document cannot inject
 * markup. No dependencies; runs under CSP script-src 'self'. */
(function () {
  "use strict";

  var METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];
  var spec = null;

  /* ---- DOM helpers ---- */

  function el(tag, attrs, children) {
    var e = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        if (k === "class") e.className = attrs[k];
        else if (k === "text") e.textContent = attrs[k];
        else e.setAttribute(k, attrs[k]);
      });
    }
    (children || []).forEach(function (c) {
      if (c === null || c === undefined) return;
      e.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return e;
  }

  /* A small CommonMark subset: paragraphs (blank lines), `code`, **bold**. */
  function inline(text) {
    var frag = document.createDocumentFragment();
    var re = /(`[^`]+`|\*\*[^*]+\*\*)/g;
    var last = 0, m;
    while ((m = re.exec(text)) !== null) {
      if (m.index > last) frag.appendChild(document.createTextNode(text.slice(last, m.index)));
      var tok = m[0];
      if (tok.charAt(0) === "`") frag.appendChild(el("code", { text: tok.slice(1, -1) }));
      else frag.appendChild(el("strong", { text: tok.slice(2, -2) }));
      last = m.index + tok.length;
    }
    if (last < text.length) frag.appendChild(document.createTextNode(text.slice(last)));
    return frag;
  }

  function markdown(text, cls) {
    var box = el("div", { class: "md" + (cls ? " " + cls : "") });
    String(text || "").split(/\n\s*\n/).forEach(function (para) {
      if (!para.trim()) return;
      var p = el("p");
      p.appendChild(inline(para.trim()));
      box.appendChild(p);
    });
    return box;
  }

  function pre(text) { return el("pre", { class: "example" }, [el("code", { text: text })]); }

  function slug(s) { return String(s).replace(/[^A-Za-z0-9_-]+/g, "-").replace(/^-+|-+$/g, ""); }

  /* ---- $ref resolution (local refs only) ---- */

  function refName(ref) { return ref.split("/").pop(); }

  function resolve(obj) {
    var guard = 0;
    while (obj && typeof obj === "object" && obj.$ref && guard++ < 16) {
      var path = obj.$ref.replace(/^#\//, "").split("/");
      var cur = spec;
      for (var i = 0; i < path.length && cur; i++) cur = cur[path[i].replace(/~1/g, "/").replace(/~0/g, "~")];
      if (!cur) return obj;
      obj = cur;
    }
    return obj;
  }

  function refLink(ref) {
    var name = refName(ref);
    var kind = ref.indexOf("#/components/schemas/") === 0 ? "schema-" : "component-";
    return el("a", { class: "ref", href: "#" + kind + slug(name), text: name });
  }

  /* ---- schemas ---- */

  /* One-line type label: "string", "integer | null", "array of Usage", a link for $refs. */
  function typeLabel(s) {
    var span = el("span", { class: "type" });
    if (s === true || s === undefined || (s && typeof s === "object" && Object.keys(s).length === 0)) {
      span.textContent = "any";
      return span;
    }
    if (s.$ref) { span.appendChild(refLink(s.$ref)); return span; }
    if (s.const !== undefined) { span.textContent = JSON.stringify(s.const); return span; }
    var alts = s.oneOf || s.anyOf;
    if (alts) {
      alts.forEach(function (a, i) {
        if (i) span.appendChild(document.createTextNode(" | "));
        span.appendChild(typeLabel(a));
      });
      return span;
    }
    if (s.allOf) {
      s.allOf.forEach(function (a, i) {
        if (i) span.appendChild(document.createTextNode(" & "));
        span.appendChild(a.$ref ? refLink(a.$ref) : document.createTextNode("object"));
      });
      return span;
    }
    var types = Array.isArray(s.type) ? s.type : s.type ? [s.type] : [];
    types.forEach(function (t, i) {
      if (i) span.appendChild(document.createTextNode(" | "));
      if (t === "array" && s.items) {
        span.appendChild(document.createTextNode("array of "));
        span.appendChild(typeLabel(s.items));
      } else {
        span.appendChild(document.createTextNode(t));
      }
    });
    if (!types.length) span.textContent = s.enum ? "enum" : "any";
    return span;
  }

  /* Constraints worth a reader's eye, as short phrases. */
  function constraints(s) {
    var out = [];
    if (!s || typeof s !== "object") return out;
    if (s.enum) out.push("one of " + s.enum.map(function (v) { return JSON.stringify(v); }).join(", "));
    if (s.default !== undefined) out.push("default " + JSON.stringify(s.default));
    if (s.minimum !== undefined) out.push("≥ " + s.minimum);
    if (s.maximum !== undefined) out.push("≤ " + s.maximum);
    if (s.minLength !== undefined) out.push("at least " + s.minLength + " character" + (s.minLength === 1 ? "" : "s"));
    if (s.maxLength !== undefined) out.push("at most " + s.maxLength + " characters");
    if (s.minItems !== undefined) out.push("at least " + s.minItems + " item" + (s.minItems === 1 ? "" : "s"));
    if (s.maxItems !== undefined) out.push("at most " + s.maxItems + " items");
    if (s.pattern !== undefined) out.push("matches /" + s.pattern + "/");
    return out;
  }

  /* Flattens allOf (following $refs) into one object view: properties, required, and the
   * schemas it includes. */
  function flatten(s, depth) {
    var acc = { properties: {}, required: [], includes: [], closed: false, description: null };
    (function walk(x, top) {
      if (!x || depth > 8) return;
      if (x.$ref) {
        if (!top) acc.includes.push(x.$ref);
        x = resolve(x);
      }
      if (x.allOf) x.allOf.forEach(function (a) { walk(a, false); });
      if (x.properties) Object.keys(x.properties).forEach(function (k) { acc.properties[k] = x.properties[k]; });
      if (x.required) x.required.forEach(function (k) { if (acc.required.indexOf(k) < 0) acc.required.push(k); });
      if (x.additionalProperties === false || x.unevaluatedProperties === false) acc.closed = true;
    })(s, true);
    return acc;
  }

  function isObjectLike(s) {
    s = resolve(s);
    return !!(s && typeof s === "object" && (s.properties || s.allOf || s.type === "object"));
  }

  /* A schema as a table of properties (objects), a list of alternatives (oneOf), or a
   * line (scalars). Nested $refs stay links; inline nested objects are expanded. */
  function schemaView(s, depth) {
    depth = depth || 0;
    var box = el("div", { class: "schema" });
    if (!s) return box;
    var r = resolve(s);
    if (s.$ref && depth > 0) {
      box.appendChild(el("p", null, [typeLabel(s)]));
      return box;
    }
    if (r.description && depth === 0 && !s.$ref) box.appendChild(markdown(r.description, "schema-desc"));
    var alts = r.oneOf || r.anyOf;
    if (alts) {
      box.appendChild(el("p", { class: "alts-head", text: r.oneOf ? "One of:" : "Any of:" }));
      var ul = el("ul", { class: "alts" });
      alts.forEach(function (a) {
        var ar = resolve(a);
        var li = el("li");
        var head = el("div", { class: "alt-head" }, [typeLabel(a)]);
        if (!a.$ref && ar.title) head.insertBefore(el("strong", { text: ar.title + ": " }), head.firstChild);
        li.appendChild(head);
        // at the top of a body the alternatives are the point: show their fields even when
        // they are named schemas; deeper down a link is enough
        var expand = !a.$ref || depth === 0;
        if (expand && ar.description) li.appendChild(markdown(ar.description));
        if (expand && isObjectLike(ar)) li.appendChild(schemaView(a.$ref ? stripRef(a) : ar, depth + 1));
        ul.appendChild(li);
      });
      box.appendChild(ul);
      return box;
    }
    if (r.type === "array" && r.items) {
      box.appendChild(el("p", null, ["array of ", typeLabel(r.items)]));
      if (!r.items.$ref && isObjectLike(r.items)) box.appendChild(schemaView(r.items, depth + 1));
      return box;
    }
    if (!isObjectLike(r)) {
      var line = el("p", null, [typeLabel(r)]);
      var c = constraints(r);
      if (c.length) line.appendChild(el("span", { class: "constraints", text: " — " + c.join("; ") }));
      box.appendChild(line);
      return box;
    }
    var flat = flatten(s, depth);
    if (flat.includes.length) {
      var inc = el("p", { class: "includes" }, ["Includes "]);
      flat.includes.forEach(function (ref, i) {
        if (i) inc.appendChild(document.createTextNode(", "));
        inc.appendChild(refLink(ref));
      });
      box.appendChild(inc);
    }
    var names = Object.keys(flat.properties);
    if (!names.length) {
      box.appendChild(el("p", { class: "type", text: flat.closed ? "empty object" : "object" }));
      return box;
    }
    var tbody = el("tbody");
    names.forEach(function (name) {
      var p = flat.properties[name];
      var pr = resolve(p);
      var req = flat.required.indexOf(name) >= 0;
      var desc = el("td", { class: "desc" });
      if (pr && pr.description) desc.appendChild(markdown(pr.description));
      var c = constraints(pr);
      if (c.length) desc.appendChild(el("div", { class: "constraints", text: c.join("; ") }));
      var nested = null;
      if (!p.$ref && depth < 6) {
        if (isObjectLike(p) && (p.properties || p.allOf)) nested = p;
        else if (p.type === "array" && p.items && !p.items.$ref && isObjectLike(p.items)) nested = p.items;
        else if ((p.oneOf || p.anyOf) && (p.oneOf || p.anyOf).some(function (a) { return !a.$ref && isObjectLike(a); })) nested = p;
      }
      if (nested) desc.appendChild(schemaView(nested, depth + 1));
      tbody.appendChild(el("tr", null, [
        el("td", { class: "name" }, [el("code", { text: name }), req ? el("span", { class: "req", title: "required", text: " *" }) : null]),
        el("td", { class: "type-cell" }, [typeLabel(p)]),
        desc,
      ]));
    });
    box.appendChild(el("table", { class: "props" }, [
      el("thead", null, [el("tr", null, [el("th", { text: "field" }), el("th", { text: "type" }), el("th", { text: "description" })])]),
      tbody,
    ]));
    if (flat.closed) box.appendChild(el("p", { class: "note", text: "No other fields." }));
    return box;
  }

  /* A named schema's content, to expand in place of its link (its description is shown
   * by the caller). */
  function stripRef(a) {
    var r = resolve(a), copy = {};
    Object.keys(r).forEach(function (k) { if (k !== "description") copy[k] = r[k]; });
    return copy;
  }

  /* A body schema: named when it is a $ref, then expanded unless `brief` (error bodies: the
   * link and the example say enough). */
  function bodySchema(s, brief) {
    var box = el("div", { class: "body-schema" });
    if (s && s.$ref) box.appendChild(el("p", { class: "schema-name" }, ["Schema ", refLink(s.$ref)]));
    if (!(brief && s && s.$ref)) box.appendChild(schemaView(s, 0));
    return box;
  }

  /* ---- media types, parameters, responses ---- */

  function mediaView(type, m, brief) {
    var box = el("div", { class: "media" }, [el("h5", null, [el("code", { text: type })])]);
    if (m["x-sse-events"]) {
      box.appendChild(el("p", { class: "note" }, [
        "Server-Sent Events: each ", el("code", { text: "data:" }), " line carries one JSON event",
        m["x-sse-terminator"] ? " and the stream ends with " : ".",
        m["x-sse-terminator"] ? el("code", { text: "data: " + m["x-sse-terminator"] }) : null,
      ]));
      if (m.schema && m.schema.description) box.appendChild(markdown(m.schema.description));
      box.appendChild(el("h6", { text: "Event" }));
      box.appendChild(bodySchema(m["x-sse-events"]));
      if (m["x-sse-example"]) {
        box.appendChild(el("h6", { text: "Example stream" }));
        box.appendChild(pre(m["x-sse-example"].map(function (e) {
          return "data: " + (typeof e === "string" ? e : JSON.stringify(e)) + "\n";
        }).join("\n")));
      }
      return box;
    }
    if (m.schema) box.appendChild(bodySchema(m.schema, brief));
    if (m.example !== undefined) {
      box.appendChild(el("h6", { text: "Example" }));
      box.appendChild(pre(typeof m.example === "string" ? m.example : JSON.stringify(m.example, null, 2)));
    }
    if (m.examples) {
      Object.keys(m.examples).forEach(function (k) {
        var ex = resolve(m.examples[k]);
        box.appendChild(el("h6", { text: "Example: " + (ex.summary || k) }));
        box.appendChild(pre(JSON.stringify(ex.value, null, 2)));
      });
    }
    return box;
  }

  function paramsView(params) {
    var tbody = el("tbody");
    params.map(resolve).forEach(function (p) {
      var desc = el("td", { class: "desc" });
      if (p.description) desc.appendChild(markdown(p.description));
      var c = constraints(p.schema);
      if (c.length) desc.appendChild(el("div", { class: "constraints", text: c.join("; ") }));
      if (p.example !== undefined) desc.appendChild(el("div", { class: "constraints" }, ["e.g. ", el("code", { text: String(p.example) })]));
      tbody.appendChild(el("tr", null, [
        el("td", { class: "name" }, [el("code", { text: p.name }), p.required ? el("span", { class: "req", title: "required", text: " *" }) : null]),
        el("td", { text: p.in }),
        el("td", { class: "type-cell" }, [typeLabel(p.schema || {})]),
        desc,
      ]));
    });
    return el("table", { class: "props" }, [
      el("thead", null, [el("tr", null, ["name", "in", "type", "description"].map(function (h) { return el("th", { text: h }); }))]),
      tbody,
    ]);
  }

  function headersView(headers) {
    var tbody = el("tbody");
    Object.keys(headers).forEach(function (name) {
      var h = resolve(headers[name]);
      var desc = el("td", { class: "desc" });
      if (h.description) desc.appendChild(markdown(h.description));
      tbody.appendChild(el("tr", null, [
        el("td", { class: "name" }, [el("code", { text: name }), h.required ? el("span", { class: "req", title: "always sent", text: " *" }) : null]),
        el("td", { class: "type-cell" }, [typeLabel(h.schema || {})]),
        desc,
      ]));
    });
    return el("table", { class: "props headers" }, [
      el("thead", null, [el("tr", null, ["header", "value", "description"].map(function (t) { return el("th", { text: t }); }))]),
      tbody,
    ]);
  }

  function responseView(status, resp) {
    var ref = resp.$ref;
    var r = resolve(resp);
    var cls = "status s" + String(status).charAt(0);
    var box = el("div", { class: "response" });
    var head = el("h4", null, [el("span", { class: cls, text: status }), " "]);
    head.appendChild(inline(r.description || ""));
    if (ref) head.appendChild(el("span", { class: "via" }, [" (", refLink(ref), ")"]));
    box.appendChild(head);
    var own = {};
    Object.keys(r.headers || {}).forEach(function (h) { if (!everywhere[h]) own[h] = r.headers[h]; });
    if (Object.keys(own).length) box.appendChild(headersView(own));
    var brief = Number(status) >= 400 || (!status && /^[45]/.test(errorish(r)));
    if (r.content) Object.keys(r.content).forEach(function (t) { box.appendChild(mediaView(t, r.content[t], brief)); });
    return box;
  }

  /* A shared response is an error one when its example says so (for the component list). */
  function errorish(r) {
    var out = "";
    Object.keys(r.content || {}).forEach(function (t) {
      var ex = r.content[t].example;
      if (ex && ex.error && ex.error.code) out = String(ex.error.code);
    });
    return out;
  }

  /* Headers (by name) that every response of every operation carries: listed once in the
   * introduction instead of in each response. */
  var everywhere = {};
  function commonHeaders() {
    var counts = {}, n = 0, first = {};
    operations().forEach(function (o) {
      Object.keys(o.op.responses || {}).forEach(function (st) {
        var r = resolve(o.op.responses[st]);
        n++;
        Object.keys(r.headers || {}).forEach(function (h) {
          counts[h] = (counts[h] || 0) + 1;
          if (!first[h]) first[h] = r.headers[h];
        });
      });
    });
    everywhere = {};
    Object.keys(counts).forEach(function (h) { if (counts[h] === n) everywhere[h] = first[h]; });
    return everywhere;
  }

  function securityView(op) {
    var sec = op.security !== undefined ? op.security : spec.security || [];
    if (!sec.length) return el("span", { class: "badge open", text: "open", title: "no API key needed" });
    var optional = sec.some(function (s) { return Object.keys(s).length === 0; });
    var names = [];
    sec.forEach(function (s) { Object.keys(s).forEach(function (k) { if (names.indexOf(k) < 0) names.push(k); }); });
    return el("span", {
      class: "badge key" + (optional ? " optional" : ""),
      text: optional ? "key optional" : "API key",
      title: names.join(" or "),
    });
  }

  function websocketView(ws) {
    var box = el("div", { class: "websocket" }, [el("h4", { text: "WebSocket messages" })]);
    if (ws.clientMessage) {
      box.appendChild(el("h5", { text: "Client → server" }));
      box.appendChild(bodySchema(ws.clientMessage));
    }
    if (ws.serverMessage) {
      box.appendChild(el("h5", { text: "Server → client" }));
      box.appendChild(bodySchema(ws.serverMessage));
    }
    if (ws.closeCodes) {
      var tbody = el("tbody");
      Object.keys(ws.closeCodes).forEach(function (code) {
        tbody.appendChild(el("tr", null, [el("td", { class: "name" }, [el("code", { text: code })]), el("td", { text: ws.closeCodes[code] })]));
      });
      box.appendChild(el("h5", { text: "Close codes" }));
      box.appendChild(el("table", { class: "props" }, [
        el("thead", null, [el("tr", null, [el("th", { text: "code" }), el("th", { text: "why" })])]), tbody,
      ]));
    }
    if (ws.example) {
      box.appendChild(el("h5", { text: "Example session" }));
      box.appendChild(pre(ws.example.map(function (e) {
        return (e.from === "client" ? "→ " : "← ") + JSON.stringify(e.message);
      }).join("\n")));
    }
    return box;
  }

  function operationView(path, method, op) {
    var id = "op-" + (op.operationId ? slug(op.operationId) : slug(method + path));
    var details = el("details", { class: "op", id: id });
    details.appendChild(el("summary", null, [
      el("span", { class: "method m-" + method, text: method.toUpperCase() }),
      el("code", { class: "path", text: path }),
      el("span", { class: "summary", text: op.summary || "" }),
      securityView(op),
    ]));
    var body = el("div", { class: "op-body" });
    if (op.description) body.appendChild(markdown(op.description));
    var params = (spec.paths[path].parameters || []).concat(op.parameters || []);
    if (params.length) {
      body.appendChild(el("h4", { text: "Parameters" }));
      body.appendChild(paramsView(params));
    }
    if (op.requestBody) {
      var rb = resolve(op.requestBody);
      body.appendChild(el("h4", { text: "Request body" + (rb.required ? "" : " (optional)") }));
      if (rb.description) body.appendChild(markdown(rb.description));
      Object.keys(rb.content || {}).forEach(function (t) { body.appendChild(mediaView(t, rb.content[t])); });
    }
    body.appendChild(el("h4", { text: "Responses" }));
    Object.keys(op.responses || {}).forEach(function (st) { body.appendChild(responseView(st, op.responses[st])); });
    if (op["x-websocket"]) body.appendChild(websocketView(op["x-websocket"]));
    details.appendChild(body);
    return details;
  }

  /* ---- page ---- */

  function operations() {
    var ops = [];
    Object.keys(spec.paths || {}).forEach(function (path) {
      METHODS.forEach(function (m) {
        var op = spec.paths[path][m];
        if (op) ops.push({ path: path, method: m, op: op });
      });
    });
    return ops;
  }

  function render() {
    var main = document.getElementById("main");
    var toc = document.getElementById("toc");
    main.textContent = "";
    toc.textContent = "";
    var info = spec.info || {};
    document.title = (info.title || "API") + " " + (info.version || "");
    document.getElementById("title").textContent = info.title || "API reference";
    document.getElementById("version").textContent = (info.version ? "v" + info.version : "") + " · OpenAPI " + spec.openapi;

    var intro = el("section", { class: "intro", id: "intro" });
    if (info.summary) intro.appendChild(markdown(info.summary, "lead"));
    if (info.description) intro.appendChild(markdown(info.description));
    var schemes = (spec.components || {}).securitySchemes || {};
    if (Object.keys(schemes).length) {
      var ul = el("ul", { class: "schemes" });
      Object.keys(schemes).forEach(function (k) {
        var s = schemes[k];
        var how = s.type === "http" ? "Authorization: " + (s.scheme === "bearer" ? "Bearer" : s.scheme) + " …"
                : s.type === "apiKey" ? s.name + " (" + s.in + ")" : s.type;
        var li = el("li", null, [el("strong", { text: k }), " — ", el("code", { text: how })]);
        if (s.description) li.appendChild(markdown(s.description));
        ul.appendChild(li);
      });
      intro.appendChild(el("h3", { text: "Authentication" }));
      intro.appendChild(ul);
    }
    var common = commonHeaders();
    if (Object.keys(common).length) {
      intro.appendChild(el("h3", { text: "Headers on every response" }));
      intro.appendChild(headersView(common));
    }
    main.appendChild(intro);

    var ops = operations();
    var tags = (spec.tags || []).map(function (t) { return t.name; });
    ops.forEach(function (o) {
      (o.op.tags || ["other"]).forEach(function (t) { if (tags.indexOf(t) < 0) tags.push(t); });
    });
    tags.forEach(function (tag) {
      var mine = ops.filter(function (o) { return (o.op.tags || ["other"])[0] === tag; });
      if (!mine.length) return;
      var tinfo = (spec.tags || []).filter(function (t) { return t.name === tag; })[0] || {};
      var sec = el("section", { class: "tag", id: "tag-" + slug(tag) }, [el("h2", { text: tag })]);
      if (tinfo.description) sec.appendChild(markdown(tinfo.description));
      var group = el("ul");
      mine.forEach(function (o) {
        var view = operationView(o.path, o.method, o.op);
        sec.appendChild(view);
        var a = el("a", { href: "#" + view.id }, [
          el("span", { class: "method m-" + o.method, text: o.method.toUpperCase() }), " ", el("code", { text: o.path }),
        ]);
        a.addEventListener("click", function () { view.open = true; });
        group.appendChild(el("li", { "data-filter": (o.method + " " + o.path + " " + (o.op.summary || "")).toLowerCase() }, [a]));
      });
      toc.appendChild(el("h3", { text: tag }));
      toc.appendChild(group);
      main.appendChild(sec);
    });

    var schemas = (spec.components || {}).schemas || {};
    if (Object.keys(schemas).length) {
      var sec = el("section", { class: "tag", id: "schemas" }, [el("h2", { text: "Schemas" })]);
      var list = el("ul");
      Object.keys(schemas).forEach(function (name) {
        var box = el("div", { class: "component", id: "schema-" + slug(name) }, [el("h3", null, [el("code", { text: name })])]);
        box.appendChild(schemaView(schemas[name], 0));
        sec.appendChild(box);
        list.appendChild(el("li", { "data-filter": name.toLowerCase() }, [el("a", { href: "#schema-" + slug(name) }, [el("code", { text: name })])]));
      });
      toc.appendChild(el("h3", { text: "schemas" }));
      toc.appendChild(list);
      main.appendChild(sec);
    }
    var responses = (spec.components || {}).responses || {};
    if (Object.keys(responses).length) {
      var rsec = el("section", { class: "tag", id: "responses" }, [el("h2", { text: "Shared responses" })]);
      Object.keys(responses).forEach(function (name) {
        var box = el("div", { class: "component", id: "component-" + slug(name) }, [el("h3", null, [el("code", { text: name })])]);
        box.appendChild(responseView("", responses[name]));
        rsec.appendChild(box);
      });
      main.appendChild(rsec);
    }
    // a #fragment names an operation or schema that did not exist when the page loaded
    // (the page was empty when the browser looked for it), so go there now
    var target = location.hash && document.getElementById(location.hash.slice(1));
    if (target) {
      if (target.tagName === "DETAILS") target.open = true;
      if (target.scrollIntoView) target.scrollIntoView();
    }
    document.body.setAttribute("data-rendered", String(ops.length));
  }

  function filter(q) {
    q = q.trim().toLowerCase();
    var items = document.querySelectorAll("#toc li");
    for (var i = 0; i < items.length; i++) {
      var hit = !q || items[i].getAttribute("data-filter").indexOf(q) >= 0;
      items[i].classList.toggle("hidden", !hit);
    }
  }

  function start() {
    document.getElementById("filter").addEventListener("input", function (e) { filter(e.target.value); });
    fetch("openapi.json", { headers: { Accept: "application/json" } })
      .then(function (r) {
        if (!r.ok) throw new Error("openapi.json: HTTP " + r.status);
        return r.json();
      })
      .then(function (doc) {
        spec = doc;
        render();
      })
      .catch(function (err) {
        var s = document.getElementById("status");
        if (s) {
          s.className = "error";
          s.textContent = "Could not load the API description: " + err.message;
        }
      });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
