// The job page: the graph, and editing the job in place. Every change is the whole
// definition PUT to /api/jobs/{name}; while typing, the same with ?dry_run=true. A refusal
// (422: job, task, reason; a cycle names its path) is shown next to what was edited.
"use strict";

const FIELD_WORDS = [
  // [field, what in the server's message points at it]
  ["soft_timeout", /soft_timeout/], ["hard_timeout", /hard_timeout/], ["retry_delay", /retry_delay/],
  ["retries", /'retries'/], ["backoff", /backoff/], ["host", /'host'/], ["command", /command/],
  ["after", /'after'|cycle|depend/], ["job", /reference to unknown job|reference each other|'job'/],
  ["name", /name/], ["timezone", /time zone|timezone/], ["schedule", /schedule|alias/],
  ["notify", /notify|email/], ["misfire", /misfire/],
];
const OPTION_FIELDS = ["soft_timeout", "hard_timeout", "retries", "retry_delay", "backoff", "host"];

class JobPage {
  constructor() {
    const data = jn.json("job-data");
    this.definition = data.definition;
    this.others = data.others;
    this.zone = data.zone;
    this.runId = data.latest_run;
    this.states = new RunStates();
    this.opened = new Set(); // references opened because the latest run failed inside them
    this.url = `/api/jobs/${jn.path(this.definition.name)}`;
    this.editing = null; // the name of the task in the editor; "" for a new one
    this.hosts = null; // a promise of the SSH config's hosts, once a task form has opened
    this.graph = new JobnestGraph(document.getElementById("graph"), {
      load: (query) => this.loadLayout(query),
      editable: true,
      stateOf: (box) => this.stateOf(box),
      onSelect: (box) => this.selected(box),
      onConnect: (source, target) => this.connect(source, target),
      emptyText: "No tasks yet: add one with “+ Task”.",
    });
    this.graph.bindToolbar(document.querySelector(".toolbar"));
    this.bind();
    this.renderTasks();
    this.fillZones();
    this.follow();
  }

  // --- the graph ----------------------------------------------------------------------

  async loadLayout(query) {
    const result = await jn.api("GET", `${this.url}/layout?${query}`);
    if (!result.ok) {
      jn.show(document.getElementById("graph-error"), jn.message(result));
      return null;
    }
    return result.data;
  }

  // A box's state in the latest run, if it has one; a reference at least tells its size.
  stateOf(box) {
    const state = this.states.stateOf(box);
    if (state || box.kind === "task") return state;
    const n = box.tasks || 0;
    const text = `${n} task${n === 1 ? "" : "s"}`;
    return { status: null, text, words: text };
  }

  // --- the latest run's states, live ----------------------------------------------------

  follow() {
    const events = new EventSource(`/api/events?job=${encodeURIComponent(this.definition.name)}`);
    const fresh = async () => {
      await this.loadRun(this.runId);
      await this.graph.reload();
    };
    events.addEventListener("ready", fresh);
    events.addEventListener("reset", fresh);
    events.addEventListener("run", (e) => this.runEvent(JSON.parse(e.data)));
    events.addEventListener("task", (e) => this.taskEvent(JSON.parse(e.data)));
    window.addEventListener("pagehide", () => events.close());
  }

  async loadRun(id) {
    if (!id) return;
    const result = await jn.api("GET", `/api/runs/${id}`);
    if (!result.ok) return;
    this.runId = id;
    this.states = new RunStates(result.data.tasks);
    this.note(result.data.status);
    this.openFailures();
  }

  note(status) {
    const note = document.getElementById("run-note");
    note.innerHTML = `States of <a href="/runs/${this.runId}">run ${this.runId}</a> ${jn.badge(status)}`;
  }

  // Open the references where the run failed; close those again once it went well.
  openFailures() {
    const failing = this.states.refsWithFailures();
    for (const ref of failing) {
      if (!this.graph.view.collapse.has(ref) && !this.graph.view.expand.has(ref)) {
        this.graph.view.expand.add(ref);
        this.opened.add(ref);
      }
    }
  }

