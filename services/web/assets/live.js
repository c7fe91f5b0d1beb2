// Live updates of the run and project pages, over /api/v1/live. The socket is
// authenticated by the session cookie; the page names its channel in <body data-live>.
// Events are folded as they arrive (the latest state of each run, the newest results,
// no more than the table keeps) and the page is updated once per animation frame, or
// every FLUSH_AT_LEAST ms when the browser draws no frames (a hidden page), so a run
// reporting a thousand results a second costs one small DOM update per frame. After a
// drop the script says "reconnecting", checks the session (renewing its cookie), and
// resumes with `since`.

const FLUSH_AT_LEAST = 100;
const channel = document.body.dataset.live;
if (channel) follow(channel);

function follow(channel) {
  const state = document.querySelector("[data-live-state]");
  const compressed = typeof DecompressionStream === "function";
  const table = liveTable();
  let seq = null;
  let socket = null;
  let failures = 0;
  let changes = noChanges();
  let frame = 0;
  let timer = 0;
  let decoding = Promise.resolve();

  const show = (text, kind) => {
    if (!state) return;
    state.textContent = text;
    state.className = "live-state " + kind;
  };

  const subscribe = () => {
    const message = { type: "subscribe", channel };
    if (seq !== null) message.since = seq;
    socket.send(JSON.stringify(message));
  };

  const connect = () => {
    const url = new URL("/api/v1/live", location.href);
    url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    if (compressed) url.searchParams.set("encoding", "deflate");
    const ws = new WebSocket(url);
    ws.binaryType = "blob";
    socket = ws;
    ws.onopen = subscribe;
    ws.onmessage = (event) => {
      if (typeof event.data === "string") {
        receive(JSON.parse(event.data));
        return;
      }
      // Decoded in arrival order: each waits for the one before.
      decoding = decoding.then(() => inflate(event.data)).then(receive, () => ws.close());
    };
    ws.onclose = () => {
      if (socket === ws) reconnect();
    };
  };

  const reconnect = async () => {
    socket = null;
    show("Reconnecting…", "reconnecting");
    const pause = Math.min(5000, 250 * 2 ** failures) * (0.5 + Math.random() / 2);
    failures += 1;
    await new Promise((done) => setTimeout(done, pause));
    try {
      const session = await fetch("/session", { credentials: "same-origin", cache: "no-store" });
      if (session.status === 401) {
        show("Signed out. Reload the page to sign in again.", "offline");
        return;
      }
    } catch (_) {
      // Offline: try again later.
      reconnect();
      return;
    }
    connect();
  };

  const receive = (message) => {
    switch (message.type) {
      case "subscribed":
        failures = 0;
        seq = message.seq;
        if (message.snapshot) enqueue({ snapshot: message.snapshot });
        show("Live", "live");
        break;
      case "event":
        if (seq !== null && message.seq <= seq) return;
        if (seq !== null && message.seq !== seq + 1) {
          subscribe();
          return;
        }
        seq = message.seq;
        enqueue(message.event);
        break;
      case "lagged":
        subscribe();
        break;
      case "error":
        show("Live updates stopped: " + message.message, "offline");
        break;
    }
  };

  // The next frame shows what arrived; a page the browser draws no frames for (hidden,
  // throttled) is still brought up to date every FLUSH_AT_LEAST ms.
  const enqueue = (item) => {
    fold(changes, item, table ? table.keep : 0);
    if (timer) return;
    frame = requestAnimationFrame(flush);
    timer = setTimeout(flush, FLUSH_AT_LEAST);
  };

  const flush = () => {
    cancelAnimationFrame(frame);
    clearTimeout(timer);
    frame = timer = 0;
    const shown = changes;
    changes = noChanges();
    apply(shown, table);
  };

  connect();
}

async function inflate(blob) {
  const stream = blob.stream().pipeThrough(new DecompressionStream("deflate-raw"));
  return JSON.parse(await new Response(stream).text());
}

// ---- folding events, applying them once a frame ----------------------------------------

function noChanges() {
  return { started: [], runs: new Map(), results: [], artifacts: [] };
}

// Adds an event (or a snapshot) to what the next flush shows. Of the results only the
// newest `keep` can be shown, so no more than twice that many are held.
function fold(changes, item, keep) {
  if (item.snapshot) {
    const snapshot = item.snapshot;
    if (snapshot.run) changes.runs.set(snapshot.run.id, { status: snapshot.run.status, counts: snapshot.run.counts });
    for (const run of snapshot.running || []) {
      changes.started.push({ run_id: run.id, name: run.name, started_at: run.started_at });
      changes.runs.set(run.id, { status: run.status, counts: run.counts });
    }
    return;
  }
  switch (item.kind) {
    case "run.started":
      changes.started.push(item);
      break;
    case "run.progress":
    case "run.finished":
      changes.runs.set(item.run_id, { status: item.status, counts: item.counts });
      break;
    case "test.finished":
      if (!keep) break;
      for (const test of item.tests) changes.results.push(test);
      if (changes.results.length > 2 * keep) changes.results.splice(0, changes.results.length - keep);
      break;
    case "artifact.stored":
      changes.artifacts.push(item);
      break;
    case "run.deleted":
      changes.runs.set(item.run_id, { status: "deleted" });
      break;
  }
}

function apply(changes, table) {
  for (const run of changes.started) addRun(run.run_id, run.name, run.started_at);
  for (const [runId, update] of changes.runs) showRun(runId, update);
  if (table && changes.results.length) table.show(changes.results);
  for (const artifact of changes.artifacts) addArtifact(artifact);
}

