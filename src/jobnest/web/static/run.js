// The run page: the plan with live task states (server-sent events), references that open
// where something failed and close again once all went well, each task's attempts and
// output, retry, cancel, and fixing a failed task's command before retrying; killing one
// running task, and marking a failed one succeeded or skipped (who and when are shown).
"use strict";

const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);

class RunPage {
  constructor() {
    const data = jn.json("run-data");
    this.id = data.id;
    this.status = data.status;
    this.states = new RunStates();
    this.pinned = new Set();
    this.selectedPath = null;
    this.graph = new JobnestGraph(document.getElementById("graph"), {
      load: (query) => this.loadLayout(query),
      view: { auto: true },
      hasAuto: true,
      stateOf: (box) => this.stateOf(box),
      onSelect: (box) => { if (box.kind === "task") this.selectTask(box.id); },
    });
    this.graph.bindToolbar(document.querySelector(".toolbar"));
    this.bind();
    this.follow();
    setInterval(() => this.tick(), 1000);
  }

  // --- state --------------------------------------------------------------------------

  async loadLayout(query) {
    const result = await jn.api("GET", `/api/runs/${this.id}/layout?${query}`);
    if (!result.ok) {
      jn.show(document.getElementById("graph-error"), jn.message(result));
      return null;
    }
    return result.data;
  }

  async refresh() {
    const result = await jn.api("GET", `/api/runs/${this.id}`);
    if (!result.ok) return jn.show(document.getElementById("run-error"), jn.message(result));
    this.states = new RunStates(result.data.tasks);
    this.marks = new Map((result.data.marks || []).map((m) => [m.path, m]));
    this.setRunStatus(result.data.status, result.data.finished_at);
    await this.graph.reload();
    this.listFailed();
    if (this.selectedPath) this.selectTask(this.selectedPath);
  }

  stateOf(box) {
    return this.states.stateOf(box) || (box.kind === "task" ? { status: "pending", text: "○ pending", words: "pending" } : null);
  }

  // --- live ---------------------------------------------------------------------------

  follow() {
    this.queue = null;
    const events = new EventSource(`/api/events?run=${this.id}`);
    const fresh = async () => {
      this.queue = [];
      await this.refresh();
      const queued = this.queue;
      this.queue = null;
      for (const [kind, data] of queued) this.apply(kind, data);
    };
    events.addEventListener("ready", fresh);
    events.addEventListener("reset", fresh);
    for (const kind of ["task", "run"]) {
      events.addEventListener(kind, (event) => {
        const data = JSON.parse(event.data);
        if (this.queue) this.queue.push([kind, data]);
        else this.apply(kind, data);
      });
    }
    window.addEventListener("pagehide", () => events.close());
  }

  apply(kind, data) {
    if (kind === "run") return this.runChanged(data.status);
    const was = this.states.set({
      path: data.path, status: data.status, exit_code: data.exit_code, reason: data.reason, attempts: data.attempt,
    });
    this.paintPath(data.path);
    this.listFailed();
    if (data.path === this.selectedPath && was !== data.status) this.selectTask(data.path);
    if (data.status === "failed" && !this.graph.boxes.has(data.path) && this.graph.view.auto) this.graph.reload();
  }

  paintPath(path) {
    const parts = path.split("/");
    for (let depth = 1; depth <= parts.length; depth++) this.graph.paint(parts.slice(0, depth).join("/"));
  }

  runChanged(status) {
    const was = this.status;
    this.setRunStatus(status, TERMINAL.has(status) ? new Date().toISOString() : null);
    if (status === "running" && was === "failed") this.pin();
    if (TERMINAL.has(status) && !TERMINAL.has(was)) this.unpin();
    if (this.selectedPath) this.selectTask(this.selectedPath);
  }

  // While a retry runs, the references opened for its failures stay open...
  pin() {
    for (const box of this.graph.boxes.values()) {
      if (box.kind === "group" && !this.graph.view.expand.has(box.id)) {
        this.pinned.add(box.id);
        this.graph.view.expand.add(box.id);
      }
    }
  }

  // ...and once it ends, they close again where all went well.
  unpin() {
    for (const id of this.pinned) this.graph.view.expand.delete(id);
    this.pinned.clear();
    this.graph.reload();
  }

