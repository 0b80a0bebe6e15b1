// skysolve's page: upload an image with optional hints, poll its job, draw the result.
// Everything here talks to this server's own API (nova's routes plus /api/jobs/ID/result).
"use strict";

const $ = (id) => document.getElementById(id);
let chosen = null;
let current = null;   // {id, summary, picture}

function say(text, isError = false) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
}

function choose(file) {
  chosen = file || null;
  $("chosen").textContent = chosen ? `${chosen.name} (${(chosen.size / 1e6).toFixed(2)} MB)` : "";
  $("solve").disabled = !chosen;
}

async function api(url, options) {
  const response = await fetch(url, {cache: "no-store", ...options});
  let body = null;
  try { body = await response.json(); } catch (e) { body = null; }
  if (!response.ok || (body && body.status === "error")) {
    throw new Error((body && body.errormessage) || `${response.status} ${response.statusText}`);
  }
  return body;
}

function number(id) {
  const text = $(id).value.trim();
  return text === "" ? null : Number(text);
}

function settings() {
  const s = {};
  const lo = number("fov-lo"), hi = number("fov-hi");
  if (lo !== null || hi !== null) {
    s.scale_units = $("scale-units").value;
    s.scale_type = "ul";
    if (lo !== null) s.scale_lower = lo;
    if (hi !== null) s.scale_upper = hi;
  }
  const ra = number("ra"), dec = number("dec"), radius = number("radius");
  // (one of RA and Dec is sent alone, for the server to refuse: dropped, the position the
  // user typed was silently not used)
  if (ra !== null) s.center_ra = ra;
  if (dec !== null) s.center_dec = dec;
  if ((ra !== null || dec !== null) && radius !== null) s.radius = radius;
  return s;
}

async function submit(event) {
  event.preventDefault();
  if (!chosen) return;
  $("solve").disabled = true;
  try {
    const s = settings();
    const key = $("apikey").value;
    if (key) {
      const form = new FormData();
      form.append("request-json", JSON.stringify({apikey: key}));
      s.session = (await api("/api/login", {method: "POST", body: form})).session;
    }
    const form = new FormData();
    form.append("request-json", JSON.stringify(s));
    form.append("file", chosen, chosen.name);
    say("Uploading…");
    const answer = await api("/api/upload", {method: "POST", body: form});
    await follow(answer.subid);
  } catch (e) {
    say(`Refused: ${e.message}`, true);
  } finally {
    $("solve").disabled = !chosen;
    loadRecent();
  }
}