  async runEvent(data) {
    if (data.run_id !== this.runId) {
      await this.loadRun(data.run_id);
      if (this.graph.layout) this.graph.draw(this.graph.layout);
      return;
    }
    this.note(data.status);
    if (data.status === "succeeded") {
      for (const ref of this.opened) this.graph.view.expand.delete(ref);
      this.opened.clear();
      await this.graph.reload();
    }
  }

  async taskEvent(data) {
    if (data.run_id !== this.runId) return;
    this.states.set({ path: data.path, status: data.status, exit_code: data.exit_code, reason: data.reason });
    const parts = data.path.split("/");
    for (let depth = 1; depth <= parts.length; depth++) this.graph.paint(parts.slice(0, depth).join("/"));
    if (data.status === "failed" && !this.graph.boxes.has(data.path)) {
      this.openFailures();
      await this.graph.reload();
    }
  }

  selected(box) {
    const top = box.parent == null ? box.id : box.id.split("/")[0];
    if (box.parent == null) this.openEditor(top);
    else this.showForeign(box);
  }

  showForeign(box) {
    const editor = document.getElementById("editor");
    editor.hidden = false;
    editor.innerHTML = `<div class="editor-head"><h2>${jn.esc(box.id)}</h2>${this.closeButton()}</div>` +
      `<p>This ${box.kind === "task" ? "task" : "reference"} belongs to job <strong>${jn.esc(box.job)}</strong>, ` +
      `inside reference <code>${jn.esc(box.id.split("/")[0])}</code>.</p>` +
      `<p><a href="/jobs/${jn.path(box.job)}">Edit it on that job's page</a></p>`;
  }

  // --- saving -------------------------------------------------------------------------

  async put(definition, dryRun) {
    return jn.api("PUT", this.url + (dryRun ? "?dry_run=true" : ""), definition);
  }

  async save(definition, errorsIn) {
    const result = await this.put(definition, false);
    if (!result.ok) {
      this.showError(errorsIn, result);
      return false;
    }
    this.definition = result.data;
    this.clearErrors(errorsIn);
    this.graph.highlight([]);
    jn.show(document.getElementById("graph-error"), "");
    this.renderTasks();
    await this.graph.reload();
    return true;
  }

  showError(where, result) {
    const data = result.data && typeof result.data === "object" ? result.data : {};
    const message = jn.message(result);
    this.clearErrors(where);
    const field = this.fieldOf(where, data.reason || message);
    const slot = (field && where.querySelector(`[data-error-for="${field}"]`)) || where.querySelector('[data-error-for="form"]') ||
      where.querySelector('[data-error-for="job"]') || document.getElementById("graph-error");
    jn.show(slot, message);
    const input = field && where.querySelector(`[name="${field}"]`);
    if (input) input.setAttribute("aria-invalid", "true");
    this.graph.highlight(this.culprits(data));
  }

  // The field a message is about: the one whose words come first in it.
  fieldOf(where, message) {
    let best = null, at = Infinity;
    for (const [field, pattern] of FIELD_WORDS) {
      const match = pattern.exec(message);
      if (match && match.index < at && where.querySelector(`[data-error-for="${field}"]`)) { best = field; at = match.index; }
    }
    return best;
  }

  // The boxes an error is about: the tasks of a cycle, or the reference of a job cycle.
  culprits(data) {
    if (Array.isArray(data.cycle)) return data.cycle;
    if (Array.isArray(data.path) && data.path.length > 1) return [String(data.path[1]).split(" (")[0]];
    return data.task ? [data.task] : [];
  }

