// Switchyard's admin page: the management API (/key/..., /global/spend/..., /spend/logs)
// called with the master key, which stays in this tab's sessionStorage. No dependencies;
// the charts are SVG drawn here. Data from the API is only ever put in the page as text.
"use strict";

(() => {
  const STORAGE = "switchyard.masterKey";
  const SVG_NS = "http://www.w3.org/2000/svg";
  const DAYS = 30;
  /** Logs read for the latency chart at most (newest first). */
  const LOG_CAP = 10000;
  /** Models drawn apart in the stacked chart; the rest are summed as "others". */
  const TOP_MODELS = 7;
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

  /** The last `DAYS` UTC days, oldest first, today last. */
  function lastDays() {
    const today = Date.now();
    const span = [];
    for (let i = DAYS - 1; i >= 0; i--) span.push(utcDay(today - i * 86400000));
    return span;
  }

  /** A latency: `830 ms`, `1.25 s`. */
  function latency(ms) {
    if (ms === null || ms === undefined || !Number.isFinite(ms)) return "—";
    if (ms < 1000) return `${Math.round(ms)} ms`;
    return `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;
  }

  /** An axis label for a latency: `0`, `250 ms`, `1.5 s`. */
  function latencyTick(ms) {
    if (ms === 0) return "0";
    if (ms < 1000) return `${Number(ms.toFixed(2))} ms`;
    return `${Number((ms / 1000).toFixed(3))} s`;
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
    for (const id of ["chart-days", "chart-keys", "chart-models", "chart-usage-spend", "chart-latency",
      "legend-usage-spend", "legend-latency"]) {
      $(id).replaceChildren();
    }
    for (const id of ["stat-requests", "stat-usage-spend", "stat-p50", "stat-p95"]) $(id).textContent = "–";
    $("latency-note").hidden = true;
    $("new-key").hidden = true;
    $("new-key-value").textContent = "";
    $("tabs").hidden = true;
    $("logout").hidden = true;
    $("keys-view").hidden = true;
    $("spend-view").hidden = true;
    $("usage-view").hidden = true;
    $("login-view").hidden = false;
    $("master-key").value = "";
    $("master-key").focus();
  }

  function currentView() {
    if (location.hash === "#spend") return "spend";
    if (location.hash === "#usage") return "usage";
    return "keys";
  }

  function show() {
    if (!sessionStorage.getItem(STORAGE)) return;
    const view = currentView();
    $("login-view").hidden = true;
    $("tabs").hidden = false;
    $("logout").hidden = false;
    $("keys-view").hidden = view !== "keys";
    $("spend-view").hidden = view !== "spend";
    $("usage-view").hidden = view !== "usage";
    for (const t of document.querySelectorAll(".tab")) {
      t.setAttribute("aria-selected", String(t.dataset.view === view));
    }
    if (view === "keys") {
      loadKeys();
      loadModels();
    } else if (view === "spend") {
      loadSpend();
    } else {
      loadUsage();
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

  /** An SVG chart named `label` (its <title>, and `summary` as its <desc>). */
  function chartSvg(width, height, label, summary) {
    const root = svg("svg", {
      viewBox: `0 0 ${width} ${height}`,
      width,
      height,
      role: "img",
      "aria-label": label,
      preserveAspectRatio: "xMinYMin meet",
    });
    root.append(svg("title", {}, label));
    if (summary) root.append(svg("desc", {}, summary));
    return root;
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
      const span = lastDays();
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

  // ---- usage ----

  /** Ticks of a value axis from 0 to at least `highest`: [step, count, top]. */
  function axis(highest, wanted = 4) {
    const step = niceStep(highest / wanted);
    const ticks = Math.max(1, Math.ceil(highest / step - 1e-9));
    return [step, ticks, step * ticks];
  }

  /** The nearest-rank percentile `p` of ascending numbers. */
  function percentile(sorted, p) {
    if (!sorted.length) return null;
    const rank = Math.ceil((p / 100) * sorted.length);
    return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
  }

  /**
   * The frame of a chart over `span` days: the value axis (left) with its grid, the days
   * (every fifth labelled, today last) and the axis titles. Returns the width of a day's slot.
   */
  function frame(root, g, ticks, format, span, yTitle) {
    const [step, count] = ticks;
    for (let i = 0; i <= count; i++) {
      const y = g.top + g.plotH - (g.plotH * i) / count;
      root.append(svg("line", { class: i ? "grid-line" : "axis", x1: g.left, x2: g.W - g.right, y1: y, y2: y }));
      root.append(svg("text", { x: g.left - 8, y: y + 4, "text-anchor": "end" }, format(step * i)));
    }
    const slot = g.plotW / span.length;
    span.forEach((day, i) => {
      if (i % 5 === (span.length - 1) % 5) {
        const x = g.left + (i + 0.5) * slot;
        root.append(svg("line", { class: "axis", x1: x, x2: x, y1: g.top + g.plotH, y2: g.top + g.plotH + 4 }));
        root.append(svg("text", { x: x.toFixed(1), y: g.top + g.plotH + 17, "text-anchor": "middle" }, day.slice(5)));
      }
    });
    const mid = g.top + g.plotH / 2;
    root.append(svg("text", { class: "axis-title", x: 14, y: mid, "text-anchor": "middle", transform: `rotate(-90 14 ${mid})` }, yTitle));
    root.append(svg("text", { class: "axis-title", x: g.left + g.plotW / 2, y: g.H - 4, "text-anchor": "middle" }, "Day (UTC)"));
    return slot;
  }

  /** Both day charts' layout: the same days line up in both (the right margin holds an axis). */
  function geometry() {
    const W = 1160, H = 214, left = 78, right = 64, top = 12, bottom = 44;
    return { W, H, left, right, top, bottom, plotW: W - left - right, plotH: H - top - bottom };
  }

  function noData(root, g, text) {
    root.append(svg("text", { class: "nodata", x: g.left + g.plotW / 2, y: g.top + g.plotH / 2, "text-anchor": "middle" }, text));
  }

  /** Legend entries: [name, swatch class]. */
  function legend(box, entries) {
    box.replaceChildren(
      ...entries.map(([name, cls]) =>
        el("li", { "data-series": name }, el("span", { class: "swatch " + cls, "aria-hidden": "true" }), name),
      ),
    );
  }

  /**
   * Spend per day, stacked by model: `perDay` is day → (model → USD). The largest models
   * (over the span) are drawn apart, bottom up, the others summed.
   */
  function spendByModelChart(container, legendBox, span, perDay, emptyText) {
    const totals = new Map();
    for (const models of perDay.values()) {
      for (const [model, v] of models) totals.set(model, (totals.get(model) || 0) + v);
    }
    const ranked = [...totals.entries()].filter((e) => e[1] > 0).sort((a, b) => b[1] - a[1]).map((e) => e[0]);
    const shown = ranked.length > TOP_MODELS ? ranked.slice(0, TOP_MODELS - 1) : ranked;
    const others = ranked.length > shown.length ? `${ranked.length - shown.length} other models` : null;
    const series = shown.map((name, i) => [name, "s" + i]);
    if (others) series.push([others, "s-other"]);
    const dayValues = span.map((day) => {
      const models = perDay.get(day) || new Map();
      const values = shown.map((m) => models.get(m) || 0);
      if (others) {
        let rest = 0;
        for (const [m, v] of models) if (!shown.includes(m)) rest += v;
        values.push(rest);
      }
      return values;
    });
    const dayTotals = dayValues.map((vs) => vs.reduce((a, b) => a + b, 0));
    const sum = dayTotals.reduce((a, b) => a + b, 0);
    const g = geometry();
    const root = chartSvg(
      g.W,
      g.H,
      "Spend per day by model, last 30 days",
      series.length
        ? `${money(sum)} in all; by model: ${series.map(([n], k) => `${n} ${money(dayValues.reduce((a, vs) => a + vs[k], 0))}`).join(", ")}.`
        : emptyText,
    );
    const ticks = axis(Math.max(0, ...dayTotals));
    const slot = frame(root, g, ticks, money, span, "Spend (USD)");
    const max = ticks[2];
    const barW = Math.max(2, slot * 0.68);
    span.forEach((day, i) => {
      if (!(dayTotals[i] > 0)) return;
      const x = g.left + i * slot + (slot - barW) / 2;
      const hit = svg("rect", { class: "hit", x: (g.left + i * slot).toFixed(1), y: g.top, width: slot.toFixed(1), height: g.plotH });
      const lines = series
        .map(([n], k) => [n, dayValues[i][k]])
        .filter((e) => e[1] > 0)
        .map(([n, v]) => `${n}: ${money(v)}`);
      hit.append(svg("title", {}, `${day}: ${money(dayTotals[i])}\n${lines.join("\n")}`));
      root.append(hit);
      let y = g.top + g.plotH;
      series.forEach(([name, cls], k) => {
        const v = dayValues[i][k];
        if (!(v > 0)) return;
        const h = Math.max(1, (g.plotH * v) / max);
        y -= h;
        const seg = svg("rect", {
          class: "seg " + cls,
          x: x.toFixed(1),
          y: y.toFixed(1),
          width: barW.toFixed(1),
          height: h.toFixed(1),
          "data-day": day,
          "data-series": name,
          "data-value": v,
        });
        seg.append(svg("title", {}, `${day} · ${name}: ${money(v)} (day ${money(dayTotals[i])})`));
        root.append(seg);
      });
    });
    if (!series.length) noData(root, g, emptyText);
    container.replaceChildren(root);
    legend(legendBox, series);
  }

  /**
   * Latency per day: `stats` is day → {p50, p95, count} (ms). p50 and p95 as lines over the
   * request count's bars (right axis); a day without requests breaks the lines.
   */
  function latencyChart(container, legendBox, span, stats) {
    const g = geometry();
    const days = span.map((day) => stats.get(day) || null);
    const active = days.filter(Boolean);
    const requests = active.reduce((a, d) => a + d.count, 0);
    const root = chartSvg(
      g.W,
      g.H,
      "Request latency per day (p50 and p95), last 30 days",
      active.length
        ? `${count(requests)} requests on ${active.length} days; highest p95 ${latency(Math.max(...active.map((d) => d.p95)))}.`
        : "No requests in the last 30 days",
    );
    const ticks = axis(Math.max(0, ...active.map((d) => d.p95)));
    const slot = frame(root, g, ticks, latencyTick, span, "Latency");
    const max = ticks[2];
    // The count's axis, on the right, on the same grid lines: whole numbers.
    const countStep = Math.max(1, Math.ceil(niceStep(Math.max(1, ...active.map((d) => d.count)) / ticks[1])));
    const countMax = countStep * ticks[1];
    for (let i = 0; i <= ticks[1]; i++) {
      const y = g.top + g.plotH - (g.plotH * i) / ticks[1];
      root.append(svg("text", { class: "right", x: g.W - g.right + 8, y: y + 4, "text-anchor": "start" }, count(countStep * i)));
    }
    const mid = g.top + g.plotH / 2;
    const rx = g.W - 10;
    root.append(svg("text", { class: "axis-title", x: rx, y: mid, "text-anchor": "middle", transform: `rotate(90 ${rx} ${mid})` }, "Requests"));
    if (!active.length) {
      noData(root, g, "No requests in the last 30 days");
      container.replaceChildren(root);
      legendBox.replaceChildren();
      return;
    }
    const barW = Math.max(2, slot * 0.5);
    const centre = (i) => g.left + (i + 0.5) * slot;
    const yOf = (ms) => g.top + g.plotH - (g.plotH * ms) / max;
    days.forEach((d, i) => {
      if (!d) return;
      const h = Math.max(1, (g.plotH * d.count) / countMax);
      root.append(svg("rect", {
        class: "count-bar",
        x: (centre(i) - barW / 2).toFixed(1),
        y: (g.top + g.plotH - h).toFixed(1),
        width: barW.toFixed(1),
        height: h.toFixed(1),
        "data-day": span[i],
        "data-value": d.count,
      }));
      const hit = svg("rect", { class: "hit", x: (g.left + i * slot).toFixed(1), y: g.top, width: slot.toFixed(1), height: g.plotH });
      hit.append(svg("title", {}, `${span[i]}: p50 ${latency(d.p50)} · p95 ${latency(d.p95)} · ${count(d.count)} requests`));
      root.append(hit);
    });
    // p95 last, dashed and hollow: where it equals p50 both still show.
    for (const [name, cls] of [["p50", "p50"], ["p95", "p95"]]) {
      let path = "";
      let drawing = false;
      days.forEach((d, i) => {
        if (!d) {
          drawing = false;
          return;
        }
        path += `${drawing ? "L" : "M"}${centre(i).toFixed(1)} ${yOf(d[name]).toFixed(1)} `;
        drawing = true;
      });
      root.append(svg("path", { class: "line " + cls, d: path.trim() }));
      days.forEach((d, i) => {
        if (!d) return;
        const point = svg("circle", {
          class: "point " + cls,
          cx: centre(i).toFixed(1),
          cy: yOf(d[name]).toFixed(1),
          r: name === "p95" ? 4.5 : 3.5,
          "data-day": span[i],
          "data-series": name,
          "data-value": d[name],
          "data-count": d.count,
        });
        point.append(svg("title", {}, `${span[i]} · ${name}: ${latency(d[name])} (${count(d.count)} requests)`));
        root.append(point);
      });
    }
    container.replaceChildren(root);
    legend(legendBox, [["p50", "p50"], ["p95", "p95"], ["Requests", "count"]]);
  }

  async function loadUsage() {
    await guarded("usage-error", async () => {
      const span = lastDays();
      const [first, last] = [span[0], span[span.length - 1]];
      const [report, logs] = await Promise.all([
        api("GET", `/global/spend/report?group_by=model&start_date=${first}&end_date=${last}`),
        api("GET", `/spend/logs?start_date=${first}&end_date=${last}&limit=${LOG_CAP}`),
      ]);
      const perDay = new Map();
      let spend = 0;
      for (const day of report || []) {
        if (!span.includes(day.group_by_day)) continue;
        const models = perDay.get(day.group_by_day) || new Map();
        for (const item of day.models || []) {
          const model = item.model || "unknown";
          const v = Number(item.total_spend || 0);
          models.set(model, (models.get(model) || 0) + v);
          spend += v;
        }
        perDay.set(day.group_by_day, models);
      }
      const perDayMs = new Map();
      const all = [];
      let inSpan = 0;
      for (const l of logs || []) {
        const day = String(l.startTime || "").slice(0, 10);
        if (!span.includes(day)) continue;
        inSpan += 1;
        const ms = Date.parse(l.endTime) - Date.parse(l.startTime);
        if (!Number.isFinite(ms) || ms < 0) continue;
        if (!perDayMs.has(day)) perDayMs.set(day, []);
        perDayMs.get(day).push(ms);
        all.push(ms);
      }
      const stats = new Map();
      for (const [day, list] of perDayMs) {
        list.sort((a, b) => a - b);
        stats.set(day, { p50: percentile(list, 50), p95: percentile(list, 95), count: list.length });
      }
      all.sort((a, b) => a - b);
      const capped = (logs || []).length >= LOG_CAP;
      $("stat-requests").textContent = count(inSpan) + (capped ? "+" : "");
      $("stat-usage-spend").textContent = money(spend);
      $("stat-p50").textContent = latency(percentile(all, 50));
      $("stat-p95").textContent = latency(percentile(all, 95));
      spendByModelChart(
        $("chart-usage-spend"),
        $("legend-usage-spend"),
        span,
        perDay,
        inSpan ? "No spend in the last 30 days" : "No requests in the last 30 days",
      );
      latencyChart($("chart-latency"), $("legend-latency"), span, stats);
      $("latency-note").textContent = capped
        ? `From the latest ${count(LOG_CAP)} requests only: earlier days may show fewer requests than they had.`
        : "";
      $("latency-note").hidden = !capped;
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
    $("refresh-usage").addEventListener("click", loadUsage);
    if (sessionStorage.getItem(STORAGE)) show();
  });
})();
