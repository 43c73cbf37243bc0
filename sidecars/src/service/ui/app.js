// Switchyard's admin page: the management API (/key/..., /global/spend/..., /spend/logs)
// called with the master key, which stays in this tab's sessionStorage. No dependencies;
// the charts are SVG drawn here. Data from the API is only ever put in the page as text.
"use strict";

(() => {
  const STORAGE = "switchyard.masterKey";
  const SVG_NS = "http://www.w3.org/2000/svg";
  const DAYS = 30;
  const $ = (id) => document.getElementById(id);

  /** The keys last listed, newest first (whole records; `token` is the key's hash). */
  let keys = [];

  // ---- the API ----

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  async function api(method, path, body, key) {
    const headers = { Authorization: "Bearer " + (key ?? sessionStorage.getItem(STORAGE) ?? "") };
    const init = { method, headers, cache: "no-store", credentials: "omit" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(path, init);
    } catch (e) {
      throw new ApiError(0, "cannot reach the gateway: " + e.message);
    }
    const text = await res.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      // not JSON: the text is the message
    }
    if (!res.ok) {
      const message = (data && data.error && data.error.message) || text.trim() || res.statusText;
      throw new ApiError(res.status, `${message} (HTTP ${res.status})`);
    }
    return data;
  }

  /** Every key, all pages. */
  async function listKeys() {
    const all = [];
    for (let page = 1; page <= 100; page++) {
      const d = await api("GET", `/key/list?return_full_object=true&size=100&page=${page}`);
      for (const k of d.keys || []) if (k && typeof k === "object") all.push(k);
      if (page >= (d.total_pages || 1)) break;
    }
    all.sort((a, b) => String(b.created_at || "").localeCompare(String(a.created_at || "")));
    return all;
  }

  // ---- formatting ----

  function money(v) {
    if (v === null || v === undefined || Number.isNaN(Number(v))) return "—";
    v = Number(v);
    if (v === 0) return "$0";
    const a = Math.abs(v);
    if (a >= 1) {
      return "$" + v.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
    }
    if (a < 1e-6) return "<$0.000001";
    const decimals = Math.min(8, 2 - Math.floor(Math.log10(a)));
    return "$" + v.toFixed(decimals).replace(/(\.\d\d\d*?)0+$/, "$1");
  }

  function count(n) {
    return Number(n || 0).toLocaleString("en-US");
  }

  /** `2026-01-02T03:04:05.678Z` → `2026-01-02 03:04 UTC`. */
  function when(iso) {
    if (!iso) return "";
    const m = /^(\d{4}-\d\d-\d\d)T(\d\d:\d\d)/.exec(iso);
    return m ? `${m[1]} ${m[2]} UTC` : iso;
  }

  function utcDay(ms) {
    return new Date(ms).toISOString().slice(0, 10);
  }

  /** A key's name for people: its alias, else `sk-...abcd`. */
  function keyLabel(hash) {
    if (!hash) return "master key";
    const k = keys.find((x) => x.token === hash);
    if (k) return k.key_alias || k.key_name || hash.slice(0, 10);
    return "deleted key " + hash.slice(0, 8);
  }

  // ---- DOM helpers ----

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") node.className = v;
      else if (k.startsWith("data-")) node.setAttribute(k, String(v));
      else node.setAttribute(k, String(v));
    }
    for (const c of children) {
      if (c === null || c === undefined || c === false) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function showError(id, err) {
    const box = $(id);
    if (!err) {
      box.hidden = true;
      box.textContent = "";
      return;
    }
    box.textContent = err.message || String(err);
    box.hidden = false;
  }

  /** Runs an action; a 401 signs out (the key changed), other errors show in `errorId`. */
  async function guarded(errorId, action) {
    showError(errorId, null);
    try {
      await action();
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) {
        signOut();
        showError("login-error", e);
      } else {
        showError(errorId, e);
      }
    }
  }

  // ---- signing in and out ----

  async function signIn(key) {
    // Any admin route tells whether the key is the master key.
    await api("GET", "/key/list?size=1", undefined, key);
    sessionStorage.setItem(STORAGE, key);
  }

  function signOut() {
    sessionStorage.removeItem(STORAGE);
    keys = [];
    $("keys-body").replaceChildren();
    $("logs-body").replaceChildren();
    for (const id of ["chart-days", "chart-keys", "chart-models"]) $(id).replaceChildren();
    $("new-key").hidden = true;
    $("new-key-value").textContent = "";
    $("tabs").hidden = true;
    $("logout").hidden = true;
    $("keys-view").hidden = true;
    $("spend-view").hidden = true;
    $("login-view").hidden = false;
    $("master-key").value = "";
    $("master-key").focus();
  }

  function currentView() {
    return location.hash === "#spend" ? "spend" : "keys";
  }

  function show() {
    if (!sessionStorage.getItem(STORAGE)) return;
    const view = currentView();
    $("login-view").hidden = true;
    $("tabs").hidden = false;
    $("logout").hidden = false;
    $("keys-view").hidden = view !== "keys";
    $("spend-view").hidden = view !== "spend";
    for (const t of document.querySelectorAll(".tab")) {
      t.setAttribute("aria-selected", String(t.dataset.view === view));
    }
    if (view === "keys") {
      loadKeys();
      loadModels();
    } else {
      loadSpend();
    }
  }

  // ---- keys ----

  function keyStatus(k) {
    if (k.blocked) return ["blocked", "Blocked"];
    if (k.expires && Date.parse(k.expires) <= Date.now()) return ["expired", "Expired"];
    return ["active", "Active"];
  }

  function keyRow(k) {
    const [status, statusText] = keyStatus(k);
    const models = k.models && k.models.length
      ? k.models.map((m) => el("span", { class: "tag" }, m))
      : [el("span", { class: "muted" }, "all models")];
    const owner = [k.team_id && `team ${k.team_id}`, k.user_id && `user ${k.user_id}`]
      .filter(Boolean)
      .join(" · ");
    const del = el("button", { type: "button", class: "small danger", "data-action": "delete" }, "Delete");
    let armed = null;
    del.addEventListener("click", () => {
      if (!armed) {
        del.classList.add("armed");
        del.textContent = "Confirm delete";
        armed = setTimeout(() => {
          armed = null;
          del.classList.remove("armed");
          del.textContent = "Delete";
        }, 4000);
        return;
      }
      clearTimeout(armed);
      del.disabled = true;
      guarded("keys-error", async () => {
        await api("POST", "/key/delete", { keys: [k.token] });
        await loadKeys();
      }).finally(() => {
        del.disabled = false;
      });
    });
    const block = el(
      "button",
      {
        type: "button",
        class: "small " + (k.blocked ? "unblock" : "block"),
        "data-action": k.blocked ? "unblock" : "block",
      },
      k.blocked ? "Unblock" : "Block",
    );
    block.addEventListener("click", () => {
      block.disabled = true;
      guarded("keys-error", async () => {
        await api("POST", k.blocked ? "/key/unblock" : "/key/block", { key: k.token });
        await loadKeys();
      }).finally(() => {
        block.disabled = false;
      });
    });
    return el(
      "tr",
      { class: k.blocked ? "is-blocked" : "", "data-token": k.token, "data-alias": k.key_alias || "" },
      el("td", { class: "alias" }, k.key_alias || el("span", { class: "muted" }, "—")),
      el("td", { class: "key-name" }, el("code", {}, k.key_name || (k.token || "").slice(0, 10))),
      el("td", { class: "models" }, ...models),
      el("td", { class: "num spend" }, money(k.spend)),
      el("td", { class: "num budget" }, k.max_budget == null ? el("span", { class: "muted" }, "—") : money(k.max_budget)),
      el("td", {}, el("span", { class: "status " + status }, statusText)),
      el("td", { class: "expires" }, k.expires ? when(k.expires) : el("span", { class: "muted" }, "never")),
      el("td", { class: "owner" }, owner || el("span", { class: "muted" }, "—")),
      el("td", { class: "actions" }, block, del),
    );
  }

  async function loadKeys() {
    await guarded("keys-error", async () => {
      keys = await listKeys();
      $("keys-body").replaceChildren(...keys.map(keyRow));
      $("keys-empty").hidden = keys.length > 0;
      $("key-count").textContent = String(keys.length);
    });
  }

  let modelsLoaded = false;
  async function loadModels() {
    if (modelsLoaded) return;
    try {
      const d = await api("GET", "/model/info");
      const names = [...new Set((d.data || []).map((m) => m.model_name).filter(Boolean))].sort();
      $("model-names").replaceChildren(...names.map((n) => el("option", { value: n })));
      modelsLoaded = true;
    } catch {
      // suggestions only
    }
  }

  async function createKey(event) {
    event.preventDefault();
    const body = {};
    const alias = $("new-alias").value.trim();
    if (alias) body.key_alias = alias;
    const models = $("new-models").value.split(",").map((m) => m.trim()).filter(Boolean);
    if (models.length) body.models = models;
    const budget = $("new-budget").value.trim();
    if (budget !== "") body.max_budget = Number(budget);
    const duration = $("new-duration").value;
    if (duration) body.duration = duration;
    const button = $("create-submit");
    button.disabled = true;
    await guarded("create-error", async () => {
      const made = await api("POST", "/key/generate", body);
      $("new-key-value").textContent = made.key;
      $("new-key").hidden = false;
      $("copy-key").textContent = "Copy";
      $("create-form").reset();
      await loadKeys();
    });
    button.disabled = false;
  }

  async function copyKey() {
    const text = $("new-key-value").textContent;
    try {
      await navigator.clipboard.writeText(text);
      $("copy-key").textContent = "Copied";
    } catch {
      const range = document.createRange();
      range.selectNodeContents($("new-key-value"));
      const sel = window.getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
      $("copy-key").textContent = "Selected: press Ctrl+C";
    }
  }

  // ---- spend ----

  /** A step of 1, 2, 2.5 or 5 times a power of ten, at least `raw`. */
  function niceStep(raw) {
    if (!(raw > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(raw)));
    for (const m of [1, 2, 2.5, 5]) if (m * p >= raw * (1 - 1e-9)) return m * p;
    return 10 * p;
  }

  function chartSvg(width, height, label) {
    return svg("svg", {
      viewBox: `0 0 ${width} ${height}`,
      width,
      height,
      role: "img",
      "aria-label": label,
      preserveAspectRatio: "xMinYMin meet",
    });
  }

  /** Bars per day: `days` is [[YYYY-MM-DD, spend]] in order. */
  function dayChart(container, days) {
    const W = 1160, H = 260, left = 70, right = 12, top = 14, bottom = 34;
    const plotW = W - left - right, plotH = H - top - bottom;
    const root = chartSvg(W, H, "Spend per day");
    const highest = Math.max(0, ...days.map((d) => d[1]));
    const step = niceStep(highest / 4);
    const ticks = Math.max(1, Math.ceil(highest / step - 1e-9));
    const max = step * ticks;
    for (let i = 0; i <= ticks; i++) {
      const v = step * i;
      const y = top + plotH - (plotH * i) / ticks;
      root.append(svg("line", { class: i ? "grid-line" : "axis", x1: left, x2: W - right, y1: y, y2: y }));
      root.append(svg("text", { x: left - 8, y: y + 4, "text-anchor": "end" }, money(v)));
    }
    const slot = plotW / days.length;
    const barW = Math.max(2, slot * 0.68);
    days.forEach(([day, value], i) => {
      const h = value > 0 ? Math.max(1.5, (plotH * value) / max) : 0;
      const x = left + i * slot + (slot - barW) / 2;
      const bar = svg("rect", {
        class: "bar",
        x: x.toFixed(1),
        y: (top + plotH - h).toFixed(1),
        width: barW.toFixed(1),
        height: h.toFixed(1),
        rx: 2,
        "data-label": day,
        "data-value": value,
      });
      bar.append(svg("title", {}, `${day}: ${money(value)}`));
      root.append(bar);
      if (i % 5 === (days.length - 1) % 5) {
        root.append(svg("text", { x: (x + barW / 2).toFixed(1), y: H - 12, "text-anchor": "middle" }, day.slice(5)));
      }
    });
    if (!days.some((d) => d[1] > 0)) {
      root.append(svg("text", { class: "nodata", x: left + plotW / 2, y: top + plotH / 2, "text-anchor": "middle" }, "No spend in the last 30 days"));
    }
    container.replaceChildren(root);
  }

  /** Horizontal bars, largest first; past `limit` rows the rest are summed as "others". */
  function barChart(container, entries, label, limit = 10) {
    entries = entries.filter((e) => e[1] > 0).sort((a, b) => b[1] - a[1]);
    if (entries.length > limit) {
      const rest = entries.slice(limit - 1);
      entries = entries.slice(0, limit - 1);
      entries.push([`${rest.length} others`, rest.reduce((s, e) => s + e[1], 0)]);
    }
    const W = 560, row = 28, labelW = 170, valueW = 90, top = 6;
    const H = Math.max(1, entries.length) * row + top * 2;
    const root = chartSvg(W, H, label);
    if (!entries.length) {
      root.append(svg("text", { class: "nodata", x: W / 2, y: H / 2 + 4, "text-anchor": "middle" }, "No spend yet"));
      container.replaceChildren(root);
      return;
    }
    const max = entries[0][1];
    const plotW = W - labelW - valueW;
    entries.forEach(([name, value], i) => {
      const y = top + i * row;
      const shown = name.length > 24 ? name.slice(0, 23) + "…" : name;
      const text = svg("text", { class: "label", x: labelW - 10, y: y + row / 2 + 4, "text-anchor": "end" }, shown);
      text.append(svg("title", {}, name));
      root.append(text);
      const w = Math.max(2, (plotW * value) / max);
      const bar = svg("rect", {
        class: "bar",
        x: labelW,
        y: y + 5,
        width: w.toFixed(1),
        height: row - 10,
        rx: 3,
        "data-label": name,
        "data-value": value,
      });
      bar.append(svg("title", {}, `${name}: ${money(value)}`));
      root.append(bar);
      root.append(svg("text", { class: "value", x: labelW + w + 6, y: y + row / 2 + 4 }, money(value)));
    });
    container.replaceChildren(root);
  }

  async function loadSpend() {
    await guarded("spend-error", async () => {
      const [total, report, logs, listed] = await Promise.all([
        api("GET", "/global/spend"),
        api("GET", "/global/spend/report?group_by=api_key"),
        api("GET", "/spend/logs?limit=50"),
        listKeys(),
      ]);
      keys = listed;
      const today = Date.now();
      const span = [];
      for (let i = DAYS - 1; i >= 0; i--) span.push(utcDay(today - i * 86400000));
      const perDay = new Map(span.map((d) => [d, 0]));
      const perKey = new Map();
      const perModel = new Map();
      let month = 0;
      let tokens = 0;
      for (const day of report || []) {
        for (const item of day.api_keys || []) {
          const spend = Number(item.total_spend || 0);
          month += spend;
          if (perDay.has(day.group_by_day)) perDay.set(day.group_by_day, perDay.get(day.group_by_day) + spend);
          const name = keyLabel(item.api_key);
          perKey.set(name, (perKey.get(name) || 0) + spend);
          for (const m of item.metadata || []) {
            const model = m.model || "unknown";
            perModel.set(model, (perModel.get(model) || 0) + Number(m.spend || 0));
            tokens += Number(m.total_tokens || 0);
          }
        }
      }
      $("stat-total").textContent = money(total && total.spend);
      $("stat-month").textContent = money(month);
      const usable = keys.filter((k) => keyStatus(k)[0] === "active").length;
      $("stat-keys").textContent = `${count(usable)} of ${count(keys.length)}`;
      $("stat-tokens").textContent = count(tokens);
      dayChart($("chart-days"), [...perDay.entries()]);
      barChart($("chart-keys"), [...perKey.entries()], "Spend by key");
      barChart($("chart-models"), [...perModel.entries()], "Spend by model");
      $("logs-body").replaceChildren(
        ...logs.slice(0, 20).map((l) =>
          el(
            "tr",
            {},
            el("td", {}, when(l.startTime)),
            el("td", {}, (l.metadata && l.metadata.user_api_key_alias) || keyLabel(l.api_key)),
            el("td", {}, l.model_group || l.model),
            el("td", { class: "num" }, count(l.total_tokens)),
            el("td", { class: "num" }, money(l.spend)),
            el("td", {}, l.status || ""),
          ),
        ),
      );
      $("logs-empty").hidden = logs.length > 0;
    });
  }

  // ---- wiring ----

  document.addEventListener("DOMContentLoaded", () => {
    $("login-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const key = $("master-key").value.trim();
      const button = $("login-submit");
      button.disabled = true;
      showError("login-error", null);
      try {
        await signIn(key);
        $("master-key").value = "";
        show();
      } catch (e) {
        showError("login-error", e);
      } finally {
        button.disabled = false;
      }
    });
    $("logout").addEventListener("click", signOut);
    for (const t of document.querySelectorAll(".tab")) {
      t.addEventListener("click", () => {
        location.hash = t.dataset.view;
      });
    }
    window.addEventListener("hashchange", show);
    $("create-form").addEventListener("submit", createKey);
    $("copy-key").addEventListener("click", copyKey);
    $("refresh-keys").addEventListener("click", loadKeys);
    $("refresh-spend").addEventListener("click", loadSpend);
    if (sessionStorage.getItem(STORAGE)) show();
  });
})();