// Sets a node's text only when it differs, so an unchanged counter costs no layout.
function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

function showRun(runId, update) {
  const row = document.querySelector(`[data-run="${CSS.escape(runId)}"]`);
  const scope = row || (document.body.dataset.live === "run:" + runId ? document.querySelector("header.run") : null);
  if (!scope) return;
  const badge = scope.querySelector("[data-status]");
  if (badge && update.status && badge.dataset.status !== update.status) {
    badge.textContent = update.status;
    badge.dataset.status = update.status;
    badge.className = "status s-" + update.status;
  }
  if (!update.counts) return;
  for (const node of scope.querySelectorAll("[data-count]")) {
    setText(node, String(update.counts[node.dataset.count]));
  }
  const bar = scope.querySelector("[data-bar]");
  if (bar) drawBar(bar, update.counts);
}

function drawBar(bar, counts) {
  const total = Math.max(1, counts.total);
  const shares = {
    passed: (counts.passed - counts.flaky) * 100 / total,
    flaky: counts.flaky * 100 / total,
    failed: (counts.failed + counts.errored) * 100 / total,
    skipped: counts.skipped * 100 / total,
  };
  let x = 0;
  for (const rect of bar.querySelectorAll("[data-segment]")) {
    const width = shares[rect.dataset.segment] || 0;
    setAttribute(rect, "x", x.toFixed(3));
    setAttribute(rect, "width", width.toFixed(3));
    x += width;
  }
  setAttribute(bar, "aria-label", counts.total + " tests");
}

function setAttribute(node, name, value) {
  if (node.getAttribute(name) !== value) node.setAttribute(name, value);
}

function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}

function statusBadge(word) {
  const badge = element("span", word, "status s-" + word);
  badge.dataset.status = word;
  return badge;
}

function duration(ms) {
  if (ms === null || ms === undefined) return "—";
  if (ms < 1000) return ms + " ms";
  if (ms < 60000) return (ms / 1000).toFixed(1) + " s";
  if (ms < 3600000) return Math.floor(ms / 60000) + " min " + String(Math.floor(ms / 1000) % 60).padStart(2, "0") + " s";
  return Math.floor(ms / 3600000) + " h " + String(Math.floor(ms / 60000) % 60).padStart(2, "0") + " min";
}

// The run page's latest results, newest first: at most `keep` rows (as many as the
// server renders there), found by result id, so a flush inserts the new rows in one go,
// drops the ones they replace and trims the oldest.
function liveTable() {
  const body = document.querySelector("[data-live-results]");
  if (!body) return null;
  const keep = Number(body.dataset.keep);
  const slug = body.dataset.slug;
  const rows = new Map();
  for (const row of body.rows) rows.set(row.dataset.result, row);
  const show = (results) => {
    const newest = new Map();
    for (let i = results.length - 1; i >= 0 && newest.size < keep; i--) {
      if (!newest.has(results[i].id)) newest.set(results[i].id, results[i]);
    }
    const fresh = document.createDocumentFragment();
    for (const [id, test] of newest) {
      rows.get(id)?.remove();
      const row = resultRow(test, slug);
      rows.set(id, row);
      fresh.append(row);
    }
    body.prepend(fresh);
    while (body.rows.length > keep) {
      const oldest = body.rows[body.rows.length - 1];
      rows.delete(oldest.dataset.result);
      oldest.remove();
    }
  };
  return { keep, show };
}

function resultRow(test, slug) {
  const row = element("tr");
  row.dataset.result = test.id;
  const status = element("td");
  status.append(statusBadge(test.status));
  const name = element("td");
  const link = element("a", test.name);
  link.href = `/projects/${encodeURIComponent(slug)}/tests/${encodeURIComponent(test.test_key)}`;
  name.append(link);
  const attempt = element("td", String(test.attempt));
  if (test.attempt > 1 && test.status === "passed") attempt.append(" ", element("span", "flaky", "flaky"));
  row.append(status, name, element("td", test.suite || ""), attempt, element("td", duration(test.duration_ms)));
  return row;
}

function addRun(runId, name, startedAt) {
  const body = document.querySelector("[data-runs] tbody");
  if (!body || document.querySelector(`[data-run="${CSS.escape(runId)}"]`)) return;
  body.querySelector("tr.empty")?.remove();
  const row = element("tr");
  row.dataset.run = runId;
  const nameCell = element("td");
  const link = element("a", name);
  link.href = "/runs/" + encodeURIComponent(runId);
  nameCell.append(link);
  const status = element("td");
  status.append(statusBadge("running"));
  const progress = element("td");
  const counts = element("span", undefined, "counts");
  for (const [key, label] of [["total", " tests · "], ["passed", " passed · "], ["failed", " failed · "], ["skipped", " skipped"]]) {
    const number = element("span", "0");
    number.dataset.count = key;
    counts.append(number, label);
  }
  progress.append(counts);
  row.append(nameCell, status, progress, element("td", startedAt.slice(0, 19).replace("T", " ") + " UTC"), element("td", "—"), element("td"));
  body.prepend(row);
}

function addArtifact(event) {
  const list = document.querySelector("[data-artifacts]");
  if (!list) return;
  list.querySelector("[data-no-artifacts]")?.remove();
  const item = element("li");
  const link = element("a", event.name);
  link.href = `/artifacts/${encodeURIComponent(event.artifact_id)}/view`;
  item.append(link, element("span", " " + event.size + " B", "muted"));
  list.append(item);
}
