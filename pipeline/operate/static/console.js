// The fluxworld console: draws map frames (pipeline/operate/mapframe.py), inspects entities,
// charts the tick loop, and travels in time through the server's API (pipeline/operate/console.py).

const KIND = ["player", "npc", "item"];         // schema/world.fbs Kind and ItemType
const ITEM = ["none", "gold", "potion"];
const ONLINE = 1, DEAD = 2;
const AOI_RADIUS = 10, AOI_SIZE = 31;        // GAME_RULES.md: the 31 nearest within distance 10
const FOLLOW_CELLS = 48;                     // cells across the map while following an entity
const CHART_POINTS = 300;                    // 60 s of live frames
const STAGES = ["negotiate", "contextualize", "project", "transform", "plan", "actuate"];
const $ = (id) => document.getElementById(id);

const state = {
  mode: "connecting",     // live | stored | past
  live: null,             // the newest live frame
  past: null,             // the past frame shown, in past mode
  zone: null,             // the zone drawn
  selected: null,         // the selected entity's id, as a string (ids are u64)
  span: null,             // [first, last] ticks time travel covers
  markA: null,
};

// --- frames ---------------------------------------------------------------------------------

function parseFrame(buffer) {
  const view = new DataView(buffer);
  const length = view.getUint32(0, true);
  const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 4, length)));
  let offset = 4 + length;
  offset += (8 - (offset % 8)) % 8;
  const count = (buffer.byteLength - offset) / 24;
  const entities = new Array(count);
  for (let i = 0; i < count; i++, offset += 24) {
    entities[i] = {
      id: view.getBigUint64(offset, true).toString(), zone: view.getUint32(offset + 8, true),
      x: view.getUint16(offset + 12, true), y: view.getUint16(offset + 14, true),
      hp: view.getInt32(offset + 16, true), kind: KIND[view.getUint8(offset + 20)] ?? "?",
      flags: view.getUint8(offset + 21), item: ITEM[view.getUint8(offset + 22)] ?? "?",
    };
  }
  return { header, entities };
}

function shown() { return state.mode === "past" ? state.past : state.live; }

// --- the map --------------------------------------------------------------------------------

const canvas = $("map");
const ctx2d = canvas.getContext("2d");

// Where cell (x, y) of the drawn zone is on the canvas, in CSS pixels: the test reads it too.
function placement(frame) {
  const zone = frame.header.zones.find((z) => z.id === state.zone) ?? frame.header.zones[0];
  const selected = state.selected && frame.entities.find((e) => e.id === state.selected);
  if ($("follow").checked && selected && selected.zone === zone.id) {
    const cell = canvas.clientWidth / FOLLOW_CELLS;
    return { zone, cell, x0: selected.x - FOLLOW_CELLS / 2, y0: selected.y - FOLLOW_CELLS / 2 };
  }
  const cell = Math.min(canvas.clientWidth / zone.width, canvas.clientHeight / zone.height);
  return { zone, cell, x0: 0, y0: 0 };
}

function toPixel(place, x, y) {
  return [(x - place.x0 + 0.5) * place.cell, (y - place.y0 + 0.5) * place.cell];
}

function colour(e) {
  if (e.kind === "player") return e.flags & ONLINE ? "#2563eb" : "#9ca3af";
  if (e.kind === "npc") return "#dc2626";
  return e.item === "potion" ? "#9333ea" : "#d4a017";
}