  setRunStatus(status, finishedAt) {
    this.status = status;
    document.getElementById("run-status").innerHTML = jn.badge(status);
    document.getElementById("retry-run").hidden = status !== "failed";
    document.getElementById("retry-current").hidden = status !== "failed";
    document.getElementById("cancel-run").hidden = status !== "running";
    const span = document.getElementById("run-duration");
    span.dataset.end = TERMINAL.has(status) ? (finishedAt || span.dataset.end || new Date().toISOString()) : "";
    this.tick();
  }

  tick() {
    const span = document.getElementById("run-duration");
    span.textContent = jn.between(span.dataset.start, span.dataset.end || null);
  }

  listFailed() {
    const failed = this.states.failed();
    document.getElementById("attention").hidden = !failed.length;
    document.getElementById("failed-list").innerHTML = failed.slice(0, 50).map((t) =>
      `<li><button type="button" data-path="${jn.esc(t.path)}" aria-pressed="${t.path === this.selectedPath}">` +
      `<span>${jn.esc(t.path)}</span>${jn.badge("failed")}</button></li>`).join("");
  }

  // --- one task -----------------------------------------------------------------------

  async selectTask(path) {
    this.selectedPath = path;
    this.graph.select(path);
    const task = this.states.tasks.get(path) || { status: "pending" };
    document.getElementById("task-hint").hidden = true;
    document.getElementById("task-body").hidden = false;
    document.getElementById("task-title").textContent = `Task ${path.slice(path.lastIndexOf("/") + 1)}`;
    document.getElementById("task-path").textContent = path;
    document.getElementById("task-status").innerHTML = jn.badge(task.status);
    const why = task.status === "queued" ? "waiting for" : "why";
    document.getElementById("task-reason").textContent = task.reason ? `${why}: ${task.reason.replace(/_/g, " ")}` : "";
    this.showControls(path, task);
    const attempts = await jn.api("GET", `/api/runs/${this.id}/tasks/${jn.path(path)}/attempts`);
    if (path !== this.selectedPath) return;
    const list = attempts.ok ? attempts.data : [];
    this.showAttempts(list);
    this.showFix(task, list);
    this.showLog(path, task, list);
    this.listFailed();
  }

  showControls(path, task) {
    const mark = this.marks && this.marks.get(path);
    const note = document.getElementById("task-mark");
    jn.show(note, mark ? `Marked ${mark.status} by ${mark.by}, ${jn.formatTime(mark.at)}` : "");
    document.getElementById("kill-task").hidden = task.status !== "running";
    const markable = task.status === "failed" && this.status !== "cancelled";
    document.getElementById("mark-succeeded").hidden = !markable;
    document.getElementById("mark-skipped").hidden = !markable;
  }

  showAttempts(list) {
    document.getElementById("attempts").innerHTML = list.length ? list.map((a) =>
      `<tr><td>${a.number}</td><td>${jn.badge(a.status)}</td><td>${a.exit_code ?? (a.signal ? "signal " + a.signal : "")}</td>` +
      `<td><time title="${jn.esc(jn.formatTime(a.started_at))}">${jn.esc(jn.formatClock(a.started_at))}</time></td><td>${jn.between(a.started_at, a.finished_at)}</td><td>${jn.esc(a.host || "local")}</td></tr>`).join("")
      : '<tr><td colspan="6" class="muted">Not started.</td></tr>';
  }

  showFix(task, list) {
    const form = document.getElementById("fix");
    const fixable = task.status === "failed" && this.status !== "running" && list.length > 0;
    if (form.hidden === !fixable && form.dataset.path === this.selectedPath) return;
    form.hidden = !fixable;
    form.dataset.path = this.selectedPath;
    jn.show(document.getElementById("fix-error"), "");
    if (fixable) document.getElementById("fix-command").value = task.command || list[list.length - 1].command;
  }

  showLog(path, task, list) {
    const key = `${path}#${list.length}`;
    if (this.log && this.logKey === key) return this.log.refresh();
    if (this.log) this.log.close();
    this.logKey = key;
    const live = () => this.states.tasks.get(path)?.status === "running";
    this.log = new LogView(document.getElementById("log"), this.id, path, null, live);
  }

  // Open the references around a task, if it is hidden, and bring it into sight.
  async revealTask(path) {
    if (!this.graph.boxes.has(path)) {
      const parts = path.split("/");
      for (let depth = 1; depth < parts.length; depth++) {
        const prefix = parts.slice(0, depth).join("/");
        this.graph.view.collapse.delete(prefix);
        this.graph.view.expand.add(prefix);
      }
      await this.graph.reload();
    }
    this.graph.reveal(path);
    this.selectTask(path);
  }

