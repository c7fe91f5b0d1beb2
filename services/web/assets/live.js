// Live updates of the run and project pages, over /api/v1/live. The socket is
// authenticated by the session cookie; the page names its channel in <body data-live>.
// Events are queued and applied once per animation frame (at least every 100 ms), so a
// run reporting a thousand results a second costs one DOM update per frame. After a drop the script says
// "reconnecting", checks the session (renewing its cookie), and resumes with `since`.

const MAX_ROWS = 100;
const FLUSH_AT_LEAST = 100;
const channel = document.body.dataset.live;
if (channel) follow(channel);

function follow(channel) {
  const state = document.querySelector("[data-live-state]");
  const compressed = typeof DecompressionStream === "function";
  let seq = null;
  let socket = null;
  let failures = 0;
  let queue = [];
  let scheduled = false;
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

  // The next frame applies what arrived; a page the browser draws no frames for (not
  // visible, throttled) is still brought up to date every FLUSH_AT_LEAST ms.
  const enqueue = (item) => {
    queue.push(item);
    if (!scheduled) {
      scheduled = true;
      requestAnimationFrame(flush);
      setTimeout(flush, FLUSH_AT_LEAST);
    }
  };

  const flush = () => {
    if (!scheduled) return;
    scheduled = false;
    const items = queue;
    queue = [];
    apply(items);
  };

  connect();
}

async function inflate(blob) {
  const stream = blob.stream().pipeThrough(new DecompressionStream("deflate-raw"));
  return JSON.parse(await new Response(stream).text());
}

// ---- applying a frame's worth of events ------------------------------------------------

function apply(items) {
  const latest = new Map();
  const results = [];
  for (const item of items) {
    if (item.snapshot) {
      const snapshot = item.snapshot;
      if (snapshot.run) latest.set(snapshot.run.id, { status: snapshot.run.status, counts: snapshot.run.counts });
      for (const run of snapshot.running || []) {
        addRun(run.id, run.name, run.started_at);
        latest.set(run.id, { status: run.status, counts: run.counts });
      }
      continue;
    }
    switch (item.kind) {
      case "run.started":
        addRun(item.run_id, item.name, item.started_at);
        break;
      case "run.progress":
      case "run.finished":
        latest.set(item.run_id, { status: item.status, counts: item.counts });
        break;
      case "test.finished":
        for (const test of item.tests) results.push(test);
        break;
      case "artifact.stored":
        addArtifact(item);
        break;
      case "run.deleted":
        latest.set(item.run_id, { status: "deleted" });
        break;
    }
  }
  for (const [runId, update] of latest) showRun(runId, update);
  if (results.length) addResults(results.slice(-MAX_ROWS));
}


function showRun(runId, update) {
  const row = document.querySelector(`[data-run="${CSS.escape(runId)}"]`);
  const scope = row || (document.body.dataset.live === "run:" + runId ? document : null);
  if (!scope) return;
  const badge = scope.querySelector("[data-status]");
  if (badge && update.status) {
    badge.textContent = update.status;
    badge.dataset.status = update.status;
    badge.className = "status s-" + update.status;
  }
  if (!update.counts) return;
  for (const node of scope.querySelectorAll("[data-count]")) {
    node.textContent = update.counts[node.dataset.count];
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
    rect.setAttribute("x", x.toFixed(3));
    rect.setAttribute("width", width.toFixed(3));
    x += width;
  }
  bar.setAttribute("aria-label", counts.total + " tests");
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

function addResults(tests) {
  const body = document.querySelector("[data-live-results]");
  if (!body) return;
  const slug = body.dataset.slug;
  const rows = document.createDocumentFragment();
  for (const test of tests.reverse()) {
    body.querySelector(`tr[data-result="${CSS.escape(test.id)}"]`)?.remove();
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
    rows.append(row);
  }
  body.prepend(rows);
  while (body.rows.length > MAX_ROWS) body.deleteRow(-1);
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