function draw() {
  const frame = shown();
  if (!frame || !frame.header.zones.length) return;
  if (state.zone === null || !frame.header.zones.some((z) => z.id === state.zone)) state.zone = frame.header.zones[0].id;
  const selected = state.selected && frame.entities.find((e) => e.id === state.selected);
  if ($("follow").checked && selected) state.zone = selected.zone;
  drawZones(frame);
  const place = placement(frame);
  const ratio = window.devicePixelRatio || 1;
  canvas.width = canvas.clientWidth * ratio;
  canvas.height = canvas.clientHeight * ratio;
  ctx2d.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx2d.clearRect(0, 0, canvas.clientWidth, canvas.clientHeight);
  ctx2d.strokeStyle = "#ccd";
  ctx2d.strokeRect(-place.x0 * place.cell, -place.y0 * place.cell, place.zone.width * place.cell,
                   place.zone.height * place.cell);
  const size = Math.max(2, Math.min(place.cell * 0.8, 10));
  const drawn = [];
  for (const e of frame.entities) {
    if (e.zone !== place.zone.id) continue;
    const [px, py] = toPixel(place, e.x, e.y);
    if (px < -size || py < -size || px > canvas.clientWidth + size || py > canvas.clientHeight + size) continue;
    drawn.push({ id: e.id, kind: e.kind, px, py });
    ctx2d.fillStyle = colour(e);
    if (e.flags & DEAD) {
      ctx2d.strokeStyle = "#374151";
      ctx2d.beginPath();
      ctx2d.moveTo(px - size / 2, py - size / 2); ctx2d.lineTo(px + size / 2, py + size / 2);
      ctx2d.moveTo(px + size / 2, py - size / 2); ctx2d.lineTo(px - size / 2, py + size / 2);
      ctx2d.stroke();
    } else if (e.kind === "npc") {
      ctx2d.fillRect(px - size / 2, py - size / 2, size, size);
    } else {
      ctx2d.beginPath();
      ctx2d.arc(px, py, size / 2, 0, 2 * Math.PI);
      ctx2d.fill();
    }
  }
  if (selected && selected.kind === "player" && selected.zone === place.zone.id) drawInterest(frame, place, selected, size);
  window.fluxworld.drawn = drawn;
  window.fluxworld.place = place;
  window.fluxworld.drawnTick = frame.header.tick;
}

