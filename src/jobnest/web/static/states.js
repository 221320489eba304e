// The task states of one run, for drawing: each task's status, and for every reference
// its tasks counted by status, kept up to date one event at a time (O(depth) each).
"use strict";

const ROLLUP_ORDER = ["failed", "running", "queued", "cancelled", "upstream_failed", "pending", "succeeded", "skipped"];

class RunStates {
  constructor(tasks = []) {
    this.tasks = new Map();
    this.counts = new Map();
    for (const task of tasks) this.set(task);
  }

  // Record a task's new state; returns its previous status.
  set(task) {
    const old = this.tasks.get(task.path);
    this.tasks.set(task.path, { ...(old || {}), ...task });
    if (old) this.count(task.path, old.status, -1);
    this.count(task.path, task.status, 1);
    return old ? old.status : null;
  }

  count(path, status, delta) {
    const parts = path.split("/");
    for (let depth = 1; depth < parts.length; depth++) {
      const prefix = parts.slice(0, depth).join("/");
      const counts = this.counts.get(prefix) || {};
      counts[status] = (counts[status] || 0) + delta;
      if (!counts[status]) delete counts[status];
      this.counts.set(prefix, counts);
    }
  }

  failed() {
    return [...this.tasks.values()].filter((t) => t.status === "failed");
  }

  // The references holding a failed task, at any depth: those drawn open by themselves.
  refsWithFailures() {
    const refs = new Set();
    for (const task of this.failed()) {
      const parts = task.path.split("/");
      for (let depth = 1; depth < parts.length; depth++) refs.add(parts.slice(0, depth).join("/"));
    }
    return refs;
  }

  // What graph.js asks: {status, text, words} of a box.
  stateOf(box) {
    if (box.kind === "task") {
      const task = this.tasks.get(box.id);
      if (!task) return null;
      const failed = task.status === "failed";
      const why = failed && task.exit_code != null ? ` · exit ${task.exit_code}`
        : failed && task.reason ? ` · ${task.reason.replace(/_/g, " ")}` : "";
      const words = task.status.replace(/_/g, " ") + why;
      return { status: task.status, text: `${jn.ICONS[task.status] || ""} ${words}`, words };
    }
    const counts = this.counts.get(box.id);
    if (!counts) return null;
    const status = ROLLUP_ORDER.find((s) => counts[s]) || "pending";
    const present = ROLLUP_ORDER.filter((s) => counts[s]);
    return {
      status,
      text: present.map((s) => `${counts[s]} ${jn.ICONS[s]}`).join("  "),
      words: present.map((s) => `${counts[s]} ${s.replace(/_/g, " ")}`).join(", "),
    };
  }
}
