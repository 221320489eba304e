// The dashboard: filter the jobs, start one, create one, and follow runs as they change.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const table = document.getElementById("jobs");
  const nameBox = document.getElementById("filter-name");
  const statusBox = document.getElementById("filter-status");

  function filter() {
    if (!table) return;
    const needle = nameBox.value.trim().toLowerCase();
    const wanted = statusBox.value;
    let shown = 0;
    for (const row of table.tBodies[0].rows) {
      const match = row.dataset.job.toLowerCase().includes(needle) && (!wanted || row.dataset.status === wanted);
      row.hidden = !match;
      shown += match ? 1 : 0;
    }
    document.getElementById("no-match").hidden = shown > 0;
    document.getElementById("filter-count").textContent =
      needle || wanted ? `${shown} of ${table.tBodies[0].rows.length} jobs` : "";
  }
  nameBox.addEventListener("input", filter);
  statusBox.addEventListener("change", filter);

  document.addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-start]");
    if (!button) return;
    const error = button.parentElement.querySelector(".error");
    button.disabled = true;
    const result = await jn.startRun(button.dataset.start);
    button.disabled = false;
    if (result.ok) location.assign(`/runs/${result.data.id}`);
    else jn.show(error, jn.message(result));
  });

  const form = document.getElementById("new-job");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const error = document.getElementById("new-job-error");
    const name = form.elements.name.value.trim();
    if (!name) return jn.show(error, "Give the job a name.");
    const url = `/api/jobs/${jn.path(name)}`;
    const existing = await jn.api("GET", url);
    if (existing.ok) return jn.show(error, `A job named “${name}” exists already.`);
    const result = await jn.api("PUT", url, { name, tasks: [] });
    if (result.ok) location.assign(`/jobs/${jn.path(name)}`);
    else jn.show(error, jn.message(result));
  });

  // The logs' disk usage and what retention would remove, measured when asked.
  document.getElementById("storage").addEventListener("toggle", async (event) => {
    if (!event.target.open) return;
    const text = document.getElementById("storage-text");
    const result = await jn.api("GET", "/api/retention");
    if (!result.ok) return (text.textContent = jn.message(result));
    const d = result.data, mb = (bytes) => `${(bytes / 1e6).toFixed(1)} MB`;
    const age = d.max_age_days ? `${d.max_age_days} days` : "no age limit";
    const count = d.max_runs_per_job ? `${d.max_runs_per_job} runs per job` : "no count limit";
    text.textContent = `Logs use ${mb(d.log_bytes)}. Retention keeps ${age}, ${count}: ` +
      `the next sweep removes ${d.runs.length} run(s), ${mb(d.freed_bytes)} of logs.`;
  });

  // Live: a run starting or ending updates its job's status.
  if (!table) return;
  const events = new EventSource("/api/events");
  events.addEventListener("run", (event) => {
    const data = JSON.parse(event.data);
    const row = [...table.tBodies[0].rows].find((r) => r.dataset.job === data.job);
    if (!row) return;
    row.dataset.status = data.status;
    row.querySelector(".status-cell").innerHTML = jn.badge(data.status);
    const last = row.querySelector(".last-cell");
    if (!last.querySelector(`a[href="/runs/${data.run_id}"]`)) {
      last.innerHTML = `<a href="/runs/${data.run_id}">run ${data.run_id}</a> <span class="muted small">just now</span>`;
    }
    filter();
  });
  window.addEventListener("pagehide", () => events.close());
});