async function follow(id) {
  const t0 = performance.now();
  for (;;) {
    const job = await api(`/api/jobs/${id}`);
    if (job.status === "success" || job.status === "failure") break;
    say(`Job ${id}: solving… ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    await new Promise((r) => setTimeout(r, 400));
  }
  await show(id);
}

function fmt(x, digits) { return Number(x).toFixed(digits); }

function figureRows(f, s) {
  return [
    ["RA (centre)", `${fmt(f.ra, 5)}°`], ["Dec (centre)", `${fmt(f.dec, 5)}°`],
    ["Roll", `${fmt(f.roll, 3)}°`], ["Up is", `${fmt(f.orientation, 3)}° E of N`],
    ["Field of view", `${fmt(f.fov_width_deg, 4)}° × ${fmt(f.fov_height_deg, 4)}°`],
    ["Pixel scale", `${fmt(f.pixscale_arcsec, 3)}″/px`], ["Parity", f.parity],
    ["Matched stars", `${f.matches} of ${s.sources} sources`],
    ["Residuals (rms)", `${fmt(f.rmse_arcsec, 2)}″`],
    ["Solve time", `${fmt(f.solve_time_ms, 1)} ms (job ${fmt(s.elapsed_s, 2)} s)`],
  ];
}

async function show(id) {
  const s = await api(`/api/jobs/${id}/result`);
  // a job still queued or solving (opened from the recent jobs): followed until it ends,
  // not shown as not solved
  if (s.state !== "success" && s.state !== "failure") { await follow(id); return; }
  $("result").hidden = false;
  const table = $("figures");
  table.replaceChildren();
  const rows = s.state === "success" ? figureRows(s.figures, s)
    : [["Result", `not solved: ${s.error || s.message || "no match"}`]];
  for (const [k, v] of rows) {
    const tr = table.insertRow();
    tr.insertCell().textContent = k;
    tr.insertCell().textContent = v;
  }
  say(s.state === "success" ? `Job ${id}: solved.` : `Job ${id}: not solved.`, s.state !== "success");
  table.dataset.state = s.state;
  const links = $("downloads");
  links.replaceChildren();
  const files = s.state === "success"
    ? [["wcs_file", ".wcs"], ["new_fits_file", ".new FITS"], ["corr_file", ".corr"],
       ["rdls_file", ".rdls"], ["axy_file", ".axy"], ["json_file", "JSON"],
       ["kml_file", ".kmz (Google Earth sky)"]]
    : [["axy_file", ".axy"], ["json_file", "JSON"]];
  for (const [route, label] of files) {
    const a = document.createElement("a");
    a.href = `/${route}/${id}`; a.textContent = label; a.className = "download";
    links.append(a, " ");
  }
  current = {id, summary: s, picture: null};
  if (s.preview_scale) {
    const picture = new Image();
    picture.onload = () => { current.picture = picture; draw(); };
    picture.src = `/preview/${id}?t=${Date.now()}`;
  } else {
    draw();
  }
}

function polyline(ctx, points, k) {
  ctx.beginPath();
  points.forEach(([x, y], i) => (i ? ctx.lineTo((x + 0.5) * k, (y + 0.5) * k)
                                     : ctx.moveTo((x + 0.5) * k, (y + 0.5) * k)));
  ctx.stroke();
}

function draw() {
  if (!current) return;
  const s = current.summary, canvas = $("overlay"), ctx = canvas.getContext("2d");
  const k = s.preview_scale || Math.min(1, 1024 / Math.max(s.width, s.height));
  canvas.width = Math.round(s.width * k); canvas.height = Math.round(s.height * k);
  ctx.fillStyle = "#000"; ctx.fillRect(0, 0, canvas.width, canvas.height);
  if (current.picture) ctx.drawImage(current.picture, 0, 0, canvas.width, canvas.height);
  const o = s.overlay;
  if (!o) return;
  if ($("show-grid").checked) {
    ctx.strokeStyle = "rgba(120, 200, 255, 0.55)"; ctx.lineWidth = 1;
    ctx.fillStyle = "rgba(150, 215, 255, 0.9)"; ctx.font = "11px sans-serif";
    for (const axis of ["ra", "dec"]) {
      for (const [value, points] of o.grid[axis]) {
        polyline(ctx, points, k);
        const [x, y] = points[Math.floor(points.length / 2)];
        ctx.fillText(`${axis === "ra" ? "α" : "δ"} ${value.toFixed(2)}°`, (x + 0.5) * k + 3, (y + 0.5) * k - 3);
      }
    }
  }
  if ($("show-stars").checked) {
    ctx.lineWidth = 1.5;
    ctx.strokeStyle = "rgba(255, 210, 60, 0.95)";
    for (const [x, y] of o.catalog) {
      ctx.beginPath(); ctx.arc((x + 0.5) * k, (y + 0.5) * k, 7, 0, 2 * Math.PI); ctx.stroke();
    }
    ctx.strokeStyle = "rgba(80, 255, 120, 0.95)";
    for (const [x, y] of o.matched) {
      ctx.strokeRect((x + 0.5) * k - 4, (y + 0.5) * k - 4, 8, 8);
    }
  }
  canvas.dataset.matched = String(o.matched.length);
}

async function loadRecent() {
  try {
    const {jobs} = await api("/api/recent");
    const table = $("recent-jobs");
    table.replaceChildren();
    for (const j of jobs) {
      const tr = table.insertRow();
      const a = document.createElement("a");
      a.href = "#"; a.textContent = `#${j.id}`;
      a.onclick = (e) => { e.preventDefault(); show(j.id); };
      tr.insertCell().append(a);
      tr.insertCell().textContent = j.filename || "(source list)";
      tr.insertCell().textContent = j.state;
      tr.insertCell().textContent = new Date(j.created * 1000).toLocaleString();
    }
  } catch (e) { /* the list is a convenience */ }
}

$("file").addEventListener("change", (e) => choose(e.target.files[0]));
const drop = $("drop");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault(); drop.classList.remove("over");
  choose(e.dataTransfer.files[0]);
});
$("upload-form").addEventListener("submit", submit);
$("show-grid").addEventListener("change", draw);
$("show-stars").addEventListener("change", draw);
loadRecent();