// The selected entity's area of interest: itself and its 31 nearest (Chebyshev, lower id first at
// equal distance) within distance 10 in its zone, offline players left out (GAME_RULES.md, Effects).
function interest(frame, who) {
  const near = [];
  for (const e of frame.entities) {
    if (e.id === who.id || e.zone !== who.zone) continue;
    if (e.kind === "player" && !(e.flags & ONLINE)) continue;
    const d = Math.max(Math.abs(e.x - who.x), Math.abs(e.y - who.y));
    if (d <= AOI_RADIUS) near.push([d, BigInt(e.id), e]);
  }
  near.sort((a, b) => a[0] - b[0] || (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  return near.slice(0, AOI_SIZE).map((n) => n[2]);
}

function drawInterest(frame, place, selected, size) {
  const [px, py] = toPixel(place, selected.x, selected.y);
  const half = (AOI_RADIUS + 0.5) * place.cell;
  ctx2d.strokeStyle = "#0891b2";
  ctx2d.setLineDash([4, 3]);
  ctx2d.strokeRect(px - half, py - half, 2 * half, 2 * half);
  ctx2d.setLineDash([]);
  for (const e of interest(frame, selected)) {
    const [ex, ey] = toPixel(place, e.x, e.y);
    ctx2d.strokeRect(ex - size / 2 - 2, ey - size / 2 - 2, size + 4, size + 4);
  }
  ctx2d.lineWidth = 2;
  ctx2d.strokeStyle = "#111";
  ctx2d.beginPath();
  ctx2d.arc(px, py, size / 2 + 4, 0, 2 * Math.PI);
  ctx2d.stroke();
  ctx2d.lineWidth = 1;
}

function drawZones(frame) {
  const nav = $("zones");
  const counts = new Map();
  for (const e of frame.entities) counts.set(e.zone, (counts.get(e.zone) ?? 0) + 1);
  const key = frame.header.zones.map((z) => `${z.id}:${counts.get(z.id) ?? 0}`).join(",") + `|${state.zone}`;
  if (nav.dataset.key === key) return;
  nav.dataset.key = key;
  nav.replaceChildren(...frame.header.zones.map((z) => {
    const b = document.createElement("button");
    b.textContent = `zone ${z.id} (${z.width}\u00d7${z.height}, ${counts.get(z.id) ?? 0})`;
    b.className = z.id === state.zone ? "current" : "";
    b.onclick = () => { state.zone = z.id; $("follow").checked = false; draw(); };
    return b;
  }));
}

canvas.addEventListener("click", (event) => {
  const place = window.fluxworld.place;
  if (!place) return;
  const rect = canvas.getBoundingClientRect();
  const [cx, cy] = [event.clientX - rect.left, event.clientY - rect.top];
  let best = null, bestDistance = Math.max(8, place.cell);
  for (const d of window.fluxworld.drawn) {
    const distance = Math.hypot(d.px - cx, d.py - cy);
    if (distance < bestDistance) [best, bestDistance] = [d, distance];
  }
  select(best ? best.id : null);
});

// --- the inspector --------------------------------------------------------------------------

async function select(id) {
  state.selected = id;
  $("selected").textContent = id ?? "none: click one on the map";
  draw();
  await inspect();
}

async function inspect() {
  const id = state.selected;
  if (!id) { $("record").replaceChildren(); $("commands").replaceChildren(); $("effects").replaceChildren(); return; }
  const query = state.mode === "past" ? `?tick=${state.past.header.tick}` : "";
  const response = await fetch(`/console/api/entity/${id}${query}`);
  if (id !== state.selected) return;
  if (!response.ok) { $("record").replaceChildren(row("gone", await response.text())); return; }
  const body = await response.json();
  $("record").replaceChildren(row("at tick", body.tick), ...Object.entries(body.record).map(([k, v]) => row(k, v)));
  $("commands").replaceChildren(...(body.commands ?? []).map((c) => item(c)));
  $("effects").replaceChildren(...(body.effects ?? []).map((e) => item(e)));
  if (state.mode === "past") {
    $("commands").replaceChildren(item({ note: "recent commands are shown live" }));
    $("effects").replaceChildren();
  }
}

function row(name, value) {
  const tr = document.createElement("tr");
  for (const text of [name, String(value)]) {
    const td = document.createElement("td");
    td.textContent = text;
    tr.append(td);
  }
  return tr;
}

function item(object) {
  const li = document.createElement("li");
  li.textContent = JSON.stringify(object);
  return li;
}

// --- charts ---------------------------------------------------------------------------------

const series = { t: [], stages: STAGES.map(() => []), commands: [], online: [] };
const palette = ["#2563eb", "#16a34a", "#9333ea", "#dc2626", "#d97706", "#0891b2"];

function makeChart(id, title, labels, unit) {
  const options = {
    title, width: 420, height: 200,
    series: [{}, ...labels.map((label, i) => ({ label, stroke: palette[i % palette.length], width: 1.5 }))],
    axes: [{}, { label: unit }],
  };
  return new uPlot(options, [[], ...labels.map(() => [])], $(id));
}

const charts = {
  stages: makeChart("chart-stages", "tick time per stage (mean)", STAGES, "ms"),
  commands: makeChart("chart-commands", "commands accepted", ["commands/s"], "per second"),
  online: makeChart("chart-online", "players online", ["online"], "players"),
};

function chart(header) {
  if (!header.figures) return;
  series.t.push(Date.now() / 1000);
  STAGES.forEach((s, i) => series.stages[i].push(header.figures.stage_ms[s] ?? 0));
  series.commands.push(header.figures.commands_per_s);
  series.online.push(header.online);
  if (series.t.length > CHART_POINTS) {
    for (const list of [series.t, series.commands, series.online, ...series.stages]) list.shift();
  }
  charts.stages.setData([series.t, ...series.stages]);
  charts.commands.setData([series.t, series.commands]);
  charts.online.setData([series.t, series.online]);
  window.fluxworld.charted = series.t.length;
}

// --- live frames ----------------------------------------------------------------------------

function connect() {
  const socket = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/console/api/live`);
  socket.binaryType = "arraybuffer";
  socket.onmessage = (message) => {
    state.live = parseFrame(message.data);
    window.fluxworld.frames += 1;
    chart(state.live.header);
    if (state.mode !== "past") {
      state.mode = state.live.header.mode;
      showHeader(state.live.header);
      draw();
    }
  };
  socket.onclose = () => { $("mode").textContent = "reconnecting"; setTimeout(connect, 1000); };
}

function showHeader(header) {
  $("mode").textContent = state.mode === "past" ? `past: tick ${header.tick}` : state.mode;
  $("mode").className = `badge ${state.mode}`;
  $("tick").textContent = header.tick;
  $("entities").textContent = header.entities;
  $("online").textContent = header.online ?? "-";
  $("hash").textContent = header.hash ? header.hash.slice(0, 16) : "-";
}

// --- time travel ----------------------------------------------------------------------------

async function refreshSpan() {
  const response = await fetch("/console/api/world");
  if (!response.ok) return;
  const world = await response.json();
  state.span = world.span;
  if (!state.span) return;
  const slider = $("slider");
  slider.min = state.span[0];
  slider.max = state.span[1];
  if (state.mode !== "past") slider.value = state.span[1];
}

let travelling = null;

async function travel(tick) {
  if (!state.span) await refreshSpan();
  if (!state.span) return;
  tick = Math.max(state.span[0], Math.min(state.span[1], tick));
  if (state.mode === "past" && state.past.header.tick === tick) return;
  $("slider").value = tick;
  const asked = tick;
  travelling = asked;
  $("hashes").textContent = `rebuilding tick ${tick}\u2026`;
  const response = await fetch(`/console/api/past/${tick}`);
  if (travelling !== asked) return;          // a later request took over
  if (!response.ok) { $("hashes").textContent = await response.text(); return; }
  state.past = parseFrame(await response.arrayBuffer());
  state.mode = "past";
  const h = state.past.header;
  const same = h.hash === h.logged_hash;
  $("hashes").innerHTML = "";
  $("hashes").append(
    line(`tick ${h.tick}: rebuilt in ${h.seconds} s (${h.replayed} ticks replayed)`),
    line(`rebuilt ${h.hash}`), line(`logged  ${h.logged_hash ?? "(not logged)"}`, same ? "same" : "differ"),
  );
  $("hashes").dataset.tick = h.tick;
  $("hashes").dataset.same = String(same);
  showHeader(h);
  draw();
  inspect();
}

function line(text, className = "") {
  const div = document.createElement("div");
  div.textContent = text;
  div.className = className;
  return div;
}

function shownTick() { return shown()?.header.tick; }

$("slider").addEventListener("change", () => travel(Number($("slider").value)));
$("back").onclick = () => travel((shownTick() ?? 1) - 1);
$("forward").onclick = () => travel((shownTick() ?? 0) + 1);
$("goto").addEventListener("change", () => travel(Number($("goto").value)));
$("live").onclick = () => {
  state.mode = state.live?.header.mode ?? "live";
  travelling = null;
  $("hashes").textContent = "";
  if (state.live) { showHeader(state.live.header); draw(); }
  inspect();
};
$("follow").onchange = draw;
$("mark").onclick = () => {
  state.markA = shownTick();
  $("marked").textContent = `A = tick ${state.markA}`;
  $("diff").disabled = false;
};
$("diff").onclick = async () => {
  const b = shownTick();
  $("diffout").textContent = `diffing ticks ${state.markA} and ${b}\u2026`;
  const response = await fetch(`/console/api/diff?a=${state.markA}&b=${b}`);
  if (!response.ok) { $("diffout").textContent = await response.text(); return; }
  const body = await response.json();
  const table = document.createElement("table");
  table.append(row("entity", `${body.changes.length} changed between ticks ${body.a} and ${body.b}`));
  for (const change of body.changes) {
    const fields = Object.entries(change.fields ?? {}).map(([k, [before, after]]) => `${k}: ${before} \u2192 ${after}`);
    table.append(row(change.id, `${change.change} ${fields.join(", ")}`));
  }
  $("diffout").replaceChildren(table);
};

window.fluxworld = { frames: 0, drawn: [], place: null, toPixel: (x, y) => toPixel(window.fluxworld.place, x, y), select };
connect();
refreshSpan();
setInterval(refreshSpan, 2000);
setInterval(() => { if (state.selected && state.mode !== "past") inspect(); }, 1000);