  // --- actions ------------------------------------------------------------------------

  async retry() {
    const result = await jn.api("POST", `/api/runs/${this.id}/retry`);
    if (!result.ok) return jn.show(document.getElementById("run-error"), jn.message(result));
    jn.show(document.getElementById("run-error"), "");
    document.getElementById("retry-run").hidden = true; // the run's events tell the rest
  }

  // Show which jobs changed since the run's snapshot; retry in the current plan if confirmed.
  async retryCurrent() {
    const error = document.getElementById("run-error");
    const changes = await jn.api("GET", `/api/runs/${this.id}/changes`);
    if (!changes.ok) return jn.show(error, jn.message(changes));
    const text = "Retry what has not succeeded with the current definitions?\n\n" + changeLines(changes.data.jobs).join("\n");
    if (!(await jn.confirm(text, "Retry with these"))) return;
    const result = await jn.api("POST", `/api/runs/${this.id}/retry?current=true`);
    if (!result.ok) return jn.show(error, jn.message(result));
    jn.show(error, "");
    for (const id of ["retry-run", "retry-current"]) document.getElementById(id).hidden = true;
  }

  async cancel() {
    if (!(await jn.confirm("Cancel this run? Its running tasks are stopped.", "Cancel run"))) return;
    const result = await jn.api("POST", `/api/runs/${this.id}/cancel`);
    if (!result.ok) jn.show(document.getElementById("run-error"), jn.message(result));
  }

  async kill() {
    const path = this.selectedPath;
    if (!(await jn.confirm(`Kill task ${path}? It ends failed; the rest of the run goes on.`, "Kill task"))) return;
    const result = await jn.api("POST", `/api/runs/${this.id}/tasks/${jn.path(path)}/kill`);
    jn.show(document.getElementById("task-error"), result.ok ? "" : jn.message(result));
  }

  async mark(status) {
    const path = this.selectedPath;
    const result = await jn.api("POST", `/api/runs/${this.id}/tasks/${jn.path(path)}/mark`, { status });
    jn.show(document.getElementById("task-error"), result.ok ? "" : jn.message(result));
    if (!result.ok) return;
    // only the marks: task states arrive as events, and a reload here could undo newer ones
    this.marks = new Map(result.data.marks.map((m) => [m.path, m]));
    if (this.selectedPath === path) this.selectTask(path);
  }

  async fix(event) {
    event.preventDefault();
    const path = this.selectedPath;
    const command = document.getElementById("fix-command").value;
    const result = await jn.api("PUT", `/api/runs/${this.id}/tasks/${jn.path(path)}/command`, { command });
    const error = document.getElementById("fix-error");
    if (!result.ok) return jn.show(error, jn.message(result));
    jn.show(error, "");
    const task = this.states.tasks.get(path);
    if (task) task.command = command;
    if (event.submitter && event.submitter.value === "retry") await this.retry();
  }

  bind() {
    document.getElementById("retry-run").addEventListener("click", () => this.retry());
    document.getElementById("retry-current").addEventListener("click", () => this.retryCurrent());
    document.getElementById("cancel-run").addEventListener("click", () => this.cancel());
    document.getElementById("fix").addEventListener("submit", (e) => this.fix(e));
    document.getElementById("kill-task").addEventListener("click", () => this.kill());
    document.getElementById("mark-succeeded").addEventListener("click", () => this.mark("succeeded"));
    document.getElementById("mark-skipped").addEventListener("click", () => this.mark("skipped"));
    document.getElementById("failed-list").addEventListener("click", (e) => {
      const button = e.target.closest("button[data-path]");
      if (button) this.revealTask(button.dataset.path);
    });
  }
}

document.addEventListener("DOMContentLoaded", () => { window.runPage = new RunPage(); });

// The per-job diff of /api/runs/{id}/changes, a line per job and per task.
function changeLines(jobs) {
  if (!jobs.length) return ["No job changed since the run started."];
  const fields = (list) => list.map((f) => `${f.name}: ${JSON.stringify(f.before)} → ${JSON.stringify(f.after)}`).join(", ");
  const lines = [];
  for (const job of jobs) {
    lines.push(`job “${job.job}” ${job.change}` + (job.fields.length ? `: ${fields(job.fields)}` : ""));
    for (const task of job.tasks) lines.push(`  task “${task.name}” ${task.change}` + (task.fields.length ? `: ${fields(task.fields)}` : ""));
  }
  return lines;
}