  clearErrors(where) {
    if (!where) return;
    for (const slot of where.querySelectorAll("[data-error-for]")) jn.show(slot, "");
    for (const input of where.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
  }

  // Validate while typing: the same PUT with ?dry_run=true, a moment after the last key.
  checkSoon(form, build) {
    clearTimeout(this.timer);
    this.timer = setTimeout(async () => {
      const definition = build();
      if (!definition) return;
      const result = await this.put(definition, true);
      if (form.isConnected) result.ok ? this.clearErrors(form) : this.showError(form, result);
    }, 350);
  }

  // --- the task list and the task editor ----------------------------------------------

  task(name) {
    return this.definition.tasks.find((t) => t.name === name);
  }

  renderTasks() {
    const list = document.getElementById("task-list");
    if (!this.definition.tasks.length) {
      list.innerHTML = '<li class="muted">No tasks yet.</li>';
      return;
    }
    list.innerHTML = this.definition.tasks.map((t) =>
      `<li><button type="button" data-task="${jn.esc(t.name)}" aria-pressed="${t.name === this.editing}">` +
      `<span>${jn.esc(t.name)}</span><span class="kind">${t.job ? "job " + jn.esc(t.job) : "command"}</span></button></li>`).join("");
  }

  closeButton() {
    return '<button type="button" class="link" data-close aria-label="Close the editor">Close</button>';
  }

  openEditor(name, kind) {
    const task = name ? this.task(name) : { name: this.freshName(kind === "ref" ? "child" : "task"), ...(kind === "ref" ? { job: this.others[0] || "" } : { command: "" }) };
    if (!task) return;
    this.editing = name || "";
    const editor = document.getElementById("editor");
    editor.hidden = false;
    editor.innerHTML = this.editorHtml(task, !name);
    this.renderTasks();
    const form = editor.querySelector("form");
    form.addEventListener("input", () => this.checkSoon(form, () => this.candidate(form)));
    form.addEventListener("submit", (e) => { e.preventDefault(); this.submitTask(form); });
    this.offerHosts(form);
    if (!name) form.elements.name.select();
    if (name) this.graph.select(name);
  }

  freshName(base) {
    let n = this.definition.tasks.length + 1;
    while (this.task(`${base}-${n}`)) n++;
    return `${base}-${n}`;
  }

  editorHtml(task, isNew) {
    const isRef = task.job !== undefined;
    const title = isNew ? (isRef ? "New job reference" : "New task") : `${isRef ? "Reference" : "Task"} ${task.name}`;
    const options = (key, label, extra = "") =>
      `<div class="field"><label for="t-${key}">${label}</label>` +
      `<input id="t-${key}" name="${key}" value="${jn.esc(task[key] ?? "")}" ${extra} autocomplete="off">` +
      `<p class="error small" data-error-for="${key}" role="alert" hidden></p></div>`;
    const choices = this.others.map((o) => `<option${o === task.job ? " selected" : ""}>${jn.esc(o)}</option>`).join("");
    const body = isRef
      ? `<div class="field"><label for="t-job">Job</label><select id="t-job" name="job">${choices}</select>` +
        `<p class="error small" data-error-for="job" role="alert" hidden></p>` +
        (task.job ? `<a class="small" href="/jobs/${jn.path(task.job)}">Open job ${jn.esc(task.job)}</a>` : "") + "</div>"
      : `<div class="field"><label for="t-command">Command</label>` +
        `<textarea id="t-command" name="command" rows="3" spellcheck="false" class="code">${jn.esc(task.command || "")}</textarea>` +
        `<p class="error small" data-error-for="command" role="alert" hidden></p></div>`;
    return `<div class="editor-head"><h2 id="editor-title">${jn.esc(title)}</h2>${this.closeButton()}</div>
      <form class="stack" novalidate data-kind="${isRef ? "ref" : "command"}" data-new="${isNew}">
        <div class="field"><label for="t-name">Name</label>
          <input id="t-name" name="name" value="${jn.esc(task.name)}" maxlength="128" autocomplete="off" required>
          <p class="error small" data-error-for="name" role="alert" hidden></p></div>
        ${body}
        ${this.afterHtml(task)}
        <details${OPTION_FIELDS.some((k) => task[k] != null) ? " open" : ""}><summary>Timeouts, retries and host</summary>
          <div class="stack" style="margin-top:.5rem">
            <div class="row2">${options("soft_timeout", "Soft timeout (s)", 'inputmode="decimal"')}${options("hard_timeout", "Hard timeout (s)", 'inputmode="decimal"')}</div>
            <div class="row2">${options("retries", "Retries", 'inputmode="numeric"')}${options("retry_delay", "Retry delay (s)", 'inputmode="decimal"')}</div>
            <div class="row2">${options("backoff", "Backoff ×", 'inputmode="decimal"')}</div>
            ${this.hostHtml(task)}
          </div></details>
        <p class="error small" data-error-for="form" role="alert" hidden></p>
        <div class="actions"><button type="submit" class="primary">${isNew ? "Add" : "Save"}</button>
          ${isNew ? "" : '<button type="button" class="danger-outline" data-delete-task>Delete</button>'}
          <span class="saved muted small" aria-live="polite"></span></div>
      </form>`;
  }

  // A free text field; once the SSH config's hosts are known, it offers them too (hosts.js).
  hostHtml(task) {
    return `<div class="field"><label for="t-host">Host (SSH)</label>
      <div class="combo"><input id="t-host" name="host" value="${jn.esc(task.host ?? "")}" placeholder="none: runs here"
        autocomplete="off" spellcheck="false"></div>
      <p class="host-hint muted small" id="t-host-hint" hidden></p>
      <p class="warning small" id="t-host-warning" aria-live="polite" hidden></p>
      <p class="error small" data-error-for="host" role="alert" hidden></p></div>`;
  }

  // The hosts of the daemon's SSH config, asked for once; none if that fails.
  sshHosts() {
    this.hosts ??= jn.api("GET", "/api/hosts")
      .then((result) => (result.ok && Array.isArray(result.data) ? result.data : []))
      .catch(() => []);
    return this.hosts;
  }

  async offerHosts(form) {
    const hosts = await this.sshHosts();
    if (!hosts.length || !form.isConnected) return;
    new HostPicker(form.elements.host, hosts, form.querySelector("#t-host-hint"), form.querySelector("#t-host-warning"));
  }

  afterHtml(task) {
    const after = task.after || [];
    const chips = after.map((name) =>
      `<li>${jn.esc(name)}<button type="button" data-remove-after="${jn.esc(name)}" aria-label="Remove: runs after ${jn.esc(name)}">×</button></li>`).join("");
    const candidates = this.definition.tasks.filter((t) => t.name !== task.name && !after.includes(t.name));
    const adder = candidates.length
      ? `<div class="inline-form"><label class="visually-hidden" for="t-after-add">Add a task it runs after</label>
          <select id="t-after-add">${candidates.map((t) => `<option>${jn.esc(t.name)}</option>`).join("")}</select>
          <button type="button" data-add-after>Add dependency</button></div>` : "";
    return `<fieldset class="field" data-after='${jn.esc(JSON.stringify(after))}'><legend>Runs after</legend>
      ${after.length ? `<ul class="chips">${chips}</ul>` : '<p class="muted small">nothing: it starts first</p>'}
      ${adder}<p class="error small" data-error-for="after" role="alert" hidden></p></fieldset>`;
  }

  // The task the form describes, or null when its numbers are not numbers yet.
  taskFrom(form) {
    const f = form.elements;
    const task = { name: f.name.value.trim() };
    if (form.dataset.kind === "ref") task.job = f.job.value;
    else task.command = f.command.value;
    const after = JSON.parse(form.querySelector("[data-after]").dataset.after);
    if (after.length) task.after = after;
    for (const key of OPTION_FIELDS) {
      const raw = f[key].value.trim();
      if (!raw) continue;
      if (key === "host") { task.host = raw; continue; }
      const number = Number(raw);
      task[key] = raw !== "" && isFinite(number) ? number : raw;
    }
    return task;
  }

  // The whole definition with the form's task in place of the one being edited.
  candidate(form, task = this.taskFrom(form)) {
    const old = this.editing;
    const tasks = this.definition.tasks.map((t) => ({ ...t }));
    if (!old) tasks.push(task);
    else {
      const index = tasks.findIndex((t) => t.name === old);
      tasks[index] = task;
      if (task.name !== old) for (const t of tasks) if (t.after) t.after = t.after.map((a) => (a === old ? task.name : a));
    }
    return { ...this.definition, tasks };
  }

  async submitTask(form) {
    const task = this.taskFrom(form);
    if (!(await this.save(this.candidate(form, task), form))) return;
    this.openEditor(task.name);
    document.querySelector("#editor .saved").textContent = "Saved.";
  }

  async deleteTask(name) {
    const dependents = this.definition.tasks.filter((t) => (t.after || []).includes(name)).map((t) => t.name);
    const more = dependents.length ? ` ${dependents.join(", ")} will no longer wait for it.` : "";
    if (!(await jn.confirm(`Delete task “${name}”?${more}`, "Delete task"))) return;
    const tasks = this.definition.tasks.filter((t) => t.name !== name)
      .map((t) => (t.after ? { ...t, after: t.after.filter((a) => a !== name) } : t));
    const editor = document.getElementById("editor");
    if (await this.save({ ...this.definition, tasks }, editor)) this.closeEditor();
  }

  // Dependencies change at once, like a drag in the graph does.
  async setAfter(form, after) {
    const task = { ...this.taskFrom(form), after };
    if (!after.length) delete task.after;
    if (form.dataset.new === "true") {
      form.querySelector("[data-after]").outerHTML = this.afterHtml(task);
      return;
    }
    if (await this.save(this.candidate(form, task), form)) this.openEditor(task.name);
  }

  async connect(source, target) {
    const task = this.task(target);
    if (!task || (task.after || []).includes(source)) return;
    const tasks = this.definition.tasks.map((t) => (t.name === target ? { ...t, after: [...(t.after || []), source] } : t));
    const ok = await this.save({ ...this.definition, tasks }, document.querySelector(".graph-panel"));
    if (ok && this.editing === target) this.openEditor(target);
  }

  closeEditor() {
    this.editing = null;
    document.getElementById("editor").hidden = true;
    this.graph.select(null);
    this.renderTasks();
  }

  // --- the job itself -----------------------------------------------------------------

  settingsFrom(form) {
    const f = form.elements;
    const definition = { ...this.definition };
    for (const key of ["schedule", "timezone"]) {
      const value = f[key].value.trim();
      if (value) definition[key] = value; else delete definition[key];
    }
    if (f.misfire.value === "run_once") delete definition.misfire; else definition.misfire = f.misfire.value;
    const email = f.email.value.split(/[\n,]/).map((e) => e.trim()).filter(Boolean);
    const on = [...form.querySelectorAll('input[name="on"]:checked')].map((box) => box.value);
    if (!email.length && on.length === 1 && on[0] === "failure") delete definition.notify;
    else definition.notify = { email, on };
    const notes = f.notes.value.trim();
    if (notes) definition.notes = notes; else delete definition.notes;
    return definition;
  }

  async saveSettings(form) {
    if (!(await this.save(this.settingsFrom(form), form))) return;
    form.querySelector(".saved").textContent = "Saved.";
    const notes = document.getElementById("job-notes");
    notes.textContent = this.definition.notes || "";
    notes.hidden = !this.definition.notes;
    const summary = await jn.api("GET", "/api/jobs");
    const mine = summary.ok && summary.data.jobs.find((j) => j.name === this.definition.name);
    const line = document.getElementById("job-schedule");
    if (!this.definition.schedule) line.textContent = "Runs on demand";
    else line.innerHTML = `${jn.esc(mine && mine.schedule_words || "")} · <code>${jn.esc(this.definition.schedule)}</code> · ${jn.esc(this.definition.timezone || this.zone)}`;
  }

  fillZones() {
    const list = document.getElementById("zones");
    const zones = Intl.supportedValuesOf ? Intl.supportedValuesOf("timeZone") : [];
    list.innerHTML = zones.map((z) => `<option value="${jn.esc(z)}">`).join("");
  }

  async startRun() {
    const result = await jn.startRun(this.definition.name);
    if (result.ok) location.assign(`/runs/${result.data.id}`);
    else {
      const error = document.getElementById("job-error");
      jn.show(error, jn.message(result));
      if (result.data && result.data.run_id) error.insertAdjacentHTML("beforeend", ` <a href="/runs/${result.data.run_id}">See run ${result.data.run_id}</a>`);
    }
  }

  // Pause or resume the schedule; a resume may catch up the newest slot missed meanwhile.
  async setPaused(paused) {
    const catchUp = document.getElementById("catch-up").checked;
    const action = paused ? "pause" : `resume?catch_up=${catchUp}`;
    const result = await jn.api("POST", `${this.url}/${action}`);
    if (!result.ok) return jn.show(document.getElementById("job-error"), jn.message(result));
    document.getElementById("job-error").hidden = true;
    for (const id of ["job-paused", "resume-job", "catch-up-label"]) document.getElementById(id).hidden = !paused;
    document.getElementById("pause-job").hidden = paused;
    if (result.data.run) location.assign(`/runs/${result.data.run.id}`);
  }

  async deleteJob() {
    const name = this.definition.name;
    if (!(await jn.confirm(`Delete job “${name}”? Its runs stay in the history.`, "Delete job"))) return;
    const result = await jn.api("DELETE", this.url);
    if (result.ok) location.assign("/");
    else jn.show(document.getElementById("job-error"), jn.message(result));
  }

  bind() {
    document.getElementById("start-run").addEventListener("click", () => this.startRun());
    document.getElementById("delete-job").addEventListener("click", () => this.deleteJob());
    document.getElementById("pause-job").addEventListener("click", () => this.setPaused(true));
    document.getElementById("resume-job").addEventListener("click", () => this.setPaused(false));
    document.getElementById("add-task").addEventListener("click", () => this.openEditor(null, "command"));
    document.getElementById("add-ref").addEventListener("click", () => this.openEditor(null, "ref"));
    document.getElementById("task-list").addEventListener("click", (e) => {
      const button = e.target.closest("button[data-task]");
      if (!button) return;
      this.openEditor(button.dataset.task);
      this.graph.reveal(button.dataset.task);
    });
    const settings = document.getElementById("settings");
    settings.addEventListener("input", () => this.checkSoon(settings, () => this.settingsFrom(settings)));
    settings.addEventListener("submit", (e) => { e.preventDefault(); this.saveSettings(settings); });
    document.getElementById("editor").addEventListener("click", (e) => this.editorClick(e));
  }

  async editorClick(e) {
    const form = document.querySelector("#editor form");
    if (e.target.closest("[data-close]")) return this.closeEditor();
    if (!form) return;
    if (e.target.closest("[data-delete-task]")) return this.deleteTask(this.editing);
    const after = JSON.parse(form.querySelector("[data-after]").dataset.after);
    const remove = e.target.closest("[data-remove-after]");
    if (remove) {
      const name = remove.dataset.removeAfter;
      if (await jn.confirm(`Remove the dependency: “${form.elements.name.value}” runs after “${name}”?`, "Remove")) {
        await this.setAfter(form, after.filter((a) => a !== name));
      }
      return;
    }
    if (e.target.closest("[data-add-after]")) await this.setAfter(form, [...after, form.querySelector("#t-after-add").value]);
  }
}

document.addEventListener("DOMContentLoaded", () => { window.jobPage = new JobPage(); });
